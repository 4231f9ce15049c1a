"""Small conversions shared by the report's collection and its backward rules: a host float64
copy of any backend's array, a JSON-safe number, class indices of labels and a shape as text."""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from .._checks import to_host


def host(a: Any) -> np.ndarray:
    """A float64 host copy of an array of any backend (a number too)."""
    return np.array(to_host(a), dtype=np.float64)


def number(v: Any) -> float | None:
    """A float for JSON: None for NaN and infinities."""
    v = float(v)
    return v if math.isfinite(v) else None


def labels_of(t: np.ndarray) -> np.ndarray:
    """Class indices of labels given as indices or one-hot rows."""
    return t.argmax(axis=1) if t.ndim == 2 and t.shape[1] > 1 else t.reshape(len(t)).astype(np.int64)


def fmt_shape(shape: Sequence[int]) -> str:
    """A shape as Python writes a tuple: ``(3,)``, ``(2, 4)``."""
    return "(" + ", ".join(str(int(v)) for v in shape) + ("," if len(shape) == 1 else "") + ")"
