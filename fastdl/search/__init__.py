"""The book's hyper-parameter search (ch06 ``hyperparameter_optimization.py``) on all cores, or on a
Dask cluster, with nothing lost.

>>> from fastdl.search import random_search
>>> result = random_search(trials=100, seed=0)          # the book's search, every core of this machine
>>> print(result.table(20))                              # Best-1(val acc:0.8) | lr:0.0071..., weight decay:...

The book's defaults: ``MultiLayerNet(784, [100] * 6, 10, weight_decay_lambda=wd)``; the first 500
training images, shuffled once and 20% held out for validation; 50 epochs of mini-batches of 100
with the book's ``Trainer`` and SGD; lr = 10^U(-6, -2), weight decay = 10^U(-8, -4); 100 trials,
ranked by the last validation accuracy of the Trainer's list (the book's ``val_acc_list[-1]``).

**Seeds.** Trial ``i``'s hyper-parameters and the seed of its training (NumPy's global RNG, seeded
in the worker before the weights are drawn: weights, mini-batches, dropout) come from
``numpy.random.SeedSequence(seed, spawn_key=(i, 0))`` and ``(i, 1)``; the shuffle that splits
training from validation images, shared by all trials as in the book, from ``SeedSequence(seed)``.
So a search gives the same trials, curves and table with 1 worker, 2 workers or on a cluster,
and a trial run again (after its worker died, or on ``resume``) gives what it would have given.

**Where trials run.** Locally (the default, nothing to install) in ``workers`` processes
(default: the usable cores), each with ``threads`` threads (default: cores // workers; 2 workers
on 2 cores run 1 Numba and 1 BLAS thread each), set in the worker's environment before NumPy and
Numba load. With ``cluster`` (a scheduler address ``tcp://HOST:PORT``, a ``distributed.Client`` or
a ``LocalCluster``) on a Dask cluster (``python -m pip install -e '.[distributed]'`` in fastdl's
clone; ``fastdl`` must be installed on the workers too): tasks carry the data spec, each worker loads the images
itself, and a trial's thread share is the machine's cores divided by the worker processes there.

**Nothing lost.** With ``journal``, each finished trial is one JSON line, appended and fsync'd
(see ``_journal``), so Ctrl-C, a killed worker or a crashed client lose at most the trials in
flight; ``resume=True`` checks that the journal holds the same search and runs only the trials
it lacks. A trial that raises is recorded with ``status`` "error" and its message, one whose loss
becomes NaN or infinite stops and is recorded as "diverged"; the search goes on. A worker that
dies is reported and its trial run once more (recorded as an error if it dies again). A Dask
scheduler that goes away mid-search raises :class:`SchedulerLost` (a SearchAborted); the
journal holds every trial finished before, and ``resume`` runs the rest (on a new cluster or
locally: where a trial runs does not change its result).

A trial's record (a dict, one journal line): ``index``, ``seed`` (its training seed), ``params``
(``{"lr": ..., "weight_decay": ...}``), ``status`` ("ok", "diverged" or "error"), ``val_acc``
(the book's: the last entry of ``val_acc_curve``), ``val_acc_end`` (after the last step),
``loss_end`` (the last mini-batch's loss), ``val_acc_curve`` and ``train_acc_curve`` (per epoch,
measured at its start as the book's Trainer does), ``error`` (the message, or None), ``duration`` (seconds in the worker, loading
included), ``data_load`` (seconds spent loading the data for it; 0 when the worker had it),
``worker`` (``host:pid`` or the Dask worker's address), ``attempts`` (the times it was given to a
worker: more than 1 after a worker died; on Dask, the scheduler also counts a trial that waited in
the queue of a worker that died), ``threads`` (Numba's threads during the trial, None when Numba
was not used), ``blas_threads`` (those of NumPy's BLAS), ``backend`` (the backend the trial ran
on: the journal header's; None when its worker died before) and ``finished`` (the client's clock).

**Plugins.** ``FASTDL_SEARCH_PLUGIN`` (a module, or a ``.py`` file) runs code of one's own in the
worker at the start of each trial, with options the client computes per trial and sends with the
task (``fastdl.search._plugin`` documents the two functions).
"""
from __future__ import annotations

import math
import operator
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from .._text import one_line
from ..trainer import OPTIMIZER_NAMES
from . import _journal, _plugin
from ._journal import ConfigMismatch, JournalBusy, JournalError, JournalExists
from ._local import LocalEngine, SchedulerLost, SearchAborted
from ._space import (BOOK_SPACE, PARAMS, describe, normalize_space, parse_param, parse_range, sampling,
                     split_seed, trial_params, trial_seed)
