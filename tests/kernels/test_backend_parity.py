"""Every op of every fast backend against the reference backend on the same inputs.

float32 and float64, contiguous and strided inputs, stride and padding, odd
sizes and single-sample batches; inputs come back unmodified. Tolerances: the
fast kernels sum in a different order, so float32 results agree to about 1e-5
relative to the values' scale and float64 results to about 1e-12.
"""
import numpy as np
import pytest
from hypothesis import given, strategies as st

from fastdl import backend
from fastdl.kernels.composite import reference_fallbacks
from fastdl.kernels.examples import OPTIM_ARGS, SIZES, op_cases, split
from fastdl.kernels.spec import TABLE
from tests.conftest import FAST_BACKENDS
from tests.helpers import check_op, layouts, strided

pytestmark = pytest.mark.skipif(not FAST_BACKENDS, reason="only the reference backend is available")

REF = backend.ops("numpy")


#: (backend, path): the numba kernels run each case on the calling thread alone and split over
#: Numba's threads (``_chunks.forced``), whatever the case's size; the size thresholds that
#: choose between the two are tested in test_kernel_paths.py
FAST_PATHS = [(b, m) for b in FAST_BACKENDS for m in (("serial", "parallel") if b == "numba" else (None,))]


@pytest.fixture(params=FAST_PATHS, ids=[b if m is None else f"{b}-{m}" for b, m in FAST_PATHS])
def fast(request):
    name, mode = request.param
    if mode is None:
        yield backend.ops(name)
        return
    from fastdl.kernels.cpu import _chunks
    with _chunks.forced(mode):
        yield backend.ops(name)


def close(got, want, dtype, what=""):
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, what
    assert got.dtype == want.dtype == dtype, (what, got.dtype, want.dtype)
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    if dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * scale, err_msg=what)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12 * scale, err_msg=what)


def unchanged(arrays):
    """Context: assert that the given arrays are not modified."""
    class _C:
        def __enter__(self):
            self.copies = [a.copy() for a in arrays]

        def __exit__(self, *exc):
            if exc[0] is None:
                for a, c in zip(arrays, self.copies):
                    np.testing.assert_array_equal(a, c)
    return _C()


CONV = [  # N, C, H, W, FN, fh, fw, stride, pad
    (2, 3, 7, 7, 4, 3, 3, 1, 1),
    (1, 1, 28, 28, 5, 5, 5, 1, 0),      # the book's first layer, one sample
    (3, 4, 9, 6, 2, 3, 2, 2, 1),
    (2, 2, 8, 9, 3, 4, 3, 3, 2),
    (1, 3, 5, 5, 2, 5, 5, 1, 2),
    (2, 16, 14, 14, 8, 3, 3, 1, 2),     # DeepConvNet's conv4 padding
    (1, 2, 1, 1, 3, 1, 1, 1, 0),
]


@pytest.mark.parametrize("case", CONV)
def test_convolution(case, fast, dtype, rng):
    N, C, H, W, FN, fh, fw, s, p = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C, fh, fw)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    want, rctx = REF.conv_forward(x, Wt, b, s, p)
    dout = rng.standard_normal(want.shape).astype(dtype)
    rdx, rdW, rdb = REF.conv_backward(dout, rctx)
    for kind, xv in layouts(x):
        dv = strided(dout) if kind != "contiguous" else dout
        with unchanged([xv, Wt, b, dv]):
            out, ctx = fast.conv_forward(xv, Wt, b, s, p)
            close(out, want, dtype, f"out {kind}")
            dx, dW, db = fast.conv_backward(dv, ctx)
        close(dx, rdx, dtype, f"dx {kind}")
        close(dW, rdW, dtype, f"dW {kind}")
        close(db, rdb, dtype, f"db {kind}")
    none, dW2, db2 = fast.conv_backward(dout, fast.conv_forward(x, Wt, b, s, p)[1], need_dx=False)
    assert none is None
    close(dW2, rdW, dtype, "dW without dx")


