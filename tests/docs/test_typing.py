"""fastdl's type hints are usable by its users: the PEP 561 marker ships with the package, the
annotations of the public API resolve at run time, and they import nothing heavy.

mypy itself runs in CI (``python -m mypy`` in .ci/run, configured in pyproject.toml's
[tool.mypy]); this file does not run it again.
"""
import os
import subprocess
import sys
import typing
from pathlib import Path

import pytest

import fastdl
from fastdl import backend, datasets, functions, gradient, perceptron, search, trainer, util

ROOT = Path(__file__).resolve().parents[2]


def test_py_typed_marker_is_in_the_package():
    assert (Path(fastdl.__file__).parent / "py.typed").is_file()


def test_py_typed_is_package_data():
    """The marker is declared as package data, so a wheel ships it (not only an editable install)."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    section = text.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"fastdl" = ["py.typed"]' in section


PUBLIC_CALLABLES = [
    functions.sigmoid, functions.softmax, functions.cross_entropy_error, functions.step_function,
    gradient.numerical_gradient, gradient.gradient_descent,
    perceptron.AND, perceptron.forward, perceptron.init_network,
    util.im2col, util.col2im, util.shuffle_dataset, util.smooth_curve,
    backend.set_backend, backend.using_backend, backend.current_backend, backend.available_backends,
    trainer.Trainer.__init__, trainer.Trainer.train, trainer.Trainer.train_step,
    datasets.load_mnist, datasets.load_fashion_mnist, datasets.data_dir,
    search.random_search, search.load_journal, search.make_config, search.SearchResult.__init__,
    search.SearchResult.best,
]


@pytest.mark.parametrize("fn", PUBLIC_CALLABLES, ids=lambda f: f"{f.__module__}.{f.__qualname__}")
def test_annotations_resolve(fn):
    """Every parameter and the return are annotated, and the annotations evaluate
    (``typing.get_type_hints``: nothing is left to a ``TYPE_CHECKING``-only import)."""
    hints = typing.get_type_hints(fn)
    code = fn.__code__
    params = code.co_varnames[:code.co_argcount + code.co_kwonlyargcount]
    missing = [p for p in params if p != "self" and p not in hints]
    assert not missing, f"{fn.__qualname__}: parameters without a type hint: {missing}"
    assert "return" in hints, f"{fn.__qualname__}: no return type"


def test_annotated_constants_resolve():
    assert typing.get_type_hints(backend)["BACKENDS"] == typing.Dict[str, str]
    assert "OPTIMIZERS" in typing.get_type_hints(trainer)


def test_import_stays_light():
    """The annotations import no optional or heavy library when fastdl is imported."""
    code = ("import sys, fastdl, fastdl.trainer, fastdl.search, fastdl.datasets; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'torch', 'dask', 'distributed', 'matplotlib', 'tqdm', 'numba'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "FASTDL_BACKEND": "numpy"})
    assert out.stdout.strip() == "[]"


EDITABLE_INSTALL = 'python -m pip install -e ".[test,plot,docs]" --config-settings editable_mode=strict'

USER_CODE = '''\
import numpy as np

import fastdl
import fastdl.kernels
import fastdl.kernels.reference
from fastdl.nets import SimpleConvNet, TwoLayerNet

net = TwoLayerNet(784, 50, 10)
y: np.ndarray = net.predict(np.zeros((2, 784), dtype=np.float32))
conv = SimpleConvNet()
name: str = fastdl.current_backend()
count: int = fastdl.current_backend()  # wrong on purpose: mypy must see the annotation
'''


def test_type_hints_reach_user_code_outside_the_checkout(tmp_path):
    """mypy, run on a user's file in a folder outside the checkout, finds fastdl, fastdl.nets and
    fastdl.kernels as installed (the README's install) and checks the file against their
    annotations: the one wrong assignment is the one error. Takes mypy's cold start (a few
    seconds): the check is of the install itself, so it cannot run on a cached analysis."""
    assert ROOT not in tmp_path.resolve().parents
    (tmp_path / "user_code.py").write_text(USER_CODE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    r = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--no-error-summary",
                        "--cache-dir", str(tmp_path / "cache"), "user_code.py"],
                       cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    lines = [line for line in (r.stdout + r.stderr).splitlines() if ": error:" in line]
    missing = [line for line in lines if "import-not-found" in line or "import-untyped" in line
               or "Cannot find implementation" in line]
    assert not missing, (
        "mypy outside the checkout does not find fastdl: this install is not one that static tools "
        f"follow. Reinstall from the checkout with: {EDITABLE_INSTALL}\n" + "\n".join(missing))
    assert len(lines) == 1 and "user_code.py:12:" in lines[0] and "[assignment]" in lines[0], \
        "\n".join(lines) or r.stdout + r.stderr


def test_readme_installs_the_way_static_tools_follow():
    """The README's and CI's install commands are the one the test above needs."""
    assert EDITABLE_INSTALL in (ROOT / "README.md").read_text(encoding="utf-8")
    assert EDITABLE_INSTALL.replace("python -m pip install -e", "python -m pip install -q -e") \
        in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
