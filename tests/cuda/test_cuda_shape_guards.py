"""The cuda backend refuses arrays of the wrong shape before any kernel runs, with the reference's
message, and its optimizers give parameters of a new size (or a new place) fresh state.

Spec-driven as tests/kernels/test_kernel_guards.py: every op's tiny example, each array argument
replaced by arrays of other shapes; where the reference refuses one, the cuda backend must
raise the same error (the shapes are compared on the host, so nothing is launched). Where the
reference accepts it, the simulator is not run (tests/cuda/test_cuda_spec_ops.py compares the
results on valid shapes)."""
import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.kernels import examples
from fastdl.kernels.spec import BY_NAME, TABLE
from fastdl.optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop
from tests.kernels.test_kernel_guards import _variants

CU = backend.ops("cuda")
REF = backend.ops("numpy")
OPS = [op.name for op in TABLE if op.family != "device"]


def _is_array(a):
    return isinstance(a, np.ndarray) or CU.owns(a)


def _error(fn, args):
    try:
        fn(*args)
    except (ValueError, TypeError) as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@pytest.mark.parametrize("name", OPS)
def test_wrong_shapes_are_refused_like_the_reference(name):
    lab, make = examples.op_cases(name, "tiny")[0]
    cc, cr = make(CU, np.float64), make(REF, np.float64)
    refused = 0
    for i, a in enumerate(cc.args):
        if not _is_array(a):
            continue
        for vlabel, v in _variants(CU.to_host(a), seed=i):
            args_r, args_c = list(cr.args), list(cc.args)
            args_r[i] = v.copy()
            args_c[i] = CU.to_device(v) if CU.owns(a) else v.copy()
            want = _error(getattr(REF, name), args_r)
            if want is None:
                continue                          # a valid shape: not run on the simulator here
            refused += 1
            assert _error(getattr(CU, name), args_c) == want, (lab, i, vlabel)
    n_arrays = sum(_is_array(a) for a in cc.args)
    if n_arrays > 1 or BY_NAME[name].backward_of:          # two arrays, or an array and a ctx
        assert refused


CASES = [(SGD, dict(lr=0.1)), (Momentum, dict(lr=0.05)), (Nesterov, dict(lr=0.05)), (AdaGrad, dict(lr=0.3)),
         (RMSprop, dict(lr=0.02)), (Adam, dict(lr=0.01))]


@pytest.mark.parametrize("cls,kw", CASES, ids=[c[0].__name__ for c in CASES])
def test_optimizer_reused_on_parameters_of_another_size(cls, kw, dtype):
    """W of 3, then 5, then 11 values on the device: fresh state at each size, exactly a new
    optimizer's result (the simulator raised IndexError; a GPU would write out of bounds)."""
    r = np.random.default_rng(0)
    with fastdl.using_backend("cuda"):
        reused = cls(**kw)
        for n in (3, 5, 11):
            w0 = r.standard_normal(n).astype(dtype)
            W, W_new = CU.to_device(w0), CU.to_device(w0)
            new = cls(**kw)
            for _ in range(2):
                g = r.standard_normal(n).astype(dtype)
                reused.update({"W": W}, {"W": g})
                new.update({"W": W_new}, {"W": g})
            np.testing.assert_array_equal(CU.to_host(W), CU.to_host(W_new))


@pytest.mark.parametrize("cls,kw", CASES[1:], ids=[c[0].__name__ for c in CASES[1:]])
def test_optimizer_state_follows_the_parameter_to_the_device(cls, kw):
    """State made for host parameters, then the same keys and shapes on the device: the state
    starts fresh there (device zeros), as for a new optimizer."""
    g = np.linspace(-1, 1, 4)
    opt = cls(**kw)
    with fastdl.using_backend("numpy"):
        opt.update({"W": np.ones(4)}, {"W": g})
    with fastdl.using_backend("cuda"):
        W, W_new = CU.to_device(np.ones(4)), CU.to_device(np.ones(4))
        opt.update({"W": W}, {"W": g})
        cls(**kw).update({"W": W_new}, {"W": g})
    assert all(CU.owns(getattr(opt, name)["W"]) for name in cls._state)
    np.testing.assert_array_equal(CU.to_host(W), CU.to_host(W_new))
