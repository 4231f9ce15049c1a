"""Example inputs for every op of the spec, tiny to large: one definition for the tests, the
sweep (``fastdl.sweep``) and the asv suite.

Each op's ``family`` in ``spec.TABLE`` chooses its inputs here; a backward op runs its
forward op (``backward_of``) on the same backend first and is called as ``op(dout, *saved)``.
So a new element-wise or pooling op needs no edit here: its spec entry names the family.

``cases()`` lists ``(op, label, make)``; ``make(ops, dtype, strided=False)`` builds the
inputs with backend namespace ``ops`` and returns a ``Call``: calling it runs the op once
and returns what the op returned; ``call.inputs`` are the arrays handed to it (what an
update op changes in place). With ``strided=True`` the arrays built here are
non-contiguous views (every other element of a wider array) holding the same values.
The shapes are the book's (chapters 4-8) and straddle every size threshold of the numba
kernels (``MIN_PARALLEL`` in each module).
"""
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from .spec import BY_NAME, TABLE

#: a family's inputs: ``args(ops, dtype, strided)`` -> the op's positional arguments
Args = Callable[..., Tuple[Any, ...]]
#: ``make(ops, dtype, strided=False)`` -> a ``Call``
Make = Callable[..., "Call"]
#: a family's shape lists (one entry of ``SIZES``)
Sizes = Dict[str, list]

#: element-wise shapes: one sample of ch04's hidden layer, ch04/ch05's batch (100x50), a
#: 100,000-element layer, ch04's evaluation on 10,000 images (10000x50), SimpleConvNet's
#: activation (100x30x24x24)
ELEMENTWISE_SHAPES = [(1, 50), (1, 300), (100, 50), (100, 1000), (10000, 50), (100, 30, 24, 24)]
SOFTMAX_SHAPES = [(1, 10), (100, 10), (1000, 10), (10000, 10), (100, 1000)]
#: (N, D, M): ch04's layer 1 and 2 on one sample, a batch and the test set, SimpleConvNet's
#: and DeepConvNet's first Affine
AFFINE_SHAPES = [(1, 784, 50), (1, 50, 10), (100, 784, 50), (100, 50, 10), (100, 784, 100),
                 (10000, 784, 50), (10000, 50, 10), (100, 4320, 100), (100, 1024, 50)]
BN_SHAPES = [(2, 100), (100, 100), (1000, 100), (10000, 100), (100, 4320)]
#: (x shape, W shape, stride, pad)
CONV_SHAPES = [((1, 1, 28, 28), (30, 1, 5, 5), 1, 0), ((10, 1, 28, 28), (30, 1, 5, 5), 1, 0),
               ((100, 1, 28, 28), (30, 1, 5, 5), 1, 0), ((1, 16, 28, 28), (16, 16, 3, 3), 1, 1),
               ((100, 16, 28, 28), (16, 16, 3, 3), 1, 1), ((100, 32, 14, 14), (32, 32, 3, 3), 1, 2),
               ((1, 64, 7, 7), (64, 64, 3, 3), 1, 1), ((100, 64, 7, 7), (64, 64, 3, 3), 1, 1),
               ((2, 3, 9, 9), (4, 3, 3, 3), 2, 1), ((100, 3, 28, 28), (8, 3, 3, 3), 2, 1)]
#: (x shape, window, stride, pad)
POOL_SHAPES = [((1, 30, 24, 24), 2, 2, 0), ((10, 30, 24, 24), 2, 2, 0), ((100, 30, 24, 24), 2, 2, 0),
               ((100, 64, 8, 8), 2, 2, 0), ((100, 16, 28, 28), 3, 2, 1)]
#: parameter sizes: a bias, a 784x50 weight, SimpleConvNet's 4320x100, a million
OPTIM_SIZES = [10, 50, 39200, 432000, 1000000]
#: the pooling a fused block applies after its Relu (the book's 2x2, stride 2)
BLOCK_POOL = (2, 2, 2, 0)

