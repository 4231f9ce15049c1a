"""The convolution, pooling, im2col, col2im and fused conv-relu-pool kernels on non-finite, empty and
degenerate inputs and on odd layouts: the numba backend against the reference, kept tiny:
NaN, +Inf and -Inf in x, W, b or dout at corners, edges and the centre; inputs that are all
NaN, all +Inf or all -inf; empty batches and zero-size images, channels and filter banks; 1x1
images, windows as large as the image, stride larger than the window, padding with and without
the stride-1 kernels' "wrapped" edges; strided, Fortran-order and read-only inputs; float32 and
float64; every numba path (serial, parallel, and parallel with the per-tap products of the
stride-1 kernels). Each result must agree with the reference exactly in where NaN, +Inf and
-Inf are, and within tolerance elsewhere; inputs must come back unmodified. The ops are called
through ``fastdl.kernels.reference`` / ``fastdl.kernels.cpu`` directly and through the layers
(``Convolution``, ``Pooling``) under each backend.

The pooling rule (the reference's, see kernels/reference/pool.py): the gradient goes to the
window's first maximum in (ky, kx) order, padding counting as -inf; when the maximum is -inf
and the window's first tap is padding, that padding cell is the first maximum and the gradient
is dropped.
"""
import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.layers import Convolution, Pooling
from tests.conftest import FAST_BACKENDS
from tests.helpers import DT, DT_IDS

