"""Convolutional networks of chapters 7-8: SimpleConvNet and DeepConvNet."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from ..kernels.shapes import window_output_hw
from ..layers import Affine, Array, Convolution, Dropout, Pooling, Relu, SoftmaxWithLoss
from .._checks import positive_int
from .base import Net, finite_number, make_dtype, sizes as check_sizes

_SIMPLE_CONV = {"filter_num": 30, "filter_size": 5, "pad": 0, "stride": 1}


def _input_dim(input_dim: Sequence[int], owner: str = "") -> tuple[int, int, int]:
    where = f"{owner}: " if owner else ""
    if isinstance(input_dim, (str, bytes)) or not hasattr(input_dim, "__len__") or len(input_dim) != 3:
        raise ValueError(f"{where}input_dim must be (channels, height, width), got {input_dim!r}")
    C, H, W = check_sizes(owner, **{f"input_dim[{i}]": v for i, v in enumerate(input_dim)})
    return C, H, W


_CONV_KEYS = {"filter_num": 1, "filter_size": 1, "pad": 0, "stride": 1}     # key -> smallest value


def _conv_param(owner: str, name: str, cp: Any) -> dict[str, int]:
    """A convolution's parameters checked: a dict with exactly filter_num, filter_size, stride
    (integers >= 1) and pad (an integer >= 0)."""
    if not isinstance(cp, Mapping):
        raise TypeError(f"{owner}: {name} must be a dict with keys {', '.join(_CONV_KEYS)}, "
                        f"got {type(cp).__name__}")
    missing = [k for k in _CONV_KEYS if k not in cp]
    unknown = [k for k in cp if k not in _CONV_KEYS]
    if missing or unknown:
        raise ValueError(f"{owner}: {name} must have the keys {', '.join(_CONV_KEYS)}"
                         + (f"; missing {missing}" if missing else "") + (f"; unknown {unknown}" if unknown else ""))
    return {k: positive_int(f"{name}[{k!r}]", cp[k], low, owner=owner) for k, low in _CONV_KEYS.items()}


class SimpleConvNet(Net):
    """conv - relu - pool(2x2, stride 2) - affine - relu - affine - softmax.

    The pooled size is computed exactly for any input (the book's formula
    assumes an even, square convolution output).

    Parameters
    ----------
    input_dim : tuple of int
        (C, H, W) of one input.
    conv_param : dict, optional
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of the convolution (default 30
        filters of 5x5, pad 0, stride 1).
    hidden_size : int
        Units of the hidden Affine layer.
    output_size : int
        Units of the output (classes).
    weight_init_std : float
        Weights ~ weight_init_std * N(0, 1).
    dtype : dtype
        float64 (the book's) or float32.

    Attributes
    ----------
    input_dim : tuple of int
        (C, H, W) of one input.
    params : dict of str to Array
        W1, b1 (convolution), W2, b2, W3, b3 (Affine layers).
    layers : OrderedDict
        Conv1, Relu1, Pool1, Affine1, Relu2, Affine2.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28), conv_param: Mapping[str, int] | None = None,
                 hidden_size: int = 100, output_size: int = 10, weight_init_std: float = 0.01,
                 dtype: DTypeLike = np.float64) -> None:
        owner = "SimpleConvNet"
        conv_param = _conv_param(owner, "conv_param", _SIMPLE_CONV if conv_param is None else conv_param)
        self.dtype = make_dtype(dtype)
        C, H, W = self.input_dim = _input_dim(input_dim, owner)
        hidden_size, output_size = check_sizes(owner, hidden_size=hidden_size, output_size=output_size)
        weight_init_std = finite_number(owner, "weight_init_std", weight_init_std)
        self._config = {"input_dim": list(self.input_dim), "conv_param": dict(conv_param), "hidden_size": hidden_size,
                        "output_size": output_size, "weight_init_std": weight_init_std, "dtype": self.dtype}
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
        self.layers: OrderedDict[str, Any] = OrderedDict()
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

    def predict(self, x: ArrayLike) -> Array:  # type: ignore[override]
        """Scores before the softmax (no layer here depends on training mode).

        Parameters
        ----------
        x : array_like
            (N, C, H, W) images, converted to the network's dtype.

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
            (N, C, H, W) images.
        t : array_like
            (N,) labels or (N, output_size) one-hot rows.

        Returns
        -------
        numpy.floating
            The mean loss, a NumPy scalar of the network's dtype.
        """
        return super().loss(x, t)


