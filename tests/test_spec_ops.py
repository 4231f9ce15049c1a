"""Every op of the spec on every fast host backend against the reference, from the spec alone.

The cases are ``fastdl.kernels.examples`` (the sweep's, tiny to large, straddling every
size threshold of the numba kernels), on float32 and float64; the smallest and the largest
case of each op also with strided inputs. Nothing here names an op: an op added to ``spec.TABLE`` with a family is tested
here as it is swept and benchmarked, with no edit of this file.
"""
import numpy as np
import pytest

import fastdl
from fastdl import backend
from fastdl.kernels import examples
from fastdl.kernels.spec import BY_NAME, TABLE
from tests.helpers import check_op

FAST = [b for b in fastdl.available_backends() if b not in ("numpy", "cuda")]


def _params():
    """Every case contiguous; the smallest and the largest also strided."""
    out = []
    for op in TABLE:
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
    check_op(op_name, make, [backend.ops(name) for name in FAST], dtype, strided)


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
