"""The book's ``Trainer`` (``common/trainer.py``), with a progress bar, seeding and safe interruption.

Behaviour kept from the book: mini-batches of ``mini_batch_size`` drawn with
replacement by ``np.random.choice``; ``max_iter = int(epochs * max(train_size /
mini_batch_size, 1))``; at the start of every epoch (iterations 0,
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

Divergence: ``diverged_at`` is the index (in ``train_loss_list``) of the first loss that is NaN
or infinite, ``divergence`` the same as (iterations done, that loss). The book's loop goes on to
the end with NaN; with ``stop_on_divergence=True`` ``train`` stops after that step instead
(``interrupted`` stays False) and still measures the final accuracy.
"""
from __future__ import annotations

import math
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Tuple, Type, Union

import numpy as np

from ._checks import finite
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

if TYPE_CHECKING:
    from tqdm.auto import tqdm as _Bar

__all__ = ["Trainer", "OPTIMIZERS", "OPTIMIZER_NAMES"]

OPTIMIZERS: Dict[str, Type[Any]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
    "rmsprop": RMSprop, "rmsprpo": RMSprop, "adam": Adam}   # 'rmsprpo': the book's spelling
"""Lower-case optimizer name -> its class in :mod:`fastdl.optimizers` (what ``Trainer``'s
``optimizer`` argument names, in any case). The book's misspelling ``"rmsprpo"`` is accepted."""

OPTIMIZER_NAMES: Tuple[str, ...] = tuple(name for name in OPTIMIZERS if name != "rmsprpo")
"""The optimizer names to offer: the keys of ``OPTIMIZERS`` without the book's misspelling."""


def _finite(loss: Any) -> bool:
    try:
        return math.isfinite(float(loss))
    except (TypeError, ValueError):
        return True                   # not a number (a network that records none): cannot tell