#: the shape lists by size: "book" (above) and "tiny", for Numba's CUDA simulator, which runs
#: each GPU thread as a Python thread (odd sizes, so launch edges are exercised)
SIZES: Dict[str, Sizes] = {
    "book": {"elementwise": ELEMENTWISE_SHAPES, "softmax": SOFTMAX_SHAPES, "affine": AFFINE_SHAPES,
             "batchnorm": BN_SHAPES, "conv": CONV_SHAPES, "pool": POOL_SHAPES, "optim": OPTIM_SIZES},
    "tiny": {"elementwise": [(3, 7)], "softmax": [(3, 5)], "affine": [(3, 7, 5)], "batchnorm": [(4, 5)],
             "conv": [((1, 2, 5, 5), (2, 2, 3, 3), 1, 1), ((2, 1, 5, 5), (2, 1, 3, 3), 2, 1)],
             "pool": [((2, 2, 6, 6), 2, 2, 0), ((1, 2, 5, 5), 3, 2, 1)], "optim": [13]},
}


class Call:
    """One op call with its inputs built: ``call()`` runs it; ``inputs`` are its array arguments."""

    def __init__(self, fn: Callable[..., Any], args: Sequence[Any],
                 inputs: Optional[Iterable[Any]] = None) -> None:
        self.fn, self.args = fn, args
        self.inputs = list(inputs if inputs is not None else
                           (a for a in args if isinstance(a, np.ndarray)))

    def __call__(self) -> Any:
        return self.fn(*self.args)


def array(shape: Tuple[int, ...], dtype: Any, seed: int = 0, kind: str = "normal",
          strided: bool = False) -> np.ndarray:
    """Seeded values of ``shape``: standard normal, or uniform in [0, 1) with kind="uniform";
    with ``strided`` a non-contiguous view (every other element of the last axis) of the same
    values."""
    r = np.random.default_rng(seed)
    a = (r.standard_normal(shape) if kind == "normal" else r.random(shape)).astype(dtype)
    return _strided(a) if strided else a


def _strided(a: np.ndarray) -> np.ndarray:
    """A non-contiguous view holding a's values: every other element of the last axis of a
    twice-as-wide array (a itself for a 0-d array)."""
    if not a.ndim:
        return a
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def label(shape: Iterable[int]) -> str:
    return "x".join(str(s) for s in shape)


# -- forward inputs of each family: [(label, args(ops, dtype, strided))] -------------------------
def _elementwise(name: str, sz: Sizes) -> List[Tuple[str, Args]]:
    return [(label(sh), lambda ops, dt, st, sh=sh: (array(sh, dt, strided=st),)) for sh in sz["elementwise"]]


def _pool(name: str, sz: Sizes) -> List[Tuple[str, Args]]:
    return [(f"{label(xs)} {k}x{k} s{s} p{p}",
             lambda ops, dt, st, xs=xs, k=k, s=s, p=p: (array(xs, dt, strided=st), k, k, s, p))
            for xs, k, s, p in sz["pool"]]


def _conv_args(xs: Tuple[int, ...], ws: Tuple[int, ...], s: int, p: int, dt: Any,
               st: bool) -> Tuple[Any, ...]:
    return (array(xs, dt, kind="uniform", strided=st), array(ws, dt, 1, strided=st) * 0.1,
            array((ws[0],), dt, 2), s, p)


def _conv_label(xs: Tuple[int, ...], ws: Tuple[int, ...], s: int, p: int) -> str:
    return f"{label(xs)} * {label(ws)} s{s} p{p}"


def _conv(name: str, sz: Sizes) -> List[Tuple[str, Args]]:
    out: List[Tuple[str, Args]] = []
    for xs, ws, s, p in sz["conv"]:
        fh, fw = ws[2], ws[3]
        args: Args
        if name == "im2col":
            args = (lambda ops, dt, st, xs=xs, fh=fh, fw=fw, s=s, p=p:
                    (array(xs, dt, kind="uniform", strided=st), fh, fw, s, p))
        elif name == "col2im":
            args = (lambda ops, dt, st, xs=xs, fh=fh, fw=fw, s=s, p=p:
                    (_fresh(ops.im2col(array(xs, dt, kind="uniform"), fh, fw, s, p), st), xs, fh, fw, s, p))
        else:
            args = lambda ops, dt, st, xs=xs, ws=ws, s=s, p=p: _conv_args(xs, ws, s, p, dt, st)
        out.append((_conv_label(xs, ws, s, p), args))
    return out


