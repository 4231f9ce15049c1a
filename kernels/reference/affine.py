"""Fully connected layer (reference backend)."""
from typing import Optional, Tuple

import numpy as np

from ..shapes import check_affine

__all__ = ["affine_forward", "affine_backward"]


def affine_forward(x, W, b):
    # type: (np.ndarray, np.ndarray, np.ndarray) -> np.ndarray
    """x (N, D) @ W (D, M) + b (M,) -> (N, M), in W's dtype (x is converted if it differs)."""
    check_affine("affine_forward", x, W, b)
    return _affine_forward(x, W, b)


def _affine_forward(x, W, b):
    # type: (np.ndarray, np.ndarray, np.ndarray) -> np.ndarray
    """``affine_forward`` on arguments known good: x (N, D), W (D, M) float, b (M,)."""
    return x.astype(W.dtype, copy=False) @ W + b


#: the op without its argument checks, for a caller that has made them (``Affine``'s fast path)
affine_forward.unchecked = _affine_forward  # type: ignore[attr-defined]


def affine_backward(dout, x, W, need_dx=True):
    # type: (np.ndarray, np.ndarray, np.ndarray, bool) -> Tuple[Optional[np.ndarray], np.ndarray, np.ndarray]
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,)); dx is None when not need_dx."""
    check_affine("affine_backward", x, W, dout=dout)
    x = x.astype(W.dtype, copy=False)
    return (dout @ W.T if need_dx else None), x.T @ dout, dout.sum(axis=0)
