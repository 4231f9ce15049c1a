"""fastdl search: the book's hyper-parameter search on local worker processes and on a
real Dask cluster, with nothing lost.

Real components throughout: worker processes started by the search itself, a
``dask.distributed.LocalCluster`` of two worker processes on 127.0.0.1, a client process killed
with SIGKILL mid-search and resumed, workers that die mid-trial (``FASTDL_SEARCH_TEST_KILL`` of
the trial plugin ``tests/search/search_plugin.py``, which every search here runs: the worker calls
``os._exit`` inside the trial). Tiny searches
(a 20-20 MultiLayerNet, 100 images, 2 epochs) keep the module fast on a busy 2-core machine.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fastdl import cli, search
from fastdl.search import _journal, _space

#: a scheduler's HTTP endpoints (127.0.0.1) take another port when 8787 is taken: nothing to report
pytestmark = pytest.mark.filterwarnings("ignore:Port 8787 is already in use:UserWarning")

#: a tiny search: every trial takes a few milliseconds once its worker has loaded fastdl
TINY = dict(trials=5, epochs=2, train_size=100, hidden=[20, 20], progress=False)
TINY_CLI = ["--trials", "5", "--epochs", "2", "--train-size", "100", "--hidden", "20,20", "--no-progress"]
#: what may differ between two runs of the same trial (where and how it ran)
RUN_FIELDS = ("duration", "data_load", "worker", "attempts", "threads", "blas_threads", "finished")


def same_trial(a, b):
    return {k: v for k, v in a.items() if k not in RUN_FIELDS} == {k: v for k, v in b.items() if k not in RUN_FIELDS}


def assert_same_search(result, reference):
    assert result.table(20) == reference.table(20)
    assert [r["index"] for r in result.trials] == list(range(reference.config["trials"]))
    for a, b in zip(result.trials, reference.trials):
        assert same_trial(a, b), (a, b)


#: the trial plugin of these tests: it kills workers and fails trials as FASTDL_SEARCH_TEST_* say
PLUGIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "search_plugin.py")


@pytest.fixture(autouse=True)
def _no_hooks(monkeypatch):
    for var in ("FASTDL_SEARCH_TEST_KILL", "FASTDL_SEARCH_TEST_RAISE", "FASTDL_CLUSTER"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("FASTDL_SEARCH_PLUGIN", PLUGIN)        # does nothing until those are set


@pytest.fixture(scope="module")
def reference():
    """The tiny search on two local workers: what every other way of running it must give."""
    result = search.random_search(workers=2, **TINY)
    assert result.counts() == {"ok": 5, "diverged": 0, "error": 0}
    return result


# -- seeds and ranges ---------------------------------------------------------------------

def test_trials_do_not_depend_on_the_trial_count_or_each_other():
    space = _space.normalize_space(None)
    assert space == {"weight_decay": [1e-8, 1e-4, "log"], "lr": [1e-6, 1e-2, "log"]}
    few = search.make_config(trials=3)
    many = search.make_config(trials=100)
    a, b = search.make_tasks(few), search.make_tasks(many)[:3]
    assert [(t["seed"], t["params"]) for t in a] == [(t["seed"], t["params"]) for t in b]
    assert len({t["seed"] for t in search.make_tasks(many)}) == 100
    for t in search.make_tasks(many):
        assert 1e-6 <= t["params"]["lr"] <= 1e-2 and 1e-8 <= t["params"]["weight_decay"] <= 1e-4
    other = search.make_tasks(search.make_config(trials=3, seed=1))
    assert [t["params"] for t in other] != [t["params"] for t in a]
    assert search.make_tasks(many, skip={0, 2})[0]["index"] == 1


def test_param_ranges():
    assert search.parse_param("lr=1e-6:1e-2:log") == ("lr", (1e-6, 1e-2, "log"))
    assert search.parse_param("wd=0") == ("weight_decay", (0.0, 0.0, "linear"))
    assert search.parse_param("dropout=0.1:0.5") == ("dropout", (0.1, 0.5, "linear"))
    for bad in ("lr=1e-2:1e-6:log", "lr=0:1:log", "lr=-1", "foo=1:2", "lr", "lr=a:b", "lr=1:2:cubic",
                "dropout=0.5:1", "wd=-1:0", "lr=nan:1"):
        with pytest.raises(ValueError):
            search.parse_param(bad)
    params = _space.trial_params(_space.normalize_space({"lr": "0.1:0.1", "dropout": (0.2, 0.3)}), 0, 7)
    assert params["lr"] == 0.1 and 0.2 <= params["dropout"] <= 0.3 and list(params) == list(_space.PARAMS)


# -- the same table whatever runs it ------------------------------------------------------

def test_one_worker_gives_the_table_of_two(reference, capsys):
    result = search.random_search(workers=1, **dict(TINY, progress=True))
    assert_same_search(result, reference)
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()[-1]
    assert "5/5" in bar and f"best {reference.best(1)[0]['val_acc']:.4g}" in bar and "trials/min" in bar
    assert {r["worker"] for r in result.trials} and len({r["worker"] for r in result.trials}) == 1
    # the share each worker was given is what its Numba and its BLAS ran on
    cores = search.usable_cores()
    for r in result.trials:                                              # 1 worker: every core
        assert r["threads"] == cores and r["blas_threads"] in (cores, None)
    for r in reference.trials:                                           # 2 workers: a share each
        assert r["threads"] == max(1, cores // 2) and r["blas_threads"] in (max(1, cores // 2), None)
    # the book's result lines
    first = reference.table(1)
    best = reference.best(1)[0]
    assert first == (f"Best-1(val acc:{best['val_acc']}) | lr:{best['params']['lr']}, "
                     f"weight decay:{best['params']['weight_decay']}")


@pytest.fixture(scope="module")
def cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as c:
        yield c


def test_the_cluster_gives_the_same_table(cluster, reference):
    result = search.random_search(cluster=cluster, **TINY)
    assert_same_search(result, reference)
    assert all(r["worker"].startswith("tcp://127.0.0.1:") for r in result.trials)
    # two worker processes on one machine: each trial ran on its share of the cores
    assert {r["threads"] for r in result.trials} == {max(1, search.usable_cores() // 2)}
    # the workers loaded the data themselves, once per process
    assert sum(1 for r in result.trials if r["data_load"] > 0) <= 2


def test_a_cluster_worker_killed_mid_trial(cluster, reference, tmp_path, monkeypatch):
    marker = tmp_path / "killed"
    monkeypatch.setenv("FASTDL_SEARCH_TEST_KILL", f"3:{marker}")
    result = search.random_search(cluster=cluster, **TINY)
    assert marker.exists()                                   # the first attempt did die
    assert_same_search(result, reference)                    # and the trial, run again, is as it was
    assert result.trials[3]["attempts"] >= 2
    assert any("trial 3" in e for e in result.events)


def test_when_the_scheduler_gives_up_the_client_runs_the_trial_once_more(reference, tmp_path, monkeypatch):
    """allowed-failures 0: the first death of a worker is a KilledWorker for its trial; the client
    submits that trial once more, and records it as an error when its worker dies again.
    (worker-saturation 1.0: a worker holds only the trial it runs, so no other trial shares its fate.)"""
    distributed = pytest.importorskip("distributed")
    import dask
    marker = tmp_path / "killed"
    monkeypatch.setenv("FASTDL_SEARCH_TEST_KILL", f"3:{marker}")
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0}):
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                      dashboard_address=None) as strict:
            once = search.random_search(cluster=strict, **TINY)
            monkeypatch.setenv("FASTDL_SEARCH_TEST_KILL", "1")          # its worker dies every time
            twice = search.random_search(cluster=strict, **TINY)
    assert_same_search(once, reference)
    assert once.trials[3]["attempts"] == 2
    assert "a worker died while running trial 3; running that trial again" in once.events
    assert twice.trials[1]["status"] == "error" and twice.trials[1]["attempts"] == 2
    assert twice.trials[1]["error"].startswith("WorkerDied: its worker died on each of 2 attempts")
    for i in (0, 2, 3, 4):
        assert same_trial(twice.trials[i], reference.trials[i])


def test_the_cluster_over_the_command_line(cluster, reference, tmp_path):
    out = tmp_path / "j.jsonl"
    code = cli.main(["search", *TINY_CLI, "--quiet", "--cluster", cluster.scheduler_address, "--out", str(out)])
    assert code == 0
    assert_same_search(search.load_journal(out), reference)


# -- nothing lost -------------------------------------------------------------------------

def test_a_local_worker_killed_mid_trial_is_reported_and_its_trial_run_again(reference, tmp_path,
                                                                                monkeypatch, capsys):
    marker = tmp_path / "killed"
    monkeypatch.setenv("FASTDL_SEARCH_TEST_KILL", f"2:{marker}")
    journal = tmp_path / "j.jsonl"
    result = search.random_search(workers=2, journal=journal, **TINY)
    assert marker.exists()
    dead_pid = int(marker.read_text())
    assert_same_search(result, reference)
    assert [r["attempts"] for r in result.trials] == [1, 1, 2, 1, 1]
    assert result.trials[2]["worker"].split(":")[-1] != str(dead_pid)        # a fresh worker ran it
    assert result.events == [f"worker {dead_pid} exited with status 70 while running trial 2; "
                             "running that trial again"]
    assert f"worker {dead_pid} exited with status 70" in capsys.readouterr().err
    assert_same_search(search.load_journal(journal), reference)


def test_failures_are_recorded_and_the_search_goes_on(reference, tmp_path, monkeypatch):
    monkeypatch.setenv("FASTDL_SEARCH_TEST_KILL", "1")       # no marker: its worker dies every time
    monkeypatch.setenv("FASTDL_SEARCH_TEST_RAISE", "3")
    journal = tmp_path / "j.jsonl"
    result = search.random_search(workers=2, journal=journal, **TINY)
    by_index = {r["index"]: r for r in result.trials}
    assert by_index[1]["status"] == "error" and by_index[1]["attempts"] == 2
    assert by_index[1]["error"].startswith("WorkerDied: its worker exited with status 70 on each of 2 attempts")
    assert by_index[3]["status"] == "error"
    assert by_index[3]["error"] == "RuntimeError: test hook: trial 3 raises"
    for i in (0, 2, 4):
        assert same_trial(by_index[i], reference.trials[i])
    assert {r["index"] for r in result.best(20)} == {0, 2, 4}
    assert search.load_journal(journal).counts() == {"ok": 3, "diverged": 0, "error": 2}


def test_a_diverging_trial_is_recorded_as_such():
    result = search.random_search(workers=1, trials=2, epochs=10, train_size=100, batch_size=20,
                                  hidden=[20, 20], space={"lr": 1e6}, progress=False)
    assert [r["status"] for r in result.trials] == ["diverged", "diverged"]
    assert all(r["error"].startswith("the loss became nan at iteration") for r in result.trials)
    assert result.table(1).endswith("(diverged)")


def _journal_lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


SLOW = ["search", "--trials", "8", "--epochs", "40", "--train-size", "100", "--hidden", "20,20",
        "--batch-size", "20", "--quiet", "--no-progress"]


def _start_and_wait_for_a_trial(args, out):
    """`python -m fastdl search ARGS --out OUT`, once the journal holds a finished trial."""
    client = subprocess.Popen([sys.executable, "-m", "fastdl", *args, "--out", str(out)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and client.poll() is None:
        if out.exists() and len(out.read_bytes().splitlines()) >= 2:          # header + one trial
            break
        time.sleep(0.05)
    assert client.poll() is None, client.stderr.read()
    return client


def _gone(pids):
    def alive(pid):
        try:
            with open(f"/proc/{pid}/status") as f:
                return "zombie" not in f.read().lower()
        except OSError:
            return False
    for _ in range(100):
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def test_ctrl_c_stops_the_workers_and_keeps_the_journal(tmp_path):
    out = tmp_path / "j.jsonl"
    client = _start_and_wait_for_a_trial([*SLOW, "--workers", "1"], out)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=60)
    assert client.returncode == 130, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err
    done = _journal_lines(out)[1:]
    assert lines[0] == (f"fastdl search: interrupted (Ctrl-C): {len(done)} of 8 trials are in {out}; "
                        "the same command with --resume runs the rest")
    assert _gone({int(r["worker"].split(":")[-1]) for r in done})


def test_the_client_killed_mid_search_then_resumed(reference, tmp_path):
    """SIGKILL to `python -m fastdl search` once a trial is in the journal; --resume finishes the
    search without running a finished trial again, and the table is that of an uninterrupted run."""
    out = tmp_path / "j.jsonl"
    client = _start_and_wait_for_a_trial([*SLOW, "--workers", "1"], out)
    client.send_signal(signal.SIGKILL)
    client.wait()
    client.stderr.close()
    before = _journal_lines(out)[1:]
    assert 1 <= len(before) < 8
    # its worker notices the client is gone and stops
    pids = {int(r["worker"].split(":")[-1]) for r in before}
    assert _gone(pids), f"workers {pids} outlived their client"
    with open(out, "ab") as f:
        f.write(b'{"index": 7, "seed": 12')                  # a torn last line, as a crash mid-write leaves
    seen = []
    resumed = search.random_search(trials=8, epochs=40, train_size=100, hidden=[20, 20], batch_size=20,
                                   journal=out, resume=True, workers=2, progress=False, on_trial=seen.append)
    assert any("torn last line" in e for e in resumed.events)
    lines = _journal_lines(out)
    indexes = [r["index"] for r in lines[1:]]
    assert sorted(indexes) == list(range(8))                 # each trial once: none run twice
    assert sorted(r["index"] for r in seen) == sorted(set(range(8)) - {r["index"] for r in before})
    whole = search.random_search(trials=8, epochs=40, train_size=100, hidden=[20, 20], batch_size=20,
                                 workers=2, progress=False)
    assert_same_search(resumed, whole)
    # resuming a finished search runs nothing and prints the table
    code = cli.main([*SLOW, "--out", str(out), "--resume"])
    assert code == 0
    assert len(_journal_lines(out)) == 9


def test_resume_checks_the_journal(reference, tmp_path, capsys):
    out = tmp_path / "j.jsonl"
    assert cli.main(["search", *TINY_CLI, "--quiet", "--workers", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    size = out.stat().st_size
    for args, message in (
            ([], "already holds a search; resume it (--resume) or choose another file"),
            (["--resume", "--seed", "1"], "holds a different search (seed 0 there, 1 here)"),
            (["--resume", "--param", "lr=1e-3:1e-1:log"], "space "),
            (["--resume", "--trials", "4"], "holds a search of 5 trials, more than the 4 asked for"),
            (["--resume", "--backend", "numpy"], "was run on backend numba, this search would run on backend numpy")):
        code = cli.main(["search", *TINY_CLI, "--quiet", "--out", str(out), *args])   # the last --trials counts
        err = capsys.readouterr().err
        assert code == 2, err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert out.stat().st_size == size                        # the journal was left as it was
    with _journal.Journal(out, search.make_config(**{k: v for k, v in TINY.items() if k != "progress"}),
                          resume=True):
        with pytest.raises(search.JournalBusy):
            search.random_search(journal=out, resume=True, **TINY)
    out.write_text("not a journal\n")
    assert cli.main(["search", *TINY_CLI, "--out", str(out), "--resume"]) == 1
    assert "is not valid JSON" in capsys.readouterr().err
    notes = tmp_path / "notes.txt"                             # one line, no newline: not a torn header
    notes.write_text("my notes, no trailing newline")
    for resume in ([], ["--resume"]):
        assert cli.main(["search", *TINY_CLI, "--quiet", "--out", str(notes), *resume]) != 0
        assert "is not a journal of fastdl search" in capsys.readouterr().err
        assert notes.read_text() == "my notes, no trailing newline"


# -- the command line ---------------------------------------------------------------------

@pytest.mark.parametrize("args, message", [
    (["--trials", "0"], "argument --trials"),
    (["--param", "lr=1e-2:1e-6:log"], "above the high end"),
    (["--param", "lr=-1:1:log"], "argument --param"),
    (["--param", "momentum=0.9"], "unknown parameter"),
    (["--param", "lr=1e-3", "--param", "lr=1e-2"], "--param lr is given twice"),
    (["--workers", "0"], "argument --workers"),
    (["--train-size", "4"], "argument --train-size"),
    (["--train-size", "5001"], "train_size must be between 2 and 5000"),
    (["--hidden", "20,x"], "argument --hidden"),
    (["--cluster", "not an address"], "argument --cluster"),
    (["--cluster", "tcp://127.0.0.1:1", "--workers", "2"], "--workers is for local runs"),
    (["--out", "/nonexistent-folder/j.jsonl"], "does not exist"),
    (["--plot", "PLACE"], "--out and --plot name the same file"),
    (["--optimizer", "lbfgs"], "argument --optimizer"),
])
def test_usage_errors_exit_2_before_any_work(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [str(tmp_path / "j.jsonl") if a == "PLACE" else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "j.jsonl")]
    code = cli.main(["search", *TINY_CLI, *out, *args])
    err = capsys.readouterr().err
    assert code == 2, err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "j.jsonl").exists()


def test_without_dask_a_cluster_is_a_usage_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)               # as if not installed
    with pytest.raises(search.SearchUsageError, match=r"pip install -e '\.\[distributed\]' \(in fastdl's clone\)"):
        search.random_search(cluster="tcp://127.0.0.1:8786", journal=tmp_path / "j.jsonl", **TINY)
    assert cli.main(["search", *TINY_CLI, "--cluster", "tcp://127.0.0.1:8786", "--out", str(tmp_path / "j.jsonl")]) == 2
    assert "needs Dask: python -m pip install -e '.[distributed]' (in fastdl's clone)" in capsys.readouterr().err
    assert not (tmp_path / "j.jsonl").exists()


def test_fastdl_cluster_variable_is_checked(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("FASTDL_CLUSTER", "nonsense")
    assert cli.main(["search", *TINY_CLI, "--out", str(tmp_path / "j.jsonl")]) == 2
    assert "FASTDL_CLUSTER: expected a Dask scheduler address" in capsys.readouterr().err


def test_plots_are_valid_pngs(reference, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib.image
    for draw, name in ((reference.plot_curves, "curves.png"), (reference.plot_scatter, "scatter.png")):
        path = tmp_path / name
        draw(path, 3)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(os.listdir(tmp_path)) == ["curves.png", "scatter.png"]     # no temporary files left


# -- the trial plugin ---------------------------------------------------------------------

def test_a_plugin_that_cannot_be_loaded_stops_the_search_in_one_line(tmp_path, monkeypatch):
    bad = tmp_path / "bad_plugin.py"
    bad.write_text("raise ImportError('no such thing here')\n")
    monkeypatch.setenv("FASTDL_SEARCH_PLUGIN", str(bad))
    with pytest.raises(search.SearchUsageError, match=r"FASTDL_SEARCH_PLUGIN=.*bad_plugin.py.* cannot be used: "
                                                      r"ImportError: no such thing here") as e:
        search.random_search(workers=1, **TINY)
    assert "\n" not in str(e.value)
    monkeypatch.setenv("FASTDL_SEARCH_PLUGIN", "fastdl_no_such_plugin_module")
    with pytest.raises(search.SearchUsageError, match="ModuleNotFoundError"):
        search.random_search(workers=1, **TINY)


def test_the_plugin_options_travel_with_the_tasks(monkeypatch):
    monkeypatch.setenv("FASTDL_SEARCH_TEST_RAISE", "1,3")
    config = search.make_config(trials=4, epochs=1, train_size=100, hidden=[4])
    tasks = search.make_tasks(config, skip=[3])
    assert [t["index"] for t in tasks] == [0, 1, 2]
    assert [t["plugin"]["options"] for t in tasks] == [{}, {"raise": True}, {}]
    assert {t["plugin"]["source"] for t in tasks} == {PLUGIN}
    monkeypatch.delenv("FASTDL_SEARCH_PLUGIN")
    assert all("plugin" not in t for t in search.make_tasks(config))


def test_no_test_hook_is_read_by_fastdl_itself():
    import fastdl
    root = os.path.dirname(fastdl.__file__)
    for folder, _, files in os.walk(root):
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as f:
                    assert "FASTDL_SEARCH_TEST" not in f.read(), os.path.join(folder, name)
