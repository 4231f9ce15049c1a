"""``fastdl info``: the version, the backends available here, the BLAS, the numba backend's threads
and compiled kernels, and the data folder."""
from __future__ import annotations

import argparse
import platform
from typing import Any


def add_parser(sub: Any) -> None:
    """The ``info`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser("info", help="show the version, the backends available here and the data folder")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    """Run ``fastdl info``; returns the exit status."""
    import numpy as np

    import fastdl
    print(f"fastdl {fastdl.__version__} on Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"current backend: {fastdl.current_backend()}")
    for name in fastdl.backend.BACKENDS:
        try:
            fastdl.backend.ops(name)
            status = "available"
        except fastdl.BackendError as exc:
            status = str(exc).split("; available")[0]
        print(f"  {name:6s} {status}")
    from fastdl.datasets import data_dir
    from ..bench import blas_line
    print(blas_line(threads=False))
    if "numba" in fastdl.backend._loaded:
        from fastdl.kernels.cpu import _threads
        print("\n".join(_threads.describe()))      # threads and layer; fork; idle threads
        from fastdl.kernels.cpu import _compile
        ready, cached = _compile.status()
        print(f"compiled kernels: {cached} op/dtype pairs cached, {ready} compiled in this process; "
              f"FASTDL_COMPILE={_compile.mode()} (fastdl warm compiles them all)")
    print(f"data folder: {data_dir()} (FASTDL_DATA_DIR)")
    return 0
