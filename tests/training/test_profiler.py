"""fastdl.profiler: profile_step / Net.profile, the machine's cached peak, and `fastdl profile`.

No timing is asserted (the machine is shared): the tests check the structure, the FLOPs against
hand-computed values, that the figures are consistent with each other, that times are positive
and finite, the peak's cache file, and that the network and optimizer are left as they were.
"""
import json
import math
import os

import numpy as np
import pytest

import fastdl
from fastdl import _peak, profiler
from fastdl.cli import main
from fastdl.nets import MultiLayerNetExtend, SimpleConvNet, TwoLayerNet
from fastdl.optimizers import Adam

from tests.conftest import BACKENDS

#: the figures a monkeypatched measurement returns (GFLOP/s)
FAKE = {"float32": {"gemm_gflops": 100.0, "fma_gflops": 400.0},
        "float64": {"gemm_gflops": 50.0, "fma_gflops": 200.0}}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A cache folder of the test's own, and a measurement that counts its calls instead of timing."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    calls = []

    def fake(threads):
        calls.append(threads)
        return json.loads(json.dumps(FAKE))
    monkeypatch.setattr(_peak, "_measure_peak", fake)
    return calls


def _simple_conv_flops(n):
    """SimpleConvNet's defaults by hand: conv 30 filters 5x5 on 1x28x28 -> 30x24x24, ReLU,
    2x2 pool -> 30x12x12, Affine 4320->100, ReLU, Affine 100->10, softmax loss over 10 classes."""
    conv = 2 * n * 30 * 24 * 24 * (1 * 5 * 5) + n * 30 * 24 * 24       # products + bias
    relu1 = n * 30 * 24 * 24
    pool = n * 30 * 12 * 12 * 4
    aff1 = 2 * n * 4320 * 100 + n * 100
    relu2 = n * 100
    aff2 = 2 * n * 100 * 10 + n * 10
    loss = 4 * n * 10 + 2 * n
    return conv, relu1, pool, aff1, relu2, aff2, loss


def _check_times(p):
    for r in p.rows + [p.total]:
        assert math.isfinite(r.ms) and r.ms >= 0, r
        for v in (r.forward_ms, r.backward_ms):
            assert v is None or (math.isfinite(v) and v >= 0), r
    assert p.total.ms > 0
    for r in p.rows:
        if r.kind in ("layer", "block", "loss"):
            assert r.forward_ms > 0 and r.backward_ms > 0, r
            assert r.ms == pytest.approx(r.forward_ms + r.backward_ms)


@pytest.mark.parametrize("fuse", [True, False], ids=["fused", "layers"])
def test_simple_conv_net_flops_by_hand(cache, backend_name, fuse):
    net = SimpleConvNet(dtype=np.float32)
    net.fuse = fuse
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    t = np.array([3, 7])
    p = profiler.profile_step(net, x, t, optimizer=Adam(), repeat=2, warmup=1)
    conv, relu1, pool, aff1, relu2, aff2, loss = _simple_conv_flops(2)
    if fuse:
        # the fused block: forward adds up its layers; backward dW only for its convolution
        # (the first step's dx is skipped), 1x for ReLU and pooling
        want = [("Conv1 -> Relu1 -> Pool1 (ConvBlock)", "block", conv + relu1 + pool, conv + relu1 + pool)]
    else:
        want = [("Conv1 (Convolution)", "layer", conv, conv), ("Relu1 (Relu)", "layer", relu1, relu1),
                ("Pool1 (Pooling)", "layer", pool, pool)]
    want += [("Affine1 (Affine)", "layer", aff1, 2 * aff1), ("Relu2 (Relu)", "layer", relu2, relu2),
             ("Affine2 (Affine)", "layer", aff2, 2 * aff2),
             ("last_layer (SoftmaxWithLoss)", "loss", loss, loss)]
    got = [(r.name, r.kind, r.forward_flops, r.backward_flops) for r in p.rows[:len(want)]]
    assert got == want
    assert [r.kind for r in p.rows[len(want):]] == ["optimizer", "rest"]
    assert p.rows[-2].name == "Adam.update" and p.rows[-2].flops is None
    # the total: every layer's and the loss's FLOPs, nothing else
    assert p.total.forward_flops == sum(w[2] for w in want)
    assert p.total.backward_flops == sum(w[3] for w in want)
    assert p.total.flops == sum(r.flops for r in p.rows if r.flops is not None)
    _check_times(p)
    assert p.info == {"net": "SimpleConvNet", "dtype": "float32", "batch": 2, "backend": backend_name,
                      "fuse": fuse, "repeat": 2, "warmup": 1, "optimizer": "Adam", "host": p.info["host"]}


