"""Layers with a training and an evaluation mode: ``Dropout`` and ``BatchNormalization``."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._checks import compute_dtype, float_array
from ._base import (Array, BATCHNORM_EPS, Cost, _RunsOnBackend, _as, _as_shape, _check_dout, _kept,
                    _need_forward, _numel, _param_size, _placed, _rows, _shape)


class Dropout(_RunsOnBackend):
    """Drops each unit with probability ``dropout_ratio`` while training.

    Non-inverted, as in the book: training multiplies by the 0/1 mask and
    evaluation scales by (1 - dropout_ratio). The mask is drawn with NumPy's
    global RNG (``np.random.rand``), so ``np.random.seed`` makes it
    reproducible and identical on every backend.

    Parameters
    ----------
    dropout_ratio : float
        The probability of dropping a unit, in [0, 1).

    Attributes
    ----------
    mask : numpy.ndarray or None
        Boolean, the shape of the last training forward's input: True for the units kept.
    train_flg_aware : bool
        True: ``forward`` takes ``train_flg``.
    """
    train_flg_aware = True

    def __init__(self, dropout_ratio: float = 0.5) -> None:
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.reset()

    def reset(self) -> None:
        """Drop the saved mask (backward then refuses until the next training forward)."""
        self.mask: Any = None
        self._ops = None

    def __repr__(self) -> str:
        return f"Dropout(dropout_ratio={self.dropout_ratio})"

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return f"Dropout {self.dropout_ratio}", f"nn.Dropout({self.dropout_ratio})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output shape (the input's), no parameters, 1 FLOP per element (the multiplication by
        the mask, or by ``1 - dropout_ratio`` in evaluation; drawing the mask is not counted).

        Parameters
        ----------
        input_shape : sequence of int
            The input's shape, batch axis first (any rank).

        Returns
        -------
        Cost
        """
        shape = _as_shape("Dropout", input_shape)
        return Cost(shape, 0, 0, _numel(shape))

    def forward(self, x: ArrayLike, train_flg: bool = True) -> Array:
        """Training: x times a new random 0/1 mask (kept for ``backward``); evaluation:
        x * (1 - dropout_ratio).

        Parameters
        ----------
        x : array_like
            Any shape.
        train_flg : bool
            Training (True, the book's default) or evaluation.

        Returns
        -------
        Array
            The shape and (compute) dtype of x.
        """
        xa: Array = float_array("x", x, owner="Dropout.forward")
        self._ops = backend.ops()
        if train_flg:
            # an array even for a 0-d x (np.random.rand() then returns a float, and the book's
            # x * mask still works)
            self.mask = np.asarray(np.random.rand(*xa.shape) > self.dropout_ratio)
            return self._ops.dropout_apply(xa, self.mask)
        return self._ops.scale(xa, 1.0 - self.dropout_ratio)

    def backward(self, dout: ArrayLike) -> Array:
        """dout times the mask of the last training forward.

        Parameters
        ----------
        dout : array_like
            The gradient of the output, in the forward input's shape.

        Returns
        -------
        Array
            dx, of that shape.
        """
        _need_forward(self, "mask")
        dout = _check_dout(self, dout, tuple(self.mask.shape), None)
        return self._ops.dropout_apply(dout, self.mask)


