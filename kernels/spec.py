"""The op contract: every backend namespace holds each of these functions with exactly this signature.

A backend package defines, as module-level functions, the ops it has kernels for; the
ops it leaves out are filled in from their composite definitions in
``fastdl.kernels.composite`` (``fastdl.kernels.complete``, called at the end of each
backend package): the fused conv ops as conv, relu and pool one after another, and the
device-placement ops as identities on host backends. ``tests/kernels/test_backend.py`` checks
every available backend against ``TABLE``, so a missing or mis-spelt op fails the suite,
and ``tests/kernels/test_spec_ops.py`` compares every op of every family with example inputs
(``fastdl.kernels.examples``) against the reference on both dtypes.

Conventions for all ops
-----------------------
* Floating inputs keep their dtype: float32 in, float32 out (and float64 alike).
  (affine_forward/backward: the dtype of W.)
* Inputs are never modified, except the arrays an op documents as updated in
  place (optimizer parameters and state, batch-norm running statistics), which its
  ``Op.updates`` names.
* Any strides are accepted.
* The array arguments must agree in shape as listed below (a backward op's dout with the
  output of the forward call its ctx came from); every op of every backend checks this before
  any kernel runs (the helpers of ``fastdl.kernels.shapes``) and raises ValueError naming the
  op, the argument and both shapes, so no kernel reads or writes outside its arrays.
  Labels must lie in [0, K).
* An op's scalar parameters (``Op.params``) come after its arrays, with defaults; a backward op
  is called as ``op(dout, *saved, **params)`` with the parameters its forward call had.
* ``ctx`` values returned by a forward op are opaque: pass them, unmodified, to
  the matching backward op *of the same backend*.

Shapes (N batch, C channels, H/W height/width, FN filters, FH/FW filter size,
OH/OW output size, D features, K classes)
-----------------------------------------------------------------------------
im2col(x, filter_h, filter_w, stride=1, pad=0)
    x (N, C, H, W) -> col (N*OH*OW, C*FH*FW); rows in (n, oh, ow) order,
    columns in (c, ky, kx) order, zero padding. The book's layout.
col2im(col, input_shape, filter_h, filter_w, stride=1, pad=0)
    col (N*OH*OW, C*FH*FW) -> x (N, C, H, W): the adjoint of im2col
    (overlapping windows add up; padding is dropped).
conv_forward(x, W, b, stride, pad)
    x (N, C, H, W), W (FN, C, FH, FW), b (FN,) -> (out (N, FN, OH, OW), ctx)
conv_backward(dout, ctx, need_dx=True)
    dout (N, FN, OH, OW) -> (dx (N, C, H, W), dW (FN, C, FH, FW), db (FN,)).
    need_dx=False skips dx (None is returned for it): a net's first layer needs no dx.
conv_relu_forward(x, W, b, stride, pad) -> (out, ctx)
conv_relu_backward(dout, ctx, need_dx=True) -> (dx, dW, db)
    Convolution then Relu as one op: out = relu(conv_forward(...)[0]); backward is
    conv_backward(relu_backward(dout, mask), ...). What a network runs for a
    Convolution followed by a Relu.
conv_relu_pool_forward(x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad) -> (out, ctx)
conv_relu_pool_backward(dout, ctx, need_dx=True) -> (dx, dW, db)
    Convolution, Relu, then max pooling as one op; out (N, FN, QH, QW) is the pooled
    output. The result is that of the three ops in turn (``fastdl.kernels.composite``
    is that definition), within each backend's tolerance; a backend may compute it
    without ever storing the full-size activation.
pool_forward(x, pool_h, pool_w, stride, pad)
    max pooling; x (N, C, H, W) -> (out (N, C, OH, OW), ctx). Padding counts
    as minus infinity; on ties the first maximum in (ky, kx) order wins.
pool_backward(dout, ctx)
    dout (N, C, OH, OW) -> dx (N, C, H, W)
avg_pool_forward(x, pool_h, pool_w, stride, pad) -> (out, ctx)
avg_pool_backward(dout, ctx) -> dx
    average pooling: each window's mean, zero padding included in the divisor
    (pool_h * pool_w for every window, as PyTorch's AvgPool2d by default).
relu_forward(x) -> (out, mask)          mask = (x <= 0), bool, same shape
relu_backward(dout, mask) -> dx         dx = dout where not mask, else 0
sigmoid_forward(x) -> out               out = 1 / (1 + exp(-x))
sigmoid_backward(dout, out) -> dx       dx = dout * (1 - out) * out
leaky_relu_forward(x, alpha=0.01) -> (out, mask)     out = x where x > 0, else alpha * x;
                                                      mask = (x <= 0), bool
leaky_relu_backward(dout, mask, alpha=0.01) -> dx    dx = dout where not mask, else alpha * dout
affine_forward(x, W, b)
    x (N, D), W (D, M), b (M,) -> out (N, M) in W's dtype. x may have the other float
    dtype (the book feeds float32 images to float64 weights): it is converted to W's.
affine_backward(dout, x, W, need_dx=True)
    dout (N, M), x as given to affine_forward -> (dx (N, D), dW (D, M), db (M,)) in W's dtype.
    need_dx=False skips dx (None is returned for it): a net's first layer needs no dx.
softmax(x) -> y                         along the last axis, any leading dims
softmax_loss_forward(x, t)
    x (N, K) scores, t (N,) integer labels -> (loss (scalar of x.dtype), y (N, K))
softmax_loss_backward(y, t, dout)
    y (N, K) from the forward, t (N,) labels, dout scalar -> dx (N, K) = dout * (y - onehot(t)) / N
batchnorm_forward(x, gamma, beta, running_mean, running_var, momentum, eps, train_flg)
    x (N, D), gamma/beta/running_* (D,) -> (out (N, D), ctx). Normalises per
    feature. With train_flg, batch statistics are used and running_mean /
    running_var are updated IN PLACE: r = momentum * r + (1 - momentum) * stat.
    Otherwise the running statistics are used and ctx is None.
batchnorm_backward(dout, ctx)
    dout (N, D) -> (dx (N, D), dgamma (D,), dbeta (D,))
dropout_apply(x, mask) -> x * mask      mask bool, same shape as x
sgd_update(param, grad, lr)                            param -= lr * grad
momentum_update(param, grad, v, lr, momentum)          v = momentum*v - lr*grad; param += v
nesterov_update(param, grad, v, lr, momentum)          the book's Nesterov rule
adagrad_update(param, grad, h, lr)                     h += grad^2; param -= lr*grad/(sqrt(h)+1e-7)
rmsprop_update(param, grad, h, lr, decay_rate)         h = decay*h + (1-decay)*grad^2; same step
adam_update(param, grad, m, v, lr_t, beta1, beta2)     m, v moments; param -= lr_t*m/(sqrt(v)+1e-7)
    All updates are in place on param and the state arrays and return None.

Device placement (composite on host backends: identities over NumPy arrays)
---------------------------------------------------------------------------
owns(a) -> bool                         a lives where this backend computes: a NumPy array (or
                                        anything that is not a device array) on host backends,
                                        a device array on cuda
to_device(a)                            a in this backend's memory (host backends: a itself)
to_host(a)                              a NumPy array for a (a copy of a device array; any backend's)
zeros_like(a)                           zeros of a's shape and dtype in this backend's memory
astype(a, dtype)                        a converted to dtype, where a lives (a itself if it has it)
scale(x, s) -> out                      x * s in x's dtype (Dropout at evaluation)
all_finite(a) -> bool                   no NaN or infinity in a
"""
from typing import NamedTuple, Optional


