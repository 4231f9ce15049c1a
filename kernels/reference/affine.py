"""Fully connected layer (reference backend)."""

__all__ = ["affine_forward", "affine_backward"]


def affine_forward(x, W, b):
    """x (N, D) @ W (D, M) + b (M,) -> (N, M), in W's dtype (x is converted if it differs)."""
    return x.astype(W.dtype, copy=False) @ W + b


def affine_backward(dout, x, W, need_dx=True):
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,)); dx is None when not need_dx."""
    x = x.astype(W.dtype, copy=False)
    return (dout @ W.T if need_dx else None), x.T @ dout, dout.sum(axis=0)