def test_mlp_flops_by_hand(cache, backend_name, dtype):
    np.random.seed(0)
    net = TwoLayerNet(input_size=6, hidden_size=5, output_size=3, dtype=dtype)
    x = np.random.default_rng(1).random((2, 6))
    t = np.array([0, 2])
    p = net.profile(x, t, repeat=1, warmup=0)
    aff1 = 2 * 2 * 6 * 5 + 2 * 5
    aff2 = 2 * 2 * 5 * 3 + 2 * 3
    want = [("Affine1 (Affine)", aff1, aff1),            # first step: dW only
            ("Relu1 (Relu)", 10, 10),
            ("Affine2 (Affine)", aff2, 2 * aff2),
            ("last_layer (SoftmaxWithLoss)", 4 * 2 * 3 + 2 * 2, 4 * 2 * 3 + 2 * 2)]
    assert [(r.name, r.forward_flops, r.backward_flops) for r in p.rows[:-1]] == want
    assert [r.kind for r in p.rows] == ["layer", "layer", "layer", "loss", "rest"]   # no optimizer
    assert p.total.flops == sum(f + b for _, f, b in want)
    assert p.peak.dtype == np.dtype(dtype).name
    # one run: the rows (the rest included) add up to the step exactly: nothing is hidden
    assert sum(r.ms for r in p.rows) == pytest.approx(p.total.ms, rel=1e-9)
    assert p.peak.gemm_gflops == FAKE[np.dtype(dtype).name]["gemm_gflops"]
    _check_times(p)


def test_shares_are_rates_over_the_peak_and_over_the_step(cache):
    net = SimpleConvNet(dtype=np.float64)
    x = np.random.default_rng(0).random((2, 1, 28, 28))
    p = profiler.profile_step(net, x, np.array([1, 2]), optimizer=Adam(), repeat=2, warmup=0)
    assert p.peak.gemm_gflops == 50.0
    for r in p.rows + [p.total]:
        if r.flops is None:
            assert r.gflops is None and r.peak_share is None
        else:
            assert r.gflops == pytest.approx(r.flops / (r.ms * 1e-3) / 1e9)
            assert r.peak_share == pytest.approx(r.gflops / 50.0)
        assert r.step_share == pytest.approx(r.ms / p.total.ms)
    assert p.total.step_share == 1.0
    rest = p.rows[-1]
    assert rest.kind == "rest" and rest.ms >= 0           # each run's rest is what no row timed


def test_the_table_lists_every_layer_in_order(cache):
    net = SimpleConvNet(dtype=np.float32)
    net.fuse = False
    x = np.random.default_rng(0).random((2, 1, 28, 28)).astype(np.float32)
    text = str(profiler.profile_step(net, x, np.array([1, 2]), optimizer=Adam(), repeat=1, warmup=0))
    lines = text.splitlines()
    names = [f"{k} ({type(v).__name__})" for k, v in net.layers.items()] + [
        "last_layer (SoftmaxWithLoss)", "Adam.update", "rest (", "Total step"]
    where = [next(i for i, line in enumerate(lines) if line.startswith(n)) for n in names]
    assert where == sorted(where)
    assert "Fwd ms" in lines[2] and "% peak" in lines[2]
    assert "NumPy GEMM 100.0 GFLOP/s" in lines[1] and "FMA loop 400.0 GFLOP/s" in lines[1]
    assert repr(net.profile(x, np.array([1, 2]), repeat=1, warmup=0)).startswith("SimpleConvNet (float32)")


