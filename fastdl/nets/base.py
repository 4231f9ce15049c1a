"""What the book's networks have in common: predict / loss / accuracy / gradient,
numerical_gradient, and saving and loading parameters.

Subclasses build ``self.params`` (name -> array), ``self.layers`` (an
OrderedDict or a list, as in the book), ``self.last_layer`` and
``self._grad_of``: name -> (layer, attribute) telling ``gradient`` where each
parameter's gradient is found after ``backward``.

``Net.summary`` lists the steps of a forward pass with their output shapes, parameters and FLOPs
(``Summary``), from each layer's ``cost`` (``fastdl.layers``); nothing is computed.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple, Sequence

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from .. import backend, fusion
from .._files import atomic_write
from .._text import one_line
from .._checks import finite, positive_int
from ..gradient import numerical_gradient as _numerical_gradient
from ..layers import Array, Shape, _as, _kept, run_forward

_FORMAT_KEY = "__fastdl_params__"
_META_KEY = "__fastdl_meta__"
#: prefix of the keys under which ``save_params(..., extra=...)`` stores its arrays
EXTRA_PREFIX = "__extra__/"
_FORMAT_VERSION = 1


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")     # an .npz is a zip archive (the second: an empty one)
_NPY_MAGIC = b"\x93NUMPY"


def _one_line(exc: BaseException) -> str:
    return one_line(exc, with_type=True)


def _file_kind(path: str, who: str) -> tuple[str, bytes]:
    """What a parameter file holds, judged by its first bytes, never by its name:
    'npz' (what save_params writes), 'pickle' (the book's format) or 'unknown'.
    Raises FileNotFoundError, IsADirectoryError, or ValueError for an empty file."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{who}: no such file: {path}")
    if os.path.isdir(path):
        raise IsADirectoryError(f"{who}: {path} is a folder, not a parameter file")
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        raise ValueError(f"{path} is not a readable parameter file: it is empty")
    if head.startswith(_ZIP_MAGIC):
        return "npz", head
    # pickle protocols 2-5 start with PROTO; protocols 0 and 1 with a dict opcode (the book's dicts)
    if (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5) or head.startswith((b"}q", b"}(", b"(dp")):
        return "pickle", head
    return "unknown", head


def _not_params(path: str, head: bytes) -> ValueError:
    if head.startswith(_NPY_MAGIC):
        what = "it holds a single .npy array, not the .npz archive that save_params writes"
    else:
        what = f"it is neither the .npz archive that save_params writes nor a pickle (it starts with {head!r})"
    return ValueError(f"{path} is not a readable parameter file: {what}")


