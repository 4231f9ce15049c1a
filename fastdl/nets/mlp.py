"""Fully connected networks: TwoLayerNet (ch. 4-5), MultiLayerNet and MultiLayerNetExtend (ch. 6)."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..layers import Affine, Array, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss
from .base import Net, finite_number, init_scale, make_dtype, sizes as check_sizes


class TwoLayerNet(Net):
    """Affine - Relu - Affine - SoftmaxWithLoss, weights ~ weight_init_std * N(0, 1).

    Parameters
    ----------
    input_size : int
        Units of the input (784 for MNIST).
    hidden_size : int
        Units of the hidden layer.
    output_size : int
        Units of the output (classes). Every size is an integer >= 1 (NumPy integers too; a
        float or bool is refused with a TypeError, 0 or less with a ValueError).
    weight_init_std : float
        The weights' scale, a finite number.
    dtype : dtype
        float64 (the book's) or float32.

    Attributes
    ----------
    input_size : int
        Features of one input.
    params : dict of str to Array
        W1, b1, W2, b2.
    layers : OrderedDict
        Affine1, Relu1, Affine2.
    lastLayer : SoftmaxWithLoss
        The loss layer, under the book's name (``last_layer`` is the same).
    """

    def __init__(self, input_size: int, hidden_size: int, output_size: int, weight_init_std: float = 0.01,
                 dtype: DTypeLike = np.float64) -> None:
        self.dtype = make_dtype(dtype)
        self._config = {"input_size": input_size, "hidden_size": hidden_size, "output_size": output_size,
                        "weight_init_std": weight_init_std, "dtype": self.dtype}
        input_size, hidden_size, output_size = check_sizes(
            "TwoLayerNet", input_size=input_size, hidden_size=hidden_size, output_size=output_size)
        weight_init_std = finite_number("TwoLayerNet", "weight_init_std", weight_init_std)
        self.input_size = input_size
        r = np.random.randn
        self.params = {
            "W1": (weight_init_std * r(input_size, hidden_size)).astype(self.dtype),
            "b1": np.zeros(hidden_size, dtype=self.dtype),
            "W2": (weight_init_std * r(hidden_size, output_size)).astype(self.dtype),
            "b2": np.zeros(output_size, dtype=self.dtype),
        }
        p = self.params
        self.layers: OrderedDict[str, Any] = OrderedDict()
        self.layers["Affine1"] = Affine(p["W1"], p["b1"])
        self.layers["Relu1"] = Relu()
        self.layers["Affine2"] = Affine(p["W2"], p["b2"])
        self.lastLayer = SoftmaxWithLoss()
        a1, a2 = self.layers["Affine1"], self.layers["Affine2"]
        self._grad_of = {"W1": (a1, "dW"), "b1": (a1, "db"), "W2": (a2, "dW"), "b2": (a2, "db")}

    @property
    def last_layer(self) -> SoftmaxWithLoss:
        """The loss layer: ``lastLayer``, the book's name for it."""
        return self.lastLayer

    def predict(self, x: ArrayLike) -> Array:  # type: ignore[override]
        """Scores before the softmax.

        Parameters
        ----------
        x : array_like
            (N, input_size), converted to the network's dtype.

        Returns
        -------
        Array
            (N, output_size) scores.
        """
        return self._forward(x, False)

    def loss(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:  # type: ignore[override]
        """Mean cross-entropy of the predictions.

        Parameters
        ----------
        x : array_like
            (N, input_size).
        t : array_like
            (N,) labels or (N, output_size) one-hot rows.

        Returns
        -------
        numpy.floating
            The mean loss, a NumPy scalar of the network's dtype.
        """
        return super().loss(x, t)


class MultiLayerNet(Net):
    """(Affine - activation) x len(hidden_size_list), then Affine - SoftmaxWithLoss.

    activation: 'relu' or 'sigmoid'; weight_init_std: a number, 'relu'/'he'
    or 'sigmoid'/'xavier'; weight_decay_lambda: L2 strength (0.5 * lambda * sum W^2).

    Parameters
    ----------
    input_size : int
        Features of one input (784 for MNIST); an integer >= 1.
    hidden_size_list : sequence of int
        Units of each hidden layer, each an integer >= 1 (an empty list: no hidden layer).
    output_size : int
        Classes; an integer >= 1.
    activation : str
        'relu' or 'sigmoid'.
    weight_init_std : float or str
        A number, 'relu'/'he' (sqrt(2 / fan_in)) or 'sigmoid'/'xavier' (sqrt(1 / fan_in)).
    weight_decay_lambda : float
        L2 strength: the loss adds 0.5 * lambda * sum W^2 over the weights. A finite number >= 0
        (a negative strength would make the weights grow).
    dtype : dtype
        float64 (the book's) or float32.

    Attributes
    ----------
    input_size : int
        Units of the input.
    output_size : int
        Units of the output.
    hidden_size_list : list of int
        Units of each hidden layer.
    hidden_layer_num : int
        The number of hidden layers.
    params : dict of str to Array
        W1, b1, ... (and gamma1, beta1, ... with batch normalisation).
    layers : OrderedDict
        Affine1, Activation_function1, ..., the last Affine (with BatchNorm and Dropout layers
        in MultiLayerNetExtend), under the book's names.
    """

    def __init__(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
                 activation: str = "relu", weight_init_std: float | str = "relu",
                 weight_decay_lambda: float = 0, dtype: DTypeLike = np.float64) -> None:
        self._build(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda, dtype, use_dropout=False, dropout_ration=0.5, use_batchnorm=False)
        del self._config["use_dropout"], self._config["dropout_ration"], self._config["use_batchnorm"]

    def _build(self, input_size: int, hidden_size_list: Sequence[int], output_size: int, activation: str,
               weight_init_std: float | str, weight_decay_lambda: float, dtype: DTypeLike, use_dropout: bool,
               dropout_ration: float, use_batchnorm: bool) -> None:
        self.dtype = make_dtype(dtype)
        owner = type(self).__name__
        if isinstance(hidden_size_list, (str, bytes)) or not hasattr(hidden_size_list, "__iter__"):
            raise TypeError(f"{owner}: hidden_size_list must be a list of ints (units of each hidden "
                            f"layer), got {type(hidden_size_list).__name__} {hidden_size_list!r}")
        hidden = list(hidden_size_list)
        input_size, output_size = check_sizes(owner, input_size=input_size, output_size=output_size)
        hidden = check_sizes(owner, **{f"hidden_size_list[{i}]": v for i, v in enumerate(hidden)})
        weight_decay_lambda = finite_number(owner, "weight_decay_lambda", weight_decay_lambda, minimum=0)
        self._config = {"input_size": input_size, "hidden_size_list": list(hidden),
                        "output_size": output_size, "activation": activation,
                        "weight_init_std": weight_init_std, "weight_decay_lambda": weight_decay_lambda,
                        "use_dropout": use_dropout, "dropout_ration": dropout_ration,
                        "use_batchnorm": use_batchnorm, "dtype": self.dtype}
        self.input_size = input_size
        self.output_size = output_size
        self.hidden_size_list = hidden
        self.hidden_layer_num = len(self.hidden_size_list)
        self.weight_decay_lambda = weight_decay_lambda
        self.use_dropout = use_dropout
        self.use_batchnorm = use_batchnorm
        activations: dict[str, type[Relu] | type[Sigmoid]] = {"relu": Relu, "sigmoid": Sigmoid}
        if activation not in activations:
            raise ValueError(f"activation must be 'relu' or 'sigmoid', got {activation!r}")
        sizes = [input_size] + self.hidden_size_list + [output_size]
        self.params = {}
        for i in range(1, len(sizes)):
            scale = init_scale(weight_init_std, sizes[i - 1])
            self.params[f"W{i}"] = (scale * np.random.randn(sizes[i - 1], sizes[i])).astype(self.dtype)
            self.params[f"b{i}"] = np.zeros(sizes[i], dtype=self.dtype)
        self.layers: OrderedDict[str, Any] = OrderedDict()
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

    def predict(self, x: ArrayLike) -> Array:  # type: ignore[override]
        """Scores before the softmax.

        Parameters
        ----------
        x : array_like
            (N, input_size), converted to the network's dtype.

        Returns
        -------
        Array
            (N, output_size) scores.
        """
        return self._forward(x, False)

    def loss(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:  # type: ignore[override]
        """Mean cross-entropy of the predictions plus 0.5 * weight_decay_lambda * sum W^2.

        Parameters
        ----------
        x : array_like
            (N, input_size).
        t : array_like
            (N,) labels or (N, output_size) one-hot rows.

        Returns
        -------
        numpy.floating
            The loss, a NumPy scalar of the network's dtype.
        """
        return super().loss(x, t)


class MultiLayerNetExtend(MultiLayerNet):
    """MultiLayerNet with optional Dropout (``dropout_ration``, the book's spelling) and
    BatchNormalization after every hidden Affine layer. predict/loss take ``train_flg``.

    Parameters
    ----------
    input_size, hidden_size_list, output_size, activation, weight_init_std, weight_decay_lambda, dtype
        As for MultiLayerNet.
    use_dropout : bool
        A Dropout layer after every hidden activation.
    dropout_ration : float
        Its ratio (the book's spelling), in [0, 1).
    use_batchnorm : bool
        A BatchNormalization layer after every hidden Affine layer (parameters gamma1, beta1, ...).
    """

    def __init__(self, input_size: int, hidden_size_list: Sequence[int], output_size: int,
                 activation: str = "relu", weight_init_std: float | str = "relu",
                 weight_decay_lambda: float = 0, use_dropout: bool = False,
                 dropout_ration: float = 0.5, use_batchnorm: bool = False,
                 dtype: DTypeLike = np.float64) -> None:
        self._build(input_size, hidden_size_list, output_size, activation, weight_init_std,
                    weight_decay_lambda, dtype, use_dropout, dropout_ration, use_batchnorm)

    def predict(self, x: ArrayLike, train_flg: bool = False) -> Array:
        """Scores before the softmax; Dropout and BatchNormalization run in training mode when
        train_flg.

        Parameters
        ----------
        x : array_like
            (N, input_size), converted to the network's dtype.
        train_flg : bool
            Training mode (False: evaluation, as in the book).

        Returns
        -------
        Array
            (N, output_size) scores.
        """
        return self._forward(x, train_flg)

    def loss(self, x: ArrayLike, t: ArrayLike, train_flg: bool = False) -> np.floating[Any]:
        """Mean cross-entropy plus weight decay, Dropout and BatchNormalization in training mode
        when train_flg.

        Parameters
        ----------
        x : array_like
            (N, input_size).
        t : array_like
            (N,) labels or (N, output_size) one-hot rows.
        train_flg : bool
            Training mode.

        Returns
        -------
        numpy.floating
            The loss, a NumPy scalar of the network's dtype.
        """
        return Net.loss(self, x, t, train_flg)
