"""fastdl: the deep-learning stack of "Deep Learning from Scratch" with the book's API,
on switchable kernels (``"numpy"`` reference, ``"numba"`` compiled CPU, ``"cuda"``).

>>> import fastdl
>>> from fastdl.nets import SimpleConvNet
>>> with fastdl.using_backend("numpy"):
...     pass  # run anything on the reference kernels

``import fastdl`` imports NumPy only; a backend's kernels are imported the
first time that backend is used.
"""
import sys as _sys

from ._layout import register_source_kernels as _register_source_kernels

_register_source_kernels(_sys.modules[__name__])  # fastdl.kernels when run from the checkout
from .backend import (BackendError, available_backends, current_backend, set_backend,  # noqa: E402
                      using_backend)
from . import functions, gradient, layers, optimizers, util, perceptron, nets  # noqa: E402
from .nets import load_model  # noqa: E402
from . import callbacks  # noqa: E402  (fastdl.trainer's callbacks; imports nothing heavy)

__version__ = "0.1.0"  # the one place the version is written; pyproject.toml reads it
"""The version of fastdl (the distribution ``fastdl-book``)."""


def __getattr__(name: str) -> object:
    # fastdl.explain (the report of fastdl explain) is imported on first use only
    if name == "explain":
        import importlib
        return importlib.import_module(".explain", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BackendError", "available_backends", "current_backend", "set_backend", "using_backend",
           "functions", "gradient", "layers", "optimizers", "util", "perceptron", "nets", "load_model",
           "callbacks", "__version__"]
