"""Every op of the spec on the cuda backend against the reference, from the spec alone, on the
"tiny" example shapes (``fastdl.kernels.examples.SIZES``): an op added to the spec with a
family is tested here with no edit of this file."""
import pytest

from fastdl import backend
from fastdl.kernels import examples
from fastdl.kernels.spec import TABLE
from tests.helpers import check_op


def _params():
    """Each tiny case once (the simulator is slow), float32 and float64 and strided inputs in
    turn, so every op meets each of them across its cases and ops."""
    out = []
    for op in TABLE:
        for i, (lab, make) in enumerate(examples.op_cases(op.name, "tiny")):
            k = len(out)
            dtype, strided = ("float32", "float64")[k % 2], k % 4 >= 2
            out.append(pytest.param(op.name, make, dtype, strided,
                                    id=f"{op.name}[{lab}]-{dtype}{'-strided' if strided else ''}"))
    return out


@pytest.mark.parametrize("op_name, make, dtype, strided", _params())
def test_op_matches_the_reference(op_name, make, dtype, strided):
    check_op(op_name, make, [backend.ops("cuda")], dtype, strided)


def test_device_placement_ops():
    import numpy as np
    cu = backend.ops("cuda")
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    d = cu.to_device(x)
    assert cu.owns(d) and not cu.owns(x) and cu.to_device(d) is d
    np.testing.assert_array_equal(cu.to_host(d), x)
    z = cu.zeros_like(d)
    assert cu.owns(z) and z.shape == d.shape and not cu.to_host(z).any()
    y = cu.astype(d, np.float64)
    assert cu.owns(y) and y.dtype == np.float64 and cu.astype(d, np.float32) is d
    s = cu.scale(d, 0.5)
    assert cu.owns(s) and np.array_equal(cu.to_host(s), x * np.float32(0.5))
    assert cu.all_finite(d) and not cu.all_finite(cu.to_device(np.array([1.0, np.nan])))
