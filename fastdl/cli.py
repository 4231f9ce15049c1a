"""The ``fastdl`` command line: ``fastdl train``, ``fastdl evaluate``, ``fastdl predict`` (fastdl/_predict.py),
``fastdl compare``, ``fastdl search``, ``fastdl info``.

Rules every command follows:

* Every argument and every output path is checked before any work (argparse ``type=``
  functions for the numbers, ``_check_output`` for ``--save`` / ``--plot``).
* Exit status: 0 success; 1 a failure (training diverged or failed, an unreadable parameter
  file, a file that could not be written, a result that differs from the reference);
  2 a usage error (bad argument, missing input file, output folder missing or not writable,
  unavailable backend or data set, an environment variable such as FASTDL_DOWNLOAD_DEADLINE
  or FASTDL_CLUSTER that holds an unusable value); 130 Ctrl-C; 143 SIGTERM. Each ends with one line on
  stderr, never a traceback (``FASTDL_TRACEBACK=1`` shows one for an unexpected error).
* ``fastdl train`` never loses what it learned once training has started: after Ctrl-C,
  SIGTERM or an error the parameters go to ``--save``; if that cannot be written they go to
  ``./fastdl-rescue-<time>-<pid>.npz`` (or the temporary folder) and the message says where.
  A diverged run (non-finite loss) stops at once and its parameters are kept for inspection
  next to ``--save`` as ``<name>.diverged.npz``, never in place of ``--save``.
"""
from __future__ import annotations

import argparse
import difflib
import math
import os
import platform
import re
import signal
import sys
import tempfile
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

from ._text import one_line
from .backend import BACKENDS, DEFAULT_BACKEND
from .trainer import OPTIMIZER_NAMES

NET_CHOICES = ("simple", "deep", "two")
DATA_CHOICES = ("sample", "mnist", "fashion")
DTYPE_CHOICES = ("float32", "float64")
COMPARE_NETS = ("simple", "deep")
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143


class UsageError(Exception):
    """A mistake in the command line found after parsing: one line on stderr, exit status 2."""


class Failure(Exception):
    """The command could not do its work: one line on stderr, exit status 1."""


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt (a BaseException, so no ``except Exception`` eats it)."""


# -- argument types: argparse turns an ArgumentTypeError into "argument --x: <message>", exit 2 --
def _whole_number(text: Any, minimum: int, maximum: Optional[int] = None) -> int:
    try:
        value = int(str(text).strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise argparse.ArgumentTypeError(f"must be a whole number {bound}, got {text}")
    return value


def positive_int(text: str) -> int:
    """A whole number >= 1 (epochs, batch sizes, repetitions)."""
    return _whole_number(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number >= 0 (--eval-samples, where 0 means all)."""
    return _whole_number(text, 0)


def seed_int(text: str) -> int:
    """A seed NumPy's legacy RNG accepts: 0 <= seed < 2**32."""
    return _whole_number(text, 0, 2**32 - 1)


def positive_float(text: str) -> float:
    """A finite number > 0 (learning rates): not 0, negative, NaN or infinity."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def net_list(text: str) -> List[str]:
    """--nets of fastdl compare: comma-separated names from COMPARE_NETS, at least one, no repeats."""
    names = []
    for name in (n.strip() for n in str(text).split(",")):
        if not name:
            continue
        if name not in COMPARE_NETS:
            raise argparse.ArgumentTypeError(f"unknown net {name!r}; choose from {', '.join(COMPARE_NETS)}")
        if name not in names:
            names.append(name)
    if not names:
        raise argparse.ArgumentTypeError(f"no net named in {text!r}; choose from {', '.join(COMPARE_NETS)}")
    return names


def optimizer_name(text: str) -> str:
    """--optimizer: a name of fastdl.optimizers in any case (Adam, adam, ADAM), as lower case."""
    name = str(text).strip().lower()
    if name == "rmsprpo":                       # the book's spelling
        return "rmsprop"
    if name not in OPTIMIZER_NAMES:
        guess = _closest(name, OPTIMIZER_NAMES)
        hint = f"did you mean {guess!r}? " if guess else ""
        raise argparse.ArgumentTypeError(f"unknown optimizer {text!r}; {hint}(choose from {', '.join(OPTIMIZER_NAMES)})")
    return name


def data_source(text: str) -> str:
    """--data of fastdl train / evaluate: sample, mnist, fashion (any case), or an .npz file of one's own."""
    from ._userdata import is_data_file
    name = str(text).strip()
    if name.lower() in DATA_CHOICES:
        return name.lower()
    if is_data_file(name):
        if not os.path.isfile(name):
            raise argparse.ArgumentTypeError(f"no such file: {name} (an .npz with x_train, t_train, x_test, "
                                             f"t_test)" if not os.path.isdir(name) else f"{name} is a folder")
        return name
    guess = _closest(name, DATA_CHOICES)
    hint = f"did you mean {guess!r}? " if guess else ""
    raise argparse.ArgumentTypeError(f"unknown data set {name!r}; {hint}(choose from {', '.join(DATA_CHOICES)}, "
                                     f"or give FILE.npz)")


