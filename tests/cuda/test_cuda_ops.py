"""Every op of the cuda backend against the reference, on tiny shapes (the simulator is slow)."""
import numpy as np
import pytest

from fastdl import backend
from fastdl.kernels import examples
from fastdl.kernels.cuda import launch
from fastdl.kernels.examples import OPTIM_ARGS
from fastdl.kernels.spec import TABLE
from tests.helpers import check_op, strided

REF = backend.ops("numpy")
CU = backend.ops("cuda")
#: the spec's element-wise ops and the mask product; its update ops
ELEMENTWISE = [op.name for op in TABLE if op.family in ("elementwise", "dropout")]
UPDATES = [op.name for op in TABLE if op.family == "optim"]


def host(a):
    return CU.to_host(a)


def close(got, want, dtype):
    got = np.asarray(host(got))
    assert got.shape == np.shape(want) and got.dtype == np.asarray(want).dtype == dtype
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got, want, **tol)


def test_launch_constants_are_small_so_edges_are_exercised():
    assert launch.THREADS <= 32 and launch.TILE <= 8


@pytest.mark.parametrize("case", [(2, 2, 5, 5, 3, 3, 3, 1, 1), (1, 3, 6, 5, 2, 2, 3, 2, 1), (2, 1, 4, 4, 2, 4, 4, 1, 0)])
def test_convolution_and_im2col(case, dtype):
    N, C, H, W, FN, fh, fw, s, p = case
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((FN, C, fh, fw)).astype(dtype)
    b = rng.standard_normal(FN).astype(dtype)
    close(CU.im2col(strided(x), fh, fw, s, p), REF.im2col(x, fh, fw, s, p), dtype)
    col = REF.im2col(x, fh, fw, s, p)
    close(CU.col2im(col, x.shape, fh, fw, s, p), REF.col2im(col, x.shape, fh, fw, s, p), dtype)
    want, rctx = REF.conv_forward(x, Wt, b, s, p)
    out, ctx = CU.conv_forward(strided(x), Wt, b, s, p)
    close(out, want, dtype)
    dout = rng.standard_normal(want.shape).astype(dtype)
    for g, r in zip(CU.conv_backward(dout, ctx), REF.conv_backward(dout, rctx)):
        close(g, r, dtype)
    none, dW, db = CU.conv_backward(dout, ctx, need_dx=False)
    assert none is None


def test_fused_conv_relu_and_conv_relu_pool(dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 6, 5)).astype(dtype)
    Wt = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    out, ctx = CU.conv_relu_forward(strided(x), Wt, b, 1, 1)
    want, rctx = REF.conv_relu_forward(x, Wt, b, 1, 1)
    close(out, want, dtype)
    d = rng.standard_normal(want.shape).astype(dtype)
    for g, r in zip(CU.conv_relu_backward(d, ctx), REF.conv_relu_backward(d, rctx)):
        close(g, r, dtype)
    out, ctx = CU.conv_relu_pool_forward(x, Wt, b, 1, 1, 2, 2, 2, 0)
    want, rctx = REF.conv_relu_pool_forward(x, Wt, b, 1, 1, 2, 2, 2, 0)
    close(out, want, dtype)
    d = rng.standard_normal(want.shape).astype(dtype)
    got = CU.conv_relu_pool_backward(d, ctx, need_dx=False)
    assert got[0] is None
    for g, r in zip(got[1:], REF.conv_relu_pool_backward(d, rctx)[1:]):
        close(g, r, dtype)


@pytest.mark.parametrize("case", [(1, 2, 5, 5, 2, 2, 2, 0), (1, 1, 5, 6, 3, 3, 2, 1), (1, 1, 4, 4, 3, 2, 1, 1)])
def test_pooling(case, dtype):
    N, C, H, W, ph, pw, s, p = case
    x = np.random.default_rng(1).integers(-3, 4, size=(N, C, H, W)).astype(dtype)   # ties
    want, rctx = REF.pool_forward(x, ph, pw, s, p)
    out, ctx = CU.pool_forward(x, ph, pw, s, p)
    close(out, want, dtype)
    dout = np.random.default_rng(2).standard_normal(want.shape).astype(dtype)
    close(CU.pool_backward(dout, ctx), REF.pool_backward(dout, rctx), dtype)


