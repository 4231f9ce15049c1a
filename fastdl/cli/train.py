"""``fastdl train``: train one of the book's networks with the book's Trainer, and never lose what
it learned once training has started (the rules are in fastdl.cli's docstring).

The command in steps: check every argument and output path (:func:`_check_arguments`); build the
network, the data and the trainer (:func:`_prepare`); train (:func:`_train`), which gives an
:class:`Outcome` (finished, interrupted, terminated, diverged or failed); keep the parameters
(:func:`_keep_parameters`) and the curves (:func:`_write_plot`); the exit status follows from the
problems found on the way (:func:`_exit_status`).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

from .. import cli                     # cli._load_data: looked up when called, one place for train and evaluate
from .._text import one_line
from . import (EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, NET_CHOICES, Terminated, UsageError, _add_backend,
               _add_dtype, _add_optimizer, _add_quiet, _add_verbose, _build_net, _check_output, _NET_NAMES, _out,
               _save_params, data_source, lr_schedule, non_negative_int, optimizer_name, positive_float,
               positive_int, seed_int, val_fraction)
from .curves import _plot


def add_parser(sub: Any) -> None:
    """The ``train`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
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
    p.set_defaults(func=cmd_train)


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



def _check_arguments(args: argparse.Namespace) -> None:
    """Every argument and output path of ``fastdl train``, checked before any work (UsageError)."""
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


def _network(args: argparse.Namespace) -> Tuple[Any, bool]:
    """(the network to train, whether --resume FILE holds a Trainer checkpoint): the one of --resume
    (its settings fill the options not given), else a new one of --net and --dtype."""
    import numpy as np
    if args.resume is not None:
        net, resume_meta = _resume_net(args)
        _train_settings(args, resume_meta.get("train") or {})
        return net, isinstance(resume_meta.get("trainer"), dict)
    args.net = args.net or "simple"
    args.dtype = args.dtype or "float32"
    return _build_net(args.net, np.dtype(args.dtype)), False


def _data(args: argparse.Namespace, net: Any) -> Tuple[Any, Any, Any, Any, int]:
    """(x, t, x_test, t_test, the number of training images after --val-split) of --data, shaped
    for ``net``; a --val-split or --batch-size that does not fit them is a UsageError."""
    flatten = len(net._sample_shape() or (1, 1, 1)) == 1
    (x, t), (xt, tt) = cli._load_data(args.data, flatten=flatten)
    n_train = len(x) - int(round(len(x) * args.val_split))
    if args.val_split and (n_train < 1 or n_train == len(x)):
        raise UsageError(f"--val-split {args.val_split:g} of {len(x)} training images leaves "
                         f"{'none' if n_train < 1 else 'no image'} for {'training' if n_train < 1 else 'validation'}")
    if args.batch_size > n_train:
        raise UsageError(f"--batch-size {args.batch_size} is larger than the {n_train} training images "
                         f"of --data {args.data}")
    return x, t, xt, tt, n_train


def _prepare(args: argparse.Namespace) -> Tuple[Any, Any, int]:
    """(network, Trainer, test images): the backend set, the network built or resumed, the data read,
    the trainer made (its state restored from a --resume checkpoint), and the run's first line printed."""
    import numpy as np

    import fastdl
    from fastdl.trainer import Trainer
    if args.backend:
        fastdl.set_backend(args.backend)
    backend_name = fastdl.current_backend()          # a bad FASTDL_BACKEND is reported here
    np.random.seed(args.seed)
    net, checkpoint = _network(args)
    x, t, xt, tt, n_train = _data(args, net)
    callbacks = _callbacks(args)
    extra: dict = {}
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
    return net, trainer, len(xt)


@dataclass
class Outcome:
    """How a training run ended: its test accuracy (None unless it finished), the error it raised,
    the signal that aborted a step (a second Ctrl-C or SIGTERM), its duration, where it diverged
    ((iteration, loss) or None) and the signal that stopped it (or None)."""
    acc: Optional[float]
    error: Optional[BaseException]
    aborted: Optional[int]
    took: float
    diverged: Optional[Tuple[int, float]]
    stopped_by: Optional[int]

    @property
    def status(self) -> str:
        """finished, interrupted, terminated, diverged or failed."""
        if self.diverged is not None:
            return "diverged"
        if self.error is not None:
            return "failed"
        if self.stopped_by == signal.SIGTERM:
            return "terminated"
        return "interrupted" if self.stopped_by is not None else "finished"

    @property
    def failed(self) -> bool:
        """A diverged or failed run (exit status 1 whatever happens next)."""
        return self.diverged is not None or self.error is not None


def _train(trainer: Any, net: Any, signals: _StopSignals) -> Outcome:
    """Run ``trainer.train()`` and classify how it ended. An error with a non-finite loss, non-finite
    weights or a message about NaN, infinity or overflow counts as divergence."""
    acc, error, aborted = None, None, None
    start = time.perf_counter()
    try:
        acc = trainer.train()
    except KeyboardInterrupt:                   # a second Ctrl-C: aborted within a step
        aborted = signal.SIGINT
    except Terminated:                          # a second SIGTERM
        aborted = signal.SIGTERM
    except Exception as exc:                    # noqa: BLE001 - reported in one line by the caller
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
    return Outcome(acc, error, aborted, took, diverged, stopped_by)


def _problems(outcome: Outcome, args: argparse.Namespace, trainer: Any) -> List[str]:
    """The line (at most one) that says why the run did not finish."""
    if outcome.diverged is not None:
        it, loss = outcome.diverged
        return [f"training diverged at iteration {it} (loss {loss}): the learning rate "
                f"--lr {args.lr:g} is likely too high for {args.optimizer}, or the initial "
                "weights too large; try a smaller --lr"]
    if outcome.error is not None:
        return [f"training failed at iteration {trainer.current_iter + 1}: "
                f"{one_line(outcome.error, with_type=True)}"]
    if outcome.stopped_by is not None:
        what = "terminated (SIGTERM)" if outcome.stopped_by == signal.SIGTERM else "interrupted (Ctrl-C)"
        return [f"{what} after {trainer.current_iter} iterations"]
    return []


def _keep_parameters(args: argparse.Namespace, net: Any, trainer: Any, outcome: Outcome,
                     problems: List[str]) -> bool:
    """Save the parameters to --save (a diverged run's next to it, a rescue file if it cannot be
    written), or say where --checkpoint-dir keeps them. Adds to ``problems``; True if saving failed."""
    if not args.save:
        if args.checkpoint_dir is not None:
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
        return False
    diverged, error, acc = outcome.diverged, outcome.error, outcome.acc
    target = _diverged_name(args.save) if diverged is not None else args.save
    finite_acc = acc if acc is not None and math.isfinite(acc) else None
    meta = {"net": args.net, "dtype": args.dtype, "data": args.data,
            "epochs_done": trainer.current_epoch, "iterations": trainer.current_iter,
            "test_acc": finite_acc, "interrupted": outcome.stopped_by is not None}
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
        return False
    if saved is not None:
        _out(f"could not write {target}; saved parameters to {saved} instead")
        problems.append(f"could not write {target} ({one_line(save_error)}); the parameters "
                        f"were saved to {saved} instead")
    else:
        problems.append(f"could not save the parameters anywhere ({one_line(save_error)})")
    return True


def _write_plot(args: argparse.Namespace, net: Any, trainer: Any, problems: List[str]) -> bool:
    """The curves of --plot, if the run took a step. Adds to ``problems``; True if it could not be written."""
    if not (args.plot and trainer.train_loss_list):
        return False
    try:
        _plot(trainer, args.plot, f"{type(net).__name__} on {args.data}")
        _out(f"saved curves to {args.plot}")
        return False
    except Exception as exc:                # noqa: BLE001 - the parameters are already saved
        problems.append(f"could not write the plot {args.plot} ({one_line(exc)})")
        return True


def _exit_status(problems: List[str], failed: bool, outcome: Outcome) -> int:
    """0 without problems; else they go to stderr in one line, and the status is 1 for a failure,
    143 after SIGTERM, 130 after Ctrl-C."""
    if not problems:
        return 0
    print(f"fastdl train: {'; '.join(problems)}", file=sys.stderr)
    if failed:
        return EXIT_FAILURE
    return EXIT_TERMINATED if outcome.stopped_by == signal.SIGTERM else EXIT_INTERRUPTED


def cmd_train(args: argparse.Namespace) -> int:
    """Run ``fastdl train``; returns the exit status."""
    _check_arguments(args)
    net, trainer, n_test = _prepare(args)
    # -- from here on, what was learned is saved whatever happens --------------------------
    with _StopSignals(trainer) as signals, warnings.catch_warnings():
        # divergence is detected and reported in one line; these would only precede it
        warnings.filterwarnings("ignore", category=RuntimeWarning,
                                message="(SoftmaxWithLoss|overflow encountered|invalid value encountered"
                                        "|divide by zero encountered)")
        outcome = _train(trainer, net, signals)
        line = (f"{outcome.status} after {trainer.current_iter} iterations in {outcome.took:.1f} s "
                f"({trainer.images_per_second:,.0f} images/s)")
        if outcome.acc is not None:
            line += f"; test accuracy {outcome.acc:.4f} on {n_test} images"
        _out(line)
        problems = _problems(outcome, args, trainer)
        failed = _keep_parameters(args, net, trainer, outcome, problems) or outcome.failed
        failed = _write_plot(args, net, trainer, problems) or failed
    return _exit_status(problems, failed, outcome)


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
