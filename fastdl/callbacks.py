"""Callbacks for :class:`fastdl.trainer.Trainer`: early stopping, learning-rate schedules and
checkpoints, on a small hook API of your own classes can use too.

A callback is an object with any of four methods, which the Trainer calls with itself:

* ``on_train_begin(trainer)``: when :meth:`~fastdl.trainer.Trainer.train` starts (also when it
  continues a run loaded with ``load_checkpoint``: ``trainer.current_iter`` is then > 0);
* ``on_step_end(trainer, logs)``: after every step; ``logs`` holds ``"iteration"`` (steps done)
  and ``"loss"`` (that step's loss, a float);
* ``on_epoch_end(trainer, logs)``: after every evaluation once an epoch is complete, ``logs``
  being the entry just added to ``trainer.history``: ``"epoch"`` (epochs completed),
  ``"iteration"``, ``"train_acc"``, ``"test_acc"``, ``"val_acc"`` (with validation data),
  ``"loss"`` (mean training loss of the last epoch's steps), ``"lr"`` (that of the last step) and
  ``"final"`` (True for the evaluation after the last step). The Trainer evaluates where the
  book's loop does, after the first step of each epoch, and once after training;
* ``on_train_end(trainer, logs)``: after the final evaluation, with its entry.

Subclass :class:`Callback` (every hook does nothing) and override what you need. Setting
``trainer.stop_training = True`` ends training after the current step (the final accuracy is
still measured); changing ``trainer.optimizer.lr`` takes effect at the next step.

Values a callback can watch (``monitor``): ``"val_acc"`` (needs validation data: ``x_val`` /
``t_val`` or ``validation_split``), ``"test_acc"``, ``"train_acc"`` (higher is better) and
``"loss"`` (lower is better).
"""
from __future__ import annotations

import math
import numbers
import os
from typing import TYPE_CHECKING, Any, Dict, Optional

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "StepLR", "CosineLR", "ModelCheckpoint", "MONITORS"]

MONITORS = ("val_acc", "test_acc", "train_acc", "loss")
"""The values of ``trainer.history`` entries that ``EarlyStopping`` and ``ModelCheckpoint`` can
watch; ``"loss"`` is better when lower, the accuracies when higher."""


class Callback:
    """Base class of the Trainer's callbacks: every hook does nothing; override those you need."""

    def on_train_begin(self, trainer: "Trainer") -> None:
        """Called when ``trainer.train()`` starts."""

    def on_step_end(self, trainer: "Trainer", logs: Dict[str, Any]) -> None:
        """Called after every step with ``{"iteration": steps done, "loss": that step's loss}``."""

    def on_epoch_end(self, trainer: "Trainer", logs: Dict[str, Any]) -> None:
        """Called after every evaluation once an epoch is complete, with its ``trainer.history`` entry."""

    def on_train_end(self, trainer: "Trainer", logs: Dict[str, Any]) -> None:
        """Called after the final evaluation, with its ``trainer.history`` entry."""


def _monitor(owner: str, monitor: Any) -> str:
    if monitor not in MONITORS:
        raise ValueError(f"{owner}: monitor must be one of {', '.join(MONITORS)}, got {monitor!r}")
    return str(monitor)


def _check_available(owner: str, monitor: str, trainer: "Trainer") -> None:
    if monitor == "val_acc" and not trainer.has_validation:
        raise ValueError(f"{owner}: monitor='val_acc' needs validation data; give the Trainer "
                         "x_val/t_val or validation_split, or monitor 'test_acc'")


def _better(monitor: str, value: Any, best: Optional[float], min_delta: float = 0.0) -> bool:
    """Whether ``value`` improves on ``best`` by more than ``min_delta`` (NaN never does)."""
    if value is None or not math.isfinite(float(value)):
        return False
    if best is None:
        return True
    if monitor == "loss":
        return float(value) < best - min_delta
    return float(value) > best + min_delta


