"""Building blocks for timing fastdl: the book's networks on synthetic-shaped batches,
one training step (gradient + Adam update), and a median timer.

Used by ``benchmarks/`` and the command line; imports nothing heavy.
"""
import time

import numpy as np

from .layers import run_forward
from .nets import DeepConvNet, SimpleConvNet
from .optimizers import Adam

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


def median_time(fn, repeat=20, warmup=2, min_time=0.0):
    """Median wall time of fn() in seconds over ``repeat`` calls after ``warmup`` calls
    (more calls if the total is under min_time). Returns (median, all times)."""
    for _ in range(warmup):
        fn()
    times: list = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


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


def blas_line(threads=True):
    """Which BLAS kernels run: OpenBLAS picks them by CPU unless OPENBLAS_CORETYPE forces a type
    (some machines set it, e.g. to Haswell, which halves float32 GEMM speed on AVX-512 CPUs).
    With ``threads``, a second line: Numba's threads (``threads_line``)."""
    import os

    from threadpoolctl import threadpool_info
    libs = [f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture')}, "
            f"{os.path.basename(i.get('filepath', ''))})" for i in threadpool_info() if i.get("user_api") == "blas"]
    forced = {k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ}
    line = "BLAS: " + "; ".join(libs) + (f"; forced by the environment: {forced}" if forced else "")
    return line + "\n" + threads_line() if threads else line


def threads_line():
    """Numba's threads as the numba backend runs them: how many, the threading layer, whether a
    fork is safe, what idle threads do. Loads the backend first, so that fastdl (not a
    benchmark's own ``numba.get_num_threads()``) starts Numba's threads."""
    from . import backend
    try:
        backend.ops("numba")
    except backend.BackendError as exc:
        return f"Numba: {exc}"
    from .kernels.cpu import _threads
    return str(_threads.summary())
