"""MNIST and Fashion-MNIST with the book's ``load_mnist`` interface.

Full MNIST is downloaded on first use into ``FASTDL_DATA_DIR`` (default
``$XDG_CACHE_HOME/fastdl`` or ``~/.cache/fastdl``), from mirrors that serve the
original files (the original yann.lecun.com address refuses most clients).
The 5,000-image training sample and the official 10,000 test images ship with
fastdl and need no network: ``load_mnist(sample=True)`` or ``FASTDL_MNIST=sample``.

Downloads are checksummed, atomic and time-bounded (see ``download.py``): a file in the
data folder whose checksum does not match the published file is moved aside to
``<name>.mismatch-<time>`` (with a warning), never deleted, and downloaded again.
"""
from __future__ import annotations

import gzip
import os
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .download import DEADLINE_ENV, DownloadError, SettingError, fetch, is_valid

__all__ = ["load_mnist", "load_fashion_mnist", "data_dir", "DataUnavailable", "SettingError", "SAMPLE_DIR"]

SAMPLE_DIR: str = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mnist_sample")
"""The folder of the MNIST sample that ships with fastdl (inside the installed package)."""

#: ``(images, labels)`` of one split
Split = Tuple[np.ndarray, np.ndarray]

MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
FASHION_MIRRORS = [
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
]

