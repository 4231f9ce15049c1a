"""Optimizer update rules as fused element-wise kernels, in place on device arrays (cuda backend),
each built from its scalar rule (``_map.update``, ``kernels/scalars.py``)."""
import numpy as np

from ..arrays import Array
from .. import scalars
from ..shapes import same_shapes
from ..spec import OPT_EPS
from ._map import update
from .arrays import is_device

#: this module's ops (the backend package imports exactly these)
__all__ = ["sgd_update", "momentum_update", "nesterov_update", "adagrad_update", "rmsprop_update", "adam_update"]


# Each rule's kernel (one thread per element, in place) from its scalar in ``kernels/scalars.py``,
# the numba backend's rules.
_sgd = update(scalars.sgd_rule, 0)
_momentum = update(scalars.momentum_rule, 1)
_nesterov = update(scalars.nesterov_rule, 1)
_adagrad = update(scalars.adagrad_rule, 1)
_rmsprop = update(scalars.rmsprop_rule, 1)
_adam = update(scalars.adam_rule, 2)


def _run(op, run, arrays, params):
    same_shapes(op, "param", arrays[0], *zip(_NAMES[op][1:], arrays[1:]))
    for a in arrays:
        if not is_device(a):
            raise TypeError("the cuda backend updates device arrays in place: move the network with "
                            "net.to('cuda') before creating the optimizer's state")
    dt = np.dtype(arrays[0].dtype).type
    run(arrays, [dt(s) for s in params])


#: the array arguments of each op, by name, as the errors name them
_NAMES = {"sgd_update": ("param", "grad"), "momentum_update": ("param", "grad", "v"),
          "nesterov_update": ("param", "grad", "v"), "adagrad_update": ("param", "grad", "h"),
          "rmsprop_update": ("param", "grad", "h"), "adam_update": ("param", "grad", "m", "v")}


def sgd_update(param, grad, lr):
    # type: (Array, Array, float) -> None
    _run("sgd_update", _sgd, (param, grad), (lr,))


def momentum_update(param, grad, v, lr, momentum):
    # type: (Array, Array, Array, float, float) -> None
    _run("momentum_update", _momentum, (param, grad, v), (lr, momentum))


def nesterov_update(param, grad, v, lr, momentum):
    # type: (Array, Array, Array, float, float) -> None
    _run("nesterov_update", _nesterov, (param, grad, v), (lr, momentum))


def adagrad_update(param, grad, h, lr):
    # type: (Array, Array, Array, float) -> None
    _run("adagrad_update", _adagrad, (param, grad, h), (lr, OPT_EPS))


def rmsprop_update(param, grad, h, lr, decay_rate):
    # type: (Array, Array, Array, float, float) -> None
    _run("rmsprop_update", _rmsprop, (param, grad, h), (lr, decay_rate, OPT_EPS))


def adam_update(param, grad, m, v, lr_t, beta1, beta2):
    # type: (Array, Array, Array, Array, float, float, float) -> None
    _run("adam_update", _adam, (param, grad, m, v), (lr_t, beta1, beta2, OPT_EPS))
