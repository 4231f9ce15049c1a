"""``fastdl compare``: every layer and a whole training step of the book's networks under
each available backend, side by side, with the largest difference from the reference.

Layers and fused blocks run in this process, one backend after the other (a pause of
``SETTLE_S`` seconds before each backend), on identical inputs and weights. The training step is
timed with each backend in its own fresh process (:func:`fastdl.bench.step_ms_rounds`), the
backends alternating over ``rounds``: in one process the step's speed-up depends on what ran
before it (another backend's BLAS threads, heap and caches), and a user's own script runs one
backend. Its correctness is checked here, in this process, on the same weights. PyTorch (when
installed) runs in a child process too: in one process its OpenMP runtime and Numba's slow
each other down (measured 22-44%). Speed and correctness are reported together: a fast kernel
that is wrong shows up in the ``max|diff|`` column and the exit status.
"""
import json
import os
import tempfile

import numpy as np

from . import backend, fusion, torch_peer
from .bench import NETS, build, median_time, step_ms_rounds
from .layers import run_forward

#: a difference above TOL * (largest magnitude of the reference's same result) marks a mismatch;
#: summation order alone moves float32 results by about 1e-6 of that, float64 by about 1e-15
TOL = {"float32": 1e-4, "float64": 1e-10}

#: seconds of pause before each backend's layer rows (idle BLAS / OpenMP threads stop spinning)
SETTLE_S = 0.3


def method(rounds):
    """One sentence: how :func:`run` times layers and the training step (printed with the table)."""
    return (f"layers and fused blocks: timed in this process, backend after backend, {SETTLE_S:g} s pause "
            f"before each backend; training step: each backend timed in its own process, {rounds} "
            f"round{'s' if rounds != 1 else ''} alternating backends, median of all timed steps")


def _describe(layer, x):
    """(row label, spec for the PyTorch peer): each layer describes itself (``describe``); a layer
    without that method is labelled with its class name and has no peer."""
    describe = getattr(layer, "describe", None)
    label, peer = describe(tuple(x.shape)) if describe is not None else (type(layer).__name__, None)
    return label, {"x": list(x.shape), "torch": peer}


def _fwd_bwd(layer, x, dout):
    """Forward (training mode) and backward; returns every result array."""
    np.random.seed(123)                           # the same dropout mask on every backend
    out = run_forward(layer, x, True)
    dx = layer.backward(dout)
    res = [out, dx]
    for attr in ("dW", "db", "dgamma", "dbeta"):
        v = getattr(layer, attr, None)
        if isinstance(v, np.ndarray):
            res.append(v)
    return res


def _max_diff(got, want):
    return max(float(np.max(np.abs(np.asarray(g, dtype=np.float64) - np.asarray(w, dtype=np.float64))))
               if np.size(w) else 0.0 for g, w in zip(got, want))


def _scale(arrays):
    return max([np.finfo(np.float64).tiny] + [float(np.max(np.abs(a))) for a in arrays if np.size(a)])


def _agrees(got, want, dtype):
    """Every result array within TOL of its own reference's largest magnitude (one array's scale
    must not hide an error in a smaller one, e.g. a block's output next to its dW)."""
    return all(_max_diff([g], [w]) <= TOL[dtype] * _scale([w]) for g, w in zip(got, want))


def _settle(seconds=SETTLE_S):
    """Let idle BLAS / OpenMP worker threads of the previous backend stop spinning."""
    import time
    time.sleep(seconds)


def _measure(entries, backends, dtype, repeat, say):
    """entries: (row, fn) with fn() running one layer or block and returning its result arrays.
    Fills row["times"] / row["diff"] / row["ok"] backend by backend: alternating backends row by
    row lets one backend's idle BLAS or OpenMP threads spin while the other runs, which
    misstates both."""
    refs = []
    for b in backends:
        _settle()
        for k, (row, fn) in enumerate(entries):
            say(f"{row['net']} {row['what'].strip()}: {b}")
            with backend.using_backend(b):
                got = fn()
                row["times"][b] = median_time(fn, repeat=repeat, warmup=1)[0] * 1e3
            if b == "numpy":
                refs.append(got)
            else:
                row["diff"][b] = _max_diff(got, refs[k])
                if not _agrees(got, refs[k], dtype):
                    row["ok"] = False


