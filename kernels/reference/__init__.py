"""Backend ``"numpy"``: the book's algorithms in vectorised NumPy, the oracle for every other backend."""
from .conv import im2col, col2im, conv_forward, conv_backward
from .pool import pool_forward, pool_backward
from .fused import (conv_relu_forward, conv_relu_backward, conv_relu_pool_forward,
                    conv_relu_pool_backward)
from .activations import relu_forward, relu_backward, sigmoid_forward, sigmoid_backward, dropout_apply
from .affine import affine_forward, affine_backward
from .loss import softmax, softmax_loss_forward, softmax_loss_backward
from .batchnorm import batchnorm_forward, batchnorm_backward
from .optim import (sgd_update, momentum_update, nesterov_update, adagrad_update,
                    rmsprop_update, adam_update)

NAME = "numpy"
