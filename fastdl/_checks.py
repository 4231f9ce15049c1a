"""Input validation shared by the user-facing modules. Errors name the argument,
what was expected and what was received."""
from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike, NDArray

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


from .kernels.arrays import is_device_array, to_host  # noqa: F401  (the one definition)


def float_array(name: str, x: Any, ndims: int | Sequence[int] | None = None, owner: str = "") -> Any:
    """Return x as a float32 or float64 ndarray (device arrays pass through unconverted).

    What NumPy and the book accept is accepted: lists and scalars, float32 and
    float64 as they are, float16 computed in float32 (half storage, single
    arithmetic), integers and booleans converted to float64 (as ``x * 1.0``
    would). Complex numbers, strings and objects are refused with a TypeError,
    a rank not in ``ndims`` with a ValueError.
    """
    where = f"{owner}: " if owner else ""
    if is_device_array(x):
        dt = np.dtype(x.dtype)
        if dt not in FLOAT_DTYPES:
            raise TypeError(f"{where}{name} must be a float32 or float64 device array, got dtype {dt}")
        if ndims is not None:
            nd = (ndims,) if isinstance(ndims, int) else ndims
            if len(x.shape) not in nd:
                want = " or ".join(f"{d}-D" for d in nd)
                raise ValueError(f"{where}{name} must be {want}, got shape {tuple(x.shape)}")
        return x
    if not isinstance(x, np.ndarray):
        try:
            x = np.asarray(x)
        except Exception as exc:
            raise TypeError(f"{where}{name} must be an array of real numbers, "
                            f"got {type(x).__name__}") from exc
    if x.dtype not in FLOAT_DTYPES:
        x = _to_compute_dtype(where, name, x)
    if ndims is not None:
        if isinstance(ndims, int):
            ndims = (ndims,)
        if x.ndim not in ndims:
            want = " or ".join(f"{d}-D" for d in ndims)
            raise ValueError(f"{where}{name} must be {want}, got {x.ndim}-D array of shape {x.shape}")
    return x


def compute_dtype(dt: DTypeLike) -> np.dtype | None:
    """The dtype fastdl computes in for data stored as ``dt``: float32 and float64 as they are,
    float16 in float32, integers and booleans in float64."""
    dt = np.dtype(dt)
    if dt in FLOAT_DTYPES:
        return dt
    if dt == np.float16:
        return np.dtype(np.float32)
    if dt.kind in "biu":
        return np.dtype(np.float64)
    return None


def _to_compute_dtype(where: str, name: str, x: np.ndarray) -> np.ndarray:
    target = compute_dtype(x.dtype)
    if target is None:
        what = ("complex numbers" if x.dtype.kind == "c" else
                f"dtype {x.dtype}" if x.dtype.kind != "O" else "Python objects")
        raise TypeError(f"{where}{name} must hold real numbers (float, integer or bool), "
                        f"got {what} (shape {x.shape})")
    return x.astype(target)


def numeric_array(name: str, x: ArrayLike, owner: str = "") -> np.ndarray:
    """Return x as an ndarray of real numbers (bool, int or float)."""
    where = f"{owner}: " if owner else ""
    arr = np.asarray(x)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}{name} must hold real numbers, got dtype {arr.dtype}")
    return arr


def finite(name: str, x: np.ndarray, owner: str = "") -> None:
    """Raise ValueError if x (data handed in by the user) holds NaN or infinity."""
    if x.dtype.kind == "f" and not np.isfinite(x).all():
        where = f"{owner}: " if owner else ""
        bad = "NaN" if np.isnan(x).any() else "infinity"
        raise ValueError(f"{where}{name} contains {bad} (shape {x.shape}); clean the data before "
                         "training or evaluating")


