"""Optimizer update rules against the formulas written out by hand, on arrays and on plain floats."""
import numpy as np
import pytest

from fastdl.optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop


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
