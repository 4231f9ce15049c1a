"""Parameter files: what ``Net.save_params`` writes (an ``.npz`` archive, never a pickle), what
``Net.load_params`` reads back (that, or the book's pickles when allowed), and ``read_meta`` and
``read_extra`` (what was stored alongside); ``fastdl.nets.rebuild.load_model`` builds a network
again from its file.

A file's kind is judged by its first bytes, never by its name.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend
from .._files import atomic_write
from .._text import one_line

if TYPE_CHECKING:
    from .base import Net


_FORMAT_KEY = "__fastdl_params__"
_META_KEY = "__fastdl_meta__"
#: prefix of the keys under which ``save_params(..., extra=...)`` stores its arrays
EXTRA_PREFIX = "__extra__/"
_FORMAT_VERSION = 1


#: fastdl's own networks, which ``load_model`` (``fastdl.nets.rebuild``) builds again from their
#: files, and the modules that define them (exactly those classes: a subclass may take other arguments)
REBUILT = ("TwoLayerNet", "MultiLayerNet", "MultiLayerNetExtend", "SimpleConvNet", "DeepConvNet")
REBUILT_MODULES = ("fastdl.nets.mlp", "fastdl.nets.conv")

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")     # an .npz is a zip archive (the second: an empty one)
_NPY_MAGIC = b"\x93NUMPY"


def _one_line(exc: BaseException) -> str:
    return one_line(exc, with_type=True)


def _file_kind(path: str, who: str) -> tuple[str, bytes]:
    """What a parameter file holds, judged by its first bytes, never by its name:
    'npz' (what save_params writes), 'pickle' (the book's format) or 'unknown'.
    Raises FileNotFoundError, IsADirectoryError, or ValueError for an empty file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{who}: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who}: {path} is a folder, not a parameter file")
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise ValueError(f"{path} is not a readable parameter file: it is empty")
    if head.startswith(_ZIP_MAGIC):
        return "npz", head
    # pickle protocols 2-5 start with PROTO; protocols 0 and 1 with a dict opcode (the book's dicts)
    if (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith((b"}q", b"}(", b"(dp")):
        return "pickle", head
    return "unknown", head


def _not_params(path: str, head: bytes) -> ValueError:
    if head.startswith(_NPY_MAGIC):
        what = "it holds a single .npy array, not the .npz archive that save_params writes"
    else:
        what = f"it is neither the .npz archive that save_params writes nor a pickle (it starts with {head!r})"
    return ValueError(f"{path} is not a readable parameter file: {what}")


def _read_npz(path: str, only: Sequence[str] | None = None, prefix: str | None = None) -> dict[str, Any]:
    """name -> array of an .npz file (of the names in ``only``, or starting with ``prefix``, if
    given), as a ValueError naming the file if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("not an .npz archive")
            return {k: z[k] for k in z.files if (only is None or k in only)
                    and (prefix is None or k.startswith(prefix))}
    except Exception as exc:
        raise ValueError(f"{path} is not a readable parameter file: a damaged or truncated .npz "
                         f"archive ({_one_line(exc)})") from None


def _npz_path(file_name: Any, who: str) -> str | None:
    """The path of a parameter file that ``save_params`` wrote (an .npz archive), or None for
    the book's pickle (whose metadata and extra arrays are empty: it is not unpickled here).
    Raises as ``_file_kind`` does, or a one-line ValueError for a file of neither kind."""
    path = _path(file_name, who)
    kind, head = _file_kind(path, who)
    if kind == "pickle":
        return None
    if kind != "npz":
        raise _not_params(path, head)
    return path


def read_meta(file_name: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata dict stored by ``save_params(..., meta=...)`` ({} if none, or for a pickle
    file, which is not unpickled). Raises FileNotFoundError or a one-line ValueError naming the
    file if it is not a parameter file."""
    import json
    path = _npz_path(file_name, "read_meta")
    if path is None:
        return {}
    arrays = _read_npz(path, only=(_META_KEY,))
    if _META_KEY not in arrays:
        return {}
    try:
        meta = json.loads(arrays[_META_KEY].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: its metadata is not valid JSON ({_one_line(exc)})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its metadata is a {type(meta).__name__}, not a dict")
    return meta


def read_extra(file_name: str | bytes | os.PathLike[Any]) -> dict[str, np.ndarray]:
    """The arrays stored by ``save_params(..., extra=...)``, by the names they were given ({} if
    none, or for a pickle file, which is not unpickled). Raises FileNotFoundError or a one-line
    ValueError naming the file if it is not a parameter file."""
    path = _npz_path(file_name, "read_extra")
    if path is None:
        return {}
    return {k[len(EXTRA_PREFIX):]: v for k, v in _read_npz(path, prefix=EXTRA_PREFIX).items()}


def _path(file_name: Any, who: str) -> str:
    """A file name as str: str, bytes (decoded as ``open`` does, ``os.fsdecode``) or os.PathLike."""
    try:
        return os.fsdecode(os.fspath(file_name))
    except TypeError:
        raise TypeError(f"{who}: the file name must be a str, bytes or os.PathLike, "
                        f"got {type(file_name).__name__}") from None


def model_meta(net: Net) -> dict[str, Any] | None:
    """``{"class": ..., "kwargs": ...}``: how ``load_model`` rebuilds ``net``, for fastdl's own
    networks (exactly their classes: a subclass may take other arguments); None otherwise."""
    config = getattr(net, "_config", None)
    cls = type(net)
    if config is None or cls.__module__ not in REBUILT_MODULES or cls.__name__ not in REBUILT:
        return None
    import json
    model = {"class": type(net).__name__, "kwargs": _jsonable(config)}
    try:
        json.dumps(model)
    except (TypeError, ValueError):
        return None          # an argument JSON cannot hold: the file is loaded with load_params
    return model


def save_params(net: Net, file_name: str | bytes | os.PathLike[Any] = "params.npz",
                meta: dict[str, Any] | None = None,
                extra: Mapping[str, ArrayLike] | None = None) -> None:
    """``net.save_params``, which documents it."""
    import json
    path = _path(file_name, f"{type(net).__name__}.save_params")
    to_host = net._ops().to_host          # the ops of the memory the network lives in
    arrays = {k: to_host(v) for k, v in net._state_arrays().items()}
    arrays[_FORMAT_KEY] = np.array([_FORMAT_VERSION])
    if meta is not None and not isinstance(meta, Mapping):
        raise TypeError(f"{type(net).__name__}.save_params: meta must be a dict, got {type(meta).__name__}")
    full = dict(meta or {})
    model = model_meta(net)
    if model is not None:
        full.setdefault("model", model)
    full.setdefault("dtype", np.dtype(net.dtype).name)
    try:
        text = json.dumps(full)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{type(net).__name__}.save_params: meta must be JSON-serialisable "
                        f"({_one_line(exc)})") from None
    arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    if extra is not None:
        if not isinstance(extra, Mapping):
            raise TypeError(f"{type(net).__name__}.save_params: extra must be a dict of name -> "
                            f"array, got {type(extra).__name__}")
        for name, val in extra.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"{type(net).__name__}.save_params: extra's keys must be non-empty "
                                f"strings, got {name!r}")
            arr = np.asarray(backend.ops("numpy").to_host(val))      # device arrays come to the host
            if arr.dtype.kind not in "biufc":
                raise TypeError(f"{type(net).__name__}.save_params: extra[{name!r}] must be an array "
                                f"of numbers or booleans, got dtype {arr.dtype}")
            arrays[EXTRA_PREFIX + name] = arr
    with atomic_write(path) as f:
        np.savez(f, **arrays)


