"""fastdl search: what ``--resume`` accepts and refuses, searches extended with more trials, the
backend a journal records, ranges drawn log-scale by default when they span two decades, and a
Dask scheduler killed in the middle of a search.

Real components: a Dask scheduler and worker started here as processes (``dask scheduler`` and
``dask worker``'s modules) on 127.0.0.1 and the scheduler killed with SIGKILL; local worker
processes started by the search itself; journals written by real searches. Tiny searches (a
20-20 MultiLayerNet, 100 images, 2 epochs) keep the module fast on a busy 2-core machine.
"""
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from fastdl import cli, search
from fastdl.search import _journal, _space

TINY = dict(epochs=2, train_size=100, hidden=[20, 20], progress=False)
TINY_CLI = ["--epochs", "2", "--train-size", "100", "--hidden", "20,20", "--no-progress"]
#: what may differ between two runs of the same trial (where and how it ran)
RUN_FIELDS = ("duration", "data_load", "worker", "attempts", "threads", "blas_threads", "finished")


def same_trials(a, b):
    strip = [{k: v for k, v in r.items() if k not in RUN_FIELDS} for r in a]
    return strip == [{k: v for k, v in r.items() if k not in RUN_FIELDS} for r in b]


def lines(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for var in ("FASTDL_SEARCH_TEST_KILL", "FASTDL_SEARCH_TEST_RAISE", "FASTDL_CLUSTER", "FASTDL_BACKEND"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def five():
    """Five tiny trials on one local worker: what a search of 5 gives, however it was run."""
    result = search.random_search(trials=5, workers=1, **TINY)
    assert result.counts()["ok"] == 5
    return result


# -- ranges: log-scale by default when they span two decades --------------------------------

def test_a_range_over_two_decades_is_log_scale_unless_linear_is_given():
    assert search.parse_param("lr=1e-6:1e-2") == ("lr", (1e-6, 1e-2, "log"))
    assert search.parse_param("lr=1e-6:1e-2:linear") == ("lr", (1e-6, 1e-2, "linear"))
    assert search.parse_param("lr=0.001:0.1") == ("lr", (0.001, 0.1, "log"))         # exactly 100x
    assert search.parse_param("lr=0.001:0.0999") == ("lr", (0.001, 0.0999, "linear"))
    assert search.parse_param("dropout=0.1:0.5") == ("dropout", (0.1, 0.5, "linear"))
    assert search.parse_param("wd=0:1e-4") == ("weight_decay", (0.0, 1e-4, "linear"))  # 0: no log
    # the Python API: strings and (low, high) tuples alike
    space = search.make_config(space={"lr": (1e-6, 1e-2), "wd": "1e-8:1e-4"})["space"]
    assert space == {"weight_decay": [1e-8, 1e-4, "log"], "lr": [1e-6, 1e-2, "log"]}
    assert search.make_config(space={"lr": (1e-6, 1e-2, "linear")})["space"]["lr"] == [1e-6, 1e-2, "linear"]
    # what is drawn: about half the trials below 1e-4 (a linear draw puts 1% there)
    config = search.make_config(space={"lr": "1e-6:1e-2"}, trials=400)
    lrs = np.array([t["params"]["lr"] for t in search.make_tasks(config)])
    assert 0.4 < np.mean(lrs < 1e-4) < 0.6
    linear = search.make_config(space={"lr": "1e-6:1e-2:linear"}, trials=400)
    assert np.mean(np.array([t["params"]["lr"] for t in search.make_tasks(linear)]) < 1e-4) < 0.05
    assert _space.sampling(config["space"]) == "lr 1e-06..0.01 log-scale, weight decay 1e-08..0.0001 log-scale"
    assert _space.sampling({"lr": [0.1, 0.1, "linear"], "dropout": [0.1, 0.5, "linear"]}) == \
        "lr 0.1 fixed, dropout 0.1..0.5 linear"


def test_help_says_how_ranges_are_drawn_and_how_to_install_dask(capsys):
    assert cli.main(["search", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "spanning two decades or more (HIGH/LOW >= 100, both > 0) is drawn log-scale" in text
    assert "python -m pip install -e '.[distributed]'" in text and "fastdl-book" not in text
    assert "more than the journal's extends the search" in text


# -- the backend a journal records --------------------------------------------------------

@pytest.fixture(autouse=True)
def _backend_not_chosen_yet(monkeypatch):
    """FASTDL_BACKEND is read once, when the backend is first needed: these tests set it, so each
    starts as a fresh process would, with nothing chosen yet (the suite's earlier tests chose)."""
    from fastdl import backend
    monkeypatch.setattr(backend, "_global_name", None)


def test_the_journal_records_the_backend_that_ran_and_resume_compares_it(tmp_path, capsys, monkeypatch):
    assert search.make_config()["backend"] == "numba"
    monkeypatch.setenv("FASTDL_BACKEND", "numpy")
    assert search.make_config()["backend"] == "numpy"
    assert search.make_config(backend="numba")["backend"] == "numba"
    import fastdl
    with fastdl.using_backend("numba"):                             # this thread's backend first
        assert search.make_config()["backend"] == "numba"
    monkeypatch.setenv("FASTDL_BACKEND", "nonsense")
    with pytest.raises(search.SearchUsageError, match="FASTDL_BACKEND must be one of"):
        search.make_config()
    monkeypatch.delenv("FASTDL_BACKEND")

    out = tmp_path / "j.jsonl"
    args = ["search", *TINY_CLI, "--trials", "2", "--workers", "1", "--out", str(out)]
    assert cli.main(args) == 0                                      # no --backend given
    stdout = capsys.readouterr().out
    assert stdout.splitlines()[0] == ("search: 2 trials, seed 0; lr 1e-06..0.01 log-scale, weight decay "
                                      "1e-08..0.0001 log-scale; backend numba")
    header, *records = lines(out)
    assert header["config"]["backend"] == "numba"
    assert [r["backend"] for r in records] == ["numba", "numba"]
    size = out.stat().st_size
    assert cli.main([*args, "--resume", "--backend", "numba"]) == 0          # the default, said out loud
    capsys.readouterr()
    monkeypatch.setenv("FASTDL_BACKEND", "numpy")
    for extra in ([], ["--backend", "numpy"]):
        assert cli.main([*args, "--resume", *extra]) == 2
        err = capsys.readouterr().err
        assert err.strip() == (f"fastdl search: {out} was run on backend numba, this search would run on "
                               "backend numpy; resume it on numba (--backend numba) or choose another file")
    assert cli.main([*args, "--resume", "--backend", "numba"]) == 0          # FASTDL_BACKEND overridden
    capsys.readouterr()
    assert out.stat().st_size == size                                         # nothing was run again
    # a journal whose header says null (no backend recorded) counts as the default's
    header["config"]["backend"] = None
    out.write_text("".join(json.dumps(item) + "\n" for item in [header, *records]))
    assert cli.main([*args, "--resume"]) == 2                                 # FASTDL_BACKEND=numpy
    assert "was run on backend numba, this search would run on backend numpy" in capsys.readouterr().err
    monkeypatch.delenv("FASTDL_BACKEND")
    assert cli.main([*args, "--resume"]) == 0


def test_trials_run_on_the_backend_of_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTDL_BACKEND", "numpy")
    result = search.random_search(trials=1, workers=1, journal=tmp_path / "j.jsonl", **TINY)
    assert result.config["backend"] == "numpy" and result.trials[0]["backend"] == "numpy"
    assert lines(tmp_path / "j.jsonl")[0]["config"]["backend"] == "numpy"


# -- what --resume refuses ----------------------------------------------------------------

def _journal_of(tmp_path, records, trials=4):
    """A journal with ``records`` (made up: nothing needs to run for these checks)."""
    config = search.make_config(trials=trials, **{k: v for k, v in TINY.items() if k != "progress"})
    path = tmp_path / "j.jsonl"
    with _journal.Journal(path, config) as book:
        for r in records:
            book.append(r)
    return path


def _record(i):
    return {"index": i, "seed": 1, "params": {"lr": 0.01}, "status": "ok", "val_acc": 0.5, "val_acc_curve": [0.5]}


@pytest.mark.parametrize("indexes, where, message", [
    ([0, 7], 3, "records trial 7, outside the search's 4 trials (0 to 3)"),
    ([0, -1], 3, "records trial -1, outside the search's 4 trials (0 to 3)"),
    ([0, 1, 0], 4, "records trial 0 again (first on line 2)"),
])
def test_resume_refuses_a_record_outside_the_search_or_repeated(indexes, where, message, tmp_path, capsys):
    path = _journal_of(tmp_path, [_record(i) for i in indexes])
    before = path.read_bytes()
    code = cli.main(["search", *TINY_CLI, "--trials", "4", "--workers", "1", "--out", str(path), "--resume"])
    err = capsys.readouterr().err
    assert code == 1, err
    assert err.startswith(f"fastdl search: {path}: line {where} {message}") and len(err.strip().splitlines()) == 1
    assert path.read_bytes() == before                      # left as it was
    with pytest.raises(search.JournalError, match=re.escape(f"line {where} {message}")):
        search.load_journal(path)


def test_a_byte_identical_duplicate_is_refused_too(tmp_path, capsys):
    path = _journal_of(tmp_path, [_record(0), _record(1)])
    with open(path, "ab") as f:
        f.write(path.read_bytes().splitlines(keepends=True)[-1])        # the same line twice
    with pytest.raises(search.JournalError, match="line 4 records trial 1 again"):
        search.random_search(trials=4, workers=1, journal=path, resume=True, **TINY)


# -- more trials extend a search ----------------------------------------------------------

def test_more_trials_extend_a_finished_search(five, tmp_path, capsys):
    out = tmp_path / "j.jsonl"
    args = ["search", *TINY_CLI, "--quiet", "--workers", "1", "--out", str(out)]
    assert cli.main([*args, "--trials", "3"]) == 0
    first = lines(out)
    capsys.readouterr()
    seen = []
    result = search.random_search(trials=5, workers=1, journal=out, resume=True, on_trial=seen.append, **TINY)
    assert sorted(r["index"] for r in seen) == [3, 4]                       # only the new ones ran
    assert result.complete and result.config["trials"] == 5
    assert any("extended from 3 to 5 trials" in e for e in result.events)
    assert f"fastdl search: {out}: extended from 3 to 5 trials" in capsys.readouterr().err
    assert same_trials(result.trials, five.trials)                          # as a search of 5 from the start
    after = lines(out)
    assert after[:4] == first                                              # nothing rewritten
    assert after[4]["fastdl_search"] == 1 and after[4]["trials"] == 5 and "index" not in after[4]
    assert search.load_journal(out).config["trials"] == 5
    assert same_trials(search.load_journal(out).trials, five.trials)
    # fewer trials than the journal's: refused, nothing changed
    size = out.stat().st_size
    assert cli.main([*args, "--trials", "4", "--resume"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == (f"fastdl search: {out} holds a search of 5 trials, more than the 4 asked for; "
                           "resume it with trials 5 (or more, to extend it)")
    # the same count again: nothing to run; other settings must still match
    assert cli.main([*args, "--trials", "5", "--resume"]) == 0
    assert cli.main([*args, "--trials", "6", "--resume", "--seed", "1"]) == 2
    assert "holds a different search (seed 0 there, 1 here)" in capsys.readouterr().err
    assert out.stat().st_size == size


# -- a Dask scheduler killed mid-search ---------------------------------------------------

def _start(module, *args, cwd):
    return subprocess.Popen([sys.executable, "-m", module, *args], cwd=cwd, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _stop(proc):
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)                   # its own session: it and its children
    proc.wait(timeout=30)


SLOW = ["--trials", "10", "--epochs", "30", "--train-size", "100", "--hidden", "20,20", "--batch-size", "20",
        "--no-progress"]


def test_a_killed_scheduler_stops_the_search_with_the_command_that_resumes_it(tmp_path):
    """SIGKILL to a real `dask scheduler` once a trial is in the journal: the search exits 1 with one
    line naming the scheduler and the exact command that resumes; that command, run on this machine
    (--cluster local), finishes the search with the trials an uninterrupted run gives."""
    pytest.importorskip("distributed")
    scheduler_file = tmp_path / "scheduler.json"
    scheduler = _start("distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                       "--no-dashboard", "--scheduler-file", str(scheduler_file), cwd=tmp_path)
    worker = None
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)                                         # written in one go, but read it whole
        address = json.loads(scheduler_file.read_text())["address"]
        worker = _start("distributed.cli.dask_worker", address, "--nworkers", "1", "--nthreads", "1",
                        "--no-dashboard", cwd=tmp_path)
        out = tmp_path / "j.jsonl"
        client = subprocess.Popen([sys.executable, "-m", "fastdl", "search", *SLOW, "--cluster", address,
                                   "--out", str(out)], cwd=tmp_path, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        while client.poll() is None and time.monotonic() < deadline + 60:
            if out.exists() and len(out.read_bytes().splitlines()) >= 2:      # header + a trial
                break
            time.sleep(0.02)
        assert client.poll() is None, client.communicate()
        scheduler.send_signal(signal.SIGKILL)
        _, err = client.communicate(timeout=60)
    finally:
        _stop(scheduler)
        if worker is not None:
            _stop(worker)
    assert client.returncode == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    done = lines(out)[1:]
    assert 1 <= len(done) < 10
    command = (f"fastdl search --trials 10 --epochs 30 --train-size 100 --batch-size 20 --hidden 20,20 "
               f"--backend numba --cluster {address} --out {out} --no-progress --resume")
    assert err.strip() == (f"fastdl search: lost the Dask scheduler at {address}; {len(done)} of 10 trials are "
                           f"in {out}; once it is back (or with --cluster local to run here), resume with: "
                           f"{command}")
    # the printed command, on this machine instead
    argv = shlex.split(command)[1:]
    argv[argv.index("--cluster") + 1] = "local"
    assert cli.main([*argv, "--quiet"]) == 0
    resumed = search.load_journal(out)
    assert [r["index"] for r in resumed.trials] == list(range(10))
    assert [json.dumps(r) for r in lines(out)[1:1 + len(done)]] == [json.dumps(r) for r in done]  # kept
    whole = search.random_search(trials=10, epochs=30, train_size=100, hidden=[20, 20], batch_size=20,
                                 workers=2, progress=False)
    assert same_trials(resumed.trials, whole.trials)
    assert resumed.table(10) == whole.table(10)
