"""The command line as a whole: help, train, evaluate, info; numeric flags and unknown commands are
usage errors before any work (exit status 2), a user's mistake never ends in a traceback (one line
on stderr), Ctrl-C and SIGTERM save what was learned (exit status 130 and 143)."""
import os
import signal
import time

import numpy as np
import pytest

import fastdl
from fastdl import cli
from fastdl.nets import TwoLayerNet, read_meta
from tests.cli.conftest import QUICK, run_cli_line
from tests.helpers import one_line, run_module, signal_training


def test_help_is_there_for_every_command():
    r = run_module(["fastdl", "--help"])
    assert r.returncode == 0 and "train" in r.stdout and "evaluate" in r.stdout
    r = run_module(["fastdl", "train", "--help"])
    for opt in ("--net", "--data", "--epochs", "--batch-size", "--optimizer", "--lr", "--backend", "--dtype",
                "--save", "--plot", "--seed"):
        assert opt in r.stdout, opt
    assert run_module(["fastdl", "info"]).returncode == 0


def test_train_save_plot_evaluate(tmp_path):
    model, png = tmp_path / "m.npz", tmp_path / "c.png"
    r = run_module(["fastdl", "train", "--net", "two", "--epochs", "2", "--lr", "0.01", "--save", str(model),
                    "--plot", str(png), "--backend", "numpy", "--dtype", "float64"])
    assert r.returncode == 0, r.stderr
    assert "=== epoch:2" in r.stdout and "test accuracy" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r2 = run_module(["fastdl", "evaluate", str(model)])
    assert r2.returncode == 0, r2.stderr
    acc_train = r.stdout.split("test accuracy ")[1].split()[0]
    acc_eval = r2.stdout.split("test accuracy ")[1].split()[0]
    assert acc_train == acc_eval and float(acc_eval) > 0.8


def test_evaluate_missing_file_and_offline_download(tmp_path):
    r = run_module(["fastdl", "evaluate", str(tmp_path / "nope.npz")])
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run_module(["fastdl", "train", "--data", "mnist", "--epochs", "1"],
                   env={"FASTDL_DATA_DIR": str(tmp_path), "FASTDL_MNIST_MIRRORS": "http://127.0.0.1:9/"})
    assert r.returncode == 2 and "--data sample" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_saves_what_was_learned(tmp_path):
    model = tmp_path / "m.npz"
    code, out, err = signal_training(model, signal.SIGINT)
    assert code == 130, err
    assert "interrupted after" in out and "saved parameters" in out
    from fastdl.nets import TwoLayerNet, read_meta
    assert read_meta(model)["interrupted"] is True
    net = TwoLayerNet(784, 50, 10, dtype=np.float32)
    net.load_params(model)
    assert [f for f in os.listdir(tmp_path) if f != "m.npz"] == []


# -- numbers, usage errors and one-line messages, in this process and a real one -------------------
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
    code, out, err = run_cli_line(command + [f"{flag}={value}"] + save, capsys)
    assert code == 2
    assert err.startswith(f"fastdl {command[0]}: argument {flag}:") and value in err and "--help" in err
    assert out == "" and os.listdir(tmp_path) == []


def test_bad_numbers_in_a_real_process(tmp_path):
    for args in (["--epochs", "-1"], ["--epochs", "0"], ["--lr", "nan"], ["--batch-size", "0"],
                 ["--eval-samples", "-5"]):
        r = run_module(["fastdl", "train", "--net", "two", *args, "--save", str(tmp_path / "m.npz")])
        assert r.returncode == 2, (args, r.stderr)
        assert args[0] in one_line(r.stderr) and r.stdout == ""
    assert os.listdir(tmp_path) == []


def test_good_numbers_still_pass(capsys):
    p = cli.build_parser()
    a = p.parse_args(["train", "--epochs", "3", "--lr", "1e-3", "--eval-samples", "0", "--seed", "0",
                      "--batch-size", "7"])
    assert (a.epochs, a.lr, a.eval_samples, a.seed, a.batch_size) == (3, 1e-3, 0, 0, 7)
    assert p.parse_args(["compare", "--nets", " deep, simple,deep ,"]).nets == ["deep", "simple"]


def test_unexpected_error_is_one_line(capsys, monkeypatch):
    def load(*a, **k):
        raise RuntimeError("something\nunforeseen")
    monkeypatch.setattr(cli, "_load_data", load)
    monkeypatch.delenv("FASTDL_TRACEBACK", raising=False)
    got, out, err = run_cli_line(QUICK, capsys)
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
    code, out, err = run_cli_line(command + ["--data", "mnist"], capsys)
    assert code == 2, err
    assert err == (f"fastdl {command[0]}: FASTDL_DOWNLOAD_DEADLINE must be a number of seconds > 0, "
                   "got 'soon'")
    assert not os.path.exists(tmp_path / "fastdl-search.jsonl")


def test_no_command_and_unknown_command(capsys):
    code = cli.main([])
    out, err = capsys.readouterr()
    assert code == 2 and "usage" in out and "no command" in one_line(err)
    code, out, err = run_cli_line(["bogus"], capsys)
    assert code == 2 and "unknown command 'bogus'; choose from info, train" in err
    code, out, err = run_cli_line(["train", "--bogus"], capsys)
    assert code == 2 and err == "fastdl train: unknown option --bogus (see fastdl train --help)"


def test_help_exits_zero(capsys):
    assert cli.main(["train", "--help"]) == 0
    assert "--epochs" in capsys.readouterr().out


def test_unavailable_backend_is_a_usage_error(capsys):
    if "cuda" in fastdl.available_backends():
        pytest.skip("cuda is available here")
    code, out, err = run_cli_line(QUICK + ["--backend", "cuda"], capsys)
    assert code == 2 and "available backends" in err and out == ""


def test_a_normal_run_says_nothing_on_stderr(tmp_path, capsys):
    code, out, err = run_cli_line(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
    assert code == 0 and err == "" and "finished after 50 iterations" in out
    assert os.listdir(tmp_path) == ["m.npz"]


# -- signals: Ctrl-C and SIGTERM before and during training ----------------------------------------
@pytest.mark.parametrize("exc,code,word", [("KeyboardInterrupt", 130, "interrupted"),
                                           ("Terminated", 143, "terminated")])
def test_signal_before_training_exits_cleanly(exc, code, word, capsys, monkeypatch):
    exc = KeyboardInterrupt if exc == "KeyboardInterrupt" else cli.Terminated

    def load(*a, **k):
        raise exc()
    monkeypatch.setattr(cli, "_load_data", load)
    got, out, err = run_cli_line(QUICK, capsys)
    assert got == code and word in err


def test_sigterm_handler_is_installed_and_restored(capsys, monkeypatch):
    def load(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(1)
        raise AssertionError("SIGTERM did not stop the command")
    monkeypatch.setattr(cli, "_load_data", load)
    before = signal.getsignal(signal.SIGTERM)
    got, out, err = run_cli_line(QUICK, capsys)
    assert got == 143 and "terminated" in err
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_in_a_real_process_saves_and_exits_143(tmp_path):
    model = tmp_path / "m.npz"
    code, out, err = signal_training(model, signal.SIGTERM)
    assert code == 143, err
    assert "terminated (SIGTERM)" in one_line(err) and "saved parameters" in out
    assert read_meta(model)["interrupted"] is True
    assert os.listdir(tmp_path) == ["m.npz"]
