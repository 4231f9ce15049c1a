"""The element-wise activation layers (every Elementwise subclass: Relu, Sigmoid, Tanh, LeakyRelu, ...)."""
import numpy as np
import pytest

from fastdl.layers import Elementwise, Relu, Sigmoid
from tests.layers.conftest import check_layer


def _subclasses(cls):
    out = []
    for sub in cls.__subclasses__():
        out += [sub] + _subclasses(sub)
    return out


@pytest.mark.parametrize("cls", _subclasses(Elementwise), ids=lambda c: c.__name__)
@pytest.mark.parametrize("shape", [(3, 7), (2, 3, 5)])
def test_elementwise_backward(cls, shape, backend_name, rng):
    """Every element-wise layer (Relu, Sigmoid, and any added later)."""
    assert {Relu, Sigmoid} <= set(_subclasses(Elementwise))
    x = rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5       # keep away from a kink
    check_layer(cls(), x)
