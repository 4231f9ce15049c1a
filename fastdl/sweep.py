"""Every op of ``fastdl.kernels.spec`` from tiny inputs to the book's largest, on two backends.

``python benchmarks/scripts/sweep.py`` (or ``python -m fastdl.sweep``) prints, for each op
and size, the median time of the reference backend and of the numba backend measured
side by side (calls of the two alternate, round after round) and their ratio; a ratio
above 1 means the fast backend lost at that size. ``--paths`` adds the numba kernels
forced onto the calling thread and forced parallel, which is how the thresholds that
choose between the two (``MIN_PARALLEL`` in each kernel module) were set. The asv suite
``benchmarks/bench_sweep.py`` runs the same cases.

Each case is ``(op, label, make)`` from ``fastdl.kernels.examples``, where ``make(ops, dtype)``
builds the inputs (and the forward context for backward ops) with that backend and returns
the call to time. An op added to the spec is swept with its family's shapes, no edit here.
"""
import argparse
import json
import sys
import time

import numpy as np

from . import backend
from .kernels import examples


def cases():
    """[(op, label, make)] for every op of the spec that computes, tiny to large: the example
    cases of ``fastdl.kernels.examples``, where each op's family in the spec chooses them."""
    out = examples.cases()
    missing = set(examples.timed_ops()) - {c[0] for c in out}
    assert not missing, f"ops without a sweep case: {sorted(missing)}"
    return out


def _per_call(fn, number):
    t0 = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - t0) / number


def measure(calls, rounds=7, target=0.004):
    """{name: median seconds per call}; the calls alternate round after round, each round
    timing enough calls to last about ``target`` seconds."""
    numbers = {}
    for name, fn in calls.items():
        fn()
        backend.wait_for_kernels()   # the next calls run compiled kernels, not the reference
        fn()
        once = _per_call(fn, 1)
        numbers[name] = max(1, min(2000, int(target / max(once, 1e-7))))
    times: dict = {name: [] for name in calls}
    for _ in range(rounds):
        for name, fn in calls.items():
            times[name].append(_per_call(fn, numbers[name]))
    return {name: float(np.median(t)) for name, t in times.items()}


def run(dtype="float64", ops_filter=None, paths=False, rounds=7, out=sys.stdout, fast="numba"):
    """Time every case; print a table row per case and return the rows as dicts."""
    ref, fst = backend.ops("numpy"), backend.ops(fast)
    rows = []
    head = f"{'op':24} {'size':34} {'numpy us':>10} {fast + ' us':>10} {'ratio':>6}"
    if paths:
        head += f" {'serial us':>10} {'parallel us':>11}"
    print(head, file=out, flush=True)
    for op, label, make in cases():
        if ops_filter and not any(f in op for f in ops_filter):
            continue
        calls = {"numpy": make(ref, dtype), fast: make(fst, dtype)}
        if paths and fast == "numba":
            calls["serial"] = _forced(make(fst, dtype), "serial")
            calls["parallel"] = _forced(make(fst, dtype), "parallel")
        med = measure(calls, rounds=rounds)
        row = {"op": op, "size": label, "dtype": dtype, **{k + "_us": v * 1e6 for k, v in med.items()},
               "ratio": med[fast] / med["numpy"]}
        rows.append(row)
        line = f"{op:24} {label:34} {med['numpy'] * 1e6:10.1f} {med[fast] * 1e6:10.1f} {row['ratio']:6.2f}"
        if paths and "serial" in med:
            line += f" {med['serial'] * 1e6:10.1f} {med['parallel'] * 1e6:11.1f}"
        if row["ratio"] > 1:
            line += "  slower"
        print(line, file=out, flush=True)
    return rows


def _forced(fn, mode):
    from .kernels.cpu import _chunks

    def call():
        with _chunks.forced(mode):
            return fn()
    return call


def main(argv=None):
    """The command line (``python -m fastdl.sweep --help``)."""
    p = argparse.ArgumentParser(prog="sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    p.add_argument("--ops", default="", help="comma-separated substrings of op names (default: all)")
    p.add_argument("--paths", action="store_true", help="also time numba forced serial and forced parallel")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    a = p.parse_args(argv)
    if a.rounds < 1:
        p.error("--rounds must be at least 1")
    from .bench import blas_line
    from .kernels.cpu import _threads
    omp_status = getattr(_threads, "omp_status", "not managed by this version of fastdl")
    import numba
    print(f"fastdl sweep: {numba.get_num_threads()} Numba threads ({numba.threading_layer()}); "
          f"OpenMP wait: {omp_status}", flush=True)
    print(blas_line(), flush=True)
    rows = []
    for dt in (["float64", "float32"] if a.dtype == "both" else [a.dtype]):
        print(f"\n{dt}: medians of {a.rounds} rounds, numba/numpy ratio (<= 1: numba as fast or faster)")
        rows += run(dt, [s for s in a.ops.split(",") if s], a.paths, a.rounds)
    slower = [r for r in rows if r["ratio"] > 1]
    print(f"\n{len(rows)} points, {len(slower)} where numba was slower than numpy"
          + (": " + "; ".join(f"{r['op']} {r['size']} {r['dtype']} ({r['ratio']:.2f})" for r in slower)
             if slower else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