class Param(NamedTuple):
    """A scalar parameter of an op (LeakyRelu's alpha): the forward and the backward op both take
    it, as a keyword argument with this default, after their arrays; a layer passes its attribute
    of the same name."""
    name: str
    #: the Python type a value is converted to (float, int or bool)
    type: type
    default: object


class Op(NamedTuple):
    """One entry of the op table."""
    #: the function's name in every backend namespace
    name: str
    #: exactly as ``str(inspect.signature(fn))`` prints it
    signature: str
    #: which example inputs fit it (``fastdl.kernels.examples`` builds them for tests, the sweep
    #: and asv): "elementwise" (one array in), "pool" (x, window, stride, pad), "conv", "block"
    #: (the fused conv ops), "affine", "softmax", "batchnorm", "dropout", "optim", or "device"
    #: (placement; never timed)
    family: str
    #: what it returns, by name; a value named ``ctx`` is opaque, the others are compared with
    #: the reference's
    returns: str
    #: for a backward op, its forward op: the backward is called as ``op(dout, *saved, **params)`` with
    #: what the forward returned after its output (or the output itself when it returns one array)
    backward_of: Optional[str] = None
    #: its scalar parameters (``Param``), in the order the signature lists them; a forward op and
    #: its backward op declare the same ones
    params: tuple = ()
    #: the arguments, by name, it may update in place (the optimizers' parameter and state, batch
    #: norm's running statistics); it modifies no other input
    updates: tuple = ()


