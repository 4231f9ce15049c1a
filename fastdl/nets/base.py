"""What the book's networks have in common: predict / loss / accuracy / gradient,
numerical_gradient, and saving and loading parameters.

Subclasses build ``self.params`` (name -> array), ``self.layers`` (an
OrderedDict or a list, as in the book), ``self.last_layer`` and
``self._grad_of``: name -> (layer, attribute) telling ``gradient`` where each
parameter's gradient is found after ``backward``.
"""
import os
from collections.abc import Mapping

import numpy as np

from .. import backend, fusion
from .._files import atomic_write
from .._text import one_line
from .._checks import finite
from ..gradient import numerical_gradient as _numerical_gradient
from ..layers import _as, _kept, run_forward

_FORMAT_KEY = "__fastdl_params__"
_META_KEY = "__fastdl_meta__"
_FORMAT_VERSION = 1


_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")     # an .npz is a zip archive (the second: an empty one)
_NPY_MAGIC = b"\x93NUMPY"


def _one_line(exc):
    return one_line(exc, with_type=True)


def _file_kind(path, who):
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


def _not_params(path, head):
    if head.startswith(_NPY_MAGIC):
        what = "it holds a single .npy array, not the .npz archive that save_params writes"
    else:
        what = f"it is neither the .npz archive that save_params writes nor a pickle (it starts with {head!r})"
    return ValueError(f"{path} is not a readable parameter file: {what}")


def _read_npz(path, only=None):
    """name -> array of an .npz file (of the names in ``only`` if given), as a ValueError naming
    the file if it cannot be read."""
    try:
        with np.load(path, allow_pickle=False) as z:
            if not hasattr(z, "files"):
                raise ValueError("not an .npz archive")
            return {k: z[k] for k in z.files if only is None or k in only}
    except Exception as exc:
        raise ValueError(f"{path} is not a readable parameter file: a damaged or truncated .npz "
                         f"archive ({_one_line(exc)})") from None


def read_meta(file_name):
    """The metadata dict stored by ``save_params(..., meta=...)`` ({} if none, or for a pickle
    file, which is not unpickled). Raises FileNotFoundError or a one-line ValueError naming the
    file if it is not a parameter file."""
    import json
    path = os.fspath(file_name)
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


#: the backend whose memory each device of ``Net.to`` names
_BACKEND_OF_DEVICE = {"cpu": "numpy", "cuda": "cuda"}


def make_dtype(dtype):
    dt = np.dtype(dtype)
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