class BatchNormalization(_RunsOnBackend):
    """Batch normalisation (chapter 6), per feature; 4-D input is flattened to ``(N, C*H*W)`` as in the book.

    ``running_mean`` / ``running_var`` start at zeros (created with the layer, in gamma's compute
    dtype, where gamma lives) unless given; given arrays are copied, never modified.
    ``eps`` is 1e-6 (the book's ``10e-7``).

    Parameters
    ----------
    gamma : array_like
        (D,) scale, kept as given (shared with a network's ``params``).
    beta : array_like
        (D,) shift, kept as given (shared with a network's ``params``).
    momentum : float
        Of the running statistics: ``running = momentum * running + (1 - momentum) * batch``; in
        [0, 1] (ValueError otherwise: beyond it the statistics diverge).
    running_mean : array_like, optional
        (D,) starting running mean (copied).
    running_var : array_like, optional
        (D,) starting running variance (copied).

    Attributes
    ----------
    gamma : Array
        The scale, as given.
    beta : Array
        The shift, as given.
    dgamma : Array or None
        The gradient (D,) of gamma from the last ``backward``.
    dbeta : Array or None
        The gradient (D,) of beta from the last ``backward``.
    momentum : float
        Of the running statistics, as given.
    running_mean : Array
        (D,) running mean used in evaluation (zeros until the first training forward unless
        given).
    running_var : Array
        (D,) running variance used in evaluation (as ``running_mean``).
    input_shape : tuple of int or None
        The last forward's input shape.
    state_attrs : tuple of str
        The names of the running statistics, which a network saves, loads and moves.
    train_flg_aware : bool
        True: ``forward`` takes ``train_flg``.
    """
    train_flg_aware = True
    #: arrays of the layer's own (not parameters) that a network saves, loads and moves with it
    state_attrs = ("running_mean", "running_var")

    def __init__(self, gamma: ArrayLike, beta: ArrayLike, momentum: float = 0.9,
                 running_mean: ArrayLike | None = None, running_var: ArrayLike | None = None) -> None:
        # the caller's arrays are kept (shared with a network's params); a beta of another float
        # dtype is converted to gamma's at each forward, as the bias of Affine is
        self.gamma = _kept("gamma", gamma, "BatchNormalization")
        self.beta = _kept("beta", beta, "BatchNormalization")
        if len(self.gamma.shape) != 1 or tuple(self.beta.shape) != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: gamma and beta must be 1-D of the same shape, got "
                             f"{tuple(self.gamma.shape)} and {tuple(self.beta.shape)}")
        m: Any = momentum
        if isinstance(m, bool) or not isinstance(m, numbers.Real) or not 0 <= float(m) <= 1:
            # NaN fails the comparison too; outside [0, 1] the running statistics diverge
            raise ValueError(f"BatchNormalization: momentum must be a number in [0, 1] (the weight of the "
                             f"old running statistics; the book's is 0.9), got {momentum!r}")
        self.momentum = momentum
        self.running_mean = self._stat("running_mean", running_mean)
        self.running_var = self._stat("running_var", running_var)
        self.dgamma: Array = None
        self.dbeta: Array = None
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next training forward);
        the running statistics and dgamma/dbeta stay."""
        self.input_shape: Any = None           # a Shape after forward
        self.batch_size: int | None = None
        self._ctx: Any = None
        self._ops = None

    def __repr__(self) -> str:
        return (f"BatchNormalization(gamma={_shape(self.gamma)}, momentum={self.momentum}, "
                f"{np.dtype(self.gamma.dtype)})")

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        bn = (f"nn.BatchNorm1d({_shape(self.gamma)[0]}, eps={BATCHNORM_EPS}, "
              f"momentum={1 - self.momentum:.6g})")
        return "BatchNormalization", bn if len(x_shape) == 2 else f"nn.Sequential(nn.Flatten(), {bn})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output shape (the input's), the elements of gamma and beta (the running statistics are
        not parameters), and 4 FLOPs per element (subtract the mean, divide by the deviation,
        multiply by gamma, add beta; a training step's batch statistics are not counted).

        Parameters
        ----------
        input_shape : sequence of int
            (N, D), or (N, C, H, W) with ``C*H*W == D``.

        Returns
        -------
        Cost
        """
        shape = _as_shape("BatchNormalization", input_shape, (2, 4))
        D = _shape(self.gamma)[0]
        if _numel(shape[1:]) != D:
            raise ValueError(f"BatchNormalization.cost: an input of shape {shape} has {_numel(shape[1:])} "
                             f"features per sample but gamma has shape {(D,)}")
        params, nbytes = _param_size(self.gamma, self.beta)
        return Cost(shape, params, nbytes, 4 * _numel(shape))

    def _stat(self, name: str, v: Any) -> Array:
        if v is None:
            # zeros where gamma is stored: a gamma the host does not own (a device array) gets
            # them from the current backend, which computes where it lives
            if not backend.ops("numpy").owns(self.gamma):
                return backend.ops().zeros_like(self.gamma)
            return np.zeros(tuple(self.gamma.shape), dtype=compute_dtype(self.gamma.dtype))
        v = np.array(v, dtype=compute_dtype(self.gamma.dtype))  # a copy: updated in place later
        if v.shape != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: {name} must have shape {tuple(self.gamma.shape)}, "
                             f"got {v.shape}")
        return v

    def forward(self, x: ArrayLike, train_flg: bool = True) -> Array:
        """Normalise each feature: by the batch's statistics in training (updating the running
        ones, keeping what ``backward`` needs), by the running statistics in evaluation.

        Parameters
        ----------
        x : array_like
            (N, D), or (N, C, H, W) normalised as ``(N, C*H*W)`` as in the book. Converted to the
            compute dtype of gamma.
        train_flg : bool
            Training (True, the book's default) or evaluation.

        Returns
        -------
        Array
            The shape of x, in gamma's compute dtype.
        """
        xa: Array = float_array("x", x, (2, 4), owner="BatchNormalization.forward")
        ops = backend.ops()
        gamma = _placed("BatchNormalization", ops, float_array("gamma", self.gamma, 1))
        beta = _placed("BatchNormalization", ops, _as(ops, float_array("beta", self.beta, 1), gamma.dtype))
        self.input_shape = tuple(xa.shape)
        x2 = _as(ops, _rows(xa), gamma.dtype)
        D = x2.shape[1]
        if D != gamma.shape[0]:
            raise ValueError(f"BatchNormalization.forward: x of shape {xa.shape} has {D} features per sample "
                             f"but gamma has shape {tuple(gamma.shape)}")
        if train_flg and int(x2.shape[0]) == 0:
            raise ValueError(f"BatchNormalization.forward: the batch is empty (x has shape {xa.shape}); "
                             "batch statistics of no samples are undefined (and would turn the running "
                             "mean and variance into NaN)")
        self._ops = ops
        if self.running_mean is None:
            # zeros where gamma is stored: on the GPU for a network moved there; a host network
            # run under "cuda" keeps host statistics (the op copies them in and out)
            home = ops if ops.owns(self.gamma) else backend.ops("numpy")
            self.running_mean, self.running_var = home.zeros_like(gamma), home.zeros_like(gamma)
        out, ctx = ops.batchnorm_forward(x2, gamma, beta, self.running_mean, self.running_var,
                                         self.momentum, BATCHNORM_EPS, bool(train_flg))
        if train_flg:
            self._ctx = ctx
            self.batch_size = x2.shape[0]
        return out.reshape(*self.input_shape)

    def backward(self, dout: ArrayLike) -> Array:
        """dx; sets ``dgamma`` and ``dbeta``. Only after a training forward.

        Parameters
        ----------
        dout : array_like
            The gradient of the output, in the forward input's shape.

        Returns
        -------
        Array
            dx, of that shape.
        """
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self.input_shape, compute_dtype(self.gamma.dtype))
        dx, self.dgamma, self.dbeta = self._ops.batchnorm_backward(_rows(dout), self._ctx)
        return dx.reshape(*self.input_shape)
