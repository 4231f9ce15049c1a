"""`fastdl train` as people train: --optimizer in any case, a user's own arrays (--data FILE.npz),
--val-split, --checkpoint-dir, --resume, --early-stop, --lr-schedule, a last line that says where
the model is; the learning curve's epochs; short error lines with did-you-mean; every argument and
output path checked before training; what training learned is never lost (divergence, an error, a
second Ctrl-C, a --save that cannot be written: a rescue file).
Tiny runs: TwoLayerNet on the reference kernels, a few hundred images."""
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from fastdl import cli
from fastdl.nets import TwoLayerNet, load_model, read_meta
from fastdl.trainer import Trainer
from tests.cli.conftest import QUICK, TWO, run_cli_line
from tests.helpers import one_line, run_cli, run_module


main = run_cli   # cli.main in this process: (exit status, stdout, stderr)


# -- --optimizer in any case; did-you-mean -------------------------------------------------------
@pytest.mark.parametrize("name", ["Adam", "ADAM", "adam", "SGD", "RMSprop", "AdaGrad", "rmsprpo"])
def test_optimizer_in_any_case(name):
    args = cli.build_parser().parse_args(["train", "--optimizer", name])
    assert args.optimizer == ("rmsprop" if name == "rmsprpo" else name.lower())


def test_a_capitalised_optimizer_trains(npz, capsys):
    code, out, err = main(TWO + ["--data", npz(), "--epochs", "1", "--optimizer", "Adam", "--quiet"], capsys)
    assert code == 0 and err == "" and "adam lr 0.001" in out


@pytest.mark.parametrize("args,expect", [
    (["train", "--optimiser", "adam"], "fastdl train: unknown option --optimiser; did you mean --optimizer?"),
    (["train", "--epohcs", "3"], "did you mean --epochs?"),
    (["train", "--lr-shedule", "cosine"], "did you mean --lr-schedule?"),
    (["trian"], "fastdl: unknown command 'trian'; did you mean 'train'?"),
    (["evalute", "m.npz"], "did you mean 'evaluate'?"),
    (["train", "--net", "simpel"], "argument --net: unknown value 'simpel'; did you mean 'simple'?"),
    (["train", "--optimizer", "adma"], "unknown optimizer 'adma'; did you mean 'adam'?"),
    (["train", "--data", "mnsit"], "unknown data set 'mnsit'; did you mean 'mnist'?"),
    (["train", "--lr-schedule", "cosin"], "unknown schedule 'cosin'; did you mean 'cosine'?"),
    (["train", "--dtype", "float33"], "did you mean 'float32'?"),
    (["search", "--trails", "3"], "unknown option --trails; did you mean --trials?"),
    (["train", "--bogus"], "fastdl train: unknown option --bogus (see fastdl train --help)"),
    (["train", "extra"], "unexpected argument 'extra'"),
])
def test_did_you_mean(args, expect, capsys):
    code, out, err = main(args, capsys)
    assert code == 2 and expect in one_line(err)


