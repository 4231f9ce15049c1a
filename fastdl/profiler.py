"""Where a training step's time goes: ``profile_step(net, x, t)`` (or ``net.profile(x, t)``) times
every step of a real gradient computation, layer by layer, and sets it against the FLOPs each
layer's ``cost()`` counts and against this machine's measured peak.

``print(net.profile(x, t, optimizer=Adam()))`` shows a table: one row per step of the forward
pass in the order of ``net.layers`` (with ``net.fuse`` on, each Convolution -> Relu [-> Pooling]
that runs as one fused ConvBlock is one row), then the loss layer, the optimizer's update, the
rest of the step's time that no layer accounts for (Python, the gradient dict, weight decay), and
the whole step. Each row has its forward and backward times (medians over the repeats, in ms),
its FLOPs, the GFLOP/s they make, and the share of the machine's peak.

FLOPs (a multiply-add counts 2):

* forward: the layer's own ``cost(input_shape).flops`` (``fastdl.layers``; a ConvBlock adds up
  its layers' costs);
* backward: 2x the forward for a layer with weights ``W`` (Affine, Convolution: the products for
  dx and for dW each take as many multiply-adds as the forward's), 1x for the first step of the
  network, whose dx ``Net.gradient`` skips (``backward_params``: dW only), and 1x the forward for
  every other layer (Relu, Pooling, BatchNormalization, Dropout, the loss);
* the optimizer's update is timed but its FLOPs are not counted (``-``).

The peak (``machine_peak``, from ``fastdl._peak``) is measured once per machine and cached: NumPy's
own GEMM (sgemm for float32, dgemm for float64, ``GEMM_SIZE`` square, on as many BLAS threads as
Numba's kernels use) and an FMA loop (``fastdl._fma``: the rate at which Numba-compiled code issues independent
multiply-adds from registers, with no memory traffic). The share of peak is GFLOP/s over the
GEMM figure: the rate the same FLOPs would take as one large matrix product.

The network and the optimizer are left as they were: the parameters, the layers' running
statistics and NumPy's global random state are restored afterwards, and the updates run on a
copy of the optimizer. Nothing is timed against a fixed budget: the times are what this machine
gave while the profile ran (a busy machine gives larger ones; ``repeat`` more to steady them).
"""
from __future__ import annotations

import copy
import json
import platform
import time
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike

from . import backend, fusion
from ._checks import positive_int
from ._peak import GEMM_SIZE, PEAK_FORMAT, Peak, machine_peak, peak_path
from .layers import takes_train_flg

__all__ = ["profile_step", "Profile", "ProfileRow", "Peak", "machine_peak", "peak_path",
           "GEMM_SIZE", "PEAK_FORMAT"]


# -- the profile ---------------------------------------------------------------------------
class ProfileRow(NamedTuple):
    """One row of a ``Profile``; None where a figure does not apply or is not known.

    Attributes
    ----------
    name : str
        The step: a layer's name in ``net.layers`` and its class, the layers of a fused ConvBlock,
        ``last_layer``, the optimizer's update, or the rest.
    kind : str
        "layer", "block" (a fused ConvBlock), "loss", "optimizer" or "rest".
    forward_ms, backward_ms : float or None
        Median times over the repeats, in milliseconds.
    ms : float
        The row's time: forward + backward (the optimizer's update, the rest: its own median).
    forward_flops, backward_flops : int or None
        From ``cost()`` (the module's docstring says how the backward is counted).
    gflops : float or None
        (forward_flops + backward_flops) / ms.
    peak_share : float or None
        gflops / the GEMM peak of the network's dtype.
    step_share : float
        ms / the whole step's ms.
    """
    name: str
    kind: str
    forward_ms: float | None
    backward_ms: float | None
    ms: float
    forward_flops: int | None
    backward_flops: int | None
    gflops: float | None
    peak_share: float | None
    step_share: float

    @property
    def flops(self) -> int | None:
        """forward_flops + backward_flops (None if either is unknown)."""
        if self.forward_flops is None or self.backward_flops is None:
            return None
        return self.forward_flops + self.backward_flops