@pytest.mark.parametrize("min_c,dw_min_l", [(1, 0), (1, 10 ** 9), (10 ** 6, 0)])
def test_numba_stride1_convolution_both_product_paths(min_c, dw_min_l, dtype, rng, monkeypatch):
    """The numba stride-1 kernels multiply either through im2col columns or tap by tap from the
    padded image (chosen by channel count, SHIFT_MIN_C, and only when the images are split over
    threads), and in the tap-by-tap mode compute dW tap by tap or through the columns (by the
    output rows' length, TAP_DW_MIN_L); force each path on every stride-1 case."""
    if "numba" not in FAST_BACKENDS:
        pytest.skip("numba backend not available")
    from fastdl.kernels.cpu import _chunks, conv_s1
    monkeypatch.setattr(conv_s1, "SHIFT_MIN_C", min_c)
    monkeypatch.setattr(conv_s1, "TAP_DW_MIN_L", dw_min_l)
    with _chunks.forced("parallel"):
        _both_product_paths(dtype, rng)


def _both_product_paths(dtype, rng):
    fast = backend.ops("numba")
    for N, C, H, W, FN, fh, fw, s, p in CONV:
        if s != 1:
            continue
        x = strided(rng.standard_normal((N, C, H, W)).astype(dtype))
        Wt = rng.standard_normal((FN, C, fh, fw)).astype(dtype)
        b = rng.standard_normal(FN).astype(dtype)
        want, rctx = REF.conv_forward(x, Wt, b, s, p)
        dout = rng.standard_normal(want.shape).astype(dtype)
        out, ctx = fast.conv_forward(x, Wt, b, s, p)
        close(out, want, dtype, f"out {C}")
        for g, r in zip(fast.conv_backward(dout, ctx), REF.conv_backward(dout, rctx)):
            close(g, r, dtype, f"grads {C}")
        out, ctx = fast.conv_relu_pool_forward(x, Wt, b, s, p, 2, 2, 2, 0) if min(want.shape[2:]) >= 2 else \
            fast.conv_relu_forward(x, Wt, b, s, p)
        wantf, rback = _compose(REF, x, Wt, b, s, p, (2, 2, 2, 0) if min(want.shape[2:]) >= 2 else None)
        close(out, wantf, dtype, f"fused {C}")
        doutf = rng.standard_normal(out.shape).astype(dtype)
        backward = fast.conv_relu_pool_backward if min(want.shape[2:]) >= 2 else fast.conv_relu_backward
        for g, r in zip(backward(doutf, ctx), rback(doutf)):
            close(g, r, dtype, f"fused grads {C}")


def test_convolution_with_strided_weights(fast, dtype, rng):
    x = rng.standard_normal((2, 3, 6, 6)).astype(dtype)
    Wt = strided(rng.standard_normal((4, 3, 3, 3)).astype(dtype), "transpose")
    b = strided(rng.standard_normal(4).astype(dtype))
    close(fast.conv_forward(x, Wt, b, 1, 1)[0], REF.conv_forward(x, Wt, b, 1, 1)[0], dtype)


# -- fused Convolution -> Relu [-> Pooling] --------------------------------------------

FUSED = [  # N, C, H, W, FN, fh, fw, stride, pad, (pool_h, pool_w, pool_stride, pool_pad) or None
    (3, 1, 28, 28, 6, 5, 5, 1, 0, (2, 2, 2, 0)),      # SimpleConvNet's block
    (2, 4, 14, 14, 5, 3, 3, 1, 1, (2, 2, 2, 0)),      # DeepConvNet's, even size
    (2, 3, 7, 7, 4, 3, 3, 1, 1, (2, 2, 2, 0)),        # odd size: the last row/column is in no window
    (2, 2, 9, 8, 3, 3, 2, 1, 1, (3, 3, 2, 1)),        # overlapping, padded windows
    (1, 2, 8, 8, 3, 3, 3, 1, 0, (2, 2, 1, 0)),        # stride-1 pooling: positions shared by windows
    (2, 3, 9, 7, 2, 3, 3, 2, 1, (2, 2, 2, 0)),        # strided convolution (unfused path)
    (2, 16, 7, 6, 5, 3, 3, 1, 1, (2, 2, 2, 0)),       # 16 channels: the numba products go tap by tap
    (1, 3, 6, 6, 4, 3, 3, 1, 1, None),                # Convolution -> Relu
    (2, 17, 5, 6, 3, 2, 3, 1, 2, None),
    (2, 2, 9, 8, 3, 3, 2, 2, 1, None),
]


