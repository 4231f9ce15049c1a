"""``Net.summary``'s table: the steps of a forward pass with their output shapes, parameters and
FLOPs, from each layer's ``cost`` (``fastdl.layers``); nothing is computed."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple, Sequence

import numpy as np

from .. import fusion
from .._checks import positive_int
from ..layers import Shape

if TYPE_CHECKING:
    from .base import Net


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


def summarize(net: Net, input_shape: Sequence[int] | None, batch_size: int) -> Summary:
    """``net.summary(input_shape, batch_size)``, which documents it."""
    owner = f"{type(net).__name__}.summary"
    batch_size = positive_int("batch_size", batch_size, 1, owner=owner)
    if input_shape is None:
        input_shape = net._sample_shape()
        if input_shape is None:
            raise ValueError(f"{owner}: this network does not say its input's shape (no input_dim "
                             "or input_size); pass input_shape, the shape of one sample")
    try:
        sample = tuple(int(v) for v in input_shape)
    except TypeError:
        raise TypeError(f"{owner}: input_shape must be a sequence of ints (one sample's shape), "
                        f"got {input_shape!r}") from None
    layers = net._layer_list()
    names = [str(k) for k in (net.layers.keys() if isinstance(net.layers, dict) else range(len(layers)))]
    # which layers run as one fused op: a step of the plan that is not a layer is a block of them
    block_of: list[int | None] = [None] * len(layers)
    if net.fuse:
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
            params, nbytes = _held_params(net, layer)
            rows.append(SummaryRow(name, layer, None, params, nbytes, None, block))
    last = getattr(net, "last_layer", None)
    loss_cost = getattr(last, "cost", None)
    loss = (last, loss_cost(shape) if shape is not None and callable(loss_cost) else None)
    title = (f"{type(net).__name__} ({np.dtype(net.dtype)}{', on ' + net.device if net.device != 'cpu' else ''}): "
             f"input {sample}, batch {batch_size}, fuse {'on' if net.fuse else 'off'}")
    return Summary(title, sample, batch_size, rows, loss)


def _held_params(net: Net, layer: Any) -> tuple[int, int]:
    """(elements, bytes) of the arrays of ``params`` that a layer holds as attributes (for a
    layer without ``cost``)."""
    own = {id(v): v for v in net.params.values()}
    held = {id(v): v for v in getattr(layer, "__dict__", {}).values() if id(v) in own}
    n = sum(int(np.prod(tuple(v.shape), dtype=np.int64)) for v in held.values())
    return n, sum(int(np.prod(tuple(v.shape), dtype=np.int64)) * np.dtype(v.dtype).itemsize
                  for v in held.values())
