"""Shared set-up for the asv suites: shapes, inputs, thread pinning, backend selection.

asv runs setup before every sample, so inputs are built once per process and cached here.
"""
import functools
import os
import sys
import time

import numpy as np

# Pin thread counts before the numba backend loads: stable numbers on a shared machine.
THREADS = int(os.environ.get("FASTDL_BENCH_THREADS", "2"))
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))

import fastdl  # noqa: E402
from fastdl import backend  # noqa: E402

_PINNED = []


def _pin_blas():
    """NumPy's BLAS (the reference's products) gets THREADS threads; SciPy's stays as the numba
    backend sets it (one thread, since Numba calls it from its parallel loops). Run in the
    benchmark's own process, after its backend loads: asv forks each case from a parent that has
    imported these modules, and a parent that had started Numba's (or OpenMP's) threads would
    leave its children with a thread pool they cannot use."""
    if _PINNED:
        return
    _PINNED.append(True)
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    # SciPy (and its BLAS) is loaded by the numba backend only; a numpy case leaves it unloaded
    threads = sys.modules.get("fastdl.kernels.cpu._threads")
    scipy_paths = threads._scipy_blas_paths() if threads is not None else []
    for lib in ThreadpoolController().lib_controllers:
        if lib.user_api == "blas" and not any(os.path.realpath(lib.filepath).startswith(r)
                                              for r in scipy_paths):
            lib.set_num_threads(THREADS)


def _cuda_here():
    """The cuda backend is benchmarked on a machine with an NVIDIA driver, or when
    FASTDL_BENCH_CUDA=1 (e.g. on Numba's CUDA simulator); elsewhere its cases are not listed at
    all (each listed case costs asv a process, even one it skips)."""
    return os.environ.get("FASTDL_BENCH_CUDA") == "1" or os.path.exists("/proc/driver/nvidia/version")


BACKENDS = ["numpy", "numba"] + (["cuda"] if _cuda_here() else [])
DTYPES = ["float32", "float64"]

#: name -> (x shape, W shape, stride, pad): the book's networks' layer shapes and one large convolution
CONV_SHAPES = {
    "simple_conv1": ((100, 1, 28, 28), (30, 1, 5, 5), 1, 0),
    "deep_conv2": ((100, 16, 28, 28), (16, 16, 3, 3), 1, 1),
    "deep_conv4": ((100, 32, 14, 14), (32, 32, 3, 3), 1, 2),
    "deep_conv6": ((100, 64, 7, 7), (64, 64, 3, 3), 1, 1),
    "large": ((64, 64, 56, 56), (64, 64, 3, 3), 1, 1),
}
#: name -> (CONV_SHAPES key, pooled after the Relu): the Convolution -> Relu [-> Pooling] runs of the nets
BLOCK_SHAPES = {
    "simple_block1": ("simple_conv1", True),
    "deep_block2": ("deep_conv2", True),
    "deep_block4": ("deep_conv4", True),
    "deep_block6": ("deep_conv6", True),
    "deep_block6_no_pool": ("deep_conv6", False),
}
#: name -> (x shape, pool size, stride, pad)
POOL_SHAPES = {
    "simple_pool": ((100, 30, 24, 24), 2, 2, 0),
    "deep_pool1": ((100, 16, 28, 28), 2, 2, 0),
    "deep_pool3": ((100, 64, 8, 8), 2, 2, 0),
}
#: name -> (N, D, M)
AFFINE_SHAPES = {"simple_affine1": (100, 4320, 100), "deep_affine7": (100, 1024, 50)}


class Warmed:
    """Base of the benchmark classes: their ``setup`` warms every timed call up (:func:`warm`), so
    a single sample afterwards is representative -- which is all ``asv run --quick`` takes (it
    forces ``number=1, repeat=1, warmup_time=0``). asv's own warm-up is therefore off, and a
    full run takes 1 to 10 samples (at most 10 s of samples per case)."""
    warmup_time = 0.0
    min_run_count = 1
    repeat = (1, 10, 10.0)


_WARMED = set()


def warm(key, *calls, times=2, seconds=0.2, limit=20):
    """Call each of ``calls`` ``times`` times, and again until ``seconds`` have passed (at most
    ``limit`` rounds): the first calls compile (numba), allocate and start the thread pool, and the
    next ones (after ``fastdl.backend.wait_for_kernels``: no reference fallbacks while kernels
    compile in the background) settle caches and the allocator, as ``benchmarks/scripts/step_time.py`` does with its
    warm-up steps. Done once per process and ``key`` (asv re-runs ``setup`` before every sample)."""
    if key in _WARMED:
        return
    start = time.perf_counter()
    for i in range(limit):
        for call in calls:
            call()
        if i == 0:
            backend.wait_for_kernels()   # background compiles (FASTDL_COMPILE): time compiled kernels
        if i + 1 >= max(times, 2) and time.perf_counter() - start >= seconds:
            break
    _WARMED.add(key)


def ops_or_skip(name):
    """The backend's kernel module, pinned threads; NotImplementedError (asv: skipped) if unavailable."""
    try:
        ops = backend.ops(name)
    except fastdl.BackendError as exc:
        raise NotImplementedError(str(exc)) from None
    _pin_blas()
    if name == "numba":
        import numba
        numba.set_num_threads(min(THREADS, numba.config.NUMBA_NUM_THREADS))
    return ops


@functools.lru_cache(maxsize=None)
def array(shape, dtype, seed=0, kind="normal"):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shape) if kind == "normal" else rng.random(shape)
    a = a.astype(dtype)
    a.flags.writeable = False          # shared between benchmarks: nobody may change it
    return a
