"""The ``fastdl`` command line: ``fastdl train``, ``fastdl evaluate``, ``fastdl info``."""
import argparse
import os
import platform
import sys
import tempfile
import time

NET_CHOICES = ("simple", "deep", "two")
DATA_CHOICES = ("sample", "mnist", "fashion")


def _cmd_info(args):
    import numpy as np

    import fastdl
    print(f"fastdl {fastdl.__version__} on Python {platform.python_version()}, NumPy {np.__version__}")
    print(f"current backend: {fastdl.current_backend()}")
    for name in fastdl.backend.BACKENDS:
        try:
            fastdl.backend.ops(name)
            status = "available"
        except fastdl.BackendError as exc:
            status = str(exc).split("; available")[0]
        print(f"  {name:6s} {status}")
    from fastdl.datasets import data_dir
    from .bench import blas_line
    print(blas_line())
    if "numba" in fastdl.backend._loaded:
        import numba

        from fastdl.kernels.cpu import _threads
        print(f"numba: {numba.get_num_threads()} threads, {numba.threading_layer()} threading layer; "
              f"idle threads: {_threads.omp_status}")
    print(f"data folder: {data_dir()} (FASTDL_DATA_DIR)")
    return 0


def _load_data(name, flatten):
    from fastdl.datasets import load_fashion_mnist, load_mnist
    if name == "fashion":
        return load_fashion_mnist(flatten=flatten)
    return load_mnist(flatten=flatten, sample=(name == "sample"))


def _build_net(name, dtype):
    from fastdl.nets import DeepConvNet, SimpleConvNet, TwoLayerNet
    if name == "simple":
        return SimpleConvNet(dtype=dtype)
    if name == "deep":
        return DeepConvNet(dtype=dtype)
    return TwoLayerNet(input_size=784, hidden_size=50, output_size=10, dtype=dtype)


def _plot(trainer, path, title):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("fastdl: --plot needs matplotlib: python -m pip install 'fastdl-book[plot]'", file=sys.stderr)
        return False
    import numpy as np

    from fastdl.util import smooth_curve
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4))
    loss = np.array([float(v) for v in trainer.train_loss_list])
    a1.plot(loss, alpha=0.3, label="loss")
    if loss.size >= 11:
        a1.plot(smooth_curve(loss), label="smoothed")
    a1.set_xlabel("iteration")
    a1.set_ylabel("training loss")
    a1.legend()
    ep = np.arange(1, len(trainer.train_acc_list) + 1)
    a2.plot(ep, trainer.train_acc_list, "o-", label="train")
    a2.plot(ep, trainer.test_acc_list, "s-", label="test")
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1)
    a2.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    # written atomically like every fastdl file: permissions from the umask (an existing file keeps
    # its own), leftovers of killed writers in the folder removed, errors naming ``path``
    from fastdl._files import atomic_write
    fmt = os.path.splitext(os.fspath(path))[1][1:].lower()
    if fmt not in fig.canvas.get_supported_filetypes():
        fmt = "png"                       # no or unknown extension: PNG, as before
    try:
        with atomic_write(path) as f:
            fig.savefig(f, dpi=100, format=fmt)
    finally:
        plt.close(fig)
    return True


