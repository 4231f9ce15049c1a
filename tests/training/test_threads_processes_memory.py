"""Training in several threads at once, processes sharing a Numba cache, and the memory of many steps."""
import gc
import hashlib
import os
import subprocess
import sys
import threading
import tracemalloc

import numpy as np
import pytest

import fastdl
from fastdl.nets import MultiLayerNet, SimpleConvNet
from fastdl.optimizers import Adam, Momentum
from tests.conftest import FAST_BACKENDS

pytestmark = pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available")


def _make_net(seed):
    np.random.seed(seed)
    return MultiLayerNet(40, [64, 64], 5, dtype=np.float64 if seed % 2 else np.float32)


def _train(net, seed, mode, steps=12):
    """Train a network on its own data, on the numba backend (this thread only), forced to one path."""
    from fastdl.kernels.cpu import _chunks
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal((128, 40)), rng.integers(0, 5, 128)
    opt = Adam(lr=0.01) if seed % 2 else Momentum(lr=0.1)
    losses = []
    with fastdl.using_backend("numba"), _chunks.forced(mode):
        for _ in range(steps):
            opt.update(net.params, net.gradient(x, t))
            losses.append(float(net.loss(x, t)))
    return losses, {k: v.copy() for k, v in net.params.items()}


THREAD_MODES = [None, "parallel", "serial", "parallel"]


def test_four_threads_train_as_they_do_one_after_another():
    """Each thread has its own network, data and forced path (forcing is per thread); together
    they give bit for bit what the same trainings give one after another."""
    alone = [_train(_make_net(s), s, THREAD_MODES[s]) for s in range(4)]
    nets = [_make_net(s) for s in range(4)]
    results, errors = [None] * 4, []
    start = threading.Barrier(4)

    def work(s):
        try:
            start.wait()
            results[s] = _train(nets[s], s, THREAD_MODES[s])
        except BaseException as exc:       # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert not errors, errors
    for s in range(4):
        losses, params = results[s]
        assert losses == alone[s][0], s
        assert np.isfinite(losses).all() and losses[-1] < losses[0], losses
        for k in params:
            np.testing.assert_array_equal(params[k], alone[s][1][k], err_msg=f"thread {s} {k}")


_PROCESS_CODE = r"""
import hashlib, numpy as np, fastdl
from fastdl.kernels.cpu import _chunks
from fastdl.nets import MultiLayerNet
fastdl.set_backend("numba")
np.random.seed(0)
net = MultiLayerNet(12, [4096], 3)
x = np.random.default_rng(0).standard_normal((40, 12))
h = hashlib.sha256()
for mode in ("serial", None):          # Relu: forced serial, then split by its size
    with _chunks.forced(mode):
        h.update(net.predict(x).tobytes())
print(h.hexdigest())
"""


def test_two_processes_sharing_a_numba_cache_start_and_agree(tmp_path):
    """Two processes start at once on an empty NUMBA_CACHE_DIR (both compile and write the same
    cache files), then two more load what they wrote; all four print the same digest, the one
    this process computes. (Only the Relu kernel is compiled: predict is Affine and Relu.)"""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"))
    env.pop("FASTDL_BACKEND", None)
    digests = []
    for _ in range(2):
        procs = [subprocess.Popen([sys.executable, "-c", _PROCESS_CODE], env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        for p in procs:
            out, err = p.communicate(timeout=240)
            assert p.returncode == 0, err
            digests.append(out.strip())
    assert any(f.endswith(".nbi") for _, _, files in os.walk(tmp_path / "numba_cache") for f in files)
    np.random.seed(0)
    net = MultiLayerNet(12, [4096], 3)
    x = np.random.default_rng(0).standard_normal((40, 12))
    h = hashlib.sha256()
    from fastdl.kernels.cpu import _chunks
    for mode in ("serial", None):
        with fastdl.using_backend("numba"), _chunks.forced(mode):
            h.update(net.predict(x).tobytes())
    assert digests == [h.hexdigest()] * 4


def _rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_two_hundred_training_steps_do_not_grow_memory():
    np.random.seed(0)
    net = SimpleConvNet(input_dim=(1, 12, 12), conv_param={"filter_num": 4, "filter_size": 3, "pad": 1, "stride": 1},
                        hidden_size=32, output_size=10)
    rng = np.random.default_rng(0)
    x, t = rng.standard_normal((8, 1, 12, 12)), rng.integers(0, 10, 8)
    opt = Adam()
    with fastdl.using_backend("numba"):
        for _ in range(3):                                 # kernels loaded, optimizer state made
            opt.update(net.params, net.gradient(x, t))
        tracemalloc.start()
        try:
            for step in range(1, 201):
                opt.update(net.params, net.gradient(x, t))
                if step in (20, 200):
                    gc.collect()
                    traced = tracemalloc.get_traced_memory()[0]
                    if step == 20:
                        traced_20, rss_20 = traced, _rss()
        finally:
            tracemalloc.stop()
        rss_200 = _rss()
    assert np.isfinite(net.loss(x, t))
    assert traced - traced_20 < 64 * 1024, (traced_20, traced)
    assert rss_200 - rss_20 < 16 * 2 ** 20, (rss_20, rss_200)
