"""``fastdl profile``: one training step of a book network, layer by layer (``fastdl.profiler``)."""
from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from . import _add_backend, non_negative_int, positive_int

#: what ``--net`` builds: fastdl's class and its arguments (dtype added), and one sample's shape
PROFILE_NETS: dict[str, tuple[str, dict[str, Any], tuple[int, ...]]] = {
    "simple": ("SimpleConvNet", {}, (1, 28, 28)),
    "deep": ("DeepConvNet", {}, (1, 28, 28)),
    "mlp": ("TwoLayerNet", {"input_size": 784, "hidden_size": 50, "output_size": 10}, (784,)),
}


def add_parser(sub: Any) -> None:
    """The ``profile`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser(
        "profile", help="time one training step layer by layer against FLOPs and this machine's peak",
        description="Run one training step (gradient + Adam update) of a book network on a random batch "
                    "of MNIST-shaped inputs and print, per layer and for the whole step, forward and "
                    "backward times (medians), FLOPs from each layer's cost(), GFLOP/s and the share of "
                    "this machine's peak (NumPy's GEMM, measured once and cached; --refresh-peak "
                    "measures again). Nothing is compared: the times are what this machine gives now.")
    p.add_argument("--net", choices=tuple(PROFILE_NETS), default="simple",
                   help="simple (SimpleConvNet), deep (DeepConvNet) or mlp (TwoLayerNet 784-50-10); default simple")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    p.add_argument("--batch", "--batch-size", dest="batch", type=positive_int, default=100, help="default 100")
    _add_backend(p)
    p.add_argument("--repeat", type=positive_int, default=10, help="timed steps; each figure is their median (default 10)")
    p.add_argument("--warmup", type=non_negative_int, default=2, help="untimed steps first (default 2)")
    p.add_argument("--no-update", action="store_true", help="time the gradient only, without the Adam update")
    p.add_argument("--refresh-peak", action="store_true", help="measure this machine's peak again (about a second)")
    p.add_argument("--json", action="store_true", help="print the figures as JSON instead of the table")
    p.set_defaults(func=cmd_profile)


def build(net: str, dtype: str, batch: int, seed: int = 0) -> tuple[Any, np.ndarray, np.ndarray]:
    """(network, x, t): the network ``--net`` names, a uniform [0, 1) batch and random labels,
    from ``seed`` (the global NumPy random state is left as it was)."""
    from .. import nets
    name, kwargs, sample = PROFILE_NETS[net]
    state = np.random.get_state()
    try:
        np.random.seed(seed)
        model = getattr(nets, name)(dtype=dtype, **kwargs)
    finally:
        np.random.set_state(state)
    rng = np.random.default_rng(seed)
    x = rng.random((batch,) + sample).astype(dtype)
    t = rng.integers(0, 10, size=batch)
    return model, x, t


def cmd_profile(args: argparse.Namespace) -> int:
    """Run ``fastdl profile``; returns the exit status."""
    import fastdl
    from ..optimizers import Adam
    from ..profiler import profile_step
    if args.backend:
        fastdl.set_backend(args.backend)
    model, x, t = build(args.net, args.dtype, args.batch)
    result = profile_step(model, x, t, optimizer=None if args.no_update else Adam(lr=0.001),
                          repeat=args.repeat, warmup=args.warmup, refresh_peak=args.refresh_peak)
    print(result.to_json() if args.json else result)
    return 0
