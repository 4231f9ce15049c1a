"""Output-size helpers and the argument checks every backend shares (shapes only, plain integers).

Arrays are ``Any`` here: a host ``np.ndarray`` or a backend's device array (anything with ``shape``).
"""
from typing import Any, Optional, Tuple

import numpy as np

Shape = Tuple[int, ...]


def conv_output_size(input_size: int, filter_size: int, stride: int = 1, pad: int = 0) -> int:
    """Number of window positions along one axis: ``(input + 2*pad - filter) // stride + 1``.

    Returns an ``int`` (the book's version returns a float). Raises ``ValueError``
    when the filter does not fit in the padded input or the sizes are invalid.
    """
    if (type(input_size) is int and type(filter_size) is int and type(stride) is int and type(pad) is int
            and stride >= 1 and pad >= 0 and 1 <= filter_size <= input_size + 2 * pad):
        return (input_size + 2 * pad - filter_size) // stride + 1      # plain valid ints: no more to check
    for name, v in (("input_size", input_size), ("filter_size", filter_size),
                    ("stride", stride), ("pad", pad)):
        if isinstance(v, bool) or not isinstance(v, int) and not hasattr(v, "__index__"):
            raise TypeError(f"{name} must be an integer, got {type(v).__name__} {v!r}")
    input_size, filter_size, stride, pad = (int(v) for v in (input_size, filter_size, stride, pad))
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if pad < 0:
        raise ValueError(f"pad must be >= 0, got {pad}")
    if filter_size < 1:
        raise ValueError(f"filter size must be >= 1, got {filter_size}")
    if filter_size > input_size + 2 * pad:
        raise ValueError(
            f"window of size {filter_size} is larger than the padded input "
            f"({input_size} + 2*{pad} = {input_size + 2 * pad})")
    return (input_size + 2 * pad - filter_size) // stride + 1


def window_output_hw(H: int, W: int, filter_h: int, filter_w: int, stride: int, pad: int) -> Tuple[int, int]:
    """(OH, OW) for a filter_h x filter_w window sliding over an H x W input."""
    return (conv_output_size(H, filter_h, stride, pad),
            conv_output_size(W, filter_w, stride, pad))


# -- argument checks every backend's ops run before their kernels --------------------------------
# A compiled kernel takes its loop bounds from some of its arrays and indexes the others with
# them, without bounds checks; an argument of another shape (an optimizer's state kept from a
# parameter of another size, a mask or ctx from another call, weights that do not match x) would
# make it read or write outside its arrays. Every op of every backend therefore compares the
# shapes of all the arrays it indexes, before any kernel runs, with these helpers (so all
# backends raise the same message). They compare shape tuples only: no pass over the data.

def shape_of(op: str, name: str, a: Any) -> Shape:
    """a's shape as a tuple; TypeError when a is not an array."""
    s = getattr(a, "shape", None)
    if s is None:
        raise TypeError(f"{op}: {name} must be an array, got {type(a).__name__}")
    return s if type(s) is tuple else tuple(int(v) for v in s)


def expect_shape(op: str, name: str, a: Any, shape: Shape, what: str) -> None:
    """ValueError unless array ``a`` (argument ``name`` of ``op``) has ``shape``, the shape of
    ``what`` (named in the message)."""
    got = shape_of(op, name, a)
    if got != shape:
        raise ValueError(f"{op}: {name} has shape {got} but {what} has shape {tuple(shape)}; "
                         "they must match")


def expect_ndim(op: str, name: str, a: Any, ndim: int, layout: str) -> Shape:
    """The shape of ``a`` after checking it has ``ndim`` axes (``layout`` names them)."""
    got = shape_of(op, name, a)
    if len(got) != ndim:
        raise ValueError(f"{op}: {name} must be {ndim}-D {layout}, got shape {got}")
    return got


def same_shapes(op: str, ref_name: str, ref: Any, *others: Tuple[str, Any]) -> None:
    """Every (name, array) pair of ``others`` has the shape of ``ref`` (argument ``ref_name``)."""
    want = getattr(ref, "shape", None)
    if type(want) is tuple:                # the shapes compared once: what a call that passes pays
        for _, a in others:
            if getattr(a, "shape", None) != want:
                break
        else:
            return
    want = shape_of(op, ref_name, ref)
    for name, a in others:
        expect_shape(op, name, a, want, ref_name)


def check_conv(op: str, x: Any, W: Any, b: Any) -> Tuple[Shape, Shape]:
    """x (N, C, H, W), W (FN, C, FH, FW), b (FN,): returns (x shape, W shape)."""
    xs = expect_ndim(op, "x", x, 4, "(N, C, H, W)")
    ws = expect_ndim(op, "W", W, 4, "(FN, C, FH, FW)")
    if xs[1] != ws[1]:
        raise ValueError(f"{op}: x of shape {xs} has {xs[1]} channels but W of shape {ws} has {ws[1]}")
    expect_shape(op, "b", b, (ws[0],), "W's filter count (FN,)")
    return xs, ws