def _compose(ops, x, Wt, b, s, p, pool):
    """The definition: conv, relu[, pool] of one backend, one after another."""
    c, cctx = ops.conv_forward(x, Wt, b, s, p)
    r, mask = ops.relu_forward(c)
    if pool is None:
        return r, lambda d, need_dx=True: ops.conv_backward(ops.relu_backward(d, mask), cctx, need_dx)
    out, pctx = ops.pool_forward(r, *pool)
    return out, lambda d, need_dx=True: ops.conv_backward(ops.relu_backward(ops.pool_backward(d, pctx), mask),
                                                          cctx, need_dx)


def _fused(ops, x, Wt, b, s, p, pool):
    if pool is None:
        out, ctx = ops.conv_relu_forward(x, Wt, b, s, p)
        return out, lambda d, need_dx=True: ops.conv_relu_backward(d, ctx, need_dx)
    out, ctx = ops.conv_relu_pool_forward(x, Wt, b, s, p, *pool)
    return out, lambda d, need_dx=True: ops.conv_relu_pool_backward(d, ctx, need_dx)


@pytest.mark.parametrize("case", FUSED)
def test_fused_conv_relu_pool(case, fast, dtype, rng):
    """conv_relu_forward/backward and conv_relu_pool_forward/backward against the reference's
    conv -> relu -> pool, and bit for bit against the same backend's unfused ops."""
    N, C, H, W, FN, fh, fw, s, p, pool = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C, fh, fw)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    want, rback = _compose(REF, x, Wt, b, s, p, pool)
    dout = rng.standard_normal(want.shape).astype(dtype)
    rgrads = rback(dout)
    for kind, xv in layouts(x):
        dv = strided(dout) if kind != "contiguous" else dout
        with unchanged([xv, Wt, b, dv]):
            out, back = _fused(fast, xv, Wt, b, s, p, pool)
            close(out, want, dtype, f"out {kind}")
            grads = back(dv)
        for g, r, name in zip(grads, rgrads, ("dx", "dW", "db")):
            close(g, r, dtype, f"{name} {kind}")
    out, back = _fused(fast, x, Wt, b, s, p, pool)
    none, dW, db = back(dout, need_dx=False)
    assert none is None
    close(dW, rgrads[1], dtype, "dW without dx")
    uout, uback = _compose(fast, x, Wt, b, s, p, pool)
    np.testing.assert_array_equal(out, uout)
    for g, u in zip(back(dout), uback(dout)):
        np.testing.assert_array_equal(g, u)


@pytest.mark.parametrize("pool", [(2, 2, 2, 0), None])
def test_fused_ties_and_dead_units_follow_the_layers(pool, fast, dtype, rng):
    """W = 0 makes every window a tie: the first position must win (b > 0), or, with b <= 0,
    ReLU must pass no gradient at all; the same as Relu and Pooling one after another."""
    x = rng.standard_normal((2, 2, 8, 8)).astype(dtype)
    Wt = np.zeros((3, 2, 3, 3), dtype=dtype)
    b = np.array([1.5, 0.0, -1.0], dtype=dtype)
    want, rback = _compose(REF, x, Wt, b, 1, 1, pool)
    out, back = _fused(fast, x, Wt, b, 1, 1, pool)
    np.testing.assert_array_equal(out, want)
    dout = rng.standard_normal(want.shape).astype(dtype)
    for g, r in zip(back(dout), rback(dout)):
        close(g, r, dtype)
    assert np.all(back(dout)[1][1:] == 0)                    # filters with b <= 0 learn nothing


def test_fused_with_nan_matches_the_layers(fast, rng):
    """A NaN in the convolution output: the fused op gives what the three layers give."""
    x = rng.standard_normal((2, 2, 6, 6))
    x[0, 1, 2, 3] = np.nan
    Wt = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    for pool in ((2, 2, 2, 0), None):
        want, rback = _compose(REF, x, Wt, b, 1, 1, pool)
        out, back = _fused(fast, x, Wt, b, 1, 1, pool)
        np.testing.assert_array_equal(np.isnan(out), np.isnan(want))
        np.testing.assert_allclose(out, want, rtol=1e-11, atol=1e-12)
        d = np.ones_like(want)
        for g, r in zip(back(d), rback(d)):
            np.testing.assert_allclose(g, r, rtol=1e-11, atol=1e-12)


