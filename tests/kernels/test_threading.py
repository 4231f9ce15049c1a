"""Numba's threading layer under the numba backend: which one, fork, spawn and import order.

Every case runs in a fresh Python process (the layer is fixed when Numba's threads start,
once per process), with a timeout, so a child that hangs fails the test instead of hanging
the suite. The kernels are checked against the reference backend in the children too,
float32 and float64, strided and contiguous inputs, with the parallel path forced so that a
child really enters (or, where it must not, really avoids) a parallel region.
"""
import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.conftest import FAST_BACKENDS

pytestmark = pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available")

LINUX = sys.platform.startswith("linux")


def _tbb_installed():
    from importlib import metadata
    try:
        metadata.distribution("tbb")
    except metadata.PackageNotFoundError:
        return False
    return True


def _env(**extra):
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY", "OMP_WAIT_POLICY",
                        "GOMP_SPINCOUNT", "FASTDL_KEEP_OMP_WAIT", "FASTDL_BACKEND")}
    env.update(extra)
    return env


def _run(args, env, timeout=240):
    r = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env, timeout=timeout,
                       cwd=os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
    assert r.returncode == 0, f"exit {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1]), r.stderr


# A tiny SimpleConvNet gradient on the numba backend with every kernel forced onto the
# parallel path, compared with the reference backend's. Run in the parent, in forked
# children (Process and Pool) and in spawned children.
WORK = textwrap.dedent('''
    import json, multiprocessing as mp, os, sys, warnings
    import numpy as np

    TOL = {"float32": dict(rtol=1e-3, atol=1e-5), "float64": dict(rtol=1e-9, atol=1e-12)}
    CASES = [("float32", False), ("float64", True), ("float32", True), ("float64", False)]


    def gradient(backend, dtype, strided):
        import fastdl
        from fastdl.kernels.cpu import _chunks
        from fastdl.nets import SimpleConvNet
        rng = np.random.default_rng(3)
        net = SimpleConvNet(input_dim=(1, 8, 8), conv_param={"filter_num": 4, "filter_size": 3, "pad": 1,
                                                             "stride": 1},
                            hidden_size=5, output_size=3, dtype=dtype)
        for k in sorted(net.params):
            net.params[k][...] = rng.standard_normal(net.params[k].shape) * 0.3
        big = rng.standard_normal((6, 1, 8, 16)).astype(dtype)
        x = big[..., ::2] if strided else np.ascontiguousarray(big[..., ::2])
        t = rng.integers(0, 3, 6)
        with fastdl.using_backend(backend), _chunks.forced("parallel"):
            g = net.gradient(x, t)
            chunks = _chunks.last_chunks()
        return g, chunks


    def work(case):
        """Check the numba gradient of ``case`` against the reference, here; report what ran."""
        from fastdl.kernels.cpu import _threads
        dtype, strided = case
        got, chunks = gradient("numba", dtype, strided)
        want, _ = gradient("numpy", dtype, strided)
        ok = all(got[k].dtype == want[k].dtype and np.allclose(got[k], want[k], **TOL[dtype]) for k in want)
        return {"ok": bool(ok), "chunks": chunks, "pid": os.getpid(), "layer": _threads.layer,
                "forked_child": _threads.forked_child}


    def send(conn, case):
        conn.send(work(case))
        conn.close()


    def main():
        import fastdl
        fastdl.set_backend("numba")          # loads the backend: Numba's threads start here
        import numba
        from fastdl.kernels.cpu import _threads
        report = {"layer": numba.threading_layer(), "threads": numba.get_num_threads(),
                  "fork_safe": _threads.fork_safe, "status": _threads.omp_status,
                  "describe": _threads.describe(), "leaked": "OMP_WAIT_POLICY" in os.environ,
                  "numba_env": os.environ.get("NUMBA_THREADING_LAYER")}
        report["parent"] = work(CASES[0])
        fork = mp.get_context("fork")
        a, b = fork.Pipe(duplex=False)
        p = fork.Process(target=send, args=(b, CASES[1]))
        p.start()
        p.join(60)
        if p.exitcode is None:
            p.kill()
            p.join()
        report["process"] = {"exitcode": p.exitcode, "result": a.recv() if a.poll(1) else None}
        try:
            with fork.Pool(2) as pool:
                report["fork_pool"] = pool.map_async(work, CASES, chunksize=1).get(timeout=60)
        except mp.TimeoutError:
            report["fork_pool"] = "timed out"
        if "spawn" in sys.argv:
            with mp.get_context("spawn").Pool(1) as pool:
                report["spawn_pool"] = pool.map_async(work, CASES[:2]).get(timeout=120)
        report["parent_after"] = work(CASES[3])
        print(json.dumps(report))


    if __name__ == "__main__":
        main()
''')


