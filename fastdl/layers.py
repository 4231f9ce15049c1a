"""Layers with forward/backward (chapters 5-7; ``common/layers.py`` in the book).

Each layer validates its input, looks up the current backend's kernels when
``forward`` is called, and its ``backward`` uses the same backend. Weights
(``W``, ``b``, ``gamma``, ``beta``) are the arrays passed to the constructor,
not copies, so a network's ``params`` dict and its layers share them and an
optimizer's in-place update is seen by the layers.

Deviations from the book, all deliberate:

* ``Relu.backward`` returns a new array; the book's zeroes ``dout`` in place.
* ``Pooling`` accepts ``pad > 0`` (padding counts as minus infinity and never
  wins; ``pad`` must be smaller than the window). The book's crashes.
* An input whose dtype differs from the layer's weights is converted to the
  weights' dtype, so a float32 network computes in float32 throughout (NumPy
  would promote a float64 input to float64).
* ``SoftmaxWithLoss`` turns one-hot labels into class indices; ``t`` must
  really be one-hot (the book would also accept soft labels in ``backward``).

What is checked (the README's "What fastdl accepts" gives the whole rule): shapes,
ranks, channel counts and label ranges, with errors naming the argument. What
NumPy accepts is accepted: lists, integer and boolean arrays (computed in
float64), float16 arrays (stored in half precision, computed in float32), a
Python scalar or 0-d bias (broadcast to every output, as ``b = 0`` in the book's
ch07), and weights of mixed float dtypes (the bias takes W's dtype). NaN and
infinity that arise in a computation flow through as they do in NumPy;
``SoftmaxWithLoss`` says so once with a RuntimeWarning naming the likely cause.
"""
import os
import sys
import warnings

import numpy as np

from . import backend
from ._checks import (FLOAT_DTYPES, compute_dtype, float_array, is_device_array, labels, numeric_array,
                      positive_int, to_host)
from .kernels.shapes import window_output_hw

__all__ = ["MulLayer", "AddLayer", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout",
           "BatchNormalization", "Convolution", "Pooling"]

#: BatchNormalization's epsilon: the book writes 10e-7, which is 1e-6.
BATCHNORM_EPS = 1e-6


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _caller_stacklevel():
    """The stacklevel of the first frame outside fastdl, so a warning points at the user's line."""
    frame, level = sys._getframe(2), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    return level


def warn_nonfinite(owner, value):
    """Say once that a loss became NaN/infinite, naming the likely causes; the value flows on."""
    warnings.warn(
        f"{owner}: the loss is {value}: the scores reaching it hold NaN or infinity. In training this "
        "usually means it diverged: the learning rate is too high or the initial weights too large "
        "(weight_init_std); NaN in the input data does the same. The computation goes on as in NumPy "
        "(this warning is given once).", RuntimeWarning, stacklevel=_caller_stacklevel())


def _need_forward(layer, attr):
    if getattr(layer, "_fused_into", None) is not None:
        raise RuntimeError(
            f"{type(layer).__name__}.backward: this layer's last forward ran inside a fused "
            "Convolution -> Relu [-> Pooling] block of a network (Net.fuse), so it kept no state of its "
            "own; go back through the network's gradient(), or set net.fuse = False to run the layers "
            "one by one")
    if getattr(layer, attr, None) is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")


def _as(x, dtype):
    if np.dtype(x.dtype) == np.dtype(dtype):
        return x
    if is_device_array(x):
        raise TypeError(f"a {np.dtype(x.dtype)} device array was given where {np.dtype(dtype)} is needed; "
                        "convert it on the host first")
    return x.astype(dtype)


def _rows(x):
    """x as (N, -1), for host and device arrays."""
    shape = tuple(int(v) for v in x.shape)
    return x.reshape(shape[0], int(np.prod(shape[1:], dtype=np.int64)))


