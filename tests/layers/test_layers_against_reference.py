"""Every layer and function on each numba path against the reference ("numpy"): the tests that
run over all of them (the scenarios of tests/layers/conftest.py), float32 and float64, on the forced
serial path, the forced parallel path and the path the size chooses, with sizes on both sides of
each kernel module's NUMPY_BELOW and MIN_PARALLEL:

* NaN, +Inf and -Inf at the first, middle and last position of x, dout and the weights, rows
  of NaN or +Inf, the largest finite values (1e308, each dtype's max) and subnormals: the
  results must have NaN, +Inf and -Inf in exactly the same places, and agree within the
  parity tolerance elsewhere;
* empty batches (N = 0) and single samples: the same shapes and dtypes, or the same clear error;
* wrong ranks, feature counts, dout shapes and labels, strings, objects and complex numbers: the
  same error on both backends, naming the layer (or function) and the argument; integers,
  booleans, float16 and lists are accepted and computed in the documented dtype;
* strided, Fortran-order, reversed and read-only inputs and douts: the contiguous results, and
  nothing handed in is modified.

The rule these follow is docs/reliability.md's "What fastdl accepts". One disagreement is known and
excluded (tests/layers/test_batchnorm.py::test_batchnorm_backward_overflow_is_a_known_gap):
BatchNormalization's backward with finite dout or x so large that the reference's intermediate
products overflow.
"""
import re

import numpy as np
import pytest

import fastdl
from fastdl import functions as F
from fastdl.layers import Affine, BatchNormalization, Dropout, Relu, Sigmoid, SoftmaxWithLoss
from fastdl.util import col2im, im2col
from tests.conftest import FAST_BACKENDS
from tests.helpers import (ALL_PATHS, DT, DT_IDS, NUMBA_PATHS, OPTIMIZERS, REF_PATH, assert_same, laid_out,
                           outcome_of, run_path)
from tests.layers.conftest import (LARGE_D, MEDIUM, M_OUT, SCENARIOS, SMALL, elementwise_layers, large_rows,
                                   scenario_dout, scenario_inputs, scenario_weights, thresholds)

pytestmark = [pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available"),
              # NumPy's own arithmetic on Inf and on huge values says so; that is the point here
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),
              pytest.mark.filterwarnings("ignore:.*the loss is:RuntimeWarning")]


# -- sizes on both sides of the thresholds ------------------------------------------------------


