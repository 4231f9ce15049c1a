"""The checks of ``Trainer``'s arguments, each one line that names the argument and what to do,
and the table of optimizer names ``Trainer(optimizer="adam")`` accepts. :mod:`fastdl.trainer`
re-exports ``OPTIMIZERS`` and ``OPTIMIZER_NAMES``.
"""
from __future__ import annotations

import difflib
import math
import numbers
from collections.abc import Iterable
from typing import Any, Dict, List, Mapping, Optional, Tuple, Type, Union

import numpy as np

from .callbacks import Callback
from .optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop

OPTIMIZERS: Dict[str, Type[Any]] = {
    "sgd": SGD, "momentum": Momentum, "nesterov": Nesterov, "adagrad": AdaGrad,
    "rmsprop": RMSprop, "rmsprpo": RMSprop, "adam": Adam}   # 'rmsprpo': the book's spelling
"""Lower-case optimizer name -> its class in :mod:`fastdl.optimizers` (what ``Trainer``'s
``optimizer`` argument names, in any case). The book's misspelling ``"rmsprpo"`` is accepted."""

OPTIMIZER_NAMES: Tuple[str, ...] = tuple(name for name in OPTIMIZERS if name != "rmsprpo")
"""The optimizer names to offer: the keys of ``OPTIMIZERS`` without the book's misspelling."""

HOOKS = ("on_train_begin", "on_step_end", "on_epoch_end", "on_train_end")
"""The methods a callback may have, in the order ``Trainer`` calls them."""


def epochs_arg(epochs: Any) -> float:
    """``epochs`` as given, checked: a finite real number >= 0."""
    if isinstance(epochs, (bool, np.bool_)) or not isinstance(epochs, numbers.Real):
        raise TypeError(f"Trainer: epochs must be a number, got {type(epochs).__name__} {epochs!r}")
    if not math.isfinite(float(epochs)) or float(epochs) < 0:
        raise ValueError(f"Trainer: epochs must be a finite number >= 0, got {epochs!r}")
    return epochs  # type: ignore[return-value]  # int or float, as given


def verbose_arg(verbose: Any) -> Union[bool, str]:
    """True, False or ``"iter"`` (any case; 0 and 1 are False and True)."""
    if isinstance(verbose, str):
        if verbose.lower() == "iter":
            return "iter"
    elif isinstance(verbose, (bool, np.bool_)) or (isinstance(verbose, numbers.Integral) and verbose in (0, 1)):
        return bool(verbose)
    raise ValueError(f"Trainer: verbose must be True, False or 'iter', got {verbose!r}")


def split_validation(x_train: Any, t_train: Any, x_val: Any, t_val: Any,
                     split: Any) -> Tuple[Any, Any, Any, Any]:
    """(x_train, t_train, x_val, t_val): the given validation data, or the last ``round(split * N)``
    training samples (in their order), or no validation data (None, None)."""
    if isinstance(split, (bool, np.bool_)) or not isinstance(split, numbers.Real):
        raise TypeError(f"Trainer: validation_split must be a number in [0, 1), got {split!r}")
    split = float(split)
    if not (0 <= split < 1):
        raise ValueError(f"Trainer: validation_split must be in [0, 1), got {split!r}")
    if (x_val is None) != (t_val is None):
        raise ValueError("Trainer: pass both x_val and t_val, or neither")
    if x_val is not None:
        if split:
            raise ValueError("Trainer: give x_val/t_val or validation_split, not both")
        if len(x_val) != len(t_val):
            raise ValueError(f"Trainer: x_val has {len(x_val)} samples but t_val has {len(t_val)}")
        if len(x_val) == 0:
            raise ValueError("Trainer: x_val is empty; pass validation samples or leave x_val out")
        return x_train, t_train, x_val, t_val
    if not split:
        return x_train, t_train, None, None
    n = len(x_train)
    n_val = int(round(split * n))
    if n_val == 0 or n_val == n:
        raise ValueError(f"Trainer: validation_split={split} of {n} samples leaves "
                         f"{n - n_val} for training and {n_val} for validation; both need at least one")
    cut = n - n_val
    return x_train[:cut], t_train[:cut], x_train[cut:], t_train[cut:]


def make_optimizer(optimizer: Any, param: Optional[Mapping[str, Any]]) -> Any:
    """An optimizer instance: built from a name of ``OPTIMIZERS`` and ``param`` (``lr=0.01`` by
    default), or the instance given (then ``param`` must be empty)."""
    if isinstance(optimizer, str):
        cls = OPTIMIZERS.get(optimizer.lower())
        if cls is None:
            near = difflib.get_close_matches(optimizer.lower(), OPTIMIZER_NAMES, n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise ValueError(f"Trainer: unknown optimizer {optimizer!r}{hint}; choose from "
                             f"{', '.join(OPTIMIZER_NAMES)}, or pass an instance such as Adam()")
        if param is None:
            param = {"lr": 0.01}
        if not isinstance(param, Mapping):
            raise TypeError(f"Trainer: optimizer_param must be a dict of {cls.__name__}'s arguments, "
                            f"got {type(param).__name__}")
        try:
            return cls(**param)
        except (TypeError, ValueError) as exc:
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            msg = msg[len(cls.__name__) + 2:] if msg.startswith(cls.__name__ + ": ") else msg
            raise type(exc)(f"Trainer: optimizer_param {dict(param)!r} does not fit "
                            f"{cls.__name__}: {msg}") from None
    if optimizer is None or isinstance(optimizer, type) or not callable(getattr(optimizer, "update", None)):
        what = (f"the class {optimizer.__name__}, pass an instance: {optimizer.__name__}()"
                if isinstance(optimizer, type) else f"{type(optimizer).__name__} {optimizer!r}")
        raise TypeError(f"Trainer: optimizer must be a name ({', '.join(OPTIMIZER_NAMES)}) or an "
                        f"optimizer instance such as Adam(); got {what}")
    if param:
        raise ValueError(f"Trainer: optimizer_param applies to an optimizer name only; set "
                         f"the arguments on the instance, e.g. {type(optimizer).__name__}(lr=...)")
    return optimizer


def callbacks_arg(callbacks: Any) -> List[Any]:
    """The callbacks as a list (None: none), each a ``Callback`` or an object with a hook method."""
    if callbacks is None:
        return []
    if isinstance(callbacks, Callback) or not isinstance(callbacks, Iterable) or isinstance(callbacks, str):
        raise TypeError(f"Trainer: callbacks must be a list of callbacks, got {type(callbacks).__name__}; "
                        "wrap a single one in a list: callbacks=[cb]")
    out = list(callbacks)
    for i, cb in enumerate(out):
        if not (isinstance(cb, Callback) or any(callable(getattr(cb, h, None)) for h in HOOKS)):
            raise TypeError(f"Trainer: callbacks[{i}] is a {type(cb).__name__}, not a callback "
                            "(subclass fastdl.callbacks.Callback)")
    return out