def _block(name: str, sz: Sizes) -> List[Tuple[str, Args]]:
    pool: Tuple[int, ...] = BLOCK_POOL if "pool" in name else ()
    return [(_conv_label(xs, ws, s, p),
             lambda ops, dt, st, xs=xs, ws=ws, s=s, p=p: _conv_args(xs, ws, s, p, dt, st) + pool)
            for xs, ws, s, p in sz["conv"] if s == 1]


def _fresh(a: Any, strided: bool) -> np.ndarray:
    """A host copy of an op's result, strided if asked (col2im's input comes from im2col)."""
    a = np.asarray(a if isinstance(a, np.ndarray) else a.copy_to_host())
    return _strided(a) if strided else a


FORWARD_FAMILIES = {"elementwise": _elementwise, "pool": _pool, "conv": _conv, "block": _block}


# -- families whose ops take their own inputs --------------------------------------------------
def _affine(name: str, sz: Sizes) -> List[Tuple[str, Make]]:
    out: List[Tuple[str, Make]] = []
    for N, D, M in sz["affine"]:
        def make(ops: Any, dt: Any, st: bool = False, N: int = N, D: int = D, M: int = M) -> Call:
            x, W, b = array((N, D), dt, strided=st), array((D, M), dt, 1) * 0.05, array((M,), dt, 2)
            if name == "affine_forward":
                return _idle(Call(ops.affine_forward, (x, W, b)))
            return _idle(Call(ops.affine_backward, (array((N, M), dt, 3, strided=st), x, W)))
        out.append((f"{N}x{D} @ {D}x{M}", make))
    return out


def _softmax(name: str, sz: Sizes) -> List[Tuple[str, Make]]:
    out: List[Tuple[str, Make]] = []
    for sh in sz["softmax"]:
        def make(ops: Any, dt: Any, st: bool = False, sh: Tuple[int, ...] = sh) -> Call:
            x = array(sh, dt, strided=st) * 3
            t = np.random.default_rng(4).integers(0, sh[1], size=sh[0])
            if name == "softmax":
                return Call(ops.softmax, (x,))
            if name == "softmax_loss_forward":
                return Call(ops.softmax_loss_forward, (x, t))
            _, y = ops.softmax_loss_forward(x, t)
            return Call(ops.softmax_loss_backward, (y, t, 1.0))
        out.append((label(sh), make))
    return out


def _batchnorm(name: str, sz: Sizes) -> List[Tuple[str, Make]]:
    out: List[Tuple[str, Make]] = []
    for sh in sz["batchnorm"]:
        for train in ((True, False) if name == "batchnorm_forward" else (True,)):
            def make(ops: Any, dt: Any, st: bool = False, sh: Tuple[int, ...] = sh, train: bool = train) -> Call:
                x, D = array(sh, dt, strided=st), sh[1]
                g, b = array((D,), dt, 5) * 0.1 + 1, array((D,), dt, 6) * 0.1
                rm, rv = np.zeros(D, dt), np.ones(D, dt)
                if name == "batchnorm_forward":
                    return Call(ops.batchnorm_forward, (x, g, b, rm, rv, 0.9, 1e-6, train), [x, g, b, rm, rv])
                _, ctx = ops.batchnorm_forward(x, g, b, rm, rv, 0.9, 1e-6, True)
                return Call(ops.batchnorm_backward, (array(sh, dt, 3, strided=st), ctx))
            out.append((label(sh) + ("" if name != "batchnorm_forward" else " train" if train else " eval"), make))
    return out


def _dropout(name: str, sz: Sizes) -> List[Tuple[str, Make]]:
    out: List[Tuple[str, Make]] = []
    for sh in sz["elementwise"]:
        def make(ops: Any, dt: Any, st: bool = False, sh: Tuple[int, ...] = sh) -> Call:
            mask = np.random.default_rng(1).random(sh) > 0.5
            return Call(ops.dropout_apply, (array(sh, dt, strided=st), mask))
        out.append((label(sh), make))
    return out


