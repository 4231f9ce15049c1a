"""fastdl where its users are: mixed with their own NumPy, in the book's script patterns, under load.

    python benchmarks/scripts/real_use.py            # all three parts
    python benchmarks/scripts/real_use.py mixed      # np.dot then a fastdl function or layer, in a loop
    python benchmarks/scripts/real_use.py book       # the book's script patterns, fastdl vs NumPy code
    python benchmarks/scripts/real_use.py load       # step times with another process on one core
    python benchmarks/scripts/real_use.py --quick    # fewer iterations

Every figure is a median from this one run; each configuration runs in a fresh process.
NumPy's BLAS keeps its default threads throughout (the user's setting). Nothing here
contains the book's code: the "NumPy" sides are written for this script, in the book's
style (its ch04 TwoLayerNet calling its own functions), or are fastdl's reference
backend (the book's algorithms in NumPy) running the same network.

mixed
    ``a = x @ W`` (NumPy, x N x 784, W 784 x 50) then an activation or layer, N = 100
    and 10,000: fastdl's against NumPy's own expression of the same function.
book
    whole-pattern wall times, one run each, fastdl (numba) vs NumPy:
    on the 5,000-image sample, at the sizes of the book's scripts (``--quick``: a fifth):
    ch04  the script's own NumPy TwoLayerNet (784-50-10, sigmoid, one-hot labels) calling
          ``fastdl.functions`` for sigmoid/softmax/cross-entropy/sigmoid_grad, vs the same net
          calling NumPy functions; 10,000 steps of batch 100, the loss every step, accuracy on
          all 5,000 training and 10,000 test images every epoch (50 steps).
    ch05  ``fastdl.nets.TwoLayerNet`` (layers), the same loop, numba vs the numpy backend.
    ch06  ``MultiLayerNet`` (four hidden layers of 100) with SGD, Momentum, AdaGrad and
          Adam, 2,000 steps of batch 128 each, numba vs the numpy backend.
    ch07  ``SimpleConvNet`` through the Trainer, 20 epochs of batch 100 with Adam,
          numba vs the numpy backend.
load
    SimpleConvNet float32 step (gradient + Adam, batch 100) idle and with another process
    pinned to one of the two cores: a Python busy loop, a book-style NumPy+fastdl script,
    another fastdl training; and the ch04 MLP step, fastdl functions vs NumPy functions,
    under the same loads: both sides in each of three processes, in alternating blocks of
    steps (the medians of each side, and the median of the processes' own ratios).
"""
import argparse
import ast
import os
import subprocess
import sys
import time

import numpy as np

HERE = os.path.abspath(__file__)


# ----------------------------------------------------------------------------- NumPy side
def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_relu(x):
    return np.maximum(0, x)


def np_softmax(x):
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)


def np_cross_entropy(y, t):
    if t.ndim == 2:                       # one-hot rows
        t = t.argmax(axis=1)
    return -np.sum(np.log(y[np.arange(y.shape[0]), t] + 1e-7)) / y.shape[0]


class NpRelu:
    """A ReLU layer as a reader writes it after chapter 5."""

    def forward(self, x):
        self.mask = x <= 0
        out = x.copy()
        out[self.mask] = 0
        return out


class Ch04Net:
    """The chapter-4 pattern: the script's own two-layer net (sigmoid, softmax) whose forward
    and analytic gradient call a function module ``F``: NumPy's or fastdl's."""

    def __init__(self, F, rng):
        self.F = F
        self.p = {"W1": 0.01 * rng.standard_normal((784, 50)), "b1": np.zeros(50),
                  "W2": 0.01 * rng.standard_normal((50, 10)), "b2": np.zeros(10)}

    def predict(self, x):
        p, F = self.p, self.F
        return F.softmax(F.sigmoid(np.dot(x, p["W1"]) + p["b1"]) @ p["W2"] + p["b2"])

    def accuracy(self, x, t):
        return float(np.mean(np.argmax(self.predict(x), axis=1) == t))

    def gradient(self, x, t):
        """t: one-hot rows (N, 10), as the book's chapter-4 script loads them."""
        p, F = self.p, self.F
        a1 = np.dot(x, p["W1"]) + p["b1"]
        z1 = F.sigmoid(a1)
        y = F.softmax(np.dot(z1, p["W2"]) + p["b2"])
        dy = (y - t) / t.shape[0]
        g = {"W2": np.dot(z1.T, dy), "b2": dy.sum(axis=0)}
        dz1 = np.dot(dy, p["W2"].T)
        da1 = F.sigmoid_grad(a1) * dz1
        g["W1"] = np.dot(x.T, da1)
        g["b1"] = da1.sum(axis=0)
        return g

    def step(self, x, t, lr=0.1):
        """One SGD step; t one-hot."""
        g = self.gradient(x, t)
        for k in self.p:
            self.p[k] -= lr * g[k]


