"""`fastdl compare`: runs at tiny sizes, and its correctness column catches a wrong kernel; its
training step is timed by child processes (fastdl.bench's runner), whose failure is one line; bad --nets, --backends and run() arguments are
refused."""
import json

import pytest

from fastdl import backend, bench, cli, compare
from tests.cli.conftest import run_cli_line
from tests.conftest import FAST_BACKENDS
from tests.helpers import one_line, run_module


def test_compare_runs_every_layer_and_a_training_step():
    res = compare.run(nets=("simple", "deep"), batch=2, repeat=1, torch=False, rounds=1)
    simple = [r for r in res if r["net"] == "SimpleConvNet"]
    deep = [r for r in res if r["net"] == "DeepConvNet"]
    assert len(simple) == 6 + 1 + 1 and len(deep) == 20 + 6 + 1      # layers, fused blocks, the step
    for r in res:
        assert r["ok"], r
        assert set(r["times"]) >= set(["numpy"] + FAST_BACKENDS)
        assert all(v > 0 for v in r["times"].values())
        assert set(r["diff"]) == set(FAST_BACKENDS)
    text = compare.format_table(res, "float32", 2, 1)
    assert "Convolution W30x1x5x5 s1 p0" in text and "training step" in text and "MISMATCH" not in text
    assert " 1-3 fused Conv+Relu+Pool" in text and "fused Conv+Relu " in text.replace("Relu\n", "Relu \n")