#: each update op's arguments from (param, grad, state1, state2): the states it takes, then its scalars
OPTIM_ARGS: Dict[str, Callable[[Any, Any, Any, Any], Tuple[Any, ...]]] = {"sgd_update": lambda p, g, s1, s2: (p, g, 0.01),
               "momentum_update": lambda p, g, s1, s2: (p, g, s1, 0.01, 0.9),
               "nesterov_update": lambda p, g, s1, s2: (p, g, s1, 0.01, 0.9),
               "adagrad_update": lambda p, g, s1, s2: (p, g, s1, 0.01),
               "rmsprop_update": lambda p, g, s1, s2: (p, g, s1, 0.01, 0.99),
               "adam_update": lambda p, g, s1, s2: (p, g, s1, s2, 0.001, 0.9, 0.999)}


def _optim(name: str, sz: Sizes) -> List[Tuple[str, Make]]:
    out: List[Tuple[str, Make]] = []
    for n in sz["optim"]:
        def make(ops: Any, dt: Any, st: bool = False, n: int = n) -> Call:
            # state starts non-zero (as after some steps), so every term of the rule counts
            # updated in place, so they live where the backend computes (identity on the host)
            p, g = ops.to_device(array((n,), dt)), ops.to_device(array((n,), dt, 1))
            s1 = ops.to_device(np.abs(array((n,), dt, 2)) * 0.1)
            s2 = ops.to_device(np.abs(array((n,), dt, 3)) * 0.01)
            args = OPTIM_ARGS[name](p, g, s1, s2)
            return Call(getattr(ops, name), args, [a for a in args if hasattr(a, "shape")])
        out.append((str(n), make))
    return out


OWN_FAMILIES = {"affine": _affine, "softmax": _softmax, "batchnorm": _batchnorm, "dropout": _dropout,
                "optim": _optim}


def _idle(call: Call) -> Call:
    """call with Numba's threads counted as idle (what earlier cases did is forgotten), as in a
    network of Affine layers alone: the numba backend then uses NumPy's product."""
    try:
        from .cpu import _chunks
    except ImportError:
        return call
    fn = call.fn

    def run(*args: Any) -> Any:
        _chunks._last_parallel = float("-inf")
        return fn(*args)
    call.fn = run
    return call


def split(result: Any) -> Tuple[Any, Tuple[Any, ...]]:
    """(out, saved) of a forward op's result: what a backward op takes after dout."""
    if isinstance(result, tuple):
        return result[0], result[1:]
    return result, (result,)


def _forward_case(name: str, args: Args) -> Make:
    def make(ops: Any, dt: Any, strided: bool = False) -> Call:
        return Call(getattr(ops, name), args(ops, dt, strided))
    return make


def _backward_case(name: str, forward: str, args: Args) -> Make:
    def make(ops: Any, dt: Any, strided: bool = False) -> Call:
        out, saved = split(getattr(ops, forward)(*args(ops, dt, False)))
        shape = tuple(int(v) for v in out.shape)
        return Call(getattr(ops, name), (array(shape, dt, 3, strided=strided),) + tuple(saved))
    return make


def op_cases(name: str, size: Union[str, Sizes] = "book") -> List[Tuple[str, Make]]:
    """[(label, make)] of op ``name`` on the shapes ``SIZES[size]`` (or on ``size`` itself, a dict
    of shape lists by family as one entry of ``SIZES``); [] for the device-placement ops (nothing
    to time)."""
    op, sz = BY_NAME[name], (SIZES[size] if isinstance(size, str) else size)
    if op.family in OWN_FAMILIES:
        return OWN_FAMILIES[op.family](name, sz)
    if op.family not in FORWARD_FAMILIES:
        return []
    if op.backward_of:
        return [(lab, _backward_case(name, op.backward_of, args))
                for lab, args in FORWARD_FAMILIES[op.family](op.backward_of, sz)]
    return [(lab, _forward_case(name, args)) for lab, args in FORWARD_FAMILIES[op.family](name, sz)]


def cases(size: str = "book") -> List[Tuple[str, str, Make]]:
    """[(op, label, make)] for every op of the spec that computes, on the shapes ``SIZES[size]``
    ("book": tiny to large)."""
    return [(op.name, lab, make) for op in TABLE for lab, make in op_cases(op.name, size)]


def timed_ops() -> List[str]:
    """Names of the ops ``cases`` covers: every op of the spec except device placement."""
    return [op.name for op in TABLE if op.family != "device"]
