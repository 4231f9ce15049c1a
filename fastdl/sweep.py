"""Every op of ``fastdl.kernels.spec`` from tiny inputs to the book's largest, on two backends.

``python benchmarks/scripts/sweep.py`` (or ``python -m fastdl.sweep``) prints, for each op
and size, the median time of the reference backend and of the numba backend measured
side by side (calls of the two alternate, round after round) and their ratio; a ratio
above 1 means the fast backend lost at that size. ``--paths`` adds the numba kernels
forced onto the calling thread and forced parallel, which is how the thresholds that
choose between the two (``MIN_PARALLEL`` in each kernel module) were set. The asv suite
``benchmarks/bench_sweep.py`` runs the same cases.

Each case is ``(op, label, make)`` where ``make(ops, dtype)`` builds the inputs (and the
forward context for backward ops) with that backend and returns the call to time.
"""
import argparse
import json
import sys
import time

import numpy as np

from . import backend
from .kernels.spec import OPS


def _rng(seed=0):
    return np.random.default_rng(seed)


def _arr(shape, dtype, seed=0, kind="normal"):
    r = _rng(seed)
    a = r.standard_normal(shape) if kind == "normal" else r.random(shape)
    return a.astype(dtype)


def _elementwise(op):
    def make_for(shape):
        def make(ops, dtype):
            x = _arr(shape, dtype)
            if op == "relu_forward":
                return lambda: ops.relu_forward(x)
            if op == "relu_backward":
                mask = x <= 0
                return lambda: ops.relu_backward(x, mask)
            if op == "sigmoid_forward":
                return lambda: ops.sigmoid_forward(x)
            if op == "sigmoid_backward":
                y = ops.sigmoid_forward(x)
                return lambda: ops.sigmoid_backward(x, y)
            mask = _rng(1).random(shape) > 0.5
            return lambda: ops.dropout_apply(x, mask)
        return make
    return make_for


#: element-wise shapes: one sample of ch04's hidden layer, ch04/ch05's batch (100x50), a
#: 100,000-element layer, ch04's evaluation on 10,000 images (10000x50), SimpleConvNet's
#: activation (100x30x24x24)
ELEMENTWISE_SHAPES = [(1, 50), (1, 300), (100, 50), (100, 1000), (10000, 50), (100, 30, 24, 24)]
SOFTMAX_SHAPES = [(1, 10), (100, 10), (1000, 10), (10000, 10), (100, 1000)]
#: (N, D, M): ch04's layer 1 and 2 on one sample, a batch and the test set, SimpleConvNet's
#: and DeepConvNet's first Affine
AFFINE_SHAPES = [(1, 784, 50), (1, 50, 10), (100, 784, 50), (100, 50, 10), (100, 784, 100),
                 (10000, 784, 50), (10000, 50, 10), (100, 4320, 100), (100, 1024, 50)]
BN_SHAPES = [(2, 100), (100, 100), (1000, 100), (10000, 100), (100, 4320)]
#: (x shape, W shape, stride, pad)
CONV_SHAPES = [((1, 1, 28, 28), (30, 1, 5, 5), 1, 0), ((10, 1, 28, 28), (30, 1, 5, 5), 1, 0),
               ((100, 1, 28, 28), (30, 1, 5, 5), 1, 0), ((1, 16, 28, 28), (16, 16, 3, 3), 1, 1),
               ((100, 16, 28, 28), (16, 16, 3, 3), 1, 1), ((100, 32, 14, 14), (32, 32, 3, 3), 1, 2),
               ((1, 64, 7, 7), (64, 64, 3, 3), 1, 1), ((100, 64, 7, 7), (64, 64, 3, 3), 1, 1),
               ((2, 3, 9, 9), (4, 3, 3, 3), 2, 1), ((100, 3, 28, 28), (8, 3, 3, 3), 2, 1)]
#: (x shape, window, stride, pad)
POOL_SHAPES = [((1, 30, 24, 24), 2, 2, 0), ((10, 30, 24, 24), 2, 2, 0), ((100, 30, 24, 24), 2, 2, 0),
               ((100, 64, 8, 8), 2, 2, 0), ((100, 16, 28, 28), 3, 2, 1)]
#: parameter sizes: a bias, a 784x50 weight, SimpleConvNet's 4320x100, a million
OPTIM_SIZES = [10, 50, 39200, 432000, 1000000]


def _label(shape):
    return "x".join(str(s) for s in shape)


def _affine(op, N, D, M):
    """As in a network of Affine layers (no parallel kernel running nearby): the numba backend
    then uses NumPy's product; next to parallel kernels it splits large products over Numba's
    threads instead (``kernels/cpu/affine.py``), which ``--paths`` shows as "parallel"."""
    def make(ops, dtype):
        x, W, b = _arr((N, D), dtype), _arr((D, M), dtype, 1) * 0.05, _arr((M,), dtype, 2)
        if op == "affine_forward":
            return _idle(lambda: ops.affine_forward(x, W, b))
        dout = _arr((N, M), dtype, 3)
        return _idle(lambda: ops.affine_backward(dout, x, W))
    return make


