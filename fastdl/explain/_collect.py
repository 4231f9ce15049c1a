"""The numbers of one forward and backward pass, layer by layer, for the report.

The network is copied (``copy.deepcopy``): its layers run one by one in training mode, as
``Net.gradient`` runs them (each Convolution, Relu and Pooling on its own, never fused, so each
keeps what its backward needs), then the loss layer's ``backward(1)`` and each layer's
``backward`` in reverse order. Every array comes to the host (``to_host``) as a float64 copy
for its summary: the caller's network, its parameters, its running statistics and NumPy's
global random state are as they were.
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .._checks import to_host
from ..layers import run_forward
from ._rules import rule
from ._values import host, number

#: bins of every histogram of the report
HIST_BINS = 16
#: an edge with fewer values than this shows all of them (as the book's figures do)
SMALL_EDGE = 50
#: gradient attributes a layer may set in backward, and the parameter each belongs to
GRAD_ATTRS = (("dW", "W"), ("db", "b"), ("dgamma", "gamma"), ("dbeta", "beta"))


class ExplainError(ValueError):
    """What ``fastdl.explain`` was given cannot be explained (one line says what and what to do)."""


def summary(a: Any) -> dict[str, Any]:
    """Mean, std, min, max, L2 norm, the fraction of zeros and a histogram of an array's finite
    values (and how many are not finite)."""
    flat = host(a).ravel()
    good = flat[np.isfinite(flat)]
    out: dict[str, Any] = {"n": int(flat.size), "nonfinite": int(flat.size - good.size)}
    if good.size == 0:
        out.update(mean=None, std=None, min=None, max=None, norm=None, zeros=None, hist=[], lo=None, hi=None)
        return out
    lo, hi = float(good.min()), float(good.max())
    counts, edges = np.histogram(good, bins=HIST_BINS, range=(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5))
    out.update(mean=float(good.mean()), std=float(good.std()), min=lo, max=hi,
               norm=float(np.sqrt(np.sum(good * good))), zeros=float(np.mean(good == 0)),
               hist=[int(c) for c in counts], lo=float(edges[0]), hi=float(edges[-1]))
    return out


def values(a: Any) -> list[float | None] | None:
    """All values of a small array (fewer than SMALL_EDGE), row-major; None for a larger one."""
    h = host(a)
    if h.size >= SMALL_EDGE:
        return None
    return [number(v) for v in h.ravel()]


def layer_items(net: Any) -> list[tuple[str, Any]]:
    """(name, layer) of a network's layers in order; ExplainError when it has none or no loss layer."""
    layers = getattr(net, "layers", None)
    if layers is None or getattr(net, "last_layer", None) is None:
        raise ExplainError(f"fastdl.explain: net must have layers and last_layer (as the book's networks "
                           f"do), got a {type(net).__name__} without "
                           f"{'layers' if layers is None else 'last_layer'}")
    if isinstance(layers, dict):
        items = [(str(k), v) for k, v in layers.items()]
    else:
        try:
            items = [(f"{type(v).__name__}{i + 1}", v) for i, v in enumerate(layers)]
        except TypeError:
            raise ExplainError(f"fastdl.explain: net.layers must be an OrderedDict or a list of layers, "
                               f"got {type(layers).__name__}") from None
    if not items:
        raise ExplainError("fastdl.explain: net.layers is empty; add the layers the network runs")
    for name, layer in items:
        if not (callable(getattr(layer, "forward", None)) and callable(getattr(layer, "backward", None))):
            raise ExplainError(f"fastdl.explain: layer {name} ({type(layer).__name__}) has no forward and "
                               "backward methods")
    return items


def check_data(x: Any, t: Any) -> tuple[np.ndarray, np.ndarray]:
    """x and t as host arrays, refused with one line when they cannot be a batch of the net."""
    if x is None or t is None:
        raise ExplainError("fastdl.explain: pass x (a batch of inputs) and t (its labels) with the network")
    try:
        xa = np.asarray(to_host(x))
    except Exception as exc:  # noqa: BLE001 - one line
        raise ExplainError(f"fastdl.explain: x must be an array of numbers ({exc})") from None
    if xa.dtype.kind not in "fiub" or xa.ndim < 2:
        raise ExplainError(f"fastdl.explain: x must be a batch (N, ...) of numbers, got dtype {xa.dtype} "
                           f"and shape {xa.shape}")
    if xa.shape[0] == 0:
        raise ExplainError("fastdl.explain: x is empty; pass at least one sample")
    if xa.dtype.kind == "f" and not np.isfinite(xa).all():
        bad = int(np.size(xa) - np.count_nonzero(np.isfinite(xa)))
        raise ExplainError(f"fastdl.explain: x holds {bad} NaN or infinite values; clean the data first")
    ta = np.asarray(to_host(t))
    if ta.ndim == 0 or ta.shape[0] != xa.shape[0]:
        raise ExplainError(f"fastdl.explain: t must have one label (or one-hot row) per sample of x: x has "
                           f"{xa.shape[0]} samples, t has shape {ta.shape}")
    return xa, ta


def _grads_of(layer: Any) -> dict[str, np.ndarray]:
    out = {}
    for attr, _ in GRAD_ATTRS:
        g = getattr(layer, attr, None)
        if g is not None:
            out[attr] = host(g)
    return out