def val_fraction(text: str) -> float:
    """--val-split: the fraction of the training images held out for validation, 0 < F < 1."""
    try:
        value = float(str(text).strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a fraction such as 0.1, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1 (such as 0.1), got {text}")
    return value


def lr_schedule(text: str) -> Tuple[str, float, float]:
    """--lr-schedule: ``step:EPOCHS:GAMMA`` (multiply the learning rate by GAMMA every EPOCHS epochs)
    or ``cosine`` (cosine decay to 0 over the run) -> ("step", epochs, gamma) or ("cosine", 0, 0)."""
    parts = [p.strip() for p in str(text).strip().split(":")]
    kind = parts[0].lower()
    if kind == "cosine" and len(parts) == 1:
        return ("cosine", 0.0, 0.0)
    if kind == "step" and len(parts) == 3:
        every = _whole_number(parts[1], 1)
        try:
            gamma = float(parts[2])
        except ValueError:
            gamma = math.nan
        if not (0 < gamma <= 1):
            raise argparse.ArgumentTypeError(f"step:EPOCHS:GAMMA needs a GAMMA in (0, 1] such as 0.5, got {parts[2]!r}")
        return ("step", float(every), gamma)
    if kind == "step":
        raise argparse.ArgumentTypeError(f"expected step:EPOCHS:GAMMA such as step:5:0.5, got {text!r}")
    guess = _closest(kind, ("step", "cosine"))
    hint = f"did you mean {guess!r}? " if guess else ""
    raise argparse.ArgumentTypeError(f"unknown schedule {text!r}; {hint}(use step:EPOCHS:GAMMA such as "
                                     f"step:5:0.5, or cosine)")


def search_param(text: str) -> Tuple[str, Tuple[float, float, str]]:
    """--param of fastdl search: NAME=LOW:HIGH[:log|linear] or NAME=VALUE -> (name, (low, high, scale))."""
    from fastdl.search import parse_param
    try:
        return parse_param(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def layer_sizes(text: str) -> List[int]:
    """--hidden of fastdl search: comma-separated layer sizes, each a whole number >= 1."""
    parts = [p.strip() for p in str(text).split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError(f"expected layer sizes such as 100,100,100, got {text!r}")
    return [_whole_number(p, 1) for p in parts]


_CLUSTER = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):[0-9]{1,5}$")


def cluster_address(text: str) -> str:
    """--cluster of fastdl search: a Dask scheduler's address (tcp://HOST:PORT, or HOST:PORT), or
    ``local`` to run on this machine even when FASTDL_CLUSTER is set."""
    text = str(text).strip()
    if text == "local":
        return text
    if not _CLUSTER.match(text) or not 0 < int(text.rsplit(":", 1)[1]) < 65536:
        raise argparse.ArgumentTypeError(f"expected a Dask scheduler address such as tcp://10.0.0.5:8786 "
                                         f"(or 'local'), got {text!r}")
    return text


def _closest(word: str, candidates: Sequence[str]) -> Optional[str]:
    """The candidate ``word`` was most likely meant to be (difflib, case ignored), or None."""
    lowered = {c.lower(): c for c in candidates}
    found = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[found[0]] if found else None


_CHOICE = re.compile(r"^argument (?P<arg>.+?): invalid choice: (?P<value>.+?) \(choose from (?P<choices>.+)\)$",
                     re.DOTALL)


def _with_suggestion(message: str) -> str:
    """argparse's message for a bad choice, with "did you mean ...?" when one choice is close."""
    m = _CHOICE.match(message.strip())
    if not m:
        return message
    value = m["value"].strip("'\"")
    choices = [c.strip().strip("'\"") for c in m["choices"].split(",")]
    listed = ", ".join(choices)
    if m["arg"] == "COMMAND":
        head = f"unknown command {value!r}"
    else:
        head = f"argument {m['arg']}: unknown value {value!r}"
    guess = _closest(value, choices)
    return f"{head}; did you mean {guess!r}? (choose from {listed})" if guess else f"{head}; choose from {listed}"


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: ``fastdl train: argument --epochs: ... (see fastdl train --help)``,
    and "did you mean" for a misspelt option, command or choice."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: {one_line(_with_suggestion(message))} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        ns, extras = self.parse_known_args(args, namespace)
        if extras:
            parser = self
            command = getattr(ns, "command", None)
            for action in self._actions:
                if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                    parser = action.choices[command]
            parser.error(_unknown(parser, extras))
        return ns


def _unknown(parser: argparse.ArgumentParser, extras: Sequence[str]) -> str:
    """The message for arguments a parser does not know: the first option with its likely meaning."""
    options = [o[2:] for o in parser._option_string_actions if o.startswith("--")]
    for word in extras:
        if word.startswith("-") and len(word) > 1 and not re.match(r"^-\d", word):
            name = word.split("=", 1)[0]
            guess = _closest(name.lstrip("-"), options)       # the names without their dashes
            return f"unknown option {name}; did you mean --{guess}?" if guess else f"unknown option {name}"
    return f"unexpected argument{'s' if len(extras) > 1 else ''} {' '.join(extras)!r}"


def _check_output(path, flag):
    """Raise UsageError unless ``path`` can be written: a file name (not a folder, not a device),
    in a folder that exists and is writable. Nothing is created."""
    if path is None:
        return
    if not str(path).strip():
        raise UsageError(f"{flag} needs a file name")
    real = os.path.realpath(path)           # a symbolic link is followed, as the writes do
    if os.path.isdir(real):
        raise UsageError(f"{flag} {path}: is a folder; give a file name in it")
    if os.path.exists(real) and not os.path.isfile(real):
        raise UsageError(f"{flag} {path}: exists and is not a regular file")
    folder = os.path.dirname(real)
    if not os.path.exists(folder):
        raise UsageError(f"{flag} {path}: the folder {folder} does not exist")
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: {folder} is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path}: no permission to write in {folder}")


def _rescue_paths():
    """Where parameters go when --save cannot be written: the current folder, else the temporary one."""
    name = f"fastdl-rescue-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.npz"
    return [os.path.join(os.getcwd(), name), os.path.join(tempfile.gettempdir(), name)]


def _save_params(net, path, meta, trainer=None):
    """Save to ``path``; if that fails, to a rescue path. Returns (where it was saved or None,
    the error of the first attempt or None). With ``trainer``, the file is its checkpoint
    (``Trainer.save_checkpoint``: optimizer state and counters too, for --resume) carrying ``meta``."""
    first_error = None
    for target in [path] + _rescue_paths():
        try:
            if trainer is not None:
                saved_meta = getattr(net, "_cli_meta", None)
                if saved_meta is not None:
                    saved_meta.update(meta)
                trainer.save_checkpoint(target)
            else:
                net.save_params(target, meta=meta)
            return target, first_error
        except (OSError, ValueError) as exc:      # ValueError: e.g. a file name NumPy refuses
            if first_error is None:
                first_error = exc
    return None, first_error


class _StopSignals:
    """While training and saving: the first SIGTERM (and the first Ctrl-C outside the Trainer's own
    handler) asks training to stop after the current step, so that what was learned is saved; a
    second one aborts at once (KeyboardInterrupt / Terminated). Only in the main thread, and never
    replacing a signal that is ignored (nohup, background jobs)."""

    def __init__(self, trainer):
        self.trainer = trainer
        self.received = None              # signal.SIGINT / signal.SIGTERM once one arrived
        self._previous = {}

    def _handler(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated()
        self.received = signum
        self.trainer._stop = True
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        _out(f"{name}: finishing the current step and saving ({name} again to abort)")

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                current = signal.getsignal(sig)
                if current is not signal.SIG_IGN and current is not None:
                    self._previous[sig] = signal.signal(sig, self._handler)
        return self

    def __exit__(self, *exc):
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        return False


def _cmd_info(args):
    import numpy as np

    import fastdl
    print(f"fastdl {fastdl.__version__} on Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"current backend: {fastdl.current_backend()}")
    for name in fastdl.backend.BACKENDS:
        try:
            fastdl.backend.ops(name)
            status = "available"
        except fastdl.BackendError as exc:
            status = str(exc).split("; available")[0]
        print(f"  {name:6s} {status}")
    from fastdl.datasets import data_dir
    from .bench import blas_line
    print(blas_line(threads=False))
    if "numba" in fastdl.backend._loaded:
        from fastdl.kernels.cpu import _threads
        print("\n".join(_threads.describe()))      # threads and layer; fork; idle threads
        from fastdl.kernels.cpu import _compile
        ready, cached = _compile.status()
        print(f"compiled kernels: {cached} op/dtype pairs cached, {ready} compiled in this process; "
              f"FASTDL_COMPILE={_compile.mode()} (fastdl warm compiles them all)")
    print(f"data folder: {data_dir()} (FASTDL_DATA_DIR)")
    return 0


def _load_data(name, flatten):
    """``(x, t), (xt, tt)`` of a built-in data set or of a user's .npz file (a UsageError, one line,
    if that file cannot be used)."""
    from fastdl.datasets import load_fashion_mnist, load_mnist
    if name not in DATA_CHOICES:
        from ._userdata import DataFileError, load_npz
        try:
            return load_npz(name, flatten)
        except DataFileError as exc:
            raise UsageError(one_line(exc)) from None
    if name == "fashion":
        return load_fashion_mnist(flatten=flatten)
    return load_mnist(flatten=flatten, sample=(name == "sample"))


def _build_net(name, dtype):
    from fastdl.nets import DeepConvNet, SimpleConvNet, TwoLayerNet
    if name == "simple":
        return SimpleConvNet(dtype=dtype)
    if name == "deep":
        return DeepConvNet(dtype=dtype)
    return TwoLayerNet(input_size=784, hidden_size=50, output_size=10, dtype=dtype)


def _curve(trainer: Any, key: str) -> List[Tuple[float, float]]:
    """(epochs completed, value) of ``key`` (train_acc, val_acc, test_acc) from ``trainer.history``:
    one point per evaluation from epoch 0 (before training) to the end of the run, whose point is
    the final measurement."""
    history = getattr(trainer, "history", None)
    if history is None:                                # a trainer without history: the book's lists
        values = getattr(trainer, key.replace("_acc", "_acc_list"), None) or []
        return [(float(i), float(v)) for i, v in enumerate(values)]
    return [(float(h["epoch"]), float(h[key])) for h in history if h.get(key) is not None]


def _plot(trainer, path, title):
    """Loss and accuracy curves of ``trainer``, written to ``path`` like every fastdl file
    (``fastdl._files.save_figure``). matplotlib was checked for before training."""
    import numpy as np
    from matplotlib.figure import Figure        # no pyplot: no GUI backend, no global state

    from fastdl._files import save_figure
    from fastdl.util import smooth_curve
    fig = Figure(figsize=(10, 4))
    a1, a2 = fig.subplots(1, 2)
    loss = np.array([float(v) for v in trainer.train_loss_list])
    a1.plot(loss, alpha=0.3, label="loss")
    if loss.size >= 11:
        a1.plot(smooth_curve(loss), label="smoothed")
    a1.set_xlabel("iteration")
    a1.set_ylabel("training loss")
    a1.legend()
    for key, style, label in (("train_acc", "o-", "train"), ("val_acc", "^-", "validation"),
                              ("test_acc", "s-", "test")):
        points = _curve(trainer, key)
        if points:
            a2.plot([e for e, _ in points], [v for _, v in points], style, label=label)
    a2.set_xlabel("epochs completed (the last test point: the whole test set)")
    from matplotlib.ticker import MaxNLocator
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1)
    a2.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)


def _out(line):
    """A line on stdout that cannot stop the saving that follows (a closed pipe: `| head`)."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, OSError, ValueError):
        pass


def _diverged_name(path):
    root, ext = os.path.splitext(os.fspath(path))
    return f"{root}.diverged{ext or '.npz'}"


def _all_finite(net):
    import numpy as np

    from fastdl._checks import to_host
    try:
        return all(bool(np.isfinite(to_host(v)).all()) for v in net.params.values())
    except Exception:
        return True                      # cannot tell: do not call it diverged


#: fastdl train's --net names of the networks load_model can rebuild
_NET_NAMES = {"SimpleConvNet": "simple", "DeepConvNet": "deep", "TwoLayerNet": "two"}


def _resume_net(args):
    """The network of --resume FILE, rebuilt from its metadata (``load_model``), and the metadata."""
    import numpy as np

    from fastdl.nets import load_model, read_meta
    try:
        meta = read_meta(args.resume)
        net = load_model(args.resume, dtype=args.dtype)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        text = one_line(exc)
        raise UsageError(text if args.resume in text else f"--resume {args.resume}: {text}") from None
    name = _NET_NAMES.get(type(net).__name__, type(net).__name__)
    if args.net is not None and args.net != name:
        raise UsageError(f"--resume {args.resume} holds {type(net).__name__} (--net {name}), not --net {args.net}; "
                         "leave out --net to continue it")
    args.net = name
    args.dtype = str(np.dtype(net.dtype))
    return net, meta


#: fastdl train's settings that --resume takes from the file when they are not given again
TRAIN_DEFAULTS = {"data": "sample", "optimizer": "adam", "lr": 0.001, "batch_size": 100, "val_split": 0.0,
                  "lr_schedule": None}


def _schedule_text(schedule: Any) -> Optional[str]:
    if schedule is None:
        return None
    kind, every, gamma = schedule
    return "cosine" if kind == "cosine" else f"step:{int(every)}:{gamma:g}"


def _train_settings(args: argparse.Namespace, saved: Any) -> None:
    """Fill the train options not given on the command line: from the settings ``saved`` in the
    file of --resume (``meta["train"]``), else fastdl's defaults. Then check how they combine."""
    saved = saved if isinstance(saved, dict) else {}
    for name, default in TRAIN_DEFAULTS.items():
        if getattr(args, name) is not None:
            continue
        value = saved.get(name, default)
        try:
            if name == "data" and value is not None:
                value = data_source(value)
            elif name == "optimizer" and value is not None:
                value = optimizer_name(value)
            elif name == "lr_schedule" and value is not None:
                value = lr_schedule(value)
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"--resume {args.resume}: its recorded --{name.replace('_', '-')} cannot be used "
                             f"({exc}); give --{name.replace('_', '-')}") from None
        setattr(args, name, value)
    if args.early_stop is not None and not args.val_split:
        raise UsageError("--early-stop needs --val-split F (stopping on the test accuracy would tune on the test "
                         "set); e.g. --val-split 0.1")


