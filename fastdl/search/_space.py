"""Search spaces and seeds: what a trial's hyper-parameters and seed are, from the search seed alone.

A range is ``(low, high, scale)``: ``scale`` "log" draws ``10 ** U(log10 low, log10 high)`` (the
book's ``10 ** np.random.uniform(-6, -2)``), "linear" draws ``U(low, high)``; ``low == high`` is a
fixed value (nothing drawn). A range given without its scale (``"1e-6:1e-2"``, ``(1e-6, 1e-2)``)
is log-scale when it spans two decades or more (``high / low >= 100``, both > 0: a linear draw
would put 99% of the trials in the top two decades) and linear otherwise (:func:`auto_scale`);
``:linear`` or ``:log`` says it explicitly.

Seeds (:func:`trial_seed`, :func:`trial_params`, :func:`split_seed`) come from
``numpy.random.SeedSequence(search seed, spawn_key=...)``: trial ``i``'s parameters from
spawn key ``(i, 0)``, the seed of its training (weights, mini-batches, dropout; NumPy's global RNG,
seeded in the worker) from ``(i, 1)``, and the shuffle that splits training from validation
images, shared by every trial as in the book, from the search seed's own sequence. Nothing
depends on the number of trials, of workers or on the order trials finish in.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

#: a range in canonical form: ``(low, high, scale)``, scale "log" or "linear"
Range = Tuple[float, float, str]

PARAMS: Tuple[str, ...] = ("weight_decay", "lr", "dropout")
"""The hyper-parameters a search can vary, in the order they are drawn (the book draws weight decay
first)."""
#: how the book's result lines name them
LABELS = {"lr": "lr", "weight_decay": "weight decay", "dropout": "dropout"}
_ALIASES = {"lr": "lr", "learning_rate": "lr", "learning-rate": "lr",
            "weight_decay": "weight_decay", "weight-decay": "weight_decay", "wd": "weight_decay",
            "weight_decay_lambda": "weight_decay",
            "dropout": "dropout", "dropout_ratio": "dropout", "dropout_ration": "dropout"}
SCALES = ("log", "linear")

BOOK_SPACE: Dict[str, Range] = {"lr": (1e-6, 1e-2, "log"), "weight_decay": (1e-8, 1e-4, "log")}
"""The book's ranges (ch06/hyperparameter_optimization.py): lr = 10^U(-6, -2), weight decay =
10^U(-8, -4), as ``{name: (low, high, scale)}``; a search's space starts from these."""


def param_name(name: Any) -> str:
    """The canonical name of a parameter (``wd`` -> ``weight_decay``); ValueError if unknown."""
    key = str(name).strip().lower()
    if key not in _ALIASES:
        raise ValueError(f"unknown parameter {name!r}; choose from lr, weight_decay (wd), dropout")
    return _ALIASES[key]


def _number(text: Any, what: str) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise ValueError(f"{what}: expected a number, got {text!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{what}: must be finite, got {text!r}")
    return value


#: a range spanning this ratio (high / low) or more is drawn log-scale unless its scale is given
LOG_RATIO = 100.0


def auto_scale(low: float, high: float) -> str:
    """The scale of a range given without one: "log" when it spans two decades or more
    (``high / low >= 100`` with both ends > 0), else "linear"."""
    return "log" if 0 < low and high >= LOG_RATIO * low else "linear"


def check_range(name: str, low: Any, high: Any, scale: Any = None) -> Range:
    """Validate one range; returns it as ``(float low, float high, scale)``. ``scale`` None: the
    range's own (:func:`auto_scale`)."""
    low, high = _number(low, name), _number(high, name)
    if scale is None or (isinstance(scale, str) and not scale.strip()):
        scale = auto_scale(low, high) if low <= high else "linear"
    scale = str(scale).strip().lower()
    if scale in ("lin", "uniform"):
        scale = "linear"
    if scale not in SCALES:
        raise ValueError(f"{name}: scale must be log or linear, got {scale!r}")
    if low > high:
        raise ValueError(f"{name}: the low end {low:g} is above the high end {high:g}")
    if scale == "log" and low <= 0:
        raise ValueError(f"{name}: a log range needs a low end > 0, got {low:g}")
    if name == "lr" and low <= 0:
        raise ValueError(f"lr: the learning rate must be > 0, got {low:g}")
    if name == "weight_decay" and low < 0:
        raise ValueError(f"weight_decay: must be >= 0, got {low:g}")
    if name == "dropout" and not (0 <= low and high < 1):
        raise ValueError(f"dropout: the ratio must be in [0, 1), got {low:g}:{high:g}")
    return (low, high, scale)