def test_the_network_and_optimizer_are_left_as_they_were(cache, backend_name):
    np.random.seed(0)
    net = MultiLayerNetExtend(input_size=8, hidden_size_list=[6, 5], output_size=3, use_batchnorm=True,
                              use_dropout=True, dropout_ration=0.3)
    x = np.random.default_rng(2).random((4, 8))
    x_before = x.copy()
    t = np.array([0, 1, 2, 1])
    opt = Adam(lr=0.1)
    opt.update(net.params, net.gradient(x, t))            # the optimizer has a state of its own
    params = {k: v.copy() for k, v in net.params.items()}
    stats = {k: v.copy() for k, v in net._state_arrays().items() if "." in k}
    state = {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(opt).items()}
    rng = np.random.get_state()
    p = net.profile(x, t, optimizer=opt, repeat=2, warmup=1)
    for k, v in params.items():
        np.testing.assert_array_equal(net.params[k], v, err_msg=k)
    for k, v in stats.items():
        np.testing.assert_array_equal(net._state_arrays()[k], v, err_msg=k)
    assert sorted(vars(opt)) == sorted(state)
    for k, v in vars(opt).items():
        if isinstance(v, np.ndarray):
            np.testing.assert_array_equal(v, state[k])
        elif isinstance(v, dict):
            assert v.keys() == state[k].keys()
        else:
            assert v == state[k], k
    after = np.random.get_state()
    assert after[0] == rng[0] and np.array_equal(after[1], rng[1]) and after[2:] == rng[2:]
    np.testing.assert_array_equal(x, x_before)
    # the layers were run in training mode (Dropout keeps its mask), and the network still works
    assert net.layers["Dropout1"].mask is not None
    assert type(net.last_layer).__name__ == "SoftmaxWithLoss" and "_plan" not in vars(net)
    grads = net.gradient(x, t)
    assert set(grads) == set(net.params)
    names = [r.name.split(" ")[0] for r in p.rows if r.kind == "layer"]
    assert names == list(net.layers)
    # BatchNormalization and Dropout count 1x forward on the way back
    bn = next(r for r in p.rows if r.name.startswith("BatchNorm1"))
    assert bn.forward_flops == bn.backward_flops == 4 * 4 * 6
    drop = next(r for r in p.rows if r.name.startswith("Dropout1"))
    assert drop.forward_flops == drop.backward_flops == 4 * 6


def test_the_peak_is_measured_once_and_cached(cache, tmp_path):
    first = profiler.machine_peak(np.float32)
    assert len(cache) == 1 and first.measured
    path = profiler.peak_path()
    assert first.path == path and os.path.dirname(path) == str(tmp_path / "fastdl")
    assert os.path.basename(path).startswith("peak-") and path.endswith(".json")
    data = json.loads(open(path).read())
    assert data["format"] == profiler.PEAK_FORMAT and data["peak"] == FAKE
    assert set(data["key"]) == {"cpu", "cores", "numpy", "blas", "threads"}
    mtime = os.stat(path).st_mtime_ns
    second = profiler.machine_peak(np.float64)
    assert len(cache) == 1 and not second.measured                   # read, not measured
    assert os.stat(path).st_mtime_ns == mtime
    assert (first.gemm_gflops, second.gemm_gflops) == (100.0, 50.0)
    assert second.fma_gflops == 200.0 and second.threads == data["key"]["threads"]
    third = profiler.machine_peak(np.float32, refresh=True)
    assert len(cache) == 2 and third.measured


