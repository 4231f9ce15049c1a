"""Time whole training steps and the hot kernels, side by side, on this machine.

    python benchmarks/scripts/step_time.py               # everything below
    python benchmarks/scripts/step_time.py --quick       # fewer repeats
    python benchmarks/scripts/step_time.py --one NET BACKEND DTYPE BATCH REPEAT   # one step time, ms, here

Prints medians. PyTorch (an optional peer, never a dependency) runs in its own
process, because Numba's and PyTorch's OpenMP runtimes slow each other down in
one process. Thread counts: Numba and PyTorch use 2 threads (this project's
machines have 2 cores); SciPy's BLAS inside Numba's parallel loops uses 1.
"""
import argparse
import os
import subprocess
import sys
import tempfile

import numpy as np

import fastdl
from fastdl import torch_peer
from fastdl.bench import blas_line, median_time, step_flops, step_ms_child, step_ms_here

HERE = os.path.dirname(os.path.abspath(__file__))


def step_ms(net, backend, dtype, batch, repeat):
    """Median step time, measured in a fresh process (one backend's threads and heap
    never colour another's numbers): fastdl.bench.step_ms_child, as `fastdl compare` times it."""
    return step_ms_child(net, backend, dtype, batch, repeat)[0]


def torch_ms(net, dtype, batch, repeat, threads=2):
    res = torch_peer.measure(["--net", net, "--dtype", dtype, "--batch", str(batch), "--repeat", str(repeat),
                              "--threads", str(threads)])
    return None if res is None else res["median_ms"]


def pool_ms(backend, dtype, repeat):
    ops = fastdl.backend.ops(backend)
    x = np.random.default_rng(0).random((100, 30, 24, 24)).astype(dtype)

    def run():
        out, ctx = ops.pool_forward(x, 2, 2, 2, 0)
        ops.pool_backward(out, ctx)
    return median_time(run, repeat=repeat)[0] * 1e3


def big_conv(backend, dtype, repeat):
    """x(64,64,56,56) * W(64,64,3,3), pad 1, forward + backward (dx, dW, db): (ms, GFLOP/s)."""
    ops = fastdl.backend.ops(backend)
    rng = np.random.default_rng(0)
    x = rng.random((64, 64, 56, 56)).astype(dtype)
    W = rng.standard_normal((64, 64, 3, 3)).astype(dtype)
    b = np.zeros(64, dtype=dtype)

    def run():
        out, ctx = ops.conv_forward(x, W, b, 1, 1)
        ops.conv_backward(out, ctx)
    med = median_time(run, repeat=repeat, warmup=1)[0]
    flops = 3 * 2 * 64 * 56 * 56 * 64 * 64 * 9
    return med * 1e3, flops / med / 1e9


#: DeepConvNet's convolutions at batch 100 (the book's conv_param_1..6: 3x3 filters, 16, 16, 32,
#: 32, 64, 64 of them, pad 1 except the fourth's 2; a 2x2 pooling after the 2nd, 4th and 6th):
#: (x shape, W shape, pad, whether the net needs dx)
DEEP_CONVS = (((100, 1, 28, 28), (16, 1, 3, 3), 1, False), ((100, 16, 28, 28), (16, 16, 3, 3), 1, True),
              ((100, 16, 14, 14), (32, 16, 3, 3), 1, True), ((100, 32, 14, 14), (32, 32, 3, 3), 2, True),
              ((100, 32, 8, 8), (64, 32, 3, 3), 1, True), ((100, 64, 8, 8), (64, 64, 3, 3), 1, True))


def deep_layer(backend, dtype, repeat, xs, ws, pad, need_dx):
    """One DeepConvNet convolution, forward + backward (dx only where the net needs it):
    (ms, GFLOP/s counting direct-convolution FLOPs: 2 per multiply-add, backward 2x the forward,
    1x without dx)."""
    ops = fastdl.backend.ops(backend)
    rng = np.random.default_rng(0)
    x = rng.random(xs).astype(dtype)
    W = rng.standard_normal(ws).astype(dtype) * 0.1
    b = np.zeros(ws[0], dtype=dtype)

    def run():
        out, ctx = ops.conv_forward(x, W, b, 1, pad)
        ops.conv_backward(out, ctx, need_dx)
    med = median_time(run, repeat=repeat, warmup=2)[0]
    OH = xs[2] + 2 * pad - ws[2] + 1
    OW = xs[3] + 2 * pad - ws[3] + 1
    fwd = 2 * xs[0] * ws[0] * ws[1] * ws[2] * ws[3] * OH * OW
    return med * 1e3, fwd * (3 if need_dx else 2) / med / 1e9


def dot_gflops(dtype, repeat):
    """GFLOP/s of numpy.dot (NumPy's BLAS, 2 threads) on a 2048-square product."""
    a = np.random.default_rng(0).random((2048, 2048)).astype(dtype)
    med = median_time(lambda: np.dot(a, a), repeat=repeat, warmup=1)[0]
    return 2 * 2048 ** 3 / med / 1e9


