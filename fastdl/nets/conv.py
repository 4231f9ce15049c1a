"""Convolutional networks of chapters 7-8: SimpleConvNet and DeepConvNet."""
from collections import OrderedDict

import numpy as np

from ..kernels.shapes import window_output_hw
from ..layers import Affine, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss
from .base import Net, make_dtype

_SIMPLE_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


def _input_dim(input_dim):
    if len(input_dim) != 3:
        raise ValueError(f"input_dim must be (channels, height, width), got {input_dim!r}")
    return tuple(int(v) for v in input_dim)


class SimpleConvNet(Net):
    """conv - relu - pool(2x2, stride 2) - affine - relu - affine - softmax.

    The pooled size is computed exactly for any input (the book's formula
    assumes an even, square convolution output).
    """

    def __init__(self, input_dim=(1, 28, 28), conv_param=None, hidden_size=100, output_size=10,
                 weight_init_std=0.01, dtype=np.float64):
        conv_param = dict(_SIMPLE_CONV if conv_param is None else conv_param)
        self.dtype = make_dtype(dtype)
        C, H, W = _input_dim(input_dim)
        FN, FS = conv_param["filter_num"], conv_param["filter_size"]
        pad, stride = conv_param["pad"], conv_param["stride"]
        OH, OW = window_output_hw(H, W, FS, FS, stride, pad)
        PH, PW = window_output_hw(OH, OW, 2, 2, 2, 0)
        pool_output_size = FN * PH * PW
        r, dt = np.random.randn, self.dtype
        self.params = {
            "W1": (weight_init_std * r(FN, C, FS, FS)).astype(dt),
            "b1": np.zeros(FN, dtype=dt),
            "W2": (weight_init_std * r(pool_output_size, hidden_size)).astype(dt),
            "b2": np.zeros(hidden_size, dtype=dt),
            "W3": (weight_init_std * r(hidden_size, output_size)).astype(dt),
            "b3": np.zeros(output_size, dtype=dt),
        }
        p = self.params
        self.layers = OrderedDict()
        self.layers["Conv1"] = Convolution(p["W1"], p["b1"], stride, pad)
        self.layers["Relu1"] = Relu()
        self.layers["Pool1"] = Pooling(pool_h=2, pool_w=2, stride=2)
        self.layers["Affine1"] = Affine(p["W2"], p["b2"])
        self.layers["Relu2"] = Relu()
        self.layers["Affine2"] = Affine(p["W3"], p["b3"])
        self.last_layer = SoftmaxWithLoss()
        L = self.layers
        self._grad_of = {"W1": (L["Conv1"], "dW"), "b1": (L["Conv1"], "db"),
                         "W2": (L["Affine1"], "dW"), "b2": (L["Affine1"], "db"),
                         "W3": (L["Affine2"], "dW"), "b3": (L["Affine2"], "db")}

    def predict(self, x):
        return self._forward(x, False)

    def loss(self, x, t):
        return super().loss(x, t)


class DeepConvNet(Net):
    """conv-relu-conv-relu-pool x 3, then affine-relu-dropout-affine-dropout-softmax (ch. 8).

    He initialisation from each layer's fan-in. ``loss`` runs dropout in
    training mode, as in the book; ``accuracy`` and ``predict`` do not.
    """

    def __init__(self, input_dim=(1, 28, 28),
                 conv_param_1=None, conv_param_2=None, conv_param_3=None,
                 conv_param_4=None, conv_param_5=None, conv_param_6=None,
                 hidden_size=50, output_size=10, dtype=np.float64):
        defaults = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]
        given = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6]
        convs = [dict(c) if c is not None else {"filter_num": fn, "filter_size": 3, "pad": pd, "stride": 1}
                 for c, (fn, pd) in zip(given, defaults)]
        self.dtype = make_dtype(dtype)
        C, H, W = _input_dim(input_dim)
        self.params = {}
        self.layers = []
        self._grad_of = {}
        dt = self.dtype
        for i, cp in enumerate(convs, start=1):
            fs = cp["filter_size"]
            scale = np.sqrt(2.0 / (C * fs * fs))
            self.params[f"W{i}"] = (scale * np.random.randn(cp["filter_num"], C, fs, fs)).astype(dt)
            self.params[f"b{i}"] = np.zeros(cp["filter_num"], dtype=dt)
            conv = Convolution(self.params[f"W{i}"], self.params[f"b{i}"], cp["stride"], cp["pad"])
            self._grad_of[f"W{i}"], self._grad_of[f"b{i}"] = (conv, "dW"), (conv, "db")
            self.layers += [conv, Relu()]
            C = cp["filter_num"]
            H, W = window_output_hw(H, W, fs, fs, cp["stride"], cp["pad"])
            if i % 2 == 0:
                self.layers.append(Pooling(pool_h=2, pool_w=2, stride=2))
                H, W = window_output_hw(H, W, 2, 2, 2, 0)
        flat = C * H * W                           # 64*4*4 for the default 28x28 input
        for i, (fan_in, fan_out) in ((7, (flat, hidden_size)), (8, (hidden_size, output_size))):
            self.params[f"W{i}"] = (np.sqrt(2.0 / fan_in) * np.random.randn(fan_in, fan_out)).astype(dt)
            self.params[f"b{i}"] = np.zeros(fan_out, dtype=dt)
            aff = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            self._grad_of[f"W{i}"], self._grad_of[f"b{i}"] = (aff, "dW"), (aff, "db")
            self.layers += [aff, Relu(), Dropout(0.5)] if i == 7 else [aff, Dropout(0.5)]
        self.last_layer = SoftmaxWithLoss()

    def loss(self, x, t):
        """Loss with dropout active (the book's DeepConvNet.loss always trains)."""
        return super().loss(x, t, train_flg=True)

    def _loss_for_gradient(self, x, t):
        return self.loss(x, t)
