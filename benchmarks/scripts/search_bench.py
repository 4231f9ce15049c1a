"""The book's hyper-parameter search on all cores, and the per-trial overhead of a Dask cluster.

    python benchmarks/scripts/search_bench.py                  # both parts, 3 rounds
    python benchmarks/scripts/search_bench.py search           # 1 worker vs 2 workers vs the book's script
    python benchmarks/scripts/search_bench.py cluster          # per-trial overhead on a local Dask cluster
    python benchmarks/scripts/search_bench.py --rounds 5 --book-script PATH

search
    The book's search with its own settings (``fastdl search``'s defaults: 100 trials,
    MultiLayerNet 6x100, 500 sample images with 20% held out, 50 epochs of batch 100, SGD), timed
    as a user runs it: ``python -m fastdl search --workers N`` in a fresh process (start-up of the
    workers included), N = 1 and 2, and the book's own serial script run unmodified through
    ``python -m fastdl.book --sample ch06/hyperparameter_optimization.py`` (``MPLBACKEND=Agg``:
    its ``plt.show()`` returns at once). The three alternate, round after round, in a rotating
    order; the figures are medians of this one run. The target: 2 workers at least 1.8x as fast
    as 1 on 2 cores. The tables of the 1- and 2-worker runs are checked to be identical.
cluster
    A ``LocalCluster`` of 2 worker processes of 1 thread on 127.0.0.1 and tiny trials (one
    epoch of a 20-20 net on 100 images: milliseconds of training). Sequential: one trial
    submitted at a time; its overhead is the client's wall time minus the training time the
    worker measured (the data load and a worker's first-trial set-up count as overhead).
    Amortised: a whole search through ``random_search(cluster=...)`` (fastdl's own path: the
    journal, the death check per trial); overhead per trial = (wall x workers - training) /
    trials. The target: under 0.5 s per trial.

Run it on a quiet machine: everything here is wall time.
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BOOK_SCRIPT = "/tmp/book/ch06/hyperparameter_optimization.py"


def _table(path):
    from fastdl.search import load_journal
    return load_journal(path).table(100)


def run_search_part(rounds, trials, epochs, book_script):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("FASTDL_CLUSTER", None)
    configs = [("fastdl search, 1 worker", 1), ("fastdl search, 2 workers", 2)]
    if book_script:
        configs.append(("book's script (python -m fastdl.book --sample)", None))
    times = {name: [] for name, _ in configs}
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = configs[r % len(configs):] + configs[:r % len(configs)]
            for name, workers in order:
                if workers is None:
                    cmd = [sys.executable, "-m", "fastdl.book", "--sample", book_script]
                else:
                    out = os.path.join(tmp, f"r{r}-w{workers}.jsonl")
                    cmd = [sys.executable, "-m", "fastdl", "search", "--trials", str(trials), "--epochs",
                           str(epochs), "--workers", str(workers), "--quiet", "--no-progress", "--out", out]
                start = time.perf_counter()
                proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
                took = time.perf_counter() - start
                if proc.returncode != 0:
                    sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
                times[name].append(took)
                if workers is not None:
                    tables.setdefault(workers, _table(out))
                print(f"  round {r + 1}: {name}: {took:.1f} s", flush=True)
    med = {name: statistics.median(v) for name, v in times.items()}
    print(f"\nthe book's search ({trials} trials, {epochs} epochs), {os.cpu_count()} cores, medians of "
          f"{rounds} rounds:")
    for name, _ in configs:
        print(f"  {name:50s} {med[name]:8.1f} s   ({', '.join(f'{t:.1f}' for t in times[name])})")
    one, two = med[configs[0][0]], med[configs[1][0]]
    print(f"  1 worker / 2 workers: {one / two:.2f}x (target >= 1.8x on 2 cores)")
    if book_script:
        book = med[configs[2][0]]
        print(f"  book's script / 2 workers: {book / two:.2f}x; book's script / 1 worker: {book / one:.2f}x")
    print(f"  tables of 1 and 2 workers identical: {'yes' if tables[1] == tables[2] else 'NO'}")


def run_cluster_part(sequential, trials):
    from distributed import LocalCluster

    from fastdl import search
    from fastdl.search._dask import DaskEngine
    from fastdl.search._trial import dask_trial
    tiny = dict(epochs=1, train_size=100, hidden=[20, 20])
    start = time.perf_counter()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        print(f"\nLocalCluster of 2 worker processes x 1 thread up in {time.perf_counter() - start:.1f} s")
        engine = DaskEngine(cluster, None, print).connect()
        client = engine.client
        tasks = search.make_tasks(search.make_config(trials=sequential, **tiny))
        first, later, loads = [], [], []
        seen = set()
        for task in tasks:
            t0 = time.perf_counter()
            record = client.submit(dask_trial, task, engine.host_processes, None, pure=False).result()
            latency = time.perf_counter() - t0
            training = record["duration"] - record["data_load"]
            (later if record["worker"] in seen else first).append(latency - training)
            if record["data_load"]:
                loads.append(record["data_load"])
            seen.add(record["worker"])
        engine.close()
        print(f"sequential, {sequential} trials one at a time:")
        print(f"  first trial on each worker: overhead {', '.join(f'{t:.3f}' for t in first)} s "
              f"(data load {', '.join(f'{t:.3f}' for t in loads)} s of it)")
        if later:
            print(f"  later trials: overhead median {statistics.median(later):.4f} s, max {max(later):.4f} s "
                  f"(target < 0.5 s)")
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            result = search.random_search(trials=trials, cluster=cluster, journal=os.path.join(tmp, "j.jsonl"),
                                          progress=False, seed=1, **tiny)
            wall = time.perf_counter() - t0
        training = sum(r["duration"] - r["data_load"] for r in result.trials)
        workers = 2
        print(f"amortised, a search of {trials} tiny trials through random_search: {wall:.2f} s wall, "
              f"{training:.2f} s of training; overhead per trial {(wall * workers - training) / trials:.4f} s "
              f"(target < 0.5 s)")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("part", nargs="?", choices=("all", "search", "cluster"), default="all")
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds of each search (default 3)")
    parser.add_argument("--trials", type=int, default=100, help="trials of fastdl search (default 100, the book's)")
    parser.add_argument("--epochs", type=int, default=50, help="epochs per trial (default 50, the book's)")
    parser.add_argument("--book-script", default=BOOK_SCRIPT,
                        help=f"the book's ch06/hyperparameter_optimization.py (default {BOOK_SCRIPT}); "
                             "'' leaves it out")
    parser.add_argument("--cluster-sequential", type=int, default=20, help="trials submitted one at a time")
    parser.add_argument("--cluster-trials", type=int, default=100, help="trials of the amortised cluster search")
    args = parser.parse_args(argv)
    from fastdl.bench import blas_line
    print(blas_line())       # BLAS and Numba's threading layer, as each trial's process starts them too
    book = args.book_script or None
    if book and not os.path.isfile(book):
        print(f"(no book script at {book}: timing fastdl search only)")
        book = None
    if args.part in ("all", "search"):
        run_search_part(args.rounds, args.trials, args.epochs, book)
    if args.part in ("all", "cluster"):
        run_cluster_part(args.cluster_sequential, args.cluster_trials)


if __name__ == "__main__":
    main()
