"""Run a script written for the book's repository on fastdl, unmodified.

    python -m fastdl.book [--backend NAME] [--sample] SCRIPT [ARGS...]

The script's ``import common.layers``, ``from common.functions import *``,
``from common.optimizer import *``, ``from dataset.mnist import load_mnist``
and the other ``common.*`` modules of the book resolve to fastdl's
implementations, even when the script's folder sits next to a ``common/``
directory of its own (an import hook placed before ``sys.path`` answers for
those names). Star imports export what the book's modules export, ``np``
included. fastdl answers only for the book's module names: any other module
of ``common`` or ``dataset``, such as a ``common/mystuff.py`` of your own next
to the script, is imported from the ``common/`` and ``dataset/`` folders on
``sys.path``, and the script's sibling modules from its folder, as usual.

``--backend`` (or ``FASTDL_BACKEND``) selects the kernels; ``--sample`` (or
``FASTDL_MNIST=sample``) makes ``load_mnist`` use the MNIST sample that ships
with fastdl instead of downloading the full set. The book's
``Trainer(verbose=True)`` prints a line ``train loss:<loss>`` at every step,
as the book's does.

The script runs as ``python SCRIPT ARGS...`` would run it (``sys.argv[0]``
as typed). The processes it starts see the same imports with the same
settings: ``multiprocessing`` children by any start method (spawn,
forkserver, fork) and Python subprocesses (through ``PYTHONPATH``, set while
the script runs and put back afterwards).

In a notebook (the book's ``notebooks/*.ipynb`` or your own), run
``%load_ext fastdl.book`` in the first cell: the same importer is installed in
the kernel, and ``%fastdl_book --sample`` / ``--backend NAME`` change the
settings. ``fastdl.book.install()`` does the same from plain Python.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import io
import os
import re
import sys
import textwrap
from collections import OrderedDict
from types import ModuleType
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ._text import one_line
from .trainer import Trainer

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
        "common.trainer": {**base, **optimizer, "Trainer": BookTrainer},
        "dataset": None,
        "dataset.mnist": {"np": np, "load_mnist": load_mnist},
    }


_ROOTS = ("common", "dataset")


def _own_dirs(package: str) -> list:
    """The folders named ``package`` on ``sys.path`` now (the script's own ``common/``, the book's
    ``common/`` after ``sys.path.append(os.pardir)``, ...), in ``sys.path`` order."""
    found = []
    for entry in sys.path:
        folder = os.path.join(entry or os.getcwd(), package)
        if os.path.isdir(folder) and folder not in found:
            found.append(folder)
    return found


class BookTrainer(Trainer):
    """``common.trainer.Trainer`` under the runner: fastdl's :class:`~fastdl.trainer.Trainer` with
    the book's signature and output.

    The book's ``verbose=True`` (its default) prints a ``train loss:`` line at every step besides
    the epoch lines, which is fastdl's ``verbose="iter"``; every other argument goes to fastdl's
    Trainer as given. The loss on that line is the book's: the step's batch after the update (a
    second forward pass, as the book's Trainer makes; ``train_loss_list`` keeps fastdl's loss
    from before the update).
    """

    def __init__(self, network: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any,
                 epochs: float = 20, mini_batch_size: int = 100, optimizer: Any = "SGD",
                 optimizer_param: Optional[Dict[str, Any]] = None,
                 evaluate_sample_num_per_epoch: Optional[int] = None,
                 verbose: Any = True, **options: Any) -> None:
        super().__init__(network, x_train, t_train, x_test, t_test, epochs=epochs,
                         mini_batch_size=mini_batch_size, optimizer=optimizer,
                         optimizer_param=optimizer_param,
                         evaluate_sample_num_per_epoch=evaluate_sample_num_per_epoch,
                         verbose="iter" if verbose and not isinstance(verbose, str) else verbose,
                         **options)
        self._batch_state: Any = None

    def train_step(self) -> None:
        """fastdl's step; the generator's state before it is kept to know the step's batch."""
        self._batch_state = np.random.get_state()
        super().train_step()

    def _say(self, line: str) -> None:
        if line.startswith("train loss:") and self._batch_state is not None:
            rng = np.random.RandomState()
            rng.set_state(self._batch_state)       # the batch the step drew, drawn again
            mask = rng.choice(self.train_size, self.batch_size)
            line = "train loss:" + str(self.network.loss(self.x_train[mask], self.t_train[mask]))
        super()._say(line)


