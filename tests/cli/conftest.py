"""Shared by the tests of the command line: the process state a command changes is put back after
each test; short training runs and the data they train on; cli.main with its one line of stderr."""
import numpy as np
import pytest

from fastdl import backend, cli
from fastdl.datasets import load_mnist
from tests.helpers import one_line


@pytest.fixture(autouse=True)
def _keep_process_state():
    """`fastdl train --backend` selects the backend for the whole process: put it back."""
    saved = backend._global_name
    state = np.random.get_state()
    yield
    backend._global_name = saved
    np.random.set_state(state)


#: a short training run: TwoLayerNet, one epoch of the shipped sample (50 steps), reference kernels
QUICK = ["train", "--net", "two", "--epochs", "1", "--backend", "numpy", "--quiet", "--no-progress",
         "--eval-samples", "100"]


def run_cli_line(args, capsys):
    """``fastdl.cli.main(args)`` in this process: (exit status, stdout, the one line on stderr or '')."""
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, (one_line(err) if err.strip() else "")


#: TwoLayerNet on the reference kernels, per-epoch accuracies on 100 images, no bar
TWO = ["train", "--net", "two", "--backend", "numpy", "--no-progress", "--eval-samples", "100"]


@pytest.fixture(scope="module")
def small():
    """400 training and 200 test images of the shipped sample, as MNIST's uint8 and labels."""
    (x, t), (xt, tt) = load_mnist(normalize=False, flatten=False, sample=True)
    return x[:400], t[:400], xt[:200], tt[:200]


@pytest.fixture
def npz(small, tmp_path):
    def write(name="data.npz", **changes):
        x, t, xt, tt = small
        arrays = {"x_train": x, "t_train": t, "x_test": xt, "t_test": tt}
        arrays.update(changes)
        arrays = {k: v for k, v in arrays.items() if v is not None}
        path = tmp_path / name
        np.savez(path, **arrays)
        return str(path)
    return write
