"""Fully connected layer (cuda backend): tiled GEMMs plus a bias kernel and column sums."""
from typing import Optional, Tuple

import numpy as np

from ..arrays import Array
from ..shapes import check_affine
from .arrays import empty, to_device
from .common import add_rowvec, colsum
from .gemm import gemm

#: this module's ops (the backend package imports exactly these)
__all__ = ["affine_forward", "affine_backward"]


def _host_as(x, W):
    """A host x of the other float dtype than W, converted (the spec allows either)."""
    return x.astype(W.dtype) if isinstance(x, np.ndarray) and x.dtype != W.dtype else x


def affine_forward(x, W, b):
    # type: (Array, Array, Array) -> Array
    check_affine("affine_forward", x, W, b)
    x, W, b = to_device(_host_as(x, W)), to_device(W), to_device(b)
    out = empty((x.shape[0], W.shape[1]), x.dtype)
    gemm(out, x, W)
    add_rowvec(out, b)
    return out


def affine_backward(dout, x, W, need_dx=True):
    # type: (Array, Array, Array, bool) -> Tuple[Optional[Array], Array, Array]
    check_affine("affine_backward", x, W, dout=dout)
    dout, x, W = to_device(dout), to_device(_host_as(x, W)), to_device(W)
    dx = None
    if need_dx:
        dx = empty(x.shape, x.dtype)
        gemm(dx, dout, W, transB=True)      # (N, D) = dout @ W^T
    dW = empty(W.shape, x.dtype)
    gemm(dW, x, dout, transA=True)          # (D, M) = x^T @ dout
    return dx, dW, colsum(dout)