class BookImporter(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers imports of the book's ``common`` and ``dataset`` packages with fastdl's shims.

    Only the book's module names are answered (``common.layers``, ``dataset.mnist``, ...); any
    other module of those packages (a script's own ``common/mystuff.py``) is looked up in the
    ``common/`` and ``dataset/`` folders on ``sys.path``, as Python would.
    """

    def __init__(self) -> None:
        self._contents: Optional[Dict[str, Any]] = None

    def _table(self) -> Dict[str, Any]:
        if self._contents is None:
            self._contents = _shim_contents()
        return self._contents

    def find_spec(self, fullname: str, path: Optional[Sequence[str]] = None,
                  target: Optional[ModuleType] = None) -> Optional[importlib.machinery.ModuleSpec]:
        """A spec for ``common``, ``dataset`` and their shimmed submodules; for another submodule,
        the spec the ``common``/``dataset`` folders on ``sys.path`` give (None if none has it);
        None for anything else (the next finder on ``sys.meta_path`` is asked, as usual)."""
        root = fullname.split(".")[0]
        if root not in _ROOTS:
            return None
        table = self._table()
        if fullname not in table:
            if fullname.count(".") != 1:
                return None        # deeper: found through its own package's __path__
            return importlib.machinery.PathFinder.find_spec(fullname, _own_dirs(root))
        is_pkg = table[fullname] is None
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_pkg)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        """None: the import system creates the module as usual."""
        return None

    def exec_module(self, module: ModuleType) -> None:
        """Fill ``module`` with the names of fastdl's implementation of it (a package gets an empty
        ``__path__``: its other modules are found by :meth:`find_spec`)."""
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


class _ChildHook:
    """Goes to every child that ``multiprocessing`` starts by spawn or forkserver while a script runs
    through :func:`run` (in the data the child reads before it imports the script): unpickling it
    calls :func:`_install_in_child`, so the child's ``common.*`` imports resolve as the parent's."""

    def __reduce__(self) -> Any:
        return (_install_in_child, ())


def _install_in_child() -> None:
    """Install the importer in a child process; the settings come from the environment the
    runner gave it (``FASTDL_BACKEND``, ``FASTDL_MNIST``)."""
    install()


# The package __init__ of the bootstrap folder (see _bootstrap_folder): a Python process started by
# the script finds it on PYTHONPATH, and importing it puts fastdl's importer in place of itself.
_BOOTSTRAP_INIT = """\
# Written by fastdl.book for the processes a script run through it starts; removed afterwards.
import importlib, sys
import fastdl.book
fastdl.book.install()                       # also forgets this module
sys.modules[__name__] = importlib.import_module(__name__)
"""


def _bootstrap_folder(parent: str) -> str:
    """A folder holding ``common/__init__.py`` and ``dataset/__init__.py`` that install fastdl's
    importer when imported (for Python processes that do not come from ``multiprocessing``,
    and for the forkserver's server process)."""
    for package in _ROOTS:
        os.makedirs(os.path.join(parent, package))
        with open(os.path.join(parent, package, "__init__.py"), "w", encoding="utf-8") as f:
            f.write(_BOOTSTRAP_INIT)
    return parent


class _ChildSettings:
    """While a script runs: the environment its child processes inherit (``FASTDL_BACKEND``,
    ``FASTDL_MNIST``, ``PYTHONPATH`` with the bootstrap folder first) and the hook in
    ``multiprocessing``'s spawn data; everything is put back as it was on exit."""

    def __init__(self, backend: Optional[str], sample: bool) -> None:
        self.env = {}
        if backend:
            self.env["FASTDL_BACKEND"] = backend
        if sample:
            self.env["FASTDL_MNIST"] = "sample"
        self.saved_env: Dict[str, Optional[str]] = {}
        self.folder: Optional[str] = None
        self.saved_prep: Any = None

    def __enter__(self) -> "_ChildSettings":
        import tempfile
        import multiprocessing.spawn as mp_spawn
        self.folder = _bootstrap_folder(tempfile.mkdtemp(prefix="fastdl-book-"))
        env = dict(self.env)
        old_path = os.environ.get("PYTHONPATH")
        env["PYTHONPATH"] = self.folder + (os.pathsep + old_path if old_path else "")
        for key, value in env.items():
            self.saved_env[key] = os.environ.get(key)
            os.environ[key] = value
        self.saved_prep = original = mp_spawn.get_preparation_data

        def get_preparation_data(name: str) -> Dict[str, Any]:
            data = original(name)
            data["fastdl_book"] = _ChildHook()      # multiprocessing's prepare() ignores the key
            return data
        mp_spawn.get_preparation_data = get_preparation_data
        return self

    def __exit__(self, *exc: Any) -> None:
        import shutil
        import multiprocessing.spawn as mp_spawn
        mp_spawn.get_preparation_data = self.saved_prep
        for key, value in self.saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _run_as_main(path: str) -> None:
    """Run the file at ``path`` as a fresh ``__main__`` module, as ``runpy.run_path`` does, but
    leaving ``sys.argv[0]`` as the caller set it (run_path sets it to ``path``)."""
    with io.open_code(path) as f:
        source = f.read()
    code = compile(source, path, "exec", dont_inherit=True)
    main = ModuleType("__main__")
    main.__dict__.update(__file__=path, __cached__=None, __loader__=None, __package__=None,
                         __spec__=None)
    saved = sys.modules.get("__main__")
    sys.modules["__main__"] = main
    try:
        exec(code, main.__dict__)
    finally:
        if saved is not None:
            sys.modules["__main__"] = saved


def run(script: str, args: Sequence[str] = (), backend: Optional[str] = None,
        sample: bool = False) -> None:
    """Run ``script`` as ``__main__`` with fastdl standing in for the book's modules.

    As ``python SCRIPT ARGS...`` would: ``sys.argv`` is ``[script, *args]`` with ``script`` as
    given, ``sys.path[0]`` the script's folder (symbolic links resolved) and ``__file__`` its
    absolute path. Child processes the script starts (``multiprocessing`` with any start method,
    or a Python subprocess) import ``common.*`` and ``dataset.*`` the same way, with the same
    backend and data. Afterwards ``sys.argv``, ``sys.path``, the environment, ``sys.meta_path``
    and the backend in force are as before.
    """
    if not os.path.isfile(script):
        raise FileNotFoundError(f"no such script: {script}")
    installed_before = any(isinstance(f, BookImporter) for f in sys.meta_path)
    saved_argv, saved_path = sys.argv, sys.path[:]
    saved_mnist = os.environ.get("FASTDL_MNIST")
    saved_backend = None
    if backend:
        from fastdl import backend as _backend
        saved_backend = _backend.current_backend()
    install(backend=backend, sample=True if sample else None)
    sys.argv = [script, *args]
    sys.path[0:1] = [os.path.dirname(os.path.realpath(script))]     # as `python SCRIPT` sets it
    try:
        with _ChildSettings(backend, sample):
            _run_as_main(os.path.join(os.getcwd(), script))
    finally:
        sys.argv = saved_argv
        sys.path[:] = saved_path
        if saved_mnist is None:
            os.environ.pop("FASTDL_MNIST", None)
        else:
            os.environ["FASTDL_MNIST"] = saved_mnist
        if not installed_before:
            uninstall()
        if saved_backend is not None:
            import fastdl
            fastdl.set_backend(saved_backend)


def _plain(text: str) -> str:
    """reST markup as a terminal shows it: ````code```` and ``:func:`name``` become the bare text."""
    text = re.sub(r":\w+:`~?([^`]+)`", r"\1", text)
    text = re.sub(r"``([^`]+)``", r"\1", text)
    paragraphs = [p if p.startswith(" ") else textwrap.fill(" ".join(p.split()), width=79)
                  for p in text.strip("\n").split("\n\n")]       # refilled: the markup is gone
    return "\n\n".join(paragraphs)


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
            print(USAGE + "\n\n" + _plain(__doc__.split("\n\n", 2)[2]))
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
    # run as fastdl.book (not as this copy named __main__), so that what goes to child processes
    # by reference (the hook, the importer's class) is found under its own name there
    from fastdl.book import main as _main
    sys.exit(_main())
