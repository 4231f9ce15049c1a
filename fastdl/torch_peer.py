"""PyTorch CPU peer for fastdl's benchmarks: the book's networks and layers on the same shapes.

Runs in its own process (``python -m fastdl.torch_peer``), because Numba's and
PyTorch's OpenMP runtimes slow each other down in one process (measured 22-44%).
PyTorch is an optional peer, never a dependency of fastdl.

    python -m fastdl.torch_peer --net simple --dtype float32 --batch 100 --repeat 20
    python -m fastdl.torch_peer --layers SPEC.json --dtype float32 --repeat 20

prints JSON: {"median_ms": ...} for a training step (forward, backward, Adam),
or {"layers": [ms, ...]} for forward + backward of each layer in SPEC.
"""
import argparse
import importlib.util
import json
import subprocess
import sys
import time


def available():
    """True when torch is installed (checked without importing it)."""
    return importlib.util.find_spec("torch") is not None


def measure(args, timeout=3600):
    """Run this peer in a child process with command-line ``args``; its JSON result, or None
    when torch is missing or the run failed (stderr is passed on)."""
    if not available():
        return None
    r = subprocess.run([sys.executable, "-m", "fastdl.torch_peer", *args], capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode:
        print(r.stderr, file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def _median_ms(fn, repeat, warmup=3):
    import numpy as np
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)) * 1e3


def simple_net(nn):
    """The book's SimpleConvNet as a ``torch.nn.Sequential`` (``nn`` is ``torch.nn``)."""
    return nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
                         nn.Linear(30 * 12 * 12, 100), nn.ReLU(), nn.Linear(100, 10))


def deep_net(nn):
    """The book's DeepConvNet as a ``torch.nn.Sequential`` (``nn`` is ``torch.nn``)."""
    def block(ci, co, p1, p2, c_mid):
        return [nn.Conv2d(ci, c_mid, 3, padding=p1), nn.ReLU(), nn.Conv2d(c_mid, co, 3, padding=p2),
                nn.ReLU(), nn.MaxPool2d(2, 2)]
    return nn.Sequential(*block(1, 16, 1, 1, 16), *block(16, 32, 1, 2, 32), *block(32, 64, 1, 1, 64),
                         nn.Flatten(), nn.Linear(64 * 4 * 4, 50), nn.ReLU(), nn.Dropout(0.5),
                         nn.Linear(50, 10), nn.Dropout(0.5))


def step_ms(net, dtype, batch, repeat):
    """Median milliseconds of one training step (forward, backward, Adam) of ``net`` ("simple" or
    "deep") on random data of ``batch`` images in ``dtype``, over ``repeat`` steps."""
    import torch
    from torch import nn
    dt = getattr(torch, dtype)
    torch.manual_seed(0)
    model = {"simple": simple_net, "deep": deep_net}[net](nn).to(dt)
    opt = torch.optim.Adam(model.parameters(), lr=0.001)
    x = torch.rand(batch, 1, 28, 28, dtype=dt)
    t = torch.randint(0, 10, (batch,))
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), t).backward()
        opt.step()
    return _median_ms(step, repeat)


def layer_ms(spec, dtype, repeat):
    """spec: list of {"x": input shape, "torch": a PyTorch module as an expression over ``nn``, or
    None}, as each fastdl layer's ``describe`` writes it (``fastdl compare``); None for the
    entries without a counterpart. The expressions are evaluated with only ``nn`` in scope."""
    import torch
    from torch import nn
    dt = getattr(torch, dtype)
    out: list = []
    for s in spec:
        expr = s.get("torch")
        if expr is None:
            out.append(None)
            continue
        mod = eval(expr, {"__builtins__": {}}, {"nn": nn}).to(dt)    # noqa: S307 (our own spec file)
        x = torch.rand(*s["x"], dtype=dt, requires_grad=True)
        y = mod(x)
        g = torch.rand_like(y)

        def run():
            x.grad = None
            mod(x).backward(g)
        out.append(_median_ms(run, repeat))
    return out


def main():
    """The command line: prints the measurement as JSON (see the module docstring)."""
    p = argparse.ArgumentParser()
    p.add_argument("--net", default="simple")
    p.add_argument("--layers", help="JSON file with a list of layer specs")
    p.add_argument("--dtype", default="float32")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args()
    import torch
    torch.set_num_threads(a.threads)
    if a.layers:
        with open(a.layers) as f:
            spec = json.load(f)
        print(json.dumps({"layers": layer_ms(spec, a.dtype, a.repeat), "torch": torch.__version__}))
    else:
        print(json.dumps({"median_ms": step_ms(a.net, a.dtype, a.batch, a.repeat), "torch": torch.__version__,
                          "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