def _guard_device(layer, *arrays):
    """Device weights need the cuda backend: refuse instead of silently copying them every call."""
    if any(is_device_array(a) for a in arrays) and backend.current_backend() != "cuda":
        raise TypeError(f"{type(layer).__name__}: the weights are on the GPU but the backend is "
                        f"{backend.current_backend()!r}; use fastdl.set_backend('cuda') (or using_backend) "
                        "or move the network back with net.to('cpu')")


def _check_dout(layer, dout, shape, dtype):
    dout = float_array("dout", dout, owner=f"{type(layer).__name__}.backward")
    if tuple(dout.shape) != tuple(shape):
        raise ValueError(f"{type(layer).__name__}.backward: dout must have the forward output's "
                         f"shape {tuple(shape)}, got {dout.shape}")
    return dout if dtype is None else _as(dout, dtype)


class MulLayer:
    """out = x * y (chapter 5's multiplication node)."""

    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    """out = x + y (chapter 5's addition node)."""

    def __init__(self):
        pass

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1


class Relu:
    """max(0, x). ``mask`` marks the inputs that were <= 0."""

    def __init__(self):
        self.mask = None
        self._ops = None
        self._fused_into = None

    def forward(self, x):
        x = float_array("x", x, owner="Relu.forward")
        self._fused_into = None
        self._ops = backend.ops()
        out, self.mask = self._ops.relu_forward(x)
        return out

    def backward(self, dout):
        _need_forward(self, "mask")
        dout = _check_dout(self, dout, tuple(self.mask.shape), None)
        return self._ops.relu_backward(dout, self.mask)


class Sigmoid:
    """1 / (1 + exp(-x)). ``out`` keeps the forward result for backward."""

    def __init__(self):
        self.out = None
        self._ops = None

    def forward(self, x):
        x = float_array("x", x, owner="Sigmoid.forward")
        self._ops = backend.ops()
        self.out = self._ops.sigmoid_forward(x)
        return self.out

    def backward(self, dout):
        _need_forward(self, "out")
        dout = _check_dout(self, dout, self.out.shape, self.out.dtype)
        return self._ops.sigmoid_backward(dout, self.out)


def _check_weights(owner, W, b, w_ndim):
    """Check W and b at construction; the caller's arrays are kept (not copied), so a network's
    ``params`` and its layers share them. b may be an array of W's output size, or a Python
    scalar / 0-d / 1-element array broadcast to it (the book's ch07 passes ``b = 0``)."""
    if not is_device_array(W):
        W = numeric_array("W", W, owner=owner)
    if not (is_device_array(b) or isinstance(b, (np.ndarray, int, float, np.number))):
        b = np.asarray(b)                          # a list: kept as an array
    _resolve_weights(owner, W, b, w_ndim)          # the same checks as every forward
    return W, b


def _out_size(W, w_ndim):
    return int(W.shape[0] if w_ndim == 4 else W.shape[1])


def _resolve_weights(owner, W, b, w_ndim):
    """(W, b) as the kernels take them: float32/float64 arrays of one dtype, b of shape (n,).

    W itself when it is float32/float64 (shared, no copy); float16 and integer weights are
    computed in float32 / float64 (a converted copy per call, the arrays stored stay as they
    are). b is converted to W's dtype and broadcast when it is not already that.
    """
    if not (is_device_array(W) or (isinstance(W, np.ndarray) and W.dtype in FLOAT_DTYPES)):
        W = float_array("W", W, w_ndim, owner=owner)
    if len(W.shape) != w_ndim:
        raise ValueError(f"{owner}: W must be {w_ndim}-D, got shape {tuple(W.shape)}")
    n = _out_size(W, w_ndim)
    dt = np.dtype(W.dtype)
    if is_device_array(b) or (isinstance(b, np.ndarray) and b.dtype == dt and b.shape == (n,)):
        if is_device_array(b) and (np.dtype(b.dtype) != dt or tuple(b.shape) != (n,)):
            raise TypeError(f"{owner}: the device bias b {tuple(b.shape)} {np.dtype(b.dtype)} must match "
                            f"W ({n},) {dt}")
        return W, b
    if is_device_array(W):
        raise TypeError(f"{owner}: W is on the GPU but b is not a device array of shape ({n},)")
    b = np.asarray(b)
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: b must hold real numbers, got dtype {b.dtype}")
    if b.shape not in ((), (1,), (n,)):
        raise ValueError(f"{owner}: b must have shape ({n},) to match W {tuple(W.shape)} (or be a "
                         f"scalar), got shape {b.shape}")
    return W, np.ascontiguousarray(np.broadcast_to(b.astype(dt, copy=False), (n,)))


