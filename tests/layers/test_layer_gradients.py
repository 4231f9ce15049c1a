"""Every layer's backward against central differences in float64, on every backend."""
import numpy as np
import pytest

from fastdl.layers import (Affine, BatchNormalization, Convolution, Dropout, Elementwise, Pooling,
                           Relu, Sigmoid, SoftmaxWithLoss)
from tests.helpers import num_grad


def check_layer(layer, x, params=(), forward_kw=None, rtol=1e-6, atol=1e-8, seed=None):
    """f(x) = sum(forward(x) * dout); compare backward's dx and d<param> with central differences."""
    forward_kw = forward_kw or {}
    rng = np.random.default_rng(0)

    def fwd():
        if seed is not None:
            np.random.seed(seed)       # same dropout mask every evaluation
        return layer.forward(x, **forward_kw)

    out = fwd()
    dout = rng.standard_normal(out.shape)
    f = lambda: float(np.sum(fwd() * dout))
    gx = num_grad(f, x)
    fwd()
    dout_copy = dout.copy()
    dx = layer.backward(dout)
    np.testing.assert_array_equal(dout, dout_copy)        # backward never mutates dout
    np.testing.assert_allclose(dx, gx, rtol=rtol, atol=atol)
    for arr_name, grad_name in params:
        arr = getattr(layer, arr_name)
        g = num_grad(f, arr)
        fwd()
        layer.backward(dout)
        np.testing.assert_allclose(getattr(layer, grad_name), g, rtol=rtol, atol=atol,
                                   err_msg=grad_name)


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


def test_dropout_backward(backend_name, rng):
    check_layer(Dropout(0.4), rng.standard_normal((4, 6)), seed=3)


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


@pytest.mark.parametrize("shape", [(5, 4), (4, 2, 2, 3)])
def test_batchnorm_backward(shape, backend_name, rng):
    D = int(np.prod(shape[1:]))
    layer = BatchNormalization(rng.uniform(0.5, 1.5, D), rng.standard_normal(D))
    check_layer(layer, rng.standard_normal(shape), [("gamma", "dgamma"), ("beta", "dbeta")],
                rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("label_form", ["index", "column", "onehot"])
def test_softmax_with_loss_backward(label_form, backend_name, rng):
    x = rng.standard_normal((4, 5))
    t = np.array([0, 3, 4, 1])
    tt = {"index": t, "column": t[:, None], "onehot": np.eye(5)[t]}[label_form]
    layer = SoftmaxWithLoss()
    g = num_grad(lambda: float(layer.forward(x, tt)), x)
    layer.forward(x, tt)
    # the 1e-7 inside the log (the book's) moves the true gradient by about 1e-7 / y
    np.testing.assert_allclose(layer.backward(), g, rtol=1e-4, atol=1e-7)
    y = np.exp(x) / np.exp(x).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(layer.backward(2.0), 2 * (y - np.eye(5)[t]) / 4, rtol=1e-12)
