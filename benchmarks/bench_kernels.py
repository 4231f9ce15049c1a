"""Kernel benchmarks: backend x dtype x shape for every hot op of the book's networks."""
import numpy as np

from .common import (AFFINE_SHAPES, BACKENDS, BLOCK_SHAPES, CONV_SHAPES, DTYPES, POOL_SHAPES, Warmed,
                     array, ops_or_skip, warm)


class Im2col(Warmed):
    params = (BACKENDS, DTYPES, list(CONV_SHAPES))
    param_names = ["backend", "dtype", "shape"]
    timeout = 300

    def setup(self, backend, dtype, shape):
        self.ops = ops_or_skip(backend)
        xs, ws, self.s, self.p = CONV_SHAPES[shape]
        self.x = array(xs, dtype)
        self.fh, self.fw = ws[2], ws[3]
        self.col = self.ops.im2col(self.x, self.fh, self.fw, self.s, self.p)
        warm((backend, dtype, shape), lambda: self.time_im2col(backend, dtype, shape),
             lambda: self.time_col2im(backend, dtype, shape))

    def time_im2col(self, backend, dtype, shape):
        self.ops.im2col(self.x, self.fh, self.fw, self.s, self.p)

    def time_col2im(self, backend, dtype, shape):
        self.ops.col2im(self.col, self.x.shape, self.fh, self.fw, self.s, self.p)


class Convolution(Warmed):
    params = (BACKENDS, DTYPES, list(CONV_SHAPES))
    param_names = ["backend", "dtype", "shape"]
    timeout = 600

    def setup(self, backend, dtype, shape):
        self.ops = ops_or_skip(backend)
        xs, ws, self.s, self.p = CONV_SHAPES[shape]
        self.x = array(xs, dtype, kind="uniform")
        self.W = array(ws, dtype, seed=1)
        self.b = array((ws[0],), dtype, seed=2)
        self.out, self.ctx = self.ops.conv_forward(self.x, self.W, self.b, self.s, self.p)
        self.dout = array(self.out.shape, dtype, seed=3)
        warm((backend, dtype, shape), lambda: self.time_forward(backend, dtype, shape),
             lambda: self.time_backward(backend, dtype, shape))

    def time_forward(self, backend, dtype, shape):
        self.ops.conv_forward(self.x, self.W, self.b, self.s, self.p)

    def time_backward(self, backend, dtype, shape):
        self.ops.conv_backward(self.dout, self.ctx)

    def peakmem_forward_backward(self, backend, dtype, shape):
        out, ctx = self.ops.conv_forward(self.x, self.W, self.b, self.s, self.p)
        self.ops.conv_backward(self.dout, ctx)


class ConvReluPool(Warmed):
    """The fused block a network runs (conv_relu[_pool]_forward/backward) next to the same three
    ops called one after another (``unfused``), forward + backward with dx."""
    params = (BACKENDS, DTYPES, list(BLOCK_SHAPES))
    param_names = ["backend", "dtype", "shape"]
    timeout = 600

    def setup(self, backend, dtype, shape):
        self.ops = ops_or_skip(backend)
        conv, self.pool = BLOCK_SHAPES[shape]
        xs, ws, self.s, self.p = CONV_SHAPES[conv]
        self.x = array(xs, dtype, kind="uniform")
        self.W = array(ws, dtype, seed=1)
        self.b = array((ws[0],), dtype, seed=2)
        out, _ = self._forward()
        self.dout = array(out.shape, dtype, seed=3)
        warm((backend, dtype, shape), lambda: self.time_fused(backend, dtype, shape),
             lambda: self.time_unfused(backend, dtype, shape))

    def _forward(self):
        if self.pool:
            return self.ops.conv_relu_pool_forward(self.x, self.W, self.b, self.s, self.p, 2, 2, 2, 0)
        return self.ops.conv_relu_forward(self.x, self.W, self.b, self.s, self.p)

    def time_fused(self, backend, dtype, shape):
        out, ctx = self._forward()
        (self.ops.conv_relu_pool_backward if self.pool else self.ops.conv_relu_backward)(self.dout, ctx)

    def time_unfused(self, backend, dtype, shape):
        ops = self.ops
        c, cctx = ops.conv_forward(self.x, self.W, self.b, self.s, self.p)
        r, mask = ops.relu_forward(c)
        d = self.dout
        if self.pool:
            out, pctx = ops.pool_forward(r, 2, 2, 2, 0)
            d = ops.pool_backward(d, pctx)
        ops.conv_backward(ops.relu_backward(d, mask), cctx)

    def peakmem_fused(self, backend, dtype, shape):
        self.time_fused(backend, dtype, shape)


