"""Backend ``"numba"``: compiled CPU kernels for the ops of ``fastdl.kernels.spec``.

The modules by responsibility: ``columns`` (im2col/col2im), ``conv`` (the convolution
ops; stride != 1 through columns), ``conv_s1`` with ``_extrows`` (the stride-1 engine the
convolution and the fused blocks share), ``fused`` (Convolution -> Relu [-> Pooling]),
``pool``, ``activations``, ``affine``, ``loss``, ``batchnorm``, ``optim``; ``_arrays``,
``_chunks``, ``_threads``, ``_blas`` and ``_vexp`` are the shared plumbing. Each op module's
``__all__`` lists its ops; the device-placement ops are the host composites.
``_map`` builds the element-wise kernels (serial and parallel drivers) from one scalar function.
``_compile`` decides when the compiled kernels compile (``FASTDL_COMPILE``: background, lazy, eager).

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
from ._threads import keep_freed_memory, start_threads

start_threads()
keep_freed_memory()

# each module's __all__ lists the ops it has kernels for, so a new kernel is added in its module only
from .columns import *  # noqa: E402,F401,F403
from .conv import *  # noqa: E402,F401,F403
from .pool import *  # noqa: E402,F401,F403
from .fused import *  # noqa: E402,F401,F403
from .activations import *  # noqa: E402,F401,F403
from .affine import *  # noqa: E402,F401,F403
from .loss import *  # noqa: E402,F401,F403
from .batchnorm import *  # noqa: E402,F401,F403
from .optim import *  # noqa: E402,F401,F403

NAME = "numba"

from .. import complete as _complete  # noqa: E402

_complete(__name__)      # the ops without a kernel here (device placement) from their composites

from . import _compile  # noqa: E402
from ..spec import TABLE as _TABLE  # noqa: E402

_compile.install(globals(), [_op.name for _op in _TABLE])   # FASTDL_COMPILE (see _compile)
if _compile.mode() == "eager":
    _compile.warm()


def compiled_kernels():
    """``module.name`` -> dispatcher of every @njit kernel of this backend, under the module that
    defines it (for tests and benchmarks)."""
    from numba.core.registry import CPUDispatcher
    from . import _extrows, activations, affine, batchnorm, columns, conv, conv_s1, fused, loss, optim, pool
    out = {}
    for mod in (columns, conv, conv_s1, _extrows, fused, pool, activations, affine, loss, batchnorm, optim):
        for name, obj in vars(mod).items():
            if isinstance(obj, CPUDispatcher) and obj.py_func.__module__ == mod.__name__:
                out[f"{mod.__name__.rsplit('.', 1)[-1]}.{name}"] = obj
    return out
