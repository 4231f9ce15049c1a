"""FASTDL_COMPILE=background: Numba and the compiled kernels load only once the ops have spent
FASTDL_LOAD_AFTER seconds on the reference (kernels/cpu/_defer.py).

The suite itself runs lazy (tests/conftest.py), where the kernels load with the package, so the
deferred cases run in child processes with the policy a user gets by default."""
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastdl
from fastdl.kernels import reference as ref
from fastdl.kernels.cpu import _compile, _defer

pytestmark = pytest.mark.skipif("numba" not in fastdl.available_backends(), reason="numba backend not available")


def run(code, **env):
    e = dict(os.environ, **env)
    e.pop("FASTDL_COMPILE", None)            # the user's default: background
    r = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=e, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    return r


def test_a_short_script_never_loads_numba():
    r = run("""
        import sys, numpy as np, fastdl
        from fastdl.functions import sigmoid, softmax
        from fastdl.layers import Affine, Relu
        x = np.linspace(-3, 3, 12).reshape(3, 4)
        a = Affine(np.ones((4, 2)), np.zeros(2))
        out = Relu().forward(a.forward(x))
        print(fastdl.backend.current_backend(), "numba" in sys.modules)
        print(repr(sigmoid(x).tolist()), repr(softmax(x).tolist()), repr(out.tolist()))
    """)
    name, loaded = r.stdout.split()[:2]
    assert (name, loaded) == ("numba", "False")
    x = np.linspace(-3, 3, 12).reshape(3, 4)
    line = r.stdout.splitlines()[1]
    expect = (f"{ref.sigmoid_forward(x).tolist()!r} {ref.softmax(x).tolist()!r} "
              f"{np.maximum(x @ np.ones((4, 2)), 0).tolist()!r}")
    assert line == expect


def test_calls_on_small_arrays_do_not_count_towards_loading():
    """The book's gradient-check pattern (tiny batches, many calls) stays on the reference however
    long it runs; one call on a large array then spends the budget."""
    r = run("""
        import sys, numpy as np, fastdl
        from fastdl.kernels.cpu import _defer
        from fastdl.layers import Affine, Relu, SoftmaxWithLoss
        rng = np.random.default_rng(0)
        x, t = rng.random((3, 784)), np.array([1, 2, 3])
        a, relu, loss = Affine(rng.random((784, 50)), np.zeros(50)), Relu(), SoftmaxWithLoss()
        b = Affine(rng.random((50, 10)), np.zeros(10))
        for _ in range(300):
            loss.forward(b.forward(relu.forward(a.forward(x))), t)
        small = ("numba" in sys.modules, _defer._spent)
        big = rng.random((_defer.COUNT_FROM, 8))
        Relu().forward(big)
        Relu().forward(big)
        print(small[0], small[1] == 0.0, "numba" in sys.modules)
    """, FASTDL_LOAD_AFTER="1e-9")
    assert r.stdout.split() == ["False", "True", "True"]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_training_loads_the_kernels_after_the_budget_and_agrees(dtype):
    """A budget of 0.01 s: the first step runs on the reference (its forward's ctx kept for its
    backward), a later step loads Numba and runs the compiled kernels; every gradient agrees with
    the reference's within the dtype's tolerance, and the net trains on."""
    r = run(f"""
        import sys, numpy as np, fastdl
        from fastdl.nets import SimpleConvNet
        from fastdl.kernels.cpu import _compile
        import fastdl.kernels.cpu as K
        dt = np.{dtype}
        rng = np.random.default_rng(0)
        net = SimpleConvNet(input_dim=(1, 10, 10), conv_param={{"filter_num": 3, "filter_size": 3, "pad": 0,
                            "stride": 1}}, hidden_size=8, output_size=4, dtype=dt)
        x = rng.random((48, 1, 10, 10)).astype(dt)      # 4,800 elements: its calls count (COUNT_FROM)
        t = rng.integers(0, 4, 48)
        with fastdl.using_backend("numpy"):
            want = net.gradient(x, t)
        states = []
        for i in range(200):
            g = net.gradient(x, t)
            states.append(K._loaded)
            worst = max(float(np.max(np.abs(g[k] - want[k]) / (np.abs(want[k]) + 1))) for k in want)
            assert worst < (1e-4 if dt == np.float32 else 1e-10), (i, worst)
            assert all(g[k].dtype == dt for k in g)
            if K._loaded and _compile.wait(120) and states.count(True) > 3:
                break
        print(states[0], K._loaded, "numba" in sys.modules)
    """, FASTDL_LOAD_AFTER="0.01")
    assert r.stdout.split() == ["False", "True", "True"]


