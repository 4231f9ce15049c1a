import inspect
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.kernels.spec import OPS


def test_every_available_backend_implements_every_op_with_the_spec_signature():
    assert "numpy" in fastdl.available_backends()
    for name in fastdl.available_backends():
        mod = backend.ops(name)
        for op, sig in OPS.items():
            fn = getattr(mod, op, None)
            assert callable(fn), f"backend {name!r} lacks op {op!r}"
            assert str(inspect.signature(fn)) == sig, f"{name}.{op}{inspect.signature(fn)} != {sig}"


def test_spec_and_reference_agree_on_the_op_names():
    ref = backend.ops("numpy")
    public = {n for n, v in vars(ref).items() if inspect.isfunction(v) and not n.startswith("_")}
    assert public == set(OPS)


def test_unknown_backend_lists_the_available_ones():
    with pytest.raises(fastdl.BackendError) as e:
        fastdl.set_backend("tensorflow")
    assert "tensorflow" in str(e.value) and "numpy" in str(e.value)
    with pytest.raises(fastdl.BackendError):
        with fastdl.using_backend("nope"):
            pass


def test_unavailable_backend_says_why_and_lists_the_available_ones(monkeypatch):
    monkeypatch.setitem(backend.BACKENDS, "ghost", "fastdl.kernels.does_not_exist")
    monkeypatch.delitem(backend._failures, "ghost", raising=False)
    with pytest.raises(fastdl.BackendError) as e:
        fastdl.set_backend("ghost")
    msg = str(e.value)
    assert "'ghost' is not available" in msg and "does_not_exist" in msg and "numpy" in msg
    assert "ghost" not in fastdl.available_backends()


def test_using_backend_nests_and_restores():
    before = fastdl.current_backend()
    with fastdl.using_backend("numpy"):
        assert fastdl.current_backend() == "numpy"
        assert backend.ops() is backend.ops("numpy")
    assert fastdl.current_backend() == before


def test_using_backend_is_thread_local():
    seen = {}
    inside = threading.Event()
    release = threading.Event()

    def worker():
        seen["worker"] = fastdl.current_backend()
        inside.set()
        release.wait(5)

    # pick a name that differs from the process default if there is one
    names = fastdl.available_backends()
    default = fastdl.current_backend()
    other = next((n for n in names if n != default), default)
    with fastdl.using_backend(other):
        t = threading.Thread(target=worker)
        t.start()
        inside.wait(5)
        release.set()
        t.join()
        assert fastdl.current_backend() == other
    assert seen["worker"] == default


def test_set_backend_is_process_wide_and_using_backend_wins():
    old = fastdl.current_backend()
    try:
        fastdl.set_backend("numpy")
        assert fastdl.current_backend() == "numpy"
        with fastdl.using_backend("numpy"):
            assert fastdl.current_backend() == "numpy"
    finally:
        fastdl.set_backend(old)


def _run(code, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run([sys.executable, "-c", code], env=e, capture_output=True, text=True, timeout=120)


def test_environment_variable_selects_the_backend_and_rejects_bad_names():
    r = _run("import fastdl; print(fastdl.current_backend())", FASTDL_BACKEND="numpy")
    assert r.returncode == 0 and r.stdout.strip() == "numpy"
    r = _run("import fastdl; fastdl.current_backend()", FASTDL_BACKEND="bogus")
    assert r.returncode != 0 and "FASTDL_BACKEND='bogus'" in r.stderr and "numpy" in r.stderr


def test_import_fastdl_does_not_import_numba_or_cuda():
    r = _run("import sys, fastdl, fastdl.nets, fastdl.layers; "
             "print(sorted(m for m in sys.modules if m.startswith(('numba', 'fastdl.kernels.cuda'))))",
             FASTDL_BACKEND="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_layers_follow_the_backend_at_call_time():
    from fastdl.nets import TwoLayerNet
    np.random.seed(0)
    net = TwoLayerNet(6, 5, 3)
    x = np.random.rand(4, 6)
    t = np.array([0, 1, 2, 1])
    with fastdl.using_backend("numpy"):
        g = net.gradient(x, t)
        assert net.layers["Affine1"]._ops is backend.ops("numpy")
    assert set(g) == {"W1", "b1", "W2", "b2"}


def test_default_is_numba_and_falls_back_to_numpy_with_a_warning():
    r = _run("import fastdl; print(fastdl.current_backend())", FASTDL_BACKEND="")
    assert r.returncode == 0 and r.stdout.strip() == "numba"
    code = ("import warnings, fastdl.backend as b; b.BACKENDS['numba'] = 'fastdl.kernels.missing'\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always'); print(b.current_backend()); print(w[0].message)")
    r = _run(code, FASTDL_BACKEND="")
    lines = r.stdout.strip().splitlines()
    assert r.returncode == 0 and lines[0] == "numpy" and "default backend unavailable" in lines[1]


def test_ops_for_gives_the_current_backend_for_arrays_it_owns():
    a = np.zeros((2, 3), np.float32)
    for name in backend.available_backends():
        if name == "cuda":
            continue
        with backend.using_backend(name):
            assert backend.ops_for(a) is backend.ops(name)
            assert backend.ops_for(a[:, ::2]) is backend.ops(name)


def test_wait_for_kernels_returns_when_nothing_compiles():
    assert backend.wait_for_kernels() is True
    assert backend.wait_for_kernels(timeout=0.01) is True
