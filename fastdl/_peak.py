"""This machine's peak GFLOP/s (``machine_peak``), measured once and cached per machine: NumPy's
own GEMM (sgemm for float32, dgemm for float64, ``GEMM_SIZE`` square, on as many BLAS threads as
Numba's kernels use) and an FMA loop (``fastdl._fma``: the rate at which Numba-compiled code issues
independent multiply-adds from registers, with no memory traffic).

The cache file (``peak_path``) is keyed by the CPU model, the cores, NumPy and its BLAS and the
threads; :mod:`fastdl.profiler` sets its rows against these figures and re-exports the public names.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import socket
import time
from typing import Any, Callable, NamedTuple

import numpy as np

from . import backend
from ._files import atomic_write

__all__ = ["Peak", "machine_peak", "peak_path", "GEMM_SIZE", "PEAK_FORMAT"]

#: the side of the square matrices NumPy's GEMM multiplies to measure the peak
GEMM_SIZE = 1024
#: the version of the peak cache file's layout (another version is measured again)
PEAK_FORMAT = 1
#: how long each of the peak's four measurements may take, in seconds
_BUDGET = 0.2


class Peak(NamedTuple):
    """This machine's measured peak for one dtype (``machine_peak``).

    Attributes
    ----------
    dtype : str
        "float32" or "float64".
    gemm_gflops : float
        NumPy's GEMM (sgemm / dgemm) on ``gemm_size`` square matrices, best of its runs, GFLOP/s.
    fma_gflops : float or None
        The FMA loop of ``fastdl._fma`` on Numba's threads, GFLOP/s (None without Numba).
    gemm_size : int
        The matrices' side.
    threads : int
        The threads both ran on (Numba's, and as many BLAS threads).
    path : str
        The cache file.
    measured : bool
        True if measured by this call, False if read from the cache file.
    """
    dtype: str
    gemm_gflops: float
    fma_gflops: float | None
    gemm_size: int
    threads: int
    path: str
    measured: bool


def _cache_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "fastdl")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _kernel_threads() -> int:
    """The threads fastdl's kernels run on: Numba's (its backend loaded first, so that fastdl
    starts them), else NumPy's BLAS threads."""
    try:
        backend.ops("numba")
        import numba
        return int(numba.get_num_threads())
    except (backend.BackendError, ImportError):
        from threadpoolctl import threadpool_info
        blas = [i.get("num_threads", 1) for i in threadpool_info() if i.get("user_api") == "blas"]
        return int(blas[0]) if blas else 1


def _machine_key() -> dict[str, Any]:
    """What the cached peak belongs to: CPU model, cores, NumPy and its BLAS, threads."""
    from ._machine import blas_line
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "numpy": np.__version__,
            "blas": blas_line(threads=False), "threads": _kernel_threads()}


def peak_path() -> str:
    """The peak's cache file: ``$XDG_CACHE_HOME/fastdl`` (else ``~/.cache/fastdl``)
    ``/peak-<hostname>-<hash of the CPU model>.json``."""
    digest = hashlib.sha1(_cpu_model().encode("utf-8")).hexdigest()[:12]
    host = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in socket.gethostname()) or "host"
    return os.path.join(_cache_dir(), f"peak-{host}-{digest}.json")


def _best_rate(fn: Callable[[], Any], flops: int) -> float:
    """GFLOP/s of fn's fastest run: one warm-up, then runs until ``_BUDGET`` seconds (3 to 20)."""
    fn()
    best = math.inf
    start = time.perf_counter()
    runs = 0
    while runs < 3 or (runs < 20 and time.perf_counter() - start < _BUDGET):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        runs += 1
    return flops / max(best, 1e-9) / 1e9


def _measure_peak(threads: int) -> dict[str, Any]:
    """Measure GEMM and FMA GFLOP/s for both dtypes on ``threads`` threads (about a second)."""
    from threadpoolctl import threadpool_limits
    out: dict[str, Any] = {}
    n = GEMM_SIZE
    rng = np.random.default_rng(0)
    try:
        from . import _fma
    except ImportError:
        _fma = None          # type: ignore[assignment]
    for dt in (np.float32, np.float64):
        a = rng.random((n, n)).astype(dt)
        b = rng.random((n, n)).astype(dt)
        c = np.empty((n, n), dt)
        with threadpool_limits(limits=threads, user_api="blas"):
            gemm = _best_rate(lambda: np.dot(a, b, out=c), 2 * n ** 3)
        fma = None
        if _fma is not None:
            acc = np.ones((threads, _fma.LANES), dt)
            rounds = 20000
            _fma.fma_loop(acc, 1)                              # compiled (or loaded) before timing
            fma = _best_rate(lambda: _fma.fma_loop(acc, rounds), _fma.flops(threads, rounds))
        out[np.dtype(dt).name] = {"gemm_gflops": gemm, "fma_gflops": fma}
    return out


def _read_cache(path: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The cached figures if the file is readable, of this layout and of this machine; else None."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("format") != PEAK_FORMAT or data.get("key") != key \
            or data.get("gemm_size") != GEMM_SIZE:
        return None
    figures = data.get("peak")
    if not isinstance(figures, dict):
        return None
    for name in ("float32", "float64"):
        entry = figures.get(name)
        if not isinstance(entry, dict):
            return None
        g, m = entry.get("gemm_gflops"), entry.get("fma_gflops")
        if not _positive(g) or not (m is None or _positive(m)):
            return None
    return figures


def _positive(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def machine_peak(dtype: Any = np.float32, refresh: bool = False) -> Peak:
    """This machine's peak GFLOP/s for ``dtype``, measured once and cached (``peak_path``).

    The cache file is keyed by the CPU model, the cores, NumPy's version and BLAS, and the
    threads: a file of another machine or setting, of another layout, or that cannot be read
    (damaged, truncated) is measured again and rewritten (atomically). The measurement takes
    about a second; run it on a quiet machine (``refresh=True`` measures again).

    Parameters
    ----------
    dtype : dtype
        float32 or float64.
    refresh : bool
        Measure even if the cache file holds this machine's figures.

    Returns
    -------
    Peak
    """
    name = np.dtype(dtype).name
    if name not in ("float32", "float64"):
        raise TypeError(f"machine_peak: dtype must be float32 or float64, got {name}")
    key = _machine_key()
    path = peak_path()
    figures = None if refresh else _read_cache(path, key)
    measured = figures is None
    if figures is None:
        figures = _measure_peak(int(key["threads"]))
        data = {"format": PEAK_FORMAT, "key": key, "gemm_size": GEMM_SIZE, "peak": figures,
                "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with atomic_write(path) as f:
            f.write((json.dumps(data, indent=1) + "\n").encode("utf-8"))
    f32 = figures[name]
    return Peak(name, float(f32["gemm_gflops"]),
                None if f32.get("fma_gflops") is None else float(f32["fma_gflops"]),
                GEMM_SIZE, int(key["threads"]), path, measured)