def positive_int(name: str, v: Any, minimum: int = 1, owner: str = "") -> int:
    """Return v as an int if it is an integer (not a bool) >= ``minimum``; TypeError or
    ValueError naming it otherwise."""
    where = f"{owner}: " if owner else ""
    if isinstance(v, bool) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{where}{name} must be an integer, got {type(v).__name__} {v!r}")
    if v < minimum:
        raise ValueError(f"{where}{name} must be >= {minimum}, got {v}")
    return int(v)


#: the unsigned integer dtype of each signed one's size: a signed label array viewed as it holds
#: its negative values as numbers above any class count, so one maximum checks both ends
_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


#: one-hot label arrays of at most this many bytes are remembered by ``labels`` (the last one):
#: the book's gradient checks give the same few rows tens of thousands of times
_ONE_HOT_MEMO_BYTES = 1024
#: (dtype, shape, bytes, labels) of the last small one-hot t that ``labels`` accepted, or None
_one_hot_memo: tuple[np.dtype, tuple[int, ...], bytes, NDArray[np.intp]] | None = None


def _remember_one_hot(dt: np.dtype, shape: tuple[int, ...], data: bytes, found: NDArray[np.intp]) -> None:
    global _one_hot_memo
    _one_hot_memo = (dt, shape, data, found.copy())


def labels(t: ArrayLike, n: int, k: int, owner: str = "") -> NDArray[np.intp]:
    """Normalise labels for a batch of n rows and k classes to an int array (n,).

    Accepted: (n,) or (n, 1) integer class indices (floats holding whole
    numbers are accepted too), or (n, k) one-hot rows.
    """
    if type(t) is not np.ndarray:
        t = np.asarray(t)
    kind = t.dtype.kind
    if kind not in "biuf":
        where = f"{owner}: " if owner else ""
        raise TypeError(f"{where}labels t must be integers or one-hot rows, got dtype {t.dtype}")
    shape = t.shape
    if len(shape) == 2 and shape == (n, k) and not (k == 1):
        # a small one-hot t holding the very bytes (dtype and shape) of the last one checked has
        # the same labels: a copy of them (t's contents are compared, so a t changed in place is
        # checked again)
        small = t.nbytes <= _ONE_HOT_MEMO_BYTES
        if small:
            data = t.tobytes()
            memo = _one_hot_memo
            if memo is not None and memo[0] == t.dtype and memo[1] == shape and memo[2] == data:
                return memo[3].copy()
        # one-hot rows: every row's largest value is 1 and the rows hold n non-zeros in all, so
        # each row holds one 1 and zeros (NaN is no row's 1; -0.0 is a zero)
        if n and not (k and np.count_nonzero(np.maximum.reduce(t, axis=1) == 1) == n
                      and np.count_nonzero(t) == n):
            where = f"{owner}: " if owner else ""
            raise ValueError(f"{where}labels t of shape {t.shape} must be one-hot rows "
                             "(one 1 per row, zeros elsewhere)")
        found = t.argmax(axis=1)
        if small:
            _remember_one_hot(t.dtype, shape, data, found)
        return found
    if len(shape) == 2 and shape[1] == 1:
        t = t[:, 0]
    if t.ndim != 1 or t.shape[0] != n:
        where = f"{owner}: " if owner else ""
        raise ValueError(f"{where}labels t must have shape ({n},), ({n}, 1) or one-hot ({n}, {k}) "
                         f"to match the batch of {n}, got shape {t.shape}")
    if kind == "f":
        if not np.isfinite(t).all() or (t != np.round(t)).any():
            where = f"{owner}: " if owner else ""
            raise ValueError(f"{where}labels t must be whole class indices, got non-integer values")
    if n:
        unsigned = _UNSIGNED.get(t.dtype) if kind == "i" else t.dtype if kind == "u" else None
        if (np.maximum.reduce(t.view(unsigned)) >= k if unsigned is not None
                else t.min() < 0 or t.max() >= k):
            where = f"{owner}: " if owner else ""
            raise ValueError(f"{where}labels t must lie in [0, {k - 1}] for {k} classes, "
                             f"got values from {t.min()} to {t.max()}")
    return t.astype(np.intp, copy=False)