#: LeakyRelu's negative slope
_ALPHA = Param("alpha", float, 0.01)

#: every op, in the order of the list above
TABLE = (
    Op("im2col", "(x, filter_h, filter_w, stride=1, pad=0)", "conv", "col"),
    Op("col2im", "(col, input_shape, filter_h, filter_w, stride=1, pad=0)", "conv", "x"),
    Op("conv_forward", "(x, W, b, stride, pad)", "conv", "out, ctx"),
    Op("conv_backward", "(dout, ctx, need_dx=True)", "conv", "dx, dW, db", "conv_forward"),
    Op("conv_relu_forward", "(x, W, b, stride, pad)", "block", "out, ctx"),
    Op("conv_relu_backward", "(dout, ctx, need_dx=True)", "block", "dx, dW, db", "conv_relu_forward"),
    Op("conv_relu_pool_forward", "(x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad)",
       "block", "out, ctx"),
    Op("conv_relu_pool_backward", "(dout, ctx, need_dx=True)", "block", "dx, dW, db",
       "conv_relu_pool_forward"),
    Op("pool_forward", "(x, pool_h, pool_w, stride, pad)", "pool", "out, ctx"),
    Op("pool_backward", "(dout, ctx)", "pool", "dx", "pool_forward"),
    Op("avg_pool_forward", "(x, pool_h, pool_w, stride, pad)", "pool", "out, ctx"),
    Op("avg_pool_backward", "(dout, ctx)", "pool", "dx", "avg_pool_forward"),
    Op("relu_forward", "(x)", "elementwise", "out, mask"),
    Op("relu_backward", "(dout, mask)", "elementwise", "dx", "relu_forward"),
    Op("sigmoid_forward", "(x)", "elementwise", "out"),
    Op("sigmoid_backward", "(dout, out)", "elementwise", "dx", "sigmoid_forward"),
    Op("leaky_relu_forward", "(x, alpha=0.01)", "elementwise", "out, mask", params=(_ALPHA,)),
    Op("leaky_relu_backward", "(dout, mask, alpha=0.01)", "elementwise", "dx", "leaky_relu_forward",
       params=(_ALPHA,)),
    Op("affine_forward", "(x, W, b)", "affine", "out"),
    Op("affine_backward", "(dout, x, W, need_dx=True)", "affine", "dx, dW, db"),
    Op("softmax", "(x)", "softmax", "y"),
    Op("softmax_loss_forward", "(x, t)", "softmax", "loss, y"),
    Op("softmax_loss_backward", "(y, t, dout)", "softmax", "dx"),
    Op("batchnorm_forward", "(x, gamma, beta, running_mean, running_var, momentum, eps, train_flg)",
       "batchnorm", "out, ctx", updates=("running_mean", "running_var")),
    Op("batchnorm_backward", "(dout, ctx)", "batchnorm", "dx, dgamma, dbeta", "batchnorm_forward"),
    Op("dropout_apply", "(x, mask)", "dropout", "out"),
    Op("sgd_update", "(param, grad, lr)", "optim", "", updates=("param",)),
    Op("momentum_update", "(param, grad, v, lr, momentum)", "optim", "", updates=("param", "v")),
    Op("nesterov_update", "(param, grad, v, lr, momentum)", "optim", "", updates=("param", "v")),
    Op("adagrad_update", "(param, grad, h, lr)", "optim", "", updates=("param", "h")),
    Op("rmsprop_update", "(param, grad, h, lr, decay_rate)", "optim", "", updates=("param", "h")),
    Op("adam_update", "(param, grad, m, v, lr_t, beta1, beta2)", "optim", "", updates=("param", "m", "v")),
    Op("owns", "(a)", "device", "bool"),
    Op("to_device", "(a)", "device", "a"),
    Op("to_host", "(a)", "device", "a"),
    Op("zeros_like", "(a)", "device", "a"),
    Op("astype", "(a, dtype)", "device", "a"),
    Op("scale", "(x, s)", "device", "out"),
    Op("all_finite", "(a)", "device", "bool"),
)

#: name -> signature, exactly as ``str(inspect.signature(fn))`` prints it
OPS = {op.name: op.signature for op in TABLE}
#: name -> its Op entry
BY_NAME = {op.name: op for op in TABLE}

#: Small constant added before the log in cross-entropy (the book's value).
LOG_EPS = 1e-7
#: Small constant added to the denominator in AdaGrad / RMSprop / Adam (the book's value).
OPT_EPS = 1e-7