#: batches up to this many rows are converted to W's dtype by Affine itself (a training batch:
#: converted once per step); larger ones by the op (``affine_forward`` accepts either float dtype)
_CONVERT_IN_OP_ROWS = 2048


class Affine:
    """out = x @ W + b; inputs of rank > 2 are flattened to (N, -1) as in the book."""

    def __init__(self, W, b):
        self.W, self.b = _check_weights("Affine", W, b, 2)
        self.x = None
        self.original_x_shape = None
        self.dW = None
        self.db = None
        self._ops = None
        self._W = None          # the W of the last forward, as the kernels took it

    def forward(self, x):
        x = float_array("x", x, owner="Affine.forward")
        if len(x.shape) < 1:
            raise ValueError("Affine.forward: x must have a batch axis, got a scalar")
        _guard_device(self, self.W)
        W, b = _resolve_weights("Affine", self.W, self.b, 2)
        self.original_x_shape = tuple(x.shape)
        x2 = _rows(x)
        if is_device_array(x2) or x2.shape[0] <= _CONVERT_IN_OP_ROWS:
            # converted once here and kept for backward (the op would convert it again there)
            x2 = _as(x2, W.dtype)
        # a larger host x of the other float dtype (an evaluation of the book's float32 images
        # by float64 weights) goes to the op as it is: the numba backend converts it block by
        # block, without a full-size copy (kernels/cpu/affine.py)
        if x2.shape[1] != W.shape[0]:
            raise ValueError(f"Affine.forward: x of shape {x.shape} has {x2.shape[1]} features per sample "
                             f"but W of shape {tuple(W.shape)} expects {W.shape[0]}")
        self._ops = backend.ops()
        self.x, self._W = x2, W
        return self._ops.affine_forward(x2, W, b)

    def backward(self, dout):
        _need_forward(self, "x")
        W = self._W
        dout = _check_dout(self, dout, (self.x.shape[0], W.shape[1]), W.dtype)
        dx, self.dW, self.db = self._ops.affine_backward(dout, self.x, W)
        return dx.reshape(*self.original_x_shape)

    def backward_params(self, dout):
        """dW and db only, without dx (what a network's first layer needs). Returns None."""
        _need_forward(self, "x")
        W = self._W
        dout = _check_dout(self, dout, (self.x.shape[0], W.shape[1]), W.dtype)
        _, self.dW, self.db = self._ops.affine_backward(dout, self.x, W, need_dx=False)


class SoftmaxWithLoss:
    """Softmax followed by cross-entropy; ``forward(x, t)`` returns the mean loss.

    t: labels (N,), (N, 1) or one-hot (N, K). ``backward(dout=1)`` returns
    dout * (y - onehot(t)) / N.
    """

    def __init__(self):
        self.loss = None
        self.y = None
        self.t = None
        self._labels = None
        self._ops = None
        self._warned = False      # the non-finite loss warning is given once per layer

    def forward(self, x, t):
        x = float_array("x", x, (1, 2), owner="SoftmaxWithLoss.forward")
        if len(x.shape) == 1:
            x = x.reshape(1, int(x.shape[0]))
            t = np.asarray(t)
            t = t.reshape(1, -1) if t.size == x.size and x.size > 1 else t.reshape(1)
        if int(x.shape[0]) == 0:
            raise ValueError("SoftmaxWithLoss.forward: the batch is empty (x has shape "
                             f"{tuple(x.shape)}); the mean loss over no samples is undefined")
        if int(x.shape[1]) == 0:
            raise ValueError("SoftmaxWithLoss.forward: x has no classes (shape "
                             f"{tuple(x.shape)})")
        self._labels = labels(t, int(x.shape[0]), int(x.shape[1]), owner="SoftmaxWithLoss.forward")
        self.t = t
        self._ops = backend.ops()
        self.loss, self.y = self._ops.softmax_loss_forward(x, self._labels)
        if not np.isfinite(self.loss) and not self._warned:
            self._warned = True
            warn_nonfinite("SoftmaxWithLoss", self.loss)
        return self.loss

    def backward(self, dout=1):
        _need_forward(self, "y")
        return self._ops.softmax_loss_backward(self.y, self._labels, float(dout))


