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

ROOT = Path(__file__).resolve().parent.parent


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
