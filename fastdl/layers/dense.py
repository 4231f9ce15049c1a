"""The fully connected layer, ``Affine``."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._checks import FLOAT_DTYPES, float_array
from ._base import (Array, Cost, _RunsOnBackend, _as, _as_shape, _check_dout, _check_weights, _need_forward,
                    _numel, _param_size, _rows, _shape, _weights)


#: batches up to this many rows are converted to W's dtype by Affine itself (a training batch:
#: converted once per step); larger ones by the op (``affine_forward`` accepts either float dtype)
_CONVERT_IN_OP_ROWS = 2048


class Affine(_RunsOnBackend):
    """out = x @ W + b; inputs of rank > 2 are flattened to (N, -1) as in the book.

    Parameters
    ----------
    W : array_like
        (D, M) weights, kept as given (not copied: a network's ``params`` share it).
    b : array_like or float
        (M,) bias, or a scalar broadcast to every output (the book's ch07 passes ``b = 0``).

    Attributes
    ----------
    W : Array
        The weights (D, M), as given.
    b : Array
        The bias (M,), as given.
    dW : Array or None
        The gradient of W (D, M) set by the last ``backward`` (or ``backward_params``), in
        W's compute dtype; None before the first.
    db : Array or None
        The gradient of b (M,), set with ``dW``.
    x : Array or None
        The last forward's input as (N, D) rows, kept for ``backward``.
    original_x_shape : tuple of int or None
        The last forward's input shape (dx is returned in it).
    train_flg_aware : bool
        False: ``forward`` takes no ``train_flg``.
    """
    train_flg_aware = False
    #: (backend name, W, b, W's shape, b's shape, dtype) of weights a forward checked and took
    #: as they are; None until then
    _seen: Any = None

    def __init__(self, W: ArrayLike, b: ArrayLike) -> None:
        self.W, self.b = _check_weights("Affine", W, b, 2)
        self.dW: Array = None
        self.db: Array = None
        self.reset()

    def reset(self) -> None:
        """Drop the saved forward state (backward then refuses until the next forward); dW and db stay."""
        self.x: Array = None
        self.original_x_shape: Any = None      # a Shape after forward
        self._ops = None
        self._W: Array = None          # the W of the last forward, as the kernels took it

    def __repr__(self) -> str:
        return f"Affine(W={_shape(self.W)}, {np.dtype(self.W.dtype)})"

    def cost(self, input_shape: Sequence[int]) -> Cost:
        """Output (N, M) for an input of N rows of D features (``x`` flattened to (N, -1)), the
        elements of W and b, and ``2*N*D*M + N*M`` FLOPs (the product, then the bias).

        Parameters
        ----------
        input_shape : sequence of int
            The input's shape, batch axis first; its other axes must hold D = ``W.shape[0]``
            features in all.

        Returns
        -------
        Cost
        """
        shape = _as_shape("Affine", input_shape)
        if not shape:
            raise ValueError("Affine.cost: the input must have a batch axis, got a scalar shape ()")
        D, M = _shape(self.W)
        N, features = shape[0], _numel(shape[1:])
        if features != D:
            raise ValueError(f"Affine.cost: an input of shape {shape} has {features} features per "
                             f"sample but W of shape {(D, M)} expects {D}")
        params, nbytes = _param_size(self.W, self.b)
        return Cost((N, M), params, nbytes, 2 * N * D * M + N * M)

    def describe(self, x_shape: Sequence[int]) -> tuple[str, str | None]:
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        d, m = _shape(self.W)
        return f"Affine {d}x{m}", f"nn.Sequential(nn.Flatten(), nn.Linear({d}, {m}))"

    def forward(self, x: ArrayLike) -> Array:
        """x @ W + b, keeping x (as rows) for ``backward``.

        Parameters
        ----------
        x : array_like
            (N, D), or (N, ...) with D elements per sample (flattened, as in the book). Converted
            to W's dtype.

        Returns
        -------
        Array
            (N, M), in W's (compute) dtype.
        """
        ops = backend.ops()
        W, b = self.W, self.b
        seen = self._seen
        if type(x) is np.ndarray and seen is not None:
            # the fast path: a NumPy float array of 2 or more axes, and the weights that an earlier
            # forward checked and took as they are (the same objects, shapes and dtype, backend)
            name, seen_W, seen_b, W_shape, b_shape, dt = seen
            shape = x.shape
            xdt = x.dtype
            if (seen_W is W and seen_b is b and name == ops.NAME and len(shape) >= 2
                    and W.shape == W_shape and b.shape == b_shape and W.dtype is dt and b.dtype is dt
                    and (xdt is dt or xdt in FLOAT_DTYPES)):
                x2 = x if len(shape) == 2 else x.reshape(shape[0], math.prod(shape[1:]))
                if xdt is not dt and xdt != dt and shape[0] <= _CONVERT_IN_OP_ROWS:
                    x2 = x2.astype(dt)             # as ``_as`` does on a host backend
                self.original_x_shape = shape
                if x2.shape[1] != W_shape[0]:
                    raise ValueError(f"Affine.forward: x of shape {shape} has {x2.shape[1]} features per "
                                     f"sample but W of shape {W_shape} expects {W_shape[0]}")
                self._ops_name = name
                self.x, self._W = x2, W
                # shapes and dtypes checked here and by the first forward: the op's variant
                # without its checks where it has one (the reference's)
                op = ops.affine_forward
                return getattr(op, "unchecked", op)(x2, W, b)
        xa: Array = float_array("x", x, owner="Affine.forward")
        if len(xa.shape) < 1:
            raise ValueError("Affine.forward: x must have a batch axis, got a scalar")
        Wk, bk = _weights("Affine", ops, W, b, 2)
        if Wk is W and bk is b and type(W) is np.ndarray and type(b) is np.ndarray and W.dtype is b.dtype:
            # checked and taken as they are: the next forwards skip these checks while the layer
            # holds these arrays with this shape and dtype (see above)
            self._seen = (ops.NAME, W, b, W.shape, b.shape, W.dtype)
        W, b = Wk, bk
        self.original_x_shape = tuple(xa.shape)
        x2 = _rows(xa)
        if x2.shape[0] <= _CONVERT_IN_OP_ROWS or not ops.owns(x2):
            # converted once here and kept for backward (the op would convert it again there)
            x2 = _as(ops, x2, W.dtype)
        # a larger host x of the other float dtype (an evaluation of the book's float32 images
        # by float64 weights) goes to the op as it is: the numba backend converts it block by
        # block, without a full-size copy (kernels/cpu/affine.py)
        if x2.shape[1] != W.shape[0]:
            raise ValueError(f"Affine.forward: x of shape {xa.shape} has {x2.shape[1]} features per sample "
                             f"but W of shape {tuple(W.shape)} expects {W.shape[0]}")
        self._ops = ops
        self.x, self._W = x2, W
        return ops.affine_forward(x2, W, b)

    def backward(self, dout: ArrayLike) -> Array:
        """dx; sets ``dW`` (= x.T @ dout) and ``db`` (= dout summed over the batch).

        Parameters
        ----------
        dout : array_like
            (N, M), the gradient of the output (converted to W's dtype).

        Returns
        -------
        Array
            dx, in the shape of the last forward's input.
        """
        x = self.x
        if x is None:
            _need_forward(self, "x")
        W = self._W
        dout = _check_dout(self, dout, (x.shape[0], W.shape[1]), W.dtype)
        dx, self.dW, self.db = self._ops.affine_backward(dout, x, W)
        return dx.reshape(self.original_x_shape)

    def backward_params(self, dout: ArrayLike) -> None:
        """dW and db only, without dx (what a network's first layer needs). Returns None.

        Parameters
        ----------
        dout : array_like
            (N, M), the gradient of the output.
        """
        x = self.x
        if x is None:
            _need_forward(self, "x")
        W = self._W
        dout = _check_dout(self, dout, (x.shape[0], W.shape[1]), W.dtype)
        _, self.dW, self.db = self._ops.affine_backward(dout, x, W, need_dx=False)