pytestmark = [pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available"),
              # NumPy's own arithmetic on Inf (Inf - Inf, 0 * Inf) says so; that is the point here
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")]

REF = backend.ops("numpy")
VALUES = {"nan": np.nan, "inf": np.inf, "-inf": -np.inf}


@pytest.fixture(scope="module")
def cpu():
    return backend.ops("numba")


def _force(mode, shifted, monkeypatch, dw_by_taps=False):
    from fastdl.kernels.cpu import _chunks, conv_s1
    if shifted:                      # the stride-1 per-tap products, whatever the channel count
        monkeypatch.setattr(conv_s1, "SHIFT_MIN_C", 1)
    if dw_by_taps:                   # dW tap by tap too, whatever the output rows' length
        monkeypatch.setattr(conv_s1, "TAP_DW_MIN_L", 0)
    return _chunks.forced(mode)


@pytest.fixture(params=["serial", "parallel", "shifted", "shifted_dw"])
def path(request, monkeypatch):
    """Every numba path of the convolutions."""
    with _force("serial" if request.param == "serial" else "parallel", request.param.startswith("shifted"),
                monkeypatch, request.param == "shifted_dw"):
        yield request.param


@pytest.fixture(params=["serial", "parallel"])
def mode(request):
    """Both numba paths of pooling, im2col and col2im."""
    from fastdl.kernels.cpu import _chunks
    with _chunks.forced(request.param):
        yield request.param


# -- comparing -----------------------------------------------------------------------------

def agree(got, want, dtype, what=""):
    """got matches want: shape, dtype, the positions of NaN / +Inf / -Inf exactly, finite values
    within the parity tolerance (test_backend_parity.py's)."""
    if want is None:
        assert got is None, what
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, (what, got.shape, want.shape)
    assert got.dtype == want.dtype == dtype, (what, got.dtype, want.dtype)
    for name, test in (("NaN", np.isnan), ("+Inf", np.isposinf), ("-Inf", np.isneginf)):
        g, w = test(got), test(want)
        if not np.array_equal(g, w):
            where = np.argwhere(g != w)[:4].tolist()
            raise AssertionError(f"{what}: {name} differs at {where}: numba {got[tuple(np.array(where).T)]}, "
                                 f"reference {want[tuple(np.array(where).T)]}")
    finite = np.isfinite(want)
    if finite.any():
        scale = max(1.0, float(np.abs(want[finite]).max()))
        rtol, atol = (1e-4, 2e-5) if dtype == np.float32 else (1e-11, 1e-12)
        np.testing.assert_allclose(got[finite], want[finite], rtol=rtol, atol=atol * scale, err_msg=what)


class unchanged:
    """Context: the arrays (NaN included) are not modified."""

    def __init__(self, *arrays):
        self.arrays = arrays

    def __enter__(self):
        self.copies = [np.array(a, copy=True) for a in self.arrays]

    def __exit__(self, *exc):
        if exc[0] is None:
            for a, c in zip(self.arrays, self.copies):
                np.testing.assert_array_equal(a, c, err_msg="an input was modified")


def run(mod, op, args, dout, need_dx=True):
    """(out, *grads) of forward op then its backward, on module mod."""
    out, ctx = getattr(mod, op + "_forward")(*args)
    if op == "pool":
        return out, mod.pool_backward(dout, ctx)
    return (out,) + tuple(getattr(mod, op + "_backward")(dout, ctx, need_dx))


NAMES = {"pool": ("out", "dx")}


def compare(cpu, op, args, dtype, what, dout=None, poison=None, need_dx=True):
    """Run op on both backends with the same inputs (dout: standard normal of the output's shape,
    then ``poison(dout)``) and check that they agree and that numba left its inputs alone."""
    want_out = getattr(REF, op + "_forward")(*args)[0]
    if dout is None:
        dout = np.random.default_rng(7).standard_normal(want_out.shape).astype(dtype)
        if poison is not None:
            dout = poison(dout)
    want = run(REF, op, args, dout, need_dx)
    arrays = [a for a in args if isinstance(a, np.ndarray)] + [dout]
    with unchanged(*arrays):
        got = run(cpu, op, args, dout, need_dx)
    for name, g, w in zip(NAMES.get(op, ("out", "dx", "dW", "db")), got, want):
        agree(g, w, dtype, f"{what}: {op} {name}")
    return got


def put(a, where, value):
    """a copy of a with value at the named position ('all' fills it)."""
    a = np.array(a, copy=True)
    _put(a, where, value)
    return a


def _put(a, where, value):
    if a.size == 0:
        return
    if where == "all":
        a[...] = value
    elif a.ndim == 1:
        a[{"corner": 0, "last": -1}.get(where, a.shape[0] // 2)] = value
    elif a.ndim == 2:                      # a column matrix: its rows and columns as a plane's
        _put(a.reshape((1, 1) + a.shape), where, value)
    else:
        mid = tuple(s // 2 for s in a.shape[2:])
        a[{"corner": (0, 0, 0, 0),                         # top-left of the first plane
           "left": (-1, -1, mid[0], 0),                    # a row's first element
           "right": (0, 0, mid[0], -1),                    # a row's last element
           "centre": (0, -1) + mid,
           "last": (-1, -1, -1, -1)}[where]] = value       # bottom-right of the last plane


# -- convolution and the fused ops on non-finite values ------------------------------------

CONV = [  # N, C, H, W, FN, FH, FW, stride, pad
    (1, 1, 3, 5, 2, 1, 3, 1, 0),       # the campaign's case: windows wrap from row to row
    (2, 2, 4, 5, 3, 3, 3, 1, 1),       # pad 1 with 3x3: one extra column per row
    (2, 1, 5, 4, 2, 2, 2, 1, 0),
    (1, 1, 2, 3, 2, 3, 3, 1, 2),       # pad >= FW - 1: nothing wraps
    (1, 2, 5, 5, 2, 3, 3, 2, 1),       # stride 2
    (1, 1, 5, 5, 2, 2, 2, 3, 0),       # stride > window
    (1, 1, 4, 4, 1, 4, 4, 1, 0),       # window = image
    (2, 1, 1, 1, 2, 1, 1, 1, 0),       # 1x1 images
]
#: pooling after Convolution -> Relu (conv_relu_pool) per case: the book's 2x2, or what fits
POOL_AFTER = {5: (2, 2, 2, 0), 4: (2, 2, 1, 1), 3: (2, 2, 2, 0), 2: (2, 2, 1, 1), 1: (1, 1, 1, 0)}


def conv_inputs(case, dtype, seed=0):
    N, C, H, W, FN, FH, FW, s, p = case
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((N, C, H, W)).astype(dtype), rng.standard_normal((FN, C, FH, FW)).astype(dtype),
            rng.standard_normal(FN).astype(dtype), s, p)


def conv_ops(case, x, W, b):
    """(op, args) of conv, conv_relu and conv_relu_pool for these inputs."""
    s, p = case[7], case[8]
    OH = (x.shape[2] + 2 * p - W.shape[2]) // s + 1
    OW = (x.shape[3] + 2 * p - W.shape[3]) // s + 1
    pool = POOL_AFTER[min(OH, OW, 5)]
    return [("conv", (x, W, b, s, p)), ("conv_relu", (x, W, b, s, p)), ("conv_relu_pool", (x, W, b, s, p) + pool)]


@pytest.mark.parametrize("target", ["x", "W", "b", "dout"])
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("case", CONV, ids=[str(c) for c in CONV])
def test_convolutions_with_a_non_finite_value(case, dtype, target, path, cpu):
    """One NaN / +Inf / -Inf in x, W, b or dout, at a corner, an edge or the centre."""
    x0, W0, b0, s, p = conv_inputs(case, dtype)
    for value in VALUES:
        for where in ("corner", "left", "right", "centre", "last"):
            if target == "b" and where in ("left", "right"):
                continue
            x, W, b = x0, W0, b0
            if target == "x":
                x = put(x0, where, VALUES[value])
            elif target == "W":
                W = put(W0, where, VALUES[value])
            elif target == "b":
                b = put(b0, where, VALUES[value])
            poison = (lambda d: put(d, where, VALUES[value])) if target == "dout" else None
            what = f"{path} {value} in {target} at {where}"
            for op, args in conv_ops(case, x, W, b):
                compare(cpu, op, args, dtype, what, poison=poison)
            compare(cpu, "conv", (x, W, b, s, p), dtype, what + " (no dx)", poison=poison, need_dx=False)


def test_the_campaigns_case_exactly(cpu):
    """A NaN at a row's left edge, 1x3 filter: dW is [nan 9 9] (numba gave [nan nan nan])."""
    x = np.ones((1, 1, 3, 5))
    x[0, 0, 1, 0] = np.nan
    for mode in ("serial", "parallel"):
        from fastdl.kernels.cpu import _chunks
        with _chunks.forced(mode):
            out, ctx = cpu.conv_forward(x, np.ones((1, 1, 1, 3)), np.zeros(1), 1, 0)
            dx, dW, db = cpu.conv_backward(np.ones_like(out), ctx)
        np.testing.assert_array_equal(dW.ravel(), [np.nan, 9, 9])
        np.testing.assert_array_equal(db, [9])
        x[0, 0, 1, 0] = np.inf                                   # Inf stays Inf
        with _chunks.forced(mode):
            out, ctx = cpu.conv_forward(x, np.ones((1, 1, 1, 3)), np.zeros(1), 1, 0)
            dW = cpu.conv_backward(np.ones_like(out), ctx)[1]
        np.testing.assert_array_equal(dW.ravel(), [np.inf, 9, 9])
        x[0, 0, 1, 0] = np.nan


@pytest.mark.parametrize("fill", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("target", ["x", "W", "dout"])
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
def test_convolutions_of_all_non_finite_arrays(fill, target, dtype, path, cpu):
    for case in (CONV[1], CONV[4], CONV[7]):
        x, W, b, s, p = conv_inputs(case, dtype, seed=1)
        if target == "x":
            x = put(x, "all", VALUES[fill])
        elif target == "W":
            W = put(W, "all", VALUES[fill])
        poison = (lambda d: put(d, "all", VALUES[fill])) if target == "dout" else None
        for op, args in conv_ops(case, x, W, b):
            compare(cpu, op, args, dtype, f"{path} all {fill} {target} {case}", poison=poison)


# -- pooling: ties, -inf, padding, NaN -------------------------------------------------------

POOL = [  # (N, C, H, W), (pool_h, pool_w, stride, pad)
    ((1, 1, 4, 4), (3, 3, 2, 1)),      # the campaign's case
    ((2, 2, 5, 5), (2, 2, 2, 0)),      # the book's pooling (its own fast path)
    ((2, 1, 4, 3), (2, 3, 1, 1)),
    ((1, 1, 3, 3), (3, 3, 1, 2)),      # pad 2: windows starting two cells out
    ((1, 1, 5, 5), (2, 2, 3, 1)),      # stride > window
    ((1, 1, 4, 5), (4, 5, 1, 0)),      # window = image
    ((1, 2, 1, 1), (1, 1, 1, 0)),      # 1x1 images
    ((1, 1, 1, 1), (2, 2, 1, 1)),      # 1x1 image, every window mostly padding
]


def pool_input(shape, dtype, kind, seed=0):
    """x of the given kind: small integers (many ties), with -inf in places, or all one value."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, shape).astype(dtype)
    if kind == "ties":
        return x
    if kind == "some -inf":
        return np.where(rng.random(shape) < 0.6, dtype(-np.inf), x).astype(dtype)
    if kind == "-inf border":              # real -inf cells exactly where padding ties matter
        x[:, :, 0, :] = -np.inf
        x[:, :, :, 0] = -np.inf
        return x
    return np.full(shape, VALUES[kind[4:]], dtype=dtype)     # "all nan", "all inf", "all -inf"


@pytest.mark.parametrize("kind", ["ties", "some -inf", "-inf border", "all -inf", "all nan", "all inf"])
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("shape,params", POOL, ids=[f"{s}-{p}" for s, p in POOL])
def test_pooling_ties_infinities_and_padding(shape, params, dtype, kind, mode, cpu):
    x = pool_input(shape, dtype, kind)
    compare(cpu, "pool", (x,) + params, dtype, f"{mode} {kind}")
    for value in VALUES:                   # a non-finite gradient must not spread either
        compare(cpu, "pool", (x,) + params, dtype, f"{mode} {kind}, {value} in dout",
                poison=lambda d: put(d, "corner", VALUES[value]))


@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("shape,params", POOL, ids=[f"{s}-{p}" for s, p in POOL])
def test_pooling_with_a_nan_or_inf(shape, params, dtype, mode, cpu):
    for value in VALUES:
        for where in ("corner", "left", "right", "centre", "last"):
            x = put(pool_input(shape, dtype, "ties", seed=3), where, VALUES[value])
            compare(cpu, "pool", (x,) + params, dtype, f"{mode} {value} at {where}")


def test_pooling_rule_for_minus_infinity_and_padding(mode, cpu):
    """Pooling(3, 3, stride=2, pad=1) of an all -inf 4x4 image: only the window starting inside
    the image (the last one, at (1, 1)) passes its gradient, to its first cell; the three whose
    first tap is padding drop theirs, as on the reference (1.0 in all, not 4.0)."""
    x = np.full((1, 1, 4, 4), -np.inf)
    for ops in (REF, cpu):
        out, ctx = ops.pool_forward(x, 3, 3, 2, 1)
        assert np.all(out == -np.inf)
        dx = ops.pool_backward(np.ones_like(out), ctx)
        expected = np.zeros((1, 1, 4, 4))
        expected[0, 0, 1, 1] = 1.0
        np.testing.assert_array_equal(dx, expected)
    # one real value above -inf wins over padding in every window that holds it
    x[0, 0, 3, 3] = 5.0
    for ops in (REF, cpu):
        out, ctx = ops.pool_forward(x, 3, 3, 2, 1)
        np.testing.assert_array_equal(out[0, 0], [[-np.inf, -np.inf], [-np.inf, 5.0]])
        assert ops.pool_backward(np.ones_like(out), ctx)[0, 0, 3, 3] == 1.0


# -- empty and degenerate shapes -------------------------------------------------------------

EMPTY_CONV = [  # N, C, H, W, FN, FH, FW, stride, pad
    (0, 2, 4, 4, 3, 3, 3, 1, 1),       # empty batch, stride 1
    (0, 2, 5, 5, 3, 3, 3, 2, 1),       # empty batch, stride 2
    (2, 2, 0, 4, 3, 2, 2, 1, 1),       # zero-height images (windows of padding only)
    (2, 1, 3, 0, 2, 2, 2, 2, 1),       # zero-width images
    (2, 0, 4, 4, 3, 3, 3, 1, 1),       # no channels (the layers refuse this; the kernels answer)
    (2, 0, 5, 5, 3, 3, 3, 2, 0),
    (2, 2, 4, 4, 0, 3, 3, 1, 1),       # no filters
]


@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("case", EMPTY_CONV, ids=[str(c) for c in EMPTY_CONV])
def test_empty_convolutions(case, dtype, path, cpu):
    x, W, b, s, p = conv_inputs(case, dtype)
    N, C, H, Wd, FN, FH, FW = case[:7]
    for op, args in [("conv", (x, W, b, s, p)), ("conv_relu", (x, W, b, s, p)),
                     ("conv_relu_pool", (x, W, b, s, p, 1, 1, 1, 0)), ("conv_relu_pool", (x, W, b, s, p, 2, 2, 1, 1))]:
        compare(cpu, op, args, dtype, f"{path} {case}")
        compare(cpu, op, args, dtype, f"{path} {case} NaN dout", poison=lambda d: put(d, "all", np.nan))
    compare(cpu, "conv", (x, W, b, s, p), dtype, f"{path} {case} (no dx)", need_dx=False)
    col = REF.im2col(x, FH, FW, s, p)
    with unchanged(x, col):
        agree(cpu.im2col(x, FH, FW, s, p), col, dtype, "im2col")
        agree(cpu.col2im(col, x.shape, FH, FW, s, p), REF.col2im(col, x.shape, FH, FW, s, p), dtype, "col2im")


EMPTY_POOL = [
    ((0, 2, 4, 4), (2, 2, 2, 0)), ((0, 1, 4, 4), (3, 3, 2, 1)),
    ((2, 1, 0, 3), (2, 2, 1, 1)), ((1, 2, 3, 0), (3, 3, 2, 2)), ((1, 1, 0, 0), (2, 2, 2, 1)),
    ((2, 0, 3, 3), (2, 2, 1, 1)),
]


@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("shape,params", EMPTY_POOL, ids=[f"{s}-{p}" for s, p in EMPTY_POOL])
def test_empty_pooling(shape, params, dtype, mode, cpu):
    """Zero-size images give -inf windows (all padding) and a zero gradient, as on the reference;
    nothing is read or written out of bounds (numba used to return uninitialised memory)."""
    x = np.zeros(shape, dtype=dtype)
    out = compare(cpu, "pool", (x,) + params, dtype, mode)[0]
    assert np.all(out == -np.inf)
    compare(cpu, "pool", (x,) + params, dtype, mode + " NaN dout", poison=lambda d: put(d, "all", np.nan))


@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
def test_pooling_pad_as_large_as_the_window(dtype, mode, cpu):
    """pad >= the window (Pooling refuses it) leaves windows of padding only: -inf, no gradient."""
    for shape, params in [((1, 1, 1, 1), (2, 2, 1, 2)), ((1, 2, 3, 2), (2, 3, 2, 3)), ((1, 1, 3, 3), (1, 1, 1, 1))]:
        for kind in ("ties", "all -inf", "all nan"):
            compare(cpu, "pool", (pool_input(shape, dtype, kind),) + params, dtype, f"{mode} {kind} {shape} {params}")


# -- layouts and read-only inputs ------------------------------------------------------------

def _strided(a):
    """The values of a as every other element of a bigger array (helpers.strided compares with
    array_equal, which NaN fails)."""
    big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    big[..., ::2] = a
    v = big[..., ::2]
    assert not v.flags.c_contiguous or a.shape[-1] <= 1
    return v


def _read_only(a):
    a = np.array(a, copy=True)
    a.setflags(write=False)
    return a


LAYOUTS = {"strided": _strided, "fortran": np.asfortranarray, "read-only": _read_only,
           "read-only strided": lambda a: _read_only(a)[..., ::-1][..., ::-1]}


@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
def test_layouts_and_read_only_inputs(layout, dtype, path, cpu):
    """Every input of every op strided, in Fortran order or read-only, with NaN and Inf in it."""
    view = LAYOUTS[layout]
    for case in (CONV[1], CONV[4]):
        x, W, b, s, p = conv_inputs(case, dtype, seed=2)
        x = put(put(x, "left", np.nan), "right", np.inf)
        x, W, b = view(x), view(W), view(b)
        for op, args in conv_ops(case, x, W, b):
            dout = view(put(np.ones(getattr(REF, op + "_forward")(*args)[0].shape, dtype), "centre", np.inf))
            compare(cpu, op, args, dtype, f"{path} {layout} {case}", dout=dout)
        col = view(put(REF.im2col(np.asarray(x), 3, 3, s, p), "corner", np.nan))
        with unchanged(x, col):
            agree(cpu.im2col(x, 3, 3, s, p), REF.im2col(x, 3, 3, s, p), dtype, "im2col")
            agree(cpu.col2im(col, x.shape, 3, 3, s, p), REF.col2im(col, x.shape, 3, 3, s, p), dtype, "col2im")
    x = view(pool_input((2, 2, 4, 5), dtype, "-inf border"))
    for params in ((3, 3, 2, 1), (2, 2, 2, 0)):
        dout = view(np.ones(REF.pool_forward(x, *params)[0].shape, dtype))
        compare(cpu, "pool", (x,) + params, dtype, f"{path} {layout} pool {params}", dout=dout)


# -- im2col / col2im -------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("case", CONV, ids=[str(c) for c in CONV])
def test_im2col_and_col2im_with_non_finite_values(case, dtype, mode, cpu):
    x0, W, _, s, p = conv_inputs(case, dtype)
    FH, FW = W.shape[2:]
    for value in VALUES:
        for where in ("corner", "left", "right", "last", "all"):
            x = put(x0, where, VALUES[value])
            col = REF.im2col(x, FH, FW, s, p)
            with unchanged(x, col):
                agree(cpu.im2col(x, FH, FW, s, p), col, dtype, f"{mode} im2col {value} at {where}")
            # col2im of a column matrix with the value anywhere (padding taps included)
            c = put(col, where, VALUES[value])
            with unchanged(c):
                agree(cpu.col2im(c, x.shape, FH, FW, s, p), REF.col2im(c, x.shape, FH, FW, s, p), dtype,
                      f"{mode} col2im {value} at {where}")


# -- the same through the layers, under each backend -----------------------------------------

def _layer_results(name, make, x, dout, mode):
    """(out, dx, dW, db) of a fresh layer's forward and backward under backend name, or the
    exception's type if the layer refuses the input."""
    from fastdl.kernels.cpu import _chunks
    layer = make()
    with fastdl.using_backend(name), _chunks.forced(mode):
        try:
            out = layer.forward(x)
            dx = layer.backward(dout(out.shape))
        except (ValueError, FloatingPointError) as exc:
            return type(exc)
    return out, dx, getattr(layer, "dW", None), getattr(layer, "db", None)


LAYER_CASES = [  # what, x shape, layer factory(W, b)
    ("conv s1 p1", (2, 2, 4, 5), lambda W, b: Convolution(W, b, stride=1, pad=1)),
    ("conv s1 p0", (1, 2, 3, 5), lambda W, b: Convolution(W[:, :, :1], b, stride=1, pad=0)),
    ("conv s2 p1", (1, 2, 5, 5), lambda W, b: Convolution(W, b, stride=2, pad=1)),
    ("pool 3/2/1", (1, 2, 4, 4), lambda W, b: Pooling(3, 3, stride=2, pad=1)),
    ("pool 2/2/0", (2, 2, 4, 4), lambda W, b: Pooling(2, 2, stride=2, pad=0)),
]


@pytest.mark.parametrize("bad", ["nan left", "inf right", "-inf corner", "all -inf", "all nan", "empty batch",
                                 "nan dout", "inf W"])
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("mode", ["serial", "parallel"])
@pytest.mark.parametrize("what,shape,make", LAYER_CASES, ids=[c[0] for c in LAYER_CASES])
def test_layers_agree_on_bad_inputs(what, shape, make, dtype, mode, bad):
    rng = np.random.default_rng(5)
    W = rng.standard_normal((3, shape[1], 3, 3)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    x = rng.standard_normal(shape).astype(dtype)
    value, where = bad.split() if bad.split()[-1] in ("left", "right", "corner") else (None, None)
    if where is not None:
        x = put(x, where, VALUES[value])
    elif bad.startswith("all"):
        x = put(x, "all", VALUES[bad[4:]])
    elif bad == "empty batch":
        x = x[:0]
    elif bad == "inf W":
        W = put(W, "corner", np.inf)

    def dout(shape):
        d = np.random.default_rng(6).standard_normal(shape).astype(dtype)
        return put(d, "centre", np.nan) if bad == "nan dout" else d
    results = {}
    for name in ("numpy", "numba"):
        with unchanged(x, W, b):
            results[name] = _layer_results(name, lambda: make(W, b), x, dout, mode)
    want, got = results["numpy"], results["numba"]
    if isinstance(want, type):                   # the layer refuses the input: on both backends
        assert got is want, (what, bad, got, want)
        return
    assert not isinstance(got, type), (what, bad, got)
    for label, g, w in zip(("out", "dx", "dW", "db"), got, want):
        agree(g, w, dtype, f"{what} {bad} {mode}: {label}")
