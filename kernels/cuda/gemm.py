"""Tiled shared-memory matrix product (cuda backend): C = op(A) @ op(B) (+ C when accumulate).

op(X) is X or X.T (flags), so the transposes of the backward passes need no copies.
Each block computes a TILE x TILE tile of C, stepping over K one tile at a time:

    for each k-tile:
        sA[ty, tx] = op(A)[row, k0 + tx]; sB[ty, tx] = op(B)[k0 + ty, col]   (0 outside)
        sync; acc += sum_k sA[ty, k] * sB[k, tx]; sync
    C[row, col] = acc (+ C[row, col])
"""
import numpy as np
from numba import cuda, float32, float64

from .launch import TILE, grid2d


def _make_tile_kernel(ftype):
    # one kernel per dtype: the shared tiles need a compile-time type and size
    @cuda.jit
    def kernel(C, A, B, transA, transB, accumulate):
        sA = cuda.shared.array(shape=(TILE, TILE), dtype=ftype)
        sB = cuda.shared.array(shape=(TILE, TILE), dtype=ftype)
        tx = cuda.threadIdx.x
        ty = cuda.threadIdx.y
        row = cuda.blockIdx.y * TILE + ty
        col = cuda.blockIdx.x * TILE + tx
        M = C.shape[0]
        N = C.shape[1]
        K = A.shape[0] if transA else A.shape[1]
        acc = ftype(0)
        for k0 in range(0, K, TILE):
            ka = k0 + tx
            if row < M and ka < K:
                sA[ty, tx] = A[ka, row] if transA else A[row, ka]
            else:
                sA[ty, tx] = 0
            kb = k0 + ty
            if col < N and kb < K:
                sB[ty, tx] = B[col, kb] if transB else B[kb, col]
            else:
                sB[ty, tx] = 0
            cuda.syncthreads()
            for k in range(TILE):
                acc += sA[ty, k] * sB[k, tx]
            cuda.syncthreads()
        if row < M and col < N:
            if accumulate:
                C[row, col] += acc
            else:
                C[row, col] = acc
    return kernel


# Built at import, at module level, once per dtype (cuda.jit kernels are compiled per signature
# on first launch; nothing is rebuilt per call).
_gemm32 = _make_tile_kernel(float32)
_gemm64 = _make_tile_kernel(float64)


def gemm(C, A, B, transA=False, transB=False, accumulate=False):
    """C (M, N) = op(A) @ op(B), all C-contiguous device arrays of one dtype."""
    M, N = C.shape
    kernel = _gemm32 if np.dtype(C.dtype) == np.float32 else _gemm64
    blocks, threads = grid2d(M, N)
    kernel[blocks, threads](C, A, B, transA, transB, accumulate)