from ._trial import TRAIN_IMAGES, usable_cores

__all__ = ["random_search", "load_journal", "SearchResult", "SearchError", "SearchUsageError",
           "SearchAborted", "SchedulerLost", "ConfigMismatch", "JournalError", "JournalExists", "JournalBusy",
           "BOOK_SPACE", "PARAMS", "parse_param", "parse_range", "book_line", "header_line", "make_config",
           "make_tasks", "resolve_backend"]

#: a trial's record, one line of the journal (see the module docstring)
Record = Dict[str, Any]

DATA_CHOICES = tuple(TRAIN_IMAGES)
OPTIMIZER_CHOICES = OPTIMIZER_NAMES
BOOK_HIDDEN = (100, 100, 100, 100, 100, 100)


class SearchError(Exception):
    """Base of the errors of a search."""


class SearchUsageError(SearchError, ValueError):
    """An argument of the search is not usable (nothing was run)."""


def _whole(name: str, value: Any, minimum: int, maximum: Optional[int] = None) -> int:
    if isinstance(value, bool):
        raise SearchUsageError(f"{name} must be a whole number, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise SearchUsageError(f"{name} must be a whole number, got {value!r}") from None
    if value < minimum or (maximum is not None and value > maximum):
        bound = f">= {minimum}" if maximum is None else f"between {minimum} and {maximum}"
        raise SearchUsageError(f"{name} must be {bound}, got {value}")
    return value


def make_config(space: Optional[Mapping[str, Any]] = None, trials: int = 100, seed: int = 0,
                epochs: int = 50, train_size: int = 500, validation_rate: float = 0.2,
                batch_size: int = 100, optimizer: str = "sgd", hidden: Sequence[int] = BOOK_HIDDEN,
                data: str = "sample", dtype: Any = "float64", backend: Optional[str] = None,
                eval_samples: Optional[int] = None) -> Dict[str, Any]:
    """The search's configuration, checked (SearchUsageError naming the argument otherwise): what
    the journal's header records and ``resume`` compares."""
    try:
        space = normalize_space(space)
    except ValueError as exc:
        raise SearchUsageError(str(exc)) from None
    trials = _whole("trials", trials, 1)
    seed = _whole("seed", seed, 0, 2**63 - 1)
    epochs = _whole("epochs", epochs, 1)
    batch_size = _whole("batch_size", batch_size, 1)
    if data not in TRAIN_IMAGES:
        raise SearchUsageError(f"data must be one of {', '.join(DATA_CHOICES)}, got {data!r}")
    train_size = _whole("train_size", train_size, 2, TRAIN_IMAGES[data])
    try:
        validation_rate = float(validation_rate)
    except (TypeError, ValueError):
        raise SearchUsageError(f"validation_rate must be a number, got {validation_rate!r}") from None
    if not 0 < validation_rate < 1:
        raise SearchUsageError(f"validation_rate must be between 0 and 1, got {validation_rate}")
    n_val = int(train_size * validation_rate)
    if n_val < 1 or n_val >= train_size:
        raise SearchUsageError(f"train_size {train_size} with validation_rate {validation_rate} leaves "
                               f"{n_val} validation and {train_size - n_val} training images; both need one")
    optimizer = str(optimizer).lower()
    if optimizer == "rmsprpo":
        optimizer = "rmsprop"
    if optimizer not in OPTIMIZER_CHOICES:
        raise SearchUsageError(f"optimizer must be one of {', '.join(OPTIMIZER_CHOICES)}, got {optimizer!r}")
    try:
        sizes = [_whole("hidden sizes", h, 1) for h in hidden]
    except TypeError:
        raise SearchUsageError(f"hidden must be a list of layer sizes, got {hidden!r}") from None
    if not sizes:
        raise SearchUsageError("hidden needs at least one layer size")
    dtype = str(getattr(dtype, "__name__", dtype))
    if dtype not in ("float32", "float64"):
        raise SearchUsageError(f"dtype must be float32 or float64, got {dtype!r}")
    backend = resolve_backend(backend)
    if eval_samples is not None:
        eval_samples = _whole("eval_samples", eval_samples, 1)
    return {"seed": seed, "trials": trials, "space": space, "epochs": epochs, "batch_size": batch_size,
            "train_size": train_size, "validation_rate": validation_rate, "optimizer": optimizer,
            "hidden": sizes, "data": data, "dtype": dtype, "backend": backend, "eval_samples": eval_samples}


def resolve_backend(backend: Optional[str] = None) -> str:
    """The backend a search's trials run on, by name, without loading it here: ``backend`` if
    given, else that of a ``using_backend`` block or ``set_backend`` in this thread, else
    ``FASTDL_BACKEND``, else the default (numba). Recorded in the journal and sent with every
    task, so that every trial, on any worker, runs on it (SearchUsageError for an unknown name)."""
    from fastdl import backend as _backend
    choices = ", ".join(_backend.BACKENDS)
    if backend is None:
        stack = getattr(_backend._local, "stack", None)
        if stack:
            return str(stack[-1])
        if _backend._global_name is not None:
            return _backend._global_name
        env = os.environ.get("FASTDL_BACKEND", "").strip()
        if env and env not in _backend.BACKENDS:
            raise SearchUsageError(f"FASTDL_BACKEND must be one of {choices}, got {env!r}")
        return env or _backend.DEFAULT_BACKEND
    if backend not in _backend.BACKENDS:
        raise SearchUsageError(f"backend must be one of {choices} (or None: FASTDL_BACKEND, else "
                               f"{_backend.DEFAULT_BACKEND}), got {backend!r}")
    return backend


def _plugins(trials: int, skip: Iterable[int]) -> Dict[int, Dict[str, Any]]:
    """index -> the plugin part of its task (``fastdl.search._plugin``); {} without a plugin."""
    skipped = set(skip)
    try:
        return _plugin.task_plugins(i for i in range(trials) if i not in skipped)
    except Exception as exc:                      # noqa: BLE001 - the plugin's own code
        raise SearchUsageError(f"{_plugin.VARIABLE}={os.environ.get(_plugin.VARIABLE)!r} cannot be "
                               f"used: {one_line(exc, with_type=True)}") from None


def make_tasks(config: Mapping[str, Any], skip: Iterable[int] = ()) -> List[Dict[str, Any]]:
    """The tasks of the trials not in ``skip`` (indices), in index order."""
    trial_config = {k: config[k] for k in ("hidden", "epochs", "batch_size", "optimizer", "dtype",
                                           "backend", "eval_samples")}
    trial_config["data"] = {"data": config["data"], "train_size": config["train_size"],
                            "validation_rate": config["validation_rate"], "split_seed": split_seed(config["seed"])}
    skipped = set(skip)
    plugins = _plugins(config["trials"], skipped)
    tasks = []
    for i in range(config["trials"]):
        if i in skipped:
            continue
        task = {"index": i, "seed": trial_seed(config["seed"], i),
                "params": trial_params(config["space"], config["seed"], i), "attempt": 1, "config": trial_config}
        if i in plugins:
            task["plugin"] = plugins[i]
        tasks.append(task)
    return tasks


def header_line(config: Mapping[str, Any]) -> str:
    """What a search draws and runs on: ``search: 100 trials, seed 0; lr 1e-06..0.01 log-scale,
    weight decay 1e-08..0.0001 log-scale; backend numba``."""
    n = config["trials"]
    return (f"search: {n} trial{'s' if n != 1 else ''}, seed {config['seed']}; {sampling(config['space'])}; "
            f"backend {config['backend']}")


def book_line(record: Mapping[str, Any], prefix: str = "val acc") -> str:
    """The book's line for a trial: ``val acc:0.83 | lr:0.0061..., weight decay:1.2e-06``."""
    line = f"{prefix}:{record.get('val_acc')} | {describe(record['params'])}"
    if record.get("status") == "diverged":
        line += f" (diverged: {record.get('error')})"
    elif record.get("status") == "error":
        line = f"trial {record['index']} failed: {record.get('error')} | {describe(record['params'])}"
    return line


def _clean(value: Any) -> Any:
    """Non-finite floats as None: the journal is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


class SearchResult:
    """What a search found.

    trials: the records of the finished trials, by index (see the module docstring).
    config: the search's configuration. journal: its path or None. elapsed: seconds of this run.
    events: the reports of this run (workers that died). complete: every trial has a record.
    ran: the trials finished by this run (the others were in the journal already).
    """

    def __init__(self, config: Dict[str, Any], trials: Iterable[Record], journal: Optional[str] = None,
                 elapsed: float = 0.0, events: Iterable[str] = (), engine: Optional[str] = None,
                 ran: int = 0) -> None:
        self.config = config
        """The search's configuration (:func:`make_config`; the journal's header)."""
        self.ran = ran
        """The number of trials finished by this run (the others were in the journal already)."""
        self.trials: List[Record] = sorted(trials, key=lambda r: r["index"])
        """The records of the finished trials, by index (see the module docstring)."""
        self.journal = journal
        """The journal's path, or None."""
        self.elapsed = elapsed
        """Seconds this run took."""
        self.events = list(events)
        """The reports of this run (workers that died, a torn journal line dropped)."""
        self.engine = engine
        """Where this run's trials ran (``"4 local workers x 1 thread"``, or the Dask cluster's address
        and workers), or None."""

    @property
    def complete(self) -> bool:
        """Every trial of the search has a record."""
        return len({r["index"] for r in self.trials}) >= self.config["trials"]

    def counts(self) -> Dict[str, int]:
        """``{"ok": n, "diverged": n, "error": n}``."""
        out = {"ok": 0, "diverged": 0, "error": 0}
        for r in self.trials:
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    def best(self, n: int = 20) -> List[Record]:
        """The ``n`` best trials: by the book's validation accuracy, highest first (ties by index);
        diverged trials after those that ended ok (their accuracy is from before the loss became
        NaN, where the book's would be that of a NaN network); trials that raised are left out."""
        ranked = [r for r in self.trials if r["status"] != "error" and r.get("val_acc") is not None]
        ranked.sort(key=lambda r: (r["status"] != "ok", -r["val_acc"], r["index"]))
        return ranked[:n]

    def table(self, n: int = 20) -> str:
        """The book's result lines: ``Best-1(val acc:0.83) | lr:0.0061..., weight decay:1.2e-06``."""
        lines = []
        for k, r in enumerate(self.best(n), 1):
            line = f"Best-{k}(val acc:{r['val_acc']}) | {describe(r['params'])}"
            lines.append(line + (" (diverged)" if r["status"] == "diverged" else ""))
        return "\n".join(lines)

    def summary(self) -> str:
        """One line: trials by status, time and rate of this run, engine, journal."""
        c = self.counts()
        parts = [f"{c['ok']} ok"] + [f"{c[k]} {k}" for k in ("diverged", "error") if c.get(k)]
        line = f"{len(self.trials)} of {self.config['trials']} trials ({', '.join(parts)})"
        if self.ran:
            rate = self.ran / self.elapsed * 60 if self.elapsed else 0.0
            line += f"; this run: {self.ran} in {self.elapsed:.1f} s ({rate:.1f} trials/min)"
            if self.engine:
                line += f" on {self.engine}"
        if self.journal:
            line += f"; journal {self.journal}"
        return line

    def plot_curves(self, path: Union[str, os.PathLike], n: int = 20) -> None:
        """The book's figure: validation (solid) and training (dashed) accuracy per epoch of the ``n``
        best trials, one small plot each, five a row; written atomically (PNG unless ``path``
        names another format matplotlib writes). Needs matplotlib."""
        from ._plots import curves
        curves(self.best(n), path)

    def plot_scatter(self, path: Union[str, os.PathLike], n: int = 20) -> None:
        """Validation accuracy over (lr, weight decay) on the ranges' own axes (log for log ranges);
        the ``n`` best circled, diverged trials as crosses. Needs matplotlib."""
        from ._plots import scatter
        scatter(self.trials, self.config["space"], self.best(n), path)

    def __repr__(self) -> str:
        return f"<SearchResult {self.summary()}>"


