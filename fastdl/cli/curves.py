"""The loss and accuracy curves that ``fastdl train --plot`` writes."""
from __future__ import annotations

from typing import Any, List, Tuple


def _curve(trainer: Any, key: str) -> List[Tuple[float, float]]:
    """(epochs completed, value) of ``key`` (train_acc, val_acc, test_acc) from ``trainer.history``:
    one point per evaluation from epoch 0 (before training) to the end of the run, whose point is
    the final measurement."""
    history = getattr(trainer, "history", None)
    if history is None:                                # a trainer without history: the book's lists
        values = getattr(trainer, key.replace("_acc", "_acc_list"), None) or []
        return [(float(i), float(v)) for i, v in enumerate(values)]
    return [(float(h["epoch"]), float(h[key])) for h in history if h.get(key) is not None]


def _plot(trainer, path, title):
    """Loss and accuracy curves of ``trainer``, written to ``path`` like every fastdl file
    (``fastdl._files.save_figure``). matplotlib was checked for before training."""
    import numpy as np
    from matplotlib.figure import Figure        # no pyplot: no GUI backend, no global state

    from fastdl._files import save_figure
    from fastdl.util import smooth_curve
    fig = Figure(figsize=(10, 4))
    a1, a2 = fig.subplots(1, 2)
    loss = np.array([float(v) for v in trainer.train_loss_list])
    a1.plot(loss, alpha=0.3, label="loss")
    if loss.size >= 11:
        a1.plot(smooth_curve(loss), label="smoothed")
    a1.set_xlabel("iteration")
    a1.set_ylabel("training loss")
    a1.legend()
    for key, style, label in (("train_acc", "o-", "train"), ("val_acc", "^-", "validation"),
                              ("test_acc", "s-", "test")):
        points = _curve(trainer, key)
        if points:
            a2.plot([e for e, _ in points], [v for _, v in points], style, label=label)
    a2.set_xlabel("epochs completed (the last test point: the whole test set)")
    from matplotlib.ticker import MaxNLocator
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))
    a2.set_ylabel("accuracy")
    a2.set_ylim(0, 1)
    a2.legend(loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    save_figure(fig, path)