def _record_settings(net: Any, args: argparse.Namespace) -> None:
    """Every file this run writes (--save, --checkpoint-dir's best.npz and last.npz) records the
    network's --net name, the data and the settings (``meta["train"]``), so that --resume and
    fastdl evaluate find them."""
    fixed = {"net": args.net, "dtype": args.dtype, "data": args.data,
             "train": {"data": args.data, "optimizer": args.optimizer, "lr": args.lr,
                       "batch_size": args.batch_size, "val_split": args.val_split,
                       "lr_schedule": _schedule_text(args.lr_schedule)}}
    plain = net.save_params

    def save_params(file_name: Any = "params.npz", meta: Any = None, extra: Any = None) -> None:
        return plain(file_name, meta={**fixed, **(meta or {})}, extra=extra)
    net.save_params = save_params
    net._cli_meta = fixed                      # _save_params adds the outcome of the run for --save


def _resume_trainer(trainer, args):
    """Restore the optimizer state, counters and histories of --resume FILE into ``trainer``."""
    try:
        trainer.load_checkpoint(args.resume)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        text = one_line(exc)
        raise UsageError(text if args.resume in text else f"--resume {args.resume}: {text}") from None
    if trainer.current_iter >= trainer.max_iter:
        raise UsageError(f"--resume {args.resume} has already run {trainer.current_epoch} epochs "
                         f"({trainer.current_iter} iterations); pass a larger --epochs to train on")