class DeepConvNet(Net):
    """conv-relu-conv-relu-pool x 3, then affine-relu-dropout-affine-dropout-softmax (ch. 8).

    He initialisation from each layer's fan-in. ``loss`` runs dropout in
    training mode, as in the book; ``accuracy`` and ``predict`` do not.

    Parameters
    ----------
    input_dim : tuple of int
        (C, H, W) of one input.
    conv_param_1 : dict, optional
        ``filter_num``, ``filter_size``, ``pad``, ``stride`` of the first convolution (the
        book's: 16 filters of 3x3, pad 1, stride 1).
    conv_param_2 : dict, optional
        Of the second convolution (the book's: 16 filters of 3x3, pad 1, stride 1).
    conv_param_3 : dict, optional
        Of the third convolution (the book's: 32 filters of 3x3, pad 1, stride 1).
    conv_param_4 : dict, optional
        Of the fourth convolution (the book's: 32 filters of 3x3, pad 2, stride 1).
    conv_param_5 : dict, optional
        Of the fifth convolution (the book's: 64 filters of 3x3, pad 1, stride 1).
    conv_param_6 : dict, optional
        Of the sixth convolution (the book's: 64 filters of 3x3, pad 1, stride 1).
    hidden_size : int
        Units of the hidden Affine layer.
    output_size : int
        Units of the output (classes).
    dtype : dtype
        float64 (the book's) or float32.

    Attributes
    ----------
    input_dim : tuple of int
        (C, H, W) of one input.
    params : dict of str to Array
        W1, b1 ... W6, b6 (convolutions), W7, b7, W8, b8 (Affine layers).
    layers : list
        The 20 layers in order, as in the book.
    """

    def __init__(self, input_dim: Sequence[int] = (1, 28, 28),
                 conv_param_1: Mapping[str, int] | None = None, conv_param_2: Mapping[str, int] | None = None,
                 conv_param_3: Mapping[str, int] | None = None, conv_param_4: Mapping[str, int] | None = None,
                 conv_param_5: Mapping[str, int] | None = None, conv_param_6: Mapping[str, int] | None = None,
                 hidden_size: int = 50, output_size: int = 10, dtype: DTypeLike = np.float64) -> None:
        defaults = [(16, 1), (16, 1), (32, 1), (32, 2), (64, 1), (64, 1)]
        given = [conv_param_1, conv_param_2, conv_param_3, conv_param_4, conv_param_5, conv_param_6]
        owner = "DeepConvNet"
        convs = [_conv_param(owner, f"conv_param_{i}", c) if c is not None
                 else {"filter_num": fn, "filter_size": 3, "pad": pd, "stride": 1}
                 for i, (c, (fn, pd)) in enumerate(zip(given, defaults), start=1)]
        self.dtype = make_dtype(dtype)
        C, H, W = self.input_dim = _input_dim(input_dim, owner)
        hidden_size, output_size = check_sizes(owner, hidden_size=hidden_size, output_size=output_size)
        self._config = {"input_dim": list(self.input_dim), "hidden_size": hidden_size, "output_size": output_size,
                        "dtype": self.dtype}
        self._config.update({f"conv_param_{i}": dict(c) for i, c in enumerate(convs, start=1)})
        self.params = {}
        self.layers: list[Any] = []
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

    def predict(self, x: ArrayLike, train_flg: bool = False) -> Array:
        """Scores before the softmax; Dropout runs in training mode when train_flg.

        Parameters
        ----------
        x : array_like
            (N, C, H, W) images, converted to the network's dtype.
        train_flg : bool
            Run Dropout in training mode (the book's default: False).

        Returns
        -------
        Array
            (N, output_size) scores.
        """
        return self._forward(x, train_flg)

    def loss(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:  # type: ignore[override]
        """Loss with dropout active (the book's DeepConvNet.loss always trains).

        Parameters
        ----------
        x : array_like
            (N, C, H, W) images.
        t : array_like
            (N,) labels or (N, output_size) one-hot rows.

        Returns
        -------
        numpy.floating
            The mean loss, a NumPy scalar of the network's dtype.
        """
        return super().loss(x, t, train_flg=True)

    def _loss_for_gradient(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        return self.loss(x, t)