def _cmd_train(args):
    import numpy as np

    import fastdl
    from fastdl.trainer import Trainer
    if args.backend:
        fastdl.set_backend(args.backend)
    dtype = np.dtype(args.dtype)
    (x, t), (xt, tt) = _load_data(args.data, flatten=(args.net == "two"))
    np.random.seed(args.seed)
    net = _build_net(args.net, dtype)
    print(f"training {type(net).__name__} ({args.dtype}, backend {fastdl.current_backend()}) on {args.data}: "
          f"{len(x)} training and {len(xt)} test images, {args.epochs} epochs, batch {args.batch_size}, "
          f"{args.optimizer} lr {args.lr}")
    trainer = Trainer(net, x, t, xt, tt, epochs=args.epochs, mini_batch_size=args.batch_size,
                      optimizer=args.optimizer, optimizer_param={"lr": args.lr},
                      evaluate_sample_num_per_epoch=args.eval_samples or None,
                      verbose=not args.quiet, progress=not args.no_progress and sys.stderr.isatty())
    start = time.perf_counter()
    acc = trainer.train()
    took = time.perf_counter() - start
    status = "interrupted" if trainer.interrupted else "finished"
    print(f"{status} after {trainer.current_iter} iterations in {took:.1f} s "
          f"({trainer.images_per_second:,.0f} images/s); test accuracy {acc:.4f} on {len(xt)} images")
    if args.save:
        meta = {"net": args.net, "dtype": args.dtype, "data": args.data, "epochs_done": trainer.current_epoch,
                "iterations": trainer.current_iter, "test_acc": acc, "interrupted": trainer.interrupted}
        net.save_params(args.save, meta=meta)
        print(f"saved parameters to {args.save}")
    if args.plot:
        if _plot(trainer, args.plot, f"{type(net).__name__} on {args.data}"):
            print(f"saved curves to {args.plot}")
    return 130 if trainer.interrupted else 0


def _cmd_evaluate(args):
    import numpy as np

    import fastdl
    from fastdl.nets import read_meta
    if args.backend:
        fastdl.set_backend(args.backend)
    if not os.path.exists(args.params):
        print(f"fastdl evaluate: no such file: {args.params}", file=sys.stderr)
        return 2
    meta = read_meta(args.params)
    net_name = args.net or meta.get("net")
    if net_name not in NET_CHOICES:
        print(f"fastdl evaluate: {args.params} does not say which network it holds; pass --net "
              f"({', '.join(NET_CHOICES)})", file=sys.stderr)
        return 2
    dtype = np.dtype(args.dtype or meta.get("dtype", "float32"))
    net = _build_net(net_name, dtype)
    net.load_params(args.params)
    data = args.data or meta.get("data", "sample")
    _, (xt, tt) = _load_data(data, flatten=(net_name == "two"))
    start = time.perf_counter()
    acc = net.accuracy(xt, tt, batch_size=args.batch_size)
    took = time.perf_counter() - start
    print(f"{type(net).__name__} from {args.params}: test accuracy {acc:.4f} on {len(xt)} {data} test images "
          f"({took:.2f} s, backend {fastdl.current_backend()})")
    return 0


