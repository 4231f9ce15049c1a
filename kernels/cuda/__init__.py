"""Backend ``"cuda"``: numba.cuda kernels with the op list of ``fastdl.kernels.spec``.

Imported only when the ``"cuda"`` backend is asked for (``import fastdl`` never touches CUDA).
Needs an NVIDIA GPU with its driver and Numba's CUDA target (``python -m pip install numba-cuda``,
or ``python -m pip install -e ".[cuda]"`` in the clone); for testing without a GPU, set
``NUMBA_ENABLE_CUDASIM=1`` before Numba is imported to run the kernels on Numba's CUDA simulator
(slow: tiny shapes only).

Ops accept host (NumPy) or device arrays and return device arrays; the loss of
``softmax_loss_forward`` comes back as a host scalar. The fused conv ops are the composite
definitions over this backend's own conv, relu and pool (``fastdl.kernels.composite``). Launch constants live in ``launch``.
"""
from numba import cuda


def check_available():
    """Raise ImportError saying what is missing when neither a GPU nor the simulator is usable."""
    if not cuda.is_available():
        raise ImportError(
            "no usable CUDA GPU: numba.cuda.is_available() is False (an NVIDIA GPU, its driver and "
            "Numba's CUDA target are needed: python -m pip install numba-cuda). To test without a GPU, "
            "set NUMBA_ENABLE_CUDASIM=1 before Numba is imported to use Numba's CUDA simulator")


check_available()

# each module's __all__ lists the ops it has kernels for, so a new kernel is added in its module only
from .arrays import *  # noqa: E402,F401,F403
from .conv import *  # noqa: E402,F401,F403
from .pool import *  # noqa: E402,F401,F403
from .activations import *  # noqa: E402,F401,F403
from .affine import *  # noqa: E402,F401,F403
from .loss import *  # noqa: E402,F401,F403
from .batchnorm import *  # noqa: E402,F401,F403
from .optim import *  # noqa: E402,F401,F403

NAME = "cuda"

from .. import complete as _complete  # noqa: E402

_complete(__name__)      # the fused conv ops, scale and all_finite from their composites


def simulator():
    """True when the kernels run on Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    import numba
    return bool(numba.config.ENABLE_CUDASIM)