def _idle(fn):
    """fn with Numba's threads counted as idle (what earlier sweep cases did is forgotten)."""
    try:
        from .kernels.cpu import _chunks
    except ImportError:
        return fn

    def call():
        _chunks._last_parallel = float("-inf")
        return fn()
    return call


def _softmax(op, shape):
    def make(ops, dtype):
        x = _arr(shape, dtype) * 3
        t = _rng(4).integers(0, shape[1], size=shape[0])
        if op == "softmax":
            return lambda: ops.softmax(x)
        if op == "softmax_loss_forward":
            return lambda: ops.softmax_loss_forward(x, t)
        _, y = ops.softmax_loss_forward(x, t)
        return lambda: ops.softmax_loss_backward(y, t, 1.0)
    return make


def _batchnorm(op, shape, train):
    def make(ops, dtype):
        x = _arr(shape, dtype)
        D = shape[1]
        g, b = np.ones(D, dtype), np.zeros(D, dtype)
        rm, rv = np.zeros(D, dtype), np.ones(D, dtype)
        if op == "batchnorm_forward":
            return lambda: ops.batchnorm_forward(x, g, b, rm, rv, 0.9, 1e-6, train)
        out, ctx = ops.batchnorm_forward(x, g, b, rm, rv, 0.9, 1e-6, True)
        return lambda: ops.batchnorm_backward(x, ctx)
    return make


def _conv(op, xs, ws, s, p):
    def make(ops, dtype):
        x, W, b = _arr(xs, dtype, kind="uniform"), _arr(ws, dtype, 1) * 0.1, _arr((ws[0],), dtype, 2)
        fh, fw = ws[2], ws[3]
        if op == "im2col":
            return lambda: ops.im2col(x, fh, fw, s, p)
        if op == "col2im":
            col = ops.im2col(x, fh, fw, s, p)
            return lambda: ops.col2im(col, xs, fh, fw, s, p)
        pool = (2, 2, 2, 0)
        fwd = {"conv": lambda: ops.conv_forward(x, W, b, s, p),
               "conv_relu": lambda: ops.conv_relu_forward(x, W, b, s, p),
               "conv_relu_pool": lambda: ops.conv_relu_pool_forward(x, W, b, s, p, *pool)}
        base = op.rsplit("_", 1)[0]
        if op.endswith("_forward"):
            return fwd[base]
        out, ctx = fwd[base]()
        dout = _arr(out.shape, dtype, 3)
        bwd = getattr(ops, op)
        return lambda: bwd(dout, ctx)
    return make


def _pool(op, xs, k, s, p):
    def make(ops, dtype):
        x = _arr(xs, dtype)
        if op == "pool_forward":
            return lambda: ops.pool_forward(x, k, k, s, p)
        out, ctx = ops.pool_forward(x, k, k, s, p)
        dout = _arr(out.shape, dtype, 3)
        return lambda: ops.pool_backward(dout, ctx)
    return make


def _optim(op, n):
    def make(ops, dtype):
        p, g = _arr((n,), dtype), _arr((n,), dtype, 1)
        s1, s2 = np.zeros(n, dtype), np.zeros(n, dtype)
        fn = getattr(ops, op)
        args = {"sgd_update": (p, g, 0.01), "momentum_update": (p, g, s1, 0.01, 0.9),
                "nesterov_update": (p, g, s1, 0.01, 0.9), "adagrad_update": (p, g, s1, 0.01),
                "rmsprop_update": (p, g, s1, 0.01, 0.99), "adam_update": (p, g, s1, s2, 0.001, 0.9, 0.999)}[op]
        return lambda: fn(*args)
    return make


