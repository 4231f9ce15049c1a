"""Every op of the spec on every fast host backend against the reference, from the spec alone.

The cases are ``fastdl.kernels.examples`` (the sweep's, tiny to large, straddling every
size threshold of the numba kernels), on float32 and float64; the smallest and the largest
case of each op also with strided inputs. Nothing here names an op: an op added to ``spec.TABLE`` with a family is tested
here as it is swept and benchmarked, with no edit of this file.

Only the ops a backend has its own kernel (or composite definition) for are compared: an op it
runs through the reference (``composite.via_reference``) would compare the reference with
itself. ``test_ops_running_on_the_reference_are_listed`` names those ops, per backend, in the
test output instead.
"""
import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.kernels import examples, reference
from fastdl.kernels.composite import reference_fallbacks
from fastdl.kernels.spec import BY_NAME, TABLE
from tests.helpers import check_op

FAST = [b for b in fastdl.available_backends() if b not in ("numpy", "cuda")]


def _with_kernel(op_name):
    """The fast host backends that compute ``op_name`` themselves (not through the reference)."""
    return [name for name in FAST if op_name not in reference_fallbacks(backend.ops(name))]


def _params():
    """Every case contiguous; the smallest and the largest also strided; only ops some fast
    backend has a kernel for."""
    out = []
    for op in TABLE:
        if not _with_kernel(op.name):
            continue
        cases = examples.op_cases(op.name)
        for i, (lab, make) in enumerate(cases):
            for strided in (False, True) if i in (0, len(cases) - 1) else (False,):
                out.append(pytest.param(op.name, make, strided,
                                        id=f"{op.name}[{lab}]{'-strided' if strided else ''}"))
    return out


@pytest.mark.skipif(not FAST, reason="no fast host backend loads here")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op_name, make, strided", _params())
def test_op_matches_the_reference(op_name, make, dtype, strided):
    check_op(op_name, make, [backend.ops(name) for name in _with_kernel(op_name)], dtype, strided)


@pytest.mark.parametrize("name", fastdl.available_backends())
def test_ops_running_on_the_reference_are_listed(name, record_property, capsys):
    """Each backend's ops without a kernel of its own: printed (``-s`` or ``-rP`` shows them, and
    the junit report has them), and each really is the reference kernel behind the placement
    ops, so the parity test above leaves them out rightly."""
    ops = backend.ops(name)
    fallbacks = reference_fallbacks(ops)
    record_property("reference_fallbacks", ",".join(fallbacks))
    with capsys.disabled():
        print(f"\n[{name}] ops running on the reference kernel (not compared with it): "
              f"{', '.join(fallbacks) or 'none'}")
    for op_name in fallbacks:
        fn = getattr(ops, op_name)
        assert fn.composite and fn.__doc__.endswith("the reference kernel, run on the host."), op_name


def _reference_posing_as_kernels(ops):
    """Ops of ``ops`` counted as its own kernels (not marked composite) that are the reference
    backend's functions: a parity test of them would compare the reference with itself."""
    import inspect
    bad = []
    for op in TABLE:
        fn = getattr(ops, op.name, None)
        if fn is None or getattr(fn, "composite", False) or ops is reference:
            continue
        inner = inspect.unwrap(fn)
        if inner is getattr(reference, op.name, None) or \
                getattr(inner, "__module__", "").startswith(reference.__name__):
            bad.append(op.name)
    return bad


@pytest.mark.parametrize("name", [b for b in fastdl.available_backends() if b != "numpy"])
def test_no_backend_counts_the_reference_as_its_kernel(name):
    assert _reference_posing_as_kernels(backend.ops(name)) == []


def test_the_reference_posing_as_a_kernel_is_caught(monkeypatch):
    import sys
    import types
    fake = types.ModuleType("fastdl_test_posing_backend")
    fake.NAME = "posing"
    fake.sigmoid_forward = reference.sigmoid_forward          # "a kernel" that is the reference
    monkeypatch.setitem(sys.modules, fake.__name__, fake)
    from fastdl.kernels import complete
    complete(fake.__name__)
    assert _reference_posing_as_kernels(fake) == ["sigmoid_forward"]


def test_every_op_that_computes_has_cases_and_every_family_is_known():
    for op in TABLE:
        if op.family == "device":
            assert examples.op_cases(op.name) == []
        else:
            assert examples.op_cases(op.name), f"{op.name} (family {op.family!r}) has no example cases"
        if op.backward_of:
            assert op.backward_of in BY_NAME and BY_NAME[op.backward_of].family == op.family


def test_strided_examples_are_views_with_the_same_values():
    a = examples.array((3, 4, 5), "float32", seed=7)
    s = examples.array((3, 4, 5), "float32", seed=7, strided=True)
    assert not s.flags.c_contiguous and s.strides[-1] == 2 * s.itemsize
    np.testing.assert_array_equal(a, s)


@pytest.mark.parametrize("name", fastdl.available_backends())
def test_device_placement_ops_on_host_backends_are_identities(name):
    ops = backend.ops(name)
    if name == "cuda":
        pytest.skip("the cuda backend's placement ops are tested in tests/cuda")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert ops.owns(x) and ops.to_device(x) is x and ops.to_host(x) is x
    z = ops.zeros_like(x)
    assert z.shape == x.shape and z.dtype == x.dtype and not z.any()
    assert ops.astype(x, np.float32) is x
    y = ops.astype(x, np.float64)
    assert y.dtype == np.float64 and np.array_equal(y, x) and x.dtype == np.float32
    s = ops.scale(x, 0.5)
    assert s.dtype == np.float32 and np.array_equal(s, x * np.float32(0.5))
    assert ops.all_finite(x) and not ops.all_finite(np.array([1.0, np.nan]))


def test_a_backend_with_no_kernels_runs_every_op_through_the_reference(monkeypatch):
    """What a new op gets on a backend without a kernel for it: ``complete`` fills it in from
    its composite definition or, failing that, the reference kernel run on the host."""
    import inspect
    import sys
    import types

    from fastdl.kernels import complete
    from fastdl.kernels.spec import OPS
    empty = types.ModuleType("fastdl_test_empty_backend")
    empty.NAME = "empty"
    monkeypatch.setitem(sys.modules, empty.__name__, empty)
    filled = complete(empty.__name__)
    assert set(filled) == set(OPS)
    for name, sig in OPS.items():
        fn = getattr(empty, name)
        assert fn.composite and str(inspect.signature(fn)) == sig, name
    for op in TABLE:
        cases = examples.op_cases(op.name)
        if cases:
            check_op(op.name, cases[0][1], [empty], "float64", True)


def test_the_reference_must_define_every_op_without_a_composite(monkeypatch):
    import sys
    import types

    from fastdl.kernels import complete
    from fastdl.kernels.composite import REFERENCE
    fake = types.ModuleType(REFERENCE)
    monkeypatch.setitem(sys.modules, REFERENCE, fake)
    with pytest.raises(TypeError, match="reference backend must define op 'im2col'"):
        complete(REFERENCE)
