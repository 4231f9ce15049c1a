"""The reference backend against plain-loop definitions (and, through the backend_name
fixture, every other backend against the same loops)."""
import numpy as np
import pytest

from fastdl import backend
from fastdl.util import col2im, conv_output_size, im2col
from tests.helpers import (layouts, loop_col2im, loop_conv, loop_im2col, loop_pool,
                           loop_pool_backward, strided, tol)

CASES = [  # N, C, H, W, fh, fw, stride, pad
    (2, 3, 5, 5, 3, 3, 1, 0),
    (1, 2, 7, 6, 3, 2, 2, 1),
    (3, 1, 6, 7, 2, 3, 3, 2),
    (2, 2, 4, 4, 4, 4, 1, 0),
    (1, 3, 5, 8, 1, 1, 2, 0),
    (2, 1, 9, 9, 5, 5, 2, 2),
]


@pytest.mark.parametrize("case", CASES)
def test_im2col_and_col2im_match_loops(case, dtype, backend_name, rng):
    N, C, H, W, fh, fw, s, p = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    want = loop_im2col(x, fh, fw, s, p)
    for kind, xv in layouts(x):
        before = xv.copy()
        col = im2col(xv, fh, fw, s, p)
        assert col.dtype == dtype, kind
        np.testing.assert_array_equal(col, want, err_msg=kind)
        np.testing.assert_array_equal(xv, before)
    c = rng.standard_normal(want.shape).astype(dtype)
    want_x = loop_col2im(c, x.shape, fh, fw, s, p)
    for kind, cv in layouts(c):
        got = col2im(cv, x.shape, fh, fw, s, p)
        assert got.dtype == dtype and got.shape == x.shape
        np.testing.assert_allclose(got, want_x, **tol(dtype), err_msg=kind)


@pytest.mark.parametrize("case", CASES)
def test_col2im_is_the_adjoint_of_im2col(case, rng):
    N, C, H, W, fh, fw, s, p = case
    x = rng.standard_normal((N, C, H, W))
    c = rng.standard_normal((N * conv_output_size(H, fh, s, p) * conv_output_size(W, fw, s, p), C * fh * fw))
    lhs = np.sum(im2col(x, fh, fw, s, p) * c)
    rhs = np.sum(x * col2im(c, x.shape, fh, fw, s, p))
    assert lhs == pytest.approx(rhs, rel=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_convolution_forward_matches_loops(case, dtype, backend_name, rng):
    N, C, H, W, fh, fw, s, p = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((4, C, fh, fw)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    want = loop_conv(x.astype(np.float64), Wt.astype(np.float64), b.astype(np.float64), s, p)
    for kind, xv in layouts(x):
        out, _ = backend.ops().conv_forward(xv, Wt, b, s, p)
        assert out.dtype == dtype
        np.testing.assert_allclose(out, want, rtol=1e-4 if dtype == np.float32 else 1e-11,
                                   atol=1e-4 if dtype == np.float32 else 1e-11, err_msg=kind)


POOL_CASES = [  # N, C, H, W, ph, pw, stride, pad
    (2, 3, 4, 4, 2, 2, 2, 0),
    (1, 2, 5, 5, 2, 2, 2, 0),
    (2, 2, 5, 7, 3, 3, 2, 1),
    (1, 3, 6, 6, 3, 2, 1, 1),
    (2, 1, 7, 5, 2, 3, 3, 1),
    (1, 1, 3, 3, 3, 3, 1, 2),
]


@pytest.mark.parametrize("case", POOL_CASES)
def test_max_pooling_matches_loops_and_padding_never_wins(case, dtype, backend_name, rng):
    N, C, H, W, ph, pw, s, p = case
    # all-negative inputs: zero padding (the book's) would win every border window
    x = -np.abs(rng.standard_normal((N, C, H, W))).astype(dtype) - 1
    want, win = loop_pool(x, ph, pw, s, p)
    for kind, xv in layouts(x):
        out, ctx = backend.ops().pool_forward(xv, ph, pw, s, p)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, want, err_msg=kind)
        dout = rng.standard_normal(out.shape).astype(dtype)
        dx = backend.ops().pool_backward(strided(dout) if kind != "contiguous" else dout, ctx)
        np.testing.assert_allclose(dx, loop_pool_backward(dout, win, x.shape), **tol(dtype), err_msg=kind)
    assert (want < 0).all()


def test_pooling_ties_go_to_the_first_maximum(backend_name):
    x = np.zeros((1, 1, 2, 2))
    out, ctx = backend.ops().pool_forward(x, 2, 2, 2, 0)
    dx = backend.ops().pool_backward(np.ones((1, 1, 1, 1)), ctx)
    np.testing.assert_array_equal(dx[0, 0], [[1, 0], [0, 0]])


def test_conv_output_size_is_an_int_and_validates():
    assert conv_output_size(28, 5) == 24 and isinstance(conv_output_size(28, 5), int)
    assert conv_output_size(7, 3, 2, 1) == 4
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv_output_size(3, 5, 1, 0)
    with pytest.raises(ValueError, match="stride"):
        conv_output_size(5, 3, 0, 0)
    with pytest.raises(TypeError):
        conv_output_size(5.0, 3)