def cases():
    """[(op, label, make)] for every op of the spec, tiny to large."""
    out = []
    for op in ("relu_forward", "relu_backward", "sigmoid_forward", "sigmoid_backward", "dropout_apply"):
        out += [(op, _label(sh), _elementwise(op)(sh)) for sh in ELEMENTWISE_SHAPES]
    for op in ("softmax", "softmax_loss_forward", "softmax_loss_backward"):
        out += [(op, _label(sh), _softmax(op, sh)) for sh in SOFTMAX_SHAPES]
    for op in ("affine_forward", "affine_backward"):
        out += [(op, f"{N}x{D} @ {D}x{M}", _affine(op, N, D, M)) for N, D, M in AFFINE_SHAPES]
    for sh in BN_SHAPES:
        out.append(("batchnorm_forward", _label(sh) + " train", _batchnorm("batchnorm_forward", sh, True)))
        out.append(("batchnorm_forward", _label(sh) + " eval", _batchnorm("batchnorm_forward", sh, False)))
    out += [("batchnorm_backward", _label(sh), _batchnorm("batchnorm_backward", sh, True)) for sh in BN_SHAPES]
    for op in ("im2col", "col2im", "conv_forward", "conv_backward"):
        out += [(op, f"{_label(xs)} * {_label(ws)} s{s} p{p}", _conv(op, xs, ws, s, p)) for xs, ws, s, p in CONV_SHAPES]
    for op in ("conv_relu_forward", "conv_relu_backward", "conv_relu_pool_forward", "conv_relu_pool_backward"):
        out += [(op, f"{_label(xs)} * {_label(ws)} s{s} p{p}", _conv(op, xs, ws, s, p))
                for xs, ws, s, p in CONV_SHAPES if s == 1]
    for op in ("pool_forward", "pool_backward"):
        out += [(op, f"{_label(xs)} {k}x{k} s{s} p{p}", _pool(op, xs, k, s, p)) for xs, k, s, p in POOL_SHAPES]
    for op in ("sgd_update", "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update",
               "adam_update"):
        out += [(op, str(n), _optim(op, n)) for n in OPTIM_SIZES]
    missing = set(OPS) - {c[0] for c in out}
    assert not missing, f"ops without a sweep case: {sorted(missing)}"
    return out


def _per_call(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def measure(calls, rounds=7, target=0.004):
    """{name: median seconds per call}; the calls alternate round after round, each round
    timing enough calls to last about ``target`` seconds."""
    numbers = {}
    for name, fn in calls.items():
        fn()
        fn()
        once = _per_call(fn, 1)
        numbers[name] = max(1, min(2000, int(target / max(once, 1e-7))))
    times = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            times[name].append(_per_call(fn, numbers[name]))
    return {name: float(np.median(t)) for name, t in times.items()}


def run(dtype="float64", ops_filter=None, paths=False, rounds=7, out=sys.stdout, fast="numba"):
    """Time every case; print a table row per case and return the rows as dicts."""
    ref, fst = backend.ops("numpy"), backend.ops(fast)
    rows = []
    head = f"{'op':24} {'size':34} {'numpy us':>10} {fast + ' us':>10} {'ratio':>6}"
    if paths:
        head += f" {'serial us':>10} {'parallel us':>11}"
    print(head, file=out, flush=True)
    for op, label, make in cases():
        if ops_filter and not any(f in op for f in ops_filter):
            continue
        calls = {"numpy": make(ref, dtype), fast: make(fst, dtype)}
        if paths and fast == "numba":
            calls["serial"] = _forced(make(fst, dtype), "serial")
            calls["parallel"] = _forced(make(fst, dtype), "parallel")
        med = measure(calls, rounds=rounds)
        row = {"op": op, "size": label, "dtype": dtype, **{k + "_us": v * 1e6 for k, v in med.items()},
               "ratio": med[fast] / med["numpy"]}
        rows.append(row)
        line = f"{op:24} {label:34} {med['numpy'] * 1e6:10.1f} {med[fast] * 1e6:10.1f} {row['ratio']:6.2f}"
        if paths and "serial" in med:
            line += f" {med['serial'] * 1e6:10.1f} {med['parallel'] * 1e6:11.1f}"
        if row["ratio"] > 1:
            line += "  slower"
        print(line, file=out, flush=True)
    return rows


def _forced(fn, mode):
    from .kernels.cpu import _chunks

    def call():
        with _chunks.forced(mode):
            return fn()
    return call


def main(argv=None):
    p = argparse.ArgumentParser(prog="sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    p.add_argument("--ops", default="", help="comma-separated substrings of op names (default: all)")
    p.add_argument("--paths", action="store_true", help="also time numba forced serial and forced parallel")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    from .bench import blas_line
    from .kernels.cpu import _threads
    omp_status = getattr(_threads, "omp_status", "not managed by this version of fastdl")
    import numba
    print(f"fastdl sweep: {numba.get_num_threads()} Numba threads ({numba.threading_layer()}); "
          f"OpenMP wait: {omp_status}", flush=True)
    print(blas_line(), flush=True)
    rows = []
    for dt in (["float64", "float32"] if a.dtype == "both" else [a.dtype]):
        print(f"\n{dt}: medians of {a.rounds} rounds, numba/numpy ratio (<= 1: numba as fast or faster)")
        rows += run(dt, [s for s in a.ops.split(",") if s], a.paths, a.rounds)
    slower = [r for r in rows if r["ratio"] > 1]
    print(f"\n{len(rows)} points, {len(slower)} where numba was slower than numpy"
          + (": " + "; ".join(f"{r['op']} {r['size']} {r['dtype']} ({r['ratio']:.2f})" for r in slower)
             if slower else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
