"""Shared by the tests of the command line: the process state a command changes is put back after
each test; a short training run; cli.main with its one line of stderr."""
import numpy as np
import pytest

from fastdl import backend, cli
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
