"""No kernel reads or writes outside its arrays, whatever shapes a caller passes.

For every op of ``fastdl.kernels.spec`` (its example inputs from ``fastdl.kernels.examples``,
tiny), each array argument is replaced in turn by arrays of other shapes: every axis one
smaller and one larger, one axis more, flattened, for integer (label) arrays a value
outside the classes, and for the families whose numba kernels hand raw pointers to BLAS
(convolutions, the fused blocks, Affine) float arrays of the other float dtype and of int32. The numba backend and the reference must then do the same thing: both
raise a ValueError or TypeError with the same message (naming the op), or both compute and agree.
A backward op's ctx comes from a forward call on the example shapes, so a dout of another shape
is a ctx from another call. Every op that takes two arrays (or an array and a ctx) must refuse
at least one of them.

The calls run in child processes (``subprocess.run([sys.executable, ...])``): a kernel that
writes out of bounds kills its child, which is reported as a failure of that op, and the
remaining ops run in a new child.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from fastdl.kernels import spec
from tests.conftest import FAST_BACKENDS

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OPS = [op.name for op in spec.TABLE if op.family != "device"]


# -- in the child ----------------------------------------------------------------------------------

#: the families whose numba kernels pass raw pointers to BLAS, where a buffer of another dtype
#: than the kernel's would be read past its end
POINTER_FAMILIES = ("conv", "block", "affine")


def _variants(a, seed, dtypes=False):
    """(label, array) of other shapes than a's (and out-of-range labels for an integer array;
    with ``dtypes``, a float array's values in the other float dtype and in int32)."""
    r = np.random.default_rng(seed)

    def fill(shape):
        if a.dtype == np.bool_:
            return r.random(shape) > 0.5
        if a.dtype.kind in "iu":
            return r.integers(0, 2, size=shape).astype(a.dtype)
        return (r.random(shape) + 0.1).astype(a.dtype)

    s = a.shape
    out = []
    for k in range(len(s)):
        for d in (-1, 1):
            if s[k] + d >= 1:
                shape = s[:k] + (s[k] + d,) + s[k + 1:]
                out.append((f"axis {k} {d:+d} {shape}", fill(shape)))
    out.append((f"one axis more {s + (1,)}", fill(s + (1,))))
    if len(s) > 1:
        out.append((f"flattened {(a.size,)}", fill((a.size,))))
    if a.dtype.kind in "iu" and a.size:
        for bad in (-1, 1000):
            b = a.copy()
            b.flat[a.size // 2] = bad
            out.append((f"label {bad}", b))
    if dtypes and a.dtype.kind == "f":
        other = np.float32 if a.dtype == np.float64 else np.float64
        out.append((f"dtype {np.dtype(other).name}", a.astype(other)))
        out.append(("dtype int32", (a * 4).astype(np.int32)))
    return out


def _copy(v):
    if isinstance(v, np.ndarray):
        return v.copy()
    return v


def _outcome(ops, name, args, returns):
    """("error", message) or ("ok", [arrays to compare]): the op's non-ctx results, then its array
    arguments after the call (the in-place updates)."""
    args = [_copy(a) for a in args]
    try:
        result = getattr(ops, name)(*args)
    except (ValueError, TypeError) as exc:
        return "error", f"{type(exc).__name__}: {exc}"
    except Exception as exc:         # any other exception is a failure: the message must be clear
        return "bad", f"{type(exc).__name__}: {exc}"
    results = result if isinstance(result, tuple) else (result,)
    names = [n.strip() for n in returns.split(",") if n.strip()] or []
    kept = [v for n, v in zip(names, results) if n != "ctx"]
    kept += [a for a in args if isinstance(a, np.ndarray)]
    return "ok", [np.asarray(v) for v in kept if v is not None]


def _agree(a, b, loose=False):
    """Same shapes and values (float32 tolerance with ``loose``: one backend may compute a mixed-dtype
    call in float32 where the other promotes to float64)."""
    rtol, atol = (1e-4, 1e-5) if loose else (1e-6, 1e-9)
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x.shape != y.shape:
            return False
        if x.dtype.kind == "f" or y.dtype.kind == "f":
            if not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True


def run_op(name):
    """{"op", "variants", "refused", "failures"} for op ``name``, numba against the reference."""
    from fastdl import backend
    from fastdl.kernels import examples
    fast, ref = backend.ops("numba"), backend.ops("numpy")
    op = spec.BY_NAME[name]
    report = {"op": name, "variants": 0, "refused": 0, "arrays": 0, "failures": []}
    for label, make in examples.op_cases(name, "tiny"):
        cf, cr = make(fast, np.float64), make(ref, np.float64)
        n_arrays = sum(isinstance(a, np.ndarray) for a in cf.args)
        has_ctx = any(isinstance(a, tuple) or a is None or hasattr(a, "_fields") for a in cf.args[1:])
        report["arrays"] = max(report["arrays"], n_arrays + has_ctx)
        for i, a in enumerate(cf.args):
            if not isinstance(a, np.ndarray):
                continue
            for vlabel, v in _variants(a, seed=i, dtypes=op.family in POINTER_FAMILIES):
                args_f = list(cf.args)
                args_r = list(cr.args)
                args_f[i] = v
                args_r[i] = v
                where = f"{label}: argument {i} {vlabel}"
                print(f"RUN {name} {where}", flush=True)
                kf, of = _outcome(fast, name, args_f, op.returns)
                kr, orr = _outcome(ref, name, args_r, op.returns)
                report["variants"] += 1
                if kf == "bad" or kr == "bad":
                    report["failures"].append(f"{where}: numba {kf} {of!s:.200}; reference {kr} {orr!s:.200}")
                elif kf != kr:
                    report["failures"].append(f"{where}: numba {kf} {of!s:.200} but reference {kr} {orr!s:.200}")
                elif kf == "error":
                    report["refused"] += 1
                    if of != orr:
                        report["failures"].append(f"{where}: different messages: numba {of!r}, reference {orr!r}")
                    elif not of.split(": ", 1)[1].startswith(name + ":"):
                        report["failures"].append(f"{where}: the message does not name the op: {of!r}")
                elif not _agree(of, orr, loose=vlabel.startswith("dtype")):
                    report["failures"].append(f"{where}: both computed but the results differ")
    return report


def main(names):
    for name in names:
        print("REPORT " + json.dumps(run_op(name)), flush=True)


# -- in pytest ---------------------------------------------------------------------------------------

def _child(names):
    """(reports by op, exit code, the variant running when it ended, stderr) of one child."""
    proc = subprocess.run([sys.executable, "-c", "import sys; from tests.kernels.test_kernel_guards import main; "
                           "main(sys.argv[1:])"] + list(names), cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    out, last = {}, None
    for line in proc.stdout.splitlines():
        if line.startswith("REPORT "):
            r = json.loads(line[7:])
            out[r["op"]] = r
        elif line.startswith("RUN "):
            last = line[4:]
    return out, proc.returncode, last, proc.stderr.strip()[-300:]


@pytest.fixture(scope="module")
def reports():
    """Every op's report from one child; if that child dies (a write out of bounds may be noticed
    only when memory is freed, even at exit), every op runs again in a child of its own, and an
    op whose child dies is reported as such."""
    out, rc, _, _ = _child(OPS)
    if rc == 0 and len(out) == len(OPS):
        return out
    out = {}
    for name in OPS:
        got, rc, last, err = _child([name])
        out[name] = got.get(name, {}) if rc == 0 else {"op": name, "crash": f"exit {rc} during {last}: {err}"}
    return out


@pytest.mark.skipif("numba" not in FAST_BACKENDS, reason="numba backend not available")
@pytest.mark.parametrize("name", OPS)
def test_wrong_shapes_are_refused_like_the_reference(name, reports):
    r = reports[name]
    assert "crash" not in r, r.get("crash")
    assert r["variants"] > 0
    assert not r["failures"], "\n".join(r["failures"][:12]) + f"\n({len(r['failures'])} of {r['variants']})"
    if r["arrays"] > 1:
        assert r["refused"] > 0, f"{name} takes several arrays but refused none of the wrong shapes"


def test_every_op_is_covered():
    """The op list comes from the spec: every op that computes has example inputs to vary."""
    from fastdl.kernels import examples
    assert OPS == examples.timed_ops()
    for name in OPS:
        assert examples.op_cases(name, "tiny"), name