def parse_range(name: str, text: Any) -> Range:
    """``"1e-6:1e-2:log"``, ``"0.1:0.5"`` (no scale: log when the range spans two decades or more,
    else linear) or ``"0.01"`` (fixed) -> ``(low, high, scale)``."""
    parts = str(text).strip().split(":")
    if len(parts) == 1 and parts[0]:
        return check_range(name, parts[0], parts[0], "linear")
    if len(parts) in (2, 3) and parts[0].strip() and parts[1].strip():
        return check_range(name, parts[0], parts[1], parts[2] if len(parts) == 3 else None)
    raise ValueError(f"{name}: expected LOW:HIGH[:log|linear] or a single value, got {text!r}")


def parse_param(text: Any) -> Tuple[str, Range]:
    """``"lr=1e-6:1e-2:log"`` -> ``("lr", (1e-06, 0.01, "log"))`` (the ``--param`` option)."""
    name, sep, value = str(text).partition("=")
    if not sep or not name.strip():
        raise ValueError(f"expected NAME=LOW:HIGH[:log|linear] (e.g. lr=1e-6:1e-2:log), got {text!r}")
    name = param_name(name)
    return name, parse_range(name, value)


def normalize_space(space: Optional[Mapping[str, Any]]) -> Dict[str, List[Any]]:
    """A search space in canonical form: ``{name: [low, high, scale]}`` in :data:`PARAMS` order.

    ``space`` maps names (or aliases) to ``"LOW:HIGH[:log|linear]"`` strings, a single number
    (fixed), ``(low, high)`` or ``(low, high, scale)``; None is :data:`BOOK_SPACE`. Without a
    scale, a range spanning two decades or more is log-scale, any other linear (:func:`auto_scale`).
    Names not given keep the book's: ``{"lr": "1e-3:1e-1:log"}`` still draws the weight decay
    from 1e-8:1e-4:log (give ``weight_decay=0`` to turn it off)."""
    merged: Dict[str, Range] = dict(BOOK_SPACE)
    for key, value in (space or {}).items():
        name = param_name(key)
        if isinstance(value, str):
            rng = parse_range(name, value)
        elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            rng = check_range(name, value, value, "linear")
        elif isinstance(value, (tuple, list)) and len(value) in (2, 3):
            rng = check_range(name, value[0], value[1], value[2] if len(value) == 3 else None)
        else:
            raise ValueError(f"{name}: expected 'LOW:HIGH[:log|linear]', a number or (low, high[, scale]); "
                             f"got {value!r}")
        merged[name] = rng
    return {name: list(merged[name]) for name in PARAMS if name in merged}


def _draw(rng: np.random.Generator, low: float, high: float, scale: str) -> float:
    if low == high:
        return float(low)
    if scale == "log":
        return float(10 ** rng.uniform(math.log10(low), math.log10(high)))
    return float(rng.uniform(low, high))


def trial_params(space: Mapping[str, Any], seed: int, index: int) -> Dict[str, float]:
    """Trial ``index``'s hyper-parameters: a dict in :data:`PARAMS` order."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, 0)))
    return {name: _draw(rng, *space[name]) for name in PARAMS if name in space}


def trial_seed(seed: int, index: int) -> int:
    """The seed NumPy's global RNG gets for trial ``index`` (weights, mini-batches, dropout)."""
    return int(np.random.SeedSequence(seed, spawn_key=(index, 1)).generate_state(1)[0])


def split_seed(seed: int) -> int:
    """Seed of the one shuffle that splits training from validation images (the book's
    ``shuffle_dataset`` before its trials)."""
    return int(np.random.SeedSequence(seed).generate_state(1)[0])


def sampling(space: Mapping[str, Any]) -> str:
    """How each parameter of a (normalized) space is drawn, in the book's names:
    ``lr 1e-06..0.01 log-scale, weight decay 1e-08..0.0001 log-scale, dropout 0.1 fixed``."""
    parts = []
    for name in ("lr", "weight_decay", "dropout"):
        if name not in space:
            continue
        low, high, scale = space[name]
        if low == high:
            parts.append(f"{LABELS[name]} {low:g} fixed")
        else:
            parts.append(f"{LABELS[name]} {low:g}..{high:g} {'log-scale' if scale == 'log' else 'linear'}")
    return ", ".join(parts)


def describe(params: Mapping[str, Any]) -> str:
    """``lr:0.0012..., weight decay:3.4e-07``: the book's way of naming a trial."""
    order = ["lr", "weight_decay", "dropout"]
    return ", ".join(f"{LABELS[k]}:{params[k]}" for k in order if k in params)
