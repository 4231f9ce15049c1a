"""FASTDL_COMPILE: ops run on the reference while their kernels compile in the background."""
import os
import subprocess
import sys

import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.kernels.cpu import _compile

pytestmark = pytest.mark.skipif("numba" not in fastdl.available_backends(), reason="numba backend not available")


@pytest.fixture
def background(monkeypatch):
    """Background mode with nothing compiled yet as far as the switch knows, and nothing in
    Numba's cache (an op found there is loaded in the calling thread instead)."""
    monkeypatch.setattr(_compile, "cached", lambda key, manifest=None: False)
    _compile.wait()
    old = _compile.set_mode("background")
    saved = dict(_compile._ready)
    _compile._ready.clear()
    try:
        yield
    finally:
        _compile.wait()
        _compile._ready.clear()
        _compile._ready.update(saved)
        _compile.set_mode(old)


def _grads(net, x, t):
    with fastdl.using_backend("numba"):
        return net.gradient(x, t)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_background_gradient_matches_eager(background, dtype):
    from fastdl.nets import SimpleConvNet
    rng = np.random.default_rng(0)
    net = SimpleConvNet(input_dim=(1, 10, 10), conv_param={"filter_num": 3, "filter_size": 3, "pad": 0, "stride": 1},
                        hidden_size=8, output_size=4, dtype=dtype)
    x = rng.random((3, 1, 10, 10)).astype(dtype)
    t = np.array([0, 3, 1])
    before = _compile.fallback_calls
    first = _grads(net, x, t)                 # ops not ready: the reference runs them
    assert _compile.fallback_calls > before
    assert _compile.wait(timeout=120)
    n = _compile.fallback_calls
    second = _grads(net, x, t)                # every op compiled now: the numba kernels
    assert _compile.fallback_calls == n
    _compile.set_mode("lazy")
    eager = _grads(net, x, t)
    tol = 1e-4 if dtype == np.float32 else 1e-10
    for k in eager:
        assert first[k].dtype == eager[k].dtype == dtype
        np.testing.assert_allclose(first[k], eager[k], rtol=tol, atol=tol, err_msg=k)
        np.testing.assert_array_equal(second[k], eager[k], err_msg=k)


def test_reference_forward_keeps_reference_backward(background):
    cpu, ref = backend.ops("numba"), backend.ops("numpy")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 6, 6))
    W = rng.standard_normal((3, 2, 3, 3))
    b = rng.standard_normal(3)
    out, ctx = cpu.conv_forward(x, W, b, 1, 1)
    assert isinstance(ctx, _compile.ReferenceCtx)        # ran on the reference
    assert _compile.wait(timeout=120)
    assert _compile._ready[("conv_forward", np.dtype(np.float64))] is True
    calls = []
    real = ref.conv_backward
    try:
        ref.conv_backward = lambda *a, **k: calls.append(1) or real(*a, **k)
        dout = rng.standard_normal(out.shape)
        dx, dW, db = cpu.conv_backward(dout, ctx)
    finally:
        ref.conv_backward = real
    assert calls == [1]                                  # its backward ran on the reference too
    rout, rctx = ref.conv_forward(x, W, b, 1, 1)
    rdx, rdW, rdb = ref.conv_backward(dout, rctx)
    np.testing.assert_array_equal(dx, rdx)
    np.testing.assert_array_equal(dW, rdW)
    out2, ctx2 = cpu.conv_forward(x, W, b, 1, 1)          # the compiled kernel from now on
    assert not isinstance(ctx2, _compile.ReferenceCtx)
    np.testing.assert_allclose(out2, rout, rtol=1e-10, atol=1e-10)


def test_suite_runs_the_compiled_kernels():
    """The parity tests must test the numba kernels, not the reference they fall back on: the
    suite runs lazy (tests/conftest.py), and a lazy call never takes the fallback."""
    assert os.environ.get("FASTDL_COMPILE") == "lazy"
    assert _compile.mode() == "lazy"
    before = _compile.fallback_calls
    out, ctx = backend.ops("numba").pool_forward(np.ones((1, 1, 4, 4)), 2, 2, 2, 0)
    assert not isinstance(ctx, _compile.ReferenceCtx)
    assert _compile.fallback_calls == before


def test_bad_mode_is_one_line():
    env = dict(os.environ, FASTDL_COMPILE="fast")
    r = subprocess.run([sys.executable, "-c", "import fastdl; fastdl.backend.ops('numba')"],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert "FASTDL_COMPILE='fast'" in last and "background, eager, lazy" in last
    with pytest.raises(ValueError, match="compile mode must be one of"):
        _compile.set_mode("fast")


def test_warm_fills_a_fresh_cache_and_the_next_process_hits_it(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    env.pop("FASTDL_COMPILE", None)
    cmd = [sys.executable, "-m", "fastdl", "warm", "--ops", "sigmoid_forward", "--quiet"]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "compiled or loaded" in r.stdout
    assert any(p.suffix == ".nbi" for p in tmp_path.rglob("*"))
    assert list(tmp_path.rglob(_compile.MANIFEST))
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "nothing to do" in r.stdout, r.stdout + r.stderr
    # a new process loads the kernels from the cache instead of compiling them
    probe = ("import numpy as np, fastdl\n"
             "from fastdl.kernels.cpu import _compile, activations as a\n"
             "_compile.set_mode('lazy')\n"
             "fastdl.backend.ops('numba').sigmoid_forward(np.ones(300000, np.float32))\n"
             "s = a._sigmoid_forward.stats\n"
             "print(sum(s.cache_hits.values()), sum(s.cache_misses.values()))")
    r = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    hits, misses = r.stdout.split()[-2:]
    assert (int(hits), int(misses)) == (1, 0), r.stdout


def test_timing_paths_time_no_reference_fallbacks(background, monkeypatch):
    # every background compile made slow (0.3 s): without waiting for them after the first
    # warm-up step, the timed steps would run ops on the reference
    import time

    from fastdl import bench
    real = _compile.compile_call

    def slow(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(_compile, "compile_call", slow)
    counts = []
    real_train_step = bench.train_step

    def counted(*args):
        real_train_step(*args)
        counts.append(_compile.fallback_calls)

    monkeypatch.setattr(bench, "train_step", counted)
    before = _compile.fallback_calls
    med, times = bench.step_ms_here("simple", "numba", "float32", batch=2, repeat=2)
    assert len(times) == 2 and med > 0
    assert counts[0] > before                 # the first warm-up step ran on the reference
    warmups = len(counts) - len(times)
    assert counts[-1] == counts[warmups - 1]  # no fallback during the timed steps


def test_a_cached_op_loads_in_the_calling_thread(monkeypatch):
    """An op whose kernels are in Numba's cache is loaded on its first call, in the caller's
    thread: no reference fallback, no worker thread sharing the GIL with the caller's loop."""
    from fastdl.functions import sigmoid
    x = np.random.default_rng(0).random((4, 5))
    _compile.warm(ops=["sigmoid_forward"])         # compiled and recorded: now in the cache
    _compile.wait()
    old = _compile.set_mode("background")
    saved = dict(_compile._ready)
    _compile._ready.clear()
    submitted = []
    monkeypatch.setattr(_compile, "_submit", submitted.append)
    try:
        before = _compile.fallback_calls
        with fastdl.using_backend("numba"):
            got = sigmoid(x)
        assert _compile.fallback_calls == before and not submitted
        with fastdl.using_backend("numpy"):
            np.testing.assert_allclose(got, sigmoid(x), rtol=1e-12)
    finally:
        _compile._ready.clear()
        _compile._ready.update(saved)
        _compile.set_mode(old)