def _block_rows(model, inputs, douts, backends, dtype, repeat, say):
    """Rows for the fused Convolution -> Relu [-> Pooling] blocks the network runs (Net.fuse),
    forward + backward, on the same inputs as the layer rows (no PyTorch peer)."""
    layers = model._layer_list()
    where = {id(layer): i for i, layer in enumerate(layers)}
    rows = []
    for blk in (step for step in fusion.plan(layers) if isinstance(step, fusion.ConvBlock)):
        i0, i1 = where[id(blk.conv)], where[id(blk.pool if blk.pool is not None else blk.relu)]
        label = f"{i0 + 1:2d}-{i1 + 1} fused Conv+Relu" + ("+Pool" if blk.pool is not None else "")
        rows.append(({"net": type(model).__name__, "what": label, "shape": list(inputs[i0].shape),
                      "times": {}, "diff": {}, "ok": True}, blk, inputs[i0], douts[i1]))

    def fwd_bwd(blk, xin, dout):
        out = blk.forward(xin)
        dx = blk.backward(dout)
        return [out, dx, blk.conv.dW, blk.conv.db]
    _measure([(row, lambda blk=blk, xin=xin, d=d: fwd_bwd(blk, xin, d)) for row, blk, xin, d in rows],
             backends, dtype, repeat, say)
    return [r[0] for r in rows]


def _backends(backends):
    backends = list(backends or backend.available_backends())
    if "numpy" not in backends:
        backends.insert(0, "numpy")
    return backends


def planned_steps(nets=("simple", "deep"), backends=None, torch=True, rounds=2):
    """How many times :func:`run` with these arguments calls its ``progress`` (once per measurement:
    each layer and fused block on each backend, each training step's check on each backend, each
    round's child process per backend, and two per network for PyTorch when it is timed): the
    total of a progress bar."""
    backends = _backends(backends)
    use_torch = torch and torch_peer.available()
    total = 0
    for net_name in nets:
        np_state = np.random.get_state()
        try:
            model = NETS[net_name](dtype=np.float32)
        finally:
            np.random.set_state(np_state)
        layers = model._layer_list()
        blocks = sum(isinstance(step, fusion.ConvBlock) for step in fusion.plan(layers))
        total += (len(layers) + blocks + 1 + rounds) * len(backends) + (2 if use_torch else 0)
    return total