def test_sizes_straddle_the_thresholds():
    """If a threshold moves, the sizes here must move with it, or a path goes untested."""
    A, AF, B, L = thresholds()
    small, medium, large = SMALL[0] * SMALL[1], MEDIUM[0] * MEDIUM[1], large_rows() * LARGE_D
    assert small < A.NUMPY_BELOW and MEDIUM[0] * M_OUT >= A.NUMPY_BELOW
    # the costliest element-wise op (work units per element, ``A.COST``) has the lowest threshold
    assert medium < min(A.MIN_PARALLEL // max(A.COST.values(), default=1), B.MIN_PARALLEL, L.MIN_PARALLEL)
    assert large > max(A.MIN_PARALLEL, B.MIN_PARALLEL, L.MIN_PARALLEL, L.MIN_PARALLEL_BACKWARD)
    assert large_rows() * LARGE_D * M_OUT > AF.MIN_PARALLEL
    import numba
    from fastdl.kernels.cpu import _chunks
    if numba.get_num_threads() < 2:
        return                          # one Numba thread: every path is the serial one
    modes = [("serial", True), ("parallel", False)] + ([(None, False)] if _chunks._scale <= 1 else [])
    for mode, serial in modes:          # (FASTDL_SERIAL_BELOW > 1 raises the thresholds)
        with fastdl.using_backend("numba"), _chunks.forced(mode):
            Relu().forward(np.ones((large_rows(), LARGE_D)))
            assert (_chunks.last_chunks() == 1) == serial, mode


# -- 1. NaN, infinities, huge values and subnormals ------------------------------------------------

def _bad_value(name, dtype):
    fi = np.finfo(dtype)
    return {"nan": np.nan, "+inf": np.inf, "-inf": -np.inf, "nan_row": np.nan, "inf_row": np.inf,
            "max": fi.max, "-max": -fi.max, "1e308": 1e308,
            "subnormal": fi.smallest_subnormal, "-subnormal": -fi.smallest_subnormal}[name]


VALUES = ["nan", "+inf", "-inf", "nan_row", "inf_row", "max", "-max", "1e308", "subnormal", "-subnormal"]
OVERFLOW = ("max", "-max", "1e308")


def _put(a, value_name, value, pos):
    if value_name.endswith("_row"):
        a[a.shape[0] // 2] = value
    else:
        a.flat[{"first": 0, "middle": a.size // 2 + 1, "last": a.size - 1}[pos]] = value


def _loose(case, value_name):
    # the known gap (see test_batchnorm_backward_overflow_is_a_known_gap): dx compared where finite
    return ("dx",) if case == "BatchNorm-train" and value_name in OVERFLOW else ()


#: the weights each case also gets the bad values in
WEIGHT_TARGETS = {"Affine": ["W", "b"], "BatchNorm-train": ["gamma", "beta"],
                  "BatchNorm-eval": ["gamma", "beta", "mean", "var"]}

NONFINITE_CASES = [pytest.param(c, v, dt, id=f"{c}-{v}-{i}") for c in SCENARIOS for v in VALUES
                   for dt, i in zip(DT, DT_IDS) if not (v == "1e308" and dt == np.float32)]


@pytest.mark.parametrize("case,value_name,dtype", NONFINITE_CASES)
def test_non_finite_and_extreme_values_land_in_the_same_places(case, value_name, dtype):
    scenario, dout_kind = SCENARIOS[case]
    w = scenario_weights(dtype, MEDIUM[1], M_OUT)
    value = _bad_value(value_name, dtype)
    targets = ["x"] + (["dout"] if dout_kind is not None else []) + WEIGHT_TARGETS.get(case, [])
    for target in targets:
        positions = ["row"] if value_name.endswith("_row") else ["first", "middle", "last"]
        if target == "dout" and dout_kind == "scalar":
            positions = ["scalar"]
        for pos in positions:
            x, d = scenario_inputs(dtype, *MEDIUM)
            dout = scenario_dout(dout_kind, d)
            ww = {k: v.copy() for k, v in w.items()}
            if target == "x":
                _put(x, value_name, value, pos)
            elif target in ww:
                _put(ww[target], value_name, value, pos)
            elif pos == "scalar":
                dout = float(value)
            else:
                _put(dout, value_name, value, pos)
            want = run_path(REF_PATH, scenario, x, dout, ww)
            for path in NUMBA_PATHS:
                got = run_path(path, scenario, x, dout, {k: v.copy() for k, v in ww.items()})
                assert_same(got, want, dtype, f"{case} {value_name} in {target} at {pos}, {path}",
                            loose=_loose(case, value_name))


def _put_many(a, overflow=True):
    """NaN, +Inf, -Inf, subnormals (and the dtype's largest values) at distinct rows and columns."""
    n, d = a.shape
    fi = np.finfo(a.dtype)
    a[0, 0] = np.nan
    a[1, d // 2] = np.inf
    a[n - 1, d - 1] = -np.inf
    a[2, 1] = fi.smallest_subnormal
    a[3, 2] = -fi.smallest_subnormal
    if overflow:
        a[4, 3] = fi.max
        a[n // 2, 5] = -fi.max


@pytest.mark.parametrize("size", ["small", "large"])
@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("case", list(SCENARIOS))
def test_small_and_large_sizes_with_several_bad_values(case, dtype, size):
    """Below NUMPY_BELOW (every path) and above every MIN_PARALLEL (the path the size chooses)."""
    scenario, dout_kind = SCENARIOS[case]
    N, D = SMALL if size == "small" else (large_rows(), LARGE_D)
    paths = NUMBA_PATHS if size == "small" else [("numba", None)]
    w = scenario_weights(dtype, D, min(M_OUT, D))
    overflow = case != "BatchNorm-train"        # the known gap
    for target in ["x"] + (["dout"] if dout_kind not in (None, "scalar") else []):
        x, d = scenario_inputs(dtype, N, D, seed=3)
        dout = scenario_dout(dout_kind, d)
        _put_many(x if target == "x" else dout, overflow)
        want = run_path(REF_PATH, scenario, x, dout, w)
        for path in paths:
            assert_same(run_path(path, scenario, x, dout, w), want, dtype, f"{case} {size} bad {target}, {path}")


# -- 2. empty batches and single samples ------------------------------------------------------------

def _with_4d(scenario):
    """The scenario on x of shape (N, 2, 4, 8) (the layers flatten it to (N, 64))."""
    def run(x, dout, w):
        x4 = np.asarray(x).reshape(-1, 2, 4, 8)
        d4 = dout if np.ndim(dout) < 2 or dout.shape[1] != 64 else np.asarray(dout).reshape(-1, 2, 4, 8)
        return scenario(x4, d4, w)
    return run


#: every layer scenario also on a 4-d x: the element-wise layers, and the layers that flatten x
FOUR_D = [cls.__name__ for cls in elementwise_layers()] + ["Affine", "Dropout", "BatchNorm-train", "BatchNorm-eval"]
BATCH_SCENARIOS = dict(SCENARIOS, **{f"{k}-4d": (_with_4d(SCENARIOS[k][0]), SCENARIOS[k][1]) for k in FOUR_D})
#: where an empty batch is a clear error (a mean over the batch is needed)
EMPTY_IS_AN_ERROR = {"SoftmaxWithLoss", "BatchNorm-train", "BatchNorm-train-4d"}


@pytest.mark.parametrize("n", [0, 1])
@pytest.mark.parametrize("case", list(BATCH_SCENARIOS))
def test_empty_and_single_sample_batches(case, n):
    scenario, dout_kind = BATCH_SCENARIOS[case]
    x, d = scenario_inputs(np.float64, n, MEDIUM[1])
    dout = scenario_dout(dout_kind, d)
    w = scenario_weights(np.float64, MEDIUM[1], M_OUT)
    ref = outcome_of(REF_PATH, scenario, x, dout, w)
    if n == 0 and case in EMPTY_IS_AN_ERROR:
        assert ref[0] == "error" and ref[1] is ValueError and "the batch is empty" in ref[2], ref
    else:
        assert ref[0] == "ok", ref
        for key, v in ref[1].items():
            if case.startswith(("Relu", "Sigmoid", "Dropout", "BatchNorm")) and key in ("out", "dx"):
                assert np.shape(v)[0] == n, (key, np.shape(v))
        if n == 0 and case in ("cross_entropy_error", "softmax_loss"):
            assert np.isnan(ref[1]["out"])      # -0.0 / 0, as the book's NumPy code gives
    for path in NUMBA_PATHS:
        got = outcome_of(path, scenario, x, dout, w)
        assert got[0] == ref[0], (path, got, ref)
        if ref[0] == "error":
            assert got[1:] == ref[1:], path
        else:
            assert_same(got[1], ref[1], np.float64, f"{case} N={n} {path}")


# -- 3. what raises, and what is accepted ------------------------------------------------------------

X4 = np.random.default_rng(1).standard_normal((4, 8))
BAD_DATA = {"str": np.full((4, 8), "a"), "object": np.ones((4, 8), dtype=object), "complex": X4 * 1j,
            "None": None}
BAD_DATA_MESSAGE = {"str": "dtype <U1", "object": "Python objects", "complex": "complex numbers",
                    "None": "Python objects"}


def _layers_8():
    """Layers whose forward takes x of shape (N, 8), ready to use."""
    return {"Relu": Relu, "Sigmoid": Sigmoid, "Dropout": Dropout,
            "Affine": lambda: Affine(np.ones((8, 3)), np.zeros(3)),
            "BatchNormalization": lambda: BatchNormalization(np.ones(8), np.zeros(8))}


def _forward(layer, x):
    return layer.forward(x, np.zeros(4, dtype=int)) if isinstance(layer, SoftmaxWithLoss) else layer.forward(x)


def _error_cases():
    cases = []
    layers = dict(_layers_8(), SoftmaxWithLoss=SoftmaxWithLoss)
    functions = {"sigmoid": F.sigmoid, "relu": F.relu, "softmax": F.softmax,
                 "softmax_loss": lambda x: F.softmax_loss(x, np.zeros(4, dtype=int))}
    for kind, bad in BAD_DATA.items():
        what = BAD_DATA_MESSAGE[kind]
        for name, make in layers.items():
            cases.append((f"{name}.forward x {kind}", lambda make=make, bad=bad: _forward(make(), bad), TypeError,
                          rf"^{name}\.forward: x must hold real numbers .*got {what}"))
            if name == "SoftmaxWithLoss" or kind == "None":
                continue

            def backward(make=make, bad=bad):
                layer = make()
                layer.forward(X4)
                layer.backward(bad)
            cases.append((f"{name}.backward dout {kind}", backward, TypeError,
                          rf"^{name}\.backward: dout must hold real numbers .*got {what}"))
        for name, fn in functions.items():
            cases.append((f"{name} x {kind}", lambda fn=fn, bad=bad: fn(bad), TypeError,
                          rf"^{name if name != 'softmax_loss' else 'softmax'}: x must hold real numbers .*got {what}"))
        cases.append((f"cross_entropy_error y {kind}", lambda bad=bad: F.cross_entropy_error(bad, np.zeros(4, int)),
                      TypeError, rf"^cross_entropy_error: y must hold real numbers .*got {what}"))
    cases += [
        # ranks
        ("Affine 0-d x", lambda: Affine(np.ones((8, 3)), np.zeros(3)).forward(np.float64(1)), ValueError,
         r"^Affine\.forward: x must have a batch axis"),
        ("Affine 1-D x", lambda: Affine(np.ones((8, 3)), np.zeros(3)).forward(np.ones(8)), ValueError,
         r"^Affine\.forward: x of shape \(8,\) has 1 features per sample but W of shape \(8, 3\) expects 8"),
        ("SoftmaxWithLoss 3-D x", lambda: SoftmaxWithLoss().forward(np.ones((4, 2, 4)), np.zeros(4, int)),
         ValueError, r"^SoftmaxWithLoss\.forward: x must be 1-D or 2-D, got 3-D"),
        ("BatchNormalization 3-D x", lambda: BatchNormalization(np.ones(8), np.zeros(8)).forward(np.ones((4, 2, 4))),
         ValueError, r"^BatchNormalization\.forward: x must be 2-D or 4-D, got 3-D"),
        ("BatchNormalization 1-D x (eval)",
         lambda: BatchNormalization(np.ones(8), np.zeros(8)).forward(np.ones(8), False),
         ValueError, r"^BatchNormalization\.forward: x must be 2-D or 4-D, got 1-D"),
        ("softmax 0-d x", lambda: F.softmax(1.0), ValueError, r"^softmax: x must have at least one dimension"),
        ("cross_entropy_error 3-D y", lambda: F.cross_entropy_error(np.ones((4, 2, 4)), np.zeros(4, int)),
         ValueError, r"^cross_entropy_error: y must be \(N, K\) or \(K,\)"),
        ("Affine W 1-D", lambda: Affine(np.ones(8), np.zeros(3)), ValueError, r"^Affine: W must be 2-D"),
        # feature counts
        ("Affine features", lambda: Affine(np.ones((8, 3)), np.zeros(3)).forward(np.ones((4, 7))), ValueError,
         r"^Affine\.forward: x of shape \(4, 7\) has 7 features per sample but W of shape \(8, 3\) expects 8"),
        ("Affine 4-D features", lambda: Affine(np.ones((8, 3)), np.zeros(3)).forward(np.ones((4, 1, 2, 3))),
         ValueError, r"^Affine\.forward: x of shape \(4, 1, 2, 3\) has 6 features"),
        ("BatchNormalization features", lambda: BatchNormalization(np.ones(8), np.zeros(8)).forward(np.ones((4, 7))),
         ValueError, r"^BatchNormalization\.forward: x of shape \(4, 7\) has 7 features per sample but gamma"),
        ("BatchNormalization eval 4-D features",
         lambda: BatchNormalization(np.ones(8), np.zeros(8)).forward(np.ones((4, 1, 2, 3)), False),
         ValueError, r"^BatchNormalization\.forward: x of shape \(4, 1, 2, 3\) has 6 features"),
        ("Affine b shape", lambda: Affine(np.ones((8, 3)), np.zeros(2)), ValueError,
         r"^Affine: b must have shape \(3,\)"),
        ("BatchNormalization beta shape", lambda: BatchNormalization(np.ones(8), np.zeros(7)), ValueError,
         r"^BatchNormalization: gamma and beta must be 1-D of the same shape"),
        ("BatchNormalization running_var shape",
         lambda: BatchNormalization(np.ones(8), np.zeros(8), running_var=np.ones(7)), ValueError,
         r"^BatchNormalization: running_var must have shape \(8,\)"),
        # no classes
        ("softmax no classes", lambda: F.softmax(np.ones((4, 0))), ValueError, r"^softmax: x has no classes"),
        ("softmax_loss no classes", lambda: F.softmax_loss(np.ones((4, 0)), np.zeros(4, int)), ValueError,
         r"^softmax: x has no classes"),
        ("cross_entropy_error no classes", lambda: F.cross_entropy_error(np.ones((4, 0)), np.zeros(4, int)),
         ValueError, r"^cross_entropy_error: y has no classes"),
        ("SoftmaxWithLoss no classes", lambda: SoftmaxWithLoss().forward(np.ones((4, 0)), np.zeros(4, int)),
         ValueError, r"^SoftmaxWithLoss\.forward: x has no classes"),
        # labels
        ("labels out of range", lambda: SoftmaxWithLoss().forward(X4, np.array([0, 1, 8, 2])), ValueError,
         r"^SoftmaxWithLoss\.forward: labels t must lie in \[0, 7\]"),
        ("labels negative", lambda: F.cross_entropy_error(X4, np.array([0, -1, 2, 3])), ValueError,
         r"^cross_entropy_error: labels t must lie in \[0, 7\]"),
        ("labels count", lambda: SoftmaxWithLoss().forward(X4, np.array([0, 1, 2])), ValueError,
         r"^SoftmaxWithLoss\.forward: labels t must have shape \(4,\), \(4, 1\) or one-hot \(4, 8\)"),
        ("labels not whole", lambda: SoftmaxWithLoss().forward(X4, np.array([0, 1.5, 2, 3])), ValueError,
         r"^SoftmaxWithLoss\.forward: labels t must be whole class indices"),
        ("labels NaN", lambda: SoftmaxWithLoss().forward(X4, np.array([0, np.nan, 2, 3])), ValueError,
         r"^SoftmaxWithLoss\.forward: labels t must be whole class indices"),
        ("labels not one-hot", lambda: SoftmaxWithLoss().forward(X4, np.full((4, 8), 0.125)), ValueError,
         r"^SoftmaxWithLoss\.forward: labels t of shape \(4, 8\) must be one-hot rows"),
        ("labels str", lambda: SoftmaxWithLoss().forward(X4, np.array(list("abcd"))), TypeError,
         r"^SoftmaxWithLoss\.forward: labels t must be integers or one-hot rows, got dtype <U1"),
        ("labels complex", lambda: SoftmaxWithLoss().forward(X4, np.arange(4) * 1j), TypeError,
         r"^SoftmaxWithLoss\.forward: labels t must be integers or one-hot rows, got dtype complex128"),
        # weights that are not real numbers
        ("Affine W complex", lambda: Affine(np.ones((8, 3)) * 1j, np.zeros(3)), TypeError,
         r"^Affine: W must hold real numbers, got dtype complex128"),
        ("Affine b str", lambda: Affine(np.ones((8, 3)), np.array(list("abc"))), TypeError,
         r"^Affine: b must hold real numbers, got dtype <U1"),
        ("Affine W object", lambda: Affine(np.ones((8, 3), dtype=object), np.zeros(3)), TypeError,
         r"^Affine: W must hold real numbers, got dtype object"),
        ("BatchNormalization gamma complex", lambda: BatchNormalization(np.ones(8) * 1j, np.zeros(8)), TypeError,
         r"^BatchNormalization: gamma must hold real numbers, got dtype complex128"),
        ("BatchNormalization beta str", lambda: BatchNormalization(np.ones(8), np.array(list("abcdefgh"))),
         TypeError, r"^BatchNormalization: beta must hold real numbers, got dtype <U1"),
        ("Dropout ratio", lambda: Dropout(1.0), ValueError, r"^Dropout: dropout_ratio must be in \[0, 1\)"),
        # im2col / col2im, lightly (tests/kernels/test_conv_pool_kernels.py has the rest)
        ("im2col complex", lambda: im2col(np.ones((1, 1, 3, 3)) * 1j, 2, 2), TypeError,
         r"^im2col: input_data must hold real numbers .*got complex numbers"),
        ("im2col 3-D", lambda: im2col(np.ones((1, 3, 3)), 2, 2), ValueError, r"^im2col: input_data must be 4-D"),
        ("col2im shape", lambda: col2im(np.ones((3, 4)), (1, 1, 3, 3), 2, 2), ValueError,
         r"^col2im: col must have shape \(4, 4\)"),
    ]
    for name, make in _layers_8().items():
        def wrong_dout(make=make):
            layer = make()
            out = layer.forward(X4)
            layer.backward(np.ones((out.shape[0], out.shape[1] + 1)))
        cases.append((f"{name}.backward dout shape", wrong_dout, ValueError,
                      rf"^{name}\.backward: dout must have the forward output's shape"))
        cases.append((f"{name}.backward first", lambda make=make: make().backward(np.ones((4, 8))), RuntimeError,
                      rf"^{name}\.backward called before forward"))
    return cases


ERROR_CASES = _error_cases()


@pytest.mark.parametrize("name,fn,exc,pattern", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_bad_input_is_the_same_clear_error_on_every_backend(name, fn, exc, pattern):
    outcomes = {path: outcome_of(path, fn) for path in (REF_PATH, ("numba", "serial"), ("numba", "parallel"))}
    ref = outcomes[REF_PATH]
    assert ref[0] == "error" and ref[1] is exc, ref
    assert re.search(pattern, ref[2]), (pattern, ref[2])
    for path, got in outcomes.items():
        assert got == ref, path


ACCEPTED = {
    "int": (lambda a: np.round(a * 3).astype(np.int64), np.float64),
    "bool": (lambda a: a > 0, np.float64),
    "float16": (lambda a: a.astype(np.float16), np.float32),
    "list": (lambda a: a.tolist(), np.float64),
}
#: scenario, the weights' dtype (None: the result follows the input's)
ACCEPTING = [(cls.__name__, None) for cls in elementwise_layers()] + [
    ("Dropout", None), ("SoftmaxWithLoss", None),
    ("Affine", np.float64), ("Affine", np.float32), ("Affine", np.float16),
    ("BatchNorm-train", np.float64), ("BatchNorm-eval", np.float32),
    ("sigmoid", None), ("relu", None), ("softmax", None), ("softmax_loss", None)]


@pytest.mark.parametrize("kind", list(ACCEPTED))
@pytest.mark.parametrize("case,wdtype", ACCEPTING, ids=[f"{c}-{w.__name__ if w else 'none'}" for c, w in ACCEPTING])
def test_what_numpy_accepts_is_accepted(case, wdtype, kind):
    """Integers, booleans and lists are computed in float64, float16 in float32 (layers with weights:
    in the weights' dtype, float16 weights in float32); the result is the same as for the input
    converted first, on both backends."""
    scenario, dout_kind = SCENARIOS[case]
    convert, compute = ACCEPTED[kind]
    x, d = scenario_inputs(np.float64, *MEDIUM)
    dout = scenario_dout(dout_kind, d)
    w = scenario_weights(wdtype or np.float64, MEDIUM[1], M_OUT)
    xk = convert(x)
    dk = dout if np.ndim(dout) == 0 else convert(dout)
    expected = compute if wdtype is None else np.dtype(wdtype if wdtype != np.float16 else np.float32).type
    ref = None
    for path in ALL_PATHS:
        got = run_path(path, scenario, xk, dk, w)
        main = got.get("out", got.get("loss"))
        assert np.asarray(main).dtype == expected, (path, np.asarray(main).dtype)
        # the same as converting first
        same = run_path(path, scenario, np.asarray(xk).astype(expected),
                    dk if np.ndim(dk) == 0 else np.asarray(dk).astype(expected), w)
        assert_same(got, same, expected, f"{case} {kind} vs converted, {path}")
        if ref is None:
            ref = got
        else:
            assert_same(got, ref, expected, f"{case} {kind}, {path}")


@pytest.mark.parametrize("case", ["Relu", "Sigmoid", "Dropout", "sigmoid", "relu"])
def test_zero_d_inputs_as_in_numpy(case):
    """The element-wise layers take a 0-d x as NumPy does (Dropout's mask was a Python bool)."""
    scenario, _ = SCENARIOS[case]
    for value in (2.5, -1.0, np.nan):
        want = run_path(REF_PATH, scenario, np.float64(value), np.float64(3.0), None)
        assert all(np.ndim(v) == 0 for v in want.values()), want
        for path in NUMBA_PATHS:
            assert_same(run_path(path, scenario, np.float64(value), np.float64(3.0), None), want, np.float64,
                        f"{case} 0-d {value} {path}")


# -- 4. layouts: strided, Fortran, reversed, read-only; nothing is modified -------------------------


#: (x's layout, dout's layout, weights read-only)
LAYOUTS = [("step", "step", False), ("rows", "fortran", False), ("fortran", "reversed", False),
           ("reversed", "rows", False), ("readonly", "readonly", True), ("readonly-step", "readonly-fortran", True)]


@pytest.mark.parametrize("dtype", DT, ids=DT_IDS)
@pytest.mark.parametrize("case", list(SCENARIOS))
def test_layouts_give_the_contiguous_results_and_nothing_is_modified(case, dtype):
    scenario, dout_kind = SCENARIOS[case]
    x, d = scenario_inputs(dtype, *MEDIUM, seed=4)
    x[3, 5] = np.nan                    # a NaN must not move either
    dout = scenario_dout(dout_kind, d)
    w = scenario_weights(dtype, MEDIUM[1], M_OUT)
    want = run_path(REF_PATH, scenario, x, dout, w)
    for lx, ld, ro_weights in LAYOUTS:
        xv = laid_out(x, lx)
        dv = dout if np.ndim(dout) == 0 else laid_out(dout, ld)
        wv = {k: laid_out(v, "readonly") if ro_weights else v.copy() for k, v in w.items()}
        handed_in = [a for a in (xv, dv, *wv.values()) if isinstance(a, np.ndarray)]
        copies = [a.copy() for a in handed_in]
        for path in [REF_PATH, ("numba", "serial"), ("numba", "parallel")]:
            got = run_path(path, scenario, xv, dv, wv)
            assert_same(got, want, dtype, f"{case} x {lx}, dout {ld}, {path}")
            for a, c in zip(handed_in, copies):
                np.testing.assert_array_equal(a, c, err_msg=f"{case}: an input was modified on {path}")


def test_read_only_inputs_compile_no_second_kernel():
    """Numba types a read-only array as another type: handed to a kernel as it is, it compiled each
    kernel again (seconds per kernel and dtype). The wrappers give the kernels a writeable copy."""
    from numba.core.types import Array
    from fastdl.kernels.cpu import compiled_kernels
    for dtype in DT:
        x, d = scenario_inputs(dtype, *MEDIUM, seed=6)
        w = scenario_weights(dtype, MEDIUM[1], M_OUT)
        ro = {k: laid_out(v, "readonly") for k, v in w.items()}
        for case, (scenario, dout_kind) in SCENARIOS.items():
            dout = scenario_dout(dout_kind, d)
            for path in NUMBA_PATHS[:2]:
                run_path(path, scenario, laid_out(x, "readonly"),
                     dout if np.ndim(dout) == 0 else laid_out(dout, "readonly"), ro)
        t = laid_out(np.arange(MEDIUM[0]) % MEDIUM[1], "readonly")
        for path in NUMBA_PATHS[:2]:
            run_path(path, lambda: SoftmaxWithLoss().forward(x, t))
            for cls in OPTIMIZERS:
                run_path(path, lambda: cls().update({"W": np.ones(3000, dtype)}, {"W": laid_out(np.ones(3000, dtype),
                                                                                           "readonly")}))
    mine = ("activations.", "affine.", "batchnorm.", "loss.", "optim.")
    read_only = {name: [s for s in disp.signatures if any(isinstance(a, Array) and not a.mutable for a in s)]
                 for name, disp in compiled_kernels().items() if name.startswith(mine)}
    assert not {k: v for k, v in read_only.items() if v}
