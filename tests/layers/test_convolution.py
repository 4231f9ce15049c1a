"""Convolution and im2col/col2im: bad arguments, the backward against central differences, non-finite values."""
import numpy as np
import pytest

from fastdl.layers import Convolution, Pooling
from fastdl.util import col2im, im2col
from tests.layers.conftest import check_layer
from tests.helpers import NUMBA_PATHS, REF_PATH, assert_same, laid_out, numba_vs_reference, run_path


@numba_vs_reference
def test_im2col_and_col2im_lightly():
    """NaN and Inf land in the same places, read-only and Fortran-order input give the same col."""
    x = np.random.default_rng(5).standard_normal((2, 3, 6, 6))
    x[0, 0, 0, 0], x[1, 2, 5, 5], x[1, 1, 3, 2] = np.nan, np.inf, -np.inf
    want = run_path(REF_PATH, lambda: {"col": im2col(x, 3, 3, 1, 1)})
    back = run_path(REF_PATH, lambda: {"x": col2im(want["col"], x.shape, 3, 3, 1, 1)})
    for path in NUMBA_PATHS:
        for layout in ("readonly", "fortran"):
            xv = laid_out(x, layout)
            got = run_path(path, lambda: {"col": im2col(xv, 3, 3, 1, 1)})
            assert_same(got, want, np.float64, f"im2col {layout} {path}")
        assert_same(run_path(path, lambda: {"x": col2im(want["col"], x.shape, 3, 3, 1, 1)}), back, np.float64,
                    f"col2im {path}")


def test_convolution_channel_mismatch_names_both_shapes():
    conv = Convolution(np.zeros((4, 3, 3, 3)), np.zeros(4))
    with pytest.raises(ValueError, match=r"x of shape \(2, 2, 5, 5\) has 2 channels.*\(4, 3, 3, 3\) expects 3"):
        conv.forward(np.zeros((2, 2, 5, 5)))


def test_window_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"filter 5x5 does not fit.*\(1, 1, 3, 3\)"):
        Convolution(np.zeros((1, 1, 5, 5)), np.zeros(1), pad=0).forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match=r"window 4x4 does not fit"):
        Pooling(4, 4).forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(ValueError, match="pad .2. must be smaller than the window"):
        Pooling(2, 2, pad=2)


CONV = [  # N, C, H, W, FN, fh, fw, stride, pad
    (2, 3, 5, 5, 2, 3, 3, 1, 0),
    (1, 2, 7, 6, 3, 3, 2, 2, 1),
    (2, 1, 6, 7, 2, 2, 3, 3, 2),
]


@pytest.mark.parametrize("case", CONV)
def test_convolution_backward(case, backend_name, rng):
    N, C, H, W, FN, fh, fw, s, p = case
    layer = Convolution(rng.standard_normal((FN, C, fh, fw)), rng.standard_normal(FN), s, p)
    check_layer(layer, rng.standard_normal((N, C, H, W)), [("W", "dW"), ("b", "db")])
