"""The book's gradient check (ch05 ``gradient_check.py``) for the report: each parameter's
backpropagation gradient against central differences, on a small batch, on the reference
("numpy") backend.

The network is copied and brought to the host; one of fastdl's own networks in float32 is
rebuilt in float64 with the same parameters (central differences in float32 are too coarse to
check anything), as the book's networks compute. A parameter with many entries is checked on
a sample of them (its largest gradients, then random ones): each entry costs two loss
evaluations. Dropout draws the same masks at every evaluation (NumPy's global random state is
reseeded before each, and restored at the end).
"""
from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .. import backend
from ._values import host, number

#: the step of the central difference (the book's numerical_gradient takes 1e-4; a smaller one
#: rarely crosses a ReLU or max-pooling kink of a network with small weights)
H = 1e-6
KINK_TEXT = ("An entry where the central difference disagrees but backpropagation equals one of the one-sided "
             "differences (f(w) − f(w − h)) / h or (f(w + h) − f(w)) / h sits at a kink (a ReLU or max-pooling input "
             "within h of its corner, where the loss has two slopes and backpropagation takes one): it is counted "
             "as a kink and left out of the error")
#: a bias that is exactly zero (as at initialisation) is drawn from N(0, BIAS_NUDGE²) for the check
BIAS_NUDGE = 1e-3
#: the largest entries checked per parameter
MAX_ENTRIES = 12
#: pass when the error is below this (float64; float32 when the network could not be rebuilt)
TOLERANCE = {"float64": 1e-5, "float32": 2e-2}
ERROR_TEXT = ("error = max |backprop − numerical| / max(max |backprop|, max |numerical|, 1e-8) over the "
              "checked entries (the largest difference relative to the gradient's scale). The book's loss adds "
              "1e-7 inside its log, which its backward leaves out: errors near 1e-7 are that, not a bug")


def _float64_copy(net: Any) -> Any:
    """A float64 host copy of ``net``: fastdl's own networks rebuilt from their constructor's
    arguments; any other network copied as it is."""
    work = copy.deepcopy(net)
    if getattr(work, "device", "cpu") != "cpu" and callable(getattr(work, "to", None)):
        work.to("cpu")
    config = getattr(work, "_config", None)
    if np.dtype(getattr(work, "dtype", np.float64)) == np.float64 or not isinstance(config, dict):
        return work
    meta = work._model_meta() if callable(getattr(work, "_model_meta", None)) else None
    if meta is None:
        return work
    rebuilt = type(work)(**{**config, "dtype": np.float64})
    for key, value in work.params.items():
        rebuilt.params[key][...] = host(value)
    return rebuilt


def _nudge_zero_biases(net: Any, seed: int) -> list[str]:
    """Give each all-zero bias small random values, in place; the names of those moved.

    With a zero bias, a zero input (MNIST's background) puts a ReLU input exactly on its corner
    at 0, where the loss has no derivative: the two central differences then disagree with
    backpropagation (which takes the derivative 0 there) by design, not by a bug."""
    from ._collect import layer_items
    rng = np.random.default_rng(seed + 1)
    moved = []
    for name, layer in layer_items(net):
        b = getattr(layer, "b", None)
        if isinstance(b, np.ndarray) and b.size and not np.any(b):
            b[...] = rng.normal(0.0, BIAS_NUDGE, b.shape)
            moved.append(name)
    return moved


def gradient_check(net: Any, x: np.ndarray, t: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """Per parameter: shape, entries checked, max relative error, mean absolute difference (the
    book's print), pass/fail; and the tolerance, dtype, batch and step used."""
    if not isinstance(getattr(net, "params", None), dict) or not callable(getattr(net, "gradient", None)):
        return {"skipped": f"a {type(net).__name__} has no params dict and gradient method (as the book's "
                           "networks have): nothing to check"}
    state = np.random.get_state()
    try:
        with backend.using_backend("numpy"):
            return _check(net, x, t, seed)
    finally:
        np.random.set_state(state)


def _check(net: Any, x: np.ndarray, t: np.ndarray, seed: int) -> dict[str, Any]:
    work = _float64_copy(net)
    nudged = _nudge_zero_biases(work, seed)
    dtype = str(np.dtype(getattr(work, "dtype", np.float64)))
    tol = TOLERANCE.get(dtype, TOLERANCE["float32"])
    h = H if dtype == "float64" else 1e-3        # float32: a step the loss's precision can see
    loss_of = getattr(work, "_loss_for_gradient", None) or (lambda a, b: work.loss(a, b))

    def loss() -> float:
        np.random.seed(seed)
        return float(loss_of(x, t))

    np.random.seed(seed)
    grads = {k: host(v) for k, v in work.gradient(x, t).items()}
    base = loss()
    rng = np.random.default_rng(seed)
    rows = []
    for key, p in work.params.items():
        if key not in grads:
            continue
        g = grads[key]
        if p.size <= MAX_ENTRIES:
            picks = np.arange(p.size)
        else:
            top = np.argsort(-np.abs(g).ravel(), kind="stable")[:MAX_ENTRIES // 3]
            rest = rng.choice(np.setdiff1d(np.arange(p.size), top), MAX_ENTRIES - top.size, replace=False)
            picks = np.concatenate([top, np.sort(rest)])
        bp, num, sides = [], [], []
        for f in picks:
            idx = np.unravel_index(int(f), p.shape)   # in place: the layers hold the same array
            old = p[idx]
            p[idx] = old + h
            up = loss()
            p[idx] = old - h
            down = loss()
            p[idx] = old
            num.append((up - down) / (2 * h))
            sides.append(((base - down) / h, (up - base) / h))
            bp.append(g.reshape(-1)[f])
        b, n = np.array(bp), np.array(num)
        scale = max(float(np.abs(b).max(initial=0)), float(np.abs(n).max(initial=0)), 1e-8)
        # an entry at a kink (a ReLU or max-pooling input within h of its corner): the central
        # difference averages two slopes, backpropagation takes one of them
        kink = np.array([abs(bv - nv) > tol * scale and min(abs(bv - lv), abs(bv - rv)) <= tol * scale
                         for bv, nv, (lv, rv) in zip(b, n, sides)], dtype=bool)
        smooth = ~kink
        err = float(np.abs(b - n)[smooth].max(initial=0)) / scale
        rows.append({"param": key, "shape": list(p.shape), "checked": int(picks.size), "size": int(p.size),
                     "error": number(err), "mean_abs_diff": number(np.abs(b - n)[smooth].mean()) if smooth.any() else None,
                     "ok": bool(err < tol), "kinks": int(kink.sum()),
                     "entries": [{"index": [int(v) for v in np.unravel_index(int(f), p.shape)],
                                  "backprop": number(bv), "numerical": number(nv), "left": number(lr[0]),
                                  "right": number(lr[1]), "kink": bool(k)}
                                 for f, bv, nv, lr, k in list(zip(picks, b, n, sides, kink))[:4]]})
    return {"backend": "numpy", "dtype": dtype, "batch": int(len(x)), "h": h, "tolerance": tol,
            "error_text": ERROR_TEXT, "kink_text": KINK_TEXT, "rows": rows, "nudged": nudged, "nudge": BIAS_NUDGE, "ok": all(r["ok"] for r in rows)}
