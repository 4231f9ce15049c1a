"""The numba backend's two paths per kernel, the thresholds between them, and what it sets up.

Every kernel runs on the calling thread below a work threshold (no parallel region)
and split over Numba's threads above it; a few one-operation ops are NumPy's own
expression on tiny arrays. test_backend_parity.py runs every op on both forced paths;
here each threshold is crossed by one element (or one image) and both sides are
compared with the reference, float32 and float64, contiguous and strided, and the
path actually taken is checked, so a changed threshold cannot leave a side untested.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

from fastdl import backend
from fastdl.kernels.examples import op_cases, split
from fastdl.kernels.spec import TABLE
from tests.conftest import FAST_BACKENDS
from tests.helpers import strided

pytestmark = pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available")

REF = backend.ops("numpy")


@pytest.fixture(scope="module")
def cpu():
    return backend.ops("numba")


@pytest.fixture(scope="module")
def chunks():
    from fastdl.kernels.cpu import _chunks
    import numba
    if numba.get_num_threads() < 2:
        pytest.skip("one Numba thread: there is no parallel path")
    return _chunks


def close(got, want, dtype):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0
    if dtype == np.float32:
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=2e-5 * scale)
    else:
        np.testing.assert_allclose(got, want, rtol=1e-11, atol=1e-12 * scale)


def both_layouts(a):
    return [a, strided(a)]


DT = [np.float32, np.float64]


def _expect(chunks, serial):
    last = chunks.last_chunks()
    assert (last == 1) if serial else (last > 1), f"expected {'serial' if serial else 'parallel'}, chunks={last}"


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_elementwise_thresholds(cpu, chunks, dtype):
    """Every element-wise (and dropout) op of the spec the numba backend has a kernel for, one
    element either side of its threshold (``MIN_PARALLEL`` over the op's ``COST``)."""
    from fastdl.kernels.cpu import activations as A
    rng = np.random.default_rng(0)
    ops = [op for op in TABLE if op.family in ("elementwise", "dropout") and op.name in A.__all__]
    assert ops
    for op in ops:
        n_threshold = A.MIN_PARALLEL // A.COST.get(op.name, 1)
        for n in (n_threshold - 1, n_threshold + 1):
            for x in both_layouts((rng.standard_normal(n) * 4).astype(dtype)):
                if op.family == "dropout":
                    args, ref_args = (x, x > 0.3), (x, x > 0.3)
                elif op.backward_of:
                    saved = split(getattr(REF, op.backward_of)(x))[1]
                    args = ref_args = (x,) + tuple(saved)
                else:
                    args = ref_args = (x,)
                got, want = split(getattr(cpu, op.name)(*args)), split(getattr(REF, op.name)(*ref_args))
                _expect(chunks, n < n_threshold)
                close(got[0], want[0], dtype)
                for g, w in zip(got[1], want[1]):
                    if w.dtype == np.bool_:
                        np.testing.assert_array_equal(g, w)
                    else:
                        close(g, w, dtype)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_numpy_below_tiny(cpu, monkeypatch, dtype):
    """The ops a kernel module lists in NUMPY_SHORTCUTS are NumPy's own expression on fewer than
    its NUMPY_BELOW elements (no compiled kernel is called); from NUMPY_BELOW on their kernel runs.
    Every other element-wise, dropout and update op of the spec calls its kernel at both sizes.
    Results match the reference, contiguous and strided."""
    calls = []

    def spy(mod, name):
        fn = getattr(mod, name)

        def wrapped(*a):
            calls.append(name)
            return fn(*a)
        monkeypatch.setattr(mod, name, wrapped)
    names = [op.name for op in TABLE if op.family in ("elementwise", "dropout", "optim")]
    modules = {name: sys.modules[getattr(cpu, name).__module__] for name in names}
    for mod in set(modules.values()):          # the compiled drivers (``_map``: ``_x`` with ``_x_span``)
        for attr in [a for a in vars(mod) if a.startswith("_") and a + "_span" in vars(mod)]:
            spy(mod, attr)
    shortcut = {name for name in names if name in getattr(modules[name], "NUMPY_SHORTCUTS", ())}
    listed = set().union(*(getattr(mod, "NUMPY_SHORTCUTS", ()) for mod in set(modules.values())))
    assert shortcut == listed and shortcut and set(names) - shortcut   # no misspelt name; both kinds
    for name in names:
        below = modules[name].NUMPY_BELOW
        for n, tiny in ((below - 1, True), (below, False)):
            ((_, make),) = op_cases(name, {"elementwise": [(n,)], "optim": [n]})
            for st in (False, True):
                call, want = make(cpu, dtype, st), make(REF, dtype, st)
                calls.clear()
                got, expected = call(), want()
                assert (calls == []) == (tiny and name in shortcut), (name, n, calls)
                outs = call.inputs if got is None else (got if isinstance(got, tuple) else (got,))
                refs = want.inputs if expected is None else \
                    (expected if isinstance(expected, tuple) else (expected,))
                for g_, w_ in zip(outs, refs):
                    if np.asarray(w_).dtype.kind == "f":
                        close(g_, w_, dtype)
                    else:
                        np.testing.assert_array_equal(g_, w_)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_softmax_and_loss_thresholds(cpu, chunks, dtype):
    from fastdl.kernels.cpu import loss as L
    rng = np.random.default_rng(2)
    for K, threshold, which in ((10, L.MIN_PARALLEL, "forward"), (10, L.MIN_PARALLEL_BACKWARD, "backward")):
        for rows in (threshold // K - 1, threshold // K + 1):
            x = (rng.standard_normal((rows, K)) * 5).astype(dtype)
            t = rng.integers(0, K, rows)
            if which == "forward":
                for xv in both_layouts(x):
                    close(cpu.softmax(xv), REF.softmax(xv), dtype)
                    _expect(chunks, rows * K < threshold)
                    (l1, y1), (l2, y2) = cpu.softmax_loss_forward(xv, t), REF.softmax_loss_forward(xv, t)
                    _expect(chunks, rows * K < threshold)
                    close(y1, y2, dtype)
                    close(l1, l2, dtype)
            else:
                y = REF.softmax(x)
                close(cpu.softmax_loss_backward(y, t, 1.0), REF.softmax_loss_backward(y, t, 1.0), dtype)
                _expect(chunks, rows * K < threshold)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_batchnorm_thresholds(cpu, chunks, dtype):
    from fastdl.kernels.cpu import batchnorm as B
    rng = np.random.default_rng(3)
    D = 100
    for N in (B.MIN_PARALLEL // D - 1, B.MIN_PARALLEL // D + 1):
        x = rng.standard_normal((N, D)).astype(dtype)
        g, b = rng.standard_normal(D).astype(dtype), rng.standard_normal(D).astype(dtype)
        stats = [(np.zeros(D, dtype), np.ones(D, dtype)) for _ in range(2)]
        for train in (True, False):
            o1, c1 = cpu.batchnorm_forward(x, g, b, *stats[0], 0.9, 1e-6, train)
            _expect(chunks, x.size < B.MIN_PARALLEL)
            o2, c2 = REF.batchnorm_forward(x, g, b, *stats[1], 0.9, 1e-6, train)
            close(o1, o2, dtype)
            close(stats[0][0], stats[1][0], dtype)
            close(stats[0][1], stats[1][1], dtype)
        dout = rng.standard_normal((N, D)).astype(dtype)
        _, c1 = cpu.batchnorm_forward(x, g, b, *stats[0], 0.9, 1e-6, True)
        _, c2 = REF.batchnorm_forward(x, g, b, *stats[1], 0.9, 1e-6, True)
        for got, want in zip(cpu.batchnorm_backward(strided(dout), c1), REF.batchnorm_backward(dout, c2)):
            close(got, want, dtype)
        _expect(chunks, x.size < B.MIN_PARALLEL)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_pool_thresholds(cpu, chunks, dtype):
    """Every pooling op of the spec the numba pool module has a kernel for, forward and backward,
    on images either side of ``pool.MIN_PARALLEL``."""
    from fastdl.kernels.cpu import pool as P
    rng = np.random.default_rng(4)
    pairs = [(op.name, next(b.name for b in TABLE if b.backward_of == op.name)) for op in TABLE
             if op.family == "pool" and not op.backward_of and op.name in P.__all__]
    assert pairs
    for shape in ((2, 4, 63, 64), (2, 4, 64, 64)):
        size = int(np.prod(shape))
        assert (size < P.MIN_PARALLEL) == (shape[2] == 63)
        for k, s, p in ((2, 2, 0), (3, 2, 1)):
            for forward, backward in pairs:
                for x in both_layouts(rng.standard_normal(shape).astype(dtype)):
                    (o1, c1), (o2, c2) = getattr(cpu, forward)(x, k, k, s, p), getattr(REF, forward)(x, k, k, s, p)
                    _expect(chunks, size < P.MIN_PARALLEL)
                    close(o1, o2, dtype)
                    dout = rng.standard_normal(o1.shape).astype(dtype)
                    close(getattr(cpu, backward)(dout, c1), getattr(REF, backward)(dout, c2), dtype)
                    _expect(chunks, size < P.MIN_PARALLEL)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("stride", [1, 2])
def test_conv_thresholds(cpu, chunks, dtype, stride):
    """N images on either side of conv.MIN_PARALLEL multiply-adds, every op of the spec the conv
    and fused modules have a kernel for, on their example inputs (strided; the fused blocks at
    stride 1, the only stride ``examples`` gives them: strided blocks run conv, relu and pool)."""
    from fastdl.kernels.cpu import conv as C
    from fastdl.kernels.cpu import fused as F
    ops = [op for op in TABLE if op.name in C.__all__ + F.__all__]
    FN, Cin, H = 8, 3, 32
    P = ((H + 2 - 3) // stride + 1) ** 2
    per_image = FN * Cin * 9 * P
    ran = set()
    for N in (C.MIN_PARALLEL // per_image, C.MIN_PARALLEL // per_image + 1):
        serial = N * per_image < C.MIN_PARALLEL
        for op in ops:
            for _, make in op_cases(op.name, {"conv": [((N, Cin, H, H), (FN, Cin, 3, 3), stride, 1)]}):
                got = make(cpu, dtype, True)()
                _expect(chunks, serial)
                want = make(REF, dtype, True)()
                for name, g, w in zip(op.returns.split(", "), got, want):
                    if name != "ctx":
                        close(g, w, dtype)
                ran.add(op.name)
    assert ran == {op.name for op in ops if stride == 1 or op.family != "block"}


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_im2col_col2im_thresholds(cpu, chunks, dtype):
    from fastdl.kernels.cpu import columns as C
    rng = np.random.default_rng(6)
    per_image = 16 * 16 * 9
    for N in (C.MIN_PARALLEL_COPY // per_image, C.MIN_PARALLEL_COPY // per_image + 1):
        x = rng.standard_normal((N, 1, 16, 16)).astype(dtype)
        col = cpu.im2col(strided(x), 3, 3, 1, 1)
        _expect(chunks, col.size < C.MIN_PARALLEL_COPY)
        np.testing.assert_array_equal(col, REF.im2col(x, 3, 3, 1, 1))
        close(cpu.col2im(col, x.shape, 3, 3, 1, 1), REF.col2im(col, x.shape, 3, 3, 1, 1), dtype)
        _expect(chunks, col.size < C.MIN_PARALLEL_COPY)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("op", [op.name for op in TABLE if op.family == "optim"])
def test_optimizer_thresholds(cpu, chunks, dtype, op):
    """Every update op of the spec, one element either side of ``optim.MIN_PARALLEL``, on its
    example arguments (``examples.OPTIM_ARGS``: state arrays and scalars)."""
    from fastdl.kernels.cpu import optim as O
    for n in (O.MIN_PARALLEL - 1, O.MIN_PARALLEL + 1):
        ((_, make),) = op_cases(op, {"optim": [n]})
        call, want = make(cpu, dtype), make(REF, dtype)
        assert call() is None
        _expect(chunks, n < O.MIN_PARALLEL)
        want()
        assert len(call.inputs) == len(want.inputs) >= 2
        for a, b in zip(call.inputs, want.inputs):
            close(a, b, dtype)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_vectorised_exp(dtype):
    """exp_nonpos against np.exp: within 2 ulp where the result is normal, within one
    subnormal step below, exact 0 where exp underflows, NaN for NaN, 0 for -inf."""
    import numba
    from fastdl.kernels.cpu._vexp import exp_nonpos

    @numba.njit(fastmath={"contract"}, error_model="numpy")     # as the kernels that use it
    def run(out, z):
        for i in range(z.size):
            out[i] = exp_nonpos(z[i])
    tiny = np.finfo(dtype).tiny
    lo = np.log(np.finfo(dtype).smallest_subnormal) * 1.02
    z = np.concatenate([np.linspace(lo, 0, 200001), -np.logspace(-30, 1, 1000), [0.0, -0.0, -np.inf]]).astype(dtype)
    out = np.empty_like(z)
    run(out, z)
    want = np.exp(z)
    normal = want >= tiny
    ulps = np.abs(out[normal] - want[normal]) / np.spacing(want[normal])
    assert ulps.max() <= 2, ulps.max()
    assert np.abs(out[~normal] - want[~normal]).max() <= np.finfo(dtype).smallest_subnormal
    assert out[-1] == 0 and out[-3] == 1 and out[-2] == 1
    nan = np.array([np.nan], dtype)
    run(out[:1], nan)
    assert np.isnan(out[0])


def _run_py(code, env_extra=None, unset=()):
    env = {k: v for k, v in os.environ.items() if k not in unset}
    env.update(env_extra or {})
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip().splitlines()


QUIET = """
import os, numpy as np, numba
x = np.random.default_rng(0).random((300, 700)); W = np.random.default_rng(1).random((700, 90))
before = x @ W
from fastdl.kernels import cpu
from fastdl.kernels.cpu import _threads
after = x @ W
print(numba.threading_layer())
print(_threads.omp_status)
print("OMP_WAIT_POLICY" in os.environ)
print(bool(np.array_equal(before, after)))
"""


def test_openmp_threads_sleep_when_idle():
    """Loading the backend starts Numba's OpenMP threads with the passive wait policy, leaves
    the environment as it was, and changes nothing in the user's own NumPy results."""
    layer, status, leaked, same = _run_py(QUIET, unset=("OMP_WAIT_POLICY", "GOMP_SPINCOUNT",
                                                        "FASTDL_KEEP_OMP_WAIT"))
    if layer == "omp":
        assert status.startswith("passive") or status.startswith("libgomp was loaded before"), status
    else:
        assert "threading layer is" in status
    assert leaked == "False" and same == "True"


def test_users_wait_policy_is_respected():
    layer, status, leaked, same = _run_py(QUIET, {"OMP_WAIT_POLICY": "ACTIVE"})
    assert "OMP_WAIT_POLICY=ACTIVE" in status
    assert leaked == "True" and same == "True"      # the user's own variable stays set


@pytest.mark.parametrize("x_dtype,w_dtype", [(np.float32, np.float64), (np.float64, np.float32)])
def test_affine_mixed_dtypes_blocked_and_whole(cpu, x_dtype, w_dtype):
    """x of the other float dtype than W (the book's float32 images, float64 weights): converted
    to W's dtype, whole below BLOCK_ROWS rows and block by block above, strided too."""
    from fastdl.kernels.cpu import _chunks, affine as Af
    rng = np.random.default_rng(8)
    W = rng.standard_normal((7, 5)).astype(w_dtype)
    b = rng.standard_normal(5).astype(w_dtype)
    for mode, N in [("serial", n) for n in (Af.BLOCK_ROWS, Af.BLOCK_ROWS + 1, 2 * Af.BLOCK_ROWS + 3)] + \
            [("parallel", 300)]:
        with _chunks.forced(mode):
            x = rng.standard_normal((N, 7)).astype(x_dtype)
            for xv in both_layouts(x):
                out = cpu.affine_forward(xv, W, b)
                want = x.astype(w_dtype) @ W + b
                assert out.dtype == w_dtype
                close(out, want, w_dtype)
                close(out, REF.affine_forward(xv, W, b), w_dtype)
                dout = rng.standard_normal((N, 5)).astype(w_dtype)
                for got, ref in zip(cpu.affine_backward(dout, xv, W), REF.affine_backward(dout, x.astype(w_dtype), W)):
                    assert got.dtype == w_dtype
                    close(got, ref, w_dtype)


def test_affine_layer_converts_small_batches_itself_and_leaves_large_ones_to_the_op(
        rng=np.random.default_rng(9)):
    """float32 input to float64 weights: a training-size batch is converted once by the layer and
    kept for backward; a larger one is handed to the op as it is (no full-size copy). Output and
    gradients are float64, as the book's np.dot gives them, on both sides and both backends."""
    import fastdl
    from fastdl import layers
    W, b = rng.standard_normal((6, 4)), rng.standard_normal(4)
    for rows in (3, layers._CONVERT_IN_OP_ROWS, layers._CONVERT_IN_OP_ROWS + 1):
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        for name in ("numpy", "numba"):
            with fastdl.using_backend(name):
                layer = layers.Affine(W, b)
                out = layer.forward(x)
                assert out.dtype == np.float64
                assert layer.x.dtype == (np.float64 if rows <= layers._CONVERT_IN_OP_ROWS else np.float32)
                np.testing.assert_allclose(out, x.astype(np.float64) @ W + b, rtol=1e-12)
                dout = rng.standard_normal((rows, 4))
                dx = layer.backward(dout)
                assert dx.dtype == layer.dW.dtype == np.float64
                np.testing.assert_allclose(layer.dW, x.astype(np.float64).T @ dout, rtol=1e-10)
                np.testing.assert_allclose(dx, dout @ W.T, rtol=1e-12)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_affine_pool_follows_recent_parallel_kernels(cpu, chunks, monkeypatch, dtype):
    """Products go to NumPy's OpenBLAS unless a kernel split its work over Numba's threads in
    the last IN_USE_WINDOW seconds; then they are split too (both give the reference's result),
    and products below MIN_PARALLEL multiply-adds are never split."""
    import time
    from fastdl.kernels.cpu import affine as Af
    calls = []
    for name in ("_affine_forward", "_affine_backward"):
        fn = getattr(Af, name)
        monkeypatch.setattr(Af, name, lambda *a, _fn=fn, _n=name: (calls.append(_n), _fn(*a))[1])
    rng = np.random.default_rng(10)
    x = rng.standard_normal((64, 700)).astype(dtype)
    W = rng.standard_normal((700, 100)).astype(dtype)
    b = rng.standard_normal(100).astype(dtype)
    dout = rng.standard_normal((64, 100)).astype(dtype)
    assert 64 * 700 * 100 >= Af.MIN_PARALLEL
    for recent, split in ((float("-inf"), False), (time.monotonic() + 3600, True)):
        monkeypatch.setattr(chunks, "_last_parallel", recent)
        assert chunks.numba_threads_in_use() == split
        calls.clear()
        close(cpu.affine_forward(x, W, b), REF.affine_forward(x, W, b), dtype)
        for got, want in zip(cpu.affine_backward(dout, x, W), REF.affine_backward(dout, x, W)):
            close(got, want, dtype)
        assert (calls == ["_affine_forward", "_affine_backward"]) == split, calls
    small = x[:2, :10], W[:10, :5], b[:5]
    calls.clear()
    cpu.affine_forward(*small)
    assert calls == []


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_affine_split_backward_without_dx(cpu, dtype):
    """The split backward (Numba's threads) with need_dx=False returns no dx and the reference's
    dW and db, on both sides of the row/column blocks: a first layer skips the dx product there
    as it does on OpenBLAS's path."""
    from fastdl.kernels.cpu import _chunks
    rng = np.random.default_rng(11)
    for N, D, M in ((64, 700, 100), (3, 5, 2)):
        x = rng.standard_normal((N, D)).astype(dtype)
        W = rng.standard_normal((D, M)).astype(dtype)
        dout = rng.standard_normal((N, M)).astype(dtype)
        for mode in ("parallel", "serial"):
            with _chunks.forced(mode):
                for xv in both_layouts(x):
                    dx, dW, db = cpu.affine_backward(dout, xv, W, need_dx=False)
                    assert dx is None
                    _, rdW, rdb = REF.affine_backward(dout, x, W)
                    close(dW, rdW, dtype)
                    close(db, rdb, dtype)
                    full = cpu.affine_backward(dout, xv, W)
                    close(full[0], REF.affine_backward(dout, x, W)[0], dtype)


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
def test_conv_dw_tap_by_tap_threshold(cpu, dtype, monkeypatch):
    """In the tap-by-tap mode (16 channels, images split over threads) [dW | db] goes tap by tap
    from output rows of TAP_DW_MIN_L elements on (L = OH * Wp: 10x10 images give 110, 11x11 give
    132) and through the columns below; both sides match the reference, plain and fused, on
    strided images, and a filter bank with FN >= K + 1 never goes tap by tap."""
    from fastdl.kernels.cpu import _chunks, conv_s1
    assert conv_s1.TAP_DW_MIN_L == 128
    rng = np.random.default_rng(12)
    seen = []
    real = conv_s1.dw_by_taps
    monkeypatch.setattr(conv_s1, "dw_by_taps", lambda *a: seen.append(real(*a)) or seen[-1])
    from fastdl.kernels.cpu import fused
    monkeypatch.setattr(fused, "dw_by_taps", conv_s1.dw_by_taps)
    for H, tap in ((10, False), (11, True)):
        x = strided(rng.standard_normal((4, 16, H, H)).astype(dtype))
        W = rng.standard_normal((8, 16, 3, 3)).astype(dtype)
        b = rng.standard_normal(8).astype(dtype)
        with _chunks.forced("parallel"):
            seen.clear()
            out, ctx = cpu.conv_forward(x, W, b, 1, 1)
            rout, rctx = REF.conv_forward(x, W, b, 1, 1)
            dout = rng.standard_normal(out.shape).astype(dtype)
            for g, r in zip(cpu.conv_backward(dout, ctx), REF.conv_backward(dout, rctx)):
                close(g, r, dtype)
            pout, pctx = cpu.conv_relu_pool_forward(x, W, b, 1, 1, 2, 2, 2, 0)
            dp = rng.standard_normal(pout.shape).astype(dtype)
            rr, mask = REF.relu_forward(rout)
            rp, ppctx = REF.pool_forward(rr, 2, 2, 2, 0)
            close(pout, rp, dtype)
            want = REF.conv_backward(REF.relu_backward(REF.pool_backward(dp, ppctx), mask), rctx)
            for g, r in zip(cpu.conv_relu_pool_backward(dp, pctx), want):
                close(g, r, dtype)
        assert seen == [tap, tap], (H, seen)
    assert not real(np.empty((9, 64, 1)), (4, 1, 11, 11), (64, 1, 3, 3), 1)   # FN >= K + 1: columns


@pytest.mark.parametrize("dtype", DT, ids=["f32", "f64"])
@pytest.mark.parametrize("other", [np.float16, np.int64], ids=["f16", "int"])
def test_conv_ops_take_a_bias_and_dout_numba_cannot_type(cpu, dtype, other, monkeypatch):
    """A float16 (or integer) bias b and output gradient with float images: the numba stride-1
    and strided convolutions, plain and fused, serial and tap by tap, convert them to the images'
    dtype (Numba has no float16 arrays) and agree with the reference in the images' dtype."""
    from fastdl.kernels.cpu import _chunks
    rng = np.random.default_rng(13)
    x = strided(rng.standard_normal((3, 16, 11, 11)).astype(dtype))
    W = rng.standard_normal((4, 16, 3, 3)).astype(dtype)
    b = np.round(rng.standard_normal(4) * 4).astype(other)
    for mode in ("serial", "parallel"):
        with _chunks.forced(mode):
            for stride in (1, 2):
                out, ctx = cpu.conv_forward(x, W, b, stride, 1)
                want, rctx = REF.conv_forward(x, W, b.astype(dtype), stride, 1)
                assert out.dtype == dtype
                close(out, want, dtype)
                dout = np.round(rng.standard_normal(out.shape) * 4).astype(other)
                for g, r in zip(cpu.conv_backward(dout, ctx), REF.conv_backward(dout.astype(dtype), rctx)):
                    close(g, r, dtype)
            pout, pctx = cpu.conv_relu_pool_forward(x, W, b, 1, 1, 2, 2, 2, 0)
            assert pout.dtype == dtype
            dp = np.round(rng.standard_normal(pout.shape) * 4).astype(other)
            r, mask = REF.relu_forward(REF.conv_forward(x, W, b.astype(dtype), 1, 1)[0])
            rp, ppctx = REF.pool_forward(r, 2, 2, 2, 0)
            close(pout, rp, dtype)
            rout, rctx = REF.conv_forward(x, W, b.astype(dtype), 1, 1)
            want = REF.conv_backward(REF.relu_backward(REF.pool_backward(dp.astype(dtype), ppctx), mask), rctx)
            for g, r in zip(cpu.conv_relu_pool_backward(dp, pctx), want):
                close(g, r, dtype)
            rout_, mctx = cpu.conv_relu_forward(x, W, b, 1, 1)
            close(rout_, REF.relu_forward(rout)[0], dtype)


def test_sweep_has_a_case_for_every_op_and_runs():
    """benchmarks/scripts/sweep.py: every op of the spec has size points, and a run prints a
    row per point with both backends' times."""
    import io
    from fastdl import sweep
    from fastdl.kernels import examples
    assert {op for op, _, _ in sweep.cases()} == set(examples.timed_ops())
    out = io.StringIO()
    rows = sweep.run("float32", ["sgd_update"], rounds=1, out=out)
    assert [r["size"] for r in rows] == [str(n) for n in examples.OPTIM_SIZES]
    assert all(r["numpy_us"] > 0 and r["numba_us"] > 0 for r in rows)
    assert out.getvalue().count("sgd_update") == len(rows)


def test_kernels_built_from_a_scalar_are_named_cached_and_keyed_by_the_scalars_code():
    """``_map`` kernels count as their module's (``compiled_kernels``), are ``cache=True``, and
    their cache key changes with the scalar function's code (a closure cell holding its hash)."""
    from numba import njit

    from fastdl.kernels.cpu import _map, compiled_kernels
    from fastdl.kernels.cpu import activations as A
    mine = {k: d for k, d in compiled_kernels().items() if k.startswith("activations.")}
    spans = [k for k in mine if k.endswith("_span")]
    assert len(spans) == len(A.__all__)                    # a span and a driver per op
    for span in spans:
        for name in (span, span[:-len("_span")]):
            assert type(mine[name]._cache).__name__ == "FunctionCache", name       # cache=True

    @njit
    def double(v):
        return v * 2

    @njit
    def triple(v):
        return v * 3
    assert _map._stamp(double) != _map._stamp(triple)
    assert _map._stamp(double) == _map._stamp(double.py_func)
    ns = {"__name__": __name__}      # an importable module: Numba rebuilds a cached kernel there
    drv = _map.elementwise(ns, "double", double, 1, 1)
    cells = [c.cell_contents for c in drv.py_func.__closure__]
    assert cells == [_map._stamp(double)] and set(ns) >= {"_double", "_double_span"}
    out, x = np.empty(5), np.arange(5.0)
    drv(out, x, (), 1)
    np.testing.assert_array_equal(out, x * 2)
