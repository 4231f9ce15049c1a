"""The book's ``Trainer`` (``common/trainer.py``), with a progress bar, seeding, safe interruption,
validation data, callbacks and checkpoints that resume.

Behaviour kept from the book: mini-batches of ``mini_batch_size`` drawn with
replacement by ``np.random.choice``; ``max_iter = int(epochs * max(train_size /
mini_batch_size, 1))``; after the first step of every epoch (steps 0,
iter_per_epoch, ...) train and test accuracy on the first
``evaluate_sample_num_per_epoch`` samples (all when None); ``train_loss_list``,
``train_acc_list``, ``test_acc_list``; a final accuracy on the whole test set.

Changes: the loss recorded per iteration is the one computed by the forward
pass of ``gradient`` (before the update); the book runs a second forward pass
after the update to get it, which costs a third of a step. Progress is a bar
(tqdm) with loss, accuracy and images per second; ``verbose`` prints the
book's epoch lines and final line; ``verbose="iter"`` also prints the book's
"train loss:" line every iteration. Ctrl-C stops after the current step (no
half-applied update) and ``train`` returns normally with ``interrupted`` set.
When ``iter_per_epoch`` is not a whole number the book's test ``current_iter %
iter_per_epoch == 0`` holds at step 0 only; here the evaluation runs at the first step of
every epoch (step ``ceil(k * iter_per_epoch)`` for epoch k + 1), which are the book's steps
whenever ``iter_per_epoch`` is whole.

Two records of the accuracies:

* the book's lists ``train_acc_list``, ``test_acc_list`` (and ``val_acc_list``) hold one value
  per epoch, measured where the book measures: after the first step of the epoch, so the
  first value is (nearly) the untrained network's. The ``=== epoch:N ...`` lines print them.
* ``history`` holds a dict per evaluation labelled with the number of epochs completed before
  it (``"epoch"``: 0, 1, ...), plus a final entry after training (``"final": True``, the
  ``"test_acc"`` of the whole test set, ``"epoch"`` the epochs done, fractional if training
  stopped within an epoch). Plotted against ``"epoch"`` it gives the learning curve from 0 to
  the last epoch, ending at the final accuracy.

Validation: ``x_val``/``t_val``, or ``validation_split=f``, which keeps the last ``round(f *
N)`` samples of ``x_train`` (in their order, before training, nothing shuffled) for
validation and trains on the others. ``val_acc`` is then measured with train and test
accuracy at every evaluation.

Callbacks (:mod:`fastdl.callbacks`) are called at the start of ``train``, after every step,
after every evaluation once an epoch is complete (with its ``history`` entry) and at the end;
one sets ``trainer.stop_training = True`` to end training after the current step.

Checkpoints: ``save_checkpoint(path)`` writes one ``.npz`` (atomically, with
``network.save_params``) holding the weights, the optimizer's state (its per-parameter arrays and
Adam's step count), the counters ``current_iter`` and ``current_epoch``, the lists, ``history``
and NumPy's global random state (which draws the batches and dropout masks). A new Trainer on
the same data, ``mini_batch_size`` and kind of optimizer, given ``load_checkpoint(path)``,
continues where the saved run stopped: ``train()`` runs the steps from ``current_iter`` to
``max_iter`` (``epochs`` counts from the start of the run, the loaded epochs included) and ends
with the same weights as the run that was never stopped.

Divergence: ``diverged_at`` is the index (in ``train_loss_list``) of the first loss that is NaN
or infinite, ``divergence`` the same as (iterations done, that loss). The book's loop goes on to
the end with NaN; with ``stop_on_divergence=True`` ``train`` stops after that step instead
(``interrupted`` stays False) and still measures the final accuracy.
"""
from __future__ import annotations

import math
import numbers
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np

from . import _checkpoint
from . import _trainer_args as _args
from ._checks import finite, positive_int
from ._checkpoint import CHECKPOINT_FORMAT
from ._trainer_args import OPTIMIZER_NAMES as _NAMES, OPTIMIZERS as _OPTIMIZERS

if TYPE_CHECKING:
    from tqdm.auto import tqdm as _Bar

__all__ = ["Trainer", "OPTIMIZERS", "OPTIMIZER_NAMES", "CHECKPOINT_FORMAT"]

OPTIMIZERS: Dict[str, Type[Any]] = _OPTIMIZERS
"""Lower-case optimizer name -> class of :mod:`fastdl.optimizers` (the book's ``"rmsprpo"`` too)."""
OPTIMIZER_NAMES: Tuple[str, ...] = _NAMES
"""The optimizer names as the book writes them, for messages and ``--help``."""

