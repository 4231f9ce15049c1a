"""Ops defined by composition over other ops: what a backend gets for an op it does not implement.

Each function takes the backend's own namespace ``ops`` first, then the op's arguments as
``spec.TABLE`` lists them. ``fastdl.kernels.complete`` binds them to a backend package for
every op the package leaves out, so these definitions are also what the ops *mean*:

* ``conv_relu_*`` is Convolution then Relu, ``conv_relu_pool_*`` adds max Pooling. The numba
  backend has real fused kernels for stride 1 (and composes its own ops for the rest); the
  reference and cuda backends use these.
* Any other op a backend leaves out runs the reference backend's kernel on the host
  (``via_reference``): its arrays are brought to the host, the NumPy kernel runs, and what
  it returns goes back to the backend's memory (nothing moves on a host backend). So a new
  op needs only its reference kernel to run everywhere; a fast kernel is an optimisation.
* The device-placement ops, for host backends (NumPy arrays in, NumPy arrays out): ``owns``
  is "not a device array", ``to_device`` the identity, ``to_host``/``zeros_like``/``astype``
  NumPy's. The cuda backend defines its own. ``scale`` and ``all_finite`` go through
  ``to_host``/``to_device`` and so work on every backend.

The op definitions carry their types as type comments, not annotations: an op's signature is
``spec.TABLE``'s text exactly as ``inspect.signature`` prints it, the same on every backend.
"""
from typing import TYPE_CHECKING, Any, Callable, Optional, Tuple

import numpy as np

from .arrays import Array, is_device_array, to_host as _to_host
from .shapes import check_conv, expect_shape

if TYPE_CHECKING:
    from numpy.typing import DTypeLike

    from .spec import Op

#: a backend's namespace of ops, for the type checker (its package, or an object holding them)
Ops = Any

#: how the shape checks name what a backward op's dout must match
_FORWARD_OUT = "the forward call's output (from ctx)"

#: the package whose kernels define every op that has no composite definition here
REFERENCE = "fastdl.kernels.reference"


# -- fused blocks ------------------------------------------------------------------------
def conv_relu_forward(ops, x, W, b, stride, pad):
    # type: (Ops, Array, Array, Array, int, int) -> Tuple[Array, Any]
    check_conv("conv_relu_forward", x, W, b)
    c, cctx = ops.conv_forward(x, W, b, stride, pad)
    out, mask = ops.relu_forward(c)
    return out, (cctx, mask)


def conv_relu_backward(ops, dout, ctx, need_dx=True):
    # type: (Ops, Array, Any, bool) -> Tuple[Optional[Array], Array, Array]
    cctx, mask = ctx
    expect_shape("conv_relu_backward", "dout", dout, tuple(mask.shape), _FORWARD_OUT)
    return ops.conv_backward(ops.relu_backward(dout, mask), cctx, need_dx)


def conv_relu_pool_forward(ops, x, W, b, stride, pad, pool_h, pool_w, pool_stride, pool_pad):
    # type: (Ops, Array, Array, Array, int, int, int, int, int, int) -> Tuple[Array, Any]
    check_conv("conv_relu_pool_forward", x, W, b)
    r, (cctx, mask) = conv_relu_forward(ops, x, W, b, stride, pad)
    out, pctx = ops.pool_forward(r, pool_h, pool_w, pool_stride, pool_pad)
    return out, (cctx, mask, pctx, tuple(out.shape))


def conv_relu_pool_backward(ops, dout, ctx, need_dx=True):
    # type: (Ops, Array, Any, bool) -> Tuple[Optional[Array], Array, Array]
    cctx, mask, pctx, out_shape = ctx
    expect_shape("conv_relu_pool_backward", "dout", dout, out_shape, _FORWARD_OUT)
    return conv_relu_backward(ops, ops.pool_backward(dout, pctx), (cctx, mask), need_dx)


# -- device placement (host backends) ----------------------------------------------------
def owns(ops, a):
    # type: (Ops, Array) -> bool
    return not is_device_array(a)


def to_device(ops, a):
    # type: (Ops, Array) -> Array
    if is_device_array(a):
        raise TypeError(f"backend {ops.NAME!r} computes on the host; this array is on the GPU "
                        "(move it with to_host first)")
    return a


def to_host(ops, a):
    # type: (Ops, Array) -> np.ndarray
    return _to_host(a)


def zeros_like(ops, a):
    # type: (Ops, Array) -> Array
    return np.zeros(tuple(a.shape), dtype=a.dtype)


def astype(ops, a, dtype):
    # type: (Ops, Array, DTypeLike) -> Array
    if np.dtype(a.dtype) == np.dtype(dtype):
        return a
    return ops.to_device(ops.to_host(a).astype(dtype))


# -- on every backend, through placement ---------------------------------------------------
def scale(ops, x, s):
    # type: (Ops, Array, float) -> Array
    h = ops.to_host(x)
    return ops.to_device(h * h.dtype.type(s))


def all_finite(ops, a):
    # type: (Ops, Array) -> bool
    return bool(np.isfinite(ops.to_host(a)).all())


# -- any other op: the reference kernel, on the host --------------------------------------------
def via_reference(op: "Op") -> Callable[..., Any]:
    """A definition of spec entry ``op`` (``spec.Op``) for a backend without a kernel for it:
    the reference kernel on host copies of the arguments, its array results moved back to the
    backend (``ctx`` stays on the host, for the same backend's backward). An update op (in
    place) is refused on arrays the host cannot update in place."""
    import importlib
    import inspect

    names = [n.strip() for n in op.returns.split(",") if n.strip()]

    ref = getattr(importlib.import_module(REFERENCE), op.name)

    def definition(ops: Ops, *args: Any, **kwargs: Any) -> Any:
        if op.family == "optim" and any(is_device_array(a) for a in args):
            raise TypeError(f"backend {ops.NAME!r} has no {op.name} kernel, and the reference "
                            "cannot update its arrays in place")
        result = ref(*[_to_host(a) for a in args], **{k: _to_host(v) for k, v in kwargs.items()})
        if not isinstance(result, tuple):
            return _back(ops, result)
        return tuple(v if n == "ctx" else _back(ops, v) for n, v in zip(names, result))

    ref_sig = inspect.signature(ref)
    params = [inspect.Parameter("ops", inspect.Parameter.POSITIONAL_ONLY)] + list(ref_sig.parameters.values())
    definition.__signature__ = ref_sig.replace(parameters=params)  # type: ignore[attr-defined]
    definition.__name__ = definition.__qualname__ = op.name
    definition.__doc__ = f"{op.name}{op.signature}: the reference kernel, run on the host."
    definition.via_reference = True  # type: ignore[attr-defined]  # kept by the bound op (functools.wraps copies __dict__)
    return definition


def reference_fallbacks(ops: Ops) -> Tuple[str, ...]:
    """Names of the ops of backend namespace ``ops`` that run the reference kernel on the host
    (``via_reference``): the ops it has no kernel and no composite definition for."""
    from .spec import TABLE
    return tuple(op.name for op in TABLE if getattr(getattr(ops, op.name, None), "via_reference", False))


def _back(ops: Ops, v: Any) -> Any:
    return ops.to_device(v) if isinstance(v, np.ndarray) else v