def _cmd_compare(args):
    import json as _json

    import fastdl
    from fastdl import compare
    nets = [n.strip() for n in args.nets.split(",") if n.strip()]
    bad = [n for n in nets if n not in ("simple", "deep")]
    if bad:
        print(f"fastdl compare: unknown net(s) {bad}; choose from simple, deep", file=sys.stderr)
        return 2
    backends = [b.strip() for b in args.backends.split(",")] if args.backends else None
    if backends:
        for b in backends:
            fastdl.backend.ops(b)                 # raises BackendError naming the available ones
    quiet = args.json or not sys.stderr.isatty()
    bar = None
    if not quiet:
        from tqdm.auto import tqdm
        bar = tqdm(bar_format="{desc}", leave=False)

    def progress(msg):
        if bar is not None:
            bar.set_description_str(f"timing {msg}")
        elif not args.json:
            print(f"timing {msg}", file=sys.stderr, flush=True)
    try:
        results = compare.run(nets=nets, batch=args.batch_size, dtype=args.dtype, repeat=args.repeat,
                              backends=backends, torch=not args.no_torch, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(_json.dumps({"dtype": args.dtype, "batch": args.batch_size, "repeat": args.repeat,
                           "results": results}, indent=1))
    else:
        import numba
        print(f"fastdl {fastdl.__version__}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, {numba.get_num_threads()} Numba threads; times are medians, "
              f"'x' is the speed-up over numpy, max|diff| the largest difference from numpy's results")
        from .bench import blas_line
        print(blas_line())
        print(compare.format_table(results, args.dtype, args.batch_size, args.repeat))
        if "torch" not in {b for r in results for b in r["times"]} and not args.no_torch:
            print("\n(PyTorch not installed: `pip install torch==2.13.0` adds it as a peer)")
    bad = [r["what"] for r in results if not r["ok"]]
    if bad:
        print(f"fastdl compare: results differ from the reference beyond tolerance: {bad}", file=sys.stderr)
        return 1
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastdl",
        description="fastdl: the networks of 'Deep Learning from Scratch' on fast, switchable kernels.",
        epilog="Example: fastdl train --net simple --data sample --epochs 10 --save model.npz --plot curves.png")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="show the version, the backends available here and the data folder")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("train", help="train one of the book's networks on MNIST",
                       description="Train a network with the book's Trainer. Ctrl-C stops after the current "
                                   "step and still saves what was learned.")
    p.add_argument("--net", choices=NET_CHOICES, default="simple",
                   help="simple: SimpleConvNet (ch. 7), deep: DeepConvNet (ch. 8), two: TwoLayerNet (ch. 5). "
                        "Default: simple")
    p.add_argument("--data", choices=DATA_CHOICES, default="sample",
                   help="sample: the 5,000 training images shipped with fastdl and the official 10,000 test "
                        "images (offline); mnist: the full set (downloaded once); fashion: Fashion-MNIST. "
                        "Default: sample")
    p.add_argument("--epochs", type=int, default=10, help="default 10")
    p.add_argument("--batch-size", type=int, default=100, help="default 100")
    p.add_argument("--optimizer", default="adam",
                   choices=("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"), help="default adam")
    p.add_argument("--lr", type=float, default=0.001, help="learning rate, default 0.001")
    p.add_argument("--backend", choices=("numpy", "numba", "cuda"), default=None,
                   help="kernels to run on (default: FASTDL_BACKEND, else numba)")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    p.add_argument("--eval-samples", type=int, default=1000,
                   help="images used for the per-epoch accuracies (0: all). Default 1000")
    p.add_argument("--seed", type=int, default=0, help="seed of NumPy's RNG (weights, batches, dropout); default 0")
    p.add_argument("--save", metavar="FILE.npz", help="save the trained parameters here")
    p.add_argument("--plot", metavar="FILE.png", help="save loss and accuracy curves here (needs matplotlib)")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("compare", help="time every layer and a training step on each backend, with correctness",
                       description="Run every layer (forward + backward) and a whole training step of the "
                                   "book's networks under each available backend on identical inputs, and "
                                   "print median times, speed-ups over the numpy reference, and the largest "
                                   "difference from the reference's results. PyTorch, when installed, is "
                                   "timed in its own process. Exit status 1 if a result differs beyond "
                                   "tolerance.")
    p.add_argument("--nets", default="simple,deep", help="comma-separated: simple, deep (default both)")
    p.add_argument("--batch-size", type=int, default=100, help="default 100")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    p.add_argument("--repeat", type=int, default=10, help="timed repetitions per measurement, default 10")
    p.add_argument("--backends", help="comma-separated backends (default: all available here)")
    p.add_argument("--no-torch", action="store_true", help="do not time PyTorch even if installed")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON instead of a table")
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser("evaluate", help="test accuracy of saved parameters",
                       description="Load parameters saved by `fastdl train --save` and measure test accuracy.")
    p.add_argument("params", help="a .npz file written by fastdl train --save")
    p.add_argument("--net", choices=NET_CHOICES, help="network (default: the one recorded in the file)")
    p.add_argument("--data", choices=DATA_CHOICES, help="test set (default: the one recorded in the file)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default: as trained")
    p.add_argument("--backend", choices=("numpy", "numba", "cuda"), default=None)
    p.add_argument("--batch-size", type=int, default=500)
    p.set_defaults(func=_cmd_evaluate)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from fastdl.backend import BackendError
    from fastdl.datasets import DataUnavailable
    try:
        return args.func(args)
    except (BackendError, DataUnavailable) as exc:
        print(f"fastdl {args.command}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
