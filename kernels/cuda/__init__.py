"""Backend ``"cuda"``: numba.cuda kernels with the op list of ``fastdl.kernels.spec``.

Imported only when the ``"cuda"`` backend is asked for (``import fastdl`` never touches CUDA).
Needs an NVIDIA GPU with its driver and Numba's CUDA target (``pip install 'fastdl-book[cuda]'``
installs numba-cuda); for testing without a GPU, set ``NUMBA_ENABLE_CUDASIM=1`` before Numba is
imported to run the kernels on Numba's CUDA simulator (slow: tiny shapes only).

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
            "Numba's CUDA target are needed: pip install 'fastdl-book[cuda]'). To test without a GPU, "
            "set NUMBA_ENABLE_CUDASIM=1 before Numba is imported to use Numba's CUDA simulator")


check_available()

from .arrays import owns, to_device, to_host, zeros_like, astype  # noqa: E402
from .conv import im2col, col2im, conv_forward, conv_backward  # noqa: E402
from .pool import pool_forward, pool_backward  # noqa: E402
from .activations import (relu_forward, relu_backward, sigmoid_forward, sigmoid_backward,  # noqa: E402
                          dropout_apply)
from .affine import affine_forward, affine_backward  # noqa: E402
from .loss import softmax, softmax_loss_forward, softmax_loss_backward  # noqa: E402
from .batchnorm import batchnorm_forward, batchnorm_backward  # noqa: E402
from .optim import (sgd_update, momentum_update, nesterov_update, adagrad_update,  # noqa: E402
                    rmsprop_update, adam_update)

NAME = "cuda"

from .. import complete as _complete  # noqa: E402

_complete(__name__)      # the fused conv ops, scale and all_finite from their composites


def simulator():
    """True when the kernels run on Numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1)."""
    import numba
    return bool(numba.config.ENABLE_CUDASIM)
