"""A user's own arrays for ``fastdl train --data FILE.npz`` (and ``fastdl evaluate``).

The file holds four arrays, as ``numpy.savez(path, x_train=..., t_train=..., x_test=..., t_test=...)``
writes them:

* ``x_train``, ``x_test``: images of 28x28 pixels, shaped (N, 1, 28, 28), (N, 28, 28) or (N, 784);
  integers 0-255 (divided by 255, as MNIST's loader does) or floats (used as they are: fastdl's
  MNIST images and ``fastdl predict``'s prepared digits are in [0, 1]); no NaN or infinity.
* ``t_train``, ``t_test``: labels 0-9, as whole numbers (N,) (also (N, 1), or floats holding whole
  numbers) or as one-hot rows (N, 10).

Every problem is a :class:`DataFileError` whose message is one line naming the file, the array and
what to do.
"""
from __future__ import annotations

import os
import zipfile
from typing import Tuple

import numpy as np

CLASSES = 10
"""Classes of fastdl train's networks (their output size)."""
KEYS = ("x_train", "t_train", "x_test", "t_test")
IMAGE_SHAPES = "(N, 1, 28, 28), (N, 28, 28) or (N, 784)"

Split = Tuple[np.ndarray, np.ndarray]


class DataFileError(ValueError):
    """An .npz file given as --data that cannot be used; a usage error (exit status 2)."""


def is_data_file(text: str) -> bool:
    """Whether a --data value names a file rather than a built-in data set."""
    return text.lower().endswith(".npz") or os.sep in text or (os.altsep or os.sep) in text \
        or os.path.isfile(text)


def _images(path: str, key: str, x: np.ndarray, flatten: bool) -> np.ndarray:
    if x.dtype == object or not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)
                                 or x.dtype == bool):
        raise DataFileError(f"{path}: {key} has dtype {x.dtype}; expected numbers (uint8 0-255 or floats)")
    n = x.shape[0] if x.ndim else 0
    if x.ndim == 0 or x.shape[1:] not in ((1, 28, 28), (28, 28), (784,)):
        raise DataFileError(f"{path}: {key} has shape {x.shape}; expected {IMAGE_SHAPES} (28x28 images)")
    if n == 0:
        raise DataFileError(f"{path}: {key} holds no images")
    if np.issubdtype(x.dtype, np.floating):
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.flatnonzero(bad.reshape(n, -1).any(axis=1))[0])
            raise DataFileError(f"{path}: {key} holds NaN or infinite values (first in image {i}); "
                                "remove or fix those images")
        out = x.astype(np.float32)
    else:
        low, high = int(x.min()), int(x.max())
        if low < 0 or high > 255:
            raise DataFileError(f"{path}: {key} holds integers from {low} to {high}; expected 0-255 "
                                "(or floats)")
        out = x.astype(np.float32) / np.float32(255.0)
    return out.reshape((n, 784) if flatten else (n, 1, 28, 28))


def _labels(path: str, key: str, t: np.ndarray, n: int, x_key: str) -> np.ndarray:
    if t.dtype == object or not (np.issubdtype(t.dtype, np.integer) or np.issubdtype(t.dtype, np.floating)
                                 or t.dtype == bool):
        raise DataFileError(f"{path}: {key} has dtype {t.dtype}; expected whole numbers 0-{CLASSES - 1} "
                            f"or one-hot rows")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.ndim == 2 and t.shape[1] == CLASSES:
        rows = t.astype(np.float64)
        if not (np.isin(rows, (0.0, 1.0)).all() and (rows.sum(axis=1) == 1).all()):
            raise DataFileError(f"{path}: {key} has shape {t.shape} but its rows are not one-hot "
                                f"(one 1 and nine 0s each)")
        t = rows.argmax(axis=1)
    elif t.ndim != 1:
        raise DataFileError(f"{path}: {key} has shape {t.shape}; expected (N,) labels 0-{CLASSES - 1} "
                            f"or (N, {CLASSES}) one-hot rows")
    if len(t) != n:
        raise DataFileError(f"{path}: {key} has {len(t)} labels but {x_key} has {n} images")
    if np.issubdtype(t.dtype, np.floating):
        if not np.isfinite(t).all():
            raise DataFileError(f"{path}: {key} holds NaN or infinite labels")
        if not (t == np.round(t)).all():
            i = int(np.flatnonzero(t != np.round(t))[0])
            raise DataFileError(f"{path}: {key} holds {t[i].item()!r} at index {i}; labels must be whole numbers "
                                f"0-{CLASSES - 1}")
    bad = (t < 0) | (t >= CLASSES)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataFileError(f"{path}: {key} holds label {t[i].item()!r} at index {i}; labels must be 0-{CLASSES - 1} "
                            f"(the networks have {CLASSES} outputs)")
    return t.astype(np.int64)


def load_npz(path: str, flatten: bool) -> Tuple[Split, Split]:
    """``(x_train, t_train), (x_test, t_test)`` from a user's .npz file: images float32 (N, 784) if
    ``flatten`` else (N, 1, 28, 28), labels int64 (N,). Raises DataFileError (one line)."""
    if not os.path.exists(path):
        raise DataFileError(f"--data {path}: no such file (give sample, mnist, fashion or an .npz file "
                            f"with {', '.join(KEYS)})")
    if os.path.isdir(path):
        raise DataFileError(f"--data {path}: is a folder; give an .npz file")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise DataFileError(f"{path}: holds a single array (.npy); save the four arrays with "
                                f"numpy.savez(path, {', '.join(k + '=...' for k in KEYS)})")
        with loaded as f:
            missing = [k for k in KEYS if k not in f.files]
            if missing:
                has = ", ".join(f.files) or "no arrays"
                raise DataFileError(f"{path}: missing {', '.join(missing)} (it has {has}); --data needs "
                                    f"{', '.join(KEYS)}")
            arrays = {k: f[k] for k in KEYS}
    except DataFileError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        text = " ".join(str(exc).split())
        if "pickle" in text.lower():
            text = "it holds Python objects (pickles), which fastdl does not load; save plain arrays"
        raise DataFileError(f"{path}: not a readable .npz file ({text})") from None
    out = []
    for split in ("train", "test"):
        xk, tk = f"x_{split}", f"t_{split}"
        x = _images(path, xk, arrays[xk], flatten)
        t = _labels(path, tk, arrays[tk], len(x), xk)
        out.append((x, t))
    return out[0], out[1]
