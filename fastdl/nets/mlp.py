"""Fully connected networks: TwoLayerNet (ch. 4-5), MultiLayerNet and MultiLayerNetExtend (ch. 6)."""
from collections import OrderedDict

import numpy as np

from ..layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss
from .base import Net, init_scale, make_dtype


class TwoLayerNet(Net):
    """Affine - Relu - Affine - SoftmaxWithLoss, weights ~ weight_init_std * N(0, 1)."""

    def __init__(self, input_size, hidden_size, output_size, weight_init_std=0.01, dtype=np.float64):
        self.dtype = make_dtype(dtype)
        r = np.random.randn
        self.params = {
            "W1": (weight_init_std * r(input_size, hidden_size)).astype(self.dtype),
            "b1": np.zeros(hidden_size, dtype=self.dtype),
            "W2": (weight_init_std * r(hidden_size, output_size)).astype(self.dtype),
            "b2": np.zeros(output_size, dtype=self.dtype),
        }
        p = self.params
        self.layers = OrderedDict()
        self.layers["Affine1"] = Affine(p["W1"], p["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(p["W2"], p["b2"])
        self.lastLayer = SoftmaxWithLoss()
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        self._grad_of = {"W1": (a1, "dW"), "b1": (a1, "db"), "W2": (a2, "dW"), "b2": (a2, "db")}

    @property
    def last_layer(self):
        return self.lastLayer

    def predict(self, x):
        return self._forward(x, False)

    def loss(self, x, t):
        return super().loss(x, t)


class MultiLayerNet(Net):
    """(Affine - activation) x len(hidden_size_list), then Affine - SoftmaxWithLoss.

    activation: 'relu' or 'sigmoid'; weight_init_std: a number, 'relu'/'he'
    or 'sigmoid'/'xavier'; weight_decay_lambda: L2 strength (0.5 * lambda * sum W^2).
    """

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, dtype=np.float64):
        self._build(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda, dtype, use_dropout=False, dropout_ration=0.5, use_batchnorm=False)

    def _build(self, input_size, hidden_size_list, output_size, activation, weight_init_std,
               weight_decay_lambda, dtype, use_dropout, dropout_ration, use_batchnorm):
        self.dtype = make_dtype(dtype)
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = list(hidden_size_list)
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout = use_dropout
        self.use_batchnorm = use_batchnorm
        activations = {"relu": Relu, "sigmoid": Sigmoid}
        if activation not in activations:
            raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
        sizes = [input_size] + self.hidden_size_list + [output_size]
        self.params = {}
        for i in range(1, len(sizes)):
            scale = init_scale(weight_init_std, sizes[i - 1])
            self.params[f"W{i}"] = (scale * np.random.randn(sizes[i - 1], sizes[i])).astype(self.dtype)
            self.params[f"b{i}"] = np.zeros(sizes[i], dtype=self.dtype)
        self.layers = OrderedDict()
        self._grad_of = {}
        self._decayed = [f"W{i}" for i in range(1, len(sizes))]
        for i in range(1, len(sizes)):
            aff = self.layers[f"Affine{i}"] = Affine(self.params[f"W{i}"], self.params[f"b{i}"])
            self._grad_of[f"W{i}"] = (aff, "dW")
            self._grad_of[f"b{i}"] = (aff, "db")
            if i == len(sizes) - 1:
                break
            if use_batchnorm:
                self.params[f"gamma{i}"] = np.ones(sizes[i], dtype=self.dtype)
                self.params[f"beta{i}"] = np.zeros(sizes[i], dtype=self.dtype)
                bn = self.layers[f"BatchNorm{i}"] = BatchNormalization(self.params[f"gamma{i}"],
                                                                        self.params[f"beta{i}"])
                self._grad_of[f"gamma{i}"] = (bn, "dgamma")
                self._grad_of[f"beta{i}"] = (bn, "dbeta")
            self.layers[f"Activation_function{i}"] = activations[activation]()
            if use_dropout:
                self.layers[f"Dropout{i}"] = Dropout(dropout_ration)
        self.last_layer = SoftmaxWithLoss()

    def predict(self, x):
        return self._forward(x, False)

    def loss(self, x, t):
        return super().loss(x, t)


class MultiLayerNetExtend(MultiLayerNet):
    """MultiLayerNet with optional Dropout (``dropout_ration``, the book's spelling) and
    BatchNormalization after every hidden Affine layer. predict/loss take ``train_flg``."""

    def __init__(self, input_size, hidden_size_list, output_size, activation="relu",
                 weight_init_std="relu", weight_decay_lambda=0, use_dropout=False,
                 dropout_ration=0.5, use_batchnorm=False, dtype=np.float64):
        self._build(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda, dtype, use_dropout, dropout_ration, use_batchnorm)

    def predict(self, x, train_flg=False):
        return self._forward(x, train_flg)

    def loss(self, x, t, train_flg=False):
        return Net.loss(self, x, t, train_flg)