def _callbacks(args):
    """The callbacks of fastdl.callbacks that --checkpoint-dir, --early-stop and --lr-schedule ask for."""
    wanted: List[Any] = []
    if args.checkpoint_dir is not None or args.early_stop is not None or args.lr_schedule is not None:
        from fastdl import callbacks
        monitor = "val_acc" if args.val_split else "test_acc"
        if args.lr_schedule is not None:
            kind, every, gamma = args.lr_schedule
            wanted.append(callbacks.StepLR(int(every), gamma) if kind == "step"
                          else callbacks.CosineLR(args.epochs))
        if args.early_stop is not None:
            wanted.append(callbacks.EarlyStopping(monitor="val_acc", patience=args.early_stop))
        if args.checkpoint_dir is not None:
            wanted.append(callbacks.ModelCheckpoint(args.checkpoint_dir, monitor=monitor))
    return wanted


def _cmd_train(args):
    # -- every argument and output path is checked before any work -------------------------
    _check_output(args.save, "--save")
    _check_output(args.plot, "--plot")
    if args.save and args.plot and os.path.realpath(args.save) == os.path.realpath(args.plot):
        raise UsageError(f"--save and --plot name the same file ({args.save})")
    if args.plot:
        import importlib.util
        if importlib.util.find_spec("matplotlib") is None:
            raise UsageError("--plot needs matplotlib: python -m pip install matplotlib")
    if args.checkpoint_dir is not None:
        folder = args.checkpoint_dir
        if not os.path.isdir(folder):
            raise UsageError(f"--checkpoint-dir {folder}: no such folder; create it first")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise UsageError(f"--checkpoint-dir {folder}: no permission to write in it")
    if args.resume is not None:
        if not os.path.isfile(args.resume):
            raise UsageError(f"--resume {args.resume}: no such file" if not os.path.exists(args.resume)
                             else f"--resume {args.resume}: not a regular file")
    else:
        _train_settings(args, {})
    import warnings

    import numpy as np

    import fastdl
    from fastdl.trainer import Trainer
    if args.backend:
        fastdl.set_backend(args.backend)
    backend_name = fastdl.current_backend()          # a bad FASTDL_BACKEND is reported here
    np.random.seed(args.seed)
    checkpoint = False                              # --resume FILE holds a Trainer checkpoint
    if args.resume is not None:
        net, resume_meta = _resume_net(args)
        _train_settings(args, resume_meta.get("train") or {})
        checkpoint = isinstance(resume_meta.get("trainer"), dict)
    else:
        args.net = args.net or "simple"
        args.dtype = args.dtype or "float32"
        net = _build_net(args.net, np.dtype(args.dtype))
    flatten = len(net._sample_shape() or (1, 1, 1)) == 1
    (x, t), (xt, tt) = _load_data(args.data, flatten=flatten)
    n_train = len(x) - int(round(len(x) * args.val_split))
    if args.val_split and (n_train < 1 or n_train == len(x)):
        raise UsageError(f"--val-split {args.val_split:g} of {len(x)} training images leaves "
                         f"{'none' if n_train < 1 else 'no image'} for {'training' if n_train < 1 else 'validation'}")
    if args.batch_size > n_train:
        raise UsageError(f"--batch-size {args.batch_size} is larger than the {n_train} training images "
                         f"of --data {args.data}")

    callbacks = _callbacks(args)
    extra = {}
    if args.val_split:
        extra["validation_split"] = args.val_split
    if callbacks:
        extra["callbacks"] = callbacks
    trainer = Trainer(net, x, t, xt, tt, epochs=args.epochs, mini_batch_size=args.batch_size,
                      optimizer=args.optimizer, optimizer_param={"lr": args.lr},
                      evaluate_sample_num_per_epoch=args.eval_samples or None,
                      verbose=not args.quiet, progress=not args.no_progress and sys.stderr.isatty(),
                      stop_on_divergence=True,     # the book's loop would go on with NaN to the end
                      **extra)
    if checkpoint:
        _resume_trainer(trainer, args)
    elif args.resume is not None:
        print(f"note: {args.resume} holds weights only (no optimizer state or epoch count, as Net.save_params "
              "writes them); training starts from those weights with a fresh optimizer", flush=True)
    _record_settings(net, args)
    what = (f"resuming {type(net).__name__} from {args.resume} at epoch {trainer.current_epoch}"
            if args.resume is not None else f"training {type(net).__name__}")
    split = f"{n_train} training, {len(x) - n_train} validation" if args.val_split else f"{len(x)} training"
    print(f"{what} ({args.dtype}, backend {backend_name}) on {args.data}: {split} and {len(xt)} test images, "
          f"{args.epochs} epochs, batch {args.batch_size}, {args.optimizer} lr {args.lr:g}", flush=True)

    # -- training: from here on, what was learned is saved whatever happens ----------------
    acc, error, aborted = None, None, None
    with _StopSignals(trainer) as signals, warnings.catch_warnings():
        # divergence is detected and reported below, in one line; these would only precede it
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message="(SoftmaxWithLoss|overflow encountered|invalid value encountered"
                                        "|divide by zero encountered)")
        start = time.perf_counter()
        try:
            acc = trainer.train()
        except KeyboardInterrupt:                   # a second Ctrl-C: aborted within a step
            aborted = signal.SIGINT
        except Terminated:                          # a second SIGTERM
            aborted = signal.SIGTERM
        except Exception as exc:                    # noqa: BLE001 - reported in one line below
            error = exc
        took = time.perf_counter() - start
        diverged = trainer.divergence          # (iteration, loss) or None
        if error is not None and diverged is None:
            last = float("nan")
            try:
                last = float(trainer.train_loss_list[-1])
            except (TypeError, ValueError, IndexError):
                pass
            if not math.isfinite(last) or not _all_finite(net) or re.search(
                    r"\bnan\b|\binf(inity|inite)?\b|overflow", str(error), re.IGNORECASE):
                diverged = (trainer.current_iter + 1, last)
        stopped_by = aborted or signals.received or (
            signal.SIGINT if trainer.interrupted and diverged is None else None)

        if diverged is not None:
            status = "diverged"
        elif error is not None:
            status = "failed"
        elif stopped_by == signal.SIGTERM:
            status = "terminated"
        elif stopped_by is not None:
            status = "interrupted"
        else:
            status = "finished"
        line = (f"{status} after {trainer.current_iter} iterations in {took:.1f} s "
                f"({trainer.images_per_second:,.0f} images/s)")
        if acc is not None:
            line += f"; test accuracy {acc:.4f} on {len(xt)} images"
        _out(line)

        problems = []
        failed = diverged is not None or error is not None
        if diverged is not None:
            it, loss = diverged
            problems.append(f"training diverged at iteration {it} (loss {loss}): the learning rate "
                            f"--lr {args.lr:g} is likely too high for {args.optimizer}, or the initial "
                            "weights too large; try a smaller --lr")
        elif error is not None:
            problems.append(f"training failed at iteration {trainer.current_iter + 1}: "
                            f"{one_line(error, with_type=True)}")
        elif stopped_by is not None:
            what = "terminated (SIGTERM)" if stopped_by == signal.SIGTERM else "interrupted (Ctrl-C)"
            problems.append(f"{what} after {trainer.current_iter} iterations")

        if args.save:
            target = _diverged_name(args.save) if diverged is not None else args.save
            finite_acc = acc if acc is not None and math.isfinite(acc) else None
            meta = {"net": args.net, "dtype": args.dtype, "data": args.data,
                    "epochs_done": trainer.current_epoch, "iterations": trainer.current_iter,
                    "test_acc": finite_acc, "interrupted": stopped_by is not None}
            if diverged is not None:
                meta["diverged"] = True
            if error is not None:
                meta["error"] = one_line(error, with_type=True)
            saved, save_error = _save_params(net, target, meta, trainer)
            if saved == target:
                if diverged is not None:
                    _out(f"saved the diverged parameters for inspection to {saved} (not to {args.save})")
                    problems.append(f"the diverged parameters were saved for inspection to {saved}, "
                                    f"not to {args.save}")
                else:
                    _out(f"saved parameters to {saved}")
                    if problems:
                        problems.append(f"the parameters learned so far are in {saved}")
            elif saved is not None:
                failed = True
                _out(f"could not write {target}; saved parameters to {saved} instead")
                problems.append(f"could not write {target} ({one_line(save_error)}); the parameters "
                                f"were saved to {saved} instead")
            else:
                failed = True
                problems.append(f"could not save the parameters anywhere ({one_line(save_error)})")
        elif args.checkpoint_dir is not None:
            kept = [os.path.join(args.checkpoint_dir, f) for f in ("last.npz", "best.npz")
                    if os.path.exists(os.path.join(args.checkpoint_dir, f))]
            if kept:
                _out(f"the model is in {' and '.join(kept)} (as of the last epoch's evaluation; --save FILE.npz "
                     "also writes the final parameters)")
            else:
                _out(f"no checkpoint was written to {args.checkpoint_dir}; the parameters were not saved "
                     "(--save FILE.npz saves them)")
        else:
            _out("the trained parameters were not saved (--save FILE.npz saves them)")
        if args.plot and trainer.train_loss_list:
            try:
                _plot(trainer, args.plot, f"{type(net).__name__} on {args.data}")
                _out(f"saved curves to {args.plot}")
            except Exception as exc:                # noqa: BLE001 - the parameters are already saved
                failed = True
                problems.append(f"could not write the plot {args.plot} ({one_line(exc)})")
    if not problems:
        return 0
    print(f"fastdl train: {'; '.join(problems)}", file=sys.stderr)
    if failed:
        return EXIT_FAILURE
    return EXIT_TERMINATED if stopped_by == signal.SIGTERM else EXIT_INTERRUPTED


