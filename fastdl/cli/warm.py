"""``fastdl warm``: compile (or load from Numba's cache) every kernel of the numba backend once."""
from __future__ import annotations

import sys
import time
from typing import Any

#: what an install line runs after ``pip install``: one command, a no-op when the cache is warm
INSTALL_LINE = "fastdl warm"


def add_parser(sub: Any) -> None:
    """The ``warm`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser(
        "warm", help="compile every kernel of the numba backend for both dtypes into Numba's cache",
        description="Compile every kernel of the numba backend for float32 and float64 (minutes on 2 busy "
                    "cores) and keep them in Numba's cache (NUMBA_CACHE_DIR, else __pycache__ next to the sources), "
                    "so later processes load them in milliseconds. A no-op, in well under a second, when "
                    "the cache already holds them. Without it, a process runs each op on the reference "
                    "kernels while its compile runs in the background (FASTDL_COMPILE=background).")
    p.add_argument("--ops", default=None, metavar="NAMES",
                   help="only these ops, comma-separated (e.g. relu_forward,relu_backward); default every op")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_warm)


def _bar(done: int, total: int, label: str) -> None:
    width = 30
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label[:40]:40s}")
    if done == total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def cmd_warm(args: Any) -> int:
    from fastdl import backend
    from fastdl.kernels.spec import BY_NAME
    try:
        backend.ops("numba")
    except backend.BackendError as exc:
        print(f"fastdl warm: {exc}", file=sys.stderr)
        return 1
    from fastdl.kernels.cpu import _compile, load_kernels
    load_kernels()                # held back until needed (background mode): warm needs them now
    ops = None
    if args.ops:
        ops = [n.strip() for n in args.ops.split(",") if n.strip()]
        bad = [n for n in ops if n not in BY_NAME]
        if bad:
            print(f"fastdl warm: --ops: unknown op {bad[0]!r}; see fastdl.kernels.spec.TABLE for the names",
                  file=sys.stderr)
            return 2
    t0 = time.perf_counter()
    ran, already = _compile.warm(ops=ops, progress=None if args.quiet else _bar)
    took = time.perf_counter() - t0
    if ran == 0:
        print(f"fastdl warm: the cache already holds every kernel ({already} op/dtype pairs); nothing to do")
    else:
        print(f"fastdl warm: {ran} kernel calls compiled or loaded in {took:.1f} s; cached in {_compile.cache_dir()}")
    return 0
