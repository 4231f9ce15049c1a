"""Building blocks for timing fastdl: the book's networks on synthetic-shaped batches,
one training step (gradient + Adam update), and a median timer.

Used by ``benchmarks/`` and the command line; imports nothing heavy.

A training step's time depends on what ran before it in the same process: another backend's
BLAS threads still spinning, its heap left grown, its caches warm. :func:`step_ms_child` times
one backend's step in a fresh Python process and :func:`step_ms_rounds` alternates backends over
such processes; ``fastdl compare`` and ``benchmarks/scripts/step_time.py`` both use them.
"""
import json
import subprocess
import sys
import time

import numpy as np

from .layers import run_forward
from .nets import DeepConvNet, SimpleConvNet
from .optimizers import Adam
# the machine's BLAS and Numba threads (fastdl._machine; here for the scripts that import them)
from ._machine import blas_line, threads_line  # noqa: F401

NETS = {"simple": SimpleConvNet, "deep": DeepConvNet}


def build(net="simple", dtype=np.float32, batch_size=100, seed=0):
    """(net, x, t, optimizer) for one training step on a batch of 1x28x28 images.

    Inputs are uniform in [0, 1) like normalised MNIST; labels are random classes.
    """
    rng = np.random.default_rng(seed)
    np.random.seed(seed)
    model = NETS[net](dtype=dtype)
    x = rng.random((batch_size, 1, 28, 28)).astype(dtype)
    t = rng.integers(0, 10, size=batch_size)
    return model, x, t, Adam(lr=0.001)


def train_step(model, opt, x, t):
    """One step of the book's training loop: backprop, then update the parameters in place."""
    grads = model.gradient(x, t)
    opt.update(model.params, grads)


def warm_up(fn, calls=2):
    """Call ``fn`` before timing it, so that only compiled kernels are timed: one call (which
    queues the kernels it needs; under ``FASTDL_COMPILE=background`` it runs on the reference
    while they compile), then :func:`fastdl.backend.wait_for_kernels`, then ``calls - 1`` more
    calls, at least one. ``calls=0`` calls nothing (cold timing)."""
    from . import backend
    if calls <= 0:
        return
    fn()
    backend.wait_for_kernels()
    for _ in range(max(int(calls) - 1, 1)):
        fn()


def median_time(fn, repeat=20, warmup=2, min_time=0.0):
    """Median wall time of fn() in seconds over ``repeat`` calls after warming up with
    :func:`warm_up` (``warmup`` calls, at least 2 when not 0, waiting for background compiles
    after the first) (more calls if the total is under min_time). Returns (median, all times)."""
    warm_up(fn, warmup)
    times: list = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


class StepTimingError(RuntimeError):
    """A child process timing a training step failed or printed no result (one-line message)."""


#: the child's program: argv is net, backend, dtype, batch, repeat
_CHILD = "import sys; from fastdl.bench import _child_main; sys.exit(_child_main(sys.argv[1:]))"


def step_ms_here(net, backend_name, dtype, batch=100, repeat=20):
    """(median ms, [ms of each timed step]) of ``repeat`` training steps in this process, after two
    warm-up steps (compiling; the second after background compiles are done, see :func:`warm_up`). Run it in a fresh process: :func:`step_ms_child` does."""
    from . import backend
    model, x, t, opt = build(net, dtype, int(batch))
    with backend.using_backend(backend_name):
        med, times = median_time(lambda: train_step(model, opt, x, t), repeat=int(repeat), warmup=2)
    return med * 1e3, [v * 1e3 for v in times]


def _child_main(argv):
    """The child of :func:`step_ms_child`: prints one JSON line {"median_ms": ..., "times_ms": [...]}."""
    med, times = step_ms_here(*argv)
    print(json.dumps({"median_ms": med, "times_ms": times}))
    return 0


def _last_line(text):
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def step_ms_child(net, backend_name, dtype, batch=100, repeat=20, timeout=3600.0):
    """Median milliseconds of one training step (gradient + Adam) of ``net`` on ``backend_name``,
    timed in a fresh Python process (this interpreter, this environment), after two warm-up steps.
    Returns (median_ms, times_ms). Raises StepTimingError with one line if the child fails."""
    what = f"timing the {net} {backend_name} {dtype} training step in a child process"
    cmd = [sys.executable, "-c", _CHILD, str(net), str(backend_name), str(np.dtype(dtype)), str(int(batch)),
           str(int(repeat))]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise StepTimingError(f"{what}: no result within {timeout:g} s; try a smaller --repeat or "
                              f"--batch-size") from None
    if r.returncode:
        raise StepTimingError(f"{what} failed (exit status {r.returncode}): {_last_line(r.stderr)}")
    try:
        res = json.loads(_last_line(r.stdout))
        return float(res["median_ms"]), [float(v) for v in res["times_ms"]]
    except (ValueError, KeyError, TypeError):
        raise StepTimingError(f"{what}: unreadable result {_last_line(r.stdout)!r}") from None


def step_ms_rounds(net, backends, dtype, batch=100, repeat=20, rounds=2, progress=None, timeout=3600.0):
    """Each backend's training step timed in its own fresh process, ``rounds`` times, the
    backends alternating (A B A B ...), so that a change in the machine's load during the run
    falls on every backend alike. ``progress(msg)``, if given, is called before each child.
    Returns {backend: {"median_ms": median of all timed steps, "round_ms": each round's median}}."""
    if isinstance(rounds, bool) or not isinstance(rounds, (int, np.integer)) or rounds < 1:
        raise ValueError(f"step_ms_rounds: rounds must be a whole number >= 1, got {rounds!r}")
    times: dict = {b: [] for b in backends}
    round_ms: dict = {b: [] for b in backends}
    for k in range(int(rounds)):
        for b in backends:
            if progress is not None:
                progress(f"{b} (own process, round {k + 1}/{rounds})")
            med, ts = step_ms_child(net, b, dtype, batch, repeat, timeout)
            round_ms[b].append(med)
            times[b] += ts
    return {b: {"median_ms": float(np.median(times[b])), "round_ms": round_ms[b]} for b in backends}


def step_flops(net="simple", batch_size=100):
    """Approximate floating-point operations of one training step (2 per multiply-add):
    forward, dW and dx for every layer but the first, whose dx is skipped."""
    model = NETS[net]()
    x = np.zeros((1, 1, 28, 28))
    total = 0
    layers = model._layer_list()
    for i, layer in enumerate(layers):
        y = run_forward(layer, x, False)
        W = getattr(layer, "W", None)
        if W is not None:
            if W.ndim == 4:
                macs = y.shape[2] * y.shape[3] * W.size
            else:
                macs = W.size
            total += 2 * macs * (2 if i == 0 else 3)
        x = y
    return total * batch_size
