"""Affine: bad arguments and the backward against central differences (4-D input, parameters only)."""
import numpy as np
import pytest

from fastdl.layers import Affine
from tests.layers.conftest import check_layer


def test_affine_backward_including_4d_input(backend_name, rng):
    check_layer(Affine(rng.standard_normal((5, 3)), rng.standard_normal(3)), rng.standard_normal((4, 5)),
                [("W", "dW"), ("b", "db")])
    layer = Affine(rng.standard_normal((2 * 3 * 3, 4)), rng.standard_normal(4))
    check_layer(layer, rng.standard_normal((2, 2, 3, 3)), [("W", "dW"), ("b", "db")])


def test_affine_backward_params_skips_only_dx(backend_name, rng):
    """What a network's first Affine runs: dW and db exactly as backward computes them."""
    layer = Affine(rng.standard_normal((6, 3)), rng.standard_normal(3))
    x, dout = rng.standard_normal((4, 2, 3)), rng.standard_normal((4, 3))
    layer.forward(x)
    layer.backward(dout)
    dW, db = layer.dW.copy(), layer.db.copy()
    layer.dW = layer.db = None
    assert layer.backward_params(dout) is None
    np.testing.assert_array_equal(layer.dW, dW)
    np.testing.assert_array_equal(layer.db, db)


def test_affine_feature_mismatch():
    with pytest.raises(ValueError, match=r"x of shape \(2, 5\) has 5 features.*W of shape \(4, 3\) expects 4"):
        Affine(np.zeros((4, 3)), np.zeros(3)).forward(np.zeros((2, 5)))