def _read_npz(path: str, only: Sequence[str] | None = None, prefix: str | None = None) -> dict[str, Any]:
    """name -> array of an .npz file (of the names in ``only``, or starting with ``prefix``, if
    given), as a ValueError naming the file if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("not an .npz archive")
            return {k: z[k] for k in z.files if (only is None or k in only)
                    and (prefix is None or k.startswith(prefix))}
    except Exception as exc:
        raise ValueError(f"{path} is not a readable parameter file: a damaged or truncated .npz "
                         f"archive ({_one_line(exc)})") from None


def read_meta(file_name: str | os.PathLike[str]) -> dict[str, Any]:
    """The metadata dict stored by ``save_params(..., meta=...)`` ({} if none, or for a pickle
    file, which is not unpickled). Raises FileNotFoundError or a one-line ValueError naming the
    file if it is not a parameter file."""
    import json
    path = _path(file_name, "read_meta")
    kind, head = _file_kind(path, "read_meta")
    if kind == "pickle":
        return {}
    if kind != "npz":
        raise _not_params(path, head)
    arrays = _read_npz(path, only=(_META_KEY,))
    if _META_KEY not in arrays:
        return {}
    try:
        meta = json.loads(arrays[_META_KEY].tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError(f"{path}: its metadata is not valid JSON ({_one_line(exc)})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: its metadata is a {type(meta).__name__}, not a dict")
    return meta


def read_extra(file_name: str | bytes | os.PathLike[Any]) -> dict[str, np.ndarray]:
    """The arrays stored by ``save_params(..., extra=...)``, by the names they were given ({} if
    none, or for a pickle file, which is not unpickled). Raises FileNotFoundError or a one-line
    ValueError naming the file if it is not a parameter file."""
    path = _path(file_name, "read_extra")
    kind, head = _file_kind(path, "read_extra")
    if kind == "pickle":
        return {}
    if kind != "npz":
        raise _not_params(path, head)
    return {k[len(EXTRA_PREFIX):]: v for k, v in _read_npz(path, prefix=EXTRA_PREFIX).items()}


def _path(file_name: Any, who: str) -> str:
    """A file name as str: str, bytes (decoded as ``open`` does, ``os.fsdecode``) or os.PathLike."""
    try:
        return os.fsdecode(os.fspath(file_name))
    except TypeError:
        raise TypeError(f"{who}: the file name must be a str, bytes or os.PathLike, "
                        f"got {type(file_name).__name__}") from None


#: the key of the state a network on a device pickles as (its arrays copied to the host)
_HOST_STATE = "__fastdl_host_state__"


def _host_array(a: np.ndarray) -> np.ndarray:
    """How a device array of a pickled network comes back: the host copy it was stored as."""
    return a


#: the backend whose memory each device of ``Net.to`` names
_BACKEND_OF_DEVICE = {"cpu": "numpy", "cuda": "cuda"}


def make_dtype(dtype: DTypeLike) -> np.dtype[Any]:
    """``dtype`` as a NumPy dtype; TypeError unless it is float32 or float64."""
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


class SummaryRow(NamedTuple):
    """One layer of a ``Summary``; None where it is not known (a layer without ``cost``, or after one).

    Attributes
    ----------
    name : str
        The layer's name in ``net.layers`` (its index when ``layers`` is a list).
    layer : Any
        The layer.
    output_shape : tuple of int or None
        Its output's shape for the summary's batch.
    params : int or None
        Its trainable parameters.
    param_bytes : int or None
        What they take in their dtype.
    flops : int or None
        Its forward FLOPs for the whole batch (``fastdl.layers``: a multiply-add counts 2).
    block : int or None
        With ``net.fuse`` on, the number (1, 2, ...) of the fused ConvBlock that runs the layer
        as part of one op; None for a layer that runs on its own.
    """
    name: str
    layer: Any
    output_shape: Shape | None
    params: int | None
    param_bytes: int | None
    flops: int | None
    block: int | None


def _count(v: int | None) -> str:
    return "?" if v is None else f"{v:,}"


class Summary:
    """What ``Net.summary`` returns: the table of a forward pass, shown by ``print`` (and ``repr``).

    Attributes
    ----------
    rows : list of SummaryRow
        The layers in the order ``predict`` runs them.
    input_shape : tuple of int
        The shape of one sample.
    batch_size : int
        The batch the output shapes and FLOPs are for.
    params : int
        The parameters of all rows whose values are known (``complete`` says whether all are).
    param_bytes : int
        Their bytes, over the same rows.
    flops : int
        The FLOPs of one forward pass, over the same rows.
    complete : bool
        False when some layer's numbers are unknown (shown as ``?``).
    loss : tuple
        ``(last_layer, its Cost or None)``: the loss layer, which ``predict`` does not run, shown
        below the totals and not counted in them.
    """

    def __init__(self, title: str, input_shape: Shape, batch_size: int, rows: list[SummaryRow],
                 loss: tuple[Any, Any]) -> None:
        self.title = title
        self.input_shape = input_shape
        self.batch_size = batch_size
        self.rows = rows
        self.loss = loss
        self.complete = all(None not in (r.output_shape, r.params, r.param_bytes, r.flops) for r in rows)
        self.params = sum(r.params for r in rows if r.params is not None)
        self.param_bytes = sum(r.param_bytes for r in rows if r.param_bytes is not None)
        self.flops = sum(r.flops for r in rows if r.flops is not None)

    def __str__(self) -> str:
        head = ("Layer", "Output shape", "Params", "Bytes", "FLOPs")
        lines: list[tuple[str, ...] | str] = []
        block = None
        for r in self.rows:
            if r.block is not None and r.block != block:
                members = " -> ".join(x.name for x in self.rows if x.block == r.block)
                lines.append(f"[fused] ConvBlock {r.block}: {members}, run as one op")
            block = r.block
            label = ("  | " if r.block is not None else "") + f"{r.name}: {r.layer!r}"
            shape = "?" if r.output_shape is None else str(r.output_shape)
            lines.append((label, shape, _count(r.params), _count(r.param_bytes), _count(r.flops)))
        more = "" if self.complete else " + ?"
        total = ("Total", "", f"{self.params:,}{more}", f"{self.param_bytes:,}{more}", f"{self.flops:,}{more}")
        cells = [head, total] + [x for x in lines if isinstance(x, tuple)]
        w = [max(len(c[i]) for c in cells) for i in range(5)]

        def row(c: tuple[str, ...]) -> str:
            return "  ".join([c[0].ljust(w[0]), c[1].ljust(w[1])] + [c[i].rjust(w[i]) for i in (2, 3, 4)])
        rule = "=" * len(row(head))
        out = [self.title, row(head), rule]
        out += [row(x) if isinstance(x, tuple) else x for x in lines]
        out += [rule, row(total)]
        layer, cost = self.loss
        if layer is not None:
            what = "" if cost is None else f" -> {cost.output_shape}, {cost.flops:,} FLOPs"
            out.append(f"last_layer: {layer!r}{what} (the loss: not in the totals, which are predict's)")
        out.append("FLOPs: a multiply-add counts 2 (each layer's cost(), fastdl.layers)"
                   + ("" if self.complete else "; ? = not known: a layer without cost(input_shape), "
                      "or after one"))
        return "\n".join(line.rstrip() for line in out)

    __repr__ = __str__

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:      # IPython: the table, as print shows it
        p.text(str(self))


class Net:
    """Base class of the book's networks. Not used on its own.

    Attributes
    ----------
    params : dict of str to Array
        The parameters by name (``W1``, ``b1``, ...), shared with the layers: an optimizer's
        in-place update of ``params`` is what the layers compute with.
    layers : OrderedDict or list
        The layers in the order ``predict`` runs them (an OrderedDict of named layers, or a list
        for DeepConvNet, as in the book).
    last_layer : SoftmaxWithLoss
        The loss layer, run by ``loss`` after the layers.
    dtype : numpy.dtype
        float32 or float64: the dtype of the parameters and of the computation.
    fuse : bool
        Run each Convolution -> Relu [-> Pooling] of the layers as one fused backend op in
        predict / loss / accuracy / gradient (``fastdl.fusion``; True by default): the same
        results as layer by layer, without storing the full-size activations. Set
        ``net.fuse = False`` to run the layers one by one, e.g. to inspect a Relu's ``mask``
        after a forward pass.
    device : str
        Where ``params`` live: ``"cpu"`` (NumPy arrays) or ``"cuda"`` (device arrays); see ``to``.
    weight_decay_lambda : float
        L2 weight decay strength (0: none; MultiLayerNet and MultiLayerNetExtend take it).
    """

    params: dict[str, Array]
    layers: Any
    last_layer: Any
    dtype: np.dtype[Any]
    _grad_of: dict[str, tuple[Any, str]]
    _config: dict[str, Any]         # the constructor's arguments, for load_model

    weight_decay_lambda: float = 0
    #: Run each Convolution -> Relu [-> Pooling] of the layers as one fused backend op in
    #: predict / loss / accuracy / gradient (``fastdl.fusion``): the same results as layer by
    #: layer, without storing the full-size activations. Set ``net.fuse = False`` to run the
    #: layers one by one, e.g. to inspect a Relu's ``mask`` after a forward pass.
    fuse: bool = True
    _last_plan: Any = None
    #: where params live: "cpu" (NumPy arrays) or "cuda" (device arrays)
    device: str = "cpu"
    _decayed: Sequence[str] = ()          # names of the weights that weight decay applies to

    def __repr__(self) -> str:
        n = sum(int(np.prod(tuple(v.shape), dtype=np.int64)) for v in self.params.values())
        head = (f"{type(self).__name__}({np.dtype(self.dtype)}, {n:,} parameters"
                + (f", on {self.device}" if self.device != "cpu" else "") + ")")
        names = self.layers.keys() if isinstance(self.layers, dict) else range(len(self.layers))
        lines = [f"  {name}: {layer!r}" for name, layer in zip(names, self._layer_list())]
        return "\n".join([head] + lines + [f"  last_layer: {self.last_layer!r}"])

    # -- the summary ----------------------------------------------------------------
    def _sample_shape(self) -> Shape | None:
        """The shape of one input sample: ``input_dim`` (C, H, W) of the convolutional networks,
        ``(input_size,)`` of the fully connected ones; None for a network that says neither."""
        dim = getattr(self, "input_dim", None)
        if dim is not None:
            return tuple(int(v) for v in dim)
        size = getattr(self, "input_size", None)
        return None if size is None else (int(size),)

    def summary(self, input_shape: Sequence[int] | None = None, batch_size: int = 1) -> Summary:
        """The steps of a forward pass (``predict``) with their output shapes, parameters and FLOPs,
        as Keras' ``summary()``: ``print(net.summary())`` shows the table.

        One row per layer, in order: its name and repr, its output shape for a batch of
        ``batch_size``, its parameters (elements of W and b, gamma and beta), the bytes they take
        in their dtype (float32: 4 per element, float64: 8), and its forward FLOPs for the whole
        batch. With ``net.fuse`` on, the layers that run as one fused op (``fastdl.fusion``) are
        grouped under a ``[fused] ConvBlock`` line; their numbers are the same as with fuse off.
        Then the totals, and the loss layer (which ``predict`` does not run: not in the totals).

        FLOPs: a multiply-add counts as 2, any other arithmetic operation, comparison or function
        (exp) as 1. Affine: ``2*N*D*M + N*M`` (the bias); Convolution:
        ``2*N*FN*OH*OW*C*FH*FW + N*FN*OH*OW``; Relu and Dropout: 1 per element; Sigmoid: 4 per
        element; Pooling (max and average): 1 per window element per output,
        ``N*C*OH*OW*pool_h*pool_w``; BatchNormalization: 4 per element (evaluation's normalise,
        scale and shift; a training step's batch statistics are not counted); SoftmaxWithLoss:
        4 per score + 2 per sample. Each layer computes its own numbers with ``cost(input_shape)``
        (``fastdl.layers``); a layer without that method (a reader's own) shows ``?`` for its
        output shape and FLOPs (and so do the layers after it, whose input shape is then
        unknown), its parameters being counted from the arrays of ``params`` it holds.

        Nothing is computed or stored: the numbers come from the shapes alone.

        Parameters
        ----------
        input_shape : sequence of int, optional
            The shape of one sample, without the batch axis. By default the network's own: its
            ``input_dim`` (C, H, W) for the convolutional networks, ``(input_size,)`` for the fully
            connected ones (784 for MNIST); a network of one's own that has neither needs it.
        batch_size : int
            N, the batch the output shapes and FLOPs are for (>= 1).

        Returns
        -------
        Summary
            The table (``print`` it), with the rows and the totals as attributes.
        """
        owner = f"{type(self).__name__}.summary"
        batch_size = positive_int("batch_size", batch_size, 1, owner=owner)
        if input_shape is None:
            input_shape = self._sample_shape()
            if input_shape is None:
                raise ValueError(f"{owner}: this network does not say its input's shape (no input_dim "
                                 "or input_size); pass input_shape, the shape of one sample")
        try:
            sample = tuple(int(v) for v in input_shape)
        except TypeError:
            raise TypeError(f"{owner}: input_shape must be a sequence of ints (one sample's shape), "
                            f"got {input_shape!r}") from None
        layers = self._layer_list()
        names = [str(k) for k in (self.layers.keys() if isinstance(self.layers, dict) else range(len(layers)))]
        # which layers run as one fused op: a step of the plan that is not a layer is a block of them
        block_of: list[int | None] = [None] * len(layers)
        if self.fuse:
            i = blocks = 0
            for step in fusion.plan(layers):
                if step is layers[i]:
                    i += 1
                    continue
                blocks += 1
                for _ in step.layers:
                    block_of[i] = blocks
                    i += 1
        shape: Shape | None = (batch_size,) + sample
        rows = []
        for name, layer, block in zip(names, layers, block_of):
            cost = getattr(layer, "cost", None)
            if shape is not None and callable(cost):
                c = cost(shape)
                shape = tuple(c.output_shape)
                rows.append(SummaryRow(name, layer, shape, c.params, c.param_bytes, c.flops, block))
            else:
                shape = None
                params, nbytes = self._held_params(layer)
                rows.append(SummaryRow(name, layer, None, params, nbytes, None, block))
        last = getattr(self, "last_layer", None)
        loss_cost = getattr(last, "cost", None)
        loss = (last, loss_cost(shape) if shape is not None and callable(loss_cost) else None)
        title = (f"{type(self).__name__} ({np.dtype(self.dtype)}{', on ' + self.device if self.device != 'cpu' else ''}): "
                 f"input {sample}, batch {batch_size}, fuse {'on' if self.fuse else 'off'}")
        return Summary(title, sample, batch_size, rows, loss)

    def _held_params(self, layer: Any) -> tuple[int, int]:
        """(elements, bytes) of the arrays of ``params`` that a layer holds as attributes (for a
        layer without ``cost``)."""
        own = {id(v): v for v in self.params.values()}
        held = {id(v): v for v in getattr(layer, "__dict__", {}).values() if id(v) in own}
        n = sum(int(np.prod(tuple(v.shape), dtype=np.int64)) for v in held.values())
        return n, sum(int(np.prod(tuple(v.shape), dtype=np.int64)) * np.dtype(v.dtype).itemsize
                      for v in held.values())

    # -- the forward pass ------------------------------------------------------------
    def _layer_list(self) -> list[Any]:
        return list(self.layers.values()) if isinstance(self.layers, dict) else list(self.layers)

    def _input(self, x: ArrayLike) -> Array:
        return _as(backend.ops(), _kept("x", x, type(self).__name__), self.dtype)

    def _plan(self) -> list[Any]:
        """The steps of a forward pass: the layers in order, or with ``fuse`` on, the plan of
        ``fastdl.fusion`` (each Convolution -> Relu [-> Pooling] run as one ConvBlock)."""
        layers = self._layer_list()
        return fusion.plan(layers) if self.fuse else layers

    def _forward(self, x: ArrayLike, train_flg: bool) -> Array:
        x = self._input(x)
        self._last_plan = plan = self._plan()
        for step in plan:
            x = run_forward(step, x, train_flg)
        return x

    def predict(self, x: ArrayLike, train_flg: bool = False) -> Array:
        """Scores before the softmax. Dropout and batch norm run in training mode when train_flg.

        Parameters
        ----------
        x : array_like
            A batch of inputs: (N, input_size) for the fully connected networks, (N, C, H, W)
            for the convolutional ones; converted to the network's dtype.
        train_flg : bool
            Run Dropout and BatchNormalization in training mode.

        Returns
        -------
        Array
            (N, output_size) scores, in the network's dtype (on the GPU for a network there).
        """
        return self._forward(x, train_flg)

    def _weight_decay(self) -> Any:
        lam = self.weight_decay_lambda
        if not lam:
            return 0
        to_host = backend.ops().to_host
        total = sum(np.sum(w * w) for w in (to_host(self.params[k]) for k in self._decayed))
        return self.dtype.type(0.5 * lam) * total

    def loss(self, x: ArrayLike, t: ArrayLike, train_flg: bool = False) -> np.floating[Any]:
        """Mean cross-entropy of the predictions (plus weight decay where the net has it).

        Parameters
        ----------
        x : array_like
            A batch of inputs, as for ``predict``.
        t : array_like
            Labels: (N,) class indices or (N, output_size) one-hot rows.
        train_flg : bool
            Run Dropout and BatchNormalization in training mode.

        Returns
        -------
        numpy.floating
            The mean loss over the batch, a NumPy scalar of the network's dtype.
        """
        y = self._forward(x, train_flg)
        if not backend.ops().all_finite(y):
            self._check_data(x)
        return self.last_layer.forward(y, t) + self._weight_decay()

    def _check_data(self, x: ArrayLike) -> None:
        """Called when the scores hold NaN or infinity: NaN in the data handed in is reported
        (ValueError); NaN that arose in the computation (diverged weights) flows on."""
        finite("the input x", np.asarray(backend.ops().to_host(x)), owner=type(self).__name__)

    def accuracy(self, x: Any, t: ArrayLike, batch_size: int = 100) -> float:
        """Fraction of correct predictions over every sample of x (batches of ``batch_size``;
        the book's version drops a last partial batch).

        Parameters
        ----------
        x : array
            Inputs (N, ...), sliced into batches (an array, not a list).
        t : array_like
            (N,) class indices, (N, 1), or (N, K) one-hot rows.
        batch_size : int
            Samples per forward pass (evaluation mode): an integer >= 1 (a NumPy integer too; a
            bool or a float is refused with a TypeError, 0 or less with a ValueError).

        Returns
        -------
        float
            In [0, 1].
        """
        batch_size = positive_int("batch_size", batch_size, 1, owner=f"{type(self).__name__}.accuracy")
        t = np.asarray(t)
        if t.ndim == 2:
            t = t.argmax(axis=1) if t.shape[1] > 1 else t[:, 0]
        n = len(x)
        if t.shape != (n,):
            raise ValueError(f"{type(self).__name__}.accuracy: t must hold {n} labels to match x, "
                             f"got shape {t.shape}")
        if n == 0:
            raise ValueError(f"{type(self).__name__}.accuracy: x is empty")
        correct = 0
        to_host = backend.ops().to_host
        for i in range(0, n, batch_size):
            y = to_host(self._forward(x[i:i + batch_size], False))     # predictions come out
            if not np.isfinite(y).all():
                self._check_data(x[i:i + batch_size])
            correct += int(np.sum(np.argmax(y, axis=1) == t[i:i + batch_size]))
        return correct / n

    # -- gradients -----------------------------------------------------------------
    def _loss_for_gradient(self, x: ArrayLike, t: ArrayLike) -> np.floating[Any]:
        return Net.loss(self, x, t, train_flg=True)

    def gradient(self, x: ArrayLike, t: ArrayLike) -> dict[str, Array]:
        """Gradients of the loss by backpropagation: a dict with the same keys as ``params``.

        The forward pass runs in training mode (Dropout and BatchNormalization).

        Parameters
        ----------
        x : array_like
            A batch of inputs, as for ``predict``.
        t : array_like
            Its labels, as for ``loss``.

        Returns
        -------
        dict of str to Array
            Each parameter's gradient, of its shape and dtype (weight decay included).
        """
        self._loss_for_gradient(x, t)
        dout = self.last_layer.backward(1)
        plan = self._last_plan
        for layer in reversed(plan[1:]):
            dout = layer.backward(dout)
        first = plan[0]
        # the gradient with respect to the input is not needed: skip it where a step can
        if hasattr(first, "backward_params"):
            first.backward_params(dout)
        else:
            first.backward(dout)
        grads = {}
        lam = self.weight_decay_lambda
        ops = backend.ops()
        for key, (layer, attr) in self._grad_of.items():
            g = getattr(layer, attr)
            if lam and key in self._decayed:
                # computed on the host (identities there; copies for a network on the GPU)
                g = ops.to_device(ops.to_host(g) + self.dtype.type(lam) * ops.to_host(self.params[key]))
            grads[key] = g
        return grads

    def numerical_gradient(self, x: ArrayLike, t: ArrayLike) -> dict[str, Array]:
        """Gradients by central differences (slow; for checking ``gradient``). Perturbs params in place.

        Parameters
        ----------
        x : array_like
            A (small) batch.
        t : array_like
            Its labels.

        Returns
        -------
        dict of str to Array
            Each parameter's gradient, keys in the order of ``gradient``.
        """
        def loss_w(_: Any) -> Any:
            return self._loss_for_gradient(x, t)
        # keys in the order of ``gradient`` (the book's: W1, b1, gamma1, beta1, W2, ...)
        order = list(self._grad_of) + [k for k in self.params if k not in self._grad_of]
        return {key: _numerical_gradient(loss_w, self.params[key]) for key in order}

    def profile(self, x: ArrayLike, t: ArrayLike, optimizer: Any = None, repeat: int = 10,
                warmup: int = 2, refresh_peak: bool = False) -> Any:
        """Time one training step layer by layer against FLOPs and this machine's peak:
        ``print(net.profile(x, t, optimizer=Adam()))`` shows the table. The same as
        ``fastdl.profiler.profile_step(self, x, t, ...)``, which documents the parameters;
        the network and the optimizer are left as they were."""
        from ..profiler import profile_step
        return profile_step(self, x, t, optimizer=optimizer, repeat=repeat, warmup=warmup,
                            refresh_peak=refresh_peak)

    # -- moving between host and GPU --------------------------------------------------
    def to(self, device: str) -> Net:
        """Move the parameters (and the layers' own arrays, e.g. batch-norm statistics) to
        ``"cuda"`` or back to ``"cpu"``.

        On ``"cuda"``, ``params`` holds numba device arrays, shared with the layers as on the CPU;
        gradients and optimizer state are created on the device, and only mini-batches go in and
        losses and predictions come out. Run it under the cuda backend
        (``fastdl.set_backend("cuda")``); create optimizers after moving (their state follows the
        parameters). ``net.to("cpu")`` brings NumPy arrays back. Returns the net.

        Pickling a network on ``"cuda"`` stores host copies of its arrays: it unpickles on the
        host (``device == "cpu"``, NumPy arrays, in any process, with or without a GPU), without
        the forward state of its last pass; call ``to("cuda")`` to move it back.
        ``copy.deepcopy`` keeps it on the device (an independent copy). A network on the host
        pickles and copies as it is, forward state included.
        """
        device = str(device).lower()
        device = "cpu" if device == "host" else device
        if device not in _BACKEND_OF_DEVICE:
            raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
        target = backend.ops(_BACKEND_OF_DEVICE[device])

        def convert(a: Any) -> Any:
            return a if target.owns(a) else target.to_device(target.to_host(a))
        moved = {}
        for key, val in self.params.items():
            new = convert(val)
            moved[id(val)] = new
            self.params[key] = new
        for layer in self._layer_list():
            for attr in ("W", "b", "gamma", "beta"):
                val = getattr(layer, attr, None)
                if val is not None and id(val) in moved:
                    setattr(layer, attr, moved[id(val)])
            for attr in getattr(layer, "state_attrs", ()):
                val = getattr(layer, attr, None)
                if val is not None:
                    setattr(layer, attr, convert(val))
        self.device = device
        return self

    # -- pickling and copying ---------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        """What pickle stores. A network on the host is stored as it is, forward state included
        (``backward`` works on the copy as on the original). A network on a device is stored
        with every device array copied to the host (sharing kept: ``params`` and the layers
        still hold the same arrays): it unpickles on the host, ``device == "cpu"``, without the
        forward state of its last pass (its layers' ``backward`` says it was called before
        forward until the next forward); ``net.to("cuda")`` moves it back."""
        if self.device == "cpu":
            return self.__dict__
        import io
        import pickle

        host = backend.ops("numpy")

        class _ToHost(pickle.Pickler):
            def reducer_override(self, obj: Any) -> Any:
                if hasattr(obj, "shape") and not host.owns(obj):
                    return _host_array, (host.to_host(obj),)
                return NotImplemented

        state = dict(self.__dict__)
        state["device"] = "cpu"
        buf = io.BytesIO()
        _ToHost(buf, pickle.HIGHEST_PROTOCOL).dump(state)
        return {_HOST_STATE: buf.getvalue()}

    def __setstate__(self, state: dict[str, Any]) -> None:
        if _HOST_STATE in state:
            import pickle
            self.__dict__.update(pickle.loads(state[_HOST_STATE]))
            self._last_plan = None
            for layer in self._layer_list() + [self.last_layer]:
                reset = getattr(layer, "reset", None)
                if callable(reset):
                    reset()          # their forward state was computed on the device
            return
        self.__dict__.update(state)

    def __copy__(self) -> Net:
        """A shallow copy (``copy.copy``): a new network object sharing every array and layer."""
        new = object.__new__(type(self))
        new.__dict__.update(self.__dict__)
        return new

    def __deepcopy__(self, memo: dict[int, Any]) -> Net:
        """An independent copy where the network is: on the host, everything copied (forward state
        included); on a device, through the host and moved back with ``to`` (forward state
        dropped, as for pickle)."""
        import copy
        if self.device == "cpu":
            new = object.__new__(type(self))
            memo[id(self)] = new
            new.__dict__.update(copy.deepcopy(self.__dict__, memo))
            return new
        import pickle
        new = pickle.loads(pickle.dumps(self, pickle.HIGHEST_PROTOCOL))
        memo[id(self)] = new
        return new.to(self.device)

    # -- saving and loading --------------------------------------------------------
    def _state_arrays(self) -> dict[str, Array]:
        """Everything needed to restore the net: params plus batch-norm running statistics."""
        arrays = dict(self.params)
        names = self.layers.items() if isinstance(self.layers, dict) else enumerate(self.layers)
        for name, layer in names:
            for attr in getattr(layer, "state_attrs", ()):
                val = getattr(layer, attr, None)
                if val is not None:
                    arrays[f"{name}.{attr}"] = val
        return arrays

    def _model_meta(self) -> dict[str, Any] | None:
        """``{"class": ..., "kwargs": ...}``: how ``load_model`` rebuilds this network, for fastdl's
        own networks (exactly their classes: a subclass may take other arguments); None otherwise."""
        config = getattr(self, "_config", None)
        if config is None or _model_classes().get(type(self).__name__) is not type(self):
            return None
        import json
        model = {"class": type(self).__name__, "kwargs": _jsonable(config)}
        try:
            json.dumps(model)
        except (TypeError, ValueError):
            return None          # an argument JSON cannot hold: the file is loaded with load_params
        return model

    def save_params(self, file_name: str | bytes | os.PathLike[Any] = "params.npz",
                    meta: dict[str, Any] | None = None,
                    extra: Mapping[str, ArrayLike] | None = None) -> None:
        """Write the parameters (and batch-norm statistics) as an ``.npz`` archive (no pickle),
        whatever the file's name: ``params.pkl`` as in the book's scripts works too, and
        ``load_params`` reads it back, going by the content, not the name.

        The write is atomic (``fastdl._files.atomic_write``): the data goes to a hidden temporary
        file in the same folder and is renamed into place, so a reader, or a save killed midway,
        never leaves a half-written file; an existing file keeps its permissions, a new one gets
        ``0o666 & ~umask``. Errors name ``file_name`` (e.g. a folder that does not exist).

        Parameters
        ----------
        file_name : str, bytes or os.PathLike
            Where to write.
        meta : dict, optional
            JSON-serialisable metadata stored alongside (see ``read_meta``; not modified). For
            fastdl's own networks ``meta["model"]`` (the class and its constructor arguments,
            what ``fastdl.load_model`` rebuilds the network from) and ``meta["dtype"]`` are added
            unless given.
        extra : dict of str to array, optional
            Arrays of the caller's own (an optimizer's state, counters...) stored in the same file
            under ``"__extra__/" + name``; ``read_extra`` returns them, ``load_params`` ignores them.
            Numbers or booleans only (no object arrays: nothing is ever pickled).
        """
        import json
        path = _path(file_name, f"{type(self).__name__}.save_params")
        to_host = backend.ops().to_host
        arrays = {k: to_host(v) for k, v in self._state_arrays().items()}
        arrays[_FORMAT_KEY] = np.array([_FORMAT_VERSION])
        if meta is not None and not isinstance(meta, Mapping):
            raise TypeError(f"{type(self).__name__}.save_params: meta must be a dict, got {type(meta).__name__}")
        full = dict(meta or {})
        model = self._model_meta()
        if model is not None:
            full.setdefault("model", model)
        full.setdefault("dtype", np.dtype(self.dtype).name)
        try:
            text = json.dumps(full)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"{type(self).__name__}.save_params: meta must be JSON-serialisable "
                            f"({_one_line(exc)})") from None
        arrays[_META_KEY] = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
        if extra is not None:
            if not isinstance(extra, Mapping):
                raise TypeError(f"{type(self).__name__}.save_params: extra must be a dict of name -> "
                                f"array, got {type(extra).__name__}")
            for name, val in extra.items():
                if not isinstance(name, str) or not name:
                    raise TypeError(f"{type(self).__name__}.save_params: extra's keys must be non-empty "
                                    f"strings, got {name!r}")
                arr = np.asarray(backend.ops("numpy").to_host(val))      # device arrays come to the host
                if arr.dtype.kind not in "biufc":
                    raise TypeError(f"{type(self).__name__}.save_params: extra[{name!r}] must be an array "
                                    f"of numbers or booleans, got dtype {arr.dtype}")
                arrays[EXTRA_PREFIX + name] = arr
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    def load_params(self, file_name: str | bytes | os.PathLike[Any] = "params.npz",
                    allow_pickle: bool = False) -> None:
        """Load parameters saved by ``save_params`` into this net's existing arrays (in place, so
        the layers and any optimizer keep seeing them).

        The format is recognised by the file's content, not its name. A pickle (the book's
        ``.pkl`` files) is read only with ``allow_pickle=True``: unpickling runs code from the
        file, so use it only for files you trust. Every name and shape is checked before anything
        is changed; a file that is missing raises FileNotFoundError, one that is empty, damaged,
        of another kind, or of another network a one-line ValueError naming it.
        """
        path = _path(file_name, f"{type(self).__name__}.load_params")
        kind, head = _file_kind(path, f"{type(self).__name__}.load_params")
        if kind == "npz":
            loaded = _read_npz(path)
            version = loaded.pop(_FORMAT_KEY, None)
            loaded.pop(_META_KEY, None)
            for key in [k for k in loaded if k.startswith(EXTRA_PREFIX)]:
                del loaded[key]
            if version is not None and (version.size != 1 or version.dtype.kind not in "iu"
                                        or int(version.ravel()[0]) > _FORMAT_VERSION):
                raise ValueError(f"{path} was written by a newer fastdl (format {version.ravel()[:1]}, "
                                 f"this one reads format {_FORMAT_VERSION}); upgrade fastdl")
        elif not allow_pickle:
            if kind == "pickle":
                raise ValueError(f"{path} is a pickle file (as the book writes), not the .npz that "
                                 "save_params writes; loading a pickle runs code stored in it. Pass "
                                 "allow_pickle=True only if you trust the file.")
            raise _not_params(path, head)
        else:
            import pickle
            try:
                with open(path, "rb") as f:
                    obj = pickle.load(f)
            except Exception as exc:
                if kind != "pickle":
                    raise _not_params(path, head) from None
                raise ValueError(f"{path} is not a readable parameter file: a damaged or truncated "
                                 f"pickle ({_one_line(exc)})") from None
            if not isinstance(obj, Mapping):
                raise ValueError(f"{path} holds a pickled {type(obj).__name__}, not a dict of "
                                 "parameter arrays")
            loaded = dict(obj)
        own = self._state_arrays()
        missing = sorted(k for k in self.params if k not in loaded)
        extra = sorted((k for k in loaded if k not in own), key=str)
        if missing or extra:
            raise ValueError(f"{path} does not fit this {type(self).__name__}: "
                             f"missing {missing}, unexpected {extra}")
        checked = {}
        for key, val in loaded.items():
            try:
                val = np.asarray(val)
            except Exception:
                raise ValueError(f"{path}: {key} is not an array of finite numbers") from None
            if val.shape != tuple(own[key].shape):
                raise ValueError(f"{path}: {key} has shape {val.shape}, this net expects {own[key].shape}")
            if val.dtype.kind not in "fiu" or not np.isfinite(val).all():
                raise ValueError(f"{path}: {key} is not an array of finite numbers")
            dst_dtype = np.dtype(own[key].dtype)
            with np.errstate(over="ignore", invalid="ignore"):
                val = np.ascontiguousarray(val, dtype=dst_dtype)
            if not np.isfinite(val).all():
                raise ValueError(f"{path}: {key} does not fit in {dst_dtype.name} (values beyond "
                                 f"+-{np.finfo(dst_dtype).max:.3g}); load it into a float64 network")
            checked[key] = val
        for key, val in checked.items():
            dst = own[key]
            # in place, wherever dst lives (NumPy's and numba's device arrays both take this)
            dst[tuple(slice(None) for _ in dst.shape)] = val


def sizes(owner: str, **named: Any) -> list[int]:
    """Each value as an int, checked to be a positive integer (numpy integers accepted, bools and
    floats refused): a layer of 0 units is certainly a mistake. TypeError or ValueError naming it."""
    return [positive_int(name, v, 1, owner=owner) for name, v in named.items()]


def finite_number(owner: str, name: str, v: Any, minimum: float | None = None) -> float:
    """v as a float, checked to be a real number (not a bool), finite, and >= ``minimum`` if
    given; TypeError or ValueError naming it."""
    import math
    import numbers
    if isinstance(v, bool) or not isinstance(v, numbers.Real):
        raise TypeError(f"{owner}: {name} must be a number, got {type(v).__name__} {v!r}")
    f = float(v)
    if not math.isfinite(f) or (minimum is not None and f < minimum):
        more = "" if minimum is None else f" >= {minimum:g}"
        raise ValueError(f"{owner}: {name} must be a finite number{more}, got {v!r}")
    return f


def init_scale(weight_init_std: float | str, fan_in: int) -> float:
    """The book's weight scales: 'relu'/'he' -> sqrt(2/fan_in), 'sigmoid'/'xavier' -> sqrt(1/fan_in),
    or a number used as is."""
    s = str(weight_init_std).lower()
    if s in ("relu", "he"):
        return np.sqrt(2.0 / fan_in)
    if s in ("sigmoid", "xavier"):
        return np.sqrt(1.0 / fan_in)
    try:
        scale = float(weight_init_std)
    except (TypeError, ValueError):
        raise ValueError(f"weight_init_std must be a number, 'relu'/'he' or 'sigmoid'/'xavier', "
                         f"got {weight_init_std!r}") from None
    if not np.isfinite(scale):
        raise ValueError(f"weight_init_std must be a finite number, got {weight_init_std!r}")
    return scale


# -- rebuilding a network from its file --------------------------------------------------
def _model_classes() -> dict[str, type]:
    """fastdl's own networks by class name: the ones ``load_model`` rebuilds."""
    from .conv import DeepConvNet, SimpleConvNet
    from .mlp import MultiLayerNet, MultiLayerNetExtend, TwoLayerNet
    return {c.__name__: c for c in (TwoLayerNet, MultiLayerNet, MultiLayerNetExtend, SimpleConvNet, DeepConvNet)}


