"""The command line: help, train, evaluate, info, Ctrl-C."""
import os
import signal
import subprocess
import sys
import time

import numpy as np


def run(args, env=None, timeout=300):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_help_is_there_for_every_command():
    r = run(["fastdl", "--help"])
    assert r.returncode == 0 and "train" in r.stdout and "evaluate" in r.stdout
    r = run(["fastdl", "train", "--help"])
    for opt in ("--net", "--data", "--epochs", "--batch-size", "--optimizer", "--lr", "--backend", "--dtype",
                "--save", "--plot", "--seed"):
        assert opt in r.stdout, opt
    assert run(["fastdl", "info"]).returncode == 0


def test_train_save_plot_evaluate(tmp_path):
    model, png = tmp_path / "m.npz", tmp_path / "c.png"
    r = run(["fastdl", "train", "--net", "two", "--epochs", "2", "--lr", "0.01", "--save", str(model),
             "--plot", str(png), "--backend", "numpy", "--dtype", "float64"])
    assert r.returncode == 0, r.stderr
    assert "=== epoch:2" in r.stdout and "test accuracy" in r.stdout
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r2 = run(["fastdl", "evaluate", str(model)])
    assert r2.returncode == 0, r2.stderr
    acc_train = r.stdout.split("test accuracy ")[1].split()[0]
    acc_eval = r2.stdout.split("test accuracy ")[1].split()[0]
    assert acc_train == acc_eval and float(acc_eval) > 0.8


def test_evaluate_missing_file_and_offline_download(tmp_path):
    r = run(["fastdl", "evaluate", str(tmp_path / "nope.npz")])
    assert r.returncode == 2 and "no such file" in r.stderr
    r = run(["fastdl", "train", "--data", "mnist", "--epochs", "1"],
            env={"FASTDL_DATA_DIR": str(tmp_path), "FASTDL_MNIST_MIRRORS": "http://127.0.0.1:9/"})
    assert r.returncode == 2 and "--data sample" in r.stderr and "Traceback" not in r.stderr


def test_ctrl_c_saves_what_was_learned(tmp_path):
    model = tmp_path / "m.npz"
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.Popen([sys.executable, "-m", "fastdl", "train", "--net", "two", "--epochs", "200",
                          "--save", str(model), "--backend", "numpy"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                         # a terminal's default SIGINT, even when this runs as a background job
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen = ""
    deadline = time.time() + 120
    while "=== epoch:2" not in seen and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert "interrupted after" in out and "saved parameters" in out
    from fastdl.nets import TwoLayerNet, read_meta
    assert read_meta(model)["interrupted"] is True
    net = TwoLayerNet(784, 50, 10, dtype=np.float32)
    net.load_params(model)
    assert [f for f in os.listdir(tmp_path) if f != "m.npz"] == []