def _params_of(layer: Any) -> dict[str, np.ndarray]:
    out = {}
    for _, attr in GRAD_ATTRS:
        p = getattr(layer, attr, None)
        if p is not None and hasattr(p, "shape"):
            out[attr] = host(p)
    return out


def _param_keys(net: Any) -> dict[tuple[int, str], str]:
    """(id(layer), "dW") -> the parameter's key in net.params ("W1"), where the net says it."""
    grad_of = getattr(net, "_grad_of", None)
    if not isinstance(grad_of, dict):
        return {}
    return {(id(layer), attr): key for key, (layer, attr) in grad_of.items()}


class Pass:
    """One forward and backward pass through a copy of a network, every array on the host.

    Attributes: ``items`` (name, layer) of the copy; ``acts`` the input of each layer and the
    scores (len(items) + 1 arrays); ``grads`` the gradient at each of those points (dx of each
    layer, then dscores); ``pgrads`` each layer's parameter gradients; ``loss``, ``y``, ``t``.
    """

    def __init__(self, net: Any, x: Any, t: Any, train_flg: bool = True, copy_net: bool = True) -> None:
        self.net = copy.deepcopy(net) if copy_net else net
        self.items = layer_items(self.net)
        state = np.random.get_state()
        try:
            self._run(x, t, train_flg)
        finally:
            np.random.set_state(state)

    def _run(self, x: Any, t: Any, train_flg: bool) -> None:
        dtype = getattr(self.net, "dtype", None)
        cur: Any = np.asarray(x, dtype=dtype) if dtype is not None else np.asarray(x, dtype=np.float64)
        self.acts = [host(cur)]
        for _, layer in self.items:
            cur = run_forward(layer, cur, train_flg)
            self.acts.append(host(cur))
        last = self.net.last_layer
        self.loss = float(to_host(last.forward(cur, t)))
        self.y = host(last.y) if getattr(last, "y", None) is not None else None
        self.t = np.asarray(t)
        d = last.backward(1)
        grads = [host(d)]
        self.pgrads: list[dict[str, np.ndarray]] = [{} for _ in self.items]
        for i in range(len(self.items) - 1, -1, -1):
            layer = self.items[i][1]
            d = layer.backward(d)
            grads.append(host(d))
            self.pgrads[i] = _grads_of(layer)
        self.grads = grads[::-1]


def _edge(label: str, fwd: np.ndarray, bwd: np.ndarray) -> dict[str, Any]:
    return {"label": label, "shape": list(fwd.shape), "forward": summary(fwd), "backward": summary(bwd),
            "values": values(fwd), "grad_values": values(bwd)}


def collect(net: Any, x: Any, t: Any) -> dict[str, Any]:
    """The report's data of one forward and backward pass (a JSON-able dict): the edges (input,
    each layer's output) with their shapes and summaries, each layer's parameters, gradients and
    backward rule written with this pass's shapes and checked on a few entries, and the loss."""
    xa, ta = check_data(x, t)
    try:
        p = Pass(net, xa, ta)
    except (ValueError, TypeError) as exc:
        raise ExplainError(f"fastdl.explain: the batch (x of shape {xa.shape}, t of shape {ta.shape}) does not fit "
                           f"the network: {' '.join(str(exc).split())}") from exc
    keys = _param_keys(p.net)
    names = ["x"] + [name for name, _ in p.items]
    edges = [_edge(names[i] if i == 0 else f"{names[i]} out", p.acts[i], p.grads[i]) for i in range(len(p.acts))]
    layers = []
    for i, (name, layer) in enumerate(p.items):
        params = _params_of(layer)
        grads = p.pgrads[i]
        entry: dict[str, Any] = {
            "name": name, "kind": type(layer).__name__, "repr": repr(layer),
            "in_shape": list(p.acts[i].shape), "out_shape": list(p.acts[i + 1].shape),
            "params": {k: {"shape": list(v.shape), "key": keys.get((id(layer), "d" + k)), **summary(v)}
                       for k, v in params.items()},
            "grads": {k: {"shape": list(v.shape), "values": values(v), **summary(v)} for k, v in grads.items()},
        }
        try:
            entry["rule"] = rule(layer, p.acts[i], p.acts[i + 1], p.grads[i + 1], p.grads[i], grads, params)
        except Exception as exc:  # noqa: BLE001 - a rule that cannot be shown must not lose the report
            entry["rule"] = {"title": type(layer).__name__, "lines": [], "checks": [],
                             "note": f"the rule could not be evaluated: {type(exc).__name__}: {exc}"}
        layers.append(entry)
    last = p.net.last_layer
    try:
        loss_rule = rule(last, p.acts[-1], p.y, None, p.grads[-1], {}, {}, t=p.t)
    except Exception as exc:  # noqa: BLE001 - as for the layers
        loss_rule = {"title": type(last).__name__, "lines": [], "checks": [],
                     "note": f"the rule could not be evaluated: {type(exc).__name__}: {exc}"}
    return {
        "net": type(net).__name__, "dtype": str(np.dtype(getattr(p.net, "dtype", np.float64))),
        "batch": int(xa.shape[0]), "input_shape": list(xa.shape), "loss": number(p.loss),
        "edges": edges, "layers": layers,
        "loss_layer": {"name": "last_layer", "kind": type(last).__name__, "repr": repr(last),
                       "in_shape": list(p.acts[-1].shape), "y": summary(p.y) if p.y is not None else None,
                       "rule": loss_rule},
    }
