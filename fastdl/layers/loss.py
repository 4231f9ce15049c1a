"""The loss layer, ``SoftmaxWithLoss``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._checks import FLOAT_DTYPES, float_array, labels
from ._base import Array, Cost, _RunsOnBackend, _as_shape, _need_forward, warn_nonfinite


class SoftmaxWithLoss(_RunsOnBackend):
    """Softmax followed by cross-entropy; ``forward(x, t)`` returns the mean loss.

    t: labels (N,), (N, 1) or one-hot (N, K). ``backward(dout=1)`` returns
    dout * (y - onehot(t)) / N.

    Attributes
    ----------
    loss : numpy.floating or None
        The last forward's mean loss.
    y : Array or None
        The softmax probabilities (N, K) of the last forward, kept for ``backward``.
    t : Any
        The labels the last forward was given, as given.
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False

    def __init__(self) -> None:
        self.loss: Any = None
        self._warned = False      # the non-finite loss warning is given once per layer
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward); ``loss`` stays."""
        self.y: Array = None
        self.t: Any = None
        self._labels: Any = None
        self._ops = None

    def __repr__(self) -> str:
        return "SoftmaxWithLoss()"

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, None: its PyTorch counterpart takes labels too) for ``fastdl compare``."""
        return "SoftmaxWithLoss", None

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output ``()`` (the mean loss), no parameters, ``4*N*K + 2*N`` FLOPs: 4 per score
        (subtract the row's maximum, exp, sum, divide) and 2 per sample (the log, the mean).

        Parameters
        ----------
        input_shape : sequence of int
            The scores' shape (N, K), or (K,) for one sample.

        Returns
        -------
        Cost
        """
        shape = _as_shape("SoftmaxWithLoss", input_shape, (1, 2))
        N, K = (1,) + shape if len(shape) == 1 else shape
        return Cost((), 0, 0, 4 * N * K + 2 * N)

    def forward(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        """The mean cross-entropy of softmax(x) against t; keeps the probabilities for ``backward``.

        Parameters
        ----------
        x : array_like
            Scores (N, K), or (K,) for one sample.
        t : array_like
            Labels: (N,) or (N, 1) class indices, or one-hot (N, K).

        Returns
        -------
        numpy.floating
            The mean loss, a NumPy scalar of x's dtype (also kept as ``loss``). A NaN or infinite loss flows on, with a
            RuntimeWarning the first time.
        """
        if type(x) is np.ndarray and x.ndim == 2 and x.dtype in FLOAT_DTYPES:
            xa: Array = x
        else:
            xa = float_array("x", x, (1, 2), owner="SoftmaxWithLoss.forward")
            if len(xa.shape) == 1:
                xa = xa.reshape(1, int(xa.shape[0]))
                t = np.asarray(t)
                t = t.reshape(1, -1) if t.size == xa.size and xa.size > 1 else t.reshape(1)
        n, k = xa.shape
        if n == 0:
            raise ValueError("SoftmaxWithLoss.forward: the batch is empty (x has shape "
                             f"{tuple(xa.shape)}); the mean loss over no samples is undefined")
        if k == 0:
            raise ValueError("SoftmaxWithLoss.forward: x has no classes (shape "
                             f"{tuple(xa.shape)})")
        self._labels = labels(t, int(n), int(k), owner="SoftmaxWithLoss.forward")
        self.t = t
        ops = backend.ops()
        self._ops_name = ops.NAME
        op = ops.softmax_loss_forward
        if type(xa) is np.ndarray:
            # labels() has checked the labels' shape and range against x (N, K), a host float
            # array: the op's variant without those checks where it has one (the reference's)
            op = getattr(op, "unchecked", op)
        self.loss, self.y = op(xa, self._labels)
        if not self._warned and not _finite(self.loss):
            self._warned = True
            warn_nonfinite("SoftmaxWithLoss", self.loss)
        return self.loss

    def backward(self, dout: float = 1) -> Array:
        """The gradient of the scores: ``dout * (y - onehot(t)) / N``.

        Parameters
        ----------
        dout : float
            The gradient of the loss (1 at the end of a network).

        Returns
        -------
        Array
            (N, K), in the scores' dtype.
        """
        y = self.y
        if y is None:
            _need_forward(self, "y")
        return self._ops.softmax_loss_backward(y, self._labels, float(dout))


def _finite(value: Any) -> bool:
    """Whether a loss (a NumPy or Python scalar, or a 0-d array) is finite."""
    try:
        return math.isfinite(value)
    except TypeError:
        return bool(np.isfinite(value))
