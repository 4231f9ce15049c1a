"""``fastdl predict MODEL IMAGE...``: the class probabilities of a saved network for digit images.

Each image (PNG, JPEG, any format Pillow reads, or .npy) is prepared as MNIST's digits were
(:func:`fastdl.images.prepare_digit`), then the network's softmax is printed, one line per image:
the predicted class and the ``--top`` most likely classes with their probabilities; ``--json``
prints all of it as one JSON document. An image that cannot be read or holds no digit gets one
line on stderr (the others are still predicted; exit status 1); a missing model or image file is
a usage error found before any work (exit status 2).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List

from . import EXIT_FAILURE, Failure, UsageError, _add_backend, positive_int


def add_parser(sub: Any) -> None:
    """The ``predict`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser(
        "predict", help="classify your own digit images (PNG, JPEG, .npy) with a saved network",
        description="Prepare each image as MNIST's digits were (grey, inverted if the background is light, "
                    "cropped to the ink, larger side scaled to 20 px, centred by mass in 28x28, values in "
                    "[0, 1]) and print the network's class probabilities (softmax). Exit status 1 if an "
                    "image could not be used (the others are still predicted).")
    p.add_argument("model", help="a parameter file written by fastdl train --save (or Net.save_params)")
    p.add_argument("images", nargs="+", metavar="IMAGE", help="PNG, JPEG (any format Pillow reads) or .npy")
    p.add_argument("--top", type=positive_int, default=3,
                   help="most likely classes printed per image; default 3 (--json has all)")
    p.add_argument("--json", action="store_true", help="print one JSON document instead of lines")
    p.add_argument("--save-prepared", metavar="FOLDER",
                   help="also write each prepared 28x28 digit as FOLDER/<name>.prepared.png (to see what "
                        "the network sees)")
    _add_backend(p)
    p.set_defaults(func=cmd_predict)


def _check_inputs(args: argparse.Namespace) -> None:
    for path, what in [(args.model, "model")] + [(im, "image") for im in args.images]:
        if not os.path.exists(path):
            raise UsageError(f"no such {what} file: {path}")
        if os.path.isdir(path):
            raise UsageError(f"{path} is a folder, not {'a parameter' if what == 'model' else 'an image'} file")
    if args.save_prepared is not None and not os.path.isdir(args.save_prepared):
        raise UsageError(f"--save-prepared {args.save_prepared}: no such folder; create it first")


def _write_prepared(folder: str, image: str, x: Any) -> str:
    import numpy as np
    from PIL import Image

    from .._files import atomic_write
    target = os.path.join(folder, os.path.splitext(os.path.basename(image))[0] + ".prepared.png")
    pixels = Image.fromarray(np.round(x[0] * 255).astype(np.uint8))
    with atomic_write(target) as f:
        pixels.save(f, format="PNG")
    return target


def cmd_predict(args: argparse.Namespace) -> int:
    """Run ``fastdl predict``; returns the exit status."""
    _check_inputs(args)
    import numpy as np

    import fastdl
    from fastdl.images import ImageError, prepare_digit, probabilities
    from fastdl.nets import load_model
    if args.backend:
        fastdl.set_backend(args.backend)
    fastdl.current_backend()                             # a bad FASTDL_BACKEND is reported here
    try:
        net = load_model(args.model)
    except FileNotFoundError:
        raise UsageError(f"no such model file: {args.model}") from None
    except (ValueError, OSError, KeyError, TypeError) as exc:
        text = " ".join(str(exc).split())
        raise Failure(text if args.model in text else f"cannot load {args.model}: {text}") from None
    results: List[Dict[str, Any]] = []
    problems: List[str] = []
    prepared, names = [], []
    for image in args.images:
        try:
            x = prepare_digit(image)
        except ImageError as exc:
            problems.append(" ".join(str(exc).split()))
            continue
        prepared.append(x)
        names.append(image)
        if args.save_prepared:
            try:
                _write_prepared(args.save_prepared, image, x)
            except OSError as exc:
                problems.append(f"could not write the prepared {image} ({exc})")
    if prepared:
        probs = probabilities(net, np.stack(prepared))
        for name, p in zip(names, probs):
            order = np.argsort(-p, kind="stable")
            results.append({"image": name, "class": int(order[0]),
                            "probabilities": [round(float(v), 6) for v in p],
                            "top": [[int(k), round(float(p[k]), 6)] for k in order[:args.top]]})
    if args.json:
        print(json.dumps({"model": args.model, "network": type(net).__name__, "results": results,
                          "errors": problems}, indent=1))
    else:
        width = max((len(r["image"]) for r in results), default=0)
        for r in results:
            top = "  ".join(f"{k}: {v:.3f}" for k, v in r["top"])
            print(f"{r['image']:{width}s}  {r['class']}   ({top})")
    for line in problems:
        print(f"fastdl predict: {line}", file=sys.stderr)
    return EXIT_FAILURE if problems else 0