def _jsonable(v: Any) -> Any:
    """Constructor arguments as JSON values: NumPy scalars as numbers, tuples as lists, dtypes
    as their names."""
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, np.dtype) or (isinstance(v, type) and issubclass(v, np.generic)):
        return np.dtype(v).name
    if isinstance(v, np.generic):
        return v.item()
    return v


#: what the CLI's ``--net`` names build (files written by ``fastdl train`` record only the name)
_CLI_NETS: dict[str, tuple[str, dict[str, Any]]] = {
    "simple": ("SimpleConvNet", {}),
    "deep": ("DeepConvNet", {}),
    "two": ("TwoLayerNet", {"input_size": 784, "hidden_size": 50, "output_size": 10}),
    "mlp": ("TwoLayerNet", {"input_size": 784, "hidden_size": 50, "output_size": 10}),
}


def load_model(file_name: str | bytes | os.PathLike[Any], dtype: DTypeLike | None = None) -> Net:
    """Rebuild a network from a file written by ``save_params`` and load its parameters.

    The file's metadata says which network it holds: ``meta["model"]`` (``{"class": ...,
    "kwargs": ...}``, written by ``save_params`` of every fastdl network), or the ``"net"`` name
    (``simple``, ``deep``, ``two``) recorded by ``fastdl train``. The network is built with those
    arguments (the global NumPy random state is left as it was) and ``load_params`` fills it.

    Parameters
    ----------
    file_name : str, bytes or os.PathLike
        A parameter file (``.npz`` content, whatever its name).
    dtype : dtype, optional
        float32 or float64; by default the file's (``meta["dtype"]``). A float64 file loads into
        float32 only if every value fits (else a ValueError names the key).

    Returns
    -------
    Net
        The network, on the host (``net.to("cuda")`` moves it).

    Raises
    ------
    FileNotFoundError
        No such file.
    ValueError
        Not a parameter file, or one without the metadata that names its network (a file written
        by the book's code, or by ``save_params`` of a network of one's own: build that network
        and call its ``load_params``).
    """
    path = _path(file_name, "load_model")
    meta = read_meta(path)
    classes = _model_classes()
    model = meta.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("class"), str):
        name, kwargs = model["class"], model.get("kwargs", {})
        if name not in classes:
            raise ValueError(f"{path} holds a {name}, which load_model cannot build (it builds "
                             f"{', '.join(classes)}); build it yourself and call load_params")
        if not isinstance(kwargs, Mapping):
            raise ValueError(f"{path}: its metadata's model kwargs are a {type(kwargs).__name__}, not a dict")
    elif meta.get("net") in _CLI_NETS:
        name, kwargs = _CLI_NETS[str(meta["net"])]
    else:
        raise ValueError(f"{path} does not say which network it holds (no model metadata): written by "
                         "the book's code or by save_params of a custom Net: build the network yourself "
                         "and call load_params")
    kwargs = dict(kwargs)
    if dtype is not None:
        kwargs["dtype"] = make_dtype(dtype)
    elif "dtype" not in kwargs and meta.get("dtype") is not None:
        kwargs["dtype"] = meta["dtype"]
    if "dtype" in kwargs:
        try:
            kwargs["dtype"] = make_dtype(kwargs["dtype"])
        except TypeError as exc:
            raise ValueError(f"{path}: its metadata names a dtype load_model cannot use ({exc})") from None
    cls = classes[name]
    state = np.random.get_state()
    try:
        net = cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{path}: cannot build {name} from its metadata ({_one_line(exc)})") from None
    finally:
        np.random.set_state(state)
    net.load_params(path)
    return net
