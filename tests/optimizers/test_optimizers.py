"""Optimizer update rules against the formulas written out by hand, on arrays and on plain floats."""
import re

import numpy as np
import pytest

from fastdl.optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from tests.helpers import (ALL_PATHS, DT, DT_IDS, NUMBA_PATHS, OPTIMIZERS, REF_PATH, assert_same, laid_out,
                           numba_vs_reference, outcome_of, run_path)


def by_hand(name, steps, p, gs, **kw):
    """The book's update rules, written out with plain NumPy; returns the final parameter."""
    p = p.copy()
    v = np.zeros_like(p)
    m = np.zeros_like(p)
    h = np.zeros_like(p)
    for i, g in enumerate(gs[:steps], start=1):
        if name == "SGD":
            p = p - kw["lr"] * g
        elif name == "Momentum":
            v = kw["momentum"] * v - kw["lr"] * g
            p = p + v
        elif name == "Nesterov":
            # the book's current code (its commit 89eadd0): p moves with the previous v
            p = p + kw["momentum"] ** 2 * v - (1 + kw["momentum"]) * kw["lr"] * g
            v = kw["momentum"] * v - kw["lr"] * g
        elif name == "AdaGrad":
            h = h + g * g
            p = p - kw["lr"] * g / (np.sqrt(h) + 1e-7)
        elif name == "RMSprop":
            h = kw["decay_rate"] * h + (1 - kw["decay_rate"]) * g * g
            p = p - kw["lr"] * g / (np.sqrt(h) + 1e-7)
        elif name == "Adam":
            b1, b2 = kw["beta1"], kw["beta2"]
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            lr_t = kw["lr"] * np.sqrt(1 - b2 ** i) / (1 - b1 ** i)
            p = p - lr_t * m / (np.sqrt(v) + 1e-7)
    return p


CASES = [
    (SGD, dict(lr=0.1)), (Momentum, dict(lr=0.05, momentum=0.8)), (Nesterov, dict(lr=0.05, momentum=0.9)),
    (AdaGrad, dict(lr=0.3)), (RMSprop, dict(lr=0.02, decay_rate=0.9)),
    (Adam, dict(lr=0.01, beta1=0.8, beta2=0.99)),
]


