"""Whole training steps (gradient + Adam update, batch 100), cold compile time, and PyTorch as a peer."""
import os
import subprocess
import sys


from .common import BACKENDS, DTYPES, Warmed, ops_or_skip, warm

import fastdl  # noqa: E402
from fastdl.bench import build, train_step  # noqa: E402


_BUILT = {}


class TrainStep(Warmed):
    """One training step, warmed up as ``benchmarks/scripts/step_time.py`` warms up (two steps
    first); a full run takes up to 20 samples of one step each (``number = 1``), as that script.
    asv runs each parameter combination in its own process, so one process times one backend's
    step only (the process-per-backend method of ``fastdl compare`` and step_time.py)."""
    params = (BACKENDS, DTYPES, ["simple", "deep"])
    param_names = ["backend", "dtype", "net"]
    timeout = 900
    number = 1
    repeat = (3, 20, 20.0)

    def setup(self, backend, dtype, net):
        ops_or_skip(backend)
        self.backend = backend
        key = (backend, dtype, net)
        if key not in _BUILT:       # asv re-runs setup before each sample: the warm model is kept
            _BUILT[key] = build(net, dtype, 100)
        self.model, self.x, self.t, self.opt = _BUILT[key]
        warm((backend, dtype, net), lambda: self.time_step(backend, dtype, net))  # compile, warm up

    def time_step(self, backend, dtype, net):
        with fastdl.using_backend(self.backend):
            train_step(self.model, self.opt, self.x, self.t)

    def peakmem_step(self, backend, dtype, net):
        with fastdl.using_backend(self.backend):
            train_step(self.model, self.opt, self.x, self.t)


class TorchTrainStep(Warmed):
    """PyTorch 2 CPU threads on the same networks (skipped when torch is not installed).
    asv runs each benchmark in its own process, so Numba's OpenMP runtime is not loaded here."""
    params = (DTYPES, ["simple", "deep"])
    param_names = ["dtype", "net"]
    timeout = 900

    def setup(self, dtype, net):
        try:
            import torch
            from torch import nn
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        from fastdl.torch_peer import deep_net, simple_net
        torch.set_num_threads(2)
        dt = getattr(torch, dtype)
        torch.manual_seed(0)
        self.model = {"simple": simple_net, "deep": deep_net}[net](nn).to(dt)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=0.001)
        self.x = torch.rand(100, 1, 28, 28, dtype=dt)
        self.t = torch.randint(0, 10, (100,))
        self.loss = nn.CrossEntropyLoss()
        warm((dtype, net), lambda: self.time_step(dtype, net))

    def time_step(self, dtype, net):
        self.opt.zero_grad(set_to_none=True)
        self.loss(self.model(self.x), self.t).backward()
        self.opt.step()


class TorchConv(Warmed):
    """PyTorch's Conv2d forward + backward on the large convolution shape (skipped without torch)."""
    params = DTYPES
    param_names = ["dtype"]
    timeout = 600

    def setup(self, dtype):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed") from None
        torch.set_num_threads(2)
        dt = getattr(torch, dtype)
        self.conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(dt)
        self.x = torch.rand(64, 64, 56, 56, dtype=dt, requires_grad=True)
        self.g = torch.rand(64, 64, 56, 56, dtype=dt)
        warm((dtype,), lambda: self.time_large_forward_backward(dtype))

    def time_large_forward_backward(self, dtype):
        self.x.grad = None
        self.conv(self.x).backward(self.g)


_COLD = """
import os, tempfile, time
os.environ["NUMBA_CACHE_DIR"] = tempfile.mkdtemp()
t0 = time.perf_counter()
import fastdl
from fastdl.bench import build, train_step
fastdl.set_backend("numba")
m, x, t, o = build("simple", "float32", 100)
train_step(m, o, x, t)
print(time.perf_counter() - t0)
"""


def _cold_first_step(mode):
    ops_or_skip("numba")
    env = dict(os.environ, FASTDL_COMPILE=mode)
    r = subprocess.run([sys.executable, "-c", _COLD], env=env, capture_output=True, text=True, timeout=600)
    if r.returncode:
        raise RuntimeError(r.stderr)
    return float(r.stdout.strip().splitlines()[-1])


def track_cold_compile_seconds():
    """Pure cold compile: import fastdl and one SimpleConvNet float32 step on the numba backend
    with an empty Numba cache under ``FASTDL_COMPILE=lazy`` (the step waits for every kernel it
    needs to compile)."""
    return _cold_first_step("lazy")


def track_cold_first_step_seconds():
    """What a user waits on first use: the same cold step under ``FASTDL_COMPILE=background``
    (the default: it runs on the reference while the kernels compile)."""
    return _cold_first_step("background")


track_cold_first_step_seconds.unit = "seconds"
track_cold_first_step_seconds.timeout = 600
track_cold_compile_seconds.unit = "seconds"
track_cold_compile_seconds.timeout = 600


def timeraw_import_and_first_step_warm():
    """import fastdl + first SimpleConvNet float32 step with a warm Numba cache, in a fresh interpreter."""
    return """
import fastdl
from fastdl.bench import build, train_step
fastdl.set_backend("numba")
m, x, t, o = build("simple", "float32", 100)
train_step(m, o, x, t)
"""


timeraw_import_and_first_step_warm.repeat = 3
timeraw_import_and_first_step_warm.number = 1