def test_cli_prints_table_and_json(capsys):
    assert cli.main(["compare", "--nets", "simple", "--batch-size", "2", "--repeat", "1", "--no-torch",
                     "--rounds", "1"]) == 0
    out = capsys.readouterr().out
    assert "SimpleConvNet, batch 2, float32" in out and "max|diff|" in out
    assert "Method: " in out and "training step: each backend timed in its own process, 1 round" in out
    assert cli.main(["compare", "--nets", "simple", "--batch-size", "2", "--repeat", "1", "--no-torch",
                     "--json", "--dtype", "float64", "--rounds", "2", "--backends", "numpy"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"dtype", "batch", "repeat", "rounds", "method", "results"}
    assert data["dtype"] == "float64" and data["rounds"] == 2 and len(data["results"]) == 8
    assert "each backend timed in its own process, 2 rounds" in data["method"]
    step = data["results"][-1]
    assert "training step" in step["what"] and len(step["round_ms"]["numpy"]) == 2
    assert step["times"]["numpy"] > 0


@pytest.mark.skipif(not FAST_BACKENDS, reason="needs a fast backend to break")
def test_correctness_column_catches_a_wrong_kernel(monkeypatch, capsys):
    name = FAST_BACKENDS[0]
    ops = backend.ops(name)
    real = ops.relu_forward

    def wrong_relu(x):
        out, mask = real(x)
        return out * out.dtype.type(1.01), mask       # 1% off: a plausible bug
    monkeypatch.setattr(ops, "relu_forward", wrong_relu)
    res = compare.run(nets=("simple",), batch=2, repeat=1, torch=False, backends=["numpy", name], rounds=1)
    bad = {r["what"].split()[1] for r in res if not r["ok"]}
    assert "Relu" in bad and "step" in " ".join(r["what"] for r in res if not r["ok"])
    code = cli.main(["compare", "--nets", "simple", "--batch-size", "2", "--repeat", "1", "--no-torch",
                     "--backends", f"numpy,{name}", "--rounds", "1"])
    captured = capsys.readouterr()
    assert code == 1 and "MISMATCH" in captured.out and "differ from the reference" in captured.err


def test_unknown_net_or_backend_is_an_error(capsys):
    assert cli.main(["compare", "--nets", "resnet"]) == 2
    assert "unknown net" in capsys.readouterr().err
    assert cli.main(["compare", "--backends", "numpy,tpu"]) == 2
    assert "available backends" in capsys.readouterr().err


@pytest.mark.skipif(not FAST_BACKENDS, reason="needs a fast backend to break")
def test_correctness_column_catches_a_wrong_fused_kernel(monkeypatch):
    """The fused block rows and the step (which runs the fused op) flag a wrong fused kernel,
    even though every single layer is right."""
    name = FAST_BACKENDS[0]
    ops = backend.ops(name)
    real = ops.conv_relu_pool_forward

    def wrong(*args):
        out, ctx = real(*args)
        return out * out.dtype.type(1.01), ctx
    monkeypatch.setattr(ops, "conv_relu_pool_forward", wrong)
    res = compare.run(nets=("simple",), batch=2, repeat=1, torch=False, backends=["numpy", name], rounds=1)
    bad = [r["what"] for r in res if not r["ok"]]
    assert any("fused" in w for w in bad) and any("step" in w for w in bad)
    assert not any(w.split()[1] in ("Convolution", "Relu", "Pooling") for w in bad)


def test_progress_bar_counts_every_measurement_and_stays_out_of_json(capsys):
    """--progress forces the bar (stderr is no terminal here); its total is compare.planned_steps,
    reached at the end; with --json there is no bar, whatever is asked."""
    args = ["compare", "--nets", "simple", "--batch-size", "2", "--repeat", "1", "--no-torch", "--backends", "numpy",
            "--rounds", "2"]
    total = compare.planned_steps(["simple"], ["numpy"], torch=False, rounds=2)
    assert total == 6 + 1 + 1 + 2                 # 6 layers, 1 fused block, the step's check, 2 timing rounds
    assert cli.main(args + ["--progress"]) == 0
    err = capsys.readouterr().err
    assert f"/{total} [" in err and "timing SimpleConvNet" in err
    assert cli.main(args + ["--progress", "--json"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and json.loads(captured.out)["results"]
    assert cli.main(args) == 0                                    # no terminal: one plain line per measurement
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == total and all(line.startswith("timing ") for line in lines)


def test_child_runner_returns_each_backends_medians_alternating(monkeypatch):
    """step_ms_rounds runs real child processes A B A B and parses each one's times."""
    order = []
    real = bench.step_ms_child

    def spy(net, b, *args):
        order.append(b)
        return real(net, b, *args)
    monkeypatch.setattr(bench, "step_ms_child", spy)
    res = bench.step_ms_rounds("simple", ["numpy"] + FAST_BACKENDS[:1], "float64", batch=2, repeat=3, rounds=2)
    assert order == (["numpy"] + FAST_BACKENDS[:1]) * 2
    for b, r in res.items():
        assert len(r["round_ms"]) == 2 and all(v > 0 for v in r["round_ms"])
        assert min(r["round_ms"]) <= r["median_ms"] <= max(r["round_ms"])
    med, times = real("simple", "numpy", "float32", 2, 3)
    assert len(times) == 3 and med == sorted(times)[1]


def test_child_runner_measures_in_another_process(monkeypatch):
    """A backend broken in this process only does not affect the child's timing (it would raise here)."""
    def broken(*a, **k):
        raise AssertionError("timed in the parent")
    monkeypatch.setattr(bench, "train_step", broken)
    med, times = bench.step_ms_child("simple", "numpy", "float32", 2, 1)
    assert med > 0 and len(times) == 1


def test_child_failure_is_one_line(capsys):
    with pytest.raises(bench.StepTimingError) as info:
        bench.step_ms_child("simple", "no-such-backend", "float32", 2, 1)
    msg = str(info.value)
    assert "\n" not in msg and "no-such-backend" in msg and "exit status 1" in msg and "unknown backend" in msg
    with pytest.raises(bench.StepTimingError, match="no result within"):
        bench.step_ms_child("simple", "numpy", "float32", 2, 1, timeout=0.01)
    with pytest.raises(ValueError, match="rounds"):
        bench.step_ms_rounds("simple", ["numpy"], "float32", 2, 1, rounds=0)
    with pytest.raises(ValueError, match="rounds"):
        compare.run(nets=("simple",), batch=2, repeat=1, torch=False, backends=["numpy"], rounds=0)


def test_cli_reports_a_failed_child_in_one_line(monkeypatch, capsys):
    """A child that dies (here: a Python that exits at once with a message) is one line, status 1."""
    monkeypatch.setattr(bench, "_CHILD", "import sys; sys.exit('the child broke')")
    code = cli.main(["compare", "--nets", "simple", "--batch-size", "2", "--repeat", "1", "--no-torch",
                     "--backends", "numpy", "--rounds", "1"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("fastdl compare: timing the simple numpy float32 training step in a child process "
                              "failed (exit status 1): the child broke")


# -- bad arguments ---------------------------------------------------------------------------------
@pytest.mark.parametrize("nets", [",", "", " , ", "resnet", "simple,resnet"])
def test_compare_nets_must_name_a_known_net(nets, capsys):
    code, out, err = run_cli_line(["compare", f"--nets={nets}"], capsys)
    assert code == 2 and "simple, deep" in err and out == ""


def test_compare_in_a_real_process():
    r = run_module(["fastdl", "compare", "--nets", ","])
    assert r.returncode == 2 and "choose from simple, deep" in one_line(r.stderr) and r.stdout == ""
    r = run_module(["fastdl", "compare", "--repeat", "0"])
    assert r.returncode == 2 and "--repeat" in one_line(r.stderr)


def test_compare_backends_must_name_one(capsys):
    code, out, err = run_cli_line(["compare", "--backends", ",", "--nets", "simple"], capsys)
    assert code == 2 and "available backends" in err


@pytest.mark.parametrize("kwargs", [{"nets": ()}, {"nets": ("resnet",)}, {"repeat": 0}, {"batch": -1},
                                    {"batch": 2.5}, {"dtype": "float16"}])
def test_compare_run_checks_its_arguments(kwargs):
    args = dict(nets=("simple",), batch=2, repeat=1, torch=False, backends=["numpy"])
    args.update(kwargs)
    with pytest.raises(ValueError):
        compare.run(**args)
