"""`python -m fastdl.book`: a book-style script runs unmodified, and the book's star imports; its usage errors."""
import os
import subprocess
import sys

import pytest

from fastdl import backend, book
from tests.helpers import one_line, run_module

HERE = os.path.dirname(os.path.abspath(__file__))


def test_book_script_runs_unmodified_on_fastdl():
    script = os.path.join(HERE, "book_scripts", "ch_demo", "train_demo.py")
    r = run_module(["fastdl.book", "--backend", "numpy", script, "x", "--flag"], env={"FASTDL_MNIST": "sample"})
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
    assert out["name"] == "__main__"
    assert out["argv"] == "['x', '--flag']"
    assert out["np"].startswith("numpy softmax [0.01821127, 0.24519181, 0.73659691]")
    assert out["shim"] == "True True"
    assert out["backend"] == "numpy"
    assert out["data"] == "(5000, 784) (5000, 10) (10000, 784)"
    assert float(out["accuracy"]) > 0.8
    r = run_module(["fastdl.book", "--sample", script], env={"FASTDL_BACKEND": "numba"})
    assert r.returncode == 0, r.stderr
    assert "backend numba" in r.stdout


def test_book_star_imports_export_what_the_book_exports():
    code = ("from fastdl.book import install; install()\n"
            "ns = {}; exec('from common.layers import *', ns)\n"
            "print(sorted(k for k in ('np', 'softmax', 'im2col', 'col2im', 'Affine', 'Convolution', "
            "'cross_entropy_error') if k in ns))\n"
            "ns = {}; exec('from common.optimizer import *', ns); print('Adam' in ns, 'np' in ns)\n"
            "import dataset.mnist, common.multi_layer_net_extend as m; print(hasattr(m, 'MultiLayerNetExtend'))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert lines[0] == str(sorted(['np', 'softmax', 'im2col', 'col2im', 'Affine', 'Convolution',
                                   'cross_entropy_error']))
    assert lines[1] == "True True" and lines[2] == "True"


# -- usage errors ----------------------------------------------------------------------------------
def test_book_usage_errors_in_a_real_process(tmp_path):
    script = tmp_path / "s.py"
    script.write_text("print('ran')\n")
    for args, expect in ((["--backend", "bogus", str(script)], "unknown backend 'bogus'"),
                         (["--bogus", str(script)], "unknown option --bogus"),
                         ([str(tmp_path / "nope.py")], "no such script")):
        r = run_module(["fastdl.book", *args])
        assert r.returncode == 2, (args, r.stderr)
        line = one_line(r.stderr)
        assert expect in line and "ran" not in r.stdout
    assert "available backends: numpy" in run_module(["fastdl.book", "--backend", "bogus", str(script)]).stderr


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