def load_params(net: Net, file_name: str | bytes | os.PathLike[Any] = "params.npz",
                allow_pickle: bool = False) -> None:
    """``net.load_params``, which documents it."""
    path = _path(file_name, f"{type(net).__name__}.load_params")
    kind, head = _file_kind(path, f"{type(net).__name__}.load_params")
    if kind == "npz":
        loaded = _read_npz(path)
        version = loaded.pop(_FORMAT_KEY, None)
        loaded.pop(_META_KEY, None)
        for key in [k for k in loaded if k.startswith(EXTRA_PREFIX)]:
            del loaded[key]
        if version is not None and (version.size != 1 or version.dtype.kind not in "iu"
                                    or int(version.ravel()[0]) > _FORMAT_VERSION):
            raise ValueError(f"{path} was written by a newer fastdl (format {version.ravel()[:1]}, "
                             f"this one reads format {_FORMAT_VERSION}); upgrade fastdl")
    elif not allow_pickle:
        if kind == "pickle":
            raise ValueError(f"{path} is a pickle file (as the book writes), not the .npz that "
                             "save_params writes; loading a pickle runs code stored in it. Pass "
                             "allow_pickle=True only if you trust the file.")
        raise _not_params(path, head)
    else:
        import pickle
        try:
            with open(path, "rb") as f:
                obj = pickle.load(f)
        except Exception as exc:
            if kind != "pickle":
                raise _not_params(path, head) from None
            raise ValueError(f"{path} is not a readable parameter file: a damaged or truncated "
                             f"pickle ({_one_line(exc)})") from None
        if not isinstance(obj, Mapping):
            raise ValueError(f"{path} holds a pickled {type(obj).__name__}, not a dict of "
                             "parameter arrays")
        loaded = dict(obj)
    own = net._state_arrays()
    missing = sorted(k for k in net.params if k not in loaded)
    extra = sorted((k for k in loaded if k not in own), key=str)
    if missing or extra:
        raise ValueError(f"{path} does not fit this {type(net).__name__}: "
                         f"missing {missing}, unexpected {extra}")
    checked = {}
    for key, val in loaded.items():
        try:
            val = np.asarray(val)
        except Exception:
            raise ValueError(f"{path}: {key} is not an array of finite numbers") from None
        if val.shape != tuple(own[key].shape):
            raise ValueError(f"{path}: {key} has shape {val.shape}, this net expects {own[key].shape}")
        if val.dtype.kind not in "fiu" or not np.isfinite(val).all():
            raise ValueError(f"{path}: {key} is not an array of finite numbers")
        dst_dtype = np.dtype(own[key].dtype)
        with np.errstate(over="ignore", invalid="ignore"):
            val = np.ascontiguousarray(val, dtype=dst_dtype)
        if not np.isfinite(val).all():
            raise ValueError(f"{path}: {key} does not fit in {dst_dtype.name} (values beyond "
                             f"+-{np.finfo(dst_dtype).max:.3g}); load it into a float64 network")
        checked[key] = val
    for key, val in checked.items():
        dst = own[key]
        # in place, wherever dst lives (NumPy's and numba's device arrays both take this)
        dst[tuple(slice(None) for _ in dst.shape)] = val



def _jsonable(v: Any) -> Any:
    """Constructor arguments as JSON values: NumPy scalars as numbers, tuples as lists, dtypes
    as their names."""
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return np.dtype(v).name
    if isinstance(v, np.generic):
        return v.item()
    return v