_EPS = 1e-9          # epoch counts from float divisions: 24 / 4.8 is 4.999999999999999


def _finite(loss: Any) -> bool:
    try:
        return math.isfinite(float(loss))
    except (TypeError, ValueError):
        return True                   # not a number (a network that records none): cannot tell


def _in_kernel() -> bool:
    """True inside a running IPython kernel (Jupyter, VS Code notebooks), where stderr is no tty
    but a progress bar is shown."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    try:
        shell = ipython.get_ipython()
    except Exception:                 # noqa: BLE001 - an IPython without get_ipython: no kernel
        return False
    return shell is not None and getattr(shell, "kernel", None) is not None


class Trainer:
    """Trains ``network`` with the book's loop. See the module docstring for details.

    Parameters
    ----------
    network : network
        A network of :mod:`fastdl.nets` (or one with the book's interface: ``params``,
        ``gradient(x, t)``, ``accuracy(x, t)`` and ``last_layer.loss``; checkpoints need
        fastdl's ``save_params``).
    x_train : ndarray, shape (N, ...)
        Training images.
    t_train : ndarray, shape (N,) or (N, K)
        Training labels (class indices or one-hot rows).
    x_test : ndarray, shape (M, ...)
        Test images (not empty).
    t_test : ndarray, shape (M,) or (M, K)
        Test labels.
    epochs : float
        Number of epochs, >= 0 (``max_iter = int(epochs * max(N / mini_batch_size, 1))``),
        counted from the start of the run: after ``load_checkpoint`` the loaded epochs count.
    mini_batch_size : int
        Samples per step (>= 1), drawn with replacement.
    optimizer : str or optimizer
        A name of ``OPTIMIZERS`` in any case (``"SGD"``, ``"Momentum"``, ``"Nesterov"``,
        ``"AdaGrad"``, ``"RMSprop"``, ``"Adam"``), or an optimizer instance such as ``Adam(lr=1e-3)``
        (any object with ``update(params, grads)``; checkpoints need one of
        :mod:`fastdl.optimizers`).
    optimizer_param : dict, optional
        Keyword arguments of the named optimizer (default ``{"lr": 0.01}``); not allowed with an
        instance, which carries its own.
    evaluate_sample_num_per_epoch : int, optional
        Samples of each set (train, test, validation) the per-epoch accuracies are measured on,
        >= 1 (None: all).
    verbose : bool or "iter"
        Print the book's epoch lines and final line; ``"iter"`` also the book's
        ``train loss:`` line after every step.
    progress : bool, optional
        Show a progress bar (tqdm.auto: a widget in Jupyter when ipywidgets is installed, text
        otherwise). None: when stderr is a terminal or the code runs in an IPython kernel.
    seed : int, optional
        Seed NumPy's global RNG with it first (weights are drawn before, by the network).
    stop_on_divergence : bool
        Stop after the first step whose loss is NaN or infinite.
    x_val : ndarray, optional
        Validation images, measured (``val_acc``) at every evaluation.
    t_val : ndarray, optional
        Validation labels (with ``x_val``).
    validation_split : float
        In [0, 1): keep the last ``round(validation_split * N)`` training samples for validation
        (taken before training, not shuffled); not together with ``x_val``.
    callbacks : sequence of Callback
        Objects of :mod:`fastdl.callbacks` (or with any of its hooks), called in order.
    """

    def __init__(self, network: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any,
                 epochs: float = 20, mini_batch_size: int = 100, optimizer: Any = "SGD",
                 optimizer_param: Optional[Mapping[str, Any]] = None,
                 evaluate_sample_num_per_epoch: Optional[int] = None,
                 verbose: Union[bool, str] = True, progress: Optional[bool] = None,
                 seed: Optional[int] = None, stop_on_divergence: bool = False,
                 x_val: Any = None, t_val: Any = None, validation_split: float = 0.0,
                 callbacks: Optional[Sequence[Any]] = ()) -> None:
        if len(x_train) != len(t_train):
            raise ValueError(f"Trainer: x_train has {len(x_train)} samples but t_train has {len(t_train)}")
        if len(x_test) != len(t_test):
            raise ValueError(f"Trainer: x_test has {len(x_test)} samples but t_test has {len(t_test)}")
        if len(x_train) == 0:
            raise ValueError("Trainer: x_train is empty")
        if len(x_test) == 0:
            raise ValueError("Trainer: x_test is empty; the accuracies are measured on it, pass test samples")
        epochs = _args.epochs_arg(epochs)
        mini_batch_size = positive_int("mini_batch_size", mini_batch_size, owner="Trainer")
        if evaluate_sample_num_per_epoch is not None:
            evaluate_sample_num_per_epoch = positive_int(
                "evaluate_sample_num_per_epoch", evaluate_sample_num_per_epoch, owner="Trainer")
        verbose = _args.verbose_arg(verbose)
        if progress is not None and not isinstance(progress, (bool, np.bool_)):
            raise TypeError(f"Trainer: progress must be True, False or None, got {progress!r}")
        if seed is not None:
            seed = positive_int("seed", seed, minimum=0, owner="Trainer")
            if seed >= 2 ** 32:
                raise ValueError(f"Trainer: seed must be below 2**32, got {seed}")
        x_train, t_train, x_val, t_val = _args.split_validation(x_train, t_train, x_val, t_val, validation_split)
        for name, data in (("x_train", x_train), ("x_test", x_test), ("x_val", x_val)):
            if data is not None:
                finite(name, np.asarray(data), owner="Trainer")   # NaN in the data is reported up front
        opt = _args.make_optimizer(optimizer, optimizer_param)
        hooks = _args.callbacks_arg(callbacks)
        if seed is not None:
            np.random.seed(seed)
        self.network = network
        """The network being trained."""
        self.verbose = verbose
        """Print the book's lines: True, False or ``"iter"``."""
        self.x_train = x_train
        """Training images (without the ``validation_split`` part)."""
        self.t_train = t_train
        """Training labels."""
        self.x_test = x_test
        """Test images."""
        self.t_test = t_test
        """Test labels."""
        self.x_val = x_val
        """Validation images (``x_val``, or the last part of ``x_train``), or None."""
        self.t_val = t_val
        """Validation labels, or None."""
        self.epochs = epochs
        """Number of epochs."""
        self.batch_size = mini_batch_size
        """Samples per step (``mini_batch_size``)."""
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        """Samples of each set the per-epoch accuracies use (None: all)."""
        self.optimizer = opt
        """The optimizer instance."""
        self.callbacks: List[Any] = hooks
        """The callbacks, called in order."""
        self.train_size: int = x_train.shape[0]
        """Number of training samples."""
        self.iter_per_epoch: float = max(self.train_size / mini_batch_size, 1)
        """Steps per epoch: ``max(train_size / batch_size, 1)`` (a float, as in the book)."""
        self.max_iter = int(epochs * self.iter_per_epoch)
        """Steps :meth:`train` runs in all."""
        self.current_iter = 0
        """Steps done so far."""
        self.current_epoch = 0
        """Epochs started so far (each start measures the accuracies)."""
        self.train_loss_list: List[Any] = []
        """The loss of every step, from its forward pass (before the update)."""
        self.train_acc_list: List[float] = []
        """Training accuracy after the first step of every epoch (the book's list)."""
        self.test_acc_list: List[float] = []
        """Test accuracy after the first step of every epoch (the book's list)."""
        self.val_acc_list: List[float] = []
        """Validation accuracy after the first step of every epoch (empty without validation data)."""
        self.history: List[Dict[str, Any]] = []
        """One dict per evaluation: ``"epoch"`` (epochs completed before it), ``"iteration"``
        (steps done), ``"train_acc"``, ``"test_acc"``, ``"val_acc"`` (with validation data),
        ``"loss"`` (mean loss of the last ``iter_per_epoch`` steps), ``"lr"`` (the learning rate
        of the last step; None for an optimizer without ``lr``) and ``"final"``
        (True for the entry after training, whose ``"test_acc"`` is on the whole test set)."""
        self.test_acc: Optional[float] = None
        """The final accuracy on the whole test set; None until :meth:`train` has run."""
        self.interrupted = False
        """True if :meth:`train` ended early on Ctrl-C."""
        self.stop_training = False
        """Set it to True (a callback does) to end :meth:`train` after the current step."""
        self.stop_on_divergence = stop_on_divergence
        """Stop after the first step whose loss is NaN or infinite."""
        self._diverged_at: Optional[int] = None
        self._losses_seen = 0        # train_loss_list[:_losses_seen] were finite
        self.progress = (sys.stderr.isatty() or _in_kernel()) if progress is None else bool(progress)
        """Show a progress bar."""
        self._bar: Optional[_Bar] = None
        self._stop = False
        self._images = 0
        self._busy = 0.0
        self._last_lr: Optional[float] = None     # the learning rate of the last step

    # -- counts ---------------------------------------------------------------------------
    def _epoch_of(self, step: int) -> int:
        """Epochs completed before step number ``step`` (0-based) starts."""
        return int(math.floor(step / self.iter_per_epoch + _EPS))

    @property
    def epochs_completed(self) -> int:
        """Whole epochs done: ``floor(current_iter / iter_per_epoch)``. The schedules of
        :mod:`fastdl.callbacks` set the learning rate from it."""
        return self._epoch_of(self.current_iter)

    @property
    def has_validation(self) -> bool:
        """True when there is validation data (``x_val`` or ``validation_split``)."""
        return self.x_val is not None

    # -- output -------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line)

    def _postfix(self, refresh: bool = False) -> None:
        if self._bar is None:
            return
        post = {}
        if self.train_loss_list:
            post["loss"] = f"{float(self.train_loss_list[-1]):.4f}"
        done = [h for h in self.history if h["epoch"] > 0]     # measured after a completed epoch
        if done:
            post["epoch"] = f"{done[-1]['epoch']}"
            post["test_acc"] = f"{done[-1]['test_acc']:.4f}"
            if done[-1].get("val_acc") is not None:
                post["val_acc"] = f"{done[-1]['val_acc']:.4f}"
        if self._busy > 0:
            post["img/s"] = f"{self._images / self._busy:,.0f}"
        self._bar.set_postfix(post, refresh=refresh)

    def _call(self, hook: str, *args: Any) -> None:
        for cb in self.callbacks:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(self, *args)

    # -- evaluations -------------------------------------------------------------------
    def _sample(self, x: Any, t: Any) -> Tuple[Any, Any]:
        n = self.evaluate_sample_num_per_epoch
        return (x, t) if n is None else (x[:n], t[:n])

    def _entry(self, epoch: Union[int, float], train_acc: float, test_acc: float,
               val_acc: Optional[float], final: bool) -> Dict[str, Any]:
        it = self.current_iter
        window = self.train_loss_list[max(0, it - max(1, int(round(self.iter_per_epoch)))):it]
        loss = float(np.mean([float(v) for v in window])) if window else None
        entry: Dict[str, Any] = {"epoch": epoch, "iteration": it, "train_acc": float(train_acc),
                                 "test_acc": float(test_acc)}
        if val_acc is not None:
            entry["val_acc"] = float(val_acc)
        entry["loss"] = loss
        entry["lr"] = self._last_lr
        entry["final"] = final
        return entry

    def _record(self, entry: Dict[str, Any]) -> None:
        self.history.append(entry)
        if self._bar is not None:
            self._postfix(refresh=True)
        if entry["epoch"] > 0:
            self._call("on_epoch_end", entry)

    # -- the book's loop ------------------------------------------------------------------
    def train_step(self) -> None:
        """One step of the book's loop: a mini-batch, its gradient, the optimizer's update.

        Appends the step's loss to ``train_loss_list``; at the first step of an epoch measures
        train and test (and validation) accuracy into ``train_acc_list`` and ``test_acc_list``
        (and ``val_acc_list``) and ``history``. Callbacks' ``on_epoch_end`` and ``on_step_end``
        run after it. ``train`` calls it ``max_iter`` times.
        """
        step = self.current_iter
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch = self.x_train[batch_mask]
        t_batch = self.t_train[batch_mask]
        lr = getattr(self.optimizer, "lr", None)
        self._last_lr = float(lr) if isinstance(lr, numbers.Real) else None
        t0 = time.perf_counter()
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        self._busy += time.perf_counter() - t0
        self._images += len(batch_mask)
        loss = self.network.last_layer.loss
        self.train_loss_list.append(loss)
        if self.verbose == "iter":
            self._say("train loss:" + str(loss))
        self.current_iter += 1

        if step == 0 or self._epoch_of(step) != self._epoch_of(step - 1):
            self.current_epoch += 1
            x_tr, t_tr = self._sample(self.x_train, self.t_train)
            x_te, t_te = self._sample(self.x_test, self.t_test)
            train_acc = self.network.accuracy(x_tr, t_tr)
            test_acc = self.network.accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            val_acc = None
            if self.x_val is not None:
                val_acc = self.network.accuracy(*self._sample(self.x_val, self.t_val))
                self.val_acc_list.append(val_acc)
            if self.verbose:
                self._say(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc}"
                          + (f", val acc:{val_acc}" if val_acc is not None else "") + " ===")
            self._record(self._entry(self._epoch_of(step), train_acc, test_acc, val_acc, final=False))
        if self.callbacks:
            self._call("on_step_end", {"iteration": self.current_iter,
                                       "loss": float(loss) if loss is not None else None})

    def train(self) -> float:
        """Run the remaining iterations, then measure accuracy on the whole test set.

        Returns the final test accuracy. Ctrl-C (in the main thread) ends training after the
        current step; ``interrupted`` is then True and the final accuracy is still measured.
        A callback setting ``stop_training`` ends it the same way (``interrupted`` stays False).
        """
        self.stop_training = False
        if self.history and self.history[-1].get("final"):
            self.history.pop()                 # training goes on: that measurement is superseded
        self._call("on_train_begin")
        previous = None
        # only in the main thread, and not where SIGINT is deliberately ignored (nohup, background jobs)
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is not signal.SIG_IGN):
            def on_sigint(signum: int, frame: Any) -> None:
                if self._stop:                       # second Ctrl-C: stop at once
                    raise KeyboardInterrupt
                self._stop = True
                self._say("interrupted: finishing the current step (Ctrl-C again to abort)")
            previous = signal.signal(signal.SIGINT, on_sigint)
        if self.progress:
            from tqdm.auto import tqdm
            self._bar = tqdm(total=self.max_iter, initial=self.current_iter, unit="it", dynamic_ncols=True)
        try:
            while self.current_iter < self.max_iter and not self._stop and not self.stop_training:
                self.train_step()
                if self._bar is not None:
                    self._bar.update(1)
                    if self.current_iter % 10 == 0 or self.current_iter == self.max_iter:
                        self._postfix()
                if self.stop_on_divergence and self.diverged_at is not None:
                    break
            self.interrupted = self._stop
            entry = self._final()           # while the bar is open: it ends on the final accuracy
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if self._bar is not None:
                self._postfix()
                self._bar.close()
                self._bar = None
        self._call("on_train_end", entry)
        assert self.test_acc is not None
        return self.test_acc

    def _final(self) -> Dict[str, Any]:
        """The evaluation after training: the whole test set (the book's final accuracy and lines),
        train and validation accuracy as at every epoch; recorded in ``history``."""
        self.test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            self._say("=============== Final Test Accuracy ===============")
            self._say("test acc:" + str(self.test_acc))
        train_acc = self.network.accuracy(*self._sample(self.x_train, self.t_train))
        val_acc = (self.network.accuracy(*self._sample(self.x_val, self.t_val))
                   if self.x_val is not None else None)
        done = self.current_iter / self.iter_per_epoch
        epoch: Union[int, float] = int(round(done)) if abs(done - round(done)) < _EPS else round(done, 4)
        entry = self._entry(epoch, train_acc, self.test_acc, val_acc, final=True)
        self._record(entry)
        return entry

    # -- checkpoints --------------------------------------------------------------------
    def save_checkpoint(self, path: "str | os.PathLike[str]") -> None:
        """Write the weights, the optimizer's state, the counters, the lists and ``history`` and
        NumPy's global random state to ``path``, one ``.npz`` written atomically (with
        ``network.save_params(meta=..., extra=...)``). ``load_checkpoint`` continues from it;
        ``fastdl.load_model`` and ``net.load_params`` read its weights."""
        _checkpoint.save_checkpoint(self, path)

    def load_checkpoint(self, path: "str | os.PathLike[str]") -> None:
        """Restore what ``save_checkpoint`` wrote to ``path`` into this Trainer and its network
        and optimizer (and NumPy's global random state), so that ``train()`` continues the saved
        run. The Trainer must have the same number of training samples, ``mini_batch_size`` and
        kind of optimizer; its hyper-parameters (``lr``...) stay its own. Everything is checked
        before anything is changed; a file that does not fit raises a one-line ValueError."""
        _checkpoint.load_checkpoint(self, path)

    # -- what happened ------------------------------------------------------------------
    @property
    def diverged_at(self) -> Optional[int]:
        """Index in ``train_loss_list`` of the first loss that is NaN or infinite; None while all
        are finite. Read from the list itself, so it holds however the steps were run."""
        while self._diverged_at is None and self._losses_seen < len(self.train_loss_list):
            if not _finite(self.train_loss_list[self._losses_seen]):
                self._diverged_at = self._losses_seen
            self._losses_seen += 1
        return self._diverged_at

    @property
    def divergence(self) -> Optional[Tuple[int, float]]:
        """``(iterations done, loss)`` at the first NaN or infinite loss: (4, nan) when the fourth
        step's loss was NaN; None while every loss is finite."""
        at = self.diverged_at
        return None if at is None else (at + 1, float(self.train_loss_list[at]))

    @property
    def images_per_second(self) -> float:
        """Training throughput so far (gradient + update only, evaluations excluded)."""
        return self._images / self._busy if self._busy else 0.0
