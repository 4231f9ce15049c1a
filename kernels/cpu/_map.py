"""Element-wise kernels built from one scalar ``@njit`` function.

``elementwise(module, name, scalar, n_in, n_out)`` makes the two compiled kernels every
element-wise op of this backend has, and puts them in ``module``'s namespace:

``_<name>_span(o0[, o1], a0[, a1], params)``
    the loop ``o[i] = scalar(a0[i][, a1[i]], *params)`` over whole flat arrays (a scalar with
    two outputs returns a tuple). The loop runs from 0 over the span (see ``activations``: a
    loop over ``range(lo, hi)`` is not vectorised).
``_<name>(o0[, o1], a0[, a1], params, chunks)``
    the driver: the span on the calling thread when ``chunks == 1``, else one slice per chunk
    under ``prange`` (disjoint writes), as every parallel kernel here (``_chunks``).

``params`` is a tuple of scalars of the arrays' dtype (``()`` for an op without parameters):
an op's parameters from ``kernels/spec.py`` reach the scalar as its trailing arguments.
``update(module, name, scalar, n_state)`` makes the same pair for an in-place update of a
parameter, its gradient and ``n_state`` state arrays (the optimizers):
``p[i], s0[i], ... = scalar(p[i], g[i], s0[i], ..., *params)`` (just ``p[i]`` without state).

Both kernels are ``cache=True``; they are named ``module.name`` for Numba's cache and for
``compiled_kernels`` and carry a hash of the scalar's bytecode in their closure, so editing the
scalar function recompiles them.
"""
import hashlib
import marshal
import types
from typing import Any

from numba import njit, prange

# The loop templates below read ``scalar`` and ``span_`` as globals, which ``_rebuild`` binds per
# compiled copy; declared here for the type checker (a declaration binds nothing). The templates
# themselves are numba source and stay unannotated; their variants per arity differ in signature.
scalar: Any
span_: Any


def _stamp(scalar):
    """A hash of the scalar's code: part of the generated kernels' cache key (closure contents)."""
    code = getattr(scalar, "py_func", scalar).__code__
    return hashlib.sha256(marshal.dumps(code)).hexdigest()


def _rebuild(fn, module, name, names):
    """``fn`` with ``names`` as its globals (the scalar, the span) and named ``module.name``.
    Its closure holds only the stamp (a string), so Numba's cache key is the same in every
    process (a dispatcher in a closure would pickle differently in each)."""
    g = dict(fn.__globals__, **names)
    out = types.FunctionType(fn.__code__, g, name, fn.__defaults__, fn.__closure__)
    out.__module__ = module
    out.__qualname__ = f"{module.rsplit('.', 1)[-1]}.{name}"
    return out


def _loops(n_in, n_out, stamp):
    """(span, driver) Python functions for a scalar with n_in inputs and n_out outputs; both read
    ``scalar`` and ``span_`` as globals (see ``_rebuild``)."""
    if (n_in, n_out) == (1, 1):
        def span(o0, a0, p):
            stamp
            for i in range(o0.size):
                o0[i] = scalar(a0[i], *p)

        def driver(o0, a0, p, chunks):
            stamp
            n = o0.size
            if chunks == 1:
                span_(o0, a0, p)
            else:
                for c in prange(chunks):
                    lo, hi = c * n // chunks, (c + 1) * n // chunks
                    span_(o0[lo:hi], a0[lo:hi], p)
    elif (n_in, n_out) == (2, 1):
        def span(o0, a0, a1, p):  # type: ignore[misc]
            stamp
            for i in range(o0.size):
                o0[i] = scalar(a0[i], a1[i], *p)

        def driver(o0, a0, a1, p, chunks):  # type: ignore[misc]
            stamp
            n = o0.size
            if chunks == 1:
                span_(o0, a0, a1, p)
            else:
                for c in prange(chunks):
                    lo, hi = c * n // chunks, (c + 1) * n // chunks
                    span_(o0[lo:hi], a0[lo:hi], a1[lo:hi], p)
    elif (n_in, n_out) == (1, 2):
        def span(o0, o1, a0, p):  # type: ignore[misc]
            stamp
            for i in range(o0.size):
                r = scalar(a0[i], *p)
                o0[i] = r[0]
                o1[i] = r[1]

        def driver(o0, o1, a0, p, chunks):  # type: ignore[misc]
            stamp
            n = o0.size
            if chunks == 1:
                span_(o0, o1, a0, p)
            else:
                for c in prange(chunks):
                    lo, hi = c * n // chunks, (c + 1) * n // chunks
                    span_(o0[lo:hi], o1[lo:hi], a0[lo:hi], p)
    else:
        raise ValueError(f"n_in, n_out = {n_in}, {n_out}: element-wise kernels take 1 or 2 inputs "
                         "and give 1 output, or take 1 input and give 2")
    return span, driver