#: what reading a parameter file that is not one can raise (Net.load_params and read_meta turn
#: most of these into a ValueError naming the file; the rest are caught here as a safety net)
_READ_ERRORS = (ValueError, OSError, KeyError, EOFError, TypeError, AttributeError, IndexError)


def _show_progress(args: argparse.Namespace) -> bool:
    """A progress bar: with --progress, else when stderr is a terminal, never with --no-progress or --json."""
    if getattr(args, "no_progress", False) or getattr(args, "json", False):
        return False
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()


def _accuracy(net, x, t, batch_size, progress):
    """``net.accuracy(x, t)`` in slices of a few batches, with a progress bar on stderr if ``progress``."""
    if not progress:
        return net.accuracy(x, t, batch_size=batch_size)
    from tqdm.auto import tqdm
    n = len(x)
    chunk = batch_size
    correct = 0.0
    with tqdm(total=n, unit="img", desc="evaluating", leave=False, file=sys.stderr, dynamic_ncols=True) as bar:
        for i in range(0, n, chunk):
            part = min(chunk, n - i)
            correct += net.accuracy(x[i:i + part], t[i:i + part], batch_size=batch_size) * part
            bar.update(part)
    return round(correct) / n


def _cmd_evaluate(args):
    import pickle
    import zipfile
    read_errors = _READ_ERRORS + (zipfile.BadZipFile, pickle.UnpicklingError)
    path = args.params
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder, not a parameter file")
    if not os.path.isfile(path):
        raise UsageError(f"{path} is not a regular file")
    import numpy as np

    import fastdl
    from fastdl.nets import read_meta
    if args.backend:
        fastdl.set_backend(args.backend)
    fastdl.current_backend()                           # a bad FASTDL_BACKEND is reported here
    try:
        meta = read_meta(path)
    except read_errors as exc:
        text = one_line(exc)
        raise Failure(text if path in text else f"cannot read {path}: {text}") from None
    net_name = args.net or meta.get("net")
    if net_name not in NET_CHOICES and not meta:
        with open(path, "rb") as f:
            head = f.read(4)
        if not head.startswith(b"PK"):          # read_meta passes only .npz archives and pickles
            raise Failure(f"{path} is a pickle (as the book's scripts write), not the .npz that "
                          "fastdl train --save writes; fastdl evaluate does not unpickle files")
    model = meta.get("model")
    other = net_name is None and isinstance(model, dict) and model.get("class") not in _NET_NAMES
    if net_name not in NET_CHOICES and not other:
        raise UsageError(f"{path} does not say which network it holds; pass --net ({', '.join(NET_CHOICES)})")
    dtype_name = args.dtype or meta.get("dtype") or "float32"
    if dtype_name not in DTYPE_CHOICES:
        raise UsageError(f"{path} records dtype {dtype_name!r}; pass --dtype float32 or float64")
    data = args.data or meta.get("data") or "sample"
    if data not in DATA_CHOICES and (args.data is None and not os.path.isfile(str(data))):
        raise UsageError(f"{path} records the data set {data!r}, which is not here; pass --data "
                         f"({', '.join(DATA_CHOICES)} or FILE.npz)")
    try:
        if other:                                # a network of fastdl.nets saved from Python (MultiLayerNet...)
            from fastdl.nets import load_model
            net = load_model(path, dtype=dtype_name)
        else:
            net = _build_net(net_name, np.dtype(dtype_name))
            net.load_params(path)
    except read_errors as exc:
        text = one_line(exc)
        hint = ""
        if meta.get("diverged"):
            hint = " (the file holds the parameters of a training run that diverged)"
        elif not args.net and ("does not fit" in text or "expects" in text):
            hint = f" (the file says it holds --net {net_name}; pass --net if that is wrong)"
        into = (model or {}).get("class") if other else {"simple": "SimpleConvNet", "deep": "DeepConvNet",
                                                          "two": "TwoLayerNet"}.get(str(net_name))
        raise Failure(f"cannot load {path} into {into}: {text}{hint}") from None
    _, (xt, tt) = _load_data(data, flatten=len(net._sample_shape() or (1, 1, 1)) == 1)
    start = time.perf_counter()
    acc = _accuracy(net, xt, tt, args.batch_size, _show_progress(args))
    took = time.perf_counter() - start
    print(f"{type(net).__name__} from {path}: test accuracy {acc:.4f} on {len(xt)} {data} test images "
          f"({took:.2f} s, backend {fastdl.current_backend()})")
    return 0


