"""Backend ``"numpy"``: the book's algorithms in vectorised NumPy, the oracle for every other backend.

The fused conv ops and the device-placement ops are the composite definitions
(``fastdl.kernels.composite``), filled in by ``complete`` below.
"""
from .. import complete as _complete
from .conv import im2col, col2im, conv_forward, conv_backward
from .pool import pool_forward, pool_backward
from .activations import relu_forward, relu_backward, sigmoid_forward, sigmoid_backward, dropout_apply
from .affine import affine_forward, affine_backward
from .loss import softmax, softmax_loss_forward, softmax_loss_backward
from .batchnorm import batchnorm_forward, batchnorm_backward
from .optim import (sgd_update, momentum_update, nesterov_update, adagrad_update,
                    rmsprop_update, adam_update)

NAME = "numpy"

_complete(__name__)
