"""The checks of the networks' constructor arguments: sizes, numbers, weight scales, dtypes; each
error names the argument."""
from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .._checks import positive_int


def make_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """``dtype`` as a NumPy dtype; TypeError unless it is float32 or float64."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def sizes(owner: str, **named: Any) -> list[int]:
    """Each value as an int, checked to be a positive integer (numpy integers accepted, bools and
    floats refused): a layer of 0 units is certainly a mistake. TypeError or ValueError naming it."""
    return [positive_int(name, v, 1, owner=owner) for name, v in named.items()]


def finite_number(owner: str, name: str, v: Any, minimum: float | None = None) -> float:
    """v as a float, checked to be a real number (not a bool), finite, and >= ``minimum`` if
    given; TypeError or ValueError naming it."""
    import math
    import numbers
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not math.isfinite(f) or (minimum is not None and f < minimum):
        more = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{owner}: {name} must be a finite number{more}, got {v!r}")
    return f


def init_scale(weight_init_std: float | str, fan_in: int) -> float:
    """The book's weight scales: 'relu'/'he' -> sqrt(2/fan_in), 'sigmoid'/'xavier' -> sqrt(1/fan_in),
    or a number used as is."""
    s = str(weight_init_std).lower()
    if s in ("relu", "he"):
        return np.sqrt(2.0 / fan_in)
    if s in ("sigmoid", "xavier"):
        return np.sqrt(1.0 / fan_in)
    try:
        scale = float(weight_init_std)
    except (TypeError, ValueError):
        raise ValueError(f"weight_init_std must be a number, 'relu'/'he' or 'sigmoid'/'xavier', "
                         f"got {weight_init_std!r}") from None
    if not np.isfinite(scale):
        raise ValueError(f"weight_init_std must be a finite number, got {weight_init_std!r}")
    return scale