def test_a_reference_ctx_made_before_loading_goes_to_the_reference_backward():
    r = run("""
        import numpy as np, fastdl
        import fastdl.kernels.cpu as K
        from fastdl.kernels import reference as ref
        from fastdl.kernels.cpu import _compile
        rng = np.random.default_rng(1)
        x, W, b = rng.standard_normal((2, 2, 6, 6)), rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3)
        out, ctx = K.conv_forward(x, W, b, 1, 1)
        assert isinstance(ctx, _compile.ReferenceCtx) and not K._loaded
        K.load_kernels()
        assert K._loaded and not getattr(K.conv_backward, "deferred", False)
        dout = rng.standard_normal(out.shape)
        got = K.conv_backward(dout, ctx)
        want = ref.conv_backward(dout, ref.conv_forward(x, W, b, 1, 1)[1])
        print(all(np.array_equal(a, c) for a, c in zip(got, want)))
    """)
    assert r.stdout.split() == ["True"]


def test_wait_for_kernels_loads_and_compiles_what_ran_deferred():
    """The timing paths' protocol: one warm-up step (deferred: the reference), wait_for_kernels,
    then no step falls back to the reference."""
    r = run("""
        import numpy as np, fastdl
        from fastdl.bench import build, train_step
        from fastdl.kernels.cpu import _compile
        import fastdl.kernels.cpu as K
        m, x, t, o = build("simple", np.float32, 4)
        before = _compile.fallback_calls
        train_step(m, o, x, t)
        ran_deferred = _compile.fallback_calls > before and not K._loaded
        assert fastdl.backend.wait_for_kernels(timeout=300)
        n = _compile.fallback_calls
        train_step(m, o, x, t)
        print(ran_deferred, K._loaded, _compile.fallback_calls - n)
    """)
    assert r.stdout.split() == ["True", "True", "0"]


def test_load_after_zero_loads_with_the_backend_and_a_bad_value_is_one_line():
    r = run("import sys, fastdl; fastdl.backend.ops('numba'); print('numba' in sys.modules)", FASTDL_LOAD_AFTER="0")
    assert r.stdout.split() == ["True"]
    e = dict(os.environ, FASTDL_LOAD_AFTER="soon")
    e.pop("FASTDL_COMPILE", None)
    r = subprocess.run([sys.executable, "-c", "import fastdl.kernels.cpu"], env=e, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "FASTDL_LOAD_AFTER='soon'" in last and "seconds" in last


def test_kernels_that_cannot_load_leave_the_reference_running(monkeypatch, capsys):
    monkeypatch.setattr(_defer, "_load_failed", False)
    monkeypatch.setattr(_defer, "_spent", 0.0)
    monkeypatch.setattr(_compile, "_mode", "background")
    calls = []

    def broken():
        calls.append(1)
        raise ImportError("no compiler here")

    ns: dict = {}
    _defer.install(ns, ["relu_forward", "sigmoid_forward"], broken)
    x = np.linspace(-2, 2, 10)
    for limit_spent in (0.0, 10.0, 10.0):                  # below, then over the budget (twice)
        monkeypatch.setattr(_defer, "_spent", limit_spent)
        out, mask = ns["relu_forward"](x)
        np.testing.assert_array_equal(out, ref.relu_forward(x)[0])
        np.testing.assert_array_equal(ns["sigmoid_forward"](x), ref.sigmoid_forward(x))
    assert calls == [1]                                     # tried once, said once
    err = capsys.readouterr().err
    assert err.count("could not load") == 1 and "no compiler here" in err