@pytest.mark.parametrize("case", [(2, 3, 24, 24, 2, 2, 2, 0), (1, 2, 7, 5, 3, 3, 2, 1),
                                  (2, 2, 6, 6, 3, 2, 1, 1), (3, 1, 5, 5, 2, 2, 2, 0),
                                  (1, 1, 1, 1, 1, 1, 1, 0), (2, 2, 9, 9, 3, 3, 3, 2)])
def test_pooling(case, fast, dtype, rng):
    N, C, H, W, ph, pw, s, p = case
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    x[0, 0, 0, :2] = 5.0                                   # a tie: the first maximum must win
    want, rctx = REF.pool_forward(x, ph, pw, s, p)
    dout = rng.standard_normal(want.shape).astype(dtype)
    rdx = REF.pool_backward(dout, rctx)
    for kind, xv in layouts(x):
        with unchanged([xv, dout]):
            out, ctx = fast.pool_forward(xv, ph, pw, s, p)
            close(out, want, dtype, kind)
            close(fast.pool_backward(strided(dout) if kind != "contiguous" else dout, ctx), rdx, dtype, kind)


def test_pooling_nan_follows_numpy_argmax(fast, rng):
    x = rng.standard_normal((1, 2, 4, 4))
    x[0, 0, 1, 1] = np.nan
    x[0, 1, 0, 1] = np.nan
    x[0, 1, 1, 0] = np.nan
    want, rctx = REF.pool_forward(x, 2, 2, 2, 0)
    out, ctx = fast.pool_forward(x, 2, 2, 2, 0)
    np.testing.assert_array_equal(out, want)
    d = np.ones_like(out)
    np.testing.assert_array_equal(fast.pool_backward(d, ctx), REF.pool_backward(d, rctx))


ELEMENTWISE_SHAPES = [(7,), (3, 5), (2, 3, 4, 5), (1, 1)]
#: the spec's element-wise forward ops, each with its backward op
ELEMENTWISE = [(op.name, next(b.name for b in TABLE if b.backward_of == op.name))
               for op in TABLE if op.family == "elementwise" and not op.backward_of]


def _same(got, want, dtype, what):
    if np.asarray(want).dtype == np.bool_:
        np.testing.assert_array_equal(got, want, err_msg=what)
    else:
        close(got, want, dtype, what)


@pytest.mark.parametrize("forward, backward", ELEMENTWISE, ids=[f for f, _ in ELEMENTWISE])
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_elementwise(forward, backward, shape, fast, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype) * 3
    x.flat[0] = 0.0
    dout = rng.standard_normal(shape).astype(dtype)
    want, rsaved = split(getattr(REF, forward)(x))
    for kind, xv in layouts(x):
        dv = strided(dout) if kind != "contiguous" and dout.ndim else dout
        with unchanged([xv, dv]):
            out, saved = split(getattr(fast, forward)(xv))
            close(out, want, dtype, kind)
            for s, r in zip(saved, rsaved):
                _same(s, r, dtype, kind)
            close(getattr(fast, backward)(dv, *saved), getattr(REF, backward)(dout, *rsaved), dtype, kind)
    big = np.array([-1000, -50, 0, 50, 1000], dtype=dtype)
    close(split(getattr(fast, forward)(big))[0], split(getattr(REF, forward)(big))[0], dtype, "extremes")


@pytest.mark.parametrize("op", [op.name for op in TABLE if op.family == "dropout"])
@pytest.mark.parametrize("shape", ELEMENTWISE_SHAPES)
def test_dropout(op, shape, fast, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype) * 3
    mask = rng.random(shape) > 0.5
    for kind, xv in layouts(x):
        with unchanged([xv, mask]):
            close(getattr(fast, op)(xv, mask), getattr(REF, op)(x, mask), dtype, kind)