@pytest.mark.parametrize("content", [
    b"", b"{not json", b"[1, 2]", b'{"format": 1}', b"\x00\xff" * 10,
    "another machine", "a negative figure", "an older layout"])
def test_an_unusable_cache_file_is_measured_again(cache, content):
    path = profiler.peak_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if isinstance(content, str):
        profiler.machine_peak(np.float32)                # a good file, then spoiled one way
        data = json.loads(open(path).read())
        if content == "another machine":
            data["key"]["cpu"] = "some other CPU"
        elif content == "a negative figure":
            data["peak"]["float64"]["gemm_gflops"] = -1
        else:
            data["format"] = profiler.PEAK_FORMAT + 1
        content = json.dumps(data).encode()
        cache.clear()
    with open(path, "wb") as f:
        f.write(content)
    peak = profiler.machine_peak(np.float64)
    assert len(cache) == 1 and peak.measured and peak.gemm_gflops == 50.0
    assert json.loads(open(path).read())["peak"] == FAKE              # rewritten whole
    profiler.machine_peak(np.float64)
    assert len(cache) == 1


def test_the_real_measurement_gives_positive_figures(tmp_path, monkeypatch):
    """The one test that measures (about a second, plus compiling the FMA loop on a cold Numba
    cache): the figures are positive and finite and land in the cache file; none is compared with
    a speed."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    peak = profiler.machine_peak(np.float64)
    assert peak.measured and os.path.isfile(peak.path)
    data = json.loads(open(peak.path).read())
    for name in ("float32", "float64"):
        for what in ("gemm_gflops", "fma_gflops"):
            v = data["peak"][name][what]
            assert isinstance(v, float) and math.isfinite(v) and v > 0, (name, what, v)
    assert peak.gemm_gflops == data["peak"]["float64"]["gemm_gflops"]
    assert peak.threads >= 1 and peak.gemm_size == profiler.GEMM_SIZE


def test_fma_flop_count():
    from fastdl import _fma
    acc = np.ones((2, _fma.LANES), np.float64)
    _fma.fma_loop(acc, 3)
    want = np.ones(_fma.LANES)
    for _ in range(3):
        want = want * 0.9999999 + 1e-7
    np.testing.assert_allclose(acc, np.broadcast_to(want, acc.shape), rtol=1e-12)
    assert _fma.flops(2, 3) == 2 * 2 * 3 * _fma.LANES


def test_bad_arguments_in_one_line(cache):
    net = TwoLayerNet(input_size=4, hidden_size=3, output_size=2)
    x, t = np.ones((2, 4)), np.array([0, 1])
    with pytest.raises(ValueError, match="profile_step: repeat must be >= 1, got 0"):
        net.profile(x, t, repeat=0)
    with pytest.raises(ValueError, match="warmup must be >= 0"):
        net.profile(x, t, warmup=-1)
    with pytest.raises(TypeError, match="repeat must be an integer"):
        net.profile(x, t, repeat=2.5)
    with pytest.raises(TypeError, match="net must be a fastdl network"):
        profiler.profile_step(object(), x, t)
    with pytest.raises(TypeError, match="optimizer must have an update"):
        net.profile(x, t, optimizer="Adam")
    with pytest.raises(TypeError, match="dtype must be float32 or float64"):
        profiler.machine_peak(np.int32)
    assert cache == []                          # nothing measured for arguments that are refused


@pytest.fixture
def keep_backend(monkeypatch):
    """The process's backend as it was after the test (``--backend`` sets it for the process)."""
    monkeypatch.setattr(fastdl.backend, "_global_name", fastdl.backend._global_name)