#: role -> (file name, md5) for each data set
MNIST_FILES = {
    "train_img": ("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_label": ("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_img": ("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
    "test_label": ("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
}
SAMPLE_FILES = {
    "train_img": ("train-5k-images-idx3-ubyte.gz", "81edc6ee08338daf429913bd1a71a8ff"),
    "train_label": ("train-5k-labels-idx1-ubyte.gz", "12a57e01969d72ff608d06fba11a36a0"),
    "test_img": MNIST_FILES["test_img"],
    "test_label": MNIST_FILES["test_label"],
}
FASHION_FILES = {
    "train_img": ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    "train_label": ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
    "test_img": ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
    "test_label": ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
}


class DataUnavailable(RuntimeError):
    """The data set is neither cached nor downloadable; the message says what to do."""


def data_dir() -> str:
    """Where downloaded data sets are kept: $FASTDL_DATA_DIR, else the per-user cache.

    Returns
    -------
    str
        An absolute path (it need not exist yet).
    """
    d = os.environ.get("FASTDL_DATA_DIR")
    if d:
        return os.path.abspath(os.path.expanduser(d))
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastdl")


def _mirrors(default: Sequence[str], env: str) -> List[str]:
    v = os.environ.get(env)
    return [m.strip() for m in v.split(",") if m.strip()] if v else list(default)


def read_idx(path: Union[str, os.PathLike]) -> np.ndarray:
    """Read a gzipped IDX file (magic 2051: images (N, rows, cols); 2049: labels (N,)) as uint8."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: too short for an IDX file")
    magic = int.from_bytes(data[0:4], "big")
    n = int.from_bytes(data[4:8], "big")
    if magic == 2049:
        arr = np.frombuffer(data, dtype=np.uint8, offset=8)
        shape: Tuple[int, ...] = (n,)
    elif magic == 2051:
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        arr = np.frombuffer(data, dtype=np.uint8, offset=16)
        shape = (n, rows, cols)
    else:
        raise ValueError(f"{path}: not an IDX file (magic {magic})")
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: expected {int(np.prod(shape))} values, found {arr.size}")
    return arr.reshape(shape)


def _paths(files: Mapping[str, Tuple[str, str]], mirrors_default: Sequence[str], mirrors_env: str,
           folder: str, what: str) -> Dict[str, str]:
    paths = {}
    failures = []
    mirrors = _mirrors(mirrors_default, mirrors_env)
    slow: Dict[str, str] = {}   # mirrors that missed the download deadline: not tried again here
    for role, (name, md5) in files.items():
        try:
            paths[role] = fetch(name, md5, mirrors, folder, skip=slow)
        except (DownloadError, OSError) as exc:
            failures.append(str(exc))
    if failures:
        names = ", ".join(name for name, _ in files.values())
        hint = ("or use the 5,000-image MNIST sample that ships with fastdl: load_mnist(sample=True), "
                "FASTDL_MNIST=sample, or `fastdl train --data sample`" if what == "MNIST" else
                "or point FASTDL_FASHION_MIRRORS at a mirror you can reach")
        raise DataUnavailable(
            f"{what} is not available offline and could not be downloaded.\n"
            + "\n".join(failures)
            + f"\nTo fix: download {names} yourself into {folder}, as published (their checksums are "
              f"checked; set FASTDL_DATA_DIR to use another folder; mirrors can be set with {mirrors_env}, "
              f"the time allowed per file with {DEADLINE_ENV}), {hint}.")
    return paths


def _convert(paths: Mapping[str, str], normalize: bool, flatten: bool,
             one_hot_label: bool) -> Tuple[Split, Split]:
    out = []
    for split in ("train", "test"):
        x = read_idx(paths[f"{split}_img"])
        t = read_idx(paths[f"{split}_label"])
        if x.shape[0] != t.shape[0]:
            raise ValueError(f"{split}: {x.shape[0]} images but {t.shape[0]} labels")
        x = x.reshape(-1, 1, 28, 28) if not flatten else x.reshape(-1, 784)
        if normalize:
            x = x.astype(np.float32) / np.float32(255.0)
        else:
            x = x.copy()
        if one_hot_label:
            oh = np.zeros((t.size, 10))
            oh[np.arange(t.size), t] = 1
            t = oh
        else:
            t = t.copy()
        out.append((x, t))
    return out[0], out[1]


def _use_sample(sample: Optional[bool]) -> bool:
    if sample is None:
        v = os.environ.get("FASTDL_MNIST", "").strip().lower()
        if v not in ("", "full", "sample"):
            raise SettingError(f"FASTDL_MNIST must be 'sample' or 'full', got {v!r}")
        return v == "sample"
    return bool(sample)


def load_mnist(normalize: bool = True, flatten: bool = True, one_hot_label: bool = False,
               sample: Optional[bool] = None) -> Tuple[Split, Split]:
    """MNIST as ``(x_train, t_train), (x_test, t_test)``, as in the book.

    normalize: images as float32 in [0, 1] (else uint8 0-255).
    flatten: images as (N, 784) (else (N, 1, 28, 28)).
    one_hot_label: labels as (N, 10) float64 one-hot rows (else uint8 (N,)).
    sample: True uses the shipped sample (5,000 training images, the official 10,000
    test images), False the full set (downloaded on first use); None reads
    FASTDL_MNIST ('sample' or 'full', default full). The sample's files are sorted by
    class; its training split is returned in a fixed shuffled order (the same every
    time), so that the first n samples hold every class, as in the full set.

    Parameters
    ----------
    normalize : bool
        Images as float32 in [0, 1]; False: uint8 0-255.
    flatten : bool
        Images as (N, 784); False: (N, 1, 28, 28).
    one_hot_label : bool
        Labels as (N, 10) float64 one-hot rows; False: uint8 (N,).
    sample : bool, optional
        The shipped sample (True), the full set (False), or as ``FASTDL_MNIST`` says (None).

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        ``x``: float32 (N, 784) or (N, 1, 28, 28), or uint8 when not ``normalize``; ``t``: uint8
        (N,) or float64 (N, 10). N is 60,000 / 10,000 (the sample: 5,000 / 10,000).

    Raises
    ------
    DataUnavailable
        The full set is neither cached nor downloadable (the message says what to do).
    SettingError
        ``FASTDL_MNIST`` (or another of the data sets' variables) holds an unusable value.
    """
    if _use_sample(sample):
        paths = {}
        for role, (name, md5) in SAMPLE_FILES.items():
            p = os.path.join(SAMPLE_DIR, name)
            if not is_valid(p, md5):
                raise DataUnavailable(f"the MNIST sample shipped with fastdl is missing or damaged: {p}; "
                                      "reinstall fastdl")
            paths[role] = p
        (x, t), test = _convert(paths, normalize, flatten, one_hot_label)
        order = np.random.default_rng(20261128).permutation(len(x))
        return (x[order], t[order]), test
    paths = _paths(MNIST_FILES, MNIST_MIRRORS, "FASTDL_MNIST_MIRRORS", os.path.join(data_dir(), "mnist"), "MNIST")
    return _convert(paths, normalize, flatten, one_hot_label)


def load_fashion_mnist(normalize: bool = True, flatten: bool = True,
                       one_hot_label: bool = False) -> Tuple[Split, Split]:
    """Fashion-MNIST (Zalando, MIT licence) with the same interface; downloaded on first use.

    Parameters
    ----------
    normalize : bool
        As for :func:`load_mnist`.
    flatten : bool
        As for :func:`load_mnist`.
    one_hot_label : bool
        As for :func:`load_mnist`.

    Returns
    -------
    ((x_train, t_train), (x_test, t_test))
        60,000 training and 10,000 test images of 10 classes, as :func:`load_mnist` gives them.

    Raises
    ------
    DataUnavailable
        The data set is neither cached nor downloadable.
    """
    paths = _paths(FASHION_FILES, FASHION_MIRRORS, "FASTDL_FASHION_MIRRORS",
                   os.path.join(data_dir(), "fashion-mnist"), "Fashion-MNIST")
    return _convert(paths, normalize, flatten, one_hot_label)
