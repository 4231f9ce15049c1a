"""NaN, infinity and empty inputs on the cuda backend: NaN/±Inf land where the reference puts them
(the rule every backend follows), on tiny shapes for the simulator."""
import numpy as np
import pytest

from fastdl import backend

REF = backend.ops("numpy")
CU = backend.ops("cuda")


def same(got, want):
    got, want = np.asarray(CU.to_host(got)), np.asarray(want)
    assert got.shape == want.shape
    for mask in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(mask(got), mask(want), err_msg=mask.__name__)
    f = np.isfinite(want)
    np.testing.assert_allclose(got[f], want[f], rtol=1e-4, atol=1e-5)


def spoil(a, where, value):
    a = a.copy()
    a.flat[where] = value
    return a


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_affine_bias_gradient_and_softmax(value, dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 5)).astype(dtype)
    W = rng.standard_normal((5, 3)).astype(dtype)
    dout = spoil(rng.standard_normal((4, 3)).astype(dtype), 0, value)     # the first element
    for g, r in zip(CU.affine_backward(dout, x, W), REF.affine_backward(dout, x, W)):
        same(g, r)
    xs = spoil(x, 7, value)
    with np.errstate(all="ignore"):
        same(CU.softmax(xs), REF.softmax(xs))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_batchnorm_with_a_non_finite_first_row(value, dtype):
    rng = np.random.default_rng(1)
    x = spoil(rng.standard_normal((5, 4)).astype(dtype), 0, value)
    g, b = np.ones(4, dtype), np.zeros(4, dtype)
    rm, rv = np.zeros(4, dtype), np.ones(4, dtype)
    drm, drv = CU.to_device(rm.copy()), CU.to_device(rv.copy())
    with np.errstate(all="ignore"):
        want, rctx = REF.batchnorm_forward(x, g, b, rm, rv, 0.9, 1e-6, True)
        out, ctx = CU.batchnorm_forward(x, g, b, drm, drv, 0.9, 1e-6, True)
        same(out, want)
        same(drm, rm)
        same(drv, rv)
        dout = spoil(np.ones((5, 4), dtype), 0, value)
        for a, r in zip(CU.batchnorm_backward(dout, ctx), REF.batchnorm_backward(dout, rctx)):
            same(a, r)


def test_affine_of_an_empty_batch(dtype):
    x = np.zeros((0, 3), dtype)
    W = np.ones((3, 2), dtype)
    b = np.zeros(2, dtype)
    assert CU.to_host(CU.affine_forward(x, W, b)).shape == (0, 2)
    dx, dW, db = CU.affine_backward(np.zeros((0, 2), dtype), x, W)
    same(dW, np.zeros((3, 2), dtype))
    same(db, np.zeros(2, dtype))


@pytest.mark.parametrize("dout", [np.inf, -np.inf, np.nan])
def test_softmax_loss_backward_with_a_non_finite_dout(dout, dtype):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4)).astype(dtype)
    t = np.array([0, 3, 1])
    _, y = REF.softmax_loss_forward(x, t)
    with np.errstate(all="ignore"):
        same(CU.softmax_loss_backward(y, t, dout), REF.softmax_loss_backward(y, t, dout))
