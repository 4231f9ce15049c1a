"""What the book's networks have in common: predict / loss / accuracy / gradient,
numerical_gradient, and saving and loading parameters.

Subclasses build ``self.params`` (name -> array), ``self.layers`` (an
OrderedDict or a list, as in the book), ``self.last_layer`` and
``self._grad_of``: name -> (layer, attribute) telling ``gradient`` where each
parameter's gradient is found after ``backward``.

``Net.summary`` lists the steps of a forward pass with their output shapes, parameters and FLOPs
(``Summary``, ``fastdl.nets.summary``); the parameter files are read and written by
``fastdl.nets.files``.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from contextlib import nullcontext
from typing import Any, ContextManager, Sequence

import numpy as np
from numpy.typing import ArrayLike

from .. import backend, fusion
from .._checks import finite, positive_int
from ..gradient import numerical_gradient as _numerical_gradient
from ..layers import Array, Shape, _as, _kept, run_forward
from . import files as _files
# the public names of the parameter files and of the summary, importable from here too
from .files import (_FORMAT_KEY, _FORMAT_VERSION, _META_KEY, EXTRA_PREFIX, read_extra,  # noqa: F401
                    read_meta)
from .summary import Summary, SummaryRow, summarize  # noqa: F401
# the checks of the networks' constructor arguments
from ._args import finite_number, init_scale, make_dtype, sizes  # noqa: F401


#: the key of the state a network on a device pickles as (its arrays copied to the host)
_HOST_STATE = "__fastdl_host_state__"


def _host_array(a: np.ndarray) -> np.ndarray:
    """How a device array of a pickled network comes back: the host copy it was stored as."""
    return a


#: the backend whose memory each device of ``Net.to`` names
_BACKEND_OF_DEVICE = {"cpu": "numpy", "cuda": "cuda"}


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
        return summarize(self, input_shape, batch_size)

    # -- the forward pass ------------------------------------------------------------
    def _layer_list(self) -> list[Any]:
        return list(self.layers.values()) if isinstance(self.layers, dict) else list(self.layers)

    def _ops(self) -> Any:
        """The kernels of the memory ``params`` live in: the current backend's for a network on the
        host, the device backend's for one moved with ``to`` (whatever the current backend)."""
        return backend.ops() if self.device == "cpu" else backend.ops(_BACKEND_OF_DEVICE[self.device])

    def _on_device(self) -> ContextManager[Any]:
        """Where this network computes: for a network on a device, a ``using_backend`` block of the
        device's backend, so its layers' forward and backward run there; for a network on the host,
        no change (the current backend, as ``set_backend`` / ``using_backend`` choose)."""
        if self.device == "cpu":
            return nullcontext()
        return backend.using_backend(_BACKEND_OF_DEVICE[self.device])

    def _input(self, x: ArrayLike) -> Array:
        return _as(backend.ops(), _kept("x", x, type(self).__name__), self.dtype)

    def _plan(self) -> list[Any]:
        """The steps of a forward pass: the layers in order, or with ``fuse`` on, the plan of
        ``fastdl.fusion`` (each Convolution -> Relu [-> Pooling] run as one ConvBlock)."""
        layers = self._layer_list()
        return fusion.plan(layers) if self.fuse else layers

    def _forward(self, x: ArrayLike, train_flg: bool) -> Array:
        with self._on_device():
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
        if self.device == "cpu":
            total = sum(np.sum(w * w) for w in (self.params[k] for k in self._decayed))
        else:
            total = sum(self._squared_norm(self.params[k]) for k in self._decayed)
        return self.dtype.type(0.5 * lam) * total

    def _squared_norm(self, w: Any) -> Any:
        """sum(w * w) of a weight on the device, computed there: the (1, D) x (D, 1) product of
        the device's ``affine_forward``; only that one number comes to the host."""
        ops = self._ops()
        row = w.reshape(1, -1)
        product = ops.affine_forward(row, w.reshape(-1, 1), ops.zeros_like(w.reshape(-1)[:1]))
        return ops.to_host(product)[0, 0]

    def _decayed_gradient(self, g: Any, w: Any) -> Any:
        """A new array ``g + lambda * w``. For a network on a device it is computed there by two
        in-place ``sgd_update`` kernels (``lambda * w`` into zeros, then ``+ g``): nothing is
        copied between host and device."""
        lam = self.dtype.type(self.weight_decay_lambda)
        if self.device == "cpu":
            # a host network: NumPy weights (under a device backend its gradients come from the
            # device: the sum is formed on the host and handed back where the backend computes)
            ops = backend.ops()
            return ops.to_device(ops.to_host(g) + lam * w)
        ops = self._ops()
        out = ops.zeros_like(w)
        ops.sgd_update(out, w, -lam)         # out -= -lambda * w
        ops.sgd_update(out, g, -1.0)         # out += g
        return out

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
        with self._on_device():
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
        with self._on_device():
            return self._backprop(x, t)

    def _backprop(self, x: ArrayLike, t: ArrayLike) -> dict[str, Array]:
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
        for key, (layer, attr) in self._grad_of.items():
            g = getattr(layer, attr)
            if lam and key in self._decayed:
                g = self._decayed_gradient(g, self.params[key])
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

        This is the one call that puts a network on the GPU. On ``"cuda"``, ``params`` holds numba
        device arrays, shared with the layers as on the CPU, and the network computes on the cuda
        backend whatever the current one (``predict``, ``loss``, ``accuracy`` and ``gradient`` run
        its layers in a ``using_backend("cuda")`` block; weight decay too); gradients and optimizer
        state are created on the device (an optimizer updates device arrays with the cuda kernels
        under any backend), and only mini-batches go in and losses and predictions come out.
        ``net.to("cpu")`` brings NumPy arrays back: a network on the host computes on the current
        backend (``set_backend`` / ``using_backend``; under ``"cuda"`` its weights are copied in at
        every call). Returns the net.

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
        """``{"class": ..., "kwargs": ...}``: how ``load_model`` rebuilds this network (None for a
        network it does not build); ``fastdl.nets.files.model_meta``."""
        return _files.model_meta(self)

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
        _files.save_params(self, file_name, meta, extra)

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
        _files.load_params(self, file_name, allow_pickle)
