"""Launch configuration of every CUDA kernel, in one place.

THREADS: threads per block of the 1-D kernels (element-wise, gathers, per-row and per-column loops).
TILE:    side of the square shared-memory tiles of the matrix product (TILE x TILE threads per block).

FASTDL_CUDA_THREADS / FASTDL_CUDA_TILE override them when this module is first imported; the
simulator tests make both small so that tiny shapes still span several blocks and every
boundary check runs. TILE is a compile-time constant of the GEMM kernel.
"""
import os

THREADS = int(os.environ.get("FASTDL_CUDA_THREADS", "256"))
TILE = int(os.environ.get("FASTDL_CUDA_TILE", "16"))


def blocks(n, threads=None):
    """Blocks of ``threads`` (default THREADS) threads needed to cover n items (at least 1)."""
    t = threads or THREADS
    return max(1, (n + t - 1) // t)


def grid1d(n):
    """[blocks, threads] for a 1-D launch over n items."""
    return blocks(n), THREADS


def grid2d(rows, cols):
    """(blocks, threads) for a 2-D launch of TILE x TILE blocks over a rows x cols output."""
    return ((cols + TILE - 1) // TILE, (rows + TILE - 1) // TILE), (TILE, TILE)
