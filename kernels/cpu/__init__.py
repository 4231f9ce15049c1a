"""Backend ``"numba"``: compiled CPU kernels for the ops of ``fastdl.kernels.spec``.

The modules by responsibility: ``columns`` (im2col/col2im), ``conv`` (the convolution
ops; stride != 1 through columns), ``conv_s1`` with ``_extrows`` (the stride-1 engine the
convolution and the fused blocks share), ``fused`` (Convolution -> Relu [-> Pooling]),
``pool``, ``activations``, ``affine``, ``loss``, ``batchnorm``, ``optim``; ``_arrays``,
``_chunks``, ``_threads``, ``_blas`` and ``_vexp`` are the shared plumbing. Each op module's
``__all__`` lists its ops; the device-placement ops are the host composites.
``_map`` builds the element-wise kernels (serial and parallel drivers) from one scalar function.
``_compile`` decides when the compiled kernels compile (``FASTDL_COMPILE``: background, lazy, eager);
``_defer`` holds them back, in background mode, until the ops have spent ``FASTDL_LOAD_AFTER`` seconds.

Every op is a thin wrapper: it checks nothing the layers have not
checked, makes its inputs C-contiguous (``np.ascontiguousarray``, a no-op for
contiguous arrays; a copy for strided views, which bounds every compiled
kernel to one layout and two dtypes), allocates the outputs with the input's
dtype, and calls a private ``@njit(cache=True)`` kernel whose outputs come
first, then inputs, then integer sizes.

Threads: below a size measured per kernel (``MIN_PARALLEL`` in each module), a
kernel runs on the calling thread and enters no parallel region (``_chunks``);
above it, parallel kernels split their work into ``numba.get_num_threads()``
chunks with disjoint writes. Numba's threads run on its ``tbb`` threading layer where TBB
loads, else on OpenMP with the passive wait policy (``_threads.start_threads``): either way
idle threads sleep instead of spinning, so they do not take the core from the user's own
NumPy threads or from other processes. A process can fork after using them; under GNU
OpenMP, which is not fork-safe, a forked child runs every kernel on one thread.
Reductions (dW, db, batch-norm statistics) use one buffer per chunk and a final sum in
fixed order, so results do not depend on scheduling. Matrix products go through NumPy's OpenBLAS (``_blas``), set to
one thread while a kernel runs and restored after; the fallback products use
SciPy's BLAS through Numba's ``np.dot``, which choosing that fallback sets to one
thread (``_threads``; SciPy is not imported otherwise). Loading it also raises glibc's
mmap/trim thresholds so the large arrays of a training step are reused
instead of page-faulted in again every step (``FASTDL_KEEP_MALLOC=1`` skips it).
"""
import threading as _threading

from . import _compile, _defer
from ._threads import keep_freed_memory
from ..spec import TABLE as _TABLE

NAME = "numba"

_OP_NAMES = [_op.name for _op in _TABLE]
_load_lock = _threading.RLock()
_loaded = False
_loading = False


def load_kernels():
    """Import the compiled kernels (Numba, its threads, every op module) into this package, once.
    Under ``FASTDL_COMPILE=background`` this happens when the ops have spent
    ``_defer.load_after()`` seconds on the reference (see ``_defer``); the other policies,
    and anything that times kernels (``fastdl.backend.wait_for_kernels``), load at once."""
    global _loaded, _loading
    if _loaded:
        return
    with _load_lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            _compile.ensure_fresh()   # before any kernel loads from Numba's cache (see _compile)
            from ._threads import start_threads
            start_threads()
            # each module's __all__ lists the ops it has kernels for, so a new kernel is added in its module only
            from . import activations, affine, batchnorm, columns, conv, fused, loss, optim, pool
            g = globals()
            for name in _OP_NAMES:            # the deferred stand-ins go; the modules' ops come in
                if getattr(g.get(name), "deferred", False):
                    del g[name]
            for mod in (columns, conv, pool, fused, activations, affine, loss, batchnorm, optim):
                g.update({name: getattr(mod, name) for name in mod.__all__})
            from .. import complete
            complete(__name__)   # the ops without a kernel here (device placement) from their composites
            _compile.install(g, _OP_NAMES)   # FASTDL_COMPILE (see _compile)
            _loaded = True
        finally:
            _loading = False
    if _compile.mode() == "eager":
        _compile.warm()


keep_freed_memory()      # the reference's arrays too, while the kernels are deferred

if _defer.wanted():
    import importlib.util as _util
    if _util.find_spec("numba") is None:
        raise ImportError("No module named 'numba'")
    _defer.install(globals(), _OP_NAMES, load_kernels)
else:
    load_kernels()


def __getattr__(name):
    """``COMPOSITE_OPS`` (the ops filled in from their composites) is known once the kernels load."""
    if name == "COMPOSITE_OPS" and not _loading:
        load_kernels()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def compiled_kernels():
    """``module.name`` -> dispatcher of every @njit kernel of this backend, under the module that
    defines it (for tests and benchmarks)."""
    from numba.core.registry import CPUDispatcher
    _compile.ensure_fresh()
    from . import _extrows, activations, affine, batchnorm, columns, conv, conv_s1, fused, loss, optim, pool
    out = {}
    for mod in (columns, conv, conv_s1, _extrows, fused, pool, activations, affine, loss, batchnorm, optim):
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__:
                out[f"{mod.__name__.rsplit('.', 1)[-1]}.{name}"] = obj
    return out
