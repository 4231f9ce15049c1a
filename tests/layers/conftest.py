"""Shared by the tests of the layers: scenarios that run a layer (or a function) on given x, dout and
weights and return what it computed, for comparing a backend's results with the reference's; the
numerical-gradient check of a layer's backward."""
import warnings

import numpy as np

from fastdl import functions as F
from fastdl.layers import Affine, BatchNormalization, Dropout, Elementwise, Relu, Sigmoid, SoftmaxWithLoss
from tests.helpers import num_grad


def scenario_weights(dtype, D, M):
    r = np.random.default_rng(7)
    return {"W": (r.standard_normal((D, M)) * 0.3).astype(dtype), "b": r.standard_normal(M).astype(dtype),
            "gamma": r.uniform(0.5, 1.5, D).astype(dtype), "beta": r.standard_normal(D).astype(dtype),
            "mean": r.standard_normal(D).astype(dtype), "var": r.uniform(0.5, 2.0, D).astype(dtype)}


def _labels(x):
    x = np.asarray(x)
    return np.arange(x.shape[0]) % x.shape[-1] if x.shape[-1] else np.zeros(x.shape[0], dtype=int)


def s_elementwise(cls):
    """The scenario of element-wise layer class ``cls`` (default parameters)."""
    def scenario(x, dout, w):
        layer = cls()
        out = layer.forward(x)
        return {"out": out, "dx": layer.backward(dout)}
    return scenario


def elementwise_layers():
    """Every Elementwise subclass, Relu and Sigmoid first (their cases' order)."""
    out, todo = [], [Elementwise]
    while todo:
        for sub in todo.pop(0).__subclasses__():
            if sub.forward_op and sub not in out:
                out.append(sub)
            todo.append(sub)
    assert out[:2] == [Relu, Sigmoid]
    return out


def s_affine(x, dout, w):
    layer = Affine(w["W"], w["b"])
    out = layer.forward(x)
    dx = layer.backward(dout)
    return {"out": out, "dx": dx, "dW": layer.dW, "db": layer.db}


def s_softmax_with_loss(x, dout, w):
    layer = SoftmaxWithLoss()
    t = _labels(x)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loss = layer.forward(x, t)
        again = layer.forward(x, t)             # a second non-finite loss: no second warning
        dx = layer.backward(dout)
    n = sum("SoftmaxWithLoss: the loss is" in str(c.message) for c in caught)
    assert n == (0 if np.isfinite(loss) and np.isfinite(again) else 1)
    return {"loss": loss, "y": layer.y, "dx": dx, "warnings": np.int64(n)}


def s_dropout(x, dout, w):
    np.random.seed(5)                           # the mask comes from NumPy's global RNG
    layer = Dropout(0.3)
    out = layer.forward(x, True)
    dx = layer.backward(dout)
    return {"out": out, "mask": layer.mask, "dx": dx, "eval": layer.forward(x, False)}


def s_batchnorm_train(x, dout, w):
    layer = BatchNormalization(w["gamma"], w["beta"])
    out = layer.forward(x, True)
    dx = layer.backward(dout)
    return {"out": out, "dx": dx, "dgamma": layer.dgamma, "dbeta": layer.dbeta,
            "running_mean": layer.running_mean, "running_var": layer.running_var}


def s_batchnorm_eval(x, dout, w):
    layer = BatchNormalization(w["gamma"], w["beta"], running_mean=w["mean"], running_var=w["var"])
    return {"out": layer.forward(x, False)}


def s_f_sigmoid(x, dout, w):
    return {"out": F.sigmoid(x)}


def s_f_relu(x, dout, w):
    return {"out": F.relu(x)}


def s_f_softmax(x, dout, w):
    return {"out": F.softmax(x)}


def s_f_cross_entropy_error(x, dout, w):
    return {"out": F.cross_entropy_error(np.abs(np.asarray(x)), _labels(x))}


def s_f_softmax_loss(x, dout, w):
    return {"out": F.softmax_loss(x, _labels(x))}


#: name -> (scenario, dout kind): "x" (x's shape), "affine" ((N, M)), "scalar", None (no backward)
SCENARIOS = {
    **{cls.__name__: (s_elementwise(cls), "x") for cls in elementwise_layers()},
    "Affine": (s_affine, "affine"),
    "SoftmaxWithLoss": (s_softmax_with_loss, "scalar"),
    "Dropout": (s_dropout, "x"),
    "BatchNorm-train": (s_batchnorm_train, "x"),
    "BatchNorm-eval": (s_batchnorm_eval, None),
    "sigmoid": (s_f_sigmoid, None),
    "relu": (s_f_relu, None),
    "softmax": (s_f_softmax, None),
    "cross_entropy_error": (s_f_cross_entropy_error, None),
    "softmax_loss": (s_f_softmax_loss, None),
}


M_OUT = 32      # Affine's outputs
def scenario_inputs(dtype, N, D, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, D)).astype(dtype)
    d = rng.standard_normal((N, D)).astype(dtype)
    return x, d


def scenario_dout(kind, d):
    if kind == "affine":
        return np.ascontiguousarray(d[:, :min(M_OUT, d.shape[1])])
    if kind == "scalar":
        return 1.0
    return d


SMALL = (6, 8)          # below NUMPY_BELOW: the one-operation ops are NumPy's own expression
MEDIUM = (40, 64)       # above NUMPY_BELOW, below every MIN_PARALLEL: both paths forced
LARGE_D = 256


def thresholds():
    from fastdl.kernels.cpu import activations, affine, batchnorm, loss
    return activations, affine, batchnorm, loss


def large_rows():
    A, _, B, L = thresholds()
    return max(A.MIN_PARALLEL, B.MIN_PARALLEL, L.MIN_PARALLEL, L.MIN_PARALLEL_BACKWARD) // LARGE_D + 1


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
