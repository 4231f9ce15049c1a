"""SoftmaxWithLoss: labels, NaN in the scores, the backward against central differences for every label form."""
import warnings

import numpy as np
import pytest

from fastdl import functions as F
from fastdl.layers import SoftmaxWithLoss
from fastdl.nets import SimpleConvNet
from tests.helpers import num_grad


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


def test_labels_that_do_not_match_the_batch():
    with pytest.raises(ValueError, match=r"labels t must have shape \(3,\).*got shape \(2,\)"):
        SoftmaxWithLoss().forward(np.zeros((3, 4)), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"must lie in \[0, 3\]"):
        SoftmaxWithLoss().forward(np.zeros((2, 4)), np.array([0, 4]))
    with pytest.raises(ValueError, match="one-hot"):
        SoftmaxWithLoss().forward(np.zeros((2, 3)), np.array([[0.5, 0.5, 0], [0, 1, 0]]))
    with pytest.raises(ValueError, match=r"must hold 3 labels"):
        SimpleConvNet().accuracy(np.zeros((3, 1, 28, 28)), np.zeros(2))


def test_nan_in_the_scores_flows_with_one_warning():
    """NaN reaching the loss is a result, as in NumPy (the book's Figure 6-19 diverges on purpose)."""
    layer = SoftmaxWithLoss()
    with pytest.warns(RuntimeWarning, match="the loss is nan.*learning rate"):
        assert np.isnan(layer.forward(np.array([[0.0, np.nan]]), np.array([0])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # once per layer: no second warning
        assert np.isnan(layer.forward(np.array([[np.inf, 0.0]]), np.array([0])))
    assert np.isnan(F.cross_entropy_error(np.array([[0.5, np.nan]]), np.array([1])))
