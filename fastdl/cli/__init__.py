"""The ``fastdl`` command line: one module per command (``fastdl/cli/<command>.py``, each with an
``add_parser(sub)`` that registers its subcommand), and here what they share: :func:`main`,
:func:`build_parser`, the parser with its one-line errors and "did you mean", the errors a command
raises, the argument types and the helpers several commands use.

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

Adding a command: a module ``fastdl/cli/<name>.py`` with ``add_parser(sub)`` (which sets
``func`` to the function that runs it and returns the exit status), and its name in ``COMMANDS``.
The command modules import what they share from here; :func:`build_parser` loads them by the
names in ``COMMANDS`` when the command line is built, so this module imports none of them.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
from typing import Any, List, Optional, Sequence, Tuple

from .._text import one_line
from ..backend import BACKENDS, DEFAULT_BACKEND
from ..trainer import OPTIMIZER_NAMES

NET_CHOICES = ("simple", "deep", "two")
DATA_CHOICES = ("sample", "mnist", "fashion")
DTYPE_CHOICES = ("float32", "float64")
COMPARE_NETS = ("simple", "deep")
EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED, EXIT_TERMINATED = 1, 2, 130, 143

#: the modules of fastdl.cli that register a subcommand, in the order ``fastdl --help`` lists them
COMMANDS = ("info", "train", "compare", "evaluate", "predict", "explain", "profile", "warm", "search")


class UsageError(Exception):
    """A mistake in the command line found after parsing: one line on stderr, exit status 2."""


class Failure(Exception):
    """The command could not do its work: one line on stderr, exit status 1."""


class Terminated(BaseException):
    """SIGTERM, raised like KeyboardInterrupt (a BaseException, so no ``except Exception`` eats it)."""


# -- argument types: argparse turns an ArgumentTypeError into "argument --x: <message>", exit 2 --
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
    from .._userdata import is_data_file
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



def _out(line):
    """A line on stdout that cannot stop the saving that follows (a closed pipe: `| head`)."""
    try:
        print(line, flush=True)
    except (BrokenPipeError, OSError, ValueError):
        pass



def _show_progress(args: argparse.Namespace) -> bool:
    """A progress bar: with --progress, else when stderr is a terminal, never with --no-progress or --json."""
    if getattr(args, "no_progress", False) or getattr(args, "json", False):
        return False
    return bool(getattr(args, "progress", False)) or sys.stderr.isatty()



def _load_data(name, flatten):
    """``(x, t), (xt, tt)`` of a built-in data set or of a user's .npz file (a UsageError, one line,
    if that file cannot be used)."""
    from fastdl.datasets import load_fashion_mnist, load_mnist
    if name not in DATA_CHOICES:
        from .._userdata import DataFileError, load_npz
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



#: fastdl train's --net names of the networks load_model can rebuild
_NET_NAMES = {"SimpleConvNet": "simple", "DeepConvNet": "deep", "TwoLayerNet": "two"}


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
    """The ``fastdl`` command line: its subcommands (one module of ``COMMANDS`` each) and their options."""
    parser = _Parser(
        prog="fastdl",
        description="fastdl: the networks of 'Deep Learning from Scratch' on fast, switchable kernels.",
        epilog="Example: fastdl train --net simple --data sample --epochs 10 --save model.npz --plot curves.png. "
               "Exit status: 0 done, 1 failed, 2 usage error, 130 Ctrl-C, 143 SIGTERM.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(sub)
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
    from fastdl import backend as _backend
    chosen = _backend._global_name     # --backend applies to this command only: restored on return
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exc:              # --help (0) or a usage error (2), already printed
            return exc.code if isinstance(exc.code, int) else EXIT_USAGE
        if not getattr(args, "func", None):
            parser.print_help()
            print(f"fastdl: no command given; choose one of {', '.join(COMMANDS)}",
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
        _backend._global_name = chosen
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


# the curves of fastdl train --plot
from .curves import _curve, _plot  # noqa: E402,F401
