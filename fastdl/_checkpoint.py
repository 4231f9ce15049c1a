"""Trainer checkpoints: one ``.npz`` (written atomically by ``network.save_params``) holding the
weights, the optimizer's state, the counters, the lists, ``history`` and NumPy's global random
state; read back into a Trainer so that ``train()`` continues the saved run.

``Trainer.save_checkpoint`` and ``Trainer.load_checkpoint`` are these two functions.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Dict, Optional

import numpy as np

from . import backend
from ._checks import is_device_array, to_host

if TYPE_CHECKING:
    from .trainer import Trainer

CHECKPOINT_FORMAT = 1
"""Version of the ``meta["trainer"]`` record that ``save_checkpoint`` writes."""


def _float_or_none(v: Any) -> Optional[float]:
    return None if v is None else float(v)


def save_checkpoint(trainer: "Trainer", path: "str | os.PathLike[str]") -> None:
    """Write the weights, the optimizer's state, the counters, the lists and ``history`` and
    NumPy's global random state to ``path``, one ``.npz`` written atomically (with
    ``network.save_params(meta=..., extra=...)``). ``load_checkpoint`` continues from it;
    ``fastdl.load_model`` and ``net.load_params`` read its weights."""
    save = getattr(trainer.network, "save_params", None)
    if save is None:
        raise TypeError(f"Trainer.save_checkpoint: the network {type(trainer.network).__name__} has no "
                        "save_params; checkpoints need a network of fastdl.nets")
    opt = trainer.optimizer
    names = getattr(type(opt), "_state", None)
    if names is None:
        raise TypeError(f"Trainer.save_checkpoint: the optimizer {type(opt).__name__} is not one of "
                        "fastdl.optimizers; its state cannot be saved")
    extra: Dict[str, Any] = {}
    for name in names:
        for key, val in (getattr(opt, name) or {}).items():
            extra[f"optimizer/{name}/{key}"] = to_host(val)
    losses = np.asarray(trainer.train_loss_list) if trainer.train_loss_list else np.zeros(0)
    if losses.dtype.kind != "f":
        losses = np.array([float(v) for v in trainer.train_loss_list], dtype=np.float64)
    extra["train_loss_list"] = losses
    for lst in ("train_acc_list", "test_acc_list", "val_acc_list"):
        extra[lst] = np.array([float(v) for v in getattr(trainer, lst)], dtype=np.float64)
    rng = np.random.get_state(legacy=True)
    record: Dict[str, Any] = {
        "format": CHECKPOINT_FORMAT, "current_iter": trainer.current_iter,
        "current_epoch": trainer.current_epoch, "train_size": trainer.train_size,
        "batch_size": trainer.batch_size, "epochs": float(trainer.epochs),
        "optimizer": {"class": type(opt).__name__, "state": list(names),
                      "iter": int(getattr(opt, "iter", 0)),
                      "lr": _float_or_none(getattr(opt, "lr", None))},
        "history": trainer.history, "validation": trainer.has_validation}
    if isinstance(rng, tuple) and rng[0] == "MT19937":
        extra["random/mt19937"] = np.asarray(rng[1])
        record["random"] = {"pos": int(rng[2]), "has_gauss": int(rng[3]), "cached_gaussian": float(rng[4])}
    save(path, meta={"trainer": record}, extra=extra)


def load_checkpoint(trainer: "Trainer", path: "str | os.PathLike[str]") -> None:
    """Restore what ``save_checkpoint`` wrote to ``path`` into this Trainer and its network
    and optimizer (and NumPy's global random state), so that ``train()`` continues the saved
    run. The Trainer must have the same number of training samples, ``mini_batch_size`` and
    kind of optimizer; its hyper-parameters (``lr``...) stay its own. Everything is checked
    before anything is changed; a file that does not fit raises a one-line ValueError."""
    from .nets import read_extra, read_meta
    where = os.fspath(path)
    record = read_meta(path).get("trainer")
    if not isinstance(record, dict) or "current_iter" not in record:
        raise ValueError(f"{where} is not a Trainer checkpoint (save_checkpoint or ModelCheckpoint "
                         "writes them); for the weights alone use net.load_params")
    if record.get("format", 0) > CHECKPOINT_FORMAT:
        raise ValueError(f"{where} was written by a newer fastdl (checkpoint format {record['format']}); "
                         "upgrade fastdl")
    if (record["train_size"], record["batch_size"]) != (trainer.train_size, trainer.batch_size):
        raise ValueError(f"{where} is a run of {record['train_size']} training samples in batches of "
                         f"{record['batch_size']}; this Trainer has {trainer.train_size} and "
                         f"{trainer.batch_size}, so the epochs would not continue: use the same data "
                         "and mini_batch_size")
    saved = record["optimizer"]
    opt = trainer.optimizer
    if saved["class"] != type(opt).__name__ or getattr(type(opt), "_state", None) is None:
        raise ValueError(f"{where} holds the state of a {saved['class']} optimizer; this Trainer's is "
                         f"{type(opt).__name__}: build it with optimizer={saved['class']!r}")
    extra = read_extra(path)
    params = trainer.network.params
    state: Dict[str, Dict[str, Any]] = {name: {} for name in saved["state"]}
    for key, val in extra.items():
        if not key.startswith("optimizer/"):
            continue
        _, name, pkey = key.split("/", 2)
        if name not in state or pkey not in params or tuple(val.shape) != tuple(params[pkey].shape):
            raise ValueError(f"{where}: the optimizer state {name}[{pkey!r}] does not fit this network")
        state[name][pkey] = val
    trainer.network.load_params(path)              # checks names, shapes and values, then loads
    # the kernels of the memory the parameters live in (a network's own, e.g. after net.to("cuda"))
    ops = getattr(trainer.network, "_ops", backend.ops)()
    for name in saved["state"]:
        d = state[name]
        for pkey, val in d.items():
            # in the parameter's dtype (a float64 checkpoint loaded into a float32 net) and place
            val = np.array(val, dtype=np.dtype(params[pkey].dtype))
            d[pkey] = ops.to_device(val) if is_device_array(params[pkey]) else val
        setattr(opt, name, d if d else None)
    if hasattr(opt, "iter"):
        opt.iter = int(saved.get("iter", 0))
    trainer.current_iter = int(record["current_iter"])
    trainer.current_epoch = int(record["current_epoch"])
    trainer.train_loss_list = list(extra.get("train_loss_list", np.zeros(0)))
    for lst in ("train_acc_list", "test_acc_list", "val_acc_list"):
        setattr(trainer, lst, [float(v) for v in extra.get(lst, np.zeros(0))])
    trainer.history = [dict(h) for h in record.get("history", [])]
    trainer._diverged_at, trainer._losses_seen = None, 0
    if "random/mt19937" in extra and "random" in record:
        r = record["random"]
        np.random.set_state(("MT19937", extra["random/mt19937"].astype(np.uint32), r["pos"],
                             r["has_gauss"], r["cached_gaussian"]))