def _update_loops(n_state, stamp):
    """(span, driver) for an in-place update with n_state state arrays (see ``update``)."""
    if n_state == 0:
        def span(p, g, q):
            stamp
            for i in range(p.size):
                p[i] = scalar(p[i], g[i], *q)

        def driver(p, g, q, chunks):
            stamp
            n = p.size
            if chunks == 1:
                span_(p, g, q)
            else:
                for c in prange(chunks):
                    lo, hi = c * n // chunks, (c + 1) * n // chunks
                    span_(p[lo:hi], g[lo:hi], q)
    elif n_state == 1:
        def span(p, g, s0, q):  # type: ignore[misc]
            stamp
            for i in range(p.size):
                r = scalar(p[i], g[i], s0[i], *q)
                p[i] = r[0]
                s0[i] = r[1]

        def driver(p, g, s0, q, chunks):  # type: ignore[misc]
            stamp
            n = p.size
            if chunks == 1:
                span_(p, g, s0, q)
            else:
                for c in prange(chunks):
                    lo, hi = c * n // chunks, (c + 1) * n // chunks
                    span_(p[lo:hi], g[lo:hi], s0[lo:hi], q)
    elif n_state == 2:
        def span(p, g, s0, s1, q):  # type: ignore[misc]
            stamp
            for i in range(p.size):
                r = scalar(p[i], g[i], s0[i], s1[i], *q)
                p[i] = r[0]
                s0[i] = r[1]
                s1[i] = r[2]

        def driver(p, g, s0, s1, q, chunks):  # type: ignore[misc]
            stamp
            n = p.size
            if chunks == 1:
                span_(p, g, s0, s1, q)
            else:
                for c in prange(chunks):
                    lo, hi = c * n // chunks, (c + 1) * n // chunks
                    span_(p[lo:hi], g[lo:hi], s0[lo:hi], s1[lo:hi], q)
    else:
        raise ValueError(f"n_state = {n_state}: updates take 0, 1 or 2 state arrays")
    return span, driver


def update(module, name, scalar, n_state=0):
    """Compile ``_<name>_span`` and the driver ``_<name>`` of an in-place update from ``scalar``
    (see above) and put both in ``module``; returns the driver, called as
    ``driver(p, g, *state, params, chunks)``."""
    return _compile(module, name, scalar, _update_loops(n_state, _stamp(scalar)), False)


def _compile(module, name, scalar, loops, fastmath):
    modname = module["__name__"]
    span, driver = loops
    span_kernel = njit(cache=True, error_model="numpy", fastmath=fastmath)(
        _rebuild(span, modname, f"_{name}_span", {"scalar": scalar}))
    driver_kernel = njit(parallel=True, cache=True, error_model="numpy")(
        _rebuild(driver, modname, f"_{name}", {"span_": span_kernel}))
    module[f"_{name}_span"] = span_kernel
    module[f"_{name}"] = driver_kernel
    return driver_kernel


def elementwise(module, name, scalar, n_in=1, n_out=1, fastmath=False):
    """Compile ``_<name>_span`` and the driver ``_<name>`` from ``scalar`` (an ``@njit``
    function of n_in element values and the op's parameters) and put both in ``module`` (a
    module's ``globals()``); returns the driver. ``fastmath`` is the span's (e.g.
    ``{"contract"}``); the driver is parallel, ``error_model="numpy"`` as the span."""
    return _compile(module, name, scalar, _loops(n_in, n_out, _stamp(scalar)), fastmath)
