"""One trial of a search, run where the work happens: a local worker process or a Dask worker.

A task is a small JSON-able dict (no arrays): ``index``, ``seed``, ``params``, ``attempt`` and
``config`` (the network, the training and the *data spec*: which data set, how many images,
the validation share and the seed of the split). The worker loads and splits the data itself,
once per process (:func:`load_split` keeps the last split), then trains with the book's
``Trainer`` after seeding NumPy's global RNG with the trial's seed. Whatever the trial raises is
recorded in its record (``status`` "error" and the message); a non-finite loss stops the trial
and records ``status`` "diverged". Only a problem with the data (not available, too few images)
raises :class:`DataProblem`, as does a backend that cannot be loaded: either would fail every
trial alike, so the search stops instead.

A task may carry a plugin (``task["plugin"]``, see ``fastdl.search._plugin``): its
``before_trial`` runs once the data and the backend are ready, inside the trial (what it raises is
the trial's error).
"""
import os
import socket
import threading
import time
import warnings

import numpy as np

from .._text import one_line
from . import _plugin

#: training images of each data set (checked before any work)
TRAIN_IMAGES = {"sample": 5000, "mnist": 60000, "fashion": 60000}
#: how this process names itself in the records ("host:pid"; a Dask worker's address there)
WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"

_data_key = None
_data = None
_lock = threading.Lock()          # one trial at a time per process: NumPy's global RNG is shared
_blas_share = None
_blas_threads = None


class DataProblem(RuntimeError):
    """The data (or the backend) of the search cannot be had here: every trial would fail the
    same way."""