@pytest.mark.parametrize("N,D,M", [(5, 7, 3), (1, 4, 2), (100, 33, 10)])
def test_affine(N, D, M, fast, dtype, rng):
    x = rng.standard_normal((N, D)).astype(dtype)
    Wt = rng.standard_normal((D, M)).astype(dtype)
    b = rng.standard_normal(M).astype(dtype)
    dout = rng.standard_normal((N, M)).astype(dtype)
    want = REF.affine_forward(x, Wt, b)
    rgrads = REF.affine_backward(dout, x, Wt)
    for kind, xv in layouts(x):
        Wv = strided(Wt, "transpose") if kind == "transpose" else Wt
        with unchanged([xv, Wv, b, dout]):
            close(fast.affine_forward(xv, Wv, b), want, dtype, kind)
            for g, r, name in zip(fast.affine_backward(dout, xv, Wv), rgrads, ("dx", "dW", "db")):
                close(g, r, dtype, f"{name} {kind}")
            none, dW, db = fast.affine_backward(dout, xv, Wv, need_dx=False)
            assert none is None
            close(dW, rgrads[1], dtype, f"dW without dx {kind}")
            close(db, rgrads[2], dtype, f"db without dx {kind}")


@pytest.mark.parametrize("shape", [(4, 10), (1, 3), (2, 3, 5)])
def test_softmax_and_loss(shape, fast, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    for kind, xv in layouts(x):
        with unchanged([xv]):
            close(fast.softmax(xv), REF.softmax(x), dtype, kind)
    if len(shape) == 2:
        t = rng.integers(0, shape[1], size=shape[0])
        loss, y = fast.softmax_loss_forward(x, t)
        rloss, ry = REF.softmax_loss_forward(x, t)
        assert np.asarray(loss).dtype == dtype
        close(np.asarray(loss), np.asarray(rloss), dtype)
        close(y, ry, dtype)
        close(fast.softmax_loss_backward(y, t, 1.0), REF.softmax_loss_backward(ry, t, 1.0), dtype)
        close(fast.softmax_loss_backward(y, t, 0.5), REF.softmax_loss_backward(ry, t, 0.5), dtype)


@pytest.mark.parametrize("N,D", [(8, 5), (1, 3), (50, 70)])
def test_batchnorm(N, D, fast, dtype, rng):
    x = (rng.standard_normal((N, D)) * 2 + 1).astype(dtype)
    gamma = rng.uniform(0.5, 2, D).astype(dtype)
    beta = rng.standard_normal(D).astype(dtype)
    dout = rng.standard_normal((N, D)).astype(dtype)
    rm, rv = rng.random(D).astype(dtype), rng.random(D).astype(dtype)
    fm, fv = rm.copy(), rv.copy()
    for kind, xv in layouts(x):
        rm0, rv0 = rm.copy(), rv.copy()
        fm[:], fv[:] = rm, rv
        with unchanged([xv, gamma, beta, dout]):
            want, rctx = REF.batchnorm_forward(x, gamma, beta, rm0, rv0, 0.9, 1e-6, True)
            out, ctx = fast.batchnorm_forward(xv, gamma, beta, fm, fv, 0.9, 1e-6, True)
            close(out, want, dtype, kind)
            close(fm, rm0, dtype, "running_mean")
            close(fv, rv0, dtype, "running_var")
            for g, r in zip(fast.batchnorm_backward(dout, ctx), REF.batchnorm_backward(dout, rctx)):
                close(g, r, dtype, kind)
            ev, none = fast.batchnorm_forward(xv, gamma, beta, fm, fv, 0.9, 1e-6, False)
            assert none is None
            close(ev, REF.batchnorm_forward(x, gamma, beta, rm0, rv0, 0.9, 1e-6, False)[0], dtype, "eval")


def _update_args(name):
    """(number of state arrays, scalars) of update op ``name``, from its example arguments."""
    args = OPTIM_ARGS[name]("param", "grad", "state1", "state2")
    n_state = sum(a in ("state1", "state2") for a in args)
    return n_state, args[2 + n_state:]


#: every update op of the spec: (number of state arrays, scalars)
UPDATES = {op.name: _update_args(op.name) for op in TABLE if op.family == "optim"}


@pytest.mark.parametrize("op", list(UPDATES))
@pytest.mark.parametrize("kind", ["contiguous", "step", "transpose"])
def test_optimizer_updates(op, kind, fast, dtype, rng):
    n_state, scalars = UPDATES[op]
    p = rng.standard_normal((6, 5)).astype(dtype)
    g = rng.standard_normal((6, 5)).astype(dtype)
    states = [np.abs(rng.standard_normal((6, 5))).astype(dtype) for _ in range(n_state)]
    rp, rs = p.copy(), [s.copy() for s in states]
    fp = dict(layouts(p))[kind].copy() if kind == "contiguous" else strided(p.copy(), kind)
    fs = [strided(s.copy(), kind) if kind != "contiguous" else s.copy() for s in states]
    gv = strided(g, kind) if kind != "contiguous" else g
    for _ in range(3):
        getattr(REF, op)(rp, g, *rs, *scalars)
        with unchanged([gv]):
            getattr(fast, op)(fp, gv, *fs, *scalars)
    close(fp, rp, dtype, "param")
    for a, b in zip(fs, rs):
        close(a, b, dtype, "state")


#: the example shapes of ``examples.SIZES["tiny"]`` plus, for element-wise and update ops, one
#: above the numba modules' ``NUMPY_BELOW`` (below it some of them are NumPy's own expression)
SPEC_SIZES = dict(SIZES["tiny"], elementwise=SIZES["tiny"]["elementwise"] + [(37, 41)],
                  optim=SIZES["tiny"]["optim"] + [1517])


def _spec_cases():
    """(backend, path, op, make) for every op of the spec each fast backend computes itself (an op
    it runs on the reference would compare the reference with itself: test_spec_ops.py lists
    those), on each of its ``SPEC_SIZES`` example cases."""
    out = []
    for b, m in FAST_PATHS:
        fallbacks = reference_fallbacks(backend.ops(b))
        for op in TABLE:
            if op.name in fallbacks:
                continue
            for lab, make in op_cases(op.name, SPEC_SIZES):
                out.append(pytest.param(b, m, op.name, make,
                                        id=f"{b if m is None else f'{b}-{m}'}-{op.name}[{lab}]"))
    return out


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("name, mode, op_name, make", _spec_cases())
def test_every_op_on_both_paths(name, mode, op_name, make, strided, dtype):
    """Every op of the spec, from the spec alone: a new op is compared on both forced paths, both
    dtypes, contiguous and strided inputs, with no edit here."""
    if mode is None:
        check_op(op_name, make, [backend.ops(name)], np.dtype(dtype).name, strided)
        return
    from fastdl.kernels.cpu import _chunks
    with _chunks.forced(mode):
        check_op(op_name, make, [backend.ops(name)], np.dtype(dtype).name, strided)


def test_spec_sizes_reach_the_numba_kernels():
    """The largest ``SPEC_SIZES`` element-wise and update cases are at least every numba module's
    ``NUMPY_BELOW``, so test_every_op_on_both_paths runs those ops' kernels, not NumPy's shortcut."""
    if "numba" not in FAST_BACKENDS:
        pytest.skip("numba backend not available")
    import sys
    cpu = backend.ops("numba")
    below = {sys.modules[getattr(cpu, op.name).__module__].__dict__.get("NUMPY_BELOW", 0)
             for op in TABLE if op.family != "device"}
    assert min(SPEC_SIZES["optim"][-1], int(np.prod(SPEC_SIZES["elementwise"][-1]))) >= max(below) > 0


def _computing_ops():
    """Every op of the spec that computes (has example cases): device placement aside."""
    return [op.name for op in TABLE if op_cases(op.name)]


def _spy_on_compiled_kernels(monkeypatch, calls):
    """Every compiled kernel of the numba backend (``compiled_kernels``), wherever a kernel
    module binds it, replaced by a wrapper that appends (kernel, dtypes of its array arguments)
    to ``calls``, then runs it. Kernels must already be compiled for the calls made under the
    spy: a kernel compiled later would find a Python wrapper where it expects a kernel."""
    import sys
    from fastdl.kernels.cpu import compiled_kernels
    names = {id(d): name for name, d in compiled_kernels().items()}
    package = "fastdl.kernels.cpu."
    for modname, mod in list(sys.modules.items()):
        if not modname.startswith(package) or mod is None:
            continue
        for attr, obj in list(vars(mod).items()):
            if id(obj) in names:
                def spy(*args, _kernel=obj, _name=names[id(obj)]):
                    calls.append((_name, {a.dtype for a in args if isinstance(a, np.ndarray)}))
                    return _kernel(*args)
                monkeypatch.setattr(mod, attr, spy)


@pytest.mark.parametrize("op_name", _computing_ops())
def test_compiled_kernels_really_ran(op_name, dtype, monkeypatch, record_property):
    """Each op of the spec the numba backend computes itself, run on its largest example case
    with every kernel forced onto the parallel path (where even the matrix products are this
    backend's kernels rather than NumPy's), calls at least one of the backend's compiled kernels
    with arrays of the case's dtype: an op that hands its work to the reference (or to NumPy)
    fails here, even though its parity with the reference holds. Each kernel is compiled (or
    loaded from Numba's cache) by a first call before the spy goes in. An op the backend runs on
    the reference kernel (``composite.via_reference``) is reported instead, and must call none."""
    if "numba" not in FAST_BACKENDS:
        pytest.skip("numba backend not available")
    import numba
    if numba.config.DISABLE_JIT:
        pytest.skip("NUMBA_DISABLE_JIT=1: kernels run as plain Python")
    from fastdl.kernels.cpu import _chunks, _compile
    cpu = backend.ops("numba")
    via_reference = op_name in reference_fallbacks(cpu)
    record_property("runs_on_the_reference", via_reference)
    label, make = op_cases(op_name)[-1]
    monkeypatch.setattr(_compile, "_mode", "lazy")         # compile in this thread, never the fallback
    with _chunks.forced("parallel"):
        make(cpu, dtype)()                                 # compiles what the spied call needs
        calls = []
        _spy_on_compiled_kernels(monkeypatch, calls)
        call = make(cpu, dtype)                            # a backward op's forward runs here
        calls.clear()
        call()
    want = np.dtype(dtype)
    ran = sorted({name for name, dtypes in calls if want in dtypes})
    if via_reference:
        assert calls == [], f"{op_name} is listed as running on the reference but called {calls}"
        return
    assert ran, f"{op_name} [{label}] {want}: no compiled kernel of the numba backend ran " \
                f"(called with other dtypes: {sorted({n for n, _ in calls})})"


# -- property-based: random convolution and pooling geometries ------------------------

@st.composite
def conv_case(draw):
    N, C, FN = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    fh, fw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    s, p = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, fh - 2 * p), 9))
    W = draw(st.integers(max(1, fw - 2 * p), 9))
    return N, C, H, W, FN, fh, fw, s, p


