"""Each layer's backward rule as the book writes it, with this pass's shapes, and a few of its
entries computed both ways: from the formula with NumPy (float64) and as the layer's
``backward`` computed them (the pass's own arrays).

``rule(layer, x, out, dout, dx, grads, params)`` returns ``{"title", "lines", "checks", "note"}``:
``lines`` the formulas, ``checks`` rows ``{"what", "formula", "backward"}``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import layers as L
from ..util import col2im, im2col
from ._values import fmt_shape as S
from ._values import host, labels_of, number

Rule = dict[str, Any]


def _picks(a: np.ndarray, k: int = 3, where: np.ndarray | None = None) -> list[tuple[int, ...]]:
    """Up to k indices of ``a``: its largest entry by magnitude, then the first and the last
    (of the entries where ``where`` holds, when given), without repeats."""
    if a.size == 0:
        return []
    flat = np.abs(a).ravel()
    order = [int(np.argmax(flat))]
    pool = np.flatnonzero(where.ravel()) if where is not None else np.arange(a.size)
    if pool.size:
        order += [int(pool[0]), int(pool[-1]), int(pool[pool.size // 2])]
    order += [0, a.size - 1]
    out: list[tuple[int, ...]] = []
    for f in order:
        idx = tuple(int(v) for v in np.unravel_index(f, a.shape))
        if idx not in out:
            out.append(idx)
        if len(out) == k:
            break
    return out


def _check(name: str, idx: tuple[int, ...], formula: float, backward: Any) -> dict[str, Any]:
    return {"what": f"{name}[{', '.join(str(i) for i in idx)}]", "formula": number(formula),
            "backward": number(backward)}


def _affine(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
            grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    W = params["W"]
    x2, N = x.reshape(x.shape[0], -1), x.shape[0]
    flat = " (x flattened per sample)" if x.ndim > 2 else ""
    lines = [f"out {S(out.shape)} = x {S(x2.shape)} · W {S(W.shape)} + b {S(params['b'].shape)}{flat}",
             f"dx {S(x2.shape)} = dout {S(dout.shape)} · Wᵀ {S(W.T.shape)}"
             + (f", reshaped to x's {S(x.shape)}" if x.ndim > 2 else ""),
             f"dW {S(W.shape)} = xᵀ {S(x2.T.shape)} · dout {S(dout.shape)}",
             f"db {S(params['b'].shape)} = Σ over the {N} samples of dout {S(dout.shape)}"]
    checks = [_check("dW", (i, j), x2[:, i] @ dout[:, j], grads["dW"][i, j]) for i, j in _picks(grads["dW"])]
    checks += [_check("db", (j,), dout[:, j].sum(), grads["db"][j]) for (j,) in _picks(grads["db"], 2)]
    dx2 = dx.reshape(N, -1)
    checks += [_check("dx", (n, k), dout[n] @ W[k], dx2[n, k]) for n, k in _picks(dx2, 2)]
    return {"title": "Affine", "lines": lines, "checks": checks}


def _relu(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
          grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    lines = [f"out {S(out.shape)} = max(0, x {S(x.shape)})",
             f"dx {S(dx.shape)} = dout {S(dout.shape)} ⊙ [x > 0]   (the gradient passes where x was positive, "
             f"stops elsewhere: {np.mean(x <= 0):.0%} of it stopped here)"]
    idx = _picks(dx, 2, where=x > 0) + _picks(dx, 2, where=x <= 0)[1:2]
    checks = [_check("dx", i, dout[i] * (x[i] > 0), dx[i]) for i in dict.fromkeys(idx)]
    return {"title": "Relu", "lines": lines, "checks": checks}


def _sigmoid(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
             grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    lines = [f"y {S(out.shape)} = 1 / (1 + exp(−x {S(x.shape)}))",
             f"dx {S(dx.shape)} = dout {S(dout.shape)} ⊙ y ⊙ (1 − y)   (at most dout/4: y(1−y) ≤ 0.25)"]
    checks = [_check("dx", i, dout[i] * out[i] * (1 - out[i]), dx[i]) for i in _picks(dx)]
    return {"title": "Sigmoid", "lines": lines, "checks": checks}


def _softmax_loss(layer: Any, x: np.ndarray, y: np.ndarray, dout: Any, dx: np.ndarray,
                  grads: dict[str, np.ndarray], params: dict[str, np.ndarray], t: Any = None) -> Rule:
    N, K = x.shape[0], x.shape[1]
    lines = [f"y {S(x.shape)} = softmax(x {S(x.shape)}) row by row;  loss = −Σ t·log y / N (N = {N})",
             f"dx {S(dx.shape)} = (y {S(x.shape)} − t {S((N, K))}) / N   (t one-hot; dout = 1)"]
    checks: list[dict[str, Any]] = []
    if y is not None and t is not None:
        onehot = np.zeros((N, K))
        onehot[np.arange(N), labels_of(np.asarray(t))] = 1
        ref = (y - onehot) / N
        checks = [_check("dx", i, ref[i], dx[i]) for i in _picks(dx, 2) + _picks(dx, 2, where=onehot > 0)[1:]]
    return {"title": "SoftmaxWithLoss", "lines": lines, "checks": checks}


def _convolution(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
                 grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    W, s, p = params["W"], int(layer.stride), int(layer.pad)
    FN, C, FH, FW = W.shape
    N, _, OH, OW = out.shape
    rows, cols = N * OH * OW, C * FH * FW
    lines = [f"col {S((rows, cols))} = im2col(x {S(x.shape)}, {FH}×{FW}, stride {s}, pad {p})",
             f"out {S(out.shape)} = (col {S((rows, cols))} · Wᵀ {S((cols, FN))} + b {S((FN,))}) reshaped",
             f"dW {S(W.shape)} = (colᵀ {S((cols, rows))} · dout {S((rows, FN))}) reshaped",
             f"db {S((FN,))} = Σ over N, OH, OW of dout {S(dout.shape)}",
             f"dx {S(x.shape)} = col2im(dout {S((rows, FN))} · W {S((FN, cols))})"]
    col = im2col(x, FH, FW, s, p)
    d2 = dout.transpose(0, 2, 3, 1).reshape(rows, FN)
    dW = (col.T @ d2).T.reshape(W.shape)
    dxf = col2im(d2 @ W.reshape(FN, cols), x.shape, FH, FW, s, p)
    checks = [_check("dW", i, dW[i], grads["dW"][i]) for i in _picks(grads["dW"])]
    checks += [_check("db", (f,), d2[:, f].sum(), grads["db"][f]) for (f,) in _picks(grads["db"], 1)]
    checks += [_check("dx", i, dxf[i], dx[i]) for i in _picks(dx, 2)]
    return {"title": "Convolution", "lines": lines, "checks": checks}


def _pool_share(layer: Any, x: np.ndarray, dout: np.ndarray, idx: tuple[int, ...]) -> float:
    """The gradient input position ``idx`` receives: the windows holding it, each passing its
    dout to its first maximum (max pooling) or sharing it equally (average pooling)."""
    n, c, h, w = idx
    ph, pw, s, p = layer.pool_h, layer.pool_w, layer.stride, layer.pad
    avg = isinstance(layer, L.AvgPooling)
    xp = np.pad(x[n, c], p, constant_values=0.0 if avg else -np.inf)
    total = 0.0
    for oh in range(dout.shape[2]):
        for ow in range(dout.shape[3]):
            r0, c0 = oh * s, ow * s
            if not (r0 <= h + p < r0 + ph and c0 <= w + p < c0 + pw):
                continue
            if avg:
                total += dout[n, c, oh, ow] / (ph * pw)
            else:
                k = int(np.argmax(xp[r0:r0 + ph, c0:c0 + pw]))
                if (r0 + k // pw, c0 + k % pw) == (h + p, w + p):
                    total += dout[n, c, oh, ow]
    return total


def _pooling(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
             grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    ph, pw, s, p = layer.pool_h, layer.pool_w, layer.stride, layer.pad
    avg = isinstance(layer, L.AvgPooling)
    win = f"{ph}×{pw} windows, stride {s}, pad {p}"
    if avg:
        lines = [f"out {S(out.shape)} = the mean of each {win} of x {S(x.shape)}",
                 f"dx {S(dx.shape)}: each window's dout {S(dout.shape)} shared equally, dout/{ph * pw}, "
                 "among its cells"]
    else:
        lines = [f"out {S(out.shape)} = the maximum of each {win} of x {S(x.shape)}",
                 f"dx {S(dx.shape)}: each window's dout {S(dout.shape)} goes to the cell that held its "
                 "maximum; every other cell gets 0"]
    idx = _picks(dx, 2) + _picks(dx, 2, where=dx == 0)[1:2]
    checks = [_check("dx", i, _pool_share(layer, x, dout, i), dx[i]) for i in dict.fromkeys(idx)]
    return {"title": type(layer).__name__, "lines": lines, "checks": checks}


def _batchnorm(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
               grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    x2, d2 = x.reshape(x.shape[0], -1), dout.reshape(x.shape[0], -1)
    N, D = x2.shape
    gamma = params["gamma"]
    std = np.sqrt(x2.var(axis=0) + L.BATCHNORM_EPS)
    xn = (x2 - x2.mean(axis=0)) / std
    dxn = gamma * d2
    dx_f = (N * dxn - dxn.sum(axis=0) - xn * (dxn * xn).sum(axis=0)) / (N * std)
    lines = [f"x̂ {S((N, D))} = (x − μ) / √(σ² + ε), μ and σ² of each of the {D} features over the batch of {N}",
             f"out {S((N, D))} = γ {S(gamma.shape)} ⊙ x̂ + β",
             f"dβ {S(gamma.shape)} = Σ over the batch of dout;  dγ {S(gamma.shape)} = Σ over the batch of dout ⊙ x̂",
             f"dx {S(x.shape)} = (N·dx̂ − Σ dx̂ − x̂ ⊙ Σ(dx̂ ⊙ x̂)) / (N·√(σ² + ε)),  dx̂ = γ ⊙ dout"]
    checks = [_check("dgamma", (j,), (d2[:, j] * xn[:, j]).sum(), grads["dgamma"][j])
              for (j,) in _picks(grads["dgamma"], 2)]
    checks += [_check("dbeta", (j,), d2[:, j].sum(), grads["dbeta"][j]) for (j,) in _picks(grads["dbeta"], 1)]
    dxl = dx.reshape(N, D)
    checks += [_check("dx", i, dx_f[i], dxl[i]) for i in _picks(dxl, 2)]
    return {"title": "BatchNormalization", "lines": lines, "checks": checks}


def _dropout(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
             grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    mask = np.asarray(host(layer.mask)) > 0
    lines = [f"out {S(out.shape)} = x {S(x.shape)} ⊙ mask (a new random mask each training pass, "
             f"keeping {mask.mean():.0%} here; ratio {layer.dropout_ratio})",
             f"dx {S(dx.shape)} = dout {S(dout.shape)} ⊙ mask"]
    idx = _picks(dx, 2, where=mask) + _picks(dx, 2, where=~mask)[1:2]
    checks = [_check("dx", i, dout[i] * mask[i], dx[i]) for i in dict.fromkeys(idx)]
    return {"title": "Dropout", "lines": lines, "checks": checks}


def _generic(layer: Any, x: np.ndarray, out: np.ndarray, dout: np.ndarray, dx: np.ndarray,
             grads: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> Rule:
    """A layer without a written rule: dx checked against central differences of
    Σ(forward(x) ⊙ dout), the quantity whose gradient backward computes."""
    lines = [f"out {S(out.shape)} = {type(layer).__name__}.forward(x {S(x.shape)})",
             f"dx {S(dx.shape)} = {type(layer).__name__}.backward(dout {S(dout.shape)})",
             "checked: dx[i] ≈ (Σ f(x + h·eᵢ) ⊙ dout − Σ f(x − h·eᵢ) ⊙ dout) / 2h, h = 1e-5"]
    checks = []
    for i in _picks(dx, 2):
        xp, xm = x.copy(), x.copy()
        xp[i] += 1e-5
        xm[i] -= 1e-5
        fp = float(np.sum(host(L.run_forward(layer, xp, True)) * dout))
        fm = float(np.sum(host(L.run_forward(layer, xm, True)) * dout))
        checks.append(_check("dx", i, (fp - fm) / 2e-5, dx[i]))
    return {"title": type(layer).__name__, "lines": lines, "checks": checks,
            "note": "fastdl has no written rule for this layer: its backward is compared with a "
                    "numerical derivative instead (a layer with random forward passes will not match)"}


_RULES: list[tuple[type, Callable[..., Rule]]] = [
    (L.Affine, _affine), (L.Relu, _relu), (L.Sigmoid, _sigmoid), (L.SoftmaxWithLoss, _softmax_loss),
    (L.Convolution, _convolution), (L.Pooling, _pooling), (L.BatchNormalization, _batchnorm),
    (L.Dropout, _dropout),
]


def rule(layer: Any, x: np.ndarray, out: Any, dout: Any, dx: np.ndarray, grads: dict[str, np.ndarray],
         params: dict[str, np.ndarray], t: Any = None) -> Rule:
    """The backward rule of ``layer`` with this pass's shapes and a few entries checked."""
    for cls, fn in _RULES:
        if type(layer) is cls or (cls is L.Pooling and type(layer) is L.AvgPooling):
            if fn is _softmax_loss:
                out_rule = _softmax_loss(layer, x, out, dout, dx, grads, params, t=t)
            else:
                out_rule = fn(layer, x, out, dout, dx, grads, params)
            out_rule["checks"] = list({c["what"]: c for c in out_rule["checks"]}.values())   # each entry once
            return out_rule
    if t is not None:
        return {"title": type(layer).__name__, "lines": [f"dx {S(dx.shape)} = backward(1)"], "checks": [],
                "note": "a loss layer fastdl has no written rule for"}
    return _generic(layer, x, out, dout, dx, grads, params)
