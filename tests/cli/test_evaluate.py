"""`fastdl evaluate`: its progress bar only when asked or on a terminal, a network saved from Python
(evaluated, and its predictions); files that are not what it expects give one line naming the
file, exit status 1 (2 for a usage error), in this process and in a real one."""
import json
import os
import pickle

import numpy as np
import pytest

from fastdl import cli
from fastdl.datasets import load_mnist
from fastdl.trainer import Trainer
from tests.cli.conftest import QUICK, TWO, run_cli_line
from tests.helpers import one_line, run_cli, run_module


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
    code, out, err = run_cli_line(["evaluate", str(model_files[kind])], capsys)
    assert code == 1, err
    assert err.startswith("fastdl evaluate: ") and os.path.basename(model_files[kind]) in err and out == ""


def test_evaluate_failures_in_a_real_process(model_files):
    for kind in ("truncated", "png", "pickled", "mislabelled"):
        r = run_module(["fastdl", "evaluate", str(model_files[kind])])
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
        code, out, err = run_cli_line(args, capsys)
        assert code == 2 and expect in err, (args, err)


def test_evaluate_wrong_net_given(model_files, capsys):
    code, out, err = run_cli_line(["evaluate", str(model_files["good"]), "--net", "simple"], capsys)
    assert code == 1 and "does not fit this SimpleConvNet" in err


def test_evaluate_good_file_still_works(model_files, capsys):
    code, out, err = run_cli_line(["evaluate", str(model_files["good"]), "--backend", "numpy", "--batch-size", "1000"],
                                          capsys)
    assert code == 0 and "test accuracy" in out and err == ""


def test_evaluate_progress_bar_only_when_asked_or_on_a_terminal(npz, tmp_path, capsys):
    model = str(tmp_path / "m.npz")
    data = npz()
    assert run_cli(TWO + ["--data", data, "--epochs", "1", "--quiet", "--save", model], capsys)[0] == 0
    code, plain, err = run_cli(["evaluate", model, "--backend", "numpy", "--batch-size", "50"], capsys)
    assert code == 0 and err == ""                                  # stderr is no terminal here
    code, out, err = run_cli(["evaluate", model, "--backend", "numpy", "--batch-size", "50", "--progress"], capsys)
    assert code == 0 and "evaluating" in err and "/200 [" in err
    assert out.split(" (")[0] == plain.split(" (")[0]               # the same accuracy
    code, out, err = run_cli(["evaluate", model, "--progress", "--no-progress"], capsys)
    assert code == 0 and err == ""


def test_evaluate_and_predict_a_network_saved_from_python(small, tmp_path, capsys):
    """A MultiLayerNet (no --net name) saved with save_params: evaluate and predict rebuild it
    from the file (fastdl.load_model)."""
    from fastdl.nets import MultiLayerNet
    x, t, xt, tt = small
    np.random.seed(0)
    net = MultiLayerNet(784, [30, 30], 10)
    Trainer(net, x.reshape(-1, 784) / 255.0, t, xt.reshape(-1, 784) / 255.0, tt, epochs=5, mini_batch_size=100,
            optimizer="adam", optimizer_param={"lr": 0.01}, verbose=False, progress=False).train()
    path = str(tmp_path / "mln.npz")
    net.save_params(path)
    code, out, err = run_cli(["evaluate", path, "--backend", "numpy"], capsys)
    assert code == 0 and out.startswith(f"MultiLayerNet from {path}: test accuracy") and err == ""
    want = net.accuracy(load_mnist(sample=True)[1][0], load_mnist(sample=True)[1][1])
    assert f"test accuracy {want:.4f} on 10000 sample" in out
    np.save(tmp_path / "digit.npy", xt[0, 0])
    code, out, err = run_cli(["predict", path, str(tmp_path / "digit.npy")], capsys)
    assert code == 0 and int(out.split()[1]) == int(net.predict(xt[:1].reshape(1, 784) / 255.0).argmax())
