"""The per-call fast paths of the book's layers and of the checks under them.

Affine skips its weight checks while it holds the weights an earlier forward checked (the same
objects, shapes and dtype, on the same backend); the element-wise layers and SoftmaxWithLoss skip
their input conversion for float arrays; the ops compare shape tuples once before the full checks.
After a first good call, every later call must give what a fresh layer gives on its first call
(bit for bit), and every mistake must raise the error a fresh layer raises.
"""
import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl._checks import labels
from fastdl.kernels import shapes
from fastdl.layers import Affine, LeakyRelu, Relu, Sigmoid, SoftmaxWithLoss
from fastdl.layers import dense
from tests.conftest import BACKENDS

DT = [np.float32, np.float64]


def _outcome(fn):
    """("ok", result) or (exception type, message)."""
    try:
        return "ok", fn()
    except (TypeError, ValueError) as exc:
        return type(exc), str(exc)


def _same(a, b):
    """Two outcomes alike: the same error, or results equal bit for bit (dtype and shape too)."""
    assert a[0] == b[0], (a, b)
    if a[0] != "ok":
        assert a[1] == b[1]
        return
    x, y = np.asarray(a[1]), np.asarray(b[1])
    assert x.dtype == y.dtype and x.shape == y.shape
    assert x.tobytes() == y.tobytes()


def _layouts(x):
    """x contiguous, as a strided view, and in Fortran order."""
    wide = np.repeat(x, 2, axis=-1)
    return [x, wide[..., ::2], np.asfortranarray(x)]


@pytest.fixture
def weight_checks(monkeypatch):
    """Counts the calls of Affine's full weight checks (``dense._weights``)."""
    calls = []
    real = dense._weights

    def spy(*args):
        calls.append(args[0])
        return real(*args)
    monkeypatch.setattr(dense, "_weights", spy)
    return calls


@pytest.mark.parametrize("wdt", DT)
def test_affine_later_calls_match_a_first_call(backend_name, wdt, weight_checks):
    rng = np.random.default_rng(0)
    W = rng.standard_normal((12, 5)).astype(wdt)
    b = rng.standard_normal(5).astype(wdt)
    layer = Affine(W, b)
    layer.forward(np.zeros((2, 12), wdt))
    assert len(weight_checks) == 1
    for xdt in (np.float32, np.float64, np.int64, np.float16):
        base = (rng.standard_normal((3, 2, 6)) * 4).astype(xdt)
        for x in _layouts(base) + _layouts(base.reshape(3, 12)):
            got = layer.forward(x)
            fresh = Affine(W, b)
            want = fresh.forward(x)
            _same(("ok", got), ("ok", want))
            assert layer.original_x_shape == fresh.original_x_shape == x.shape
            _same(("ok", layer.x), ("ok", fresh.x))
            dout = rng.standard_normal(got.shape).astype(wdt)
            _same(("ok", layer.backward(dout)), ("ok", fresh.backward(dout)))
            _same(("ok", layer.dW), ("ok", fresh.dW))
            with fastdl.using_backend("numpy"):
                ref = Affine(W, b).forward(x)
            tol = 1e-5 if wdt == np.float32 else 1e-12
            np.testing.assert_allclose(got, ref, rtol=tol, atol=tol)
    # the weights were checked by the first call, by each fresh and each reference layer, and by
    # the layer's calls on int64 and float16 x (converted on the full path); float32 and float64
    # x took the fast path
    inputs = 4 * 6
    assert len(weight_checks) == 1 + 2 * inputs + inputs // 2, len(weight_checks)


