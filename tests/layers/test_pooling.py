"""Pooling and its subclasses: the backward against central differences."""
import numpy as np
import pytest

from fastdl.layers import Pooling
from tests.layers.conftest import check_layer


def _pooling_classes(cls=Pooling):
    """Pooling and every subclass of it (AvgPooling, and any added later)."""
    out = [cls]
    for sub in cls.__subclasses__():
        out += _pooling_classes(sub)
    return out


@pytest.mark.parametrize("cls", _pooling_classes(), ids=lambda c: c.__name__)
@pytest.mark.parametrize("case", [(2, 2, 4, 4, 2, 2, 2, 0), (1, 2, 5, 7, 3, 3, 2, 1),
                                  (2, 1, 6, 5, 3, 2, 1, 1)])
def test_pooling_backward(case, cls, backend_name, rng):
    N, C, H, W, ph, pw, s, p = case
    # distinct values so no window has a tie (a tie makes the max non-differentiable)
    x = rng.permutation(N * C * H * W).reshape(N, C, H, W).astype(np.float64) * 0.1
    check_layer(cls(ph, pw, s, p), x)