class Trainer:
    """Trains ``network`` with the book's loop. See the module docstring for details.

    Parameters
    ----------
    network : network
        A network of :mod:`fastdl.nets` (or one with the book's interface: ``params``,
        ``gradient(x, t)``, ``accuracy(x, t)`` and ``last_layer.loss``).
    x_train, t_train : ndarray, shape (N, ...) and (N,) or (N, K)
        Training images and labels.
    x_test, t_test : ndarray, shape (M, ...) and (M,) or (M, K)
        Test images and labels.
    epochs : float
        Number of epochs (``max_iter = int(epochs * max(N / mini_batch_size, 1))``).
    mini_batch_size : int
        Samples per step, drawn with replacement.
    optimizer : str
        A name of ``OPTIMIZERS`` (any case): ``"SGD"``, ``"Momentum"``, ``"Nesterov"``,
        ``"AdaGrad"``, ``"RMSprop"`` or ``"Adam"``.
    optimizer_param : dict, optional
        Keyword arguments of the optimizer (default ``{"lr": 0.01}``).
    evaluate_sample_num_per_epoch : int, optional
        Samples of each set the per-epoch accuracies are measured on (None: all).
    verbose : bool or "iter"
        Print the book's epoch lines and final line; ``"iter"`` also every step's loss.
    progress : bool, optional
        Show a progress bar (None: when stderr is a terminal).
    seed : int, optional
        Seed NumPy's global RNG with it first (weights are drawn before, by the network).
    stop_on_divergence : bool
        Stop after the first step whose loss is NaN or infinite.
    """

    def __init__(self, network: Any, x_train: Any, t_train: Any, x_test: Any, t_test: Any,
                 epochs: float = 20, mini_batch_size: int = 100, optimizer: str = "SGD",
                 optimizer_param: Optional[Mapping[str, Any]] = None,
                 evaluate_sample_num_per_epoch: Optional[int] = None,
                 verbose: Union[bool, str] = True, progress: Optional[bool] = None,
                 seed: Optional[int] = None, stop_on_divergence: bool = False) -> None:
        if len(x_train) != len(t_train):
            raise ValueError(f"Trainer: x_train has {len(x_train)} samples but t_train has {len(t_train)}")
        if len(x_test) != len(t_test):
            raise ValueError(f"Trainer: x_test has {len(x_test)} samples but t_test has {len(t_test)}")
        if len(x_train) == 0:
            raise ValueError("Trainer: x_train is empty")
        for name, data in (("x_train", x_train), ("x_test", x_test)):
            finite(name, np.asarray(data), owner="Trainer")   # NaN in the data is reported up front
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"Trainer: unknown optimizer {optimizer!r}; choose from "
                             f"{', '.join(OPTIMIZER_NAMES)}")
        if seed is not None:
            np.random.seed(seed)
        self.network = network
        """The network being trained."""
        self.verbose = verbose
        """Print the book's lines: True, False or ``"iter"``."""
        self.x_train = x_train
        """Training images."""
        self.t_train = t_train
        """Training labels."""
        self.x_test = x_test
        """Test images."""
        self.t_test = t_test
        """Test labels."""
        self.epochs = epochs
        """Number of epochs."""
        self.batch_size = mini_batch_size
        """Samples per step (``mini_batch_size``)."""
        self.evaluate_sample_num_per_epoch = evaluate_sample_num_per_epoch
        """Samples of each set the per-epoch accuracies use (None: all)."""
        self.optimizer = OPTIMIZERS[optimizer.lower()](**(optimizer_param or {"lr": 0.01}))
        """The optimizer instance (of :mod:`fastdl.optimizers`)."""
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
        """Training accuracy at the start of every epoch."""
        self.test_acc_list: List[float] = []
        """Test accuracy at the start of every epoch."""
        self.test_acc: Optional[float] = None
        """The final accuracy on the whole test set; None until :meth:`train` has run."""
        self.interrupted = False
        """True if :meth:`train` ended early on Ctrl-C."""
        self.stop_on_divergence = stop_on_divergence
        """Stop after the first step whose loss is NaN or infinite."""
        self._diverged_at: Optional[int] = None
        self._losses_seen = 0        # train_loss_list[:_losses_seen] were finite
        self.progress = sys.stderr.isatty() if progress is None else progress
        """Show a progress bar."""
        self._bar: Optional[_Bar] = None
        self._stop = False
        self._images = 0
        self._busy = 0.0

    # -- output -------------------------------------------------------------------------
    def _say(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line)

    def _postfix(self) -> None:
        if self._bar is None:
            return
        post = {}
        if self.train_loss_list:
            post["loss"] = f"{float(self.train_loss_list[-1]):.4f}"
        if self.test_acc_list:
            post["test_acc"] = f"{self.test_acc_list[-1]:.4f}"
        if self._busy > 0:
            post["img/s"] = f"{self._images / self._busy:,.0f}"
        self._bar.set_postfix(post, refresh=False)

    # -- the book's loop ------------------------------------------------------------------
    def train_step(self) -> None:
        """One step of the book's loop: a mini-batch, its gradient, the optimizer's update.

        Appends the step's loss to ``train_loss_list``; at the start of an epoch (every
        ``iter_per_epoch`` steps, the first included) measures train and test accuracy into
        ``train_acc_list`` and ``test_acc_list``. ``train`` calls it ``max_iter`` times.
        """
        batch_mask = np.random.choice(self.train_size, self.batch_size)
        x_batch = self.x_train[batch_mask]
        t_batch = self.t_train[batch_mask]
        t0 = time.perf_counter()
        grads = self.network.gradient(x_batch, t_batch)
        self.optimizer.update(self.network.params, grads)
        self._busy += time.perf_counter() - t0
        self._images += len(batch_mask)
        loss = self.network.last_layer.loss
        self.train_loss_list.append(loss)
        if self.verbose == "iter":
            self._say("train loss:" + str(loss))

        if self.current_iter % self.iter_per_epoch == 0:
            self.current_epoch += 1
            x_tr, t_tr, x_te, t_te = self.x_train, self.t_train, self.x_test, self.t_test
            n = self.evaluate_sample_num_per_epoch
            if n is not None:
                x_tr, t_tr, x_te, t_te = x_tr[:n], t_tr[:n], x_te[:n], t_te[:n]
            train_acc = self.network.accuracy(x_tr, t_tr)
            test_acc = self.network.accuracy(x_te, t_te)
            self.train_acc_list.append(train_acc)
            self.test_acc_list.append(test_acc)
            if self.verbose:
                self._say(f"=== epoch:{self.current_epoch}, train acc:{train_acc}, test acc:{test_acc} ===")
        self.current_iter += 1

    def train(self) -> float:
        """Run the remaining iterations, then measure accuracy on the whole test set.

        Returns the final test accuracy. Ctrl-C (in the main thread) ends training after the
        current step; ``interrupted`` is then True and the final accuracy is still measured.
        """
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
            while self.current_iter < self.max_iter and not self._stop:
                self.train_step()
                if self._bar is not None:
                    self._bar.update(1)
                    if self.current_iter % 10 == 0 or self.current_iter == self.max_iter:
                        self._postfix()
                if self.stop_on_divergence and self.diverged_at is not None:
                    break
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)
            if self._bar is not None:
                self._postfix()
                self._bar.close()
                self._bar = None
        self.interrupted = self._stop
        self.test_acc = self.network.accuracy(self.x_test, self.t_test)
        if self.verbose:
            self._say("=============== Final Test Accuracy ===============")
            self._say("test acc:" + str(self.test_acc))
        return self.test_acc

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
