"""The local engine: trials in worker processes on this machine, one trial per worker at a time.

Each worker is a fresh ``python -m fastdl.search._worker`` (no fork of a process whose Numba or
BLAS threads already run, and nothing to guard in the caller's script), started with its thread
share in the environment before NumPy or Numba load. The client gives each worker one task at a
time over a pipe and reads results as they come (``selectors``). A worker that dies (killed,
out of memory) is reported with its exit status and the tail of its stderr; only its own trial
is affected: that trial is run again once on a fresh worker, and recorded as an error if its
worker dies a second time. A worker that dies before it could start (a broken install) stops the
search with its message.
"""
import collections
import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
from typing import IO

#: the environment variables that give a worker its thread share
THREAD_VARIABLES = ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
#: attempts a trial gets when its worker dies (the first run and one more)
MAX_ATTEMPTS = 2


class SearchAborted(RuntimeError):
    """The search cannot go on: the data cannot be had (``usage`` True: the data set asked for is
    not available), or workers cannot start."""

    def __init__(self, message: str, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage
        """True when the cause is the user's request (the data set asked for is not available):
        ``fastdl search`` then exits with status 2, a usage error, rather than 1."""


class SchedulerLost(SearchAborted):
    """The Dask scheduler went away in the middle of a search (killed, crashed, its machine or the
    network gone). The trials finished before it went are in the journal; ``address`` is the
    scheduler's."""

    def __init__(self, address: str) -> None:
        super().__init__(f"lost the Dask scheduler at {address} in the middle of the search")
        self.address = address
        """The scheduler's address (``tcp://HOST:PORT``)."""


def _died(returncode):
    if returncode is None:
        return "stopped answering"
    if returncode < 0:
        try:
            return f"was killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"was killed by signal {-returncode}"
    return f"exited with status {returncode}"


class _Worker:
    def __init__(self, env):
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "fastdl.search._worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self.stderr, env=env,
                                     start_new_session=True, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None   # both are pipes
        self.stdin: IO[bytes] = self.proc.stdin
        self.stdout: IO[bytes] = self.proc.stdout
        os.set_blocking(self.stdout.fileno(), False)
        self.buffer = b""
        self.task = None
        self.ready = False

    @property
    def pid(self):
        return self.proc.pid

    def send(self, task):
        """Give the worker ``task``; False if it is gone already (its death is read next)."""
        try:
            self.stdin.write((json.dumps(task) + "\n").encode())
            self.stdin.flush()
        except (BrokenPipeError, ValueError):
            return False
        self.task = task
        return True

    def read(self):
        """Messages now readable, and whether the worker's channel has closed (it died or exited)."""
        messages, closed = [], False
        while True:
            try:
                chunk = os.read(self.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                closed = True
                break
            if not chunk:
                closed = True
                break
            self.buffer += chunk
        *lines, self.buffer = self.buffer.split(b"\n")
        for line in lines:
            if line.strip():
                messages.append(json.loads(line))
        return messages, closed

    def stderr_tail(self, lines=3):
        try:
            self.stderr.seek(0)
            text = self.stderr.read().decode(errors="replace")
        except (OSError, ValueError):
            return ""
        tail = [line.strip() for line in text.strip().splitlines() if line.strip()][-lines:]
        return " | ".join(tail)

    def stop(self, kill=False):
        try:
            if kill:
                self.proc.kill()
            else:
                self.stdin.close()
        except (OSError, ValueError):
            pass

    def reap(self, timeout):
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for f in (self.stdout, self.stdin, self.stderr):
            try:
                f.close()
            except (OSError, ValueError):
                pass


class LocalEngine:
    """Runs tasks on up to ``workers`` local processes; each gets ``threads`` threads, by default
    ``cores`` divided by the workers actually started (no more than there are trials to run)."""

    name = "local"

    def __init__(self, workers, threads, notify, cores):
        self.workers = workers
        self.threads = threads
        self.notify = notify
        self.cores = cores
        self.started = None           # (workers, threads) of the last run

    def _env(self, threads):
        env = dict(os.environ)
        for var in THREAD_VARIABLES:
            env[var] = str(threads)
        return env

    def describe(self):
        """The worker processes and threads each: ``"4 local workers x 1 thread"``."""
        workers, threads = self.started or (self.workers, self.threads or max(1, self.cores // self.workers))
        return f"{workers} local worker{'s' if workers != 1 else ''} x {threads} thread{'s' if threads != 1 else ''}"

    def run(self, tasks, emit, tick=None):
        """Run ``tasks``; ``emit(record)`` is called in this thread for each finished trial."""
        queue = collections.deque(tasks)
        selector = selectors.DefaultSelector()
        pool = []
        workers = min(self.workers, len(queue))
        threads = self.threads or max(1, self.cores // max(1, workers))
        self.started = (workers, threads)
        env = self._env(threads)

        def start():
            w = _Worker(env)
            selector.register(w.stdout, selectors.EVENT_READ, w)
            pool.append(w)
            return w

        try:
            for _ in range(workers):
                start()
            while True:
                for w in pool:
                    if w.task is None and queue and w.send(queue[0]):
                        queue.popleft()
                busy = [w for w in pool if w.task is not None]
                if not busy and not queue:
                    break
                for key, _ in selector.select(timeout=1.0):
                    w = key.data
                    messages, closed = w.read()
                    for m in messages:
                        if m["type"] == "ready":
                            w.ready = True
                        elif m["type"] == "abort":
                            raise SearchAborted(m["message"], usage=True)
                        elif m["type"] == "result":
                            w.task = None
                            emit(m["record"])
                    if closed:
                        self._lost(w, queue, emit, selector, pool)
                        if queue and len(pool) < workers:
                            start()
                if tick is not None:
                    tick()
        finally:
            busy = [w for w in pool if w.task is not None]
            for w in pool:
                w.stop(kill=bool(busy))          # idle workers finish; busy ones are stopped now
            for w in pool:
                w.reap(timeout=10)
            selector.close()

    def _lost(self, w, queue, emit, selector, pool):
        selector.unregister(w.stdout)
        pool.remove(w)
        w.reap(timeout=10)
        how = _died(w.proc.returncode)
        tail = w.stderr_tail()
        if not w.ready:
            raise SearchAborted(f"a worker process could not start: it {how}" + (f" ({tail})" if tail else ""))
        task = w.task
        if task is None:
            self.notify(f"worker {w.pid} {how} between trials" + (f" ({tail})" if tail else ""))
            return
        attempt = task.get("attempt", 1)
        if attempt < MAX_ATTEMPTS:
            self.notify(f"worker {w.pid} {how} while running trial {task['index']}; running that trial again")
            queue.appendleft(dict(task, attempt=attempt + 1))
            return
        self.notify(f"worker {w.pid} {how} while running trial {task['index']} again; recording it as an error")
        emit(lost_record(task, f"its worker {how} on each of {attempt} attempts" + (f" ({tail})" if tail else ""),
                         f"{socket.gethostname()}:{w.pid}"))


def lost_record(task, message, worker):
    """The record of a trial whose worker died on every attempt."""
    return {"index": task["index"], "seed": task["seed"], "params": dict(task["params"]), "status": "error",
            "val_acc": None, "val_acc_end": None, "loss_end": None, "val_acc_curve": [], "train_acc_curve": [],
            "error": f"WorkerDied: {message}", "duration": None, "data_load": None, "worker": worker,
            "attempts": task.get("attempt", 1), "threads": None, "blas_threads": None, "backend": None}
