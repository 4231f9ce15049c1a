"""``fastdl search``: the book's random hyper-parameter search (ch. 6) on every core or a Dask
cluster (``fastdl.search``), its journal, --resume, and the command that resumes a lost search."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from .._text import one_line
from . import (DATA_CHOICES, EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_TERMINATED, Failure, Terminated, UsageError,
               _add_backend, _add_dtype, _add_optimizer, _add_quiet, _check_output, _out, _whole_number,
               cluster_address, layer_sizes, non_negative_int, positive_int, search_param, seed_int)


def add_parser(sub: Any) -> None:
    """The ``search`` subcommand on ``sub`` (the subparsers of ``fastdl``)."""
    p = sub.add_parser("search", help="the book's hyper-parameter search (ch. 6) on all cores or a Dask cluster",
                       description="Random search over the learning rate and weight decay as in the book's "
                                   "ch06/hyperparameter_optimization.py (its defaults: MultiLayerNet 6x100, 500 "
                                   "training images of which 20% held out, 50 epochs of batch 100, SGD, "
                                   "lr 1e-6:1e-2:log, weight decay 1e-8:1e-4:log, 100 trials, the best 20 "
                                   "printed). Trials run in worker processes on every core (or on a Dask cluster: "
                                   "--cluster / FASTDL_CLUSTER); each trial's seed comes from --seed and its "
                                   "index, so the table is the same with any number of workers. Each finished "
                                   "trial is appended to --out; --resume runs only the trials it lacks. Exit "
                                   "status 1 if no trial ended ok or the Dask scheduler was lost (the line "
                                   "printed then gives the command that resumes).")
    p.add_argument("--param", action="append", type=search_param, metavar="NAME=LOW:HIGH[:log|linear]",
                   help="a range to draw from: lr, weight_decay (wd) or dropout, e.g. lr=1e-6:1e-2; "
                        "without :log or :linear, a range spanning two decades or more (HIGH/LOW >= 100, "
                        "both > 0) is drawn log-scale, any other linearly (the header says which); "
                        "NAME=VALUE fixes it; repeatable. Default: the book's lr and weight_decay ranges")
    p.add_argument("--trials", type=positive_int, default=100,
                   help="default 100; with --resume, more than the journal's extends the search (trial i "
                        "depends only on --seed and i), fewer is refused")
    p.add_argument("--seed", type=seed_int, default=0, help="the search seed, 0 to 2**32-1; default 0")
    p.add_argument("--epochs", type=positive_int, default=50, help="per trial; default 50")
    p.add_argument("--train-size", type=lambda t: _whole_number(t, 5), default=500,
                   help="training images used, 20%% of them held out for validation; default 500")
    p.add_argument("--batch-size", type=positive_int, default=100, help="default 100")
    _add_optimizer(p, "sgd")
    p.add_argument("--hidden", type=layer_sizes, default=[100] * 6, metavar="N,N,...",
                   help="hidden layer sizes of the MultiLayerNet; default 100,100,100,100,100,100")
    p.add_argument("--data", choices=DATA_CHOICES, default="sample",
                   help="sample: the 5,000 training images shipped with fastdl (offline); mnist: the full set "
                        "(downloaded once); fashion: Fashion-MNIST. Default: sample")
    _add_dtype(p, "float64", "default float64 (the book's)")
    _add_backend(p)
    p.add_argument("--eval-samples", type=non_negative_int, default=0,
                   help="images for the per-epoch accuracies (0: all, as the book's script). Default 0")
    p.add_argument("--workers", type=positive_int, default=None,
                   help="local worker processes (default: one per core)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="threads per trial (default: cores divided by the workers on the machine)")
    p.add_argument("--cluster", type=cluster_address, default=None, metavar="tcp://HOST:PORT",
                   help="run the trials on this Dask scheduler's workers (default: FASTDL_CLUSTER if set; "
                        "'local' runs here). Needs Dask: python -m pip install -e '.[distributed]' in fastdl's "
                        "clone")
    p.add_argument("--out", default="fastdl-search.jsonl", metavar="JOURNAL.jsonl",
                   help="journal: one JSON line per finished trial (default fastdl-search.jsonl); refused if it "
                        "already holds trials, unless --resume")
    p.add_argument("--resume", action="store_true",
                   help="continue the search in --out (same settings and backend required; more --trials "
                        "extends it); finished trials are not run again")
    p.add_argument("--top", type=positive_int, default=20, help="best trials printed and plotted; default 20")
    p.add_argument("--plot", metavar="FILE.png", help="the book's figure: accuracy curves of the best trials")
    p.add_argument("--scatter", metavar="FILE.png",
                   help="validation accuracy over (lr, weight decay), log axes")
    _add_quiet(p, "no line per finished trial")
    p.set_defaults(func=cmd_search)


def cmd_search(args: argparse.Namespace) -> int:
    """Run ``fastdl search``; returns the exit status."""
    # -- every argument and output path is checked before any work -------------------------
    cluster, where = args.cluster, "--cluster"
    if cluster is None and os.environ.get("FASTDL_CLUSTER", "").strip():
        where = "FASTDL_CLUSTER"
        try:
            cluster = cluster_address(os.environ["FASTDL_CLUSTER"])
        except argparse.ArgumentTypeError as exc:
            raise UsageError(f"FASTDL_CLUSTER: {exc}") from None
    if cluster == "local":
        cluster = None
    if cluster is not None and args.workers is not None:
        raise UsageError(f"--workers is for local runs ({where} sends the trials to a Dask cluster, whose "
                         "workers are started with `dask worker`); pass --cluster local to run here")
    outputs = [(args.out, "--out"), (args.plot, "--plot"), (args.scatter, "--scatter")]
    for path, flag in outputs:
        _check_output(path, flag)
    named = [(os.path.realpath(p), f) for p, f in outputs if p]
    for i, (a, fa) in enumerate(named):
        for b, fb in named[i + 1:]:
            if a == b:
                raise UsageError(f"{fa} and {fb} name the same file ({a})")
    import importlib.util
    if (args.plot or args.scatter) and importlib.util.find_spec("matplotlib") is None:
        raise UsageError("--plot and --scatter need matplotlib: python -m pip install matplotlib")
    if cluster is not None:
        try:
            missing = importlib.util.find_spec("distributed") is None
        except (ImportError, ValueError):
            missing = True
        if missing:
            raise UsageError(f"{where} needs Dask: python -m pip install -e '.[distributed]' (in fastdl's clone)")
    space = {}
    for name, rng in args.param or []:
        if name in space:
            raise UsageError(f"--param {name} is given twice")
        space[name] = rng
    from fastdl import search
    if args.resume and not os.path.exists(args.out):
        print(f"fastdl search: no journal at {args.out} yet; starting the search there", file=sys.stderr)
    try:
        result = search.random_search(
            space=space, trials=args.trials, seed=args.seed, workers=args.workers, cluster=cluster,
            journal=args.out, resume=args.resume, epochs=args.epochs, train_size=args.train_size,
            optimizer=args.optimizer, data=args.data, hidden=args.hidden, batch_size=args.batch_size,
            dtype=args.dtype, backend=args.backend, eval_samples=args.eval_samples or None,
            threads=args.threads, verbose=not args.quiet,
            progress=not args.no_progress and sys.stderr.isatty())
    except (search.SearchUsageError, search.ConfigMismatch, search.JournalExists, search.JournalBusy) as exc:
        raise UsageError(one_line(exc)) from None
    except search.JournalError as exc:
        raise Failure(one_line(exc)) from None
    except search.SchedulerLost as exc:
        partial = getattr(exc, "search_result", None)
        if partial is not None and not partial.trials:
            done = "no trial had finished"
        else:
            done = (f"{len(partial.trials)} of {args.trials} trials are" if partial is not None
                    else "the finished trials are") + f" in {args.out}"
        backend = partial.config["backend"] if partial is not None else args.backend
        print(f"fastdl search: lost the Dask scheduler at {exc.address}; {done}; once it is back "
              f"(or with --cluster local to run here), resume with: {_search_command(args, cluster, backend)}",
              file=sys.stderr)
        return EXIT_FAILURE
    except search.SearchAborted as exc:
        raise (UsageError if exc.usage else Failure)(one_line(exc)) from None
    except (KeyboardInterrupt, Terminated) as exc:
        partial = getattr(exc, "search_result", None)
        how = "interrupted (Ctrl-C)" if isinstance(exc, KeyboardInterrupt) else "terminated (SIGTERM)"
        if partial is not None and partial.complete:
            done = f"all {args.trials} trials are in {args.out}; the same command with --resume prints the result"
        else:
            done = (f"{len(partial.trials)} of {args.trials} trials are" if partial is not None
                    else "the finished trials are") + \
                f" in {args.out}; the same command with --resume runs the rest"
        print(f"\nfastdl search: {how}: {done}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, KeyboardInterrupt) else EXIT_TERMINATED
    _out("=========== Hyper-Parameter Optimization Result ===========")
    table = result.table(args.top)
    if table:
        _out(table)
    _out(result.summary())
    problems = []
    for path, draw in ((args.plot, result.plot_curves), (args.scatter, result.plot_scatter)):
        if not path:
            continue
        try:
            draw(path, args.top)
            _out(f"saved {'curves' if draw == result.plot_curves else 'scatter plot'} to {path}")
        except Exception as exc:                    # noqa: BLE001 - the trials are in the journal
            problems.append(f"could not write {path} ({one_line(exc)})")
    if not result.counts()["ok"]:
        problems.append(f"no trial ended ok (see {args.out})")
    if problems:
        print(f"fastdl search: {'; '.join(problems)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def _search_command(args, cluster, backend):
    """The `fastdl search` command that resumes the search of ``args`` (every setting the journal
    compares, its backend and cluster explicit), shell-quoted."""
    import shlex
    words = ["fastdl", "search"]
    for name, (low, high, scale) in args.param or []:
        words += ["--param", f"{name}={low!r}" if low == high else f"{name}={low!r}:{high!r}:{scale}"]
    for flag, value, default in (("--trials", args.trials, None), ("--seed", args.seed, 0),
                                 ("--epochs", args.epochs, 50), ("--train-size", args.train_size, 500),
                                 ("--batch-size", args.batch_size, 100), ("--optimizer", args.optimizer, "sgd"),
                                 ("--hidden", ",".join(map(str, args.hidden)), "100,100,100,100,100,100"),
                                 ("--data", args.data, "sample"), ("--dtype", args.dtype, "float64"),
                                 ("--backend", backend, None), ("--eval-samples", args.eval_samples, 0),
                                 ("--threads", args.threads, None), ("--cluster", cluster, None),
                                 ("--out", args.out, None), ("--top", args.top, 20),
                                 ("--plot", args.plot, None), ("--scatter", args.scatter, None)):
        if value is not None and value != default:
            words += [flag, str(value)]
    words += [flag for flag, on in (("--quiet", args.quiet), ("--no-progress", args.no_progress)) if on]
    return " ".join(shlex.quote(w) for w in words + ["--resume"])