class Dropout:
    """Drops each unit with probability ``dropout_ratio`` while training.

    Non-inverted, as in the book: training multiplies by the 0/1 mask and
    evaluation scales by (1 - dropout_ratio). The mask is drawn with NumPy's
    global RNG (``np.random.rand``), so ``np.random.seed`` makes it
    reproducible and identical on every backend.
    """

    def __init__(self, dropout_ratio=0.5):
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.mask = None
        self._ops = None

    def forward(self, x, train_flg=True):
        x = float_array("x", x, owner="Dropout.forward")
        self._ops = backend.ops()
        if train_flg:
            # an array even for a 0-d x (np.random.rand() then returns a float, and the book's
            # x * mask still works)
            self.mask = np.asarray(np.random.rand(*x.shape) > self.dropout_ratio)
            return self._ops.dropout_apply(x, self.mask)
        scale = np.dtype(x.dtype).type(1.0 - self.dropout_ratio)
        if is_device_array(x):                 # evaluation only; the tensors here are small
            return self._ops.to_device(to_host(x) * scale)
        return x * scale

    def backward(self, dout):
        _need_forward(self, "mask")
        dout = _check_dout(self, dout, tuple(self.mask.shape), None)
        return self._ops.dropout_apply(dout, self.mask)


class BatchNormalization:
    """Batch normalisation (chapter 6), per feature; 4-D input is flattened to (N, C*H*W) as in the book.

    ``running_mean`` / ``running_var`` start at zeros (created on the first
    forward) unless given; given arrays are copied, never modified.
    ``eps`` is 1e-6 (the book's ``10e-7``).
    """

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        # the caller's arrays are kept (shared with a network's params); a beta of another float
        # dtype is converted to gamma's at each forward, as the bias of Affine is
        self.gamma = gamma if is_device_array(gamma) else numeric_array("gamma", gamma, "BatchNormalization")
        self.beta = beta if is_device_array(beta) else numeric_array("beta", beta, "BatchNormalization")
        if len(self.gamma.shape) != 1 or tuple(self.beta.shape) != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: gamma and beta must be 1-D of the same shape, got "
                             f"{tuple(self.gamma.shape)} and {tuple(self.beta.shape)}")
        self.momentum = momentum
        self.input_shape = None
        self.running_mean = self._stat("running_mean", running_mean)
        self.running_var = self._stat("running_var", running_var)
        self.batch_size = None
        self.dgamma = None
        self.dbeta = None
        self._ctx = None
        self._ops = None

    def _stat(self, name, v):
        if v is None:
            return None
        v = np.array(v, dtype=compute_dtype(self.gamma.dtype))  # a copy: updated in place later
        if v.shape != self.gamma.shape:
            raise ValueError(f"BatchNormalization: {name} must have shape {self.gamma.shape}, got {v.shape}")
        return v

    def forward(self, x, train_flg=True):
        x = float_array("x", x, (2, 4), owner="BatchNormalization.forward")
        _guard_device(self, self.gamma)
        gamma = self.gamma if is_device_array(self.gamma) else float_array("gamma", self.gamma, 1)
        beta = self.beta if is_device_array(self.beta) else _as(float_array("beta", self.beta, 1), gamma.dtype)
        self.input_shape = tuple(x.shape)
        x2 = _as(_rows(x), gamma.dtype)
        D = x2.shape[1]
        if D != gamma.shape[0]:
            raise ValueError(f"BatchNormalization.forward: x of shape {x.shape} has {D} features per sample "
                             f"but gamma has shape {tuple(gamma.shape)}")
        if train_flg and int(x2.shape[0]) == 0:
            raise ValueError(f"BatchNormalization.forward: the batch is empty (x has shape {x.shape}); "
                             "batch statistics of no samples are undefined (and would turn the running "
                             "mean and variance into NaN)")
        self._ops = backend.ops()
        if self.running_mean is None:
            self.running_mean = np.zeros(D, dtype=gamma.dtype)
            self.running_var = np.zeros(D, dtype=gamma.dtype)
            if is_device_array(self.gamma):
                self.running_mean = self._ops.to_device(self.running_mean)
                self.running_var = self._ops.to_device(self.running_var)
        out, ctx = self._ops.batchnorm_forward(x2, gamma, beta, self.running_mean,
                                               self.running_var, self.momentum, BATCHNORM_EPS,
                                               bool(train_flg))
        if train_flg:
            self._ctx = ctx
            self.batch_size = x2.shape[0]
        return out.reshape(*self.input_shape)

    def backward(self, dout):
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self.input_shape, compute_dtype(self.gamma.dtype))
        dx, self.dgamma, self.dbeta = self._ops.batchnorm_backward(_rows(dout), self._ctx)
        return dx.reshape(*self.input_shape)


