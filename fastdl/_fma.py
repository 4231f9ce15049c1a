"""The multiply-add loop behind ``fastdl.profiler``'s FMA estimate of the machine's peak.

``fma_loop(acc, rounds)`` runs, on each of Numba's threads, ``rounds`` passes over a private
block of ``LANES`` independent accumulators, each pass doing ``a = a * m + c`` on every lane.
The lanes are independent, so the compiler (``fastmath``: contraction into fused multiply-adds
and vectorisation allowed) may keep them in vector registers and overlap the FMA latencies.
What it measures is the rate at which Numba-compiled code issues multiply-adds from registers,
with no memory traffic: an upper bound for what a kernel of fastdl can reach, not the vendor's
theoretical peak (a loop the compiler does not vectorise fully shows less).
"""
from __future__ import annotations

import numpy as np
from numba import njit, prange

#: independent accumulators per thread: enough vector registers to hide the FMA latency
LANES = 64


@njit(parallel=True, fastmath=True, cache=True)
def fma_loop(acc: np.ndarray, rounds: int) -> None:        # pragma: no cover - compiled
    m = acc.dtype.type(0.9999999)
    c = acc.dtype.type(1e-7)
    for p in prange(acc.shape[0]):
        block = np.empty(LANES, acc.dtype)
        for j in range(LANES):
            block[j] = acc[p, j]
        for _ in range(rounds):
            for j in range(LANES):
                block[j] = block[j] * m + c
        for j in range(LANES):
            acc[p, j] = block[j]


def flops(threads: int, rounds: int) -> int:
    """The FLOPs of ``fma_loop`` over ``threads`` rows and ``rounds`` passes (a multiply-add counts 2)."""
    return 2 * threads * rounds * LANES
