"""`python -m fastdl.book`: a book-style script runs unmodified, and the book's star imports."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(args, env=None, timeout=300):
    e = dict(os.environ, **(env or {}))
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, env=e, timeout=timeout)


def test_book_script_runs_unmodified_on_fastdl():
    script = os.path.join(HERE, "book_scripts", "ch_demo", "train_demo.py")
    r = run(["fastdl.book", "--backend", "numpy", script, "x", "--flag"], env={"FASTDL_MNIST": "sample"})
    assert r.returncode == 0, r.stderr
    out = dict(line.split(" ", 1) for line in r.stdout.strip().splitlines())
    assert out["name"] == "__main__"
    assert out["argv"] == "['x', '--flag']"
    assert out["np"].startswith("numpy softmax [0.01821127, 0.24519181, 0.73659691]")
    assert out["shim"] == "True True"
    assert out["backend"] == "numpy"
    assert out["data"] == "(5000, 784) (5000, 10) (10000, 784)"
    assert float(out["accuracy"]) > 0.8
    r = run(["fastdl.book", "--sample", script], env={"FASTDL_BACKEND": "numba"})
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
