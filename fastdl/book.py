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
"""
import importlib
import importlib.abc
import importlib.machinery
import os
import runpy
import sys
from collections import OrderedDict

import numpy as np

USAGE = "usage: python -m fastdl.book [--backend NAME] [--sample] SCRIPT [ARGS...]"


def _names(module_name):
    mod = importlib.import_module(module_name)
    return {n: getattr(mod, n) for n in getattr(mod, "__all__", [])}


def _shim_contents():
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

    def __init__(self):
        self._contents = None

    def _table(self):
        if self._contents is None:
            self._contents = _shim_contents()
        return self._contents

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] not in ("common", "dataset"):
            return None
        table = self._table()
        if fullname not in table:
            return None            # e.g. common.something_else: let the normal import fail or find it
        is_pkg = table[fullname] is None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_pkg)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        contents = self._table()[module.__name__]
        if contents is None:
            module.__path__ = []
            return
        module.__dict__.update(contents)
        module.__fastdl_shim__ = True


def install():
    """Put the importer first on sys.meta_path (idempotent); returns it."""
    for finder in sys.meta_path:
        if isinstance(finder, BookImporter):
            return finder
    finder = BookImporter()
    sys.meta_path.insert(0, finder)
    for name in [m for m in sys.modules if m.split(".")[0] in ("common", "dataset")]:
        del sys.modules[name]          # forget any of the book's own modules imported earlier
    return finder


def run(script, args=(), backend=None, sample=False):
    """Run ``script`` as __main__ with fastdl standing in for the book's modules."""
    import fastdl
    if not os.path.isfile(script):
        raise FileNotFoundError(f"no such script: {script}")
    if backend:
        fastdl.set_backend(backend)
    if sample:
        os.environ["FASTDL_MNIST"] = "sample"
    install()
    script = os.path.abspath(script)
    sys.argv = [script, *args]
    sys.path[0:1] = [os.path.dirname(script)]     # as `python SCRIPT` would set it
    runpy.run_path(script, run_name="__main__")


def main(argv=None):
    argv = list(sys.argv[1:] if argv is None else argv)
    backend, sample = None, False
    while argv and argv[0].startswith("-"):
        opt = argv.pop(0)
        if opt in ("-h", "--help"):
            print(USAGE + "\n\n" + __doc__.split("\n\n", 1)[1])
            return 0
        if opt == "--sample":
            sample = True
        elif opt == "--backend" and argv:
            backend = argv.pop(0)
        elif opt.startswith("--backend="):
            backend = opt.split("=", 1)[1]
        else:
            print(f"fastdl.book: unknown option {opt}\n{USAGE}", file=sys.stderr)
            return 2
    if not argv:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        run(argv[0], argv[1:], backend=backend, sample=sample)
    except FileNotFoundError as exc:
        print(f"fastdl.book: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
