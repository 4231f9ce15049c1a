"""Fully connected layer (reference backend)."""


def affine_forward(x, W, b):
    """x (N, D) @ W (D, M) + b (M,) -> (N, M)."""
    return x @ W + b


def affine_backward(dout, x, W):
    """dout (N, M) -> (dx (N, D), dW (D, M), db (M,))."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)
