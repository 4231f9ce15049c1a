"""Time the cuda backend against numba on a real GPU; on a machine without one, record nothing.

    python benchmarks/scripts/gpu_time.py [--repeat 20] [--batch 100]

Prints the median training-step time (gradient + Adam, data on the device) of SimpleConvNet and
DeepConvNet under "cuda" and "numba", and the speed-up. Exits 0 with a one-line message when no
GPU is present (the CUDA simulator is not timed: its numbers would mean nothing).
"""
import argparse
import sys


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--batch", type=int, default=100)
    a = p.parse_args()
    import numba
    if numba.config.ENABLE_CUDASIM:
        print("gpu_time: NUMBA_ENABLE_CUDASIM=1 is set; the simulator is not timed. Nothing recorded.")
        return 0
    import fastdl
    try:
        fastdl.backend.ops("cuda")
    except fastdl.BackendError as exc:
        print(f"gpu_time: no GPU here, nothing recorded ({str(exc).split(';')[0]})")
        return 0
    from numba import cuda
    from fastdl.bench import blas_line, build, median_time, train_step
    name = cuda.get_current_device().name
    print(f"GPU: {name.decode() if isinstance(name, bytes) else name}")
    print(blas_line())       # the numba side's BLAS and threading layer
    for net in ("simple", "deep"):
        for dtype in ("float32", "float64"):
            times = {}
            for backend in ("numba", "cuda"):
                model, x, t, opt = build(net, dtype, a.batch)
                if backend == "cuda":
                    model.to("cuda")

                def step():
                    with fastdl.using_backend(backend):
                        train_step(model, opt, x, t)
                    if backend == "cuda":
                        cuda.synchronize()
                times[backend] = median_time(step, repeat=a.repeat, warmup=3)[0] * 1e3
            print(f"{net}ConvNet {dtype}: numba {times['numba']:.2f} ms, cuda {times['cuda']:.2f} ms, "
                  f"speed-up {times['numba'] / times['cuda']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