def _number(owner: str, name: str, value: Any, low: float, low_ok: bool = True) -> float:
    """``value`` as a float, finite and >= low (> low unless low_ok); ValueError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(value).__name__} {value!r}")
    v = float(value)
    if not math.isfinite(v) or v < low or (v == low and not low_ok):
        raise ValueError(f"{owner}: {name} must be a finite number {'>=' if low_ok else '>'} {low:g}, "
                         f"got {value!r}")
    return v


def _whole(owner: str, name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{owner}: {name} must be an integer, got {type(value).__name__} {value!r}")
    if value < low:
        raise ValueError(f"{owner}: {name} must be >= {low}, got {value}")
    return int(value)


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epoch evaluations in a row.

    Parameters
    ----------
    monitor : str
        One of ``MONITORS``: ``"val_acc"`` (default; needs validation data), ``"test_acc"``,
        ``"train_acc"`` or ``"loss"``.
    patience : int
        Stop after this many epoch evaluations in a row without improvement (0 and 1: at the
        first one).
    min_delta : float
        The smallest change that counts as an improvement.

    Attributes
    ----------
    best : float or None
        The best value seen in this run.
    best_epoch : int or float or None
        The ``"epoch"`` of the evaluation that gave it.
    stopped_epoch : int or float or None
        The ``"epoch"`` at which it stopped training (None if it did not).
    """

    def __init__(self, monitor: str = "val_acc", patience: int = 5, min_delta: float = 0.0) -> None:
        self.monitor = _monitor("EarlyStopping", monitor)
        self.patience = _whole("EarlyStopping", "patience", patience, 0)
        self.min_delta = _number("EarlyStopping", "min_delta", min_delta, 0.0)
        self.best: Optional[float] = None
        self.best_epoch: Any = None
        self.stopped_epoch: Any = None
        self.wait = 0

    def __repr__(self) -> str:
        return f"EarlyStopping(monitor={self.monitor!r}, patience={self.patience}, min_delta={self.min_delta})"

    def on_train_begin(self, trainer: "Trainer") -> None:
        _check_available("EarlyStopping", self.monitor, trainer)
        self.best, self.best_epoch, self.stopped_epoch, self.wait = None, None, None, 0

    def on_epoch_end(self, trainer: "Trainer", logs: Dict[str, Any]) -> None:
        value = logs.get(self.monitor)
        if _better(self.monitor, value, self.best, self.min_delta):
            self.best, self.best_epoch, self.wait = float(value), logs.get("epoch"), 0  # type: ignore[arg-type]
            return
        self.wait += 1
        if self.wait >= self.patience and not logs.get("final"):
            self.stopped_epoch = logs.get("epoch")
            trainer.stop_training = True
            if trainer.verbose:
                trainer._say(f"early stopping at epoch {self.stopped_epoch}: {self.monitor} has not improved "
                             f"on {self.best} (epoch {self.best_epoch}) for {self.wait} evaluations")


class _Schedule(Callback):
    """Sets ``trainer.optimizer.lr`` before every step from the number of epochs completed."""

    def __init__(self) -> None:
        self.base_lr: Optional[float] = None

    def lr_at(self, epoch: int) -> float:
        """The learning rate for a step taken after ``epoch`` completed epochs."""
        raise NotImplementedError

    def _apply(self, trainer: "Trainer") -> None:
        opt = trainer.optimizer
        if self.base_lr is None:
            lr = getattr(opt, "lr", None)
            if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
                raise TypeError(f"{type(self).__name__}: the optimizer {type(opt).__name__} has no "
                                "numeric attribute lr to schedule")
            self.base_lr = float(lr)
        opt.lr = self.lr_at(trainer.epochs_completed)

    def on_train_begin(self, trainer: "Trainer") -> None:
        self._apply(trainer)

    def on_step_end(self, trainer: "Trainer", logs: Dict[str, Any]) -> None:
        self._apply(trainer)


class StepLR(_Schedule):
    """Multiply the learning rate by ``gamma`` every ``step_size`` epochs:
    ``lr = base_lr * gamma ** (epochs_completed // step_size)``.

    ``base_lr`` is the optimizer's ``lr`` when training first starts with this callback. The rate
    is set before every step from ``trainer.epochs_completed``, so it changes exactly at epoch
    boundaries and a run resumed from a checkpoint follows the same schedule as one that was
    never stopped.

    Parameters
    ----------
    step_size : int
        Epochs between two decays.
    gamma : float
        The factor (> 0).
    """

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        super().__init__()
        self.step_size = _whole("StepLR", "step_size", step_size, 1)
        self.gamma = _number("StepLR", "gamma", gamma, 0.0, low_ok=False)

    def __repr__(self) -> str:
        return f"StepLR(step_size={self.step_size}, gamma={self.gamma})"

    def lr_at(self, epoch: int) -> float:
        assert self.base_lr is not None
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineLR(_Schedule):
    """Cosine annealing from the optimizer's ``lr`` down to ``lr_min`` over ``t_max`` epochs:
    ``lr = lr_min + (base_lr - lr_min) * (1 + cos(pi * min(epoch, t_max) / t_max)) / 2``,
    ``epoch`` being the epochs completed (the rate stays at ``lr_min`` after ``t_max``).

    Set before every step, like :class:`StepLR` (the same rate through an epoch).

    Parameters
    ----------
    t_max : float
        Epochs of the descent (> 0).
    lr_min : float
        The final learning rate (>= 0).
    """

    def __init__(self, t_max: float, lr_min: float = 0.0) -> None:
        super().__init__()
        self.t_max = _number("CosineLR", "t_max", t_max, 0.0, low_ok=False)
        self.lr_min = _number("CosineLR", "lr_min", lr_min, 0.0)

    def __repr__(self) -> str:
        return f"CosineLR(t_max={self.t_max}, lr_min={self.lr_min})"

    def lr_at(self, epoch: int) -> float:
        assert self.base_lr is not None
        e = min(epoch, self.t_max)
        return self.lr_min + (self.base_lr - self.lr_min) * (1.0 + math.cos(math.pi * e / self.t_max)) / 2.0