@pytest.fixture(scope="module")
def work_script(tmp_path_factory):
    path = tmp_path_factory.mktemp("threads") / "work.py"
    path.write_text(WORK)
    return str(path)


def _check_parent(rep):
    assert rep["parent"]["ok"] and rep["parent_after"]["ok"], rep
    assert rep["parent"]["chunks"] == min(2, rep["threads"]), rep     # the parent really split its work
    assert rep["leaked"] is False, rep                                 # OMP_WAIT_POLICY is not left behind


def test_fork_and_spawn_on_the_default_layer(work_script):
    """Without any setting: TBB where pip's tbb is installed (Numba's fork-safe layer); a forked
    Process and a forked Pool, after the parent ran parallel kernels, compute the right gradients
    on all their threads, a spawned Pool too, and the parent goes on."""
    rep, _ = _run([work_script, "spawn"], _env())
    expected = "tbb" if _tbb_installed() else rep["layer"]
    assert rep["layer"] == expected, rep
    _check_parent(rep)
    assert rep["process"]["exitcode"] == 0, rep
    children = [rep["process"]["result"], *rep["fork_pool"], *rep["spawn_pool"]]
    assert all(c is not None and c["ok"] for c in children), rep
    assert {c["pid"] for c in rep["fork_pool"]} and all(c["pid"] != os.getpid() for c in children)
    if rep["fork_safe"]:
        assert all(c["chunks"] == min(2, rep["threads"]) and not c["forked_child"] for c in children), rep
        assert rep["describe"][1].startswith("fork: safe"), rep


@pytest.mark.skipif(not LINUX, reason="GNU OpenMP (the layer that is not fork-safe) is Linux's")
def test_fork_under_gnu_openmp_runs_children_on_one_thread(work_script):
    """The user's NUMBA_THREADING_LAYER=omp is followed (GNU OpenMP, with the passive wait
    policy). Numba would kill a forked child entering a parallel region, so the children run
    every kernel on one thread: a Process exits 0 with the right gradients, a Pool does not hang."""
    rep, _ = _run([work_script], _env(NUMBA_THREADING_LAYER="omp"))
    assert rep["layer"] == "omp" and rep["fork_safe"] is False, rep
    assert rep["numba_env"] == "omp", rep
    assert rep["status"].startswith("passive"), rep
    _check_parent(rep)
    assert rep["process"]["exitcode"] == 0, rep
    assert rep["fork_pool"] != "timed out", rep
    children = [rep["process"]["result"], *rep["fork_pool"]]
    assert all(c is not None and c["ok"] and c["chunks"] == 1 and c["forked_child"] for c in children), rep
    assert "not fork-safe" in rep["describe"][1] and "spawn" in rep["describe"][1], rep


FIRST = textwrap.dedent('''
    import json, os, sys, warnings
    warnings.simplefilter("always")
    order = sys.argv[1]
    if order == "numba first":
        import numba
        numba.get_num_threads()              # starts Numba's threads before fastdl is even imported
        import fastdl
    else:
        import fastdl
        import numba
        numba.get_num_threads()              # after import fastdl, before its backend loads
    import numpy as np
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fastdl.set_backend("numba")
    from fastdl.kernels.cpu import _chunks, _threads
    from fastdl.nets import SimpleConvNet
    ok = []
    for dtype in ("float32", "float64"):
        rng = np.random.default_rng(1)
        net = SimpleConvNet(input_dim=(1, 8, 8), hidden_size=5, output_size=3, dtype=dtype)
        for k in sorted(net.params):
            net.params[k][...] = rng.standard_normal(net.params[k].shape) * 0.3
        x = rng.standard_normal((4, 1, 8, 16)).astype(dtype)[..., ::2]
        t = rng.integers(0, 3, 4)
        with _chunks.forced("parallel"):
            got = net.gradient(x, t)
        with fastdl.using_backend("numpy"):
            want = net.gradient(x, t)
        tol = dict(rtol=1e-3, atol=1e-5) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
        ok.append(all(np.allclose(got[k], want[k], **tol) for k in want))
    print(json.dumps({"layer": numba.threading_layer(), "reported": _threads.layer,
                      "before": _threads.started_before_fastdl, "status": _threads.omp_status,
                      "describe": _threads.describe(), "ok": ok,
                      "warnings": [str(w.message) for w in caught if issubclass(w.category, RuntimeWarning)]}))
''')


def _first(order, **env):
    rep, _ = _run(["-c", FIRST, order], _env(**env), timeout=120)
    assert rep["ok"] == [True, True], rep
    assert rep["reported"] == rep["layer"] and rep["describe"][0].startswith("numba: "), rep
    assert f"{rep['layer']} threading layer" in rep["describe"][0], rep
    return rep