class Pooling(Warmed):
    params = (BACKENDS, DTYPES, list(POOL_SHAPES))
    param_names = ["backend", "dtype", "shape"]

    def setup(self, backend, dtype, shape):
        self.ops = ops_or_skip(backend)
        xs, self.k, self.s, self.p = POOL_SHAPES[shape]
        self.x = array(xs, dtype)
        self.out, self.ctx = self.ops.pool_forward(self.x, self.k, self.k, self.s, self.p)
        self.dout = array(self.out.shape, dtype, seed=3)
        warm((backend, dtype, shape), lambda: self.time_forward(backend, dtype, shape),
             lambda: self.time_backward(backend, dtype, shape))

    def time_forward(self, backend, dtype, shape):
        self.ops.pool_forward(self.x, self.k, self.k, self.s, self.p)

    def time_backward(self, backend, dtype, shape):
        self.ops.pool_backward(self.dout, self.ctx)


class Affine(Warmed):
    params = (BACKENDS, DTYPES, list(AFFINE_SHAPES))
    param_names = ["backend", "dtype", "shape"]

    def setup(self, backend, dtype, shape):
        self.ops = ops_or_skip(backend)
        n, d, m = AFFINE_SHAPES[shape]
        self.x = array((n, d), dtype)
        self.W = array((d, m), dtype, seed=1)
        self.b = array((m,), dtype, seed=2)
        self.dout = array((n, m), dtype, seed=3)
        warm((backend, dtype, shape), lambda: self.time_forward(backend, dtype, shape),
             lambda: self.time_backward(backend, dtype, shape))

    def time_forward(self, backend, dtype, shape):
        self.ops.affine_forward(self.x, self.W, self.b)

    def time_backward(self, backend, dtype, shape):
        self.ops.affine_backward(self.dout, self.x, self.W)


class SoftmaxWithLoss(Warmed):
    params = (BACKENDS, DTYPES)
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        self.ops = ops_or_skip(backend)
        self.x = array((100, 10), dtype)
        self.t = np.random.default_rng(0).integers(0, 10, 100)
        warm((backend, dtype), lambda: self.time_forward_backward(backend, dtype))

    def time_forward_backward(self, backend, dtype):
        loss, y = self.ops.softmax_loss_forward(self.x, self.t)
        self.ops.softmax_loss_backward(y, self.t, 1.0)


class BatchNorm(Warmed):
    params = (BACKENDS, DTYPES)
    param_names = ["backend", "dtype"]

    def setup(self, backend, dtype):
        self.ops = ops_or_skip(backend)
        self.x = array((100, 1000), dtype)
        self.gamma = np.ones(1000, dtype=dtype)
        self.beta = np.zeros(1000, dtype=dtype)
        self.dout = array((100, 1000), dtype, seed=3)
        warm((backend, dtype), lambda: self.time_forward_backward(backend, dtype))

    def time_forward_backward(self, backend, dtype):
        rm = np.zeros(1000, dtype=dtype)
        rv = np.zeros(1000, dtype=dtype)
        out, ctx = self.ops.batchnorm_forward(self.x, self.gamma, self.beta, rm, rv, 0.9, 1e-6, True)
        self.ops.batchnorm_backward(self.dout, ctx)


class OptimizerStep(Warmed):
    """One Adam update of SimpleConvNet's parameters (about 450,000 values)."""
    params = (BACKENDS, DTYPES)
    param_names = ["backend", "dtype"]
    _state = {}

    def setup(self, backend, dtype):
        self.ops = ops_or_skip(backend)
        key = (backend, dtype)
        if key not in self._state:   # asv re-runs setup before each sample: the state is kept
            shapes = [(30, 1, 5, 5), (30,), (4320, 100), (100,), (100, 10), (10,)]
            rng = np.random.default_rng(0)
            self._state[key] = ([rng.standard_normal(s).astype(dtype) for s in shapes],
                                [rng.standard_normal(s).astype(dtype) for s in shapes],
                                [np.zeros(s, dtype=dtype) for s in shapes],
                                [np.zeros(s, dtype=dtype) for s in shapes])
        self.p, self.g, self.m, self.v = self._state[key]
        warm((backend, dtype), lambda: self.time_adam(backend, dtype))

    def time_adam(self, backend, dtype):
        for p, g, m, v in zip(self.p, self.g, self.m, self.v):
            self.ops.adam_update(p, g, m, v, 0.001, 0.9, 0.999)
