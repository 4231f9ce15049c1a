"""Training dynamics and the weight-scale comparison of the report (chapter 6's figures for the
reader's own network). Both work on copies of the network.

``train(net, x, t, steps, ...)``: ``steps`` Adam steps on mini-batches of (x, t): the loss of
every step, the accuracy on a few held samples at about ten points, every parameter's gradient
norm and update/weight ratio (``‖ΔW‖ / ‖W‖``) at every step, and each layer's output histogram
before the first step and after the last.

``compare_inits(net, x, t, specs)``: for each weight scale (``std:1``, ``std:0.01``, ``xavier``:
√(1/fan_in), ``he``: √(2/fan_in)) the network's weights drawn anew (biases zero) and one
forward and backward pass: each layer's output histogram and gradient norm, side by side.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Sequence

import numpy as np

from .._checks import to_host
from ..layers import run_forward
from ._collect import ExplainError, Pass, layer_items, summary
from ._values import host, labels_of, number

INIT_NAMES = ("std:X", "xavier", "he")


def parse_inits(text: str | Sequence[str]) -> list[str]:
    """``"std:1,std:0.01,xavier,he"`` (or a list of those) as a list; ExplainError for a bad one."""
    items = [s.strip().lower() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not items:
        raise ExplainError("fastdl.explain: init names no weight scale; give e.g. std:1,std:0.01,xavier,he")
    for item in items:
        if item in ("xavier", "he"):
            continue
        if item.startswith("std:"):
            try:
                v = float(item[4:])
            except ValueError:
                v = -1.0
            if math.isfinite(v) and v > 0:
                continue
        raise ExplainError(f"fastdl.explain: init {item!r} is not a weight scale; use std:X (X > 0), "
                           "xavier or he, separated by commas")
    return list(dict.fromkeys(items))


def _scale(spec: str, fan_in: int) -> float:
    if spec == "xavier":
        return math.sqrt(1.0 / fan_in)
    if spec == "he":
        return math.sqrt(2.0 / fan_in)
    return float(spec[4:])


def _host_copy(net: Any) -> Any:
    work = copy.deepcopy(net)
    if getattr(work, "device", "cpu") != "cpu" and callable(getattr(work, "to", None)):
        work.to("cpu")
    return work


def reinit(net: Any, spec: str, seed: int = 0) -> Any:
    """A host copy of ``net`` with every layer's W drawn from N(0, scale²) (fan_in: W's rows of
    an Affine, C·FH·FW of a Convolution) and its b set to 0, in place (params share them)."""
    work = _host_copy(net)
    rng = np.random.default_rng(seed)
    for _, layer in layer_items(work):
        W, b = getattr(layer, "W", None), getattr(layer, "b", None)
        if not isinstance(W, np.ndarray) or W.ndim < 2:
            continue
        fan_in = int(W.shape[0]) if W.ndim == 2 else int(np.prod(W.shape[1:]))
        W[...] = rng.standard_normal(W.shape) * _scale(spec, fan_in)
        if isinstance(b, np.ndarray):
            b[...] = 0
    return work


def compare_inits(net: Any, x: np.ndarray, t: np.ndarray, specs: Sequence[str]) -> dict[str, Any]:
    columns = []
    for spec in specs:
        p = Pass(reinit(net, spec), x, t, copy_net=False)
        layers = []
        for i, (name, layer) in enumerate(p.items):
            dW = p.pgrads[i].get("dW")
            layers.append({"name": name, "kind": type(layer).__name__, "out": summary(p.acts[i + 1]),
                           "grad_norm": number(np.linalg.norm(dW)) if dW is not None else None})
        columns.append({"init": spec, "loss": number(p.loss), "layers": layers})
    return {"batch": int(len(x)), "columns": columns}


def _forward_outputs(net: Any, x: np.ndarray) -> list[dict[str, Any]]:
    items = layer_items(net)
    cur: Any = np.asarray(x, dtype=getattr(net, "dtype", np.float64))
    out = []
    for name, layer in items:
        cur = run_forward(layer, cur, False)
        out.append({"name": name, "kind": type(layer).__name__, "out": summary(cur)})
    return out


def _accuracy(net: Any, x: np.ndarray, t: np.ndarray) -> float:
    y = host(net.predict(x))
    return float(np.mean(np.argmax(y, axis=1) == labels_of(t)))


def train(net: Any, x: np.ndarray, t: np.ndarray, steps: int, batch_size: int = 32, lr: float = 0.001,
          eval_samples: int = 100, seed: int = 0) -> dict[str, Any]:
    """The training-dynamics data of ``steps`` Adam steps (see the module's doc)."""
    if not isinstance(getattr(net, "params", None), dict) or not callable(getattr(net, "gradient", None)):
        return {"skipped": f"a {type(net).__name__} has no params dict and gradient method: it cannot be trained here"}
    work = copy.deepcopy(net)          # where its parameters live: the optimizer's state follows them
    state = np.random.get_state()
    try:
        return _train(work, x, t, steps, batch_size, lr, eval_samples, seed)
    finally:
        np.random.set_state(state)


def _layer_of(net: Any) -> dict[str, str]:
    grad_of = getattr(net, "_grad_of", {})
    names = {id(layer): name for name, layer in layer_items(net)}
    return {key: names.get(id(layer), "?") for key, (layer, _) in grad_of.items()} if isinstance(grad_of, dict) else {}


def _train(net: Any, x: np.ndarray, t: np.ndarray, steps: int, batch_size: int, lr: float,
           eval_samples: int, seed: int) -> dict[str, Any]:
    from ..optimizers import Adam
    np.random.seed(seed)
    rng = np.random.default_rng(seed)
    opt = Adam(lr=lr)
    xe, te = x[:eval_samples], t[:eval_samples]
    keys = [k for k in net.params]
    start = _forward_outputs(net, xe)
    every = max(1, steps // 10)
    loss, acc = [], [[0, _accuracy(net, xe, te)]]
    gnorm: dict[str, list[float | None]] = {k: [] for k in keys}
    ratio: dict[str, list[float | None]] = {k: [] for k in keys}
    batch_size = min(batch_size, len(x))
    for step in range(1, steps + 1):
        idx = rng.choice(len(x), batch_size, replace=False)
        grads = net.gradient(x[idx], t[idx])
        loss.append(number(to_host(getattr(net.last_layer, "loss", np.nan))))
        before = {k: host(net.params[k]) for k in keys}
        opt.update(net.params, grads)
        for k in keys:
            g = host(grads[k]) if k in grads else None
            gnorm[k].append(number(np.linalg.norm(g)) if g is not None else None)
            w = np.linalg.norm(before[k])
            ratio[k].append(number(np.linalg.norm(host(net.params[k]) - before[k]) / w) if w > 0 else None)
        if step % every == 0 or step == steps:
            acc.append([step, _accuracy(net, xe, te)])
    layer_of = _layer_of(net)
    return {"steps": steps, "batch_size": batch_size, "optimizer": f"Adam(lr={lr})", "eval_samples": int(len(xe)),
            "loss": loss, "accuracy": acc,
            "params": [{"key": k, "layer": layer_of.get(k, "?"), "grad_norm": gnorm[k], "update_ratio": ratio[k]}
                       for k in keys],
            "start": start, "end": _forward_outputs(net, xe)}