def test_did_you_mean_in_a_real_process():
    r = subprocess.run([sys.executable, "-m", "fastdl", "train", "--optimiser", "adam"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 2 and r.stdout == ""
    assert one_line(r.stderr) == ("fastdl train: unknown option --optimiser; did you mean --optimizer? "
                                  "(see fastdl train --help)")


# -- --data FILE.npz --------------------------------------------------------------------------------
@pytest.mark.parametrize("layout", ["flat-uint8", "square-float", "nchw-onehot"])
def test_own_arrays_train_and_evaluate(layout, small, npz, tmp_path, capsys):
    x, t, xt, tt = small
    if layout == "flat-uint8":
        path = npz(x_train=x.reshape(-1, 784), x_test=xt.reshape(-1, 784))
    elif layout == "square-float":
        path = npz(x_train=x[:, 0] / 255.0, x_test=xt[:, 0] / 255.0, t_train=t.astype(np.float64))
    else:
        path = npz(t_train=np.eye(10)[t], t_test=np.eye(10, dtype=np.int32)[tt])
    model = str(tmp_path / "m.npz")
    code, out, err = main(TWO + ["--data", path, "--epochs", "4", "--lr", "0.01", "--save", model], capsys)
    assert code == 0 and err == ""
    assert f"on {path}: 400 training and 200 test images" in out
    acc = float(out.split("test accuracy ")[1].split()[0])
    assert acc > 0.5                                        # learned from the file's own arrays
    assert read_meta(model)["data"] == path
    code, out, err = main(["evaluate", model, "--backend", "numpy"], capsys)   # the test set of the file
    assert code == 0 and f"test accuracy {acc:.4f} on 200" in out


BAD_DATA = [
    ({"x_test": None}, "missing x_test (it has x_train, t_train, t_test)"),
    ({"x_train": np.zeros((400, 27, 27), np.uint8)}, "x_train has shape (400, 27, 27); expected"),
    ({"x_train": np.zeros((400, 1, 28, 28), dtype="U1")}, "x_train has dtype <U1"),
    ({"t_train": np.full(400, 10)}, "t_train holds label 10 at index 0; labels must be 0-9"),
    ({"t_test": -np.ones(200, int)}, "t_test holds label -1"),
    ({"t_train": np.full(400, 2.5)}, "t_train holds 2.5 at index 0; labels must be whole numbers"),
    ({"t_train": np.zeros(399, int)}, "t_train has 399 labels but x_train has 400 images"),
    ({"t_train": np.full((400, 10), 0.1)}, "rows are not one-hot"),
    ({"x_train": np.full((400, 784), np.nan)}, "x_train holds NaN or infinite values (first in image 0)"),
    ({"x_train": np.full((400, 784), 300, np.int16)}, "x_train holds integers from 300 to 300; expected 0-255"),
    ({"x_test": np.zeros((0, 784))}, "x_test holds no images"),
]


@pytest.mark.parametrize("changes,expect", BAD_DATA, ids=[e.split(";")[0][:30] for _, e in BAD_DATA])
def test_bad_arrays_are_one_line_usage_errors(changes, expect, npz, capsys):
    path = npz(**changes)
    code, out, err = main(TWO + ["--data", path], capsys)
    line = one_line(err)
    assert code == 2 and out == "" and line.startswith(f"fastdl train: {path}: ") and expect in line, line


def test_files_that_are_not_data(tmp_path, capsys):
    (tmp_path / "text.npz").write_text("hello")
    np.save(tmp_path / "one.npy", np.zeros(3))
    np.savez(tmp_path / "obj.npz", x_train=np.array([{"a": 1}], dtype=object), t_train=np.zeros(1),
             x_test=np.zeros(1), t_test=np.zeros(1))
    for name, expect in (("text.npz", "not a readable .npz file"), ("one.npy", "holds a single array"),
                         ("obj.npz", "pickles"), ("nope.npz", "no such file")):
        code, out, err = main(TWO + ["--data", str(tmp_path / name)], capsys)
        assert code == 2 and expect in one_line(err), (name, err)


# -- where the model is ------------------------------------------------------------------------
def test_without_save_the_last_line_says_it_was_not_saved(npz, capsys):
    code, out, err = main(TWO + ["--data", npz(), "--epochs", "1", "--quiet"], capsys)
    assert code == 0 and out.splitlines()[-1] == "the trained parameters were not saved (--save FILE.npz saves them)"


# -- validation, checkpoints, early stopping, schedules -----------------------------------------------
def test_val_split_and_checkpoints(npz, tmp_path, capsys):
    ck = tmp_path / "ck"
    ck.mkdir()
    code, out, err = main(TWO + ["--data", npz(), "--epochs", "3", "--val-split", "0.25", "--checkpoint-dir",
                                 str(ck)], capsys)
    assert code == 0 and err == ""
    assert "300 training, 100 validation and 200 test images" in out and ", val acc:" in out
    assert sorted(os.listdir(ck)) == ["best.npz", "last.npz"]
    assert out.splitlines()[-1].startswith(f"the model is in {ck / 'last.npz'} and {ck / 'best.npz'}")
    last = read_meta(str(ck / "last.npz"))
    assert last["trainer"]["current_iter"] == 9 and last["train"]["val_split"] == 0.25
    history = last["trainer"]["history"]
    best_val = max(h["val_acc"] for h in history if h["epoch"] > 0)
    best = read_meta(str(ck / "best.npz"))["trainer"]["history"][-1]
    assert best["val_acc"] == best_val
    assert type(load_model(str(ck / "best.npz"))).__name__ == "TwoLayerNet"


@pytest.mark.parametrize("args,expect", [
    (["--val-split", "0"], "between 0 and 1"), (["--val-split", "1"], "between 0 and 1"),
    (["--val-split", "x"], "expected a fraction"), (["--early-stop", "2"], "--early-stop needs --val-split"),
    (["--early-stop", "0", "--val-split", "0.1"], ">= 1"), (["--checkpoint-dir", "/nonexistent/ck"], "no such folder"),
    (["--lr-schedule", "step:0:0.5"], ">= 1"), (["--lr-schedule", "step:2:1.5"], "GAMMA in (0, 1]"),
    (["--lr-schedule", "step:2"], "step:EPOCHS:GAMMA"), (["--resume", "/nonexistent.npz"], "no such file"),
])
def test_bad_training_options(args, expect, capsys):
    code, out, err = main(TWO + args, capsys)
    assert code == 2 and expect in one_line(err), err


def test_early_stopping(npz, tmp_path, capsys):
    """A learning rate far too small to change the validation accuracy: patience 1 stops after 2 epochs."""
    model = str(tmp_path / "m.npz")
    code, out, err = main(TWO + ["--data", npz(), "--epochs", "8", "--val-split", "0.25", "--early-stop", "1",
                                 "--optimizer", "sgd", "--lr", "1e-9", "--save", model], capsys)
    assert code == 0 and "early stopping at epoch" in out
    assert read_meta(model)["trainer"]["current_iter"] < 8 * 3


@pytest.mark.parametrize("schedule,want", [("step:1:0.5", [1e-2, 5e-3, 2.5e-3, 1.25e-3]),
                                           ("cosine", [1e-2, 0.5e-2 * (1 + 0.5 ** 0.5), 5e-3,
                                                       0.5e-2 * (1 - 0.5 ** 0.5)])])
def test_lr_schedules(schedule, want, npz, tmp_path, capsys):
    model = str(tmp_path / "m.npz")
    code, out, err = main(TWO + ["--data", npz(), "--epochs", "4", "--lr", "0.01", "--lr-schedule", schedule,
                                 "--save", model, "--quiet"], capsys)
    assert code == 0
    history = read_meta(model)["trainer"]["history"]
    lrs = [h["lr"] for h in history if not h["final"]]           # the rate of each epoch 0..3
    assert lrs == pytest.approx(want), history


# -- --resume -----------------------------------------------------------------------------------
def test_resume_continues_exactly_where_the_run_stopped(npz, tmp_path, capsys):
    data = npz()
    straight, first, resumed = (str(tmp_path / n) for n in ("straight.npz", "first.npz", "resumed.npz"))
    common = TWO + ["--data", data, "--optimizer", "Adam", "--lr", "0.003", "--quiet"]
    assert main(common + ["--epochs", "3", "--save", straight], capsys)[0] == 0
    assert main(common + ["--epochs", "1", "--save", first], capsys)[0] == 0
    code, out, err = main(["train", "--resume", first, "--epochs", "3", "--backend", "numpy", "--no-progress",
                           "--eval-samples", "100", "--save", resumed], capsys)
    assert code == 0 and err == ""
    assert out.startswith(f"resuming TwoLayerNet from {first} at epoch 1 (float32, backend numpy) on {data}")
    assert "adam lr 0.003" in out                                   # the run's settings, from the file
    a, b = load_model(straight), load_model(resumed)
    for k in a.params:
        assert np.array_equal(a.params[k], b.params[k]), k
    assert read_meta(resumed)["trainer"]["current_iter"] == 12


def test_resume_errors_and_weights_only_files(npz, tmp_path, capsys):
    data = npz()
    done = str(tmp_path / "done.npz")
    assert main(TWO + ["--data", data, "--epochs", "1", "--quiet", "--save", done], capsys)[0] == 0
    code, out, err = main(TWO + ["--data", data, "--resume", done, "--epochs", "1"], capsys)
    assert code == 2 and "has already run 1 epochs" in one_line(err) and "larger --epochs" in err
    code, out, err = main(["train", "--net", "simple", "--resume", done], capsys)
    assert code == 2 and "holds TwoLayerNet (--net two), not --net simple" in one_line(err)
    weights = str(tmp_path / "weights.npz")
    load_model(done).save_params(weights)                        # Net.save_params: no Trainer state
    code, out, err = main(TWO + ["--data", data, "--resume", weights, "--epochs", "1", "--quiet"], capsys)
    assert code == 0 and "holds weights only" in out


# -- the learning curve -------------------------------------------------------------------------
def test_learning_curve_points_run_from_epoch_0_to_the_final_accuracy(small):
    x, t, xt, tt = small
    np.random.seed(0)
    from fastdl.nets import TwoLayerNet
    net = TwoLayerNet(784, 20, 10)
    trainer = Trainer(net, x.reshape(-1, 784) / 255.0, t, xt.reshape(-1, 784) / 255.0, tt, epochs=3,
                      mini_batch_size=100, optimizer="adam", optimizer_param={"lr": 0.01}, verbose=False,
                      progress=False)
    final = trainer.train()
    test = cli._curve(trainer, "test_acc")
    assert [e for e, _ in test] == [0, 1, 2, 3] and test[-1][1] == final
    assert [e for e, _ in cli._curve(trainer, "train_acc")] == [0, 1, 2, 3]
    assert cli._curve(trainer, "val_acc") == []


def test_plot_is_written(npz, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    plot = tmp_path / "curves.png"
    code, out, err = main(TWO + ["--data", npz(), "--epochs", "2", "--quiet", "--plot", str(plot)], capsys)
    assert code == 0 and plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# -- short error lines -----------------------------------------------------------------------------
def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_offline_download_failure_is_one_line_with_the_fix(tmp_path):
    env = dict(os.environ, FASTDL_DATA_DIR=str(tmp_path), FASTDL_BACKEND="numpy",
               FASTDL_MNIST_MIRRORS=f"http://127.0.0.1:{_closed_port()}/,http://127.0.0.1:{_closed_port()}/")
    r = subprocess.run([sys.executable, "-m", "fastdl", "train", "--data", "mnist"], capture_output=True, text=True,
                       timeout=120, env=env)
    line = one_line(r.stderr)
    assert r.returncode == 2 and len(line) < 300 and "127.0.0.1" not in line
    assert line.startswith("fastdl train: MNIST is not available offline and could not be downloaded; use --data sample")
    assert str(tmp_path / "mnist") in line and "--verbose" in line
    r = subprocess.run([sys.executable, "-m", "fastdl", "train", "--data", "mnist", "--verbose"], capture_output=True,
                       text=True, timeout=120, env=env)
    lines = r.stderr.splitlines()
    assert r.returncode == 2 and lines[0] == line and len(lines) == 1 + 4 * 3 + 1   # 4 files x (name + 2 mirrors) + fix
    assert lines[-1].startswith("To fix:") and "Connection refused" in r.stderr


# -- arguments and output paths are checked before training ----------------------------------------
def test_batch_larger_than_the_training_set(capsys):
    code, out, err = run_cli_line(QUICK + ["--batch-size", "5001"], capsys)
    assert code == 2 and "5000 training images" in err and "training " not in out


def test_save_in_missing_folder_fails_before_training_in_a_real_process(tmp_path):
    t0 = time.perf_counter()
    r = run_module(["fastdl", "train", "--epochs", "3", "--save", str(tmp_path / "no" / "d" / "m.npz")])
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
    code, out, err = run_cli_line(QUICK + args, capsys)
    assert code == 2 and err.startswith("fastdl train: --") and out == ""
    assert sorted(os.listdir(tmp_path)) == ["afile", "fifo"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root may write anywhere")
def test_output_folder_not_writable(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, out, err = run_cli_line(QUICK + ["--save", str(ro / "m.npz")], capsys)
    finally:
        ro.chmod(0o700)
    assert code == 2 and "no permission" in err and out == ""


def test_plot_without_matplotlib_is_checked_first(tmp_path, capsys, monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real(name, *a))
    code, out, err = run_cli_line(QUICK + ["--plot", str(tmp_path / "c.png")], capsys)
    assert code == 2 and "matplotlib" in err and out == ""


# -- divergence, failures during training, and the weights are never lost --------------------------
def test_divergence_in_a_real_process(tmp_path):
    """--lr 1e10 with plain SGD: NaN within a few steps. Training stops there, exit status 1, the
    message names the learning rate, and the diverged parameters are kept beside --save (not in
    its place, where a good earlier file would be lost)."""
    (tmp_path / "m.npz").write_bytes(b"an earlier good model")
    r = run_module(["fastdl", "train", "--net", "two", "--epochs", "5", "--lr", "1e10", "--optimizer", "sgd",
                    "--save", str(tmp_path / "m.npz"), "--quiet"])
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "diverged" in line and "--lr 1e+10" in line and "too high" in line and "m.diverged.npz" in line
    assert (tmp_path / "m.npz").read_bytes() == b"an earlier good model"
    meta = read_meta(tmp_path / "m.diverged.npz")
    assert meta["diverged"] is True and meta["iterations"] < 250      # stopped early, not after 5 epochs
    r2 = run_module(["fastdl", "evaluate", str(tmp_path / "m.diverged.npz")])
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
    code, out, err = run_cli_line(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
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
    code, out, err = run_cli_line(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
    assert code == 1 and "diverged" in err and "--lr" in err
    assert os.listdir(tmp_path) == ["m.diverged.npz"]


def test_nan_loss_stops_training(tmp_path, capsys, monkeypatch):
    def nan_loss(trainer):
        trainer.train_loss_list[-1] = float("nan")
    _break_training(monkeypatch, 4, nan_loss)
    code, out, err = run_cli_line(QUICK, capsys)
    assert code == 1 and "diverged at iteration 4 (loss nan)" in err
    assert "diverged after 4 iterations" in out


def test_second_ctrl_c_still_saves(tmp_path, capsys, monkeypatch):
    def abort(trainer):
        raise KeyboardInterrupt
    _break_training(monkeypatch, 5, abort)
    code, out, err = run_cli_line(QUICK + ["--save", str(tmp_path / "m.npz")], capsys)
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
    code, out, err = run_cli_line(QUICK + ["--save", target], capsys)
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
