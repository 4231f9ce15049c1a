"""`fastdl evaluate` on files that are not what it expects: one line naming the file, exit status 1
(2 for a usage error), in this process and in a real one."""
import json
import os
import pickle

import numpy as np
import pytest

from fastdl import cli
from tests.cli.conftest import QUICK, run_cli_line
from tests.helpers import one_line, run_module


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
