"""Layers with forward/backward (chapters 5-7; ``common/layers.py`` in the book).

Each layer validates its input, looks up the current backend's kernels when
``forward`` is called, and its ``backward`` uses the same backend. Weights
(``W``, ``b``, ``gamma``, ``beta``) are the arrays passed to the constructor,
not copies, so a network's ``params`` dict and its layers share them and an
optimizer's in-place update is seen by the layers.

Deviations from the book, all deliberate:

* ``Relu.backward`` returns a new array; the book's zeroes ``dout`` in place.
* ``Pooling`` accepts ``pad > 0`` (padding counts as minus infinity and never
  wins; ``pad`` must be smaller than the window). The book's crashes.
* An input whose dtype differs from the layer's weights is converted to the
  weights' dtype, so a float32 network computes in float32 throughout (NumPy
  would promote a float64 input to float64).
* ``SoftmaxWithLoss`` turns one-hot labels into class indices; ``t`` must
  really be one-hot (the book would also accept soft labels in ``backward``).

What is checked (the README's "What fastdl accepts" gives the whole rule): shapes,
ranks, channel counts and label ranges, with errors naming the argument. What
NumPy accepts is accepted: lists, integer and boolean arrays (computed in
float64), float16 arrays (stored in half precision, computed in float32), a
Python scalar or 0-d bias (broadcast to every output, as ``b = 0`` in the book's
ch07), and weights of mixed float dtypes (the bias takes W's dtype). NaN and
infinity that arise in a computation flow through as they do in NumPy;
``SoftmaxWithLoss`` says so once with a RuntimeWarning naming the likely cause.

Besides the book's API, every layer here declares about itself what code elsewhere needs,
so no other module keeps a list of layer types:

* ``train_flg_aware``: whether ``forward`` takes ``train_flg`` (Dropout, BatchNormalization).
  ``run_forward(layer, x, train_flg)`` is how networks, ``fastdl compare`` and the benchmarks
  call a layer; a reader's own layer without the attribute is asked through its ``forward``'s
  signature.
* ``repr()``: the configuration, e.g. ``Convolution(W=(30, 1, 5, 5), stride=1, pad=0, float32)``.
* ``describe(x_shape)``: ``(row label, PyTorch counterpart)`` for ``fastdl compare``, the latter
  an expression over ``nn`` such as ``"nn.Conv2d(1, 30, (5, 5), stride=1, padding=0)"``, or None.
* ``reset()``: drops the saved forward state (a network's fused plan, ``fastdl.fusion``, resets
  the layers it runs as one op, so their own ``backward`` refuses instead of using a stale state).
* ``state_attrs`` (BatchNormalization): arrays of the layer's own that a network saves and moves.
* ``cost(input_shape)``: a ``Cost`` (output shape, parameter count, parameter bytes, forward
  FLOPs) for an input of that shape, batch axis included, computed from the shapes alone (nothing
  runs); ``Net.summary`` adds them up. The FLOP convention: a multiply-add counts as 2 FLOPs, a
  comparison, addition, multiplication or division as 1, a function such as exp as 1:

  - ``Affine``: ``2*N*D*M`` for ``x @ W`` (x of N rows of D, W of D x M) ``+ N*M`` for the bias;
  - ``Convolution``: ``2*N*FN*OH*OW*C*FH*FW`` ``+ N*FN*OH*OW`` for the bias;
  - ``Relu``: 1 per element (the comparison); ``Sigmoid``: 4 per element (negate, exp, add 1,
    divide) (``Elementwise.flops_per_element``);
  - ``Pooling`` and ``AvgPooling``: 1 per window element per output, ``N*C*OH*OW*pool_h*pool_w``
    (max: the comparisons; average: the additions and the division);
  - ``Dropout``: 1 per element (the multiplication by the mask, or by ``1 - dropout_ratio`` in
    evaluation; drawing the mask is not counted);
  - ``BatchNormalization``: 4 per element (subtract the mean, divide by the deviation, multiply
    by gamma, add beta); the batch statistics of a training step are not counted;
  - ``SoftmaxWithLoss``: 4 per score (subtract the row's maximum, exp, sum, divide) + 2 per
    sample (the log and the mean).

  Parameters are the layer's trainable arrays (``W`` and ``b``, ``gamma`` and ``beta``), bytes
  what they take in their dtype; BatchNormalization's running statistics are not parameters.

Where arrays live is the backend's business: weights, inputs and new arrays go through the
device-placement ops of the backend in force (``owns``, ``to_device``, ``astype``, ``scale``,
``zeros_like``; ``fastdl.kernels.spec``), which are identities over NumPy arrays on the host
backends. Device weights under a CPU backend are refused with an error saying what to do.

The package's modules, one job each (every name below is imported from ``fastdl.layers``):
``_base`` (the ``Cost`` and shape types, input and weight checks, placement on the backend,
``run_forward`` and ``takes_train_flg``, and ``_RunsOnBackend``, the mixin that remembers the
backend of a layer's forward), ``simple`` (``MulLayer``, ``AddLayer``), ``elementwise``
(``Elementwise``, ``Relu``, ``Sigmoid``, ``LeakyRelu``), ``dense`` (``Affine``), ``loss``
(``SoftmaxWithLoss``), ``norm`` (``Dropout``, ``BatchNormalization``) and ``conv``
(``Convolution``, ``Pooling``, ``AvgPooling``).
"""
from __future__ import annotations

# In the order of the API page (docs/reference/layers.md follows the order of these imports); the
# last two lines are the names the rest of fastdl and the tests import from here besides __all__:
# Array and Shape (type hints), _as, _kept and _RunsOnBackend (networks, fused blocks),
# BATCHNORM_EPS (fastdl.explain), _CONVERT_IN_OP_ROWS (tests) and warn_nonfinite.
from ._base import Cost, takes_train_flg, run_forward
from .simple import MulLayer, AddLayer
from .elementwise import Elementwise, Relu, Sigmoid, LeakyRelu
from .dense import Affine
from .loss import SoftmaxWithLoss
from .norm import Dropout, BatchNormalization
from .conv import Convolution, Pooling, AvgPooling
from ._base import BATCHNORM_EPS, Array, Shape, _as, _kept, _RunsOnBackend, warn_nonfinite
from .dense import _CONVERT_IN_OP_ROWS

__all__ = ["MulLayer", "AddLayer", "Relu", "Sigmoid", "Affine", "SoftmaxWithLoss", "Dropout",
           "BatchNormalization", "Convolution", "Pooling", "AvgPooling", "Elementwise", "Cost",
           "run_forward", "takes_train_flg", "LeakyRelu"]