def load_journal(path: Union[str, os.PathLike]) -> SearchResult:
    """A :class:`SearchResult` from a journal, without running anything (a torn last line is
    ignored)."""
    config, records = _journal.read(path)
    return SearchResult(config, records, journal=os.fspath(path))


def _engine(cluster: Any, workers: Optional[int], threads: Optional[int],
            notify: Callable[[str], None]) -> Any:
    if cluster is not None:
        if workers is not None:
            raise SearchUsageError("workers is for local runs; a cluster's workers are started with "
                                   "`dask worker`")
        from ._dask import DaskEngine, import_distributed
        try:
            import_distributed()
        except ImportError as exc:
            raise SearchUsageError(str(exc)) from None
        return DaskEngine(cluster, threads, notify)
    cores = usable_cores()
    return LocalEngine(cores if workers is None else workers, threads, notify, cores)


class _Progress:
    """A progress bar (tqdm, on stderr): trials done, best so far, trials per minute this run."""

    def __init__(self, total: int, done: int, best: Optional[float], enabled: bool) -> None:
        self.bar: Any = None
        self.start = time.perf_counter()
        self.finished = 0
        self.best = best
        if enabled:
            from tqdm.auto import tqdm
            self.bar = tqdm(total=total, initial=done, unit="trial", desc="search", file=sys.stderr,
                            dynamic_ncols=True, smoothing=0, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} "
                                                                        "[{elapsed}<{remaining}{postfix}]")
            self._postfix()

    def _postfix(self) -> None:
        minutes = (time.perf_counter() - self.start) / 60
        rate = f"{self.finished / minutes:.1f} trials/min" if self.finished and minutes > 0 else "- trials/min"
        best = f"best {self.best:.4g}" if self.best is not None else "best -"
        self.bar.set_postfix_str(f"{best}, {rate}", refresh=False)

    def done(self, record: Record) -> None:
        self.finished += 1
        if record["status"] != "error" and record.get("val_acc") is not None:
            self.best = record["val_acc"] if self.best is None else max(self.best, record["val_acc"])
        if self.bar is not None:
            self._postfix()
            self.bar.update(1)

    def tick(self) -> None:
        if self.bar is not None:
            self._postfix()
            self.bar.refresh()

    def say(self, line: str, err: bool = False) -> None:
        stream = sys.stderr if err else sys.stdout
        if self.bar is not None:
            self.bar.write(line, file=stream)
        else:
            print(line, file=stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def random_search(space: Optional[Mapping[str, Any]] = None, trials: int = 100, seed: int = 0,
                  workers: Optional[int] = None, cluster: Any = None,
                  journal: Union[str, os.PathLike, None] = None, resume: bool = False,
                  epochs: int = 50, train_size: int = 500, optimizer: str = "sgd", data: str = "sample",
                  progress: bool = True, verbose: bool = False, hidden: Sequence[int] = BOOK_HIDDEN,
                  batch_size: int = 100, validation_rate: float = 0.2, dtype: Any = "float64",
                  backend: Optional[str] = None, eval_samples: Optional[int] = None,
                  threads: Optional[int] = None,
                  on_trial: Optional[Callable[[Record], object]] = None) -> SearchResult:
    """Run the book's random search; returns a :class:`SearchResult`.

    space: ``{name: range}`` for ``lr``, ``weight_decay`` (``wd``) and ``dropout``; a range is
        ``"LOW:HIGH:log"``, ``"LOW:HIGH:linear"``, a single number (fixed) or ``(low, high[, scale])``;
        without a scale (``"LOW:HIGH"``, ``(low, high)``) a range spanning two decades or more
        (high / low >= 100, both > 0) is log-scale, any other linear.
        Names not given keep the book's ranges (lr 1e-6:1e-2:log, weight_decay 1e-8:1e-4:log); a
        ``dropout`` range trains ``MultiLayerNetExtend(use_dropout=True)``.
    trials: number of trials (100). seed: the search seed (0): see the module docstring.
    workers: local worker processes (default: the usable cores; never more than the trials to run).
        threads: threads per trial (default: cores // workers started, locally; on a cluster, the
        machine's cores // its Dask worker processes).
    cluster: run on Dask: ``"tcp://HOST:PORT"``, a ``distributed.Client`` or a ``LocalCluster``.
    journal: path of the journal (None: none). A journal that already holds trials is refused
        (JournalExists) unless ``resume``; ``resume=True`` runs only the trials it lacks, after
        checking that it holds this same search (ConfigMismatch otherwise; JournalError for a
        trial recorded twice or outside the search). ``trials`` above the journal's extends the
        search (trial i depends only on the seed and i); below it is a ConfigMismatch.
    epochs (50), train_size (500 images, ``validation_rate`` 0.2 of them held out), batch_size
        (100), optimizer (``"sgd"``; any of the book's: momentum, nesterov, adagrad, rmsprop, adam),
        hidden (six layers of 100), dtype ("float64", as the book), backend (None: that of this
        thread, else FASTDL_BACKEND, else numba; resolved here, recorded in the journal and used
        by every worker), eval_samples (None: every image for the per-epoch accuracies, as the book's script):
        the trials' training, as ``Trainer(network, ...)`` in the book.
    data: "sample" (the 5,000 training images shipped with fastdl), "mnist" (the full set, downloaded
        on first use) or "fashion".
    progress: a progress bar on stderr (trials done, best so far, trials per minute).
    verbose: print a header (trials, seed, how each parameter is drawn, backend) and the book's
        line for each trial as it finishes.
    on_trial: called with each new record as it is written.

    Raises SearchUsageError (a bad argument), JournalExists, JournalBusy, ConfigMismatch, JournalError,
    SearchAborted (the data cannot be had, workers cannot start). Ctrl-C stops the workers and
    raises KeyboardInterrupt, with the partial result as its ``search_result`` attribute.
    """
    config = make_config(space=space, trials=trials, seed=seed, epochs=epochs, train_size=train_size,
                         validation_rate=validation_rate, batch_size=batch_size, optimizer=optimizer,
                         hidden=hidden, data=data, dtype=dtype, backend=backend, eval_samples=eval_samples)
    if workers is not None:
        workers = _whole("workers", workers, 1)
    if threads is not None:
        threads = _whole("threads", threads, 1)
    if resume and journal is None:
        raise SearchUsageError("resume needs the journal to resume")
    events: List[str] = []
    progress_box: List[_Progress] = []

    def notify(message: str) -> None:
        events.append(message)
        if progress_box:
            progress_box[0].say(f"fastdl search: {message}", err=True)
        else:
            print(f"fastdl search: {message}", file=sys.stderr, flush=True)

    engine = _engine(cluster, workers, threads, notify)
    book: Optional[_journal.Journal] = None
    records: List[Record] = []
    created = False
    if journal is not None:
        created = not os.path.exists(journal)
        book = _journal.Journal(journal, config, resume=resume)
        records = list(book.records)
        if book.dropped_torn_line:
            notify(f"{book.path}: dropped a torn last line (a trial being written when the search stopped)")
        if book.extended_from is not None:
            notify(f"{book.path}: extended from {book.extended_from} to {config['trials']} trials")
    start = time.perf_counter()
    result = None
    already = len(records)
    try:
        tasks = make_tasks(config, skip={r["index"] for r in records})
        if tasks and engine.name == "local" and config["data"] != "sample":
            _fetch_data(config["data"])          # once here, not by every worker at the same time
        if tasks and engine.name == "dask":
            try:
                engine.connect()
            except ConnectionError as exc:
                raise SearchUsageError(str(exc)) from None
        best = max((r["val_acc"] for r in records if r["status"] != "error" and r.get("val_acc") is not None),
                   default=None)
        bar = _Progress(config["trials"], len(records), best, progress and bool(tasks))
        progress_box.append(bar)
        if verbose:
            bar.say(header_line(config))

        def emit(record: Record) -> None:
            record = _clean(dict(record, finished=time.strftime("%Y-%m-%dT%H:%M:%S")))
            if book is not None:
                book.append(record)
            records.append(record)
            bar.done(record)
            if verbose:
                bar.say(book_line(record))
            if on_trial is not None:
                on_trial(record)

        try:
            if tasks:
                engine.run(tasks, emit, tick=bar.tick)
        finally:
            bar.close()
            progress_box.clear()
        result = SearchResult(config, records, journal=book.path if book else None,
                              elapsed=time.perf_counter() - start, events=events, engine=engine.describe(),
                              ran=bar.finished)
        return result
    except BaseException as exc:
        if result is None and not isinstance(exc, (SearchUsageError,)):
            try:
                # the documented ``search_result`` attribute of the exception (KeyboardInterrupt)
                exc.search_result = SearchResult(  # type: ignore[attr-defined]
                    config, records, journal=book.path if book else None,
                    elapsed=time.perf_counter() - start, events=events,
                    engine=engine.describe(), ran=len(records) - already)
            except Exception:                  # noqa: BLE001 - best effort
                pass
        raise
    finally:
        if book is not None:
            book.close()
            if created and not records and result is None:
                try:
                    os.unlink(book.path)        # nothing ran: leave no journal behind
                except OSError:
                    pass
        if engine.name == "dask":
            engine.close()


def _fetch_data(data: str) -> None:
    """Make sure a downloaded data set is in the cache before the workers start (DataUnavailable
    or a bad setting becomes SearchAborted, a usage error)."""
    from fastdl.datasets import DataUnavailable, SettingError, load_fashion_mnist, load_mnist
    try:
        if data == "fashion":
            load_fashion_mnist(normalize=False)
        else:
            load_mnist(normalize=False, sample=False)
    except (DataUnavailable, SettingError) as exc:
        raise SearchAborted(one_line(exc), usage=True) from None