@given(case=conv_case(), f32=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_convolution_property(case, f32, seed):
    N, C, H, W, FN, fh, fw, s, p = case
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C, fh, fw)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    want, rctx = REF.conv_forward(x, Wt, b, s, p)
    dout = rng.standard_normal(want.shape).astype(dtype)
    for name in FAST_BACKENDS:
        ops = backend.ops(name)
        out, ctx = ops.conv_forward(x, Wt, b, s, p)
        close(out, want, dtype)
        for g, r in zip(ops.conv_backward(dout, ctx), REF.conv_backward(dout, rctx)):
            close(g, r, dtype)


@st.composite
def pool_case(draw):
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    ph, pw, s = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 3))
    p = draw(st.integers(0, min(ph, pw) - 1))
    H = draw(st.integers(max(1, ph - 2 * p), 9))
    W = draw(st.integers(max(1, pw - 2 * p), 9))
    return N, C, H, W, ph, pw, s, p


@given(case=pool_case(), f32=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_pooling_property(case, f32, seed):
    N, C, H, W, ph, pw, s, p = case
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(seed)
    x = rng.integers(-3, 4, size=(N, C, H, W)).astype(dtype)      # small integers: many ties
    want, rctx = REF.pool_forward(x, ph, pw, s, p)
    dout = rng.standard_normal(want.shape).astype(dtype)
    for name in FAST_BACKENDS:
        ops = backend.ops(name)
        out, ctx = ops.pool_forward(x, ph, pw, s, p)
        np.testing.assert_array_equal(out, want)
        close(ops.pool_backward(dout, ctx), REF.pool_backward(dout, rctx), dtype)


@given(case=conv_case(), pool=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3)),
       f32=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_fused_property(case, pool, f32, seed):
    N, C, H, W, FN, fh, fw, s, p = case
    OH, OW = (H + 2 * p - fh) // s + 1, (W + 2 * p - fw) // s + 1
    ph, pw, ps = min(pool[0], OH), min(pool[1], OW), pool[2]
    pp = seed % min(ph, pw)
    dtype = np.float32 if f32 else np.float64
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C, fh, fw)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    want, rback = _compose(REF, x, Wt, b, s, p, (ph, pw, ps, pp))
    dout = rng.standard_normal(want.shape).astype(dtype)
    for name in FAST_BACKENDS:
        out, back = _fused(backend.ops(name), x, Wt, b, s, p, (ph, pw, ps, pp))
        close(out, want, dtype)
        for g, r in zip(back(dout), rback(dout)):
            close(g, r, dtype)