def usable_cores():
    """Cores this process may run on (its affinity where the system tells, else cpu_count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def load_split(spec):
    """``(x_train, t_train, x_val, t_val)`` for a data spec, and the seconds it took to load
    (0 when this process already holds it). The book's split: the first ``train_size`` images,
    shuffled once (``split_seed``), the first ``validation_rate`` share held out."""
    global _data_key, _data
    key = (spec["data"], spec["train_size"], spec["validation_rate"], spec["split_seed"])
    if key == _data_key:
        return _data, 0.0
    start = time.perf_counter()
    from fastdl.datasets import DataUnavailable, SettingError, load_fashion_mnist, load_mnist
    try:
        if spec["data"] == "fashion":
            (x, t), _ = load_fashion_mnist(normalize=True, flatten=True)
        else:
            (x, t), _ = load_mnist(normalize=True, flatten=True, sample=spec["data"] == "sample")
    except (DataUnavailable, SettingError) as exc:
        raise DataProblem(one_line(exc)) from None
    n = spec["train_size"]
    if n > len(x):
        raise DataProblem(f"train_size {n} is more than the {len(x)} training images of data {spec['data']!r}")
    x, t = x[:n], t[:n]
    order = np.random.RandomState(spec["split_seed"]).permutation(n)
    x, t = x[order], t[order]
    n_val = int(n * spec["validation_rate"])
    _data_key, _data = key, (x[n_val:], t[n_val:], x[:n_val], t[:n_val])
    return _data, time.perf_counter() - start


def _build_net(cfg, params, input_size):
    from fastdl.nets import MultiLayerNet, MultiLayerNetExtend
    wd = params.get("weight_decay", 0.0)
    if "dropout" in params:
        return MultiLayerNetExtend(input_size, list(cfg["hidden"]), 10, weight_decay_lambda=wd,
                                   use_dropout=True, dropout_ration=params["dropout"], dtype=cfg["dtype"])
    return MultiLayerNet(input_size, list(cfg["hidden"]), 10, weight_decay_lambda=wd, dtype=cfg["dtype"])


def run_trial(task):
    """Run one task; returns its record (see ``fastdl.search`` for the fields)."""
    start = time.perf_counter()
    cfg = task["config"]
    record = {"index": task["index"], "seed": task["seed"], "params": dict(task["params"]),
              "status": None, "val_acc": None, "val_acc_end": None, "loss_end": None, "val_acc_curve": [],
              "train_acc_curve": [], "error": None, "duration": None, "data_load": None,
              "worker": WORKER_NAME, "attempts": task.get("attempt", 1), "threads": None,
              "blas_threads": None, "backend": None}
    (x_train, t_train, x_val, t_val), record["data_load"] = load_split(cfg["data"])
    import fastdl
    from fastdl.trainer import Trainer
    try:
        backend = cfg["backend"] or fastdl.current_backend()
        fastdl.backend.ops(backend)
    except fastdl.BackendError as exc:
        raise DataProblem(one_line(exc)) from None
    record["backend"] = backend
    trainer = None
    try:
        _plugin.before_trial(task)
        with warnings.catch_warnings(), fastdl.using_backend(backend):
            # divergence is recorded in the trial's status; these would only precede it
            warnings.filterwarnings("ignore", category=RuntimeWarning)
            np.random.seed(task["seed"])
            net = _build_net(cfg, task["params"], x_train.shape[1])
            trainer = Trainer(net, x_train, t_train, x_val, t_val, epochs=cfg["epochs"],
                              mini_batch_size=cfg["batch_size"], optimizer=cfg["optimizer"],
                              optimizer_param={"lr": task["params"].get("lr", 0.01)},
                              evaluate_sample_num_per_epoch=cfg["eval_samples"],
                              verbose=False, progress=False, stop_on_divergence=True)
            trainer.train()
        record["status"] = "ok"
        if trainer.divergence is not None:
            it, loss = trainer.divergence
            record["status"] = "diverged"
            record["error"] = f"the loss became {loss} at iteration {it}"
    except Exception as exc:                              # noqa: BLE001 - recorded, the search goes on
        record["status"] = "error"
        record["error"] = one_line(exc, with_type=True)
    if trainer is not None:
        record["val_acc_curve"] = [float(a) for a in trainer.test_acc_list]
        record["train_acc_curve"] = [float(a) for a in trainer.train_acc_list]
        if record["val_acc_curve"]:
            record["val_acc"] = record["val_acc_curve"][-1]        # the book's "val acc"
        if trainer.test_acc is not None:
            record["val_acc_end"] = float(trainer.test_acc)
        if trainer.train_loss_list:
            record["loss_end"] = float(trainer.train_loss_list[-1])
    record["threads"], record["blas_threads"] = threads_in_use()
    record["duration"] = time.perf_counter() - start
    return record


def threads_in_use():
    """(Numba's threads for this thread, or None when Numba is not loaded; the threads of the BLAS
    that NumPy loaded, or None when that cannot be told)."""
    global _blas_threads
    import sys
    numba_threads = None
    if "numba" in sys.modules:
        import numba
        numba_threads = numba.get_num_threads()
    if _blas_threads is None:
        try:
            from threadpoolctl import threadpool_info
            counts = [d["num_threads"] for d in threadpool_info() if d["user_api"] == "blas"
                      and "numpy" in d.get("filepath", "")]
            _blas_threads = max(counts) if counts else 0
        except Exception:                 # noqa: BLE001 - a report only
            _blas_threads = 0
    return numba_threads, (_blas_threads or None)


def set_thread_share(share):
    """Run this thread's Numba kernels and this process's BLAS on ``share`` threads (a Dask
    worker, whose libraries were loaded before the trial could say how many)."""
    global _blas_share, _blas_threads
    import fastdl
    fastdl.backend.ops()                  # the backend sets up Numba's threads its own way first
    import sys
    if "numba" in sys.modules:
        import numba
        numba.set_num_threads(max(1, min(share, numba.config.NUMBA_NUM_THREADS)))
    if _blas_share != share:
        try:
            from threadpoolctl import threadpool_limits
            threadpool_limits(limits=share, user_api="blas")
        except Exception:                 # noqa: BLE001 - fewer threads is an optimisation only
            pass
        _blas_share, _blas_threads = share, None


def _host(address):
    rest = str(address).split("://", 1)[-1]
    if rest.startswith("["):
        return rest[1:rest.find("]")]
    return rest.rsplit(":", 1)[0]


def dask_trial(task, host_processes, threads):
    """A trial on a Dask worker: its thread share is ``threads``, else the machine's cores divided
    by the worker processes on it (``host_processes``: host -> count, from the scheduler when the
    search started; 1 thread on a machine that joined since). One trial at a time per worker
    process."""
    from distributed import get_worker
    worker = get_worker()
    processes = host_processes.get(_host(worker.address))
    share = threads or (max(1, usable_cores() // processes) if processes else 1)
    with _lock:
        set_thread_share(share)
        record = run_trial(task)
    record["worker"] = worker.address
    return record