def run(nets=("simple", "deep"), batch=100, dtype="float32", repeat=10, backends=None, torch=True,
        progress=None, rounds=2):
    """Time and check every layer and a training step (the step: each backend in its own process,
    ``rounds`` rounds alternating backends, ``repeat`` timed steps per process; see :func:`method`).
    Returns a list of result dicts: {net, what, times: {backend: ms}, diff: {backend: max abs diff},
    ok: bool}; the step's dict also has round_ms: {backend: [each round's median ms]}.
    Raises ValueError for no or unknown nets, a batch, repeat or rounds below 1, an unknown dtype;
    fastdl.bench.StepTimingError if a child process timing a step fails."""
    nets = list(nets)
    if not nets or any(n not in NETS for n in nets):
        raise ValueError(f"compare.run: nets must name at least one of {', '.join(NETS)}, got {nets}")
    for name, value in (("batch", batch), ("repeat", repeat), ("rounds", rounds)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"compare.run: {name} must be a whole number >= 1, got {value!r}")
    if str(np.dtype(dtype)) not in TOL:
        raise ValueError(f"compare.run: dtype must be float32 or float64, got {dtype!r}")
    dtype = str(np.dtype(dtype))
    backends = _backends(backends)
    use_torch = torch and torch_peer.available()
    results = []
    say = progress or (lambda msg: None)
    for net_name in nets:
        model, x, t, _ = build(net_name, dtype, batch)
        # the inputs every layer sees, from a reference forward pass
        inputs = []
        with backend.using_backend("numpy"):
            h = model._input(x)
            for layer in model._layer_list():
                # contiguous, as each backend's own previous layer would hand it on (the reference's
                # convolution returns a transposed view, which would charge the other backends a copy)
                h = np.ascontiguousarray(h)
                inputs.append(h)
                np.random.seed(123)
                h = run_forward(layer, h, True)
        rng = np.random.default_rng(1)
        rows: list = []
        specs, douts = [], []
        for i, (layer, xin) in enumerate(zip(model._layer_list(), inputs)):
            label, spec = _describe(layer, xin)
            with backend.using_backend("numpy"):
                np.random.seed(123)
                out = run_forward(layer, xin, True)
            douts.append(rng.standard_normal(out.shape).astype(dtype))
            rows.append({"net": NETS[net_name].__name__, "what": f"{i + 1:2d} {label}", "shape": list(xin.shape),
                         "times": {}, "diff": {}, "ok": True})
            specs.append(spec)
        _measure([(row, lambda layer=layer, xin=xin, d=d: _fwd_bwd(layer, xin, d))
                  for row, layer, xin, d in zip(rows, model._layer_list(), inputs, douts)],
                 backends, dtype, repeat, say)
        if use_torch:
            say(f"{NETS[net_name].__name__} layers: torch (own process)")
            with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
                json.dump(specs, f)
            try:
                res = torch_peer.measure(["--layers", f.name, "--dtype", dtype, "--repeat", str(repeat)])
            finally:
                os.unlink(f.name)
            if res:
                for row, ms in zip(rows, res["layers"]):
                    if ms is not None:
                        row["times"]["torch"] = ms
        results += rows
        results += _block_rows(model, inputs, douts, backends, dtype, repeat, say)
        # the whole training step: gradient + Adam update
        row = {"net": NETS[net_name].__name__, "what": "training step (gradient + Adam)",
               "shape": list(x.shape), "times": {}, "diff": {}, "ok": True}
        ref = None
        for b in backends:                        # correctness here; timing below, in child processes
            say(f"{NETS[net_name].__name__} training step: {b} (check)")
            m, xb, tb, _ = build(net_name, dtype, batch)
            with backend.using_backend(b):
                np.random.seed(7)
                grads = m.gradient(xb, tb)
                got = [grads[k].copy() for k in sorted(grads)]
            if b == "numpy":
                ref = got
            else:
                d = _max_diff(got, ref)
                row["diff"][b] = d
                if not _agrees(got, ref, dtype):
                    row["ok"] = False
        timed = step_ms_rounds(net_name, backends, dtype, batch, repeat, rounds,
                               progress=lambda msg: say(f"{NETS[net_name].__name__} training step: {msg}"))
        for b in backends:
            row["times"][b] = timed[b]["median_ms"]
        row["round_ms"] = {b: timed[b]["round_ms"] for b in backends}
        if use_torch:
            say(f"{NETS[net_name].__name__} training step: torch (own process)")
            res = torch_peer.measure(["--net", net_name, "--dtype", dtype, "--batch", str(batch), "--repeat", str(repeat)])
            if res:
                row["times"]["torch"] = res["median_ms"]
        results.append(row)
    return results


def format_table(results, dtype, batch, repeat):
    """The rows of :func:`run` as a text table, one block per network: milliseconds per backend,
    the speed-up over numpy and the largest difference from it of each compiled backend, and
    ``MISMATCH`` on a row whose results are not within tolerance."""
    cols = []
    for r in results:
        for b in r["times"]:
            if b not in cols:
                cols.append(b)
    fast = [b for b in cols if b not in ("numpy", "torch")]
    lines = []
    current = None
    header = (f"{'':44s}" + "".join(f"{b + ' ms':>11s}" for b in cols)
              + "".join(f"{'x ' + b:>9s}" for b in fast) + "".join(f"{'max|diff| ' + b:>17s}" for b in fast))
    for r in results:
        if r["net"] != current:
            current = r["net"]
            lines.append("")
            lines.append(f"{current}, batch {batch}, {dtype}, median of {repeat} (forward + backward per layer)")
            lines.append(header)
        cells = "".join(f"{r['times'][b]:11.2f}" if b in r["times"] else f"{'-':>11s}" for b in cols)
        speed = "".join(f"{r['times']['numpy'] / r['times'][b]:8.1f}x" if b in r["times"] else f"{'-':>9s}"
                        for b in fast)
        diffs = "".join(f"{r['diff'][b]:17.1e}" if b in r["diff"] else f"{'-':>17s}" for b in fast)
        flag = "" if r["ok"] else "  MISMATCH"
        lines.append(f"{r['what'][:44]:44s}{cells}{speed}{diffs}{flag}")
    return "\n".join(lines)
