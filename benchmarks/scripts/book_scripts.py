"""The book's own scripts, whole-script wall time: the book's code against ``python -m fastdl.book``.

    git clone https://github.com/oreilly-japan/deep-learning-from-scratch /tmp/dlfs
    python benchmarks/scripts/book_scripts.py --book /tmp/dlfs ch05/train_neuralnet.py ch06/optimizer_compare_mnist.py
    python benchmarks/scripts/book_scripts.py --book /tmp/dlfs --chapters 1 2 3 4 --rounds 3

Both sides run in a copy of the book's folder, on the same data: fastdl's MNIST sample (5,000
training and the 10,000 test images) written as the book's ``dataset/mnist.pkl``, which the
book's own ``load_mnist`` reads, and which ``python -m fastdl.book --sample`` loads in the same
order. Each run is a fresh process seeded with ``numpy.random.seed(SEED)`` before the script
starts, so both sides draw the same initial weights and batches. Rounds alternate the two sides;
the figures are medians over the rounds.

Besides the times, the printed lines of the two sides are compared: lines that report an
accuracy (``acc`` in the line) must be identical; for the other lines with numbers (losses) the
largest relative difference is shown.

``--cache fresh`` gives every fastdl run an empty Numba cache (each script as from a fresh
clone); ``warm`` (default) uses the cache in place.
"""
import argparse
import os
import pickle
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

#: scripts that open a window or image viewer, or need the network: not timed
SKIP = {"ch03/mnist_show.py", "ch01/img_show.py"}

_NUM = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?|nan|inf")


def write_mnist(book):
    from fastdl.datasets import load_mnist
    (xtr, ttr), (xte, tte) = load_mnist(normalize=False, flatten=True, sample=True)
    data = {"train_img": xtr, "train_label": ttr, "test_img": xte, "test_label": tte}
    with open(os.path.join(book, "dataset", "mnist.pkl"), "wb") as f:
        pickle.dump(data, f, -1)


def scripts_of(book, chapters):
    out = []
    for c in chapters:
        folder = f"ch{int(c):02d}"
        for name in sorted(os.listdir(os.path.join(book, folder))):
            rel = f"{folder}/{name}"
            if name.endswith(".py") and rel not in SKIP and _is_script(os.path.join(book, rel)):
                out.append(rel)
    return out


def _is_script(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    # a module the chapter's scripts import (two_layer_net.py, layer_naive.py, ...) has no top-level run
    return "print(" in text or "plt.show" in text


def command(side, rel, seed):
    script = os.path.basename(rel)
    if side == "book":
        code = (f"import sys, runpy, numpy; numpy.random.seed({seed}); sys.argv = [{script!r}]; "
                f"sys.path.insert(0, ''); runpy.run_path({script!r}, run_name='__main__')")
    else:
        code = (f"import sys, runpy, numpy; numpy.random.seed({seed}); "
                f"sys.argv = ['fastdl.book', '--sample', {script!r}]; "
                "runpy.run_module('fastdl.book', run_name='__main__', alter_sys=True)")
    return [sys.executable, "-c", code]


def run(side, book, rel, seed, cache):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("FASTDL_COMPILE", None)
    tmp = None
    if side == "fastdl" and cache == "fresh":
        tmp = tempfile.mkdtemp(prefix="fastdl-cache-")
        env["NUMBA_CACHE_DIR"] = tmp
    t0 = time.perf_counter()
    r = subprocess.run(command(side, rel, seed), cwd=os.path.join(book, os.path.dirname(rel)), env=env,
                       capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    if r.returncode:
        raise SystemExit(f"{side} {rel} failed (exit {r.returncode}):\n{r.stderr[-2000:]}")
    return dt, r.stdout


def compare_output(a, b):
    """(accuracy lines identical?, number of them, largest relative difference of other numbers).
    A line counts as an accuracy when it says "acc", or when it holds only numbers in [0, 1]
    (the book's ch05 prints ``train_acc, test_acc`` as two bare numbers)."""
    la, lb = a.splitlines(), b.splitlines()
    acc_same, n_acc, worst = len(la) == len(lb), 0, 0.0
    for x, y in zip(la, lb):
        if "acc" in x.lower() or _bare_fractions(x):
            n_acc += 1
            acc_same &= x == y
            continue
        nx, ny = _NUM.findall(x), _NUM.findall(y)
        if len(nx) != len(ny):
            acc_same = acc_same and x == y
            continue
        for p, q in zip(nx, ny):
            try:
                p, q = float(p), float(q)
            except ValueError:
                continue
            if p != q:
                worst = max(worst, abs(p - q) / max(abs(p), abs(q), 1e-300))
    return acc_same, n_acc, worst


def _bare_fractions(line):
    parts = line.split()
    try:
        return bool(parts) and all(0.0 <= float(p) <= 1.0 for p in parts)
    except ValueError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scripts", nargs="*", help="chapter-relative paths, e.g. ch05/train_neuralnet.py")
    ap.add_argument("--book", required=True, help="a checkout of oreilly-japan/deep-learning-from-scratch")
    ap.add_argument("--chapters", nargs="*", default=[], help="every script of these chapters (numbers)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", choices=("warm", "fresh"), default="warm")
    args = ap.parse_args(argv)

    work = tempfile.mkdtemp(prefix="book-")
    book = os.path.join(work, "book")
    shutil.copytree(args.book, book, ignore=shutil.ignore_patterns(".git", "mnist.pkl", "__pycache__"))
    write_mnist(book)
    scripts = list(args.scripts) + scripts_of(book, args.chapters)
    if not scripts:
        ap.error("name scripts or --chapters")

    times = {(s, side): [] for s in scripts for side in ("book", "fastdl")}
    outs = {}
    for r in range(args.rounds):
        for s in scripts:
            order = ("book", "fastdl") if r % 2 == 0 else ("fastdl", "book")
            for side in order:
                dt, out = run(side, book, s, args.seed, args.cache)
                times[(s, side)].append(dt)
                outs.setdefault((s, side), out)
            print(f"round {r + 1}: {s}: book {times[(s, 'book')][-1]:.2f} s, fastdl {times[(s, 'fastdl')][-1]:.2f} s",
                  file=sys.stderr, flush=True)

    print(f"# book scripts, medians of {args.rounds} rounds (alternating), seed {args.seed}, Numba cache {args.cache}")
    print(f"{'script':42} {'book s':>8} {'fastdl s':>9} {'speed-up':>9} {'limit s':>8}  printed accuracies")
    for s in scripts:
        b = statistics.median(times[(s, "book")])
        f = statistics.median(times[(s, "fastdl")])
        same, n_acc, worst = compare_output(outs[(s, "book")], outs[(s, "fastdl")])
        verdict = ((f"{n_acc} accuracy lines identical" if same else "accuracies DIFFER")
                   + (f"; other numbers within {worst:.1e}" if worst else "; every other number identical"))
        print(f"{s:42} {b:8.2f} {f:9.2f} {b / f:8.2f}x {max(1.2 * b, b + 0.5):8.2f}  {verdict}")
        print(f"    runs book {', '.join(f'{t:.2f}' for t in times[(s, 'book')])}; "
              f"fastdl {', '.join(f'{t:.2f}' for t in times[(s, 'fastdl')])}")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