@pytest.mark.parametrize("cls,kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_update_rule_on_arrays_in_place(cls, kw, backend_name, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((3, 4))
    gs = [rng.standard_normal((3, 4)) for _ in range(4)]
    opt = cls(**kw)
    W = p0.astype(dtype)
    params = {"W": W, "b": np.zeros(2, dtype=dtype)}
    for g in gs:
        grads = {"W": g.astype(dtype), "b": np.ones(2, dtype=dtype)}
        copies = {k: v.copy() for k, v in grads.items()}
        opt.update(params, grads)
        for k in grads:
            np.testing.assert_array_equal(grads[k], copies[k])   # grads untouched
    assert params["W"] is W and W.dtype == dtype                 # in place, dtype kept
    np.testing.assert_allclose(W, by_hand(cls.__name__, 4, p0, gs, **kw),
                               rtol=1e-4 if dtype == np.float32 else 1e-12, atol=1e-5 if dtype == np.float32 else 1e-13)


@pytest.mark.parametrize("cls,kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_update_rule_on_plain_floats(cls, kw):
    """The book's chapter-6 comparison optimises f(x, y) with params held as Python floats."""
    opt = cls(**kw)
    params = {"x": -7.0, "y": 2.0}
    history = []
    for _ in range(3):
        grads = {"x": params["x"] / 10.0, "y": 2.0 * params["y"]}
        history.append(np.array([grads["x"], grads["y"]]))
        opt.update(params, grads)
        assert isinstance(params["x"], float)
    want = by_hand(cls.__name__, 3, np.array([-7.0, 2.0]), history, **kw)
    assert [params["x"], params["y"]] == pytest.approx(list(want), rel=1e-12)


def test_book_defaults():
    assert SGD().lr == 0.01
    assert (Momentum().lr, Momentum().momentum) == (0.01, 0.9)
    assert AdaGrad().lr == 0.01
    assert (RMSprop().lr, RMSprop().decay_rate) == (0.01, 0.99)
    a = Adam()
    assert (a.lr, a.beta1, a.beta2) == (0.001, 0.9, 0.999)


def test_update_errors_name_the_parameter():
    with pytest.raises(ValueError, match=r"grads\['W'\] has shape \(2,\)"):
        SGD().update({"W": np.zeros(3)}, {"W": np.zeros(2)})
    with pytest.raises(KeyError, match="W"):
        SGD().update({"W": np.zeros(3)}, {})
    with pytest.raises(TypeError, match="float array"):
        SGD().update({"W": np.zeros(3, dtype=int)}, {"W": np.zeros(3)})


# -- state that no longer fits its parameter; reset; hyper-parameters -----------------------------

import copy  # noqa: E402
import pickle  # noqa: E402


STATEFUL = [c for c in CASES if c[0] is not SGD]


def _param(n, dtype, strided, seed):
    """n values of dtype, as a strided view (every other element of a wider array) if asked."""
    v = np.random.default_rng(seed).standard_normal(n).astype(dtype)
    if not strided:
        return v
    wide = np.zeros(2 * n, dtype=dtype)
    wide[::2] = v
    return wide[::2]


@pytest.mark.parametrize("strided", [False, True], ids=["contiguous", "strided"])
@pytest.mark.parametrize("cls,kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_reused_on_parameters_of_another_size(cls, kw, backend_name, dtype, strided):
    """One optimizer for W of 3, then 5, then 100,000 values (the numba kernels' compiled path),
    b keeping its shape throughout: W's state starts fresh at each size and gives exactly what a
    new optimizer gives; b's carries over, as if W had never changed. (The numba backend wrote
    past the end of the 3-value state, and the reference raised a broadcasting error.)"""
    reused, b_alone = cls(**kw), cls(**kw)
    b, b_ref = _param(2, dtype, False, 9), _param(2, dtype, False, 9)
    for stage, n in enumerate([3, 5, 100000]):
        W = _param(n, dtype, strided, stage)
        W_new = W.copy()
        new = cls(**kw)
        for step in range(2):
            g = _param(n, dtype, False, 10 * stage + step + 1)
            gb = _param(2, dtype, False, 100 + 10 * stage + step)
            reused.update({"W": W, "b": b}, {"W": g, "b": gb})
            new.update({"W": W_new}, {"W": g})
            b_alone.update({"b": b_ref}, {"b": gb})
        np.testing.assert_array_equal(W, W_new)
        np.testing.assert_array_equal(b, b_ref)
        for name in cls._state:
            assert getattr(reused, name)["W"].shape == (n,)


@pytest.mark.parametrize("cls,kw", STATEFUL, ids=[c[0].__name__ for c in STATEFUL])
def test_state_carries_over_while_the_shape_stays(cls, kw, backend_name):
    """Same shape and dtype: the second update uses the first one's state (so it differs from
    a new optimizer's first step); another dtype of the same shape starts fresh."""
    opt = cls(**kw)
    g = np.full(4, 0.5)
    opt.update({"W": np.ones(4)}, {"W": g})
    state = [getattr(opt, name)["W"] for name in cls._state]
    W, W_new = np.ones(4), np.ones(4)
    opt.update({"W": W}, {"W": g})
    cls(**kw).update({"W": W_new}, {"W": g})
    assert [getattr(opt, name)["W"] for name in cls._state] == state      # the same arrays
    assert not np.array_equal(W, W_new)
    W32, W32_new = np.ones(4, np.float32), np.ones(4, np.float32)
    opt.update({"W": W32}, {"W": g.astype(np.float32)})
    cls(**kw).update({"W": W32_new}, {"W": g.astype(np.float32)})
    np.testing.assert_array_equal(W32, W32_new)
    assert all(getattr(opt, name)["W"].dtype == np.float32 for name in cls._state)


@pytest.mark.parametrize("cls,kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_reset_forgets_all_state(cls, kw, backend_name):
    opt = cls(**kw)
    g = np.linspace(-1, 1, 6)
    for _ in range(3):
        opt.update({"W": np.ones(6)}, {"W": g})
    opt.reset()
    assert all(getattr(opt, name) is None for name in cls._state)
    if cls is Adam:
        assert opt.iter == 0
    W, W_new = np.ones(6), np.ones(6)
    opt.update({"W": W}, {"W": g})
    cls(**kw).update({"W": W_new}, {"W": g})
    np.testing.assert_array_equal(W, W_new)
    assert {k: getattr(opt, k) for k in kw} == kw                     # hyper-parameters kept


BAD_HYPER = [
    (SGD, dict(lr=-1), ValueError, "SGD: lr must be >= 0, got -1"),
    (SGD, dict(lr=float("nan")), ValueError, "SGD: lr must be finite, got nan"),
    (SGD, dict(lr=float("inf")), ValueError, "SGD: lr must be finite, got inf"),
    (SGD, dict(lr="0.1"), TypeError, "SGD: lr must be a real number, got str"),
    (SGD, dict(lr=True), TypeError, "SGD: lr must be a real number, got bool"),
    (AdaGrad, dict(lr=-1e-3), ValueError, "AdaGrad: lr must be >= 0"),
    (Momentum, dict(momentum=1.5), ValueError, r"Momentum: momentum must be in \[0, 1\), got 1.5"),
    (Momentum, dict(momentum=1), ValueError, r"Momentum: momentum must be in \[0, 1\), got 1"),
    (Nesterov, dict(momentum=-0.1), ValueError, r"Nesterov: momentum must be in \[0, 1\)"),
    (Adam, dict(beta1=1), ValueError, r"Adam: beta1 must be in \[0, 1\), got 1"),
    (Adam, dict(beta2=-1), ValueError, r"Adam: beta2 must be in \[0, 1\), got -1"),
    (Adam, dict(lr=float("-inf")), ValueError, "Adam: lr must be finite"),
    (RMSprop, dict(decay_rate=2), ValueError, r"RMSprop: decay_rate must be in \[0, 1\), got 2"),
]


@pytest.mark.parametrize("cls,kw,exc,message", BAD_HYPER,
                         ids=[f"{c.__name__}-{next(iter(k))}={next(iter(k.values()))!r}" for c, k, _, _ in BAD_HYPER])
def test_hyper_parameters_that_are_certainly_mistakes(cls, kw, exc, message):
    with pytest.raises(exc, match=message) as info:
        cls(**kw)
    assert "\n" not in str(info.value)
    opt = cls()                                         # and on assignment later
    name, value = next(iter(kw.items()))
    before = getattr(opt, name)
    with pytest.raises(exc, match=message):
        setattr(opt, name, value)
    assert getattr(opt, name) == before


@pytest.mark.parametrize("cls,kw", [
    (SGD, dict(lr=0.95)), (SGD, dict(lr=0.01)), (Momentum, dict(lr=0.1)), (Momentum, dict(lr=0.01, momentum=0.0)),
    (Nesterov, dict(lr=0.01)), (AdaGrad, dict(lr=1.5)), (RMSprop, dict(lr=0.01, decay_rate=0.0)),
    (Adam, dict(lr=0.3)), (Adam, dict(lr=0.001, beta1=0.0, beta2=0.0)), (SGD, dict(lr=np.float32(0.1))),
    (SGD, dict(lr=0)), (Adam, dict(lr=0)),
])
def test_the_books_values_and_the_edges_of_the_ranges_work(cls, kw):
    opt = cls(**kw)
    W = np.ones(3)
    opt.update({"W": W}, {"W": np.full(3, 0.5)})
    assert np.isfinite(W).all()
    if kw.get("lr") == 0:
        np.testing.assert_array_equal(W, np.ones(3))    # lr = 0: a frozen step
    else:
        assert (W < 1).all()


def test_lr_stays_a_plain_settable_attribute():
    """Learning-rate schedules set opt.lr between epochs; the next update uses it."""
    opt, ref = SGD(lr=0.1), SGD(lr=0.1)
    W, W_ref = np.ones(2), np.ones(2)
    opt.update({"W": W}, {"W": np.ones(2)})
    opt.lr = 0.025
    assert opt.lr == 0.025 and repr(opt) == "SGD(lr=0.025)"
    assert vars(opt) == {"lr": 0.025}            # a plain attribute (book-style code copies vars(opt))
    assert vars(Adam(lr=0.3))["lr"] == 0.3 and vars(Momentum(momentum=0.5))["momentum"] == 0.5
    opt.update({"W": W}, {"W": np.ones(2)})
    np.testing.assert_allclose(W, 1 - 0.1 - 0.025, rtol=0, atol=1e-15)
    ref.update({"W": W_ref}, {"W": np.ones(2)})
    assert not np.array_equal(W, W_ref)


@pytest.mark.parametrize("cls,kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_optimizers_pickle_and_deep_copy_with_their_state(cls, kw):
    opt = cls(**kw)
    W = np.ones(5)
    opt.update({"W": W}, {"W": np.full(5, 0.3)})
    for clone in (pickle.loads(pickle.dumps(opt)), copy.deepcopy(opt)):
        assert repr(clone) == repr(opt)
        W1, W2 = W.copy(), W.copy()
        opt_copy = copy.deepcopy(opt)
        opt_copy.update({"W": W1}, {"W": np.full(5, 0.2)})
        clone.update({"W": W2}, {"W": np.full(5, 0.2)})
        np.testing.assert_array_equal(W1, W2)
        with pytest.raises(ValueError, match="lr must be >= 0"):
            clone.lr = -1


# -- NaN/Inf gradients, layouts, read-only parameters: the numba paths against the reference --------

def _optimizer_sizes():
    from fastdl.kernels.cpu import optim
    return {"small": optim.NUMPY_BELOW // 2, "medium": optim.NUMPY_BELOW * 3, "large": optim.MIN_PARALLEL + 7}


def _train_params(cls, dtype, n, bad_step):
    """Three updates of one parameter; the second gradient holds NaN, +-Inf, +-max and subnormals."""
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(n).astype(dtype)
    grads = [rng.standard_normal(n).astype(dtype) for _ in range(3)]
    fi = np.finfo(dtype)
    g = grads[bad_step]
    g[0], g[n // 2], g[n - 1], g[n // 3], g[n // 4], g[n // 5] = (
        np.nan, np.inf, -np.inf, fi.max, -fi.max, fi.smallest_subnormal)

    def run():
        p = p0.copy()
        opt = cls()
        for g in grads:
            gc_ = g.copy()
            opt.update({"W": p}, {"W": g})
            np.testing.assert_array_equal(g, gc_)            # the gradient is not modified
        state = {name: getattr(opt, name)["W"] for name in opt._state}
        return dict(p=p, **state)
    return run


@numba_vs_reference
@pytest.mark.parametrize("size", ["small", "medium", "large"])
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("cls", OPTIMIZERS, ids=[c.__name__ for c in OPTIMIZERS])
def test_optimizers_with_non_finite_gradients(cls, dtype, size):
    n = _optimizer_sizes()[size]
    run = _train_params(cls, dtype, n, bad_step=1)
    want = run_path(REF_PATH, run)
    assert np.isnan(want["p"][0]) and np.isfinite(want["p"][1])
    for path in (NUMBA_PATHS if size != "large" else [("numba", None)]):
        assert_same(run_path(path, run), want, dtype, f"{cls.__name__} {size} {path}")


@numba_vs_reference
@pytest.mark.parametrize("cls", OPTIMIZERS, ids=[c.__name__ for c in OPTIMIZERS])
def test_optimizers_layouts_read_only_params_and_complex_gradients(cls):
    n = _optimizer_sizes()["medium"]
    rng = np.random.default_rng(10)
    p0 = rng.standard_normal((n // 8, 8))
    grads = [rng.standard_normal((n // 8, 8)) for _ in range(2)]

    def run(p_layout, g_layout):
        p = laid_out(p0, p_layout)
        opt = cls()
        for g in grads:
            opt.update({"W": p}, {"W": laid_out(g, g_layout)})
        return {"p": np.array(p)}
    want = run_path(REF_PATH, run, "contiguous", "contiguous")
    for path in ALL_PATHS:
        for p_layout, g_layout in (("step", "readonly"), ("fortran", "step"), ("reversed", "readonly-fortran")):
            assert_same(run_path(path, run, p_layout, g_layout), want, np.float64, f"{cls.__name__} {p_layout} {path}")

    def read_only():
        p = laid_out(p0, "readonly")
        cls().update({"W": p}, {"W": grads[0]})

    def complex_grad():
        cls().update({"W": p0.copy()}, {"W": grads[0] * 1j})
    name = cls.__name__
    for fn, exc, pattern in ((read_only, ValueError, rf"^{name}\.update: params\['W'\] is read-only"),
                             (complex_grad, TypeError, rf"^{name}\.update: grads\['W'\] must hold real numbers")):
        outcomes = [outcome_of(path, fn) for path in ALL_PATHS]
        assert outcomes[0][0] == "error" and outcomes[0][1] is exc, outcomes[0]
        assert re.search(pattern, outcomes[0][2])
        assert all(o == outcomes[0] for o in outcomes)