def _cmd_compare(args):
    import json as _json

    import fastdl
    from fastdl import compare
    nets = args.nets                              # checked by net_list: known names, at least one
    backends = None
    if args.backends is not None:
        backends = []
        for b in (b.strip() for b in args.backends.split(",")):
            if b and b not in backends:
                backends.append(b)
        if not backends:
            raise UsageError(f"--backends {args.backends!r} names no backend; available backends: "
                             f"{', '.join(fastdl.backend.available_backends())}")
        for b in backends:
            fastdl.backend.ops(b)                 # raises BackendError naming the available ones
    bar = None
    if _show_progress(args):
        from tqdm.auto import tqdm
        total = compare.planned_steps(nets, backends, torch=not args.no_torch, rounds=args.rounds)
        bar = tqdm(total=total, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)

    def progress(msg):
        if bar is not None:
            bar.set_description_str(f"timing {msg}", refresh=False)
            bar.update(1)
        elif not args.json:
            print(f"timing {msg}", file=sys.stderr, flush=True)
    from .bench import StepTimingError
    try:
        results = compare.run(nets=nets, batch=args.batch_size, dtype=args.dtype, repeat=args.repeat,
                              backends=backends, torch=not args.no_torch, progress=progress, rounds=args.rounds)
    except StepTimingError as exc:
        raise Failure(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(_json.dumps({"dtype": args.dtype, "batch": args.batch_size, "repeat": args.repeat,
                           "rounds": args.rounds, "method": compare.method(args.rounds),
                           "results": results}, indent=1))
    else:
        import numba
        print(f"fastdl {fastdl.__version__}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, {numba.get_num_threads()} Numba threads; times are medians, "
              f"'x' is the speed-up over numpy, max|diff| the largest difference from numpy's results")
        from .bench import blas_line
        print(blas_line())
        print(f"Method: {compare.method(args.rounds)}.")
        print(compare.format_table(results, args.dtype, args.batch_size, args.repeat))
        if "torch" not in {b for r in results for b in r["times"]} and not args.no_torch:
            print("\n(PyTorch not installed: `pip install torch==2.13.0` adds it as a peer)")
    bad = [r["what"] for r in results if not r["ok"]]
    if bad:
        print(f"fastdl compare: results differ from the reference beyond tolerance: {bad}", file=sys.stderr)
        return 1
    return 0


def _cmd_search(args):
    # -- every argument and output path is checked before any work -------------------------
    cluster, where = args.cluster, "--cluster"
    if cluster is None and os.environ.get("FASTDL_CLUSTER", "").strip():
        where = "FASTDL_CLUSTER"
        try:
            cluster = cluster_address(os.environ["FASTDL_CLUSTER"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"FASTDL_CLUSTER: {exc}") from None
    if cluster == "local":
        cluster = None
    if cluster is not None and args.workers is not None:
        raise UsageError(f"--workers is for local runs ({where} sends the trials to a Dask cluster, whose "
                         "workers are started with `dask worker`); pass --cluster local to run here")
    outputs = [(args.out, "--out"), (args.plot, "--plot"), (args.scatter, "--scatter")]
    for path, flag in outputs:
        _check_output(path, flag)
    named = [(os.path.realpath(p), f) for p, f in outputs if p]
    for i, (a, fa) in enumerate(named):
        for b, fb in named[i + 1:]:
            if a == b:
                raise UsageError(f"{fa} and {fb} name the same file ({a})")
    import importlib.util
    if (args.plot or args.scatter) and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot and --scatter need matplotlib: python -m pip install matplotlib")
    if cluster is not None:
        try:
            missing = importlib.util.find_spec("distributed") is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            raise UsageError(f"{where} needs Dask: python -m pip install -e '.[distributed]' (in fastdl's clone)")
    space = {}
    for name, rng in args.param or []:
        if name in space:
            raise UsageError(f"--param {name} is given twice")
        space[name] = rng
    from fastdl import search
    if args.resume and not os.path.exists(args.out):
        print(f"fastdl search: no journal at {args.out} yet; starting the search there", file=sys.stderr)
    try:
        result = search.random_search(
            space=space, trials=args.trials, seed=args.seed, workers=args.workers, cluster=cluster,
            journal=args.out, resume=args.resume, epochs=args.epochs, train_size=args.train_size,
            optimizer=args.optimizer, data=args.data, hidden=args.hidden, batch_size=args.batch_size,
            dtype=args.dtype, backend=args.backend, eval_samples=args.eval_samples or None,
            threads=args.threads, verbose=not args.quiet,
            progress=not args.no_progress and sys.stderr.isatty())
    except (search.SearchUsageError, search.ConfigMismatch, search.JournalExists, search.JournalBusy) as exc:
        raise UsageError(one_line(exc)) from None
    except search.JournalError as exc:
        raise Failure(one_line(exc)) from None
    except search.SchedulerLost as exc:
        partial = getattr(exc, "search_result", None)
        if partial is not None and not partial.trials:
            done = "no trial had finished"
        else:
            done = (f"{len(partial.trials)} of {args.trials} trials are" if partial is not None
                    else "the finished trials are") + f" in {args.out}"
        backend = partial.config["backend"] if partial is not None else args.backend
        print(f"fastdl search: lost the Dask scheduler at {exc.address}; {done}; once it is back "
              f"(or with --cluster local to run here), resume with: {_search_command(args, cluster, backend)}",
              file=sys.stderr)
        return EXIT_FAILURE
    except search.SearchAborted as exc:
        raise (UsageError if exc.usage else Failure)(one_line(exc)) from None
    except (KeyboardInterrupt, Terminated) as exc:
        partial = getattr(exc, "search_result", None)
        how = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        if partial is not None and partial.complete:
            done = f"all {args.trials} trials are in {args.out}; the same command with --resume prints the result"
        else:
            done = (f"{len(partial.trials)} of {args.trials} trials are" if partial is not None
                    else "the finished trials are") + \
                f" in {args.out}; the same command with --resume runs the rest"
        print(f"\nfastdl search: {how}: {done}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_TERMINATED
    _out("=========== Hyper-Parameter Optimization Result ===========")
    table = result.table(args.top)
    if table:
        _out(table)
    _out(result.summary())
    problems = []
    for path, draw in ((args.plot, result.plot_curves), (args.scatter, result.plot_scatter)):
        if not path:
            continue
        try:
            draw(path, args.top)
            _out(f"saved {'curves' if draw == result.plot_curves else 'scatter plot'} to {path}")
        except Exception as exc:                    # noqa: BLE001 - the trials are in the journal
            problems.append(f"could not write {path} ({one_line(exc)})")
    if not result.counts()["ok"]:
        problems.append(f"no trial ended ok (see {args.out})")
    if problems:
        print(f"fastdl search: {'; '.join(problems)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _search_command(args, cluster, backend):
    """The `fastdl search` command that resumes the search of ``args`` (every setting the journal
    compares, its backend and cluster explicit), shell-quoted."""
    import shlex
    words = ["fastdl", "search"]
    for name, (low, high, scale) in args.param or []:
        words += ["--param", f"{name}={low!r}" if low == high else f"{name}={low!r}:{high!r}:{scale}"]
    for flag, value, default in (("--trials", args.trials, None), ("--seed", args.seed, 0),
                                 ("--epochs", args.epochs, 50), ("--train-size", args.train_size, 500),
                                 ("--batch-size", args.batch_size, 100), ("--optimizer", args.optimizer, "sgd"),
                                 ("--hidden", ",".join(map(str, args.hidden)), "100,100,100,100,100,100"),
                                 ("--data", args.data, "sample"), ("--dtype", args.dtype, "float64"),
                                 ("--backend", backend, None), ("--eval-samples", args.eval_samples, 0),
                                 ("--threads", args.threads, None), ("--cluster", cluster, None),
                                 ("--out", args.out, None), ("--top", args.top, 20),
                                 ("--plot", args.plot, None), ("--scatter", args.scatter, None)):
        if value is not None and value != default:
            words += [flag, str(value)]
    words += [flag for flag, on in (("--quiet", args.quiet), ("--no-progress", args.no_progress)) if on]
    return " ".join(shlex.quote(w) for w in words + ["--resume"])


def _add_backend(p):
    p.add_argument("--backend", choices=tuple(BACKENDS), default=None,
                   help=f"kernels to run on (default: FASTDL_BACKEND, else {DEFAULT_BACKEND})")


def _add_dtype(p, default, help=None):
    p.add_argument("--dtype", choices=DTYPE_CHOICES, default=default, help=help or f"default {default}")


def _add_optimizer(p, default, shown=None):
    p.add_argument("--optimizer", default=default, type=optimizer_name, metavar="NAME",
                   help=f"{', '.join(OPTIMIZER_NAMES)} (any case); default {shown or default}")


def _add_verbose(p):
    p.add_argument("-v", "--verbose", action="store_true",
                   help="after an error's one line, the details (such as what each download mirror answered)")


def _add_progress(p):
    p.add_argument("--progress", action="store_true", help="show a progress bar even when stderr is not a terminal")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: one when stderr is a terminal)")


def _add_quiet(p, quiet_help):
    p.add_argument("--quiet", action="store_true", help=quiet_help)
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    """The ``fastdl`` command line: its subcommands and their options."""
    parser = _Parser(
        prog="fastdl",
        description="fastdl: the networks of 'Deep Learning from Scratch' on fast, switchable kernels.",
        epilog="Example: fastdl train --net simple --data sample --epochs 10 --save model.npz --plot curves.png. "
               "Exit status: 0 done, 1 failed, 2 usage error, 130 Ctrl-C, 143 SIGTERM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="show the version, the backends available here and the data folder")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train one of the book's networks on MNIST",
                       description="Train a network with the book's Trainer. Ctrl-C (or SIGTERM) stops after "
                                   "the current step and still saves what was learned. Training stops at the "
                                   "first NaN or infinite loss (exit status 1); the diverged parameters then "
                                   "go to FILE.diverged.npz, not to --save. If --save cannot be written after "
                                   "training, the parameters go to ./fastdl-rescue-<time>-<pid>.npz (or the "
                                   "temporary folder) and the message says where.")
    p.add_argument("--net", choices=NET_CHOICES, default=None,
                   help="simple: SimpleConvNet (ch. 7), deep: DeepConvNet (ch. 8), two: TwoLayerNet (ch. 5). "
                        "Default: simple (with --resume: the file's)")
    p.add_argument("--data", type=data_source, default=None, metavar="sample|mnist|fashion|FILE.npz",
                   help="sample: the 5,000 training images shipped with fastdl and the official 10,000 test "
                        "images (offline); mnist: the full set (downloaded once); fashion: Fashion-MNIST; "
                        "FILE.npz: your own arrays x_train, t_train, x_test, t_test (images (N,1,28,28), "
                        "(N,28,28) or (N,784), uint8 0-255 or floats; labels 0-9 or one-hot). Default: sample")
    p.add_argument("--epochs", type=positive_int, default=10, help="default 10 (with --resume: the total)")
    p.add_argument("--batch-size", type=positive_int, default=None,
                   help="at most the number of training images; default 100")
    _add_optimizer(p, None, "adam")
    p.add_argument("--lr", type=positive_float, default=None, help="learning rate (> 0), default 0.001")
    _add_backend(p)
    _add_dtype(p, None, "default float32 (with --resume: the file's)")
    p.add_argument("--eval-samples", type=non_negative_int, default=1000,
                   help="images used for the per-epoch accuracies (0: all). Default 1000")
    p.add_argument("--seed", type=seed_int, default=0,
                   help="seed of NumPy's RNG (weights, batches, dropout), 0 to 2**32-1; default 0")
    p.add_argument("--save", metavar="FILE.npz",
                   help="save the trained network here, as a checkpoint that --resume continues and evaluate "
                        "and predict read (its folder must exist and be writable)")
    p.add_argument("--plot", metavar="FILE.png",
                   help="save loss and accuracy curves here (needs matplotlib; the folder must exist)")
    p.add_argument("--val-split", type=val_fraction, default=None, metavar="F",
                   help="hold out the last fraction F of the training images (0 < F < 1) and report the "
                        "accuracy on them each epoch (val acc); default: none")
    p.add_argument("--checkpoint-dir", metavar="DIR",
                   help="write DIR/last.npz after every epoch and DIR/best.npz whenever the validation "
                        "accuracy (test accuracy without --val-split) is the best so far; DIR must exist")
    p.add_argument("--resume", metavar="FILE.npz",
                   help="continue a run from a --save file or a checkpoint (DIR/last.npz): its network, "
                        "weights, optimizer state and epoch count, and the --data, --optimizer, --lr, "
                        "--batch-size, --val-split and --lr-schedule it ran with unless given again; "
                        "--epochs is the total")
    p.add_argument("--early-stop", type=positive_int, default=None, metavar="PATIENCE",
                   help="stop when the validation accuracy has not improved for PATIENCE epochs (needs --val-split)")
    p.add_argument("--lr-schedule", type=lr_schedule, default=None, metavar="step:EPOCHS:GAMMA|cosine",
                   help="step:5:0.5 halves the learning rate every 5 epochs; cosine decays it to 0 over the run")
    _add_quiet(p, "no per-epoch lines")
    _add_verbose(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("compare", help="time every layer and a training step on each backend, with correctness",
                       description="Run every layer (forward + backward) and a whole training step of the "
                                   "book's networks under each available backend on identical inputs, and "
                                   "print median times, speed-ups over the numpy reference, and the largest "
                                   "difference from the reference's results. The training step is timed with "
                                   "each backend in its own process (--rounds, backends alternating); "
                                   "PyTorch, when installed, in its own process too. Exit status 1 if a "
                                   "result differs beyond tolerance.")
    p.add_argument("--nets", type=net_list, default=list(COMPARE_NETS),
                   help="comma-separated: simple, deep (default both)")
    p.add_argument("--batch-size", type=positive_int, default=100, help="default 100")
    _add_dtype(p, "float32")
    p.add_argument("--repeat", type=positive_int, default=10, help="timed repetitions per measurement, default 10")
    p.add_argument("--rounds", type=positive_int, default=2,
                   help="training step: processes per backend, alternating backends (each times --repeat "
                        "steps), default 2")
    p.add_argument("--backends", help="comma-separated backends (default: all available here)")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    _add_progress(p)
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("evaluate", help="test accuracy of saved parameters",
                       description="Load parameters saved by `fastdl train --save` and measure test accuracy.")
    p.add_argument("params", help="a .npz file written by fastdl train --save")
    p.add_argument("--net", choices=NET_CHOICES, help="network (default: the one recorded in the file)")
    p.add_argument("--data", type=data_source, metavar="sample|mnist|fashion|FILE.npz",
                   help="test set: a built-in one or FILE.npz's x_test, t_test (default: the one recorded in the file)")
    _add_dtype(p, None, "default: as trained")
    _add_backend(p)
    p.add_argument("--batch-size", type=positive_int, default=500, help="default 500")
    _add_progress(p)
    _add_verbose(p)
    p.set_defaults(func=_cmd_evaluate)

    from ._predict import add_parser as _add_predict
    _add_predict(sub, _Parser, positive_int, _add_backend)
    from .explain._cli import add_parser as _add_explain
    _add_explain(sub)

    from ._profile_cli import add_parser as _add_profile
    _add_profile(sub, positive_int, non_negative_int, _add_backend)
    from ._warm_cli import add_parser as _add_warm
    _add_warm(sub)

    p = sub.add_parser("search", help="the book's hyper-parameter search (ch. 6) on all cores or a Dask cluster",
                       description="Random search over the learning rate and weight decay as in the book's "
                                   "ch06/hyperparameter_optimization.py (its defaults: MultiLayerNet 6x100, 500 "
                                   "training images of which 20% held out, 50 epochs of batch 100, SGD, "
                                   "lr 1e-6:1e-2:log, weight decay 1e-8:1e-4:log, 100 trials, the best 20 "
                                   "printed). Trials run in worker processes on every core (or on a Dask cluster: "
                                   "--cluster / FASTDL_CLUSTER); each trial's seed comes from --seed and its "
                                   "index, so the table is the same with any number of workers. Each finished "
                                   "trial is appended to --out; --resume runs only the trials it lacks. Exit "
                                   "status 1 if no trial ended ok or the Dask scheduler was lost (the line "
                                   "printed then gives the command that resumes).")
    p.add_argument("--param", action="append", type=search_param, metavar="NAME=LOW:HIGH[:log|linear]",
                   help="a range to draw from: lr, weight_decay (wd) or dropout, e.g. lr=1e-6:1e-2; "
                        "without :log or :linear, a range spanning two decades or more (HIGH/LOW >= 100, "
                        "both > 0) is drawn log-scale, any other linearly (the header says which); "
                        "NAME=VALUE fixes it; repeatable. Default: the book's lr and weight_decay ranges")
    p.add_argument("--trials", type=positive_int, default=100,
                   help="default 100; with --resume, more than the journal's extends the search (trial i "
                        "depends only on --seed and i), fewer is refused")
    p.add_argument("--seed", type=seed_int, default=0, help="the search seed, 0 to 2**32-1; default 0")
    p.add_argument("--epochs", type=positive_int, default=50, help="per trial; default 50")
    p.add_argument("--train-size", type=lambda t: _whole_number(t, 5), default=500,
                   help="training images used, 20%% of them held out for validation; default 500")
    p.add_argument("--batch-size", type=positive_int, default=100, help="default 100")
    _add_optimizer(p, "sgd")
    p.add_argument("--hidden", type=layer_sizes, default=[100] * 6, metavar="N,N,...",
                   help="hidden layer sizes of the MultiLayerNet; default 100,100,100,100,100,100")
    p.add_argument("--data", choices=DATA_CHOICES, default="sample",
                   help="sample: the 5,000 training images shipped with fastdl (offline); mnist: the full set "
                        "(downloaded once); fashion: Fashion-MNIST. Default: sample")
    _add_dtype(p, "float64", "default float64 (the book's)")
    _add_backend(p)
    p.add_argument("--eval-samples", type=non_negative_int, default=0,
                   help="images for the per-epoch accuracies (0: all, as the book's script). Default 0")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local worker processes (default: one per core)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads per trial (default: cores divided by the workers on the machine)")
    p.add_argument("--cluster", type=cluster_address, default=None, metavar="tcp://HOST:PORT",
                   help="run the trials on this Dask scheduler's workers (default: FASTDL_CLUSTER if set; "
                        "'local' runs here). Needs Dask: python -m pip install -e '.[distributed]' in fastdl's "
                        "clone")
    p.add_argument("--out", default="fastdl-search.jsonl", metavar="JOURNAL.jsonl",
                   help="journal: one JSON line per finished trial (default fastdl-search.jsonl); refused if it "
                        "already holds trials, unless --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue the search in --out (same settings and backend required; more --trials "
                        "extends it); finished trials are not run again")
    p.add_argument("--top", type=positive_int, default=20, help="best trials printed and plotted; default 20")
    p.add_argument("--plot", metavar="FILE.png", help="the book's figure: accuracy curves of the best trials")
    p.add_argument("--scatter", metavar="FILE.png",
                   help="validation accuracy over (lr, weight decay), log axes")
    _add_quiet(p, "no line per finished trial")
    p.set_defaults(func=_cmd_search)
    return parser


def _data_unavailable(exc: BaseException) -> Tuple[str, str]:
    """A DataUnavailable error as (one line: what failed and what to do, the details for --verbose).
    Its message is a first line, one line per failed download and a "To fix: ..." line."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    if len(lines) < 2:
        return one_line(exc), ""
    head = lines[0].rstrip(".")
    m = re.search(r"yourself into (\S+?),? as published", str(exc))
    folder = f" in {m.group(1)}" if m else ""
    if head.startswith("MNIST"):
        fix = f"use --data sample (5,000 images shipped with fastdl), or put the MNIST files{folder}"
    else:
        fix = f"put the files{folder}, or set FASTDL_FASHION_MIRRORS to a mirror you can reach"
    return f"{head}; {fix} (--verbose shows what each mirror answered)", "\n".join(lines[1:])


def _raise_terminated(signum, frame):
    raise Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit status (argparse's own exits included)."""
    parser = build_parser()
    previous = None
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL):
        previous = signal.signal(signal.SIGTERM, _raise_terminated)   # SIGTERM ends like Ctrl-C
    command = "fastdl"
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:              # --help (0) or a usage error (2), already printed
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if not getattr(args, "func", None):
            parser.print_help()
            print("fastdl: no command given; choose one of info, train, evaluate, predict, compare, profile, search",
                  file=sys.stderr)
            return EXIT_USAGE
        command = f"fastdl {args.command}"
        from fastdl.backend import BackendError
        from fastdl.datasets import DataUnavailable, SettingError
        try:
            return args.func(args)
        except DataUnavailable as exc:
            line, details = _data_unavailable(exc)
            print(f"{command}: {line}", file=sys.stderr)
            if getattr(args, "verbose", False):
                print(details, file=sys.stderr)
            return EXIT_USAGE
        except (UsageError, BackendError, SettingError) as exc:
            print(f"{command}: {one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        except Failure as exc:
            print(f"{command}: {one_line(exc)}", file=sys.stderr)
            return EXIT_FAILURE
        except MemoryError:
            print(f"{command}: out of memory; try a smaller --batch-size", file=sys.stderr)
            return EXIT_FAILURE
        except Exception as exc:               # noqa: BLE001 - one line, not a traceback
            if os.environ.get("FASTDL_TRACEBACK"):
                raise
            print(f"{command}: unexpected error: {one_line(exc, with_type=True)} "
                  "(set FASTDL_TRACEBACK=1 to see where)", file=sys.stderr)
            return EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"\n{command}: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print(f"{command}: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