def _rate(flops: int | None, ms: float) -> float | None:
    return None if flops is None or ms <= 0 else flops / (ms * 1e-3) / 1e9


class Profile:
    """What ``profile_step`` returns: ``print`` shows the table, ``to_dict`` / ``to_json`` the data.

    Attributes
    ----------
    rows : list of ProfileRow
        The steps of the forward pass in order, the loss layer, the optimizer's update (when an
        optimizer is given), and the rest.
    total : ProfileRow
        The whole step (gradient + update): median time, FLOPs of the layers and the loss.
    peak : Peak
        The machine's peak for the network's dtype.
    info : dict
        The network, dtype, batch, backend, threads, fuse, repeat and warmup.
    """

    def __init__(self, rows: list[ProfileRow], total: ProfileRow, peak: Peak, info: dict[str, Any]) -> None:
        self.rows = rows
        self.total = total
        self.peak = peak
        self.info = info

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON-serialisable): info, peak, rows and total."""
        def row(r: ProfileRow) -> dict[str, Any]:
            d = r._asdict()
            d["flops"] = r.flops
            return d
        return {"info": dict(self.info), "peak": self.peak._asdict(),
                "rows": [row(r) for r in self.rows], "total": row(self.total)}

    def to_json(self, indent: int | None = 1) -> str:
        """``to_dict`` as JSON text."""
        return json.dumps(self.to_dict(), indent=indent)

    def __str__(self) -> str:
        i, p = self.info, self.peak
        fma = "not measured (no Numba)" if p.fma_gflops is None else f"{p.fma_gflops:.1f} GFLOP/s"
        head = [f"{i['net']} ({i['dtype']}), batch {i['batch']}, backend {i['backend']}, "
                f"{p.threads} threads, fuse {'on' if i['fuse'] else 'off'}: one training step "
                f"({'gradient + ' + i['optimizer'] + ' update' if i['optimizer'] else 'gradient'}), "
                f"medians of {i['repeat']} runs after {i['warmup']} warm-up",
                f"Peak of this machine ({p.dtype}, {p.threads} threads): NumPy GEMM "
                f"{p.gemm_gflops:.1f} GFLOP/s ({p.gemm_size}x{p.gemm_size}), FMA loop {fma}; "
                f"{'measured now' if p.measured else 'cached'} in {p.path}"]
        cols = ("Step", "Fwd ms", "Bwd ms", "ms", "% step", "MFLOP", "GFLOP/s", "% peak")

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        def cells(r: ProfileRow) -> tuple[str, ...]:
            fl = r.flops
            return (r.name, ms(r.forward_ms), ms(r.backward_ms), ms(r.ms), f"{100 * r.step_share:.1f}",
                    "-" if fl is None else f"{fl / 1e6:,.2f}",
                    "-" if r.gflops is None else f"{r.gflops:.1f}",
                    "-" if r.peak_share is None else f"{100 * r.peak_share:.1f}")
        table = [cols] + [cells(r) for r in self.rows] + [cells(self.total)]
        w = [max(len(c[k]) for c in table) for k in range(len(cols))]

        def line(c: tuple[str, ...]) -> str:
            return "  ".join([c[0].ljust(w[0])] + [c[k].rjust(w[k]) for k in range(1, len(cols))])
        rule = "=" * len(line(cols))
        out = head + [line(cols), rule] + [line(c) for c in table[1:-1]] + [rule, line(table[-1])]
        out.append("FLOPs: forward from each layer's cost() (a multiply-add counts 2); backward 2x the "
                   "forward for layers with weights (1x for the first, whose dx is skipped), 1x for the "
                   "others; the update's not counted. % peak: GFLOP/s over the GEMM peak. Medians do not "
                   "add up exactly to the total.")
        if any(r.peak_share is not None and r.peak_share > 1 for r in self.rows + [self.total]) \
                and not p.measured:
            out.append("Note: some rows exceed the cached peak: it may have been measured while the machine "
                       "was busy; refresh_peak=True (fastdl profile --refresh-peak) measures it again.")
        return "\n".join(s.rstrip() for s in out)

    __repr__ = __str__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:      # IPython: the table, as print shows it
        p.text(str(self))


class _Timed:
    """A step of the network's plan with its ``forward``, ``backward`` and ``backward_params``
    timed into ``times`` (index -> [forward s, backward s]); every other attribute is the step's."""
    train_flg_aware = False

    def __init__(self, step: Any, index: int, times: dict[int, list[float]], sync: Callable[[], None]) -> None:
        self._step, self._index, self._times, self._sync = step, index, times, sync

    def _timed(self, which: int, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self._sync()
        self._times.setdefault(self._index, [0.0, 0.0])[which] += time.perf_counter() - t0
        return out

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(0, self._step.forward, *args, **kwargs)

    def backward(self, *args: Any, **kwargs: Any) -> Any:
        return self._timed(1, self._step.backward, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._step, name)          # AttributeError if the step has none
        if name == "backward_params":
            return lambda *a, **k: self._timed(1, value, *a, **k)
        return value


_TIMED_CLASSES: dict[tuple[type, bool], type] = {}


def _timed(step: Any, index: int, times: dict[int, list[float]], sync: Callable[[], None]) -> Any:
    """A _Timed proxy whose class says whether the step's forward takes train_flg, as the step's does."""
    aware = takes_train_flg(step)
    cls = _TIMED_CLASSES.get((type(step), aware))
    if cls is None:
        cls = _TIMED_CLASSES[(type(step), aware)] = type(
            f"Timed{type(step).__name__}", (_Timed,), {"train_flg_aware": aware})
    return cls(step, index, times, sync)


def _step_names(net: Any, plan: Sequence[Any]) -> list[tuple[str, str]]:
    """(name, kind) of each step of the plan, named after the layers of ``net.layers`` it runs."""
    layers = net._layer_list()
    names = [str(k) for k in (net.layers.keys() if isinstance(net.layers, dict) else range(len(layers)))]
    out = []
    i = 0
    for step in plan:
        if i < len(layers) and step is layers[i]:
            out.append((f"{names[i]} ({type(step).__name__})", "layer"))
            i += 1
        else:
            members = list(getattr(step, "layers", (step,)))
            # layers held in a list are named by their index: the class beside it says what each is
            label = " -> ".join(names[i + k] if isinstance(net.layers, dict) else
                                f"{names[i + k]} {type(layer).__name__}"
                                for k, layer in enumerate(members) if i + k < len(names))
            out.append((f"{label} ({type(step).__name__})", "block"))
            i += len(members)
    return out


def _weighted(layer: Any) -> bool:
    return getattr(layer, "W", None) is not None


def _flops(step: Any, shape: tuple[int, ...] | None, params_only: bool) -> tuple[int | None, int | None, tuple[int, ...] | None]:
    """(forward FLOPs, backward FLOPs, output shape) of a step for an input shape, by the module's
    convention; Nones when the step has no ``cost`` or the shape is unknown."""
    cost = getattr(step, "cost", None)
    if shape is None or not callable(cost):
        return None, None, None
    c = cost(shape)
    members = step.layers if isinstance(step, fusion.ConvBlock) else (step,)
    back = 0
    s = shape
    for layer in members:
        lc = layer.cost(s) if len(members) > 1 else c
        factor = (1 if params_only and layer is members[0] else 2) if _weighted(layer) else 1
        back += factor * int(lc.flops)
        s = tuple(lc.output_shape)
    return int(c.flops), back, tuple(c.output_shape)


def _snapshot(net: Any) -> tuple[dict[str, np.ndarray], list[tuple[Any, str, Any]]]:
    """Host copies of the parameters, and the layers' state arrays as they are (running stats)."""
    ops = backend.ops()
    params = {k: np.array(ops.to_host(v), copy=True) for k, v in net.params.items()}
    states = []
    for layer in net._layer_list():
        for attr in getattr(layer, "state_attrs", ()):
            val = getattr(layer, attr, None)
            states.append((layer, attr, None if val is None else copy.deepcopy(val)))
    return params, states


def _restore(net: Any, saved: tuple[dict[str, np.ndarray], list[tuple[Any, str, Any]]]) -> None:
    params, states = saved
    for k, val in params.items():
        dst = net.params[k]
        dst[tuple(slice(None) for _ in dst.shape)] = val          # in place: layers share them
    for layer, attr, val in states:
        setattr(layer, attr, val)


def profile_step(net: Any, x: ArrayLike, t: ArrayLike, optimizer: Any = None, repeat: int = 10,
                 warmup: int = 2, refresh_peak: bool = False) -> Profile:
    """Time one training step of ``net`` on (x, t) layer by layer: ``print`` the result for the table.

    Each run computes the gradient as ``net.gradient(x, t)`` does (the same code: each step of the
    network's plan and its loss layer are wrapped in a timer, nothing else changes), then, with an
    optimizer, its update. The module's docstring says how FLOPs are counted and what the peak is.

    Parameters
    ----------
    net : Net
        One of fastdl's networks (or a ``fastdl.nets.base.Net`` of one's own).
    x : array_like
        A batch of inputs, as for ``net.gradient``.
    t : array_like
        Its labels.
    optimizer : optimizer, optional
        E.g. ``fastdl.optimizers.Adam()``: its ``update`` is timed as part of the step, on a copy
        (the optimizer's own state is left as it was).
    repeat : int
        Timed runs (>= 1); each figure is the median over them.
    warmup : int
        Untimed runs before them (>= 0): compilation and first-call costs. When not 0, at least
        2: after the first, background compiles are waited for (``backend.wait_for_kernels``).
    refresh_peak : bool
        Measure the machine's peak again instead of reading the cache (``machine_peak``).

    Returns
    -------
    Profile
        The table's rows and totals as attributes; ``to_dict`` / ``to_json`` for the data.
    """
    owner = "profile_step"
    repeat = positive_int("repeat", repeat, 1, owner=owner)
    warmup = positive_int("warmup", warmup, 0, owner=owner)
    if not (callable(getattr(net, "gradient", None)) and callable(getattr(net, "_plan", None))
            and hasattr(net, "last_layer")):
        raise TypeError(f"{owner}: net must be a fastdl network (a fastdl.nets.base.Net), got {type(net).__name__}")
    if optimizer is not None and not callable(getattr(optimizer, "update", None)):
        raise TypeError(f"{owner}: optimizer must have an update(params, grads) method, got {type(optimizer).__name__}")
    peak = machine_peak(net.dtype, refresh=refresh_peak)
    sync: Callable[[], None] = lambda: None
    if backend.current_backend() == "cuda" or getattr(net, "device", "cpu") == "cuda":
        from numba import cuda
        sync = cuda.synchronize
    opt = copy.deepcopy(optimizer) if optimizer is not None else None
    saved = _snapshot(net)
    rng_state = np.random.get_state()
    times: dict[int, list[float]] = {}
    plans: list[list[Any]] = []
    original_plan = net._plan
    original_loss = net.last_layer
    # where the loss layer is held: ``last_layer``, or the book's ``lastLayer`` behind a property
    loss_attr = next((a for a in ("last_layer", "lastLayer") if a in vars(net)
                      and vars(net)[a] is original_loss), None)
    loss_index = -1

    def timed_plan() -> list[Any]:
        steps = original_plan()
        plans.append(steps)
        return [_timed(s, k, times, sync) for k, s in enumerate(steps)]

    runs: list[tuple[dict[int, list[float]], float, float]] = []
    try:
        net._plan = timed_plan
        if loss_attr is not None:
            setattr(net, loss_attr, _timed(original_loss, loss_index, times, sync))
        # warm-up: one run, the background compiles it queued (FASTDL_COMPILE), one more run
        warm = max(warmup, 2) if warmup else 0
        for run in range(warm + repeat):
            if run == 1 and warm:
                backend.wait_for_kernels()
            times.clear()
            t0 = time.perf_counter()
            grads = net.gradient(x, t)
            t1 = t2 = time.perf_counter()
            if opt is not None:
                opt.update(net.params, grads)
                sync()
                t2 = time.perf_counter()
            if run >= warm:
                runs.append(({k: list(v) for k, v in times.items()}, t1 - t0, t2 - t1))
    finally:
        if "_plan" in vars(net):
            del net._plan
        if loss_attr is not None:
            setattr(net, loss_attr, original_loss)
        if plans:
            net._last_plan = plans[-1]
        _restore(net, saved)
        np.random.set_state(rng_state)
    plan = plans[-1]
    if not any(k >= 0 for k in runs[-1][0]):
        raise TypeError(f"{owner}: {type(net).__name__}'s gradient does not run its layers through "
                        "Net._plan; profile_step times networks built on fastdl.nets.base.Net")

    def med(vals: list[float]) -> float:
        return float(np.median(vals)) * 1e3

    step_ms = med([g + u for _, g, u in runs])
    # the rows: the plan's steps, the loss layer
    names = _step_names(net, plan)
    shape: tuple[int, ...] | None = tuple(int(v) for v in np.shape(x))
    rows: list[ProfileRow] = []
    first_params_only = hasattr(plan[0], "backward_params")

    def make(name: str, kind: str, f_ms: float | None, b_ms: float | None, total_ms: float,
             f_fl: int | None, b_fl: int | None) -> ProfileRow:
        fl = None if f_fl is None or b_fl is None else f_fl + b_fl
        rate = _rate(fl, total_ms)
        return ProfileRow(name, kind, f_ms, b_ms, total_ms, f_fl, b_fl, rate,
                          None if rate is None else rate / peak.gemm_gflops,
                          total_ms / step_ms if step_ms > 0 else 0.0)

    accounted = [0.0] * len(runs)
    indices = list(range(len(plan))) + [loss_index]
    for k in indices:
        per = [r[0].get(k, [0.0, 0.0]) for r in runs]
        for j, v in enumerate(per):
            accounted[j] += v[0] + v[1]
        f_ms, b_ms = med([v[0] for v in per]), med([v[1] for v in per])
        if k == loss_index and loss_attr is None:
            continue          # a loss layer held elsewhere: its time is in the rest
        if k == loss_index:
            cost = getattr(original_loss, "cost", None)
            f_fl = b_fl = None
            if shape is not None and callable(cost):
                f_fl = b_fl = int(cost(shape).flops)
            rows.append(make(f"last_layer ({type(original_loss).__name__})", "loss", f_ms, b_ms,
                             f_ms + b_ms, f_fl, b_fl))
        else:
            f_fl, b_fl, shape = _flops(plan[k], shape, first_params_only and k == 0)
            name, kind = names[k]
            rows.append(make(name, kind, f_ms, b_ms, f_ms + b_ms, f_fl, b_fl))
    if opt is not None:
        rows.append(make(f"{type(opt).__name__}.update", "optimizer", None, None,
                         med([u for _, _, u in runs]), None, None))
    rest = med([g - a for (_, g, _), a in zip(runs, accounted)])
    rows.append(make("rest (Python, gradient dict, weight decay)", "rest", None, None, rest, None, None))
    layer_rows = [r for r in rows if r.kind in ("layer", "block", "loss")]
    known = all(r.flops is not None for r in layer_rows)
    total_flops = sum(int(r.flops) for r in layer_rows if r.flops is not None) if known else None
    f_total = sum(int(r.forward_flops) for r in layer_rows if r.forward_flops is not None) if known else None
    b_total = None if total_flops is None or f_total is None else total_flops - f_total
    total = make("Total step", "total", sum(float(r.forward_ms or 0) for r in layer_rows),
                 sum(float(r.backward_ms or 0) for r in layer_rows), step_ms, f_total, b_total)
    info = {"net": type(net).__name__, "dtype": np.dtype(net.dtype).name, "batch": int(np.shape(x)[0]),
            "backend": backend.current_backend(), "fuse": bool(net.fuse), "repeat": repeat,
            "warmup": warmup, "optimizer": None if opt is None else type(opt).__name__,
            "host": platform.node()}
    return Profile(rows, total, peak, info)