def _check_stride_pad(owner, stride, pad):
    return (positive_int("stride", stride, 1, owner=owner), positive_int("pad", pad, 0, owner=owner))


class Convolution:
    """2-D convolution (cross-correlation, as in the book) of x (N, C, H, W) with W (FN, C, FH, FW).

    Output (N, FN, OH, OW) with OH = (H + 2*pad - FH) // stride + 1.
    """

    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b = _check_weights("Convolution", W, b, 4)
        self.stride, self.pad = _check_stride_pad("Convolution", stride, pad)
        self.x = None
        self.dW = None
        self.db = None
        self._ctx = None
        self._out_shape = None
        self._ops = None
        self._fused_into = None

    def _prepare(self, x):
        """Checked input (in the weights' dtype), the output shape (N, FN, OH, OW) and the
        weights as the kernels take them: ``(x, out_shape, W, b)``."""
        x = float_array("x", x, 4, owner="Convolution.forward")
        _guard_device(self, self.W)
        W, b = _resolve_weights("Convolution", self.W, self.b, 4)
        FN, C, FH, FW = (int(v) for v in W.shape)
        N, Cx, H, Wd = (int(v) for v in x.shape)
        if C == 0 or FH == 0 or FW == 0:
            raise ValueError(f"Convolution: W of shape {tuple(W.shape)} has no channels or an empty filter")
        if Cx != C:
            raise ValueError(f"Convolution.forward: x of shape {tuple(x.shape)} has {Cx} channels "
                             f"but W of shape {tuple(W.shape)} expects {C}")
        try:
            OH, OW = window_output_hw(H, Wd, FH, FW, self.stride, self.pad)
        except ValueError as exc:
            raise ValueError(f"Convolution.forward: filter {FH}x{FW} does not fit input x of shape "
                             f"{x.shape} with pad {self.pad}: {exc}") from None
        return _as(x, W.dtype), (N, FN, OH, OW), W, b

    def forward(self, x):
        x, self._out_shape, W, b = self._prepare(x)
        self._fused_into = None
        self._ops = backend.ops()
        out, self._ctx = self._ops.conv_forward(x, W, b, self.stride, self.pad)
        self.x = x
        return out

    def backward(self, dout):
        return self._backward(dout, True)

    def backward_params(self, dout):
        """Set dW and db without computing dx (for the first layer of a network); returns None."""
        self._backward(dout, False)

    def _backward(self, dout, need_dx):
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self._out_shape, self.x.dtype)
        dx, self.dW, self.db = self._ops.conv_backward(dout, self._ctx, need_dx)
        return dx