class ModelCheckpoint(Callback):
    """Write ``last.npz`` after every epoch evaluation and ``best.npz`` when ``monitor`` improves,
    in the folder ``dirpath`` (created if needed).

    Both are full checkpoints (:meth:`~fastdl.trainer.Trainer.save_checkpoint`: weights, optimizer
    state, counters, histories), each written atomically: a run killed at any moment leaves the
    previous file whole. ``trainer.load_checkpoint(".../last.npz")`` continues the run;
    ``fastdl.load_model`` and ``net.load_params`` read the weights of either. A diverged network
    (a NaN or infinite loss) is not written: the files keep the last sound state. When a run
    continues from a checkpoint (``trainer.current_iter > 0`` at the start), the best value is
    taken from the ``best.npz`` already in the folder, so a worse epoch does not replace it.

    Parameters
    ----------
    dirpath : str or os.PathLike
        The folder.
    monitor : str
        One of ``MONITORS`` (default ``"val_acc"``, which needs validation data).

    Attributes
    ----------
    best : float or None
        The best value so far.
    best_path : str
        The file of the best weights (``best.npz`` in ``dirpath``).
    last_path : str
        The file of the last weights (``last.npz`` in ``dirpath``).
    """

    def __init__(self, dirpath: "str | os.PathLike[str]", monitor: str = "val_acc") -> None:
        try:
            self.dirpath = os.fsdecode(os.fspath(dirpath))
        except TypeError:
            raise TypeError(f"ModelCheckpoint: dirpath must be a folder name (str or os.PathLike), "
                            f"got {type(dirpath).__name__}") from None
        self.monitor = _monitor("ModelCheckpoint", monitor)
        self.best: Optional[float] = None
        self.best_path = os.path.join(self.dirpath, "best.npz")
        self.last_path = os.path.join(self.dirpath, "last.npz")

    def __repr__(self) -> str:
        return f"ModelCheckpoint({self.dirpath!r}, monitor={self.monitor!r})"

    def on_train_begin(self, trainer: "Trainer") -> None:
        _check_available("ModelCheckpoint", self.monitor, trainer)
        if os.path.exists(self.dirpath) and not os.path.isdir(self.dirpath):
            raise NotADirectoryError(f"ModelCheckpoint: {self.dirpath} is a file, not a folder")
        try:
            os.makedirs(self.dirpath, exist_ok=True)
        except OSError as exc:
            raise type(exc)(f"ModelCheckpoint: cannot create the folder {self.dirpath}: "
                            f"{exc.strerror or exc}") from None
        self.best = None
        if trainer.current_iter > 0 and os.path.isfile(self.best_path):
            self.best = self._value_in(self.best_path)

    def _value_in(self, path: str) -> Optional[float]:
        """The monitored value of the checkpoint at ``path`` (its last history entry), if any."""
        from .nets import read_meta
        try:
            history = read_meta(path).get("trainer", {}).get("history") or []
        except (OSError, ValueError):
            return None
        value = history[-1].get(self.monitor) if history else None
        return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None

    def on_epoch_end(self, trainer: "Trainer", logs: Dict[str, Any]) -> None:
        if trainer.divergence is not None:
            return
        trainer.save_checkpoint(self.last_path)
        value = logs.get(self.monitor)
        if _better(self.monitor, value, self.best):
            from ._files import atomic_write
            with open(self.last_path, "rb") as src, atomic_write(self.best_path) as dst:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    dst.write(chunk)
            self.best = float(value)  # type: ignore[arg-type]  # _better: a finite number