@pytest.mark.parametrize("op", ELEMENTWISE)
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_elementwise_and_dropout(op, layout, dtype):
    """Every element-wise op and the mask product of the spec, on both dtypes and layouts (a
    backward op on the saved values of the cuda forward): results, masks exactly, inputs kept."""
    ((_, make),) = examples.op_cases(op, "tiny")
    check_op(op, make, [CU], np.dtype(dtype).name, layout == "strided")


def test_affine_softmax_loss(dtype):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((5, 9)).astype(dtype)
    Wt = rng.standard_normal((9, 6)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    dout = rng.standard_normal((5, 6)).astype(dtype)
    close(CU.affine_forward(strided(x), Wt, b), REF.affine_forward(x, Wt, b), dtype)
    for g, r in zip(CU.affine_backward(dout, x, Wt), REF.affine_backward(dout, x, Wt)):
        close(g, r, dtype)
    close(CU.softmax(x.reshape(5, 3, 3)), REF.softmax(x.reshape(5, 3, 3)), dtype)
    t = rng.integers(0, 9, size=5)
    loss, y = CU.softmax_loss_forward(x, t)
    rloss, ry = REF.softmax_loss_forward(x, t)
    assert np.asarray(loss).dtype == dtype and abs(loss - rloss) <= 1e-5 * abs(rloss)
    close(y, ry, dtype)
    close(CU.softmax_loss_backward(y, t, 1.0), REF.softmax_loss_backward(ry, t, 1.0), dtype)


def test_batchnorm(dtype):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((6, 11)).astype(dtype)
    g, b = rng.uniform(0.5, 2, 11).astype(dtype), rng.standard_normal(11).astype(dtype)
    dout = rng.standard_normal((6, 11)).astype(dtype)
    rm, rv = np.zeros(11, dtype), np.ones(11, dtype)
    drm, drv = CU.to_device(rm.copy()), CU.to_device(rv.copy())
    want, rctx = REF.batchnorm_forward(x, g, b, rm, rv, 0.9, 1e-6, True)
    out, ctx = CU.batchnorm_forward(x, g, b, drm, drv, 0.9, 1e-6, True)
    close(out, want, dtype)
    close(drm, rm, dtype)
    close(drv, rv, dtype)
    for a, r in zip(CU.batchnorm_backward(dout, ctx), REF.batchnorm_backward(dout, rctx)):
        close(a, r, dtype)
    close(CU.batchnorm_forward(x, g, b, drm, drv, 0.9, 1e-6, False)[0],
          REF.batchnorm_forward(x, g, b, rm, rv, 0.9, 1e-6, False)[0], dtype)


@pytest.mark.parametrize("op", UPDATES)
def test_optimizer_updates(op, dtype):
    """Every update op of the spec, with its example scalars (``examples.OPTIM_ARGS``): two steps on
    device arrays match the reference's on host arrays, and host arrays are refused."""
    rng = np.random.default_rng(6)
    p = rng.standard_normal((4, 5)).astype(dtype)
    g = rng.standard_normal((4, 5)).astype(dtype)
    s1, s2 = (np.abs(rng.standard_normal((4, 5))).astype(dtype) for _ in range(2))
    want = OPTIM_ARGS[op](p, g, s1, s2)
    got = OPTIM_ARGS[op](*[CU.to_device(a) for a in (p, g, s1, s2)])
    for _ in range(2):
        getattr(REF, op)(*want)
        getattr(CU, op)(*got)
    arrays = [i for i, a in enumerate(want) if isinstance(a, np.ndarray)]
    assert arrays[:2] == [0, 1]
    for i in arrays:
        close(got[i], want[i], dtype)
    with pytest.raises(TypeError, match="net.to\\('cuda'\\)"):
        getattr(CU, op)(*OPTIM_ARGS[op](p.copy(), g, s1.copy(), s2.copy()))


@pytest.mark.gpu
def test_real_gpu_is_faster_than_the_simulator_would_be():
    """Only on a real GPU: a large convolution runs and matches the reference."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 28, 28)).astype(np.float32)
    Wt = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    b = np.zeros(16, np.float32)
    close(CU.conv_forward(x, Wt, b, 1, 1)[0], REF.conv_forward(x, Wt, b, 1, 1)[0], np.float32)