class NpFunctions:
    sigmoid = staticmethod(np_sigmoid)
    softmax = staticmethod(np_softmax)
    cross_entropy_error = staticmethod(np_cross_entropy)

    @staticmethod
    def sigmoid_grad(x):
        s = np_sigmoid(x)
        return (1 - s) * s


def functions_module(which):
    if which == "numpy":
        return NpFunctions
    import fastdl.functions
    return fastdl.functions


# ----------------------------------------------------------------------------- data
def mnist(flatten=True, n_train=10000, n_test=10000):
    """The 5,000-image sample fastdl ships (tiled to n_train) and its 10,000 test images."""
    from fastdl.datasets import load_mnist
    (x, t), (xt, tt) = load_mnist(flatten=flatten, sample=True)
    reps = -(-n_train // len(x))
    x = np.concatenate([x] * reps)[:n_train].astype(np.float64)
    t = np.concatenate([t] * reps)[:n_train].astype(np.intp)
    return (x, t), (xt[:n_test].astype(np.float64), tt[:n_test].astype(np.intp))


# ----------------------------------------------------------------------------- children
def child_mixed(which, rows, what, iters):
    rng = np.random.default_rng(0)
    x = rng.random((rows, 784))
    W = rng.random((784, 50)) * 0.01
    if which == "numpy":
        f = {"sigmoid": np_sigmoid, "relu": np_relu, "Relu layer": NpRelu().forward, "softmax": np_softmax}[what]
    else:
        import fastdl.functions as F
        from fastdl.layers import Relu
        f = {"sigmoid": F.sigmoid, "relu": F.relu, "Relu layer": Relu().forward, "softmax": F.softmax}[what]
    from fastdl.bench import warm_up
    warm_up(lambda: f(x @ W), 3)   # waits for background compiles: times the compiled kernels
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        a = x @ W
        f(a)
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def child_book(pattern, which, scale):
    """One of the book's chapter scripts' patterns on the 5,000-image sample (what
    ``python -m fastdl.book --sample`` gives the scripts), at the scripts' own sizes times scale:
    ch04/ch05 10,000 steps of batch 100 with accuracy on all training and test images every
    epoch (50 steps), ch06 2,000 steps of batch 128 for each of four optimizers, ch07 20 epochs
    of SimpleConvNet through the Trainer (1,000 images evaluated per epoch). Returns (seconds,
    final test accuracy)."""
    t_start = time.perf_counter()
    rng = np.random.default_rng(1)
    if pattern == "ch04":
        F = functions_module(which)
        (x, t), (xt, tt) = mnist(n_train=5000)
        eye = np.eye(10)
        net = Ch04Net(F, np.random.default_rng(0))
        for i in range(int(10000 * scale)):
            idx = rng.integers(0, len(x), 100)
            xb, tb = x[idx], eye[t[idx]]
            net.step(xb, tb)
            F.cross_entropy_error(net.predict(xb), tb)      # the script's loss curve
            if i % 50 == 0:
                net.accuracy(x, t), net.accuracy(xt, tt)
        return time.perf_counter() - t_start, net.accuracy(xt, tt)
    import fastdl
    fastdl.set_backend("numpy" if which == "numpy" else "numba")
    from fastdl.nets import MultiLayerNet, SimpleConvNet, TwoLayerNet
    from fastdl.optimizers import SGD, AdaGrad, Adam, Momentum
    np.random.seed(0)
    if pattern == "ch05":
        (x, t), (xt, tt) = mnist(n_train=5000)
        net, opt = TwoLayerNet(784, 50, 10), SGD(0.1)
        for i in range(int(10000 * scale)):
            idx = rng.integers(0, len(x), 100)
            opt.update(net.params, net.gradient(x[idx], t[idx]))
            net.loss(x[idx], t[idx])
            if i % 50 == 0:
                net.accuracy(x, t), net.accuracy(xt, tt)
        return time.perf_counter() - t_start, net.accuracy(xt, tt)
    if pattern == "ch06":
        (x, t), (xt, tt) = mnist(n_train=5000)
        nets = {k: (MultiLayerNet(784, [100] * 4, 10), o) for k, o in
                {"SGD": SGD(), "Momentum": Momentum(), "AdaGrad": AdaGrad(), "Adam": Adam()}.items()}
        for i in range(int(2000 * scale)):
            idx = rng.integers(0, len(x), 128)
            for net, opt in nets.values():
                opt.update(net.params, net.gradient(x[idx], t[idx]))
                net.loss(x[idx], t[idx])
        return time.perf_counter() - t_start, nets["Adam"][0].accuracy(xt, tt)
    if pattern == "ch07":
        from fastdl.datasets import load_mnist
        from fastdl.trainer import Trainer
        (x, t), (xt, tt) = load_mnist(flatten=False, sample=True)
        x, xt = x.astype(np.float64), xt.astype(np.float64)
        net = SimpleConvNet()
        trainer = Trainer(net, x, t, xt, tt, epochs=max(1, int(20 * scale)), mini_batch_size=100,
                          optimizer="Adam", optimizer_param={"lr": 0.001}, evaluate_sample_num_per_epoch=1000,
                          verbose=False, seed=0)
        trainer.train()
        return time.perf_counter() - t_start, net.accuracy(xt, tt)
    raise ValueError(pattern)


def child_step(kind, which, seconds):
    """Median step time over ``seconds`` of steps."""
    rng = np.random.default_rng(0)
    if kind == "conv":
        import fastdl
        from fastdl.bench import build, train_step
        fastdl.set_backend("numba")
        model, x, t, opt = build("simple", "float32", 100)

        def step():
            train_step(model, opt, x, t)
    else:
        net = Ch04Net(functions_module(which), rng)
        x = rng.random((100, 784))
        t = np.eye(10)[rng.integers(0, 10, 100)]

        def step():
            net.step(x, t)
    from fastdl.bench import warm_up
    warm_up(step, 3)   # waits for background compiles: times the compiled kernels
    ts = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(ts) < 10:
        t0 = time.perf_counter()
        step()
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def child_mlp_pair(seconds, block=20):
    """(fastdl median, NumPy median) of the ch04 MLP step, both sides in this one process in
    alternating blocks of ``block`` steps for ``seconds``: a process of this machine runs either
    fast or slow for seconds at a time (about 0.32 or 0.56 ms per step, NumPy's side as well), so
    two sides in two processes can land in different states; in one process they share it."""
    rng = np.random.default_rng(0)
    x = rng.random((100, 784))
    t = np.eye(10)[rng.integers(0, 10, 100)]
    nets = {w: Ch04Net(functions_module(w), rng) for w in ("fastdl", "numpy")}
    from fastdl.bench import warm_up
    for net in nets.values():
        warm_up(lambda net=net: net.step(x, t), 3)
    ts = {"fastdl": [], "numpy": []}
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(ts["numpy"]) < 10:
        for which, net in nets.items():
            for _ in range(block):
                t0 = time.perf_counter()
                net.step(x, t)
                ts[which].append(time.perf_counter() - t0)
    return float(np.median(ts["fastdl"])), float(np.median(ts["numpy"]))


def child_load(kind):
    """Runs until killed, on the core it was pinned to."""
    if kind == "busy":
        while True:
            pass
    if kind == "book":
        import fastdl.functions as F
        rng = np.random.default_rng(0)
        net = Ch04Net(F, rng)
        x = rng.random((100, 784))
        t = np.eye(10)[rng.integers(0, 10, 100)]
        while True:
            net.step(x, t)
    if kind == "fastdl":
        from fastdl.bench import build, train_step
        model, x, t, opt = build("simple", "float32", 100)
        while True:
            train_step(model, opt, x, t)
    raise ValueError(kind)


# ----------------------------------------------------------------------------- parent
def run_child(*args, env=None):
    r = subprocess.run([sys.executable, HERE, "--child", *map(str, args)], capture_output=True, text=True,
                       env=env, timeout=3600)
    if r.returncode:
        raise RuntimeError(r.stderr[-2000:])
    return ast.literal_eval(r.stdout.strip().splitlines()[-1])  # what the child printed: a float or a tuple


def part_mixed(quick):
    rounds = 2 if quick else 3
    print(f"\n== mixed: a = x @ W (NumPy) then the function, per iteration; the median of {rounds} processes "
          "of each, run alternately, each reporting its own median")
    print(f"{'function':12} {'rows':>6} {'NumPy ms':>9} {'fastdl ms':>10} {'fastdl/NumPy':>13}")
    for rows in (100, 10000):
        for what in ("sigmoid", "relu", "Relu layer", "softmax"):
            iters = (200 if rows == 100 else 20) // (2 if quick else 1)
            a, b = [], []
            for _ in range(rounds):
                a.append(run_child("mixed", "numpy", rows, what, iters))
                b.append(run_child("mixed", "fastdl", rows, what, iters))
            a, b = float(np.median(a)), float(np.median(b))
            print(f"{what:12} {rows:6d} {a * 1e3:9.3f} {b * 1e3:10.3f} {b / a:13.2f}", flush=True)


def part_book(quick):
    scale = 0.2 if quick else 1.0
    print(f"\n== book patterns at {scale:g} of the scripts' sizes: whole-pattern wall time in a fresh process "
          "(imports and kernel loading included), one run each; fastdl's final test accuracy shown as a check")
    print(f"{'pattern':44} {'NumPy s':>8} {'fastdl s':>9} {'speed-up':>9} {'want':>6}")
    names = {"ch04": "ch04 own NumPy net + fastdl.functions", "ch05": "ch05 TwoLayerNet (layers)",
             "ch06": "ch06 optimizer comparison (MultiLayerNet)", "ch07": "ch07 SimpleConvNet training"}
    want = {"ch04": ">= 1", "ch05": ">= 1.5", "ch06": ">= 2", "ch07": ">= 5"}
    for pattern in ("ch04", "ch05", "ch06", "ch07"):
        a, _ = run_child("book", pattern, "numpy", scale)
        b, acc = run_child("book", pattern, "fastdl", scale)
        print(f"{names[pattern]:44} {a:8.2f} {b:9.2f} {a / b:8.2f}x {want[pattern]:>6}  (acc {acc:.3f})", flush=True)


def _pin(pid, cores):
    try:
        os.sched_setaffinity(pid, cores)
    except (AttributeError, OSError):
        pass


def part_load(quick):
    seconds = 2.0 if quick else 4.0
    ncpu = os.cpu_count() or 1
    print(f"\n== under load: median step, {seconds:.0f} s of steps each; the load process is pinned to core "
          f"{ncpu - 1} of {ncpu}")
    print(f"{'load':8} {'conv f32 ms':>12} {'x idle':>7} {'MLP fastdl ms':>14} {'MLP NumPy ms':>13} {'fastdl/NumPy':>13}")
    idle = None
    for load in ("none", "busy", "book", "fastdl"):
        proc = None
        if load != "none":
            proc = subprocess.Popen([sys.executable, HERE, "--child", "load", load])
            _pin(proc.pid, {ncpu - 1})
            time.sleep(1.5)    # let it import and warm up
        try:
            conv = run_child("step", "conv", "fastdl", seconds)
            # the two MLP sides share each of three processes (child_mlp_pair): a process of this
            # machine runs fast or slow for seconds, so sides in separate processes, even
            # alternating, could land in different states (one run of five did: 1.69)
            pairs = [run_child("mlppair", seconds) for _ in range(3)]
            mlp_f = float(np.median([f for f, _ in pairs]))
            mlp_n = float(np.median([n for _, n in pairs]))
            ratio = float(np.median([f / n for f, n in pairs]))
        finally:
            if proc is not None:
                proc.kill()
                proc.wait()
        idle = conv if idle is None else idle
        print(f"{load:8} {conv * 1e3:12.2f} {conv / idle:7.2f} {mlp_f * 1e3:14.3f} {mlp_n * 1e3:13.3f} "
              f"{ratio:13.2f}", flush=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, rest = argv[1], argv[2:]
        if kind == "mixed":
            print(child_mixed(rest[0], int(rest[1]), rest[2], int(rest[3])))
        elif kind == "book":
            print(child_book(rest[0], rest[1], float(rest[2])))
        elif kind == "step":
            print(child_step(rest[0], rest[1], float(rest[2])))
        elif kind == "mlppair":
            print(child_mlp_pair(float(rest[0])))
        elif kind == "load":
            child_load(rest[0])
        return 0
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("parts", nargs="*", metavar="PART", help="mixed, book and/or load (default: all three)")
    p.add_argument("--quick", action="store_true")
    a = p.parse_args(argv)
    parts = a.parts or ["mixed", "book", "load"]
    bad = [x for x in parts if x not in ("mixed", "book", "load")]
    if bad:
        p.error(f"unknown part(s) {', '.join(bad)}; choose from mixed, book, load")
    from fastdl.bench import blas_line
    print(f"fastdl real-use benchmark: {os.cpu_count()} cores")
    print(blas_line())        # loads the backend first: fastdl starts Numba's threads; names their layer
    for part in parts:
        {"mixed": part_mixed, "book": part_book, "load": part_load}[part](a.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