class ConvBlock:
    """Convolution -> Relu [-> Pooling] of a network run as one fused backend op.

    Not a layer of the book: networks build one for each such run of their layers
    (``Net.fuse``) and call ``forward`` / ``backward`` on it instead of on the three
    layers. The result is the layers' own, within the backend's tolerance; the
    backend never has to store the full-size convolution output. Afterwards
    ``conv.dW`` / ``conv.db`` hold the gradients as usual, while the Relu and Pooling
    keep no state (their own ``backward`` then explains this instead of running).
    """

    def __init__(self, conv, relu, pool=None):
        self.conv, self.relu, self.pool = conv, relu, pool
        self._ctx = None
        self._out_shape = None
        self._ops = None

    def forward(self, x):
        conv, pool = self.conv, self.pool
        x, conv_shape, W, b = conv._prepare(x)
        ops = backend.ops()
        if pool is None:
            out, ctx = ops.conv_relu_forward(x, W, b, conv.stride, conv.pad)
            out_shape = conv_shape
        else:
            N, FN, OH, OW = conv_shape
            out_shape = (N, FN) + pool._output_hw(N, FN, OH, OW)
            out, ctx = ops.conv_relu_pool_forward(x, W, b, conv.stride, conv.pad,
                                                  pool.pool_h, pool.pool_w, pool.stride, pool.pad)
        self._ops, self._ctx, self._out_shape = ops, ctx, out_shape
        conv.x, conv._out_shape, conv._ctx, conv._fused_into = x, conv_shape, None, self
        self.relu.mask, self.relu._fused_into = None, self
        if pool is not None:
            pool.x, pool._ctx, pool._fused_into = None, None, self
        return out

    def backward(self, dout, need_dx=True):
        """dx of the block's input (None when not need_dx); sets conv.dW and conv.db."""
        if self._ctx is None or any(layer._fused_into is not self for layer in (self.conv, self.relu, self.pool)
                                    if layer is not None):
            raise RuntimeError("ConvBlock.backward called before its forward, or after one of its "
                               "layers ran forward on its own")
        dout = _check_dout(self.conv, dout, self._out_shape, self.conv.x.dtype)
        fn = self._ops.conv_relu_backward if self.pool is None else self._ops.conv_relu_pool_backward
        dx, self.conv.dW, self.conv.db = fn(dout, self._ctx, need_dx)
        return dx


class Pooling:
    """Max pooling over pool_h x pool_w windows; default stride 2.

    ``pad > 0`` is supported (the book's version fails): padding counts as
    minus infinity, so it never wins, and pad must be smaller than the window.
    On ties the first maximum in the window (row by row) wins, as in the book.
    """

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        self.pool_h = positive_int("pool_h", pool_h, owner="Pooling")
        self.pool_w = positive_int("pool_w", pool_w, owner="Pooling")
        self.stride, self.pad = _check_stride_pad("Pooling", stride, pad)
        if self.pad >= min(self.pool_h, self.pool_w):
            raise ValueError(f"Pooling: pad ({self.pad}) must be smaller than the window "
                             f"({self.pool_h}x{self.pool_w}), or a window could hold only padding")
        self.x = None
        self._ctx = None
        self._out_shape = None
        self._ops = None
        self._fused_into = None

    def _output_hw(self, N, C, H, W):
        try:
            return window_output_hw(H, W, self.pool_h, self.pool_w, self.stride, self.pad)
        except ValueError as exc:
            raise ValueError(f"Pooling.forward: window {self.pool_h}x{self.pool_w} does not fit input x "
                             f"of shape {(N, C, H, W)} with pad {self.pad}: {exc}") from None

    def forward(self, x):
        x = float_array("x", x, 4, owner="Pooling.forward")
        N, C, H, W = (int(v) for v in x.shape)
        OH, OW = self._output_hw(N, C, H, W)
        self._fused_into = None
        self._ops = backend.ops()
        out, self._ctx = self._ops.pool_forward(x, self.pool_h, self.pool_w, self.stride, self.pad)
        self.x = x
        self._out_shape = (N, C, OH, OW)
        return out

    def backward(self, dout):
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self._out_shape, self.x.dtype)
        return self._ops.pool_backward(dout, self._ctx)