def compile_times():
    """Seconds for import + first SimpleConvNet float32 step, each in a fresh process:
    ``cold``: empty Numba cache, ``FASTDL_COMPILE=background`` (the default: what a user waits;
    the step runs on the reference while the kernels compile); ``cold_compile``: empty cache,
    ``FASTDL_COMPILE=lazy`` (the step waits for every kernel it needs to compile);
    ``warm`` / ``warm_lazy``: the cache that lazy run filled, background / lazy."""
    code = ("import time; t0 = time.perf_counter(); import fastdl, numpy as np; "
            "from fastdl.bench import build, train_step; m, x, t, o = build('simple', np.float32, 100); "
            "fastdl.set_backend('numba'); train_step(m, o, x, t); print(time.perf_counter() - t0)")

    def first_step(cache, mode):
        env = dict(os.environ, NUMBA_CACHE_DIR=cache, FASTDL_COMPILE=mode)
        r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr)
        return float(r.stdout.strip().splitlines()[-1])

    out = {}
    with tempfile.TemporaryDirectory() as cold, tempfile.TemporaryDirectory() as cache:
        out["cold"] = first_step(cold, "background")
        out["cold_compile"] = first_step(cache, "lazy")
        out["warm"] = first_step(cache, "background")
        out["warm_lazy"] = first_step(cache, "lazy")
    return out


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        net, backend, dtype, batch, repeat = sys.argv[2:7]
        print(step_ms_here(net, backend, dtype, int(batch), int(repeat))[0])
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--only", choices=["steps", "kernels", "layers", "compile"], default=None)
    a = p.parse_args()
    rep = 5 if a.quick else 20
    fastdl.backend.ops("numba")     # fastdl starts Numba's threads (layer, wait policy), not the header below
    import numba
    import platform
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    print(f"fastdl {fastdl.__version__}, numba {numba.__version__}, numpy {np.__version__}, "
          f"Python {platform.python_version()}, {cpu}, {os.cpu_count()} cores, "
          f"{numba.get_num_threads()} numba threads")
    print(blas_line())
    if a.only in (None, "steps"):
        print(f"\n## training step (gradient + Adam), batch {a.batch}, median ms of {rep}")
        for net in ("simple", "deep"):
            gf = step_flops(net, a.batch) / 1e9
            row = {}
            for backend, dtype in (("numpy", "float64"), ("numba", "float64"), ("numpy", "float32"),
                                   ("numba", "float32")):
                if net == "deep" and backend == "numpy" and a.quick:
                    continue
                row[f"{backend} {dtype}"] = step_ms(net, backend, dtype, a.batch,
                                                    rep if backend == "numba" else max(3, rep // 4))
            if not a.no_torch:
                for dtype in ("float32", "float64"):
                    ms = torch_ms(net, dtype, a.batch, rep)
                    if ms is not None:
                        row[f"torch {dtype}"] = ms
            print(f"{net}ConvNet ({gf:.2f} GFLOP/step):")
            for k, v in row.items():
                print(f"  {k:16s} {v:9.2f} ms")
            for dtype in ("float32", "float64"):
                if f"numba {dtype}" in row:
                    dot = dot_gflops(dtype, max(3, rep // 4))
                    floor = gf / dot * 1e3
                    print(f"  floor {dtype} (FLOPs / numpy.dot's {dot:.0f} GFLOP/s): {floor:.2f} ms; "
                          f"numba step = {row[f'numba {dtype}'] / floor:.2f}x the floor")
            if "numpy float64" in row:
                print(f"  numba/numpy float64 speed-up: {row['numpy float64'] / row['numba float64']:.1f}x")
            if "torch float32" in row:
                print(f"  numba float32 / torch float32 time: {row['numba float32'] / row['torch float32']:.2f}")
            if "torch float64" in row:
                print(f"  numba float64 / torch float64 time: {row['numba float64'] / row['torch float64']:.2f}")
    if a.only in (None, "kernels"):
        print(f"\n## kernels, median ms of {rep}")
        for dtype in ("float32", "float64"):
            ref = pool_ms("numpy", dtype, max(3, rep // 2))
            fast = pool_ms("numba", dtype, rep)
            print(f"max-pool fwd+bwd x(100,30,24,24) {dtype}: numpy {ref:.2f} ms, numba {fast:.2f} ms, "
                  f"{ref / fast:.1f}x")
        for dtype in ("float32", "float64"):
            ms, gf = big_conv("numba", dtype, max(3, rep // 4))
            dot = dot_gflops(dtype, max(3, rep // 4))
            print(f"conv x(64,64,56,56)*W(64,64,3,3) pad 1 fwd+bwd {dtype}: numba {ms:.0f} ms = {gf:.1f} GFLOP/s; "
                  f"numpy.dot {dot:.1f} GFLOP/s; ratio {gf / dot:.2f}")
    if a.only in (None, "kernels", "layers"):
        print(f"\n## DeepConvNet's convolutions, forward + backward, batch 100, median of {rep}")
        for dtype in ("float32", "float64"):
            dot = dot_gflops(dtype, max(3, rep // 4))
            print(f"{dtype}: numpy.dot (2048-square) {dot:.1f} GFLOP/s")
            for i, (xs, ws, pad, need_dx) in enumerate(DEEP_CONVS, 1):
                ms, gf = deep_layer("numba", dtype, rep, xs, ws, pad, need_dx)
                print(f"  conv{i} x{xs} * W{ws} pad {pad}{'' if need_dx else ' (no dx)'}: {ms:7.2f} ms "
                      f"{gf:6.1f} GFLOP/s = {gf / dot:.2f} of numpy.dot")
    if a.only in (None, "compile"):
        ct = compile_times()
        print("\n## compile: import + first SimpleConvNet float32 step (fresh process)")
        print(f"  cold cache, FASTDL_COMPILE=background (default, what a user waits) {ct['cold']:.2f} s")
        print(f"  cold cache, FASTDL_COMPILE=lazy (pure cold compile)              {ct['cold_compile']:.1f} s")
        print(f"  warm cache, FASTDL_COMPILE=background                           {ct['warm']:.2f} s")
        print(f"  warm cache, FASTDL_COMPILE=lazy                                 {ct['warm_lazy']:.2f} s")


if __name__ == "__main__":
    main()