class Net:
    """Base class of the book's networks. Not used on its own."""

    weight_decay_lambda = 0
    #: Run each Convolution -> Relu [-> Pooling] of the layers as one fused backend op in
    #: predict / loss / accuracy / gradient (``fastdl.fusion``): the same results as layer by
    #: layer, without storing the full-size activations. Set ``net.fuse = False`` to run the
    #: layers one by one, e.g. to inspect a Relu's ``mask`` after a forward pass.
    fuse = True
    _last_plan = None
    device = "cpu"         # where params live: "cpu" (NumPy arrays) or "cuda" (device arrays)
    _decayed = ()          # names of the weights that weight decay applies to

    def __repr__(self):
        n = sum(int(np.prod(tuple(v.shape), dtype=np.int64)) for v in self.params.values())
        head = (f"{type(self).__name__}({np.dtype(self.dtype)}, {n:,} parameters"
                + (f", on {self.device}" if self.device != "cpu" else "") + ")")
        names = self.layers.keys() if isinstance(self.layers, dict) else range(len(self.layers))
        lines = [f"  {name}: {layer!r}" for name, layer in zip(names, self._layer_list())]
        return "\n".join([head] + lines + [f"  last_layer: {self.last_layer!r}"])

    # -- the forward pass ------------------------------------------------------------
    def _layer_list(self):
        return list(self.layers.values()) if isinstance(self.layers, dict) else list(self.layers)

    def _input(self, x):
        return _as(backend.ops(), _kept("x", x, type(self).__name__), self.dtype)

    def _plan(self):
        """The steps of a forward pass: the layers in order, or with ``fuse`` on, the plan of
        ``fastdl.fusion`` (each Convolution -> Relu [-> Pooling] run as one ConvBlock)."""
        layers = self._layer_list()
        return fusion.plan(layers) if self.fuse else layers

    def _forward(self, x, train_flg):
        x = self._input(x)
        self._last_plan = plan = self._plan()
        for step in plan:
            x = run_forward(step, x, train_flg)
        return x

    def predict(self, x, train_flg=False):
        """Scores before the softmax. Dropout and batch norm run in training mode when train_flg."""
        return self._forward(x, train_flg)

    def _weight_decay(self):
        lam = self.weight_decay_lambda
        if not lam:
            return 0
        to_host = backend.ops().to_host
        total = sum(np.sum(w * w) for w in (to_host(self.params[k]) for k in self._decayed))
        return self.dtype.type(0.5 * lam) * total

    def loss(self, x, t, train_flg=False):
        """Mean cross-entropy of the predictions (plus weight decay where the net has it)."""
        y = self._forward(x, train_flg)
        if not backend.ops().all_finite(y):
            self._check_data(x)
        return self.last_layer.forward(y, t) + self._weight_decay()

    def _check_data(self, x):
        """Called when the scores hold NaN or infinity: NaN in the data handed in is reported
        (ValueError); NaN that arose in the computation (diverged weights) flows on."""
        finite("the input x", np.asarray(backend.ops().to_host(x)), owner=type(self).__name__)

    def accuracy(self, x, t, batch_size=100):
        """Fraction of correct predictions over every sample of x (batches of ``batch_size``;
        the book's version drops a last partial batch)."""
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
    def _loss_for_gradient(self, x, t):
        return Net.loss(self, x, t, train_flg=True)

    def gradient(self, x, t):
        """Gradients of the loss by backpropagation: a dict with the same keys as ``params``."""
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

    def numerical_gradient(self, x, t):
        """Gradients by central differences (slow; for checking ``gradient``). Perturbs params in place."""
        def loss_w(_):
            return self._loss_for_gradient(x, t)
        # keys in the order of ``gradient`` (the book's: W1, b1, gamma1, beta1, W2, ...)
        order = list(self._grad_of) + [k for k in self.params if k not in self._grad_of]
        return {key: _numerical_gradient(loss_w, self.params[key]) for key in order}

    # -- moving between host and GPU --------------------------------------------------
    def to(self, device):
        """Move the parameters (and the layers' own arrays, e.g. batch-norm statistics) to
        ``"cuda"`` or back to ``"cpu"``.

        On ``"cuda"``, ``params`` holds numba device arrays, shared with the layers as on the CPU;
        gradients and optimizer state are created on the device, and only mini-batches go in and
        losses and predictions come out. Run it under the cuda backend
        (``fastdl.set_backend("cuda")``); create optimizers after moving (their state follows the
        parameters). ``net.to("cpu")`` brings NumPy arrays back. Returns the net.
        """
        device = str(device).lower()
        device = "cpu" if device == "host" else device
        if device not in _BACKEND_OF_DEVICE:
            raise ValueError(f"device must be 'cuda' or 'cpu', got {device!r}")
        target = backend.ops(_BACKEND_OF_DEVICE[device])

        def convert(a):
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

    # -- saving and loading --------------------------------------------------------
    def _state_arrays(self):
        """Everything needed to restore the net: params plus batch-norm running statistics."""
        arrays = dict(self.params)
        names = self.layers.items() if isinstance(self.layers, dict) else enumerate(self.layers)
        for name, layer in names:
            for attr in getattr(layer, "state_attrs", ()):
                val = getattr(layer, attr, None)
                if val is not None:
                    arrays[f"{name}.{attr}"] = val
        return arrays

    def save_params(self, file_name="params.npz", meta=None):
        """Write the parameters (and batch-norm statistics) as an ``.npz`` archive (no pickle),
        whatever the file's name: ``params.pkl`` as in the book's scripts works too, and
        ``load_params`` reads it back, going by the content, not the name.

        The write is atomic (``fastdl._files.atomic_write``): the data goes to a hidden temporary
        file in the same folder and is renamed into place, so a reader, or a save killed midway,
        never leaves a half-written file; an existing file keeps its permissions, a new one gets
        ``0o666 & ~umask``. Errors name ``file_name`` (e.g. a folder that does not exist).
        ``meta``: an optional JSON-serialisable dict stored alongside (see ``read_meta``)."""
        import json
        path = os.fspath(file_name)
        to_host = backend.ops().to_host
        arrays = {k: to_host(v) for k, v in self._state_arrays().items()}
        arrays[_FORMAT_KEY] = np.array([_FORMAT_VERSION])
        if meta is not None:
            arrays[_META_KEY] = np.frombuffer(json.dumps(meta).encode("utf-8"), dtype=np.uint8)
        with atomic_write(path) as f:
            np.savez(f, **arrays)

    def load_params(self, file_name="params.npz", allow_pickle=False):
        """Load parameters saved by ``save_params`` into this net's existing arrays (in place, so
        the layers and any optimizer keep seeing them).

        The format is recognised by the file's content, not its name. A pickle (the book's
        ``.pkl`` files) is read only with ``allow_pickle=True``: unpickling runs code from the
        file, so use it only for files you trust. Every name and shape is checked before anything
        is changed; a file that is missing raises FileNotFoundError, one that is empty, damaged,
        of another kind, or of another network a one-line ValueError naming it.
        """
        path = os.fspath(file_name)
        kind, head = _file_kind(path, f"{type(self).__name__}.load_params")
        if kind == "npz":
            loaded = _read_npz(path)
            version = loaded.pop(_FORMAT_KEY, None)
            loaded.pop(_META_KEY, None)
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
            checked[key] = val
        for key, val in checked.items():
            dst = own[key]
            # in place, wherever dst lives (NumPy's and numba's device arrays both take this)
            dst[tuple(slice(None) for _ in dst.shape)] = np.ascontiguousarray(val, dtype=dst.dtype)


def init_scale(weight_init_std, fan_in):
    """The book's weight scales: 'relu'/'he' -> sqrt(2/fan_in), 'sigmoid'/'xavier' -> sqrt(1/fan_in),
    or a number used as is."""
    s = str(weight_init_std).lower()
    if s in ("relu", "he"):
        return np.sqrt(2.0 / fan_in)
    if s in ("sigmoid", "xavier"):
        return np.sqrt(1.0 / fan_in)
    try:
        return float(weight_init_std)
    except (TypeError, ValueError):
        raise ValueError(f"weight_init_std must be a number, 'relu'/'he' or 'sigmoid'/'xavier', "
                         f"got {weight_init_std!r}") from None