def test_numba_started_first_still_computes_right_and_says_which_layer():
    """``import numba; numba.get_num_threads()`` before ``import fastdl``: fastdl reports the layer
    Numba started (TBB where the loader finds it, else OpenMP) and computes the same gradients;
    on spinning OpenMP it says so once, in one line."""
    rep = _first("numba first")
    assert rep["before"] is True and "started before" in rep["describe"][0], rep
    if rep["layer"] == "omp":
        assert len(rep["warnings"]) == 1 and "\n" not in rep["warnings"][0], rep
    else:
        assert rep["warnings"] == [], rep


@pytest.mark.skipif(not LINUX, reason="GNU OpenMP's spinning wait")
def test_spinning_openmp_started_first_gives_one_warning():
    rep = _first("numba first", NUMBA_THREADING_LAYER="omp")
    assert rep["layer"] == "omp" and rep["before"] is True, rep
    assert len(rep["warnings"]) == 1, rep
    w = rep["warnings"][0]
    assert "\n" not in w and w.startswith("fastdl: Numba's threads were started before fastdl's backend"), w
    assert "set_backend('numba')" in w and "OMP_WAIT_POLICY=PASSIVE" in w, w
    assert rep["status"].startswith("OpenMP's default: spinning"), rep


@pytest.mark.skipif(not LINUX, reason="GNU OpenMP's wait policy")
def test_users_wait_policy_means_no_warning():
    rep = _first("numba first", NUMBA_THREADING_LAYER="omp", OMP_WAIT_POLICY="PASSIVE")
    assert rep["warnings"] == [] and rep["status"] == "as the environment says (OMP_WAIT_POLICY=PASSIVE)", rep
    rep = _first("numba first", NUMBA_THREADING_LAYER="omp", FASTDL_KEEP_OMP_WAIT="1")
    assert rep["warnings"] == [] and "FASTDL_KEEP_OMP_WAIT" in rep["status"], rep


@pytest.mark.skipif(not _tbb_installed(), reason="pip's tbb is not installed here")
def test_numba_started_after_import_fastdl_runs_on_tbb():
    """``import fastdl`` loads pip's TBB, so Numba started by anyone afterwards picks the tbb
    layer, without any warning (in a virtual environment too: see the next test)."""
    rep = _first("fastdl first")
    assert rep["layer"] == "tbb" and rep["warnings"] == [], rep


PRELOAD = textwrap.dedent('''
    import json, sys
    import fastdl
    from fastdl.kernels import _tbb
    maps = open("/proc/self/maps").read() if sys.platform.startswith("linux") else ""
    print(json.dumps({"path": _tbb.path, "found": _tbb.find(), "numba": "numba" in sys.modules,
                      "mapped": bool(_tbb.path) and _tbb.path in maps, "prefix": sys.prefix}))
''')


TBB_FILES = textwrap.dedent('''
    import json, os
    from importlib import metadata
    try:
        files = metadata.distribution("tbb").files or []
    except metadata.PackageNotFoundError:
        files = []
    print(json.dumps([os.path.realpath(str(f.locate())) for f in files]))
''')


@pytest.mark.skipif(not (_tbb_installed() and LINUX), reason="pip's tbb on Linux")
def test_import_fastdl_loads_pips_tbb_without_numba(tmp_path):
    """pip's libtbb is found by the distribution's file list when it is not in sys.prefix/lib
    (a virtual environment over the installed packages), loaded by ``import fastdl`` without
    importing Numba, and Numba then runs on it."""
    from importlib import metadata
    files = {os.path.realpath(str(f.locate())) for f in metadata.distribution("tbb").files or []}
    rep, _ = _run(["-c", PRELOAD], _env())
    assert rep["path"] and os.path.realpath(rep["path"]) in files and rep["mapped"] and not rep["numba"], rep
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)],
                   check=True, timeout=120)
    py = str(venv / "bin" / "python")
    r = subprocess.run([py, "-c", PRELOAD], capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout.strip().splitlines()[-1])
    assert rep["prefix"] == str(venv), rep                  # sys.prefix/lib holds no libtbb here
    # the packages this venv sees are the base interpreter's (a venv made from a venv does not
    # see the outer venv's): compare with the tbb files visible from inside it
    seen = subprocess.run([py, "-c", TBB_FILES], capture_output=True, text=True, env=_env(), timeout=120)
    inner = set(json.loads(seen.stdout.strip().splitlines()[-1]))
    if not inner:
        pytest.skip(f"the base interpreter of {sys.prefix} has no tbb package, so a venv over it sees none")
    assert rep["path"] and os.path.realpath(rep["path"]) in inner and rep["mapped"], rep
    r = subprocess.run([py, "-c", "import fastdl, numba; fastdl.set_backend('numba'); print(numba.threading_layer())"],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 0 and r.stdout.split() == ["tbb"], (r.stdout, r.stderr)

