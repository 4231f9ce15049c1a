"""Bad input gets an error that names the argument, what was expected and what was received."""
import warnings

import numpy as np
import pytest

from fastdl import functions as F
from fastdl.layers import (Affine, BatchNormalization, Convolution, Pooling, Relu, SoftmaxWithLoss)
from fastdl.nets import SimpleConvNet
from fastdl.util import col2im, im2col


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


def test_wrong_rank_and_dtype():
    with pytest.raises(ValueError, match=r"x must be 4-D, got 2-D array of shape \(3, 4\)"):
        Convolution(np.zeros((1, 1, 2, 2)), np.zeros(1)).forward(np.zeros((3, 4)))
    with pytest.raises(TypeError, match="x must hold real numbers .* got complex numbers"):
        Relu().forward(np.arange(3) * 1j)
    with pytest.raises(TypeError, match="input_data must hold real numbers .* got dtype <U1"):
        im2col(np.full((1, 1, 3, 3), "a"), 2, 2)
    with pytest.raises(ValueError, match=r"col must have shape \(4, 4\)"):
        col2im(np.zeros((3, 4)), (1, 1, 3, 3), 2, 2)
    with pytest.raises(ValueError, match=r"b must have shape \(3,\) to match W \(2, 3\) \(or be a scalar\)"):
        Affine(np.zeros((2, 3)), np.zeros(2))
    with pytest.raises(TypeError, match="b must hold real numbers"):
        Affine(np.zeros((2, 3)), np.array(["a", "b", "c"]))


def test_affine_feature_mismatch():
    with pytest.raises(ValueError, match=r"x of shape \(2, 5\) has 5 features.*W of shape \(4, 3\) expects 4"):
        Affine(np.zeros((4, 3)), np.zeros(3)).forward(np.zeros((2, 5)))


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


def test_backward_before_forward_and_wrong_dout_shape():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        Relu().backward(np.zeros(3))
    a = Affine(np.zeros((2, 3)), np.zeros(3))
    a.forward(np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"dout must have the forward output's shape \(4, 3\), got \(4, 2\)"):
        a.backward(np.zeros((4, 2)))


def test_batchnorm_feature_mismatch_and_caller_arrays_untouched():
    rm = np.zeros(3)
    bn = BatchNormalization(np.ones(3), np.zeros(3), running_mean=rm, running_var=np.ones(3))
    bn.forward(np.random.default_rng(0).standard_normal((4, 3)) + 5)
    np.testing.assert_array_equal(rm, 0)
    with pytest.raises(ValueError, match=r"has 4 features per sample but gamma has shape \(3,\)"):
        bn.forward(np.zeros((2, 4)))


def test_no_layer_mutates_its_inputs(backend_name):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2, 6, 6))
    layers = [Convolution(rng.standard_normal((3, 2, 3, 3)), np.zeros(3), 1, 1), Relu(), Pooling(2, 2, 2, 1)]
    for layer in layers:
        xc = x.copy()
        out = layer.forward(x)
        np.testing.assert_array_equal(x, xc)
        d = rng.standard_normal(out.shape)
        dc = d.copy()
        layer.backward(d)
        np.testing.assert_array_equal(d, dc)
        x = out
