"""Run a script written for the book's repository on fastdl, unmodified.

    python -m fastdl.book [--backend NAME] [--sample] SCRIPT [ARGS...]

The script's ``import common.layers``, ``from common.functions import *``,
``from common.optimizer import *``, ``from dataset.mnist import load_mnist``
and the other ``common.*`` modules resolve to fastdl's implementations, even
when the script's folder sits next to a ``common/`` directory of its own (an
import hook placed before ``sys.path`` answers for those names). Star imports
export what the book's modules export, ``np`` included. Everything else, such
as the script's sibling modules, is imported as usual from the script's
folder. ``--backend`` (or ``FASTDL_BACKEND``) selects the kernels; ``--sample``
(or ``FASTDL_MNIST=sample``) makes ``load_mnist`` use the MNIST sample that
ships with fastdl instead of downloading the full set.

In a notebook (the book's ``notebooks/*.ipynb`` or your own), run
``%load_ext fastdl.book`` in the first cell: the same importer is installed in
the kernel, and ``%fastdl_book --sample`` / ``--backend NAME`` change the
settings. ``fastdl.book.install()`` does the same from plain Python.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import runpy
import sys
from collections import OrderedDict
from types import ModuleType
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ._text import one_line

USAGE = "usage: python -m fastdl.book [--backend NAME] [--sample] SCRIPT [ARGS...]"
"""The command line's usage line (printed with ``--help`` and with usage errors)."""


def _names(module_name: str) -> Dict[str, Any]:
    mod = importlib.import_module(module_name)
    return {n: getattr(mod, n) for n in getattr(mod, "__all__", [])}


def _shim_contents() -> Dict[str, Any]:
    """module name -> namespace of the shim standing in for the book's module."""
    functions = _names("fastdl.functions")
    util = _names("fastdl.util")
    gradient = _names("fastdl.gradient")
    layers = _names("fastdl.layers")
    optimizer = _names("fastdl.optimizers")
    from fastdl.datasets import load_mnist
    from fastdl.nets import MultiLayerNet, MultiLayerNetExtend
    from fastdl.trainer import Trainer
    base = {"np": np}
    return {
        "common": None,
        "common.functions": {**base, **functions},
        "common.util": {**base, **util},
        "common.gradient": {**base, **gradient},
        # the book's layers.py star-imports common.functions and imports im2col/col2im
        "common.layers": {**base, **functions, "im2col": util["im2col"], "col2im": util["col2im"], **layers},
        "common.optimizer": {**base, **optimizer},
        "common.multi_layer_net": {**base, "OrderedDict": OrderedDict, **layers,
                                   "numerical_gradient": gradient["numerical_gradient"],
                                   "MultiLayerNet": MultiLayerNet},
        "common.multi_layer_net_extend": {**base, "OrderedDict": OrderedDict, **layers,
                                          "numerical_gradient": gradient["numerical_gradient"],
                                          "MultiLayerNetExtend": MultiLayerNetExtend},
        "common.trainer": {**base, **optimizer, "Trainer": Trainer},
        "dataset": None,
        "dataset.mnist": {"np": np, "load_mnist": load_mnist},
    }


class BookImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of the book's ``common`` and ``dataset`` packages with fastdl's shims."""

    def __init__(self) -> None:
        self._contents: Optional[Dict[str, Any]] = None

    def _table(self) -> Dict[str, Any]:
        if self._contents is None:
            self._contents = _shim_contents()
        return self._contents

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        """A spec for ``common``, ``dataset`` and their shimmed submodules; None for anything else
        (the next finder on ``sys.meta_path`` is asked, as usual)."""
        if fullname.split(".")[0] not in ("common", "dataset"):
            return None
        table = self._table()
        if fullname not in table:
            return None            # e.g. common.something_else: let the normal import fail or find it
        is_pkg = table[fullname] is None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_pkg)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """None: the import system creates the module as usual."""
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Fill ``module`` with the names of fastdl's implementation of it (a package gets an empty
        ``__path__``)."""
        contents = self._table()[module.__name__]
        if contents is None:
            module.__path__ = []
            return
        module.__dict__.update(contents)
        setattr(module, "__fastdl_shim__", True)     # marks the module as fastdl's shim


def install(backend: Optional[str] = None, sample: Optional[bool] = None) -> BookImporter:
    """Make ``common.*`` and ``dataset.*`` imports resolve to fastdl in this process.

    Puts the importer first on ``sys.meta_path`` (idempotent) and forgets any of the
    book's own modules imported earlier; returns the importer. ``backend`` selects the
    kernels (as ``fastdl.set_backend``); ``sample=True`` makes ``load_mnist`` use the
    shipped MNIST sample (``FASTDL_MNIST=sample``), ``False`` the full set.
    This is what ``python -m fastdl.book`` and ``%load_ext fastdl.book`` do.
    """
    if backend:
        import fastdl
        fastdl.set_backend(backend)
    if sample is not None:
        os.environ["FASTDL_MNIST"] = "sample" if sample else "full"
    for finder in sys.meta_path:
        if isinstance(finder, BookImporter):
            return finder
    finder = BookImporter()
    sys.meta_path.insert(0, finder)
    _forget_book_modules()
    return finder


