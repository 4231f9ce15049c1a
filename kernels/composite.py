"""The fused ops defined by composition: the unfused ops of one backend, one after another.

``conv_relu_*`` is Convolution then Relu, ``conv_relu_pool_*`` adds Pooling; this is what
each fused op means on every backend. The reference and cuda backends use these directly
with their own ops; the numba backend has real fused kernels for stride 1 and uses these
for the rest. ``ops`` is any namespace holding the backend's conv/relu/pool functions (each
backend passes its own package).
"""


def conv_relu_forward(ops, x, W, b, stride, pad):
    c, cctx = ops.conv_forward(x, W, b, stride, pad)
    out, mask = ops.relu_forward(c)
    return out, (cctx, mask)


def conv_relu_backward(ops, dout, ctx, need_dx):
    cctx, mask = ctx
    return ops.conv_backward(ops.relu_backward(dout, mask), cctx, need_dx)


def conv_relu_pool_forward(ops, x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad):
    r, (cctx, mask) = conv_relu_forward(ops, x, W, b, stride, pad)
    out, pctx = ops.pool_forward(r, pool_h, pool_w, pool_stride, pool_pad)
    return out, (cctx, mask, pctx)


def conv_relu_pool_backward(ops, dout, ctx, need_dx):
    cctx, mask, pctx = ctx
    return conv_relu_backward(ops, ops.pool_backward(dout, pctx), (cctx, mask), need_dx)