def conv_out_shape(x_shape: Shape, w_shape: Shape, stride: int, pad: int) -> Tuple[int, int, int, int]:
    """(N, FN, OH, OW) of a convolution whose sizes were checked when its forward ran."""
    N, _, H, Wd = x_shape
    FN, _, FH, FW = w_shape
    return (N, FN, (H + 2 * pad - FH) // stride + 1, (Wd + 2 * pad - FW) // stride + 1)


def pool_out_shape(x_shape: Shape, pool_h: int, pool_w: int, stride: int, pad: int) -> Tuple[int, int, int, int]:
    """(N, C, OH, OW) of a pooling whose sizes were checked when its forward ran."""
    N, C, H, Wd = x_shape
    return (N, C, (H + 2 * pad - pool_h) // stride + 1, (Wd + 2 * pad - pool_w) // stride + 1)


def check_col(op: str, col: Any, input_shape: Shape, filter_h: int, filter_w: int, stride: int,
              pad: int) -> Tuple[int, int, int, int, int, int]:
    """col2im's col against input_shape: (N*OH*OW, C*FH*FW). Returns (N, C, H, W, OH, OW)."""
    N, C, H, Wd = (int(s) for s in input_shape)
    OH, OW = window_output_hw(H, Wd, filter_h, filter_w, stride, pad)
    expect_shape(op, "col", col, (N * OH * OW, C * filter_h * filter_w),
                 f"input_shape {(N, C, H, Wd)}'s columns (N*OH*OW, C*FH*FW)")
    return N, C, H, Wd, OH, OW


def check_affine(op: str, x: Any, W: Any, b: Optional[Any] = None, dout: Optional[Any] = None) -> None:
    """x (N, D), W (D, M) of floats (the result's dtype), b (M,), dout (N, M)."""
    try:                   # the shapes compared once, as tuples: what a call that passes pays
        xs, ws = x.shape, W.shape
        if (len(xs) == 2 and len(ws) == 2 and xs[1] == ws[0] and W.dtype.kind == "f"
                and (b is None or b.shape == (ws[1],)) and (dout is None or dout.shape == (xs[0], ws[1]))):
            return
    except (AttributeError, TypeError):
        pass               # the checks below name what is wrong
    xs = expect_ndim(op, "x", x, 2, "(N, D)")
    ws = expect_ndim(op, "W", W, 2, "(D, M)")
    if np.dtype(W.dtype).kind != "f":
        raise TypeError(f"{op}: W must be a float array (the result takes its dtype), got dtype {np.dtype(W.dtype)}")
    if xs[1] != ws[0]:
        raise ValueError(f"{op}: x of shape {xs} has {xs[1]} features but W of shape {ws} expects {ws[0]}")
    if b is not None:
        expect_shape(op, "b", b, (ws[1],), "W's outputs (M,)")
    if dout is not None:
        expect_shape(op, "dout", dout, (xs[0], ws[1]), "the output (N, M) of x @ W")


def check_batchnorm(op: str, x: Any, gamma: Any, beta: Any, running_mean: Any, running_var: Any) -> None:
    xs = expect_ndim(op, "x", x, 2, "(N, D)")
    want = (xs[1],)
    for name, a in (("gamma", gamma), ("beta", beta), ("running_mean", running_mean),
                    ("running_var", running_var)):
        expect_shape(op, name, a, want, "x's features (D,)")


def check_labels_shape(op: str, scores_name: str, scores: Any, t: Any) -> Shape:
    """scores (N, K) and labels t (N,): returns (N, K)."""
    try:                   # the shapes compared once, as tuples: what a call that passes pays
        ss = scores.shape
        if type(ss) is tuple and len(ss) == 2 and t.shape == (ss[0],):
            return ss
    except AttributeError:
        pass               # the checks below name what is wrong
    ss = expect_ndim(op, scores_name, scores, 2, "(N, K)")
    expect_shape(op, "t", t, (ss[0],), f"{scores_name}'s batch (N,)")
    return ss


def bad_label(op: str, t: Any, k: int) -> ValueError:
    """The ValueError for labels t (a host integer array) holding a value outside [0, k)."""
    t = np.asarray(t)
    v = t[(t < 0) | (t >= k)]
    first = v.flat[0] if v.size else "?"
    return ValueError(f"{op}: t holds label {first} outside the classes 0..{k - 1}")


def check_label_range(op: str, t: Any, k: int) -> None:
    """ValueError unless every label of the host integer array t lies in [0, k) (one pass: signed
    labels are read as unsigned ones of their size, where a negative label is larger than any k)."""
    if not t.size:
        return
    dt = t.dtype
    unsigned = _UNSIGNED.get(dt) if dt.kind == "i" else dt if dt.kind == "u" else None
    if (np.maximum.reduce(t.view(unsigned), axis=None) >= k if unsigned is not None
            else t.min() < 0 or t.max() >= k):
        raise bad_label(op, t, k)


#: the unsigned integer dtype of each signed one's size (``check_label_range``)
_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}
