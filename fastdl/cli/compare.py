"""``fastdl compare``: every layer and a training step of the book's networks timed under each
backend on identical inputs, with the largest difference from the reference's results."""
from __future__ import annotations

import argparse
import os
import platform
import sys
from typing import Any

from . import (COMPARE_NETS, Failure, UsageError, _add_dtype, _add_progress, _show_progress, net_list,
               positive_int)

def add_parser(sub: Any) -> None:
    """The ``compare`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser("compare", help="time every layer and a training step on each backend, with correctness",
                       description="Run every layer (forward + backward) and a whole training step of the "
                                   "book's networks under each available backend on identical inputs, and "
                                   "print median times, speed-ups over the numpy reference, and the largest "
                                   "difference from the reference's results. The training step is timed with "
                                   "each backend in its own process (--rounds, backends alternating); "
                                   "PyTorch, when installed, in its own process too. Exit status 1 if a "
                                   "result differs beyond tolerance.")
    p.add_argument("--nets", type=net_list, default=list(COMPARE_NETS),
                   help="comma-separated: simple, deep (default both)")
    p.add_argument("--batch-size", type=positive_int, default=100, help="default 100")
    _add_dtype(p, "float32")
    p.add_argument("--repeat", type=positive_int, default=10, help="timed repetitions per measurement, default 10")
    p.add_argument("--rounds", type=positive_int, default=2,
                   help="training step: processes per backend, alternating backends (each times --repeat "
                        "steps), default 2")
    p.add_argument("--backends", help="comma-separated backends (default: all available here)")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    _add_progress(p)
    p.set_defaults(func=cmd_compare)


def cmd_compare(args: argparse.Namespace) -> int:
    """Run ``fastdl compare``; returns the exit status."""
    import json as _json

    import fastdl
    from fastdl import compare
    nets = args.nets                              # checked by net_list: known names, at least one
    backends = None
    if args.backends is not None:
        backends = []
        for b in (b.strip() for b in args.backends.split(",")):
            if b and b not in backends:
                backends.append(b)
        if not backends:
            raise UsageError(f"--backends {args.backends!r} names no backend; available backends: "
                             f"{', '.join(fastdl.backend.available_backends())}")
        for b in backends:
            fastdl.backend.ops(b)                 # raises BackendError naming the available ones
    bar = None
    if _show_progress(args):
        from tqdm.auto import tqdm
        total = compare.planned_steps(nets, backends, torch=not args.no_torch, rounds=args.rounds)
        bar = tqdm(total=total, unit="step", leave=False, file=sys.stderr, dynamic_ncols=True)

    def progress(msg):
        if bar is not None:
            bar.set_description_str(f"timing {msg}", refresh=False)
            bar.update(1)
        elif not args.json:
            print(f"timing {msg}", file=sys.stderr, flush=True)
    from ..bench import StepTimingError
    try:
        results = compare.run(nets=nets, batch=args.batch_size, dtype=args.dtype, repeat=args.repeat,
                              backends=backends, torch=not args.no_torch, progress=progress, rounds=args.rounds)
    except StepTimingError as exc:
        raise Failure(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(_json.dumps({"dtype": args.dtype, "batch": args.batch_size, "repeat": args.repeat,
                           "rounds": args.rounds, "method": compare.method(args.rounds),
                           "results": results}, indent=1))
    else:
        import numba
        print(f"fastdl {fastdl.__version__}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, {numba.get_num_threads()} Numba threads; times are medians, "
              f"'x' is the speed-up over numpy, max|diff| the largest difference from numpy's results")
        from ..bench import blas_line
        print(blas_line())
        print(f"Method: {compare.method(args.rounds)}.")
        print(compare.format_table(results, args.dtype, args.batch_size, args.repeat))
        if "torch" not in {b for r in results for b in r["times"]} and not args.no_torch:
            print("\n(PyTorch not installed: `pip install torch==2.13.0` adds it as a peer)")
    bad = [r["what"] for r in results if not r["ok"]]
    if bad:
        print(f"fastdl compare: results differ from the reference beyond tolerance: {bad}", file=sys.stderr)
        return 1
    return 0