@pytest.mark.parametrize("wdt", DT)
def test_affine_mistakes_after_a_good_call_raise_as_on_a_first_call(backend_name, wdt):
    rng = np.random.default_rng(1)
    W = rng.standard_normal((12, 5)).astype(wdt)
    b = rng.standard_normal(5).astype(wdt)
    layer = Affine(W, b)
    layer.forward(np.ones((2, 12), wdt))
    bad = [np.zeros((2, 13), wdt), np.zeros((2, 3, 5), wdt), np.zeros((4, 2, 2, 2), wdt)[:, :, ::2],
           np.float64(2.0), np.zeros((2, 12), np.complex128), np.array([["a"] * 12]), [[1.0] * 11],
           np.zeros(12, wdt)]
    for x in bad:
        got = _outcome(lambda: layer.forward(x))
        want = _outcome(lambda: Affine(W, b).forward(x))
        _same(got, want)
    for x in bad[:4]:
        assert _outcome(lambda: layer.forward(x))[0] is ValueError
    _same(("ok", layer.forward(np.ones((2, 12), wdt))), ("ok", Affine(W, b).forward(np.ones((2, 12), wdt))))


def test_affine_sees_weights_changed_after_a_call(backend_name):
    """Rebound weights, weights of another shape or dtype, a scalar bias: each forward computes
    with what the layer holds then, as a fresh layer would."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 4))
    changes = [
        lambda l: l.W.__iadd__(1.0),                                  # in place: the same array
        lambda l: setattr(l, "W", rng.standard_normal((4, 2))),       # b no longer matches
        lambda l: setattr(l, "b", rng.standard_normal(2).astype(np.float32)),   # converted
        lambda l: setattr(l, "b", 0),                                 # a scalar, broadcast
        lambda l: setattr(l, "W", np.ones((4, 2), np.int64)),         # computed in float64
        lambda l: setattr(l, "W", rng.standard_normal((4, 2)).astype(np.float32)),
        lambda l: setattr(l, "b", np.zeros(2, np.float32)),
        lambda l: setattr(l.W, "shape", (2, 4)),                      # reshaped in place
        lambda l: setattr(l, "W", rng.standard_normal((5, 2)).astype(np.float32)),   # 5 features
    ]
    layer = Affine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    layer.forward(x)
    outcomes = []
    for change in changes:
        change(layer)
        got = _outcome(lambda: layer.forward(x))
        want = _outcome(lambda: Affine(layer.W, layer.b).forward(x))
        _same(got, want)
        outcomes.append(got[0])
    assert outcomes == ["ok", ValueError, "ok", "ok", "ok", "ok", "ok", ValueError, ValueError]


def test_affine_follows_the_backend_in_force():
    """A layer checked under one backend runs on the backend in force at each call."""
    if len(BACKENDS) < 2:
        pytest.skip("one backend here")
    rng = np.random.default_rng(3)
    layer = Affine(rng.standard_normal((4, 3)), rng.standard_normal(3))
    x = rng.standard_normal((2, 4))
    for name in BACKENDS + BACKENDS[::-1]:
        with fastdl.using_backend(name):
            layer.forward(x)
            assert layer._ops is backend.ops(name)
            layer.backward(np.ones((2, 3)))


@pytest.mark.parametrize("dt", DT)
def test_affine_op_checks_shapes_before_any_product(backend_name, dt):
    """The op's own checks (a caller may call it without the layer): what it accepts is exactly
    x (N, D), W (D, M) of floats, b (M,); anything else raises naming the op."""
    ops = backend.ops(backend_name)
    rng = np.random.default_rng(4)
    variants = {"x": [(3, 4), (3, 5), (3,), (3, 4, 1), (0, 4)], "W": [(4, 2), (5, 2), (4,), (4, 2, 1)],
                "b": [(2,), (3,), (1, 2), ()]}
    for xs in variants["x"]:
        for ws in variants["W"]:
            for bs in variants["b"]:
                x, W, b = (rng.standard_normal(s).astype(dt) for s in (xs, ws, bs))
                valid = len(xs) == 2 and len(ws) == 2 and xs[1] == ws[0] and bs == (ws[1],)
                got = _outcome(lambda: ops.affine_forward(x, W, b))
                if valid:
                    assert got[0] == "ok" and got[1].shape == (xs[0], ws[1])
                    np.testing.assert_allclose(got[1], x @ W + b, rtol=1e-5, atol=1e-5)
                else:
                    assert got[0] is ValueError and got[1].startswith("affine_forward: "), (xs, ws, bs, got)
    x, W = rng.standard_normal((3, 4)).astype(dt), rng.standard_normal((4, 2)).astype(dt)
    assert _outcome(lambda: ops.affine_forward(x, W.astype(np.int32), np.zeros(2)))[0] is TypeError
    assert _outcome(lambda: ops.affine_forward([[1.0] * 4], W, np.zeros(2, dt)))[0] is TypeError
    for ds in [(3, 2), (3, 3), (2, 2), (3,)]:
        got = _outcome(lambda: ops.affine_backward(np.ones(ds, dt), x, W))
        assert got[0] == ("ok" if ds == (3, 2) else ValueError), (ds, got)


@pytest.mark.parametrize("dt", DT)
@pytest.mark.parametrize("cls", [Relu, Sigmoid, LeakyRelu])
def test_elementwise_later_calls_match_a_first_call(backend_name, cls, dt):
    rng = np.random.default_rng(5)
    layer = cls()
    layer.forward(np.ones((2, 3), dt))
    for n in (7, 2000):                       # below and above the NumPy shortcut of the small ops
        base = rng.standard_normal((2, n)).astype(dt)
        base[0, :3] = (-0.0, np.nan, np.inf)
        finite = np.nan_to_num(base, nan=0.0, posinf=5.0)
        for x in _layouts(base) + [(finite * 3).astype(np.int32), base.astype(np.float16)]:
            got = _outcome(lambda: layer.forward(x))
            _same(got, _outcome(lambda: cls().forward(x)))
            with fastdl.using_backend("numpy"):
                ref = cls().forward(x)
            np.testing.assert_allclose(got[1], ref, rtol=1e-6)
            num = ~np.isnan(ref)
            assert (np.signbit(got[1])[num] == np.signbit(ref)[num]).all()     # -0.0 stays as NumPy's
            dout = rng.standard_normal(x.shape)
            _same(_outcome(lambda: layer.backward(dout)),
                  _outcome(lambda: (lambda f: (f.forward(x), f.backward(dout))[1])(cls())))
    for x in (np.zeros((2, 3), np.complex128), "abc"):
        _same(_outcome(lambda: layer.forward(x)), _outcome(lambda: cls().forward(x)))
    assert _outcome(lambda: layer.backward(np.ones((2, 4))))[0] is ValueError


def test_elementwise_parameters_reach_the_ops(backend_name):
    """LeakyRelu's alpha, and the parameters a class of one's own returns from ``params``."""
    x = np.array([[-2.0, 3.0]])
    assert LeakyRelu(0.5).forward(x).tolist() == [[-1.0, 3.0]]

    class Counted(Relu):
        calls = 0

        def params(self):
            Counted.calls += 1
            return {}
    layer = Counted()
    before = Counted.calls
    assert layer.forward(x).tolist() == [[0.0, 3.0]] and layer.backward(x).tolist() == [[0.0, 3.0]]
    assert Counted.calls > before


def _one_hot_by_definition(t):
    return bool((((t == 0) | (t == 1)).all() and (t.sum(axis=1) == 1).all()))


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.int64, np.uint8, np.bool_])
def test_one_hot_labels_are_checked_as_defined(dt):
    """labels() accepts (n, k) rows exactly when every entry is 0 or 1 and each row sums to 1."""
    rng = np.random.default_rng(6)
    values = np.array([0, 1, -1, 2, 0.5, -0.0, np.nan, np.inf])
    p = [0.5, 0.38, 0.02, 0.02, 0.02, 0.02, 0.02, 0.02]
    seen = set()
    for _ in range(1500):
        n, k = int(rng.integers(1, 4)), int(rng.integers(2, 4))
        raw = rng.choice(values, size=(n, k), p=p)
        if np.dtype(dt).kind != "f":
            raw = np.nan_to_num(raw, nan=3, posinf=3)
            if dt is np.uint8:
                raw = np.abs(raw)
            raw = np.trunc(raw)
        with np.errstate(invalid="ignore"):
            t = raw.astype(dt)
        for tv in (t, np.repeat(t, 2, axis=1)[:, ::2]):
            with np.errstate(invalid="ignore"):
                ok = _one_hot_by_definition(tv)
            got = _outcome(lambda: labels(tv, n, k, owner="L"))
            seen.add(ok)
            if ok:
                assert got[0] == "ok" and got[1].tolist() == tv.argmax(axis=1).tolist()
            else:
                assert got == (ValueError, f"L: labels t of shape {tv.shape} must be one-hot rows "
                                           "(one 1 per row, zeros elsewhere)"), tv
    assert seen == {True, False}


@pytest.mark.parametrize("dt", [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint64, np.bool_,
                                np.float64])
def test_class_index_labels_are_range_checked(dt):
    rng = np.random.default_rng(7)
    for _ in range(300):
        n, k = int(rng.integers(1, 5)), int(rng.integers(1, 6))
        raw = rng.integers(-3 if np.dtype(dt).kind in "if" else 0, 8, size=n)
        t = raw.astype(dt)
        for tv in (t, np.repeat(t, 2)[::2], t[:, None]):
            flat = tv.reshape(-1)
            got = _outcome(lambda: labels(tv, n, k))
            if flat.min() < 0 or flat.max() >= k:
                assert got == (ValueError, f"labels t must lie in [0, {k - 1}] for {k} classes, "
                                           f"got values from {flat.min()} to {flat.max()}")
            else:
                assert got[0] == "ok" and got[1].dtype == np.intp and got[1].tolist() == flat.tolist()


@pytest.mark.parametrize("dt", DT)
def test_softmax_with_loss_later_calls_match_a_first_call(backend_name, dt):
    rng = np.random.default_rng(8)
    layer = SoftmaxWithLoss()
    layer.forward(np.zeros((3, 4), dt), np.array([0, 1, 2]))
    x = rng.standard_normal((3, 4)).astype(dt)
    idx = np.array([1, 0, 3])
    forms = [idx, idx[:, None], np.eye(4)[idx], idx.astype(np.int8), idx.astype(float)]
    for xv in _layouts(x) + [x.astype(np.int64), x[0]]:
        for t in forms + [idx[:1]]:
            if xv.ndim == 1:
                t = t[:1] if t.ndim == 1 else t[:1]
            got = _outcome(lambda: (layer.forward(xv, t), layer.backward(2.0)))
            fresh = SoftmaxWithLoss()
            want = _outcome(lambda: (fresh.forward(xv, t), fresh.backward(2.0)))
            assert got[0] == want[0], (got, want)
            if got[0] == "ok":
                for g_, w_ in zip(got[1], want[1]):
                    _same(("ok", g_), ("ok", w_))
            else:
                assert got[1] == want[1]
    bad = [(x, np.array([0, 4, 1])), (x, np.array([0, -1, 1])), (x, np.array([0, 1])),
           (x, np.eye(4)[idx] * 2), (x, np.array(["a", "b", "c"])), (np.zeros((0, 4), dt), np.array([], int)),
           (np.zeros((3, 0), dt), idx), (np.zeros((3, 4), np.complex64), idx)]
    for xv, t in bad:
        got = _outcome(lambda: layer.forward(xv, t))
        assert got[0] in (ValueError, TypeError)
        assert got == _outcome(lambda: SoftmaxWithLoss().forward(xv, t))


def test_label_shape_check_of_the_loss_ops(backend_name):
    ops = backend.ops(backend_name)
    x = np.zeros((3, 4))
    for t in (np.zeros(2, np.intp), np.zeros((3, 1), np.intp), np.zeros(4, np.intp)):
        for op, args in (("softmax_loss_forward", (x, t)), ("softmax_loss_backward", (x, t, 1.0))):
            got = _outcome(lambda: getattr(ops, op)(*args))
            assert got[0] is ValueError and got[1].startswith(op + ": t has shape"), got
    assert shapes.check_labels_shape("op", "x", x, np.zeros(3, np.intp)) == (3, 4)
    with pytest.raises(ValueError, match=r"^op: x must be 2-D \(N, K\), got shape \(3,\)"):
        shapes.check_labels_shape("op", "x", np.zeros(3), np.zeros(3, np.intp))
    with pytest.raises(TypeError, match="^op: t must be an array, got list"):
        shapes.check_labels_shape("op", "x", x, [0, 1, 2])


@pytest.mark.parametrize("dt", DT)
def test_backward_mistakes_raise_as_on_a_first_call(backend_name, dt):
    """dout of another shape, of another dtype or a list, and backward before forward."""
    rng = np.random.default_rng(9)
    W, b = rng.standard_normal((6, 3)).astype(dt), rng.standard_normal(3).astype(dt)
    x = rng.standard_normal((2, 3, 2)).astype(dt)
    t = np.array([2, 0])

    def layers():
        return [(Affine(W, b), x, (2, 3)), (Relu(), x, x.shape), (Sigmoid(), x, x.shape),
                (LeakyRelu(0.2), x, x.shape)]
    for (layer, xin, out_shape), (fresh, _, _) in zip(layers(), layers()):
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(np.ones(out_shape, dt))
        layer.forward(xin)
        layer.backward(np.ones(out_shape, dt))                 # a good call first
        fresh.forward(xin)
        for dout in (np.ones(out_shape[:-1] + (out_shape[-1] + 1,), dt), np.ones(out_shape, np.int64),
                     np.ones(out_shape, np.float16), np.ones(out_shape).tolist(), np.ones(out_shape, complex),
                     np.ones(out_shape, dt)[..., None], np.repeat(np.ones(out_shape, dt), 2, axis=-1)[..., ::2]):
            _same(_outcome(lambda: layer.backward(dout)), _outcome(lambda: fresh.backward(dout)))
            if layer.__class__ is Affine and _outcome(lambda: layer.backward(dout))[0] == "ok":
                _same(("ok", layer.dW), ("ok", fresh.dW))
    loss = SoftmaxWithLoss()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        loss.backward()
    loss.forward(x[:, :, 0], t)
    fresh = SoftmaxWithLoss()
    fresh.forward(x[:, :, 0], t)
    for dout in (1, 2.5, np.float32(3)):
        _same(("ok", loss.backward(dout)), ("ok", fresh.backward(dout)))


# -- the repeated checks of a tiny forward pass, and what stays checked --------------------------
# (the book's gradient checks call a network's loss ~80,000 times on the same 3 one-hot rows)

def _one_hot(idx, k, dt):
    return np.eye(k, dtype=dt)[idx]


@pytest.mark.parametrize("dt", [np.float64, np.float32, np.int64, np.uint8])
def test_one_hot_labels_changed_in_place_are_checked_again(dt):
    """labels() remembers the last small one-hot t by its contents: the same object changed in
    place gives the new labels, or the error a fresh array with those contents gives."""
    t = _one_hot([1, 2, 3], 10, dt)
    assert labels(t, 3, 10).tolist() == [1, 2, 3]
    assert labels(t, 3, 10).tolist() == [1, 2, 3]             # remembered
    t[0] = 0
    t[0, 7] = 1                                                # another valid row, same object
    assert labels(t, 3, 10).tolist() == [7, 2, 3]
    bad_rows = [lambda a: a.__setitem__((1, 0), 1),            # two 1s in a row
                lambda a: a.__setitem__((2, 3), 0),            # no 1 in a row
                lambda a: a.__setitem__((0, 7), 2)]            # a 2 in place of the 1
    if np.dtype(dt).kind == "f":
        bad_rows.append(lambda a: a.__setitem__((1, 2), np.nan))
    for spoil in bad_rows:
        good = t.copy()
        assert labels(t, 3, 10).tolist() == [7, 2, 3]
        spoil(t)
        got = _outcome(lambda: labels(t, 3, 10, owner="L"))
        assert got == (ValueError, "L: labels t of shape (3, 10) must be one-hot rows "
                                   "(one 1 per row, zeros elsewhere)"), t
        assert got == _outcome(lambda: labels(t.copy(), 3, 10, owner="L"))
        t[...] = good                                          # repaired: accepted again
        assert labels(t, 3, 10).tolist() == [7, 2, 3]


def test_remembered_one_hot_labels_depend_on_dtype_and_shape():
    """The same bytes under another dtype or shape are other labels: checked as such."""
    t = _one_hot([1, 0, 3, 2], 4, np.float64)
    assert labels(t, 4, 4).tolist() == [1, 0, 3, 2]
    with pytest.raises(ValueError, match="must be one-hot rows"):
        labels(t.view(np.int64), 4, 4)                         # 1.0's bits as an integer
    with pytest.raises(ValueError, match="must be one-hot rows"):
        labels(t.reshape(2, 8), 2, 8)                          # two 1s in each row of 8
    with pytest.raises(ValueError, match="must be one-hot rows"):
        labels(t.view(np.float32), 4, 8)                       # halves of 1.0's bits
    assert labels(t, 4, 4).tolist() == [1, 0, 3, 2]
    got = labels(t, 4, 4)
    got[:] = 0                                                 # the caller's copy, not the memo
    assert labels(t, 4, 4).tolist() == [1, 0, 3, 2]


@pytest.mark.parametrize("dt", DT)
def test_softmax_with_loss_on_a_label_array_changed_in_place(backend_name, dt):
    """One layer, one t object changed between calls: every call gives what a fresh layer gives
    on a fresh copy of t (bit for bit), and the spoilt t raises the same error."""
    rng = np.random.default_rng(10)
    x = rng.standard_normal((3, 10)).astype(dt)
    t = _one_hot([1, 2, 3], 10, np.float64)
    layer = SoftmaxWithLoss()
    for change in ([4, 2, 3], [4, 2, 9], None, [0, 0, 0]):
        if change is None:
            t[1, 5] = 1                                        # a second 1 in row 1
        else:
            t[...] = _one_hot(change, 10, np.float64)
        got = _outcome(lambda: (layer.forward(x, t), layer.backward(1.0)))
        fresh = SoftmaxWithLoss()
        want = _outcome(lambda: (fresh.forward(x, t.copy()), fresh.backward(1.0)))
        assert got[0] == want[0], (got, want)
        if got[0] == "ok":
            for g_, w_ in zip(got[1], want[1]):
                _same(("ok", g_), ("ok", w_))
            loss, _ = backend.ops(backend_name).softmax_loss_forward(x, np.array(change))
            _same(("ok", layer.loss), ("ok", loss))            # the labels of t as it is now
        else:
            assert got[1] == want[1] and "must be one-hot rows" in got[1]


def test_reference_ops_keep_their_checks_beside_the_unchecked_variant():
    """The oracle's public ops still refuse bad arguments; their ``unchecked`` variants (what the
    layers call after their own checks) give the same results bit for bit."""
    from fastdl.kernels import reference as ref
    rng = np.random.default_rng(11)
    for dt in DT:
        x = rng.standard_normal((4, 5)).astype(dt)
        t = np.array([0, 4, 2, 1])
        for xv in _layouts(x):
            _same(("ok", ref.softmax_loss_forward(xv, t)[0]), ("ok", ref.softmax_loss_forward.unchecked(xv, t)[0]))
            _same(("ok", ref.softmax_loss_forward(xv, t)[1]), ("ok", ref.softmax_loss_forward.unchecked(xv, t)[1]))
        for bad, msg in ((np.array([0, 5, 2, 1]), "outside the classes"), (np.array([0, -1, 2, 1]), "outside"),
                         (np.array([0, 1, 2]), "t has shape")):
            with pytest.raises(ValueError, match=msg):
                ref.softmax_loss_forward(x, bad)
        W, b = rng.standard_normal((5, 3)).astype(dt), rng.standard_normal(3).astype(dt)
        for xv in _layouts(x) + [x.astype(np.float32), x.astype(np.float64)]:
            _same(("ok", ref.affine_forward(xv, W, b)), ("ok", ref.affine_forward.unchecked(xv, W, b)))
        for args, msg in (((x, W[:4], b), "has 5 features"), ((x, W, b[:2]), "b has shape"),
                          ((x[0], W, b), "must be 2-D"), ((x, W.astype(int), b), "must be a float array")):
            with pytest.raises((ValueError, TypeError), match=msg):
                ref.affine_forward(*args)


@pytest.mark.parametrize("dt", DT)
def test_small_relu_matches_np_where(dt):
    """relu_forward's small-array path (copy, zeros stored under the mask) against np.where on
    both sides of its size limit: values, dtype, shape and strides; NaN, -0.0 and infinities."""
    from fastdl.kernels.reference import activations
    rng = np.random.default_rng(12)
    for size in (activations._SMALL, activations._SMALL + 1, 150, 1):
        base = rng.standard_normal((size, 2)).astype(dt)
        base.flat[:5] = [np.nan, -0.0, 0.0, np.inf, -np.inf][:min(5, base.size)]
        for x in _layouts(base) + [base.T, base[::-1], np.asarray(base[0, 0])]:
            out, mask = activations.relu_forward(x)
            want = np.where(x <= 0, x.dtype.type(0), x)
            assert out.strides == want.strides and out.dtype == want.dtype
            _same(("ok", out), ("ok", want))
            _same(("ok", mask), ("ok", x <= 0))
            assert not np.shares_memory(out, x)


def test_deferred_unchecked_variant_keeps_the_account(monkeypatch):
    """A stand-in's ``unchecked`` variant (kernels/cpu/_defer.py) counts in fallback_calls,
    records the op's first call per dtype, adds the time of large calls to the account, and once
    the account is spent loads the kernels and hands the call on, as the stand-in itself does."""
    from fastdl.kernels import reference as ref
    from fastdl.kernels.cpu import _compile, _defer
    monkeypatch.setattr(_defer, "_load_failed", False)
    monkeypatch.setattr(_defer, "_spent", 0.0)
    monkeypatch.setattr(_defer, "_first_calls", {})
    monkeypatch.setattr(_compile, "_mode", "background")
    loads = []
    ns: dict = {}

    def load():
        loads.append(1)
        ns["affine_forward"] = lambda *a: "compiled"
    _defer.install(ns, ["affine_forward", "softmax_loss_forward", "relu_forward"], load)
    assert not hasattr(ns["relu_forward"], "unchecked")       # the reference has no such variant
    rng = np.random.default_rng(13)
    x, W, b = rng.random((3, 4)).astype(np.float32), rng.random((4, 2)), rng.random(2)
    before = _compile.fallback_calls
    out = ns["affine_forward"].unchecked(x, W, b)
    _same(("ok", out), ("ok", ref.affine_forward(x, W, b)))
    assert _compile.fallback_calls == before + 1
    assert list(_defer._first_calls) == [("affine_forward", np.dtype(np.float64))]   # W's dtype
    assert _defer._spent == 0.0                                # small: not counted
    ns["affine_forward"](x.astype(np.float64), W, b)           # the same key: recorded once
    assert len(_defer._first_calls) == 1 and _compile.fallback_calls == before + 2
    loss, y = ns["softmax_loss_forward"].unchecked(x, np.array([1, 0, 3]))
    _same(("ok", loss), ("ok", ref.softmax_loss_forward(x, np.array([1, 0, 3]))[0]))
    assert ("softmax_loss_forward", np.dtype(np.float32)) in _defer._first_calls
    big = rng.random((_defer.COUNT_FROM, 2))
    ns["affine_forward"].unchecked(big, W[:2], b)
    assert _defer._spent > 0.0 and not loads                   # large: counted
    monkeypatch.setattr(_defer, "_spent", 1e9)                 # the account spent
    assert ns["affine_forward"].unchecked(x, W, b) == "compiled" and loads == [1]
