"""``fastdl evaluate``: the test accuracy of a parameter file written by ``fastdl train --save``
(or of a network of fastdl.nets saved from Python)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from .. import cli                     # cli._load_data: looked up when called, one place for train and evaluate
from .._text import one_line
from . import (DATA_CHOICES, DTYPE_CHOICES, NET_CHOICES, Failure, UsageError, _add_backend, _add_dtype,
               _add_progress, _add_verbose, _build_net, _NET_NAMES, _show_progress, data_source, positive_int)


def add_parser(sub: Any) -> None:
    """The ``evaluate`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser("evaluate", help="test accuracy of saved parameters",
                       description="Load parameters saved by `fastdl train --save` and measure test accuracy.")
    p.add_argument("params", help="a .npz file written by fastdl train --save")
    p.add_argument("--net", choices=NET_CHOICES, help="network (default: the one recorded in the file)")
    p.add_argument("--data", type=data_source, metavar="sample|mnist|fashion|FILE.npz",
                   help="test set: a built-in one or FILE.npz's x_test, t_test (default: the one recorded in the file)")
    _add_dtype(p, None, "default: as trained")
    _add_backend(p)
    p.add_argument("--batch-size", type=positive_int, default=500, help="default 500")
    _add_progress(p)
    _add_verbose(p)
    p.set_defaults(func=cmd_evaluate)


#: what reading a parameter file that is not one can raise (Net.load_params and read_meta turn
#: most of these into a ValueError naming the file; the rest are caught here as a safety net)
_READ_ERRORS = (ValueError, OSError, KeyError, EOFError, TypeError, AttributeError, IndexError)


def _accuracy(net, x, t, batch_size, progress):
    """``net.accuracy(x, t)`` in slices of a few batches, with a progress bar on stderr if ``progress``."""
    if not progress:
        return net.accuracy(x, t, batch_size=batch_size)
    from tqdm.auto import tqdm
    n = len(x)
    chunk = batch_size
    correct = 0.0
    with tqdm(total=n, unit="img", desc="evaluating", leave=False, file=sys.stderr, dynamic_ncols=True) as bar:
        for i in range(0, n, chunk):
            part = min(chunk, n - i)
            correct += net.accuracy(x[i:i + part], t[i:i + part], batch_size=batch_size) * part
            bar.update(part)
    return round(correct) / n


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Run ``fastdl evaluate``; returns the exit status."""
    import pickle
    import zipfile
    read_errors = _READ_ERRORS + (zipfile.BadZipFile, pickle.UnpicklingError)
    path = args.params
    if not os.path.exists(path):
        raise UsageError(f"no such file: {path}")
    if os.path.isdir(path):
        raise UsageError(f"{path} is a folder, not a parameter file")
    if not os.path.isfile(path):
        raise UsageError(f"{path} is not a regular file")
    import numpy as np

    import fastdl
    from fastdl.nets import read_meta
    if args.backend:
        fastdl.set_backend(args.backend)
    fastdl.current_backend()                           # a bad FASTDL_BACKEND is reported here
    try:
        meta = read_meta(path)
    except read_errors as exc:
        text = one_line(exc)
        raise Failure(text if path in text else f"cannot read {path}: {text}") from None
    net_name = args.net or meta.get("net")
    if net_name not in NET_CHOICES and not meta:
        with open(path, "rb") as f:
            head = f.read(4)
        if not head.startswith(b"PK"):          # read_meta passes only .npz archives and pickles
            raise Failure(f"{path} is a pickle (as the book's scripts write), not the .npz that "
                          "fastdl train --save writes; fastdl evaluate does not unpickle files")
    model = meta.get("model")
    other = net_name is None and isinstance(model, dict) and model.get("class") not in _NET_NAMES
    if net_name not in NET_CHOICES and not other:
        raise UsageError(f"{path} does not say which network it holds; pass --net ({', '.join(NET_CHOICES)})")
    dtype_name = args.dtype or meta.get("dtype") or "float32"
    if dtype_name not in DTYPE_CHOICES:
        raise UsageError(f"{path} records dtype {dtype_name!r}; pass --dtype float32 or float64")
    data = args.data or meta.get("data") or "sample"
    if data not in DATA_CHOICES and (args.data is None and not os.path.isfile(str(data))):
        raise UsageError(f"{path} records the data set {data!r}, which is not here; pass --data "
                         f"({', '.join(DATA_CHOICES)} or FILE.npz)")
    try:
        if other:                                # a network of fastdl.nets saved from Python (MultiLayerNet...)
            from fastdl.nets import load_model
            net = load_model(path, dtype=dtype_name)
        else:
            net = _build_net(net_name, np.dtype(dtype_name))
            net.load_params(path)
    except read_errors as exc:
        text = one_line(exc)
        hint = ""
        if meta.get("diverged"):
            hint = " (the file holds the parameters of a training run that diverged)"
        elif not args.net and ("does not fit" in text or "expects" in text):
            hint = f" (the file says it holds --net {net_name}; pass --net if that is wrong)"
        into = (model or {}).get("class") if other else {"simple": "SimpleConvNet", "deep": "DeepConvNet",
                                                          "two": "TwoLayerNet"}.get(str(net_name))
        raise Failure(f"cannot load {path} into {into}: {text}{hint}") from None
    _, (xt, tt) = cli._load_data(data, flatten=len(net._sample_shape() or (1, 1, 1)) == 1)
    start = time.perf_counter()
    acc = _accuracy(net, xt, tt, args.batch_size, _show_progress(args))
    took = time.perf_counter() - start
    print(f"{type(net).__name__} from {path}: test accuracy {acc:.4f} on {len(xt)} {data} test images "
          f"({took:.2f} s, backend {fastdl.current_backend()})")
    return 0
