"""The op list: every backend defines each of these functions with exactly this signature.

A backend "registers" an op by defining a module-level function of that name in
its package namespace. ``tests/test_spec.py`` checks every available backend
against this table, so a missing or mis-spelt op fails the suite.

Conventions for all ops
-----------------------
* Floating inputs keep their dtype: float32 in, float32 out (and float64 alike).
  (affine_forward/backward: the dtype of W.)
* Inputs are never modified, except the arrays an op documents as updated in
  place (optimizer parameters and state, batch-norm running statistics).
* Any strides are accepted.
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
relu_forward(x) -> (out, mask)          mask = (x <= 0), bool, same shape
relu_backward(dout, mask) -> dx         dx = dout where not mask, else 0
sigmoid_forward(x) -> out               out = 1 / (1 + exp(-x))
sigmoid_backward(dout, out) -> dx       dx = dout * (1 - out) * out
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
"""

#: name -> signature, exactly as ``str(inspect.signature(fn))`` prints it.
OPS = {
    "im2col": "(x, filter_h, filter_w, stride=1, pad=0)",
    "col2im": "(col, input_shape, filter_h, filter_w, stride=1, pad=0)",
    "conv_forward": "(x, W, b, stride, pad)",
    "conv_backward": "(dout, ctx, need_dx=True)",
    "conv_relu_forward": "(x, W, b, stride, pad)",
    "conv_relu_backward": "(dout, ctx, need_dx=True)",
    "conv_relu_pool_forward": "(x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad)",
    "conv_relu_pool_backward": "(dout, ctx, need_dx=True)",
    "pool_forward": "(x, pool_h, pool_w, stride, pad)",
    "pool_backward": "(dout, ctx)",
    "relu_forward": "(x)",
    "relu_backward": "(dout, mask)",
    "sigmoid_forward": "(x)",
    "sigmoid_backward": "(dout, out)",
    "affine_forward": "(x, W, b)",
    "affine_backward": "(dout, x, W, need_dx=True)",
    "softmax": "(x)",
    "softmax_loss_forward": "(x, t)",
    "softmax_loss_backward": "(y, t, dout)",
    "batchnorm_forward": "(x, gamma, beta, running_mean, running_var, momentum, eps, train_flg)",
    "batchnorm_backward": "(dout, ctx)",
    "dropout_apply": "(x, mask)",
    "sgd_update": "(param, grad, lr)",
    "momentum_update": "(param, grad, v, lr, momentum)",
    "nesterov_update": "(param, grad, v, lr, momentum)",
    "adagrad_update": "(param, grad, h, lr)",
    "rmsprop_update": "(param, grad, h, lr, decay_rate)",
    "adam_update": "(param, grad, m, v, lr_t, beta1, beta2)",
}

#: Small constant added before the log in cross-entropy (the book's value).
LOG_EPS = 1e-7
#: Small constant added to the denominator in AdaGrad / RMSprop / Adam (the book's value).
OPT_EPS = 1e-7
