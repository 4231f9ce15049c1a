"""Reliability of the command line: every argument and output path is
checked before any work, a user's mistake never ends in a traceback (exit status 2 for a usage
error, 1 for a failure, one line on stderr), and what training learned is never lost
(Ctrl-C, SIGTERM, divergence, an error, a --save that cannot be written).

A representative part runs ``python -m fastdl`` as a real process; the rest calls
``fastdl.cli.main`` in this process, which returns the exit status."""
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdl
from fastdl import backend, book, cli, compare
from fastdl.nets import TwoLayerNet, read_meta

HERE = os.path.dirname(os.path.abspath(__file__))
#: a short training run: TwoLayerNet, one epoch of the shipped sample (50 steps), reference kernels
QUICK = ["train", "--net", "two", "--epochs", "1", "--backend", "numpy", "--quiet", "--no-progress",
         "--eval-samples", "100"]


@pytest.fixture(autouse=True)
def _keep_process_state():
    """`fastdl train --backend` selects the backend for the whole process: put it back."""
    saved = backend._global_name
    state = np.random.get_state()
    yield
    backend._global_name = saved
    np.random.set_state(state)


def run(args, cwd=None, timeout=300, env=None):
    e = dict(os.environ, **(env or {}))
    e.pop("FASTDL_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=e)


def one_line(err):
    """stderr holds exactly one non-empty line and no traceback; returns it."""
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    return lines[0]


def main(args, capsys):
    """cli.main in this process: (exit status, stdout, the one line on stderr or '')."""
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, (one_line(err) if err.strip() else "")


# -- numeric flags ----------------------------------------------------------------------------
BAD_NUMBERS = [
    (["train"], "--epochs", "-1"), (["train"], "--epochs", "0"), (["train"], "--epochs", "1.5"),
    (["train"], "--epochs", "ten"), (["train"], "--lr", "0"), (["train"], "--lr", "-0.1"),
    (["train"], "--lr", "nan"), (["train"], "--lr", "inf"), (["train"], "--lr", "fast"),
    (["train"], "--eval-samples", "-5"), (["train"], "--batch-size", "0"), (["train"], "--batch-size", "-3"),
    (["train"], "--seed", "-1"), (["train"], "--seed", str(2**32)),
    (["compare"], "--repeat", "0"), (["compare"], "--repeat", "-2"), (["compare"], "--batch-size", "0"),
    (["evaluate", "x.npz"], "--batch-size", "0"), (["evaluate", "x.npz"], "--batch-size", "-1"),
]


@pytest.mark.parametrize("command,flag,value", BAD_NUMBERS,
                         ids=[f"{c[0]}{f}={v}" for c, f, v in BAD_NUMBERS])
def test_bad_number_is_a_usage_error_before_any_work(command, flag, value, capsys, tmp_path):
    save = ["--save", str(tmp_path / "m.npz")] if command == ["train"] else []
    code, out, err = main(command + [f"{flag}={value}"] + save, capsys)
    assert code == 2
    assert err.startswith(f"fastdl {command[0]}: argument {flag}:") and value in err and "--help" in err
    assert out == "" and os.listdir(tmp_path) == []


def test_bad_numbers_in_a_real_process(tmp_path):
    for args in (["--epochs", "-1"], ["--epochs", "0"], ["--lr", "nan"], ["--batch-size", "0"],
                 ["--eval-samples", "-5"]):
        r = run(["fastdl", "train", "--net", "two", *args, "--save", str(tmp_path / "m.npz")])
        assert r.returncode == 2, (args, r.stderr)
        assert args[0] in one_line(r.stderr) and r.stdout == ""
    assert os.listdir(tmp_path) == []


def test_good_numbers_still_pass(capsys):
    p = cli.build_parser()
    a = p.parse_args(["train", "--epochs", "3", "--lr", "1e-3", "--eval-samples", "0", "--seed", "0",
                      "--batch-size", "7"])
    assert (a.epochs, a.lr, a.eval_samples, a.seed, a.batch_size) == (3, 1e-3, 0, 0, 7)
    assert p.parse_args(["compare", "--nets", " deep, simple,deep ,"]).nets == ["deep", "simple"]


def test_batch_larger_than_the_training_set(capsys):
    code, out, err = main(QUICK + ["--batch-size", "5001"], capsys)
    assert code == 2 and "5000 training images" in err and "training " not in out


# -- output paths are checked before training ----------------------------------------------------
def test_save_in_missing_folder_fails_before_training_in_a_real_process(tmp_path):
    t0 = time.perf_counter()
    r = run(["fastdl", "train", "--epochs", "3", "--save", str(tmp_path / "no" / "d" / "m.npz")])
    assert r.returncode == 2
    assert "does not exist" in one_line(r.stderr) and "training" not in r.stdout
    assert time.perf_counter() - t0 < 60


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs os.mkfifo")
@pytest.mark.parametrize("case", ["missing-folder", "is-a-folder", "device", "empty", "same-file",
                                  "plot-missing-folder", "folder-is-a-file"])
def test_output_path_checked_before_any_work(case, tmp_path, capsys):
    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    args = {"missing-folder": ["--save", str(tmp_path / "no" / "m.npz")],
            "is-a-folder": ["--save", str(tmp_path)],
            # a FIFO, not /dev/null: a regression run as root would replace /dev/null by a file
            "device": ["--save", str(tmp_path / "fifo")],
            "empty": ["--save", ""],
            "same-file": ["--save", str(tmp_path / "x"), "--plot", str(tmp_path / "x")],
            "plot-missing-folder": ["--plot", str(tmp_path / "no" / "c.png")],
            "folder-is-a-file": ["--save", str(tmp_path / "afile" / "m.npz")]}[case]
    code, out, err = main(QUICK + args, capsys)
    assert code == 2 and err.startswith("fastdl train: --") and out == ""
    assert sorted(os.listdir(tmp_path)) == ["afile", "fifo"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_not_writable(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, out, err = main(QUICK + ["--save", str(ro / "m.npz")], capsys)
    finally:
        ro.chmod(0o700)
    assert code == 2 and "no permission" in err and out == ""


def test_plot_without_matplotlib_is_checked_first(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, out, err = main(QUICK + ["--plot", str(tmp_path / "c.png")], capsys)
    assert code == 2 and "matplotlib" in err and out == ""


# -- divergence, failures during training, and the weights are never lost -------------------
def test_divergence_in_a_real_process(tmp_path):
    """--lr 1e10 with plain SGD: NaN within a few steps. Training stops there, exit status 1, the
    message names the learning rate, and the diverged parameters are kept beside --save (not in
    its place, where a good earlier file would be lost)."""
    (tmp_path / "m.npz").write_bytes(b"an earlier good model")
    r = run(["fastdl", "train", "--net", "two", "--epochs", "5", "--lr", "1e10", "--optimizer", "sgd",
             "--save", str(tmp_path / "m.npz"), "--quiet"])
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "diverged" in line and "--lr 1e+10" in line and "too high" in line and "m.diverged.npz" in line
    assert (tmp_path / "m.npz").read_bytes() == b"an earlier good model"
    meta = read_meta(tmp_path / "m.diverged.npz")
    assert meta["diverged"] is True and meta["iterations"] < 250      # stopped early, not after 5 epochs
    r2 = run(["fastdl", "evaluate", str(tmp_path / "m.diverged.npz")])
    assert r2.returncode == 1 and "diverged" in one_line(r2.stderr)


def _break_training(monkeypatch, at, action):
    """Make the Trainer's step number ``at`` (1-based) do ``action(trainer)`` after the step."""
    from fastdl.trainer import Trainer
    real = Trainer.train_step

    def step(self):
        real(self)
        if self.current_iter == at:
            action(self)
    monkeypatch.setattr(Trainer, "train_step", step)


def test_error_during_training_keeps_the_weights(tmp_path, capsys, monkeypatch):
    def fail(trainer):
        raise RuntimeError("disk on fire")
    _break_training(monkeypatch, 7, fail)
    code, out, err = main(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
    assert code == 1 and "training failed at iteration 8" in err and "disk on fire" in err
    assert "m.npz" in err
    meta = read_meta(tmp_path / "m.npz")
    assert meta["iterations"] == 7 and "disk on fire" in meta["error"]
    TwoLayerNet(784, 50, 10, dtype=np.float32).load_params(tmp_path / "m.npz")


def test_divergence_raised_as_an_error_is_reported_as_divergence(tmp_path, capsys, monkeypatch):
    """Layers that raise on NaN (instead of letting it flow) end the same way."""
    def nan(trainer):
        for v in trainer.network.params.values():
            v[...] = np.nan
        raise ValueError("SoftmaxWithLoss.forward: x contains NaN")
    _break_training(monkeypatch, 3, nan)
    code, out, err = main(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
    assert code == 1 and "diverged" in err and "--lr" in err
    assert os.listdir(tmp_path) == ["m.diverged.npz"]


def test_nan_loss_stops_training(tmp_path, capsys, monkeypatch):
    def nan_loss(trainer):
        trainer.train_loss_list[-1] = float("nan")
    _break_training(monkeypatch, 4, nan_loss)
    code, out, err = main(QUICK, capsys)
    assert code == 1 and "diverged at iteration 4 (loss nan)" in err
    assert "diverged after 4 iterations" in out


def test_second_ctrl_c_still_saves(tmp_path, capsys, monkeypatch):
    def abort(trainer):
        raise KeyboardInterrupt
    _break_training(monkeypatch, 5, abort)
    code, out, err = main(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
    assert code == 130 and "interrupted (Ctrl-C) after 5 iterations" in err and "m.npz" in err
    meta = read_meta(tmp_path / "m.npz")
    assert meta["interrupted"] is True and meta["iterations"] == 5


def test_save_that_fails_after_training_goes_to_a_rescue_file(tmp_path, capsys, monkeypatch):
    from fastdl.nets import Net
    real = Net.save_params
    target = str(tmp_path / "out" / "m.npz")
    (tmp_path / "out").mkdir()

    def save(self, file_name, meta=None, extra=None):
        if os.fspath(file_name) == target:
            raise OSError(28, "No space left on device")
        return real(self, file_name, meta=meta, extra=extra)
    monkeypatch.setattr(Net, "save_params", save)
    monkeypatch.chdir(tmp_path)
    code, out, err = main(QUICK + ["--save", target], capsys)
    assert code == 1 and "No space left on device" in err
    rescued = [f for f in os.listdir(tmp_path) if f.startswith("fastdl-rescue-")]
    assert len(rescued) == 1 and rescued[0] in err and rescued[0] in out
    assert read_meta(tmp_path / rescued[0])["net"] == "two"
    TwoLayerNet(784, 50, 10, dtype=np.float32).load_params(tmp_path / rescued[0])


def test_rescue_falls_back_to_the_temporary_folder(tmp_path, monkeypatch):
    net = TwoLayerNet(4, 3, 2)
    monkeypatch.setattr(cli, "_rescue_paths", lambda: [str(tmp_path / "no" / "r.npz"), str(tmp_path / "t.npz")])
    saved, error = cli._save_params(net, str(tmp_path / "missing" / "m.npz"), {"net": "two"})
    assert saved == str(tmp_path / "t.npz") and isinstance(error, OSError)
    TwoLayerNet(4, 3, 2).load_params(saved)


def test_rescue_paths_are_the_current_then_the_temporary_folder(tmp_path, monkeypatch):
    import tempfile
    monkeypatch.chdir(tmp_path)
    here, temp = cli._rescue_paths()
    assert os.path.dirname(here) == str(tmp_path) and os.path.dirname(temp) == tempfile.gettempdir()
    assert os.path.basename(here).startswith("fastdl-rescue-") and here.endswith(f"-{os.getpid()}.npz")


def test_sigterm_in_a_real_process_saves_and_exits_143(tmp_path):
    model = tmp_path / "m.npz"
    p = subprocess.Popen([sys.executable, "-m", "fastdl", "train", "--net", "two", "--epochs", "200",
                          "--save", str(model), "--backend", "numpy"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    seen, deadline = "", time.time() + 120
    while "=== epoch:2" not in seen and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line
    p.send_signal(signal.SIGTERM)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 143, err
    assert "terminated (SIGTERM)" in one_line(err) and "saved parameters" in out
    assert read_meta(model)["interrupted"] is True
    assert os.listdir(tmp_path) == ["m.npz"]


@pytest.mark.parametrize("exc,code,word", [("KeyboardInterrupt", 130, "interrupted"),
                                           ("Terminated", 143, "terminated")])
def test_signal_before_training_exits_cleanly(exc, code, word, capsys, monkeypatch):
    exc = KeyboardInterrupt if exc == "KeyboardInterrupt" else cli.Terminated

    def load(*a, **k):
        raise exc()
    monkeypatch.setattr(cli, "_load_data", load)
    got, out, err = main(QUICK, capsys)
    assert got == code and word in err


def test_sigterm_handler_is_installed_and_restored(capsys, monkeypatch):
    def load(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        raise AssertionError("SIGTERM did not stop the command")
    monkeypatch.setattr(cli, "_load_data", load)
    before = signal.getsignal(signal.SIGTERM)
    got, out, err = main(QUICK, capsys)
    assert got == 143 and "terminated" in err
    assert signal.getsignal(signal.SIGTERM) is before


def test_unexpected_error_is_one_line(capsys, monkeypatch):
    def load(*a, **k):
        raise RuntimeError("something\nunforeseen")
    monkeypatch.setattr(cli, "_load_data", load)
    monkeypatch.delenv("FASTDL_TRACEBACK", raising=False)
    got, out, err = main(QUICK, capsys)
    assert got == 1 and "RuntimeError: something unforeseen" in err and "FASTDL_TRACEBACK" in err



def test_messages_are_made_one_line_in_one_place():
    """fastdl._text.one_line: what the command line and the search put after their prefix."""
    from fastdl._text import one_line as flat
    assert flat("a\n  b\tc ") == "a b c"
    assert flat(RuntimeError("x\ny")) == "x y"
    assert flat(RuntimeError("x\ny"), with_type=True) == "RuntimeError: x y"
    assert flat(RuntimeError()) == "RuntimeError" == flat(RuntimeError(), with_type=True)
    err = FileNotFoundError(2, "No such file or directory", "/a/b.npz")
    assert flat(err) == "/a/b.npz: No such file or directory"
    assert flat(err, with_type=True) == "FileNotFoundError: /a/b.npz: No such file or directory"


@pytest.mark.parametrize("command", [["train", "--net", "two", "--backend", "numpy"],
                                     ["search", "--trials", "1", "--workers", "1", "--no-progress"]])
def test_a_bad_download_deadline_is_a_usage_error(command, tmp_path, capsys, monkeypatch):
    """FASTDL_DOWNLOAD_DEADLINE is read when MNIST has to be downloaded: a value that is not a
    number of seconds > 0 ends like a bad argument (exit status 2, one line naming it)."""
    monkeypatch.setenv("FASTDL_DATA_DIR", str(tmp_path))              # nothing cached: a download
    monkeypatch.setenv("FASTDL_MNIST_MIRRORS", "http://127.0.0.1:9/")  # never reached
    monkeypatch.setenv("FASTDL_DOWNLOAD_DEADLINE", "soon")
    monkeypatch.chdir(tmp_path)
    code, out, err = main(command + ["--data", "mnist"], capsys)
    assert code == 2, err
    assert err == (f"fastdl {command[0]}: FASTDL_DOWNLOAD_DEADLINE must be a number of seconds > 0, "
                   "got 'soon'")
    assert not os.path.exists(tmp_path / "fastdl-search.jsonl")

# -- fastdl evaluate on files that are not what it expects ----------------------------------------
@pytest.fixture(scope="module")
def model_files(tmp_path_factory):
    d = tmp_path_factory.mktemp("models")
    good = d / "two.npz"
    assert cli.main(QUICK + ["--save", str(good)]) == 0
    data = good.read_bytes()
    files = {}

    def put(name, content):
        files[name] = d / f"{name}.npz"
        files[name].write_bytes(content)
    put("truncated", data[:len(data) // 2])
    put("empty", b"")
    put("text", b"hello, world\n")
    put("png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    put("pickled", pickle.dumps({"W1": np.zeros((784, 50))}))
    arrays = dict(np.load(good))
    arrays.pop("__fastdl_meta__")
    other = {"W1": np.zeros((30, 1, 5, 5)), "b1": np.zeros(30)}

    def npz(name, arrays, meta=None):
        if meta is not None:
            arrays = dict(arrays, __fastdl_meta__=np.frombuffer(meta, dtype=np.uint8))
        np.savez(d / f"{name}.npz", **arrays)
        files[name] = d / f"{name}.npz"
    npz("mislabelled", other, json.dumps({"net": "two", "dtype": "float32", "data": "sample"}).encode())
    npz("meta-not-json", arrays, b"\xff\xfe{")
    npz("meta-a-list", arrays, b"[1, 2]")
    npz("nan-weights", {**arrays, "W1": np.full((784, 50), np.nan, np.float32)},
        json.dumps({"net": "two"}).encode())
    npz("object-array", {"W1": np.array([{"a": 1}], dtype=object)}, json.dumps({"net": "two"}).encode())
    np.save(d / "single.npy", np.zeros(3))
    files["single-npy"] = d / "single.npy"
    files["good"] = good
    return files


EVAL_FAILURES = ["truncated", "empty", "text", "png", "pickled", "mislabelled", "meta-not-json", "meta-a-list",
                 "nan-weights", "object-array", "single-npy"]


@pytest.mark.parametrize("kind", EVAL_FAILURES)
def test_evaluate_unreadable_file(kind, model_files, capsys):
    code, out, err = main(["evaluate", str(model_files[kind])], capsys)
    assert code == 1, err
    assert err.startswith("fastdl evaluate: ") and os.path.basename(model_files[kind]) in err and out == ""


def test_evaluate_failures_in_a_real_process(model_files):
    for kind in ("truncated", "png", "pickled", "mislabelled"):
        r = run(["fastdl", "evaluate", str(model_files[kind])])
        assert r.returncode == 1, (kind, r.stderr)
        assert str(model_files[kind]) in one_line(r.stderr)


def test_evaluate_usage_errors(model_files, tmp_path, capsys):
    bad_meta = tmp_path / "bad-meta.npz"
    arrays = dict(np.load(model_files["good"]))
    arrays["__fastdl_meta__"] = np.frombuffer(json.dumps({"net": "two", "dtype": "int8"}).encode(), np.uint8)
    np.savez(bad_meta, **arrays)
    for args, expect in ((["evaluate", str(tmp_path / "nope.npz")], "no such file"),
                         (["evaluate", str(tmp_path)], "is a folder"),
                         (["evaluate", os.devnull], "not a regular file"),
                         (["evaluate", str(bad_meta)], "--dtype"),
                         (["evaluate", str(model_files["good"]), "--net", "resnet"], "unknown value 'resnet'"),
                         (["evaluate"], "required")):
        code, out, err = main(args, capsys)
        assert code == 2 and expect in err, (args, err)


def test_evaluate_wrong_net_given(model_files, capsys):
    code, out, err = main(["evaluate", str(model_files["good"]), "--net", "simple"], capsys)
    assert code == 1 and "does not fit this SimpleConvNet" in err


def test_evaluate_good_file_still_works(model_files, capsys):
    code, out, err = main(["evaluate", str(model_files["good"]), "--backend", "numpy", "--batch-size", "1000"],
                          capsys)
    assert code == 0 and "test accuracy" in out and err == ""


# -- fastdl compare -----------------------------------------------------------------------------
@pytest.mark.parametrize("nets", [",", "", " , ", "resnet", "simple,resnet"])
def test_compare_nets_must_name_a_known_net(nets, capsys):
    code, out, err = main(["compare", f"--nets={nets}"], capsys)
    assert code == 2 and "simple, deep" in err and out == ""


def test_compare_in_a_real_process():
    r = run(["fastdl", "compare", "--nets", ","])
    assert r.returncode == 2 and "choose from simple, deep" in one_line(r.stderr) and r.stdout == ""
    r = run(["fastdl", "compare", "--repeat", "0"])
    assert r.returncode == 2 and "--repeat" in one_line(r.stderr)


def test_compare_backends_must_name_one(capsys):
    code, out, err = main(["compare", "--backends", ",", "--nets", "simple"], capsys)
    assert code == 2 and "available backends" in err


@pytest.mark.parametrize("kwargs", [{"nets": ()}, {"nets": ("resnet",)}, {"repeat": 0}, {"batch": -1},
                                    {"batch": 2.5}, {"dtype": "float16"}])
def test_compare_run_checks_its_arguments(kwargs):
    args = dict(nets=("simple",), batch=2, repeat=1, torch=False, backends=["numpy"])
    args.update(kwargs)
    with pytest.raises(ValueError):
        compare.run(**args)


# -- python -m fastdl.book ------------------------------------------------------------------------
def test_book_usage_errors_in_a_real_process(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    for args, expect in ((["--backend", "bogus", str(script)], "unknown backend 'bogus'"),
                         (["--bogus", str(script)], "unknown option --bogus"),
                         ([str(tmp_path / "nope.py")], "no such script")):
        r = run(["fastdl.book", *args])
        assert r.returncode == 2, (args, r.stderr)
        line = one_line(r.stderr)
        assert expect in line and "ran" not in r.stdout
    assert "available backends: numpy" in run(["fastdl.book", "--backend", "bogus", str(script)]).stderr


@pytest.mark.parametrize("args,expect", [
    (["--backend", "bogus", "S"], "unknown backend"), (["--backend=bogus", "S"], "unknown backend"),
    (["--backend"], "needs a NAME"), (["--bogus", "S"], "unknown option"), ([], "no script"),
    (["NOPE"], "no such script"), (["DIR"], "not a file")])
def test_book_usage_errors(args, expect, tmp_path, capsys):
    script = tmp_path / "s.py"
    script.write_text("raise SystemExit('the script must not run')\n")
    args = [{"S": str(script), "NOPE": str(tmp_path / "nope.py"), "DIR": str(tmp_path)}.get(a, a) for a in args]
    assert book.main(args) == 2
    out, err = capsys.readouterr()
    assert expect in one_line(err) and out == ""


def test_book_bad_fastdl_backend_variable(tmp_path, capsys, monkeypatch):
    script = tmp_path / "s.py"
    script.write_text("raise SystemExit('the script must not run')\n")
    monkeypatch.setenv("FASTDL_BACKEND", "bogus")
    monkeypatch.setattr(backend, "_global_name", None)
    assert book.main([str(script)]) == 2
    assert "FASTDL_BACKEND" in one_line(capsys.readouterr().err)


# -- the rest of the command line -----------------------------------------------------------------
def test_no_command_and_unknown_command(capsys):
    code = cli.main([])
    out, err = capsys.readouterr()
    assert code == 2 and "usage" in out and "no command" in one_line(err)
    code, out, err = main(["bogus"], capsys)
    assert code == 2 and "unknown command 'bogus'; choose from info, train" in err
    code, out, err = main(["train", "--bogus"], capsys)
    assert code == 2 and err == "fastdl train: unknown option --bogus (see fastdl train --help)"


def test_help_exits_zero(capsys):
    assert cli.main(["train", "--help"]) == 0
    assert "--epochs" in capsys.readouterr().out


def test_unavailable_backend_is_a_usage_error(capsys):
    if "cuda" in fastdl.available_backends():
        pytest.skip("cuda is available here")
    code, out, err = main(QUICK + ["--backend", "cuda"], capsys)
    assert code == 2 and "available backends" in err and out == ""


def test_a_normal_run_says_nothing_on_stderr(tmp_path, capsys):
    code, out, err = main(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
    assert code == 0 and err == "" and "finished after 50 iterations" in out
    assert os.listdir(tmp_path) == ["m.npz"]