def test_numba_backend_without_numpys_openblas_uses_the_fallback_and_agrees():
    """FASTDL_BLAS=numba serves the same kernels with @cfunc products on Numba's np.dot
    (what machines whose NumPy has no OpenBLAS CBLAS get)."""
    import subprocess
    import sys
    if "numba" not in FAST_BACKENDS:
        pytest.skip("numba backend not available")
    code = """
import numpy as np, fastdl
from fastdl.kernels.cpu import _blas
ref, cpu = fastdl.backend.ops("numpy"), fastdl.backend.ops("numba")
rng = np.random.default_rng(0)
worst = 0.0
for dt in (np.float32, np.float64):
    for s, p in ((1, 1), (2, 1)):
        x = rng.standard_normal((3, 4, 7, 7)).astype(dt); W = rng.standard_normal((5, 4, 3, 3)).astype(dt)
        b = rng.standard_normal(5).astype(dt)
        o, c = cpu.conv_forward(x, W, b, s, p); ro, rc = ref.conv_forward(x, W, b, s, p)
        d = rng.standard_normal(o.shape).astype(dt)
        for g, r in zip((o,) + cpu.conv_backward(d, c), (ro,) + ref.conv_backward(d, rc)):
            worst = max(worst, float(np.max(np.abs(g - r)) / np.max(np.abs(r))))
    a = rng.standard_normal((6, 9)).astype(dt); Wa = rng.standard_normal((9, 4)).astype(dt)
    da = rng.standard_normal((6, 4)).astype(dt)
    for g, r in zip(cpu.affine_backward(da, a, Wa), ref.affine_backward(da, a, Wa)):
        worst = max(worst, float(np.max(np.abs(g - r)) / np.max(np.abs(r))))
print(_blas.SOURCE)
print(worst)
"""
    import os
    env = dict(os.environ, FASTDL_BLAS="numba")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    source, worst = r.stdout.strip().splitlines()[-2:]
    assert source.startswith("numba np.dot")
    assert float(worst) < 1e-5


def test_numba_kernels_leave_numpys_blas_threads_as_they_were():
    """The kernels set NumPy's OpenBLAS to one thread while they run; afterwards NumPy's own
    products must have their thread count back (a race here once left it at 1)."""
    if "numba" not in FAST_BACKENDS:
        pytest.skip("numba backend not available")
    from fastdl.kernels.cpu import _blas
    before = _blas.numpy_openblas_threads()
    if before is None:
        pytest.skip("kernels use the np.dot fallback here")
    cpu = backend.ops("numba")
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 4, 9, 9)).astype(np.float32)
    W = rng.standard_normal((6, 4, 3, 3)).astype(np.float32)
    for _ in range(20):
        out, ctx = cpu.conv_forward(x, W, np.zeros(6, np.float32), 1, 1)
        cpu.conv_backward(out, ctx)
        cpu.affine_backward(np.ones((8, 3), np.float32), x.reshape(8, -1), np.ones((324, 3), np.float32))
        assert _blas.numpy_openblas_threads() == before
