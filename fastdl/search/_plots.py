"""The pictures of a search: the book's grid of curves, and accuracy over the hyper-parameters.

Drawn on a ``matplotlib.figure.Figure`` of its own (no pyplot: the caller's backend and open
figures are left alone) and written with ``fastdl._files.save_figure``.
"""
import math

from .._files import save_figure
from ._space import LABELS, PARAMS


def _figure(**kw):
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plots need matplotlib: python -m pip install matplotlib") from None
    return Figure(**kw)


def curves(best, path, columns=5):
    """The book's figure: one small plot per trial of ``best`` (ranked records), titled Best-k,
    validation accuracy solid and training accuracy dashed, accuracy 0-1."""
    n = max(1, len(best))
    rows = math.ceil(n / columns)
    fig = _figure(figsize=(2.4 * columns, 2.0 * rows + 0.6))
    for k, r in enumerate(best):
        ax = fig.add_subplot(rows, columns, k + 1)
        ax.set_title(f"Best-{k + 1}", fontsize=9)
        ax.set_ylim(0.0, 1.0)
        if k % columns:
            ax.set_yticks([])
        ax.set_xticks([])
        val, train = r.get("val_acc_curve") or [], r.get("train_acc_curve") or []
        ax.plot(range(len(val)), val, color="C0")
        ax.plot(range(len(train)), train, "--", color="C1")
    if not best:
        fig.text(0.5, 0.5, "no trial finished", ha="center")
    fig.suptitle("validation (solid) and training (dashed) accuracy per epoch of the best trials", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def scatter(trials, space, best, path):
    """Validation accuracy (colour) over the first two varied parameters, on log axes for log
    ranges; over one parameter (accuracy on the y axis) when only one varies."""
    varied = [p for p in PARAMS if p in space and space[p][0] != space[p][1]]
    order = {"lr": 0, "weight_decay": 1, "dropout": 2}
    varied.sort(key=order.__getitem__)
    shown = [r for r in trials if r["status"] != "error" and r.get("val_acc") is not None]
    fig = _figure(figsize=(6.4, 4.8))
    ax = fig.add_subplot(1, 1, 1)
    best_ids = {r["index"] for r in best}

    def values(name, rs):
        return [r["params"][name] for r in rs]
    if len(varied) >= 2:
        xname, yname = varied[:2]
        ok = [r for r in shown if r["status"] == "ok"]
        bad = [r for r in shown if r["status"] != "ok"]
        sc = ax.scatter(values(xname, ok), values(yname, ok), c=[r["val_acc"] for r in ok], cmap="viridis",
                        vmin=0.0, vmax=1.0, s=30)
        if bad:
            ax.scatter(values(xname, bad), values(yname, bad), marker="x", color="0.5", label="diverged")
        top = [r for r in shown if r["index"] in best_ids]
        ax.scatter(values(xname, top), values(yname, top), s=90, facecolors="none", edgecolors="red",
                   label=f"best {len(top)}")
        fig.colorbar(sc, ax=ax, label="validation accuracy")
        ax.set_xlabel(LABELS[xname])
        ax.set_ylabel(LABELS[yname])
        if shown:                           # log axes need a point to place their ticks
            ax.set_xscale("log" if space[xname][2] == "log" else "linear")
            ax.set_yscale("log" if space[yname][2] == "log" else "linear")
    else:
        only = varied[0] if varied else None
        xs = values(only, shown) if only else [r["index"] for r in shown]
        ax.scatter(xs, [r["val_acc"] for r in shown], c=["red" if r["index"] in best_ids else "C0" for r in shown])
        ax.set_xlabel(LABELS[only] if only else "trial")
        ax.set_ylabel("validation accuracy")
        ax.set_ylim(0.0, 1.0)
        if shown and only and space[only][2] == "log":
            ax.set_xscale("log")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    ax.set_title(f"validation accuracy of {len(shown)} trials")
    fig.tight_layout()
    save_figure(fig, path)
