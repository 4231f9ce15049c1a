"""``load_model``: a network built again from the file ``save_params`` wrote, by the class and
constructor arguments its metadata records (``fastdl.nets.files``)."""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from ._args import make_dtype
from .base import Net
from .conv import DeepConvNet, SimpleConvNet
from .files import _one_line, _path, read_meta
from .mlp import MultiLayerNet, MultiLayerNetExtend, TwoLayerNet


def _model_classes() -> dict[str, type]:
    """fastdl's own networks by class name: the ones ``load_model`` rebuilds."""
    return {c.__name__: c for c in (TwoLayerNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet)}


#: what the CLI's ``--net`` names build (files written by ``fastdl train`` record only the name)
_CLI_NETS: dict[str, tuple[str, dict[str, Any]]] = {
    "simple": ("SimpleConvNet", {}),
    "deep": ("DeepConvNet", {}),
    "two": ("TwoLayerNet", {"input_size": 784, "hidden_size": 50, "output_size": 10}),
    "mlp": ("TwoLayerNet", {"input_size": 784, "hidden_size": 50, "output_size": 10}),
}


def load_model(file_name: str | bytes | os.PathLike[Any], dtype: DTypeLike | None = None) -> Net:
    """Rebuild a network from a file written by ``save_params`` and load its parameters.

    The file's metadata says which network it holds: ``meta["model"]`` (``{"class": ...,
    "kwargs": ...}``, written by ``save_params`` of every fastdl network), or the ``"net"`` name
    (``simple``, ``deep``, ``two``) recorded by ``fastdl train``. The network is built with those
    arguments (the global NumPy random state is left as it was) and ``load_params`` fills it.

    Parameters
    ----------
    file_name : str, bytes or os.PathLike
        A parameter file (``.npz`` content, whatever its name).
    dtype : dtype, optional
        float32 or float64; by default the file's (``meta["dtype"]``). A float64 file loads into
        float32 only if every value fits (else a ValueError names the key).

    Returns
    -------
    Net
        The network, on the host (``net.to("cuda")`` moves it).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a parameter file, or one without the metadata that names its network (a file written
        by the book's code, or by ``save_params`` of a network of one's own: build that network
        and call its ``load_params``).
    """
    path = _path(file_name, "load_model")
    meta = read_meta(path)
    classes = _model_classes()
    model = meta.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("class"), str):
        name, kwargs = model["class"], model.get("kwargs", {})
        if name not in classes:
            raise ValueError(f"{path} holds a {name}, which load_model cannot build (it builds "
                             f"{', '.join(classes)}); build it yourself and call load_params")
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{path}: its metadata's model kwargs are a {type(kwargs).__name__}, not a dict")
    elif meta.get("net") in _CLI_NETS:
        name, kwargs = _CLI_NETS[str(meta["net"])]
    else:
        raise ValueError(f"{path} does not say which network it holds (no model metadata): written by "
                         "the book's code or by save_params of a custom Net: build the network yourself "
                         "and call load_params")
    kwargs = dict(kwargs)
    if dtype is not None:
        kwargs["dtype"] = make_dtype(dtype)
    elif "dtype" not in kwargs and meta.get("dtype") is not None:
        kwargs["dtype"] = meta["dtype"]
    if "dtype" in kwargs:
        try:
            kwargs["dtype"] = make_dtype(kwargs["dtype"])
        except TypeError as exc:
            raise ValueError(f"{path}: its metadata names a dtype load_model cannot use ({exc})") from None
    cls = classes[name]
    state = np.random.get_state()
    try:
        net = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot build {name} from its metadata ({_one_line(exc)})") from None
    finally:
        np.random.set_state(state)
    net.load_params(path)
    return net
