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

Besides the book's API, every layer here declares about itself what code elsewhere needs,
so no other module keeps a list of layer types:

* ``train_flg_aware``: whether ``forward`` takes ``train_flg`` (Dropout, BatchNormalization).
  ``run_forward(layer, x, train_flg)`` is how networks, ``fastdl compare`` and the benchmarks
  call a layer; a reader's own layer without the attribute is asked through its ``forward``'s
  signature.
* ``repr()``: the configuration, e.g. ``Convolution(W=(30, 1, 5, 5), stride=1, pad=0, float32)``.
* ``describe(x_shape)``: ``(row label, PyTorch counterpart)`` for ``fastdl compare``, the latter
  an expression over ``nn`` such as ``"nn.Conv2d(1, 30, (5, 5), stride=1, padding=0)"``, or None.
* ``reset()``: drops the saved forward state (a network's fused plan, ``fastdl.fusion``, resets
  the layers it runs as one op, so their own ``backward`` refuses instead of using a stale state).
* ``state_attrs`` (BatchNormalization): arrays of the layer's own that a network saves and moves.

Where arrays live is the backend's business: weights, inputs and new arrays go through the
device-placement ops of the backend in force (``owns``, ``to_device``, ``astype``, ``scale``,
``zeros_like``; ``fastdl.kernels.spec``), which are identities over NumPy arrays on the host
backends. Device weights under a CPU backend are refused with an error saying what to do.
"""
import inspect
import os
import sys
import warnings

import numpy as np

from . import backend
from ._checks import FLOAT_DTYPES, compute_dtype, float_array, labels, positive_int
from .kernels.shapes import window_output_hw

__all__ = ["MulLayer", "AddLayer", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout",
           "BatchNormalization", "Convolution", "Pooling", "AvgPooling", "Elementwise", "run_forward", "takes_train_flg"]

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
    if getattr(layer, attr, None) is None:
        raise RuntimeError(
            f"{type(layer).__name__}.backward called before forward (or after reset(): a network "
            "runs each Convolution -> Relu [-> Pooling] of its layers as one fused op (Net.fuse) and "
            "leaves those layers without forward state; go back through the network's gradient(), or "
            "set net.fuse = False to run the layers one by one)")


def _as(ops, x, dtype):
    """x in dtype, where it lives (the backend's ``astype``)."""
    if np.dtype(x.dtype) == np.dtype(dtype):
        return x
    return ops.astype(x, dtype)


def _rows(x):
    """x as (N, -1), for host and device arrays."""
    shape = tuple(int(v) for v in x.shape)
    return x.reshape(shape[0], int(np.prod(shape[1:], dtype=np.int64)))


def _placed(owner, ops, a):
    """a where backend ``ops`` computes: a itself when the backend owns it, else moved there (a
    host network under "cuda" copies its weights at every call). A backend that cannot take it
    (device weights under a CPU backend) is refused rather than copied back at every call."""
    if ops.owns(a):
        return a
    try:
        return ops.to_device(a)
    except TypeError:
        raise TypeError(f"{owner}: the weights are on the GPU but the backend is {ops.NAME!r}; use "
                        "fastdl.set_backend('cuda') (or using_backend) or move the network back with "
                        "net.to('cpu')") from None


def _kept(name, a, owner):
    """a as given when it is an array (a NumPy array, or any array with a shape and a dtype such as
    a device array: kept, so a network's ``params`` and its layers share it), anything else (a
    list) as a NumPy array; it must hold real numbers."""
    if not (hasattr(a, "shape") and hasattr(a, "dtype")):
        a = np.asarray(a)
    if np.dtype(a.dtype).kind not in "biuf":
        raise TypeError(f"{owner}: {name} must hold real numbers, got dtype {a.dtype}")
    return a


def _check_dout(layer, dout, shape, dtype):
    dout = float_array("dout", dout, owner=f"{type(layer).__name__}.backward")
    if tuple(dout.shape) != tuple(shape):
        raise ValueError(f"{type(layer).__name__}.backward: dout must have the forward output's "
                         f"shape {tuple(shape)}, got {dout.shape}")
    return dout if dtype is None else _as(layer._ops, dout, dtype)


def _shape(a):
    return tuple(int(v) for v in a.shape)


# -- train/eval: which layers take train_flg -------------------------------------------------
_TAKES_TRAIN_FLG = {}        # class -> bool, filled on first use


def takes_train_flg(layer):
    """Whether ``layer.forward`` takes ``train_flg`` (training vs evaluation behaviour).

    A class says so with the attribute ``train_flg_aware`` (True on Dropout and BatchNormalization,
    False on the other layers here). For a class that overrides ``forward`` without declaring it
    (a reader's own layer), the answer is whether its ``forward`` has a ``train_flg`` parameter.
    Decided once per class."""
    cls = type(layer)
    known = _TAKES_TRAIN_FLG.get(cls)
    if known is None:
        known = _TAKES_TRAIN_FLG[cls] = _declares_train_flg(cls)
    return known


def _declares_train_flg(cls):
    for klass in cls.__mro__:
        own = vars(klass)
        if "train_flg_aware" in own:
            return bool(own["train_flg_aware"])
        if "forward" in own:
            break
    try:
        return "train_flg" in inspect.signature(cls.forward).parameters
    except (AttributeError, TypeError, ValueError):
        return False


def run_forward(layer, x, train_flg):
    """``layer.forward(x, train_flg)`` for a layer that takes ``train_flg`` (``takes_train_flg``),
    ``layer.forward(x)`` for the others: how networks, ``fastdl compare`` and the benchmarks run a
    layer in training (``train_flg=True``) or evaluation mode."""
    if takes_train_flg(layer):
        return layer.forward(x, train_flg)
    return layer.forward(x)


class MulLayer:
    """out = x * y (chapter 5's multiplication node)."""
    train_flg_aware = False

    def __init__(self):
        self.reset()

    def reset(self):
        """Drop the saved inputs (backward then refuses until the next forward)."""
        self.x = None
        self.y = None

    def __repr__(self):
        return "MulLayer()"

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    """out = x + y (chapter 5's addition node)."""
    train_flg_aware = False

    def __init__(self):
        pass

    def reset(self):
        """Nothing to drop: addition keeps no state."""

    def __repr__(self):
        return "AddLayer()"

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1


class Elementwise:
    """A layer that applies one element-wise op of the backend (the base of Relu and Sigmoid).

    A subclass names the ops (``forward_op``, ``backward_op``), the attribute under which
    ``forward`` keeps what the backward op takes (``saved``: the op's second result, or its
    output when it returns one array), whether ``backward`` converts ``dout`` to that array's
    dtype (``convert_dout``), and its PyTorch counterpart (``peer``, an expression over ``nn``).
    """
    train_flg_aware = False
    forward_op = backward_op = saved = peer = None
    convert_dout = False

    def __init__(self):
        self.reset()

    def reset(self):
        """Drop the saved forward state (backward then refuses until the next forward)."""
        setattr(self, self.saved, None)
        self._ops = None

    def __repr__(self):
        return f"{type(self).__name__}()"

    def describe(self, x_shape):
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return type(self).__name__, self.peer

    def forward(self, x):
        x = float_array("x", x, owner=f"{type(self).__name__}.forward")
        self._ops = backend.ops()
        result = getattr(self._ops, self.forward_op)(x)
        out, kept = result if isinstance(result, tuple) else (result, result)
        setattr(self, self.saved, kept)
        return out

    def backward(self, dout):
        _need_forward(self, self.saved)
        kept = getattr(self, self.saved)
        dout = _check_dout(self, dout, tuple(kept.shape), kept.dtype if self.convert_dout else None)
        return getattr(self._ops, self.backward_op)(dout, kept)


class Relu(Elementwise):
    """max(0, x). ``mask`` marks the inputs that were <= 0."""
    forward_op, backward_op, saved, peer = "relu_forward", "relu_backward", "mask", "nn.ReLU()"


class Sigmoid(Elementwise):
    """1 / (1 + exp(-x)). ``out`` keeps the forward result for backward."""
    forward_op, backward_op, saved, peer = "sigmoid_forward", "sigmoid_backward", "out", "nn.Sigmoid()"
    convert_dout = True


def _check_weights(owner, W, b, w_ndim):
    """Check W and b at construction; the caller's arrays are kept (not copied), so a network's
    ``params`` and its layers share them. b may be an array of W's output size, or a Python
    scalar / 0-d / 1-element array broadcast to it (the book's ch07 passes ``b = 0``)."""
    W = _kept("W", W, owner)
    if not (hasattr(b, "shape") or isinstance(b, (int, float))):
        b = np.asarray(b)                          # a list: kept as an array
    # the same checks as every forward (a bias to convert is read through np.asarray here)
    _resolve_weights(owner, W, b, w_ndim, np.asarray)
    return W, b


def _out_size(W, w_ndim):
    return int(W.shape[0] if w_ndim == 4 else W.shape[1])


def _resolve_weights(owner, W, b, w_ndim, to_host):
    """(W, b) as the kernels take them: float32/float64 arrays of one dtype, b of shape (n,).

    W itself when it is float32/float64 (shared, no copy); float16 and integer weights are
    computed in float32 / float64 (a converted copy per call, the arrays stored stay as they
    are). b is converted to W's dtype and broadcast when it is not already that (read on the
    host with ``to_host``).
    """
    if not (isinstance(W, np.ndarray) and W.dtype in FLOAT_DTYPES):
        W = float_array("W", W, w_ndim, owner=owner)          # device arrays pass as they are
    if len(W.shape) != w_ndim:
        raise ValueError(f"{owner}: W must be {w_ndim}-D, got shape {tuple(W.shape)}")
    n = _out_size(W, w_ndim)
    dt = np.dtype(W.dtype)
    if hasattr(b, "shape") and tuple(b.shape) == (n,) and np.dtype(b.dtype) == dt:
        return W, b
    b = np.asarray(to_host(b))
    if b.dtype.kind not in "biuf":
        raise TypeError(f"{owner}: b must hold real numbers, got dtype {b.dtype}")
    if b.shape not in ((), (1,), (n,)):
        raise ValueError(f"{owner}: b must have shape ({n},) to match W {tuple(W.shape)} (or be a "
                         f"scalar), got shape {b.shape}")
    return W, np.ascontiguousarray(np.broadcast_to(b.astype(dt, copy=False), (n,)))


def _weights(owner, ops, W, b, w_ndim):
    """(W, b) as backend ``ops`` takes them: resolved (``_resolve_weights``) and placed (``_placed``)."""
    W, b = _resolve_weights(owner, W, b, w_ndim, ops.to_host)
    return _placed(owner, ops, W), _placed(owner, ops, b)


#: batches up to this many rows are converted to W's dtype by Affine itself (a training batch:
#: converted once per step); larger ones by the op (``affine_forward`` accepts either float dtype)
_CONVERT_IN_OP_ROWS = 2048


class Affine:
    """out = x @ W + b; inputs of rank > 2 are flattened to (N, -1) as in the book."""
    train_flg_aware = False

    def __init__(self, W, b):
        self.W, self.b = _check_weights("Affine", W, b, 2)
        self.dW = None
        self.db = None
        self.reset()

    def reset(self):
        """Drop the saved forward state (backward then refuses until the next forward); dW and db stay."""
        self.x = None
        self.original_x_shape = None
        self._ops = None
        self._W = None          # the W of the last forward, as the kernels took it

    def __repr__(self):
        return f"Affine(W={_shape(self.W)}, {np.dtype(self.W.dtype)})"

    def describe(self, x_shape):
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        d, m = _shape(self.W)
        return f"Affine {d}x{m}", f"nn.Sequential(nn.Flatten(), nn.Linear({d}, {m}))"

    def forward(self, x):
        x = float_array("x", x, owner="Affine.forward")
        if len(x.shape) < 1:
            raise ValueError("Affine.forward: x must have a batch axis, got a scalar")
        ops = backend.ops()
        W, b = _weights("Affine", ops, self.W, self.b, 2)
        self.original_x_shape = tuple(x.shape)
        x2 = _rows(x)
        if x2.shape[0] <= _CONVERT_IN_OP_ROWS or not ops.owns(x2):
            # converted once here and kept for backward (the op would convert it again there)
            x2 = _as(ops, x2, W.dtype)
        # a larger host x of the other float dtype (an evaluation of the book's float32 images
        # by float64 weights) goes to the op as it is: the numba backend converts it block by
        # block, without a full-size copy (kernels/cpu/affine.py)
        if x2.shape[1] != W.shape[0]:
            raise ValueError(f"Affine.forward: x of shape {x.shape} has {x2.shape[1]} features per sample "
                             f"but W of shape {tuple(W.shape)} expects {W.shape[0]}")
        self._ops = ops
        self.x, self._W = x2, W
        return ops.affine_forward(x2, W, b)

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
    train_flg_aware = False

    def __init__(self):
        self.loss = None
        self._warned = False      # the non-finite loss warning is given once per layer
        self.reset()

    def reset(self):
        """Drop the saved forward state (backward then refuses until the next forward); ``loss`` stays."""
        self.y = None
        self.t = None
        self._labels = None
        self._ops = None

    def __repr__(self):
        return "SoftmaxWithLoss()"

    def describe(self, x_shape):
        """(row label, None: its PyTorch counterpart takes labels too) for ``fastdl compare``."""
        return "SoftmaxWithLoss", None

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
    train_flg_aware = True

    def __init__(self, dropout_ratio=0.5):
        if not 0 <= dropout_ratio < 1:
            raise ValueError(f"Dropout: dropout_ratio must be in [0, 1), got {dropout_ratio}")
        self.dropout_ratio = dropout_ratio
        self.reset()

    def reset(self):
        """Drop the saved mask (backward then refuses until the next training forward)."""
        self.mask = None
        self._ops = None

    def __repr__(self):
        return f"Dropout(dropout_ratio={self.dropout_ratio})"

    def describe(self, x_shape):
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return f"Dropout {self.dropout_ratio}", f"nn.Dropout({self.dropout_ratio})"

    def forward(self, x, train_flg=True):
        x = float_array("x", x, owner="Dropout.forward")
        self._ops = backend.ops()
        if train_flg:
            # an array even for a 0-d x (np.random.rand() then returns a float, and the book's
            # x * mask still works)
            self.mask = np.asarray(np.random.rand(*x.shape) > self.dropout_ratio)
            return self._ops.dropout_apply(x, self.mask)
        return self._ops.scale(x, 1.0 - self.dropout_ratio)

    def backward(self, dout):
        _need_forward(self, "mask")
        dout = _check_dout(self, dout, tuple(self.mask.shape), None)
        return self._ops.dropout_apply(dout, self.mask)


class BatchNormalization:
    """Batch normalisation (chapter 6), per feature; 4-D input is flattened to (N, C*H*W) as in the book.

    ``running_mean`` / ``running_var`` start at zeros (created on the first
    forward, where gamma lives) unless given; given arrays are copied, never modified.
    ``eps`` is 1e-6 (the book's ``10e-7``).
    """
    train_flg_aware = True
    #: arrays of the layer's own (not parameters) that a network saves, loads and moves with it
    state_attrs = ("running_mean", "running_var")

    def __init__(self, gamma, beta, momentum=0.9, running_mean=None, running_var=None):
        # the caller's arrays are kept (shared with a network's params); a beta of another float
        # dtype is converted to gamma's at each forward, as the bias of Affine is
        self.gamma = _kept("gamma", gamma, "BatchNormalization")
        self.beta = _kept("beta", beta, "BatchNormalization")
        if len(self.gamma.shape) != 1 or tuple(self.beta.shape) != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: gamma and beta must be 1-D of the same shape, got "
                             f"{tuple(self.gamma.shape)} and {tuple(self.beta.shape)}")
        self.momentum = momentum
        self.running_mean = self._stat("running_mean", running_mean)
        self.running_var = self._stat("running_var", running_var)
        self.dgamma = None
        self.dbeta = None
        self.reset()

    def reset(self):
        """Drop the saved forward state (backward then refuses until the next training forward);
        the running statistics and dgamma/dbeta stay."""
        self.input_shape = None
        self.batch_size = None
        self._ctx = None
        self._ops = None

    def __repr__(self):
        return (f"BatchNormalization(gamma={_shape(self.gamma)}, momentum={self.momentum}, "
                f"{np.dtype(self.gamma.dtype)})")

    def describe(self, x_shape):
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        bn = (f"nn.BatchNorm1d({_shape(self.gamma)[0]}, eps={BATCHNORM_EPS}, "
              f"momentum={1 - self.momentum:.6g})")
        return "BatchNormalization", bn if len(x_shape) == 2 else f"nn.Sequential(nn.Flatten(), {bn})"

    def _stat(self, name, v):
        if v is None:
            return None
        v = np.array(v, dtype=compute_dtype(self.gamma.dtype))  # a copy: updated in place later
        if v.shape != tuple(self.gamma.shape):
            raise ValueError(f"BatchNormalization: {name} must have shape {tuple(self.gamma.shape)}, "
                             f"got {v.shape}")
        return v

    def forward(self, x, train_flg=True):
        x = float_array("x", x, (2, 4), owner="BatchNormalization.forward")
        ops = backend.ops()
        gamma = _placed("BatchNormalization", ops, float_array("gamma", self.gamma, 1))
        beta = _placed("BatchNormalization", ops, _as(ops, float_array("beta", self.beta, 1), gamma.dtype))
        self.input_shape = tuple(x.shape)
        x2 = _as(ops, _rows(x), gamma.dtype)
        D = x2.shape[1]
        if D != gamma.shape[0]:
            raise ValueError(f"BatchNormalization.forward: x of shape {x.shape} has {D} features per sample "
                             f"but gamma has shape {tuple(gamma.shape)}")
        if train_flg and int(x2.shape[0]) == 0:
            raise ValueError(f"BatchNormalization.forward: the batch is empty (x has shape {x.shape}); "
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
    train_flg_aware = False

    def __init__(self, W, b, stride=1, pad=0):
        self.W, self.b = _check_weights("Convolution", W, b, 4)
        self.stride, self.pad = _check_stride_pad("Convolution", stride, pad)
        self.dW = None
        self.db = None
        self.reset()

    def reset(self):
        """Drop the saved forward state (backward then refuses until the next forward); dW and db stay."""
        self.x = None
        self._ctx = None
        self._out_shape = None
        self._ops = None

    def __repr__(self):
        return (f"Convolution(W={_shape(self.W)}, stride={self.stride}, pad={self.pad}, "
                f"{np.dtype(self.W.dtype)})")

    def describe(self, x_shape):
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        FN, C, FH, FW = _shape(self.W)
        return (f"Convolution W{FN}x{C}x{FH}x{FW} s{self.stride} p{self.pad}",
                f"nn.Conv2d({C}, {FN}, ({FH}, {FW}), stride={self.stride}, padding={self.pad})")

    def prepare(self, x, ops=None):
        """What a forward pass starts from, for this layer and for a network's fused op
        (``fastdl.fusion``): ``(x, out_shape, W, b)``, x checked and in the weights' dtype, the
        output shape (N, FN, OH, OW), and the weights as backend ``ops`` (default: the current
        one) takes them. Keeps nothing."""
        ops = backend.ops() if ops is None else ops
        x = float_array("x", x, 4, owner="Convolution.forward")
        W, b = _weights("Convolution", ops, self.W, self.b, 4)
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
        return _as(ops, x, W.dtype), (N, FN, OH, OW), W, b

    def forward(self, x):
        ops = backend.ops()
        x, self._out_shape, W, b = self.prepare(x, ops)
        self._ops = ops
        out, self._ctx = ops.conv_forward(x, W, b, self.stride, self.pad)
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


class Pooling:
    """Max pooling over pool_h x pool_w windows; default stride 2.

    ``pad > 0`` is supported (the book's version fails): padding counts as
    minus infinity, so it never wins, and pad must be smaller than the window.
    On ties the first maximum in the window (row by row) wins, as in the book.
    """
    train_flg_aware = False
    #: the backend ops this pooling runs, and its PyTorch counterpart (a subclass changes these)
    _forward_op, _backward_op, _peer = "pool_forward", "pool_backward", "nn.MaxPool2d"

    def __init__(self, pool_h, pool_w, stride=2, pad=0):
        owner = type(self).__name__
        self.pool_h = positive_int("pool_h", pool_h, owner=owner)
        self.pool_w = positive_int("pool_w", pool_w, owner=owner)
        self.stride, self.pad = _check_stride_pad(owner, stride, pad)
        if self.pad >= min(self.pool_h, self.pool_w):
            raise ValueError(f"{owner}: pad ({self.pad}) must be smaller than the window "
                             f"({self.pool_h}x{self.pool_w}), or a window could hold only padding")
        self.reset()

    def reset(self):
        """Drop the saved forward state (backward then refuses until the next forward)."""
        self.x = None
        self._ctx = None
        self._out_shape = None
        self._ops = None

    def __repr__(self):
        return (f"{type(self).__name__}(pool_h={self.pool_h}, pool_w={self.pool_w}, stride={self.stride}, "
                f"pad={self.pad})")

    def describe(self, x_shape):
        """(row label, PyTorch counterpart as an expression over ``nn``) for ``fastdl compare``."""
        return (f"{type(self).__name__} {self.pool_h}x{self.pool_w} s{self.stride} p{self.pad}",
                f"{self._peer}(({self.pool_h}, {self.pool_w}), stride={self.stride}, padding={self.pad})")

    def output_shape(self, input_shape):
        """(N, C, OH, OW) for an input of shape (N, C, H, W); ValueError if the window does not fit."""
        N, C, H, W = (int(v) for v in input_shape)
        try:
            OH, OW = window_output_hw(H, W, self.pool_h, self.pool_w, self.stride, self.pad)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__}.forward: window {self.pool_h}x{self.pool_w} does not fit input x "
                             f"of shape {(N, C, H, W)} with pad {self.pad}: {exc}") from None
        return N, C, OH, OW

    def forward(self, x):
        x = float_array("x", x, 4, owner=f"{type(self).__name__}.forward")
        out_shape = self.output_shape(x.shape)
        self._ops = backend.ops()
        op = getattr(self._ops, self._forward_op)
        out, self._ctx = op(x, self.pool_h, self.pool_w, self.stride, self.pad)
        self.x = x
        self._out_shape = out_shape
        return out

    def backward(self, dout):
        _need_forward(self, "_ctx")
        dout = _check_dout(self, dout, self._out_shape, self.x.dtype)
        return getattr(self._ops, self._backward_op)(dout, self._ctx)


class AvgPooling(Pooling):
    """Average pooling over pool_h x pool_w windows; default stride 2 (not a layer of the book).

    Each output is its window's mean. ``pad > 0`` pads with zeros, and the padding counts in
    the divisor (pool_h * pool_w for every window, as PyTorch's ``AvgPool2d`` by default); pad
    must be smaller than the window. Backward shares each window's gradient equally among its
    taps.
    """
    _forward_op, _backward_op, _peer = "avg_pool_forward", "avg_pool_backward", "nn.AvgPool2d"


def __getattr__(name):
    # ConvBlock lived here before fusion became a network-level plan (fastdl.fusion)
    if name == "ConvBlock":
        from .fusion import ConvBlock
        return ConvBlock
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
