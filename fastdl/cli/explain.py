"""``fastdl explain``: write the report of ``fastdl.explain`` for one of the book's networks (or a
saved one) on images of the bundled MNIST sample, or chapter 5's apple graphs.

The page is written atomically (``--out`` is replaced whole or not at all); a mistake (an unknown
network file, a bad ``--init``, an unwritable ``--out``) is one line on stderr and exit status 2,
found before any work.
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from . import Failure, UsageError, _add_backend, _add_dtype, non_negative_int, positive_int

NETS = ("simple", "deep", "mlp")


def add_parser(sub: Any) -> None:
    """The ``explain`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser(
        "explain", help="an offline HTML page of a network's forward and backward pass (the book's graphs)",
        description="Run one batch of the bundled MNIST sample forward and backward through the network, layer by "
                    "layer, and write one self-contained HTML page (no network needed to open it): the graph "
                    "with shapes, forward and backward histograms on every edge; each layer's backward rule "
                    "written with these shapes and checked on a few entries (click a layer); the book's gradient "
                    "check on the reference backend; with --steps, training curves, gradient norms and "
                    "update/weight ratios; with --init, chapter 6's weight-scale comparison. --example draws "
                    "chapter 5's apple graphs instead.",
        epilog="Example: fastdl explain --net simple --steps 100 --init std:1,std:0.01,xavier,he --out report.html")
    p.add_argument("--net", default="simple", metavar="simple|deep|mlp|MODEL.npz",
                   help="simple: SimpleConvNet, deep: DeepConvNet, mlp: TwoLayerNet 784-50-10 (the book's "
                        "gradient-check network), or a file saved by fastdl train --save / save_params. "
                        "Default: simple")
    p.add_argument("--example", choices=("apple", "apple-orange"),
                   help="chapter 5's shopping graph with MulLayer/AddLayer instead of a network")
    p.add_argument("--out", default="explain.html", metavar="FILE.html", help="the page; default explain.html")
    p.add_argument("--batch", type=positive_int, default=8,
                   help="sample images in the pass the page shows; default 8 (the first 3 are gradient-checked)")
    p.add_argument("--steps", type=non_negative_int, default=0,
                   help="Adam steps (lr 0.001, batches of 32 sample images) for the training dynamics; default 0")
    p.add_argument("--init", default=None, metavar="std:1,std:0.01,xavier,he",
                   help="weight scales to compare, comma-separated (std:X, xavier, he)")
    p.add_argument("--seed", type=non_negative_int, default=0,
                   help="seed of the network's initial weights and the batches; default 0")
    _add_dtype(p, None, "default float64 (the book's); a saved network: as saved")
    _add_backend(p)
    p.set_defaults(func=cmd_explain)


def _net(args: argparse.Namespace) -> Any:
    import numpy as np

    from ..nets import DeepConvNet, SimpleConvNet, TwoLayerNet, load_model
    name = args.net
    if name in NETS:
        np.random.seed(args.seed)
        dtype = args.dtype or "float64"
        if name == "simple":
            return SimpleConvNet(dtype=dtype)
        if name == "deep":
            return DeepConvNet(dtype=dtype)
        return TwoLayerNet(input_size=784, hidden_size=50, output_size=10, dtype=dtype)
    if not os.path.exists(name):
        raise UsageError(f"--net {name}: no such file, and not one of {', '.join(NETS)}")
    try:
        return load_model(name, dtype=args.dtype)
    except (ValueError, OSError, KeyError, TypeError) as exc:
        raise Failure(f"--net {name}: cannot load it: {' '.join(str(exc).split())}") from None


def _option_line(message: str) -> str:
    """An ExplainError's line as the command line says it (naming --out, --init)."""
    text = message.removeprefix("fastdl.explain: ")
    for word, option in (("path ", "--out "), ("init ", "--init "), ("cannot write ", "--out: cannot write ")):
        if text.startswith(word):
            return option + text[len(word):]
    return text


def cmd_explain(args: argparse.Namespace) -> int:
    """Run ``fastdl explain``; returns the exit status."""
    import fastdl
    from ..explain import ExplainError, _check_path, explain
    try:
        _check_path(args.out)
        if args.init:
            from ..explain._dynamics import parse_inits
            parse_inits(args.init)
    except ExplainError as exc:
        raise UsageError(_option_line(str(exc))) from None
    if args.backend:
        fastdl.set_backend(args.backend)
    fastdl.current_backend()
    try:
        if args.example:
            out = explain(args.example, path=args.out)
            print(f"wrote {out}: chapter 5's {args.example} graph")
            return 0
        import numpy as np

        from ..datasets import load_mnist
        net = _net(args)
        flatten = len(net._sample_shape() or (1, 1, 1)) == 1 if hasattr(net, "_sample_shape") else False
        (x, t), _ = load_mnist(flatten=flatten, sample=True)
        if args.batch > len(x):
            raise UsageError(f"--batch {args.batch}: the sample has {len(x)} images; give at most that")
        rng = np.random.default_rng(args.seed)
        pick = rng.choice(len(x), args.batch, replace=False)
        out = explain(net, x[pick], t[pick], path=args.out, steps=args.steps, init=args.init,
                      train_data=(x, t) if args.steps else None)
    except ExplainError as exc:
        raise UsageError(_option_line(str(exc))) from None
    except OSError as exc:
        raise UsageError(" ".join(str(exc).split())) from None
    print(f"wrote {out}: {type(net).__name__}, {args.batch} sample images"
          + (f", {args.steps} training steps" if args.steps else "") + (f", inits {args.init}" if args.init else ""))
    return 0