@pytest.mark.parametrize("name", BACKENDS)
def test_cli_json_parses(cache, capsys, keep_backend, name):
    code = main(["profile", "--net", "mlp", "--batch", "3", "--repeat", "1", "--warmup", "0",
                 "--backend", name, "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["info"]["net"] == "TwoLayerNet" and out["info"]["backend"] == name
    assert out["info"]["batch"] == 3 and out["info"]["optimizer"] == "Adam"
    assert [r["name"] for r in out["rows"]] == ["Affine1 (Affine)", "Relu1 (Relu)", "Affine2 (Affine)",
                                                "last_layer (SoftmaxWithLoss)", "Adam.update",
                                                "rest (Python, gradient dict, weight decay)"]
    aff1 = 2 * 3 * 784 * 50 + 3 * 50
    assert out["rows"][0]["forward_flops"] == out["rows"][0]["backward_flops"] == aff1
    assert out["total"]["flops"] == sum(r["flops"] for r in out["rows"] if r["flops"] is not None)
    assert out["peak"]["gemm_gflops"] == 100.0


def test_cli_table(cache, capsys, keep_backend):
    code = main(["profile", "--net", "simple", "--dtype", "float64", "--batch", "2", "--repeat", "1",
                 "--warmup", "0", "--no-update"])
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith("SimpleConvNet (float64), batch 2, backend ")
    assert "Conv1 -> Relu1 -> Pool1 (ConvBlock)" in text and "Adam.update" not in text
    assert "one training step (gradient)" in text and "NumPy GEMM 50.0 GFLOP/s" in text


def test_cli_refuses_bad_values(capsys):
    assert main(["profile", "--net", "lenet"]) == 2
    assert "--net: unknown value 'lenet'; choose from simple, deep, mlp" in capsys.readouterr().err
    assert main(["profile", "--batch", "0"]) == 2
    assert "--batch" in capsys.readouterr().err


def test_the_table_says_when_the_cached_peak_looks_low():
    """A row above 100% of a cached peak: the table suggests measuring the peak again (not for a
    peak just measured, nor when every row is below it)."""
    def table(share, measured):
        row = profiler.ProfileRow("Affine1 (Affine)", "layer", 1.0, 2.0, 3.0, 100, 200, 1e-4, share, 1.0)
        total = profiler.ProfileRow("Total step", "total", 1.0, 2.0, 3.0, 100, 200, 1e-4, share, 1.0)
        peak = profiler.Peak("float32", 1e-4, None, 1024, 2, "/tmp/peak.json", measured)
        info = {"net": "Net", "dtype": "float32", "batch": 1, "backend": "numpy", "fuse": True,
                "repeat": 1, "warmup": 0, "optimizer": None, "host": "h"}
        return str(profiler.Profile([row], total, peak, info))
    assert "refresh_peak=True" in table(1.5, False)
    assert "refresh_peak=True" not in table(1.5, True)
    assert "refresh_peak=True" not in table(0.5, False)
    assert "FMA loop not measured (no Numba)" in table(0.5, False)


def test_layers_held_in_a_list_are_named_by_index_and_class(cache):
    """DeepConvNet keeps its layers in a list (as the book does): rows name each index with its
    class; every layer appears once, in order, and the FLOPs are each step's cost()."""
    from fastdl.nets import DeepConvNet
    np.random.seed(0)
    net = DeepConvNet(dtype=np.float32)
    x = np.random.default_rng(0).random((1, 1, 28, 28)).astype(np.float32)
    p = net.profile(x, np.array([4]), optimizer=Adam(), repeat=1, warmup=0)
    steps = [r for r in p.rows if r.kind in ("layer", "block")]
    assert steps[0].name == "0 Convolution -> 1 Relu (ConvBlock)"
    assert steps[1].name == "2 Convolution -> 3 Relu -> 4 Pooling (ConvBlock)"
    indices = [int(part.split(" ")[0]) for r in steps for part in r.name.rsplit(" (", 1)[0].split(" -> ")]
    assert indices == list(range(len(net.layers)))
    assert p.total.forward_flops == net.summary(batch_size=1).flops + p.rows[len(steps)].forward_flops
    assert sum(r.ms for r in p.rows) == pytest.approx(p.total.ms, rel=1e-9)   # update included
    _check_times(p)
