"""Dropout: the backward against central differences."""
from fastdl.layers import Dropout
from tests.layers.conftest import check_layer


def test_dropout_backward(backend_name, rng):
    check_layer(Dropout(0.4), rng.standard_normal((4, 6)), seed=3)
