"""``fastdl.explain``: one self-contained HTML page (inline CSS, JavaScript and SVG; no network)
showing a network's forward and backward pass as the book draws them.

>>> import fastdl
>>> fastdl.explain(net, x[:8], t[:8], path="report.html")      # doctest: +SKIP
>>> fastdl.explain("apple", path="apple.html")                  # chapter 5's graph  # doctest: +SKIP

The page holds: the graph (a node per layer, shapes on the edges, forward summaries above and
backward ones below, the numbers themselves on edges of fewer than 50 values); each layer's
backward rule with this call's shapes and a few entries computed both ways (click a node);
the book's gradient check on the reference backend; with ``steps`` the training dynamics; with
``init`` chapter 6's weight-scale comparison. The numbers are embedded as JSON in
``<script type="application/json" id="fastdl-data">``.

The module is callable: ``fastdl.explain(...)`` is ``explain``. Nothing here is imported by
``import fastdl``.
"""
from __future__ import annotations

import operator
import os
import sys
import types
from typing import Any, Sequence

from ._collect import ExplainError

ExplainError.__module__ = __name__        # shown as fastdl.explain.ExplainError

__all__ = ["explain", "report_data", "ExplainError"]


def report_data(net: Any, x: Any = None, t: Any = None, *, steps: int = 0, init: str | Sequence[str] | None = None,
                train_data: tuple[Any, Any] | None = None, check_samples: int = 3,
                batch_size: int = 32, title: str | None = None) -> dict[str, Any]:
    """The report's numbers (what ``explain`` embeds), as a JSON-able dict."""
    from .. import backend
    from ._collect import check_data, collect
    from ._examples import example
    if isinstance(net, str):
        return {"kind": "example", "title": title or "", "backend": backend.current_backend(),
                "example": example(net)}
    from ._collect import layer_items
    layer_items(net)                                   # a net without layers: one line, before any work
    xa, ta = check_data(x, t)
    counts = {}
    for name, value, low in (("steps", steps, 0), ("check_samples", check_samples, 1), ("batch_size", batch_size, 1)):
        try:
            counts[name] = operator.index(value)
        except TypeError:
            counts[name] = -1
        if isinstance(value, bool) or counts[name] < low:
            raise ExplainError(f"fastdl.explain: {name} must be an integer >= {low}, got {value!r}")
    steps, check_samples, batch_size = counts["steps"], counts["check_samples"], counts["batch_size"]
    specs = None
    if init:
        from ._dynamics import parse_inits
        specs = parse_inits(init)
    if train_data is not None:
        tx, tt = check_data(*train_data)
    else:
        tx, tt = xa, ta
    from ._gradcheck import gradient_check
    data = collect(net, xa, ta)
    data.update(kind="net", title=title or f"{type(net).__name__}: forward and backward",
                backend=backend.current_backend())
    data["gradcheck"] = gradient_check(net, xa[:check_samples], ta[:check_samples])
    if steps:
        from ._dynamics import train
        data["training"] = train(net, tx, tt, steps, batch_size=batch_size)
    if specs:
        from ._dynamics import compare_inits
        data["init"] = compare_inits(net, xa, ta, specs)
    return data


def explain(net: Any, x: Any = None, t: Any = None, path: str | os.PathLike[str] | None = "explain.html", *,
            steps: int = 0, init: str | Sequence[str] | None = None, train_data: tuple[Any, Any] | None = None,
            check_samples: int = 3, batch_size: int = 32, title: str | None = None) -> str:
    """Write the report of ``net`` on the batch (x, t) to ``path``, one HTML file; returns the path
    (or the HTML text itself when ``path`` is None).

    Parameters
    ----------
    net : Net, or str
        One of the book's networks or one's own object with ``layers`` (an OrderedDict or a list,
        run in order) and ``last_layer`` (the loss layer); or ``"apple"`` / ``"apple-orange"`` for
        chapter 5's MulLayer/AddLayer graphs (then x and t are not used).
    x : array_like
        A (small) batch, (N, ...) as the network takes it. Every number of the page is of this
        batch; its first ``check_samples`` samples are used for the gradient check.
    t : array_like
        The batch's labels: (N,) class indices or (N, K) one-hot rows.
    path : str or os.PathLike or None
        Where to write the page (atomically: an existing file is replaced whole or not at all).
    steps : int
        Adam steps (lr 0.001) of training dynamics on a copy of the network (0: none).
    init : str or sequence of str, optional
        Weight scales to compare, e.g. ``"std:1,std:0.01,xavier,he"``.
    train_data : tuple of two arrays, optional
        (x_train, t_train) the training steps draw their batches from (default: x and t).
    check_samples : int
        Samples of x used for the gradient check (the book's script takes 3).
    batch_size : int
        The batch of each training step.
    title : str, optional
        The page's heading.

    Returns
    -------
    str
        ``path``, or the HTML when path is None.

    Raises
    ------
    fastdl.explain.ExplainError
        (a ValueError) a net without layers or last_layer, x and t of different lengths, NaN in x,
        an unknown example or weight scale; OSError when ``path`` cannot be written.
    """
    from ._html import render
    if path is not None:
        _check_path(path)
    data = report_data(net, x, t, steps=steps, init=init, train_data=train_data,
                       check_samples=check_samples, batch_size=batch_size, title=title)
    text = render(data)
    if path is None:
        return text
    from .._files import atomic_write
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
    return os.fspath(path)


def _check_path(path: Any) -> None:
    """Refuse a path that cannot be written before any work (atomic_write checks again)."""
    p = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(p))
    if os.path.isdir(p):
        raise ExplainError(f"fastdl.explain: path {p} is a folder; give a file name such as report.html")
    if not os.path.isdir(folder):
        raise ExplainError(f"fastdl.explain: cannot write {p}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (os.path.exists(p) and not os.access(p, os.W_OK)):
        raise ExplainError(f"fastdl.explain: cannot write {p}: no permission; choose another path")


class _CallableModule(types.ModuleType):
    """``fastdl.explain(...)`` calls ``explain`` (the package is named as the function)."""

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
