"""Shared set-up for the asv suites: shapes, inputs, thread pinning, backend selection.

asv runs setup before every sample, so inputs are built once per process and cached here.
"""
import functools
import os

import numpy as np

# Pin thread counts before the numba backend loads: stable numbers on a shared machine.
THREADS = int(os.environ.get("FASTDL_BENCH_THREADS", "2"))
os.environ.setdefault("NUMBA_NUM_THREADS", str(THREADS))

import fastdl  # noqa: E402
from fastdl import backend  # noqa: E402

try:   # NumPy's BLAS (the reference's products) gets THREADS threads; SciPy's stays as the
    # numba backend sets it (one thread, since Numba calls it from its parallel loops)
    from threadpoolctl import ThreadpoolController

    from fastdl.kernels.cpu._threads import _scipy_blas_paths
    _scipy = _scipy_blas_paths()
    for _lib in ThreadpoolController().lib_controllers:
        if _lib.user_api == "blas" and not any(os.path.realpath(_lib.filepath).startswith(r) for r in _scipy):
            _lib.set_num_threads(THREADS)
except ImportError:
    pass

BACKENDS = ["numpy", "numba", "cuda"]
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


def ops_or_skip(name):
    """The backend's kernel module, pinned threads; NotImplementedError (asv: skipped) if unavailable."""
    try:
        ops = backend.ops(name)
    except fastdl.BackendError as exc:
        raise NotImplementedError(str(exc)) from None
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
