"""Plain-loop definitions (the oracle for the reference backend) and test utilities."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastdl
from fastdl.optimizers import SGD, AdaGrad, Adam, Momentum, Nesterov, RMSprop


def out_size(n, k, s, p):
    return (n + 2 * p - k) // s + 1


def _patch_cells(shape, fh, fw, s, p):
    """(n, c, iy, ix, row, column) of every cell of every patch that lies inside the input: the
    row of col (sample and output position) and the column (channel and place in the window)."""
    N, C, H, W = shape
    OH, OW = out_size(H, fh, s, p), out_size(W, fw, s, p)
    for n in range(N):
        for oy in range(OH):
            for ox in range(OW):
                row = (n * OH + oy) * OW + ox
                for c in range(C):
                    for ky in range(fh):
                        for kx in range(fw):
                            iy, ix = oy * s + ky - p, ox * s + kx - p
                            if 0 <= iy < H and 0 <= ix < W:
                                yield n, c, iy, ix, row, (c * fh + ky) * fw + kx


def loop_im2col(x, fh, fw, s, p):
    N, C, H, W = x.shape
    OH, OW = out_size(H, fh, s, p), out_size(W, fw, s, p)
    col = np.zeros((N * OH * OW, C * fh * fw), dtype=x.dtype)
    for n, c, iy, ix, row, column in _patch_cells(x.shape, fh, fw, s, p):
        col[row, column] = x[n, c, iy, ix]
    return col


def loop_col2im(col, shape, fh, fw, s, p):
    x = np.zeros(shape, dtype=col.dtype)
    for n, c, iy, ix, row, column in _patch_cells(shape, fh, fw, s, p):
        x[n, c, iy, ix] += col[row, column]
    return x


def loop_conv(x, Wt, b, s, p):
    N, C, H, W = x.shape
    FN, _, FH, FW = Wt.shape
    OH, OW = out_size(H, FH, s, p), out_size(W, FW, s, p)
    xp = np.zeros((N, C, H + 2 * p, W + 2 * p))
    xp[:, :, p:p + H, p:p + W] = x
    out = np.zeros((N, FN, OH, OW))
    for n in range(N):
        for f in range(FN):
            for oy in range(OH):
                for ox in range(OW):
                    patch = xp[n, :, oy * s:oy * s + FH, ox * s:ox * s + FW]
                    out[n, f, oy, ox] = np.sum(patch * Wt[f]) + b[f]
    return out


def loop_pool(x, ph, pw, s, p):
    """Max pooling by loops; returns (out, list of winning input coordinates)."""
    N, C, H, W = x.shape
    OH, OW = out_size(H, ph, s, p), out_size(W, pw, s, p)
    out = np.zeros((N, C, OH, OW), dtype=x.dtype)
    win = {}
    for n in range(N):
        for c in range(C):
            for oy in range(OH):
                for ox in range(OW):
                    best, where = -np.inf, None
                    for ky in range(ph):
                        for kx in range(pw):
                            iy, ix = oy * s + ky - p, ox * s + kx - p
                            if 0 <= iy < H and 0 <= ix < W and x[n, c, iy, ix] > best:
                                best, where = x[n, c, iy, ix], (iy, ix)
                    out[n, c, oy, ox] = best
                    win[n, c, oy, ox] = where
    return out, win


def loop_pool_backward(dout, win, shape):
    dx = np.zeros(shape, dtype=dout.dtype)
    for (n, c, oy, ox), (iy, ix) in win.items():
        dx[n, c, iy, ix] += dout[n, c, oy, ox]
    return dx


def strided(a, kind="step"):
    """A non-contiguous array with the values of a: every other element of a bigger
    array ("step") or a transposed copy viewed back ("transpose")."""
    a = np.asarray(a)
    if kind == "step":
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        big[..., ::2] = a
        v = big[..., ::2]
    else:
        v = np.ascontiguousarray(a.T).T
    assert np.array_equal(v, a)
    # NumPy calls a view contiguous when only size-1 axes are out of order
    if (kind == "step" and a.ndim and a.shape[-1] > 1) or (kind != "step" and sum(d > 1 for d in a.shape) >= 2):
        assert not v.flags.c_contiguous
    return v


def layouts(a):
    """The same values as a C-contiguous array and as two strided views."""
    return [("contiguous", np.ascontiguousarray(a)), ("step", strided(a, "step")),
            ("transpose", strided(a, "transpose"))]


def num_grad(f, x, h=1e-5):
    """Central differences of scalar f over every element of x (x perturbed in place, restored)."""
    g = np.zeros_like(x, dtype=np.float64)
    for idx in np.ndindex(x.shape):
        old = x[idx]
        x[idx] = old + h
        fp = f()
        x[idx] = old - h
        fm = f()
        x[idx] = old
        g[idx] = (fp - fm) / (2 * h)
    return g


TOL = {np.float32: dict(rtol=2e-4, atol=2e-5), np.float64: dict(rtol=1e-10, atol=1e-12)}


def tol(dtype):
    return TOL[np.dtype(dtype).type]


# -- every op of the spec against the reference (tests/kernels/test_spec_ops.py, tests/cuda) ---------
#: a difference above SPEC_TOL * (largest magnitude of the reference's result) fails
SPEC_TOL = {"float32": 2e-5, "float64": 1e-12}


def _spec_results(op_name, result):
    """{name: value} of what an op returned, by the names in its spec entry; opaque ctx left out."""
    from fastdl.kernels.spec import BY_NAME
    if result is None:
        return {}
    names = [n.strip() for n in BY_NAME[op_name].returns.split(",") if n.strip()]
    values = result if isinstance(result, tuple) else (result,)
    assert len(values) == len(names), f"{op_name} returned {len(values)} values, the spec names {names}"
    return {n: v for n, v in zip(names, values) if n != "ctx" and v is not None}


def _spec_close(got, want, dtype, what):
    got = np.asarray(got.copy_to_host() if hasattr(got, "copy_to_host") else got)
    want = np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if want.dtype == bool:
        np.testing.assert_array_equal(got, want, err_msg=what)
        return
    if np.issubdtype(want.dtype, np.floating):
        assert got.dtype == want.dtype, f"{what}: dtype {got.dtype} != {want.dtype}"
    scale = max(float(np.max(np.abs(want))) if want.size else 0.0, np.finfo(np.float64).tiny)
    diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if want.size else 0.0
    assert diff <= SPEC_TOL[dtype] * scale, f"{what}: max|diff| {diff:.3g} > {SPEC_TOL[dtype]} * {scale:.3g}"


def _host(a):
    return np.array(a.copy_to_host() if hasattr(a, "copy_to_host") else a)


def _may_update(op, call):
    """For each of ``call.inputs``, whether spec entry ``op`` may update it in place: its argument
    name (from the signature) is in ``op.updates``."""
    names = [a.split("=")[0].strip() for a in op.signature.strip("()").split(",")]
    assert set(op.updates) <= set(names), f"{op.name}: updates {op.updates} not all in {op.signature}"
    name_of = {id(a): n for a, n in zip(call.args, names)}
    return [name_of.get(id(a)) in op.updates for a in call.inputs]


def check_op(op_name, make, fast_backends, dtype, strided):
    """Run one example case (``fastdl.kernels.examples``) of op ``op_name`` on the reference and
    on each namespace of ``fast_backends``: what it returns (by the spec's names, ctx aside) and
    the inputs the reference updated in place (only those its spec entry's ``updates`` names)
    must agree; every other input must stay exactly as it was."""
    from fastdl import backend
    from fastdl.kernels.spec import BY_NAME
    op = BY_NAME[op_name]
    ref = make(backend.ops("numpy"), dtype, strided)
    ref_before = [_host(a) for a in ref.inputs]
    want = _spec_results(op_name, ref())
    for key, value in want.items():        # float results in the examples' dtype (the convention)
        dt = np.asarray(value).dtype
        assert dt.kind != "f" or dt == dtype, f"the reference {op_name} returned {key} as {dt}, not {dtype}"
    changed = []
    for i, (before, after, may) in enumerate(zip(ref_before, ref.inputs, _may_update(op, ref))):
        changed.append(not np.array_equal(_host(after), before))
        assert may or not changed[-1], f"the reference {op_name} changed input {i}, not in its spec's updates"
    for ops in fast_backends:
        call = make(ops, dtype, strided)
        before = [_host(a) for a in call.inputs]
        got = _spec_results(op_name, call())
        assert set(got) == set(want), f"{ops.NAME}.{op_name} returned {sorted(got)}, the reference {sorted(want)}"
        for key in want:
            _spec_close(got[key], want[key], dtype, f"{ops.NAME}.{op_name} {key}")
        for i, (a, b0, w, ch) in enumerate(zip(call.inputs, before, ref.inputs, changed)):
            if ch:
                _spec_close(a, w, dtype, f"{ops.NAME}.{op_name} input {i} after the update")
            else:
                np.testing.assert_array_equal(_host(a), b0, err_msg=f"{ops.NAME}.{op_name} changed input {i}")


def run_cli(args, capsys):
    """``fastdl.cli.main(args)`` in this process: (exit status, stdout, stderr)."""
    from fastdl import cli
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err):
    """The one non-blank line of ``err`` (asserts there is exactly one and no traceback)."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def run_module(args, cwd=None, timeout=300, env=None):
    """``python -m ARGS`` in a real process (FASTDL_TRACEBACK unset): the CompletedProcess, text."""
    e = dict(os.environ, **(env or {}))
    e.pop("FASTDL_TRACEBACK", None)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout, env=e)


def signal_training(model, signum):
    """``python -m fastdl train`` (TwoLayerNet, 200 epochs, reference kernels, --save model) in a
    real process with a terminal's default SIGINT, sent ``signum`` once it printed epoch 2:
    (exit status, the rest of stdout, stderr)."""
    p = subprocess.Popen([sys.executable, "-m", "fastdl", "train", "--net", "two", "--epochs", "200",
                          "--save", str(model), "--backend", "numpy"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"),
                         # a terminal's default SIGINT, even when this runs as a background job
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    seen, deadline = "", time.time() + 120
    while "=== epoch:2" not in seen and time.time() < deadline:
        line = p.stdout.readline()
        if not line:
            break
        seen += line
    p.send_signal(signum)
    out, err = p.communicate(timeout=120)
    return p.returncode, out, err


# -- the numba backend on each of its paths against the reference (tests/layers, tests/optimizers) ---

#: (backend, forced numba path): None lets the size choose
NUMBA_PATHS = [("numba", "serial"), ("numba", "parallel"), ("numba", None)]
REF_PATH = ("numpy", None)
ALL_PATHS = [REF_PATH] + NUMBA_PATHS


def run_path(path, fn, *args):
    """fn(*args) on the backend and forced numba path of ``path``, NumPy's warnings off."""
    name, mode = path
    from fastdl.kernels.cpu import _chunks
    with fastdl.using_backend(name), _chunks.forced(mode), np.errstate(all="ignore"):
        return fn(*args)


def outcome_of(path, fn, *args):
    """("ok", result) or ("error", type, message)."""
    try:
        return ("ok", run_path(path, fn, *args))
    except Exception as exc:          # noqa: BLE001 - the error itself is what is compared
        return ("error", type(exc), str(exc))


def _masks(a):
    return {"NaN": np.isnan(a), "+inf": np.isposinf(a), "-inf": np.isneginf(a)}


def assert_same(got, want, dtype, what, loose=()):
    """Same keys, shapes and dtypes; NaN, +Inf and -Inf in exactly the same places; finite values
    within the parity tolerance (tests/kernels/test_backend_parity.py). Keys in ``loose`` are compared
    only where both are finite."""
    assert set(got) == set(want), what
    for key in want:
        g, w = np.asarray(got[key]), np.asarray(want[key])
        where = f"{what}: {key}"
        assert g.shape == w.shape, (where, g.shape, w.shape)
        assert g.dtype == w.dtype, (where, g.dtype, w.dtype)
        if g.dtype.kind != "f":
            np.testing.assert_array_equal(g, w, err_msg=where)
            continue
        both = np.isfinite(g) & np.isfinite(w)
        if key not in loose:
            for kind, gm in _masks(g).items():
                wm = _masks(w)[kind]
                if not np.array_equal(gm, wm):
                    bad = np.argwhere(gm != wm)[:4].tolist()
                    pytest.fail(f"{where}: {kind} in different places, e.g. at {bad}: "
                                f"numba {g[tuple(np.array(bad[0]))] if g.ndim else g}, "
                                f"reference {w[tuple(np.array(bad[0]))] if w.ndim else w}")
        if both.any():
            gf, wf = g[both], w[both]
            scale = max(1.0, float(np.max(np.abs(wf))))
            if dtype == np.float32:
                np.testing.assert_allclose(gf, wf, rtol=1e-4, atol=2e-5 * scale, err_msg=where)
            else:
                np.testing.assert_allclose(gf, wf, rtol=1e-10, atol=1e-12 * scale, err_msg=where)


def laid_out(a, kind):
    a = np.asarray(a)
    if kind == "contiguous":
        return np.array(a, order="C")         # a copy: optimizers update it in place
    if kind == "step":                   # x[:, ::2] of a wider array
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), a.dtype)
        big[..., ::2] = a
        v = big[..., ::2]
    elif kind == "rows":                 # x[::2] of a taller array
        big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
        big[::2] = a
        v = big[::2]
    elif kind == "fortran":
        v = np.array(a, order="F")
    elif kind == "reversed":             # negative strides
        v = np.ascontiguousarray(a[::-1, ::-1])[::-1, ::-1]
    elif kind.startswith("readonly"):
        v = laid_out(a, kind.split("-", 1)[1]) if "-" in kind else a.copy()
        v.setflags(write=False)
    assert np.array_equal(v, a, equal_nan=True) and (kind in ("contiguous", "readonly") or not v.flags.c_contiguous)
    return v


OPTIMIZERS = [SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam]
DT = [np.float32, np.float64]
DT_IDS = ["f32", "f64"]


def numba_vs_reference(test):
    """The marks of a test that compares the numba backend with the reference on non-finite and huge
    values: skipped without numba; NumPy's own warnings on Inf, NaN and overflow are expected."""
    from tests.conftest import FAST_BACKENDS
    marks = [pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available"),
             pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning"),
             pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning"),
             pytest.mark.filterwarnings("ignore:divide by zero encountered:RuntimeWarning"),
             pytest.mark.filterwarnings("ignore:.*the loss is:RuntimeWarning")]
    for mark in marks:
        test = mark(test)
    return test