def _forget_book_modules() -> None:
    for name in [m for m in sys.modules if m.split(".")[0] in ("common", "dataset")]:
        del sys.modules[name]          # forget any of the book's own modules imported earlier


def uninstall() -> None:
    """Undo ``install``: the book's own ``common``/``dataset`` folders are imported again."""
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, BookImporter)]
    _forget_book_modules()


def _status() -> str:
    from fastdl import backend as _backend
    data = "the shipped sample" if os.environ.get("FASTDL_MNIST", "").strip().lower() == "sample" \
        else "the full set (downloaded on first use)"
    return (f"fastdl.book: common.* and dataset.* now come from fastdl (backend "
            f"{_backend.current_backend()!r}; load_mnist uses {data})")


def _magic(line: str) -> None:
    """``%fastdl_book [--sample|--full] [--backend NAME] [--off]``: change the settings in a notebook."""
    words = line.split()
    sample, backend, off = None, None, False
    while words:
        w = words.pop(0)
        if w == "--sample":
            sample = True
        elif w == "--full":
            sample = False
        elif w == "--off":
            off = True
        elif w == "--backend" and words:
            backend = words.pop(0)
        elif w.startswith("--backend="):
            backend = w.split("=", 1)[1]
        else:
            raise ValueError(f"%fastdl_book: unknown option {w!r}; use --sample, --full, "
                             "--backend NAME or --off")
    if off:
        uninstall()
        print("fastdl.book: off; common.* and dataset.* are imported from the book's folders again")
        return
    install(backend=backend, sample=sample)
    print(_status())


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext fastdl.book`` in a notebook (IPython or Jupyter): from then on the book's
    ``from common.layers import *``, ``from dataset.mnist import load_mnist`` and the other
    ``common.*`` imports give fastdl's implementations, as ``python -m fastdl.book`` does for
    scripts. Adds the line magic ``%fastdl_book [--sample|--full] [--backend NAME] [--off]``.
    ``FASTDL_MNIST`` and ``FASTDL_BACKEND`` are read as usual."""
    install()
    ipython.register_magic_function(_magic, magic_kind="line", magic_name="fastdl_book")
    print(_status())


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext fastdl.book``: :func:`uninstall` (the ``%fastdl_book`` magic stays defined)."""
    uninstall()


def run(script: str, args: Sequence[str] = (), backend: Optional[str] = None,
        sample: bool = False) -> None:
    """Run ``script`` as __main__ with fastdl standing in for the book's modules."""
    if not os.path.isfile(script):
        raise FileNotFoundError(f"no such script: {script}")
    install(backend=backend, sample=True if sample else None)
    script = os.path.abspath(script)
    sys.argv = [script, *args]
    sys.path[0:1] = [os.path.dirname(script)]     # as `python SCRIPT` would set it
    runpy.run_path(script, run_name="__main__")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``python -m fastdl.book``: exit status 2 with one line on stderr for a usage error (unknown
    option, missing or unavailable backend, no or missing script), 130 on Ctrl-C; otherwise what
    the script does (its own errors give Python's usual traceback, as ``python SCRIPT`` would)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    backend, sample = None, False

    def usage_error(message: str) -> int:
        print(f"fastdl.book: {message} ({USAGE})", file=sys.stderr)
        return 2
    while argv and argv[0].startswith("-"):
        opt = argv.pop(0)
        if opt == "--":
            break
        if opt in ("-h", "--help"):
            print(USAGE + "\n\n" + __doc__.split("\n\n", 1)[1])
            return 0
        if opt == "--sample":
            sample = True
        elif opt == "--backend":
            if not argv:
                return usage_error("--backend needs a NAME")
            backend = argv.pop(0)
        elif opt.startswith("--backend="):
            backend = opt.split("=", 1)[1]
        else:
            return usage_error(f"unknown option {opt}")
    if not argv:
        return usage_error("no script given")
    script = argv[0]
    if not os.path.exists(script):
        return usage_error(f"no such script: {script}")
    if not os.path.isfile(script):
        return usage_error(f"{script} is not a file")
    # the backend is checked before the script runs: a bad name is a usage error, not a traceback
    from fastdl import backend as _backend
    try:
        if backend is not None:
            _backend.ops(backend.strip())
            backend = backend.strip()
        elif os.environ.get("FASTDL_BACKEND", "").strip():
            _backend.current_backend()            # checks FASTDL_BACKEND
    except _backend.BackendError as exc:
        print(f"fastdl.book: {one_line(exc)}", file=sys.stderr)
        return 2
    try:
        run(script, argv[1:], backend=backend, sample=sample)
    except KeyboardInterrupt:
        print("\nfastdl.book: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
