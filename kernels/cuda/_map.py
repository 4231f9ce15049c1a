"""Element-wise cuda kernels from one scalar function (see ``kernels/scalars.py``).

``elementwise(scalar, n_in, n_out)`` compiles the scalar's Python source (``py_func``) as a
device function and returns ``run(outs, ins, params=())``: one thread per element of the
flattened arrays, ``outs[k][i]`` from ``scalar(ins[0][i], ..., *params)``; ``params`` is a
tuple of scalars of the arrays' dtype.

``update(scalar, n_state)`` does the same for an in-place update of a parameter, its gradient and
``n_state`` state arrays (the optimizers' ``*_rule`` scalars) and returns ``run(arrays, params)``:
``p[i], s0[i], ... = scalar(p[i], g[i], s0[i], ..., *params)`` (just ``p[i]`` without state).
"""
from numba import cuda

from . import launch
from .arrays import flat


def elementwise(scalar, n_in=1, n_out=1):
    fn = cuda.jit(device=True)(getattr(scalar, "py_func", scalar))
    if (n_in, n_out) == (1, 1):
        @cuda.jit
        def kernel(o0, a0, p):
            i = cuda.grid(1)
            if i < o0.size:
                o0[i] = fn(a0[i], *p)
    elif (n_in, n_out) == (2, 1):
        @cuda.jit
        def kernel(o0, a0, a1, p):
            i = cuda.grid(1)
            if i < o0.size:
                o0[i] = fn(a0[i], a1[i], *p)
    elif (n_in, n_out) == (1, 2):
        @cuda.jit
        def kernel(o0, o1, a0, p):
            i = cuda.grid(1)
            if i < o0.size:
                r = fn(a0[i], *p)
                o0[i] = r[0]
                o1[i] = r[1]
    else:
        raise ValueError(f"n_in, n_out = {n_in}, {n_out}: element-wise kernels take 1 or 2 inputs "
                         "and give 1 output, or take 1 input and give 2")

    def run(outs, ins, params=()):
        n = outs[0].size
        if n:
            kernel[launch.grid1d(n)](*[flat(o) for o in outs], *[flat(a) for a in ins], tuple(params))
    run.kernel = kernel  # type: ignore[attr-defined]
    return run


def update(scalar, n_state=0):
    fn = cuda.jit(device=True)(getattr(scalar, "py_func", scalar))
    if n_state == 0:
        @cuda.jit
        def kernel(p, g, q):
            i = cuda.grid(1)
            if i < p.size:
                p[i] = fn(p[i], g[i], *q)
    elif n_state == 1:
        @cuda.jit
        def kernel(p, g, s0, q):
            i = cuda.grid(1)
            if i < p.size:
                r = fn(p[i], g[i], s0[i], *q)
                p[i] = r[0]
                s0[i] = r[1]
    elif n_state == 2:
        @cuda.jit
        def kernel(p, g, s0, s1, q):
            i = cuda.grid(1)
            if i < p.size:
                r = fn(p[i], g[i], s0[i], s1[i], *q)
                p[i] = r[0]
                s0[i] = r[1]
                s1[i] = r[2]
    else:
        raise ValueError(f"n_state = {n_state}: updates take 0, 1 or 2 state arrays")

    def run(arrays, params=()):
        n = arrays[0].size
        if n:
            kernel[launch.grid1d(n)](*[flat(a) for a in arrays], tuple(params))
    run.kernel = kernel  # type: ignore[attr-defined]
    return run
