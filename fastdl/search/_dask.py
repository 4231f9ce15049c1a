"""The Dask engine: the same tasks on a ``dask.distributed`` cluster (imported only here).

Tasks carry the data spec, not the data: each worker loads and splits the images itself, once
per process. The thread share of a trial is set in the task (``_trial.dask_trial``): the
machine's cores divided by the Dask worker processes on that machine, as the scheduler lists
them when the search starts (or ``threads``). A worker that dies while running a trial is
handled by the scheduler first: it gives the trial to another worker, up to its
``distributed.scheduler.allowed-failures`` (3 by default); the trial's record counts these in its
``attempts`` (the scheduler counts a trial waiting in the queue of the worker that died too), and
the death is reported. When the scheduler gives up (``KilledWorker``) on the
first attempt (``allowed-failures`` 0), the client submits the trial once more itself; a trial
that killed its worker on every attempt is recorded as an error and the search goes on.

When the scheduler itself goes away (killed, crashed, unreachable), the client's futures are
cancelled by ``distributed`` ("scheduler-connection-lost"); the search then stops with
:class:`SchedulerLost` (the trials finished before are in the journal; resuming runs the rest),
and the client is closed without letting ``distributed`` log its reconnection traceback.
"""
import collections
import logging
import uuid
from typing import Any

from .._text import one_line
from ._local import MAX_ATTEMPTS, SchedulerLost, SearchAborted, lost_record

INSTALL_HINT = ("the Dask engine needs dask.distributed: python -m pip install -e '.[distributed]' "
                "(in fastdl's clone)")


def import_distributed():
    """The ``distributed`` module, or ImportError with the line to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise ImportError(f"{INSTALL_HINT} ({exc})") from None
    return distributed


class DaskEngine:
    """Runs tasks on a Dask cluster: ``cluster`` is a scheduler address (``tcp://HOST:PORT``), a
    ``distributed.Client`` or a cluster object (``LocalCluster``)."""

    name = "dask"

    def __init__(self, cluster, threads, notify, connect_timeout=20):
        self.cluster = cluster
        self.threads = threads
        self.notify = notify
        self.connect_timeout = connect_timeout
        self.client: Any = None
        self._own_client = False
        self.address = None
        self.host_processes = {}

    def connect(self):
        """Connect to the cluster (a Client of our own for an address) and count its worker
        processes per machine; returns self."""
        distributed = import_distributed()
        if isinstance(self.cluster, distributed.Client):
            self.client = self.cluster
        else:
            target = self.cluster
            try:
                self.client = distributed.Client(target, timeout=self.connect_timeout, set_as_default=False)
            except OSError as exc:
                where = getattr(target, "scheduler_address", target)
                raise ConnectionError(f"cannot reach the Dask scheduler at {where}: "
                                      f"{one_line(exc)}") from None
            self._own_client = True
        self.address = self.client.scheduler.address
        try:
            self.client.wait_for_workers(1, timeout=self.connect_timeout)
        except Exception as exc:                # noqa: BLE001 - distributed raises TimeoutError
            self.close()
            raise ConnectionError(f"the Dask scheduler at {self.address} has no workers "
                                  f"(start some with: dask worker {self.address} --nthreads 1)") from exc
        counts = collections.Counter(w["host"] for w in self.client.scheduler_info()["workers"].values())
        self.host_processes = dict(counts)
        return self

    def describe(self):
        """The scheduler's address, the worker processes and the machines they are on."""
        n = sum(self.host_processes.values())
        return f"Dask cluster {self.address}: {n} worker{'s' if n != 1 else ''} on " \
               f"{len(self.host_processes)} machine{'s' if len(self.host_processes) != 1 else ''}"

    def close(self):
        """Close the client if this engine opened it (quietly and quickly when the scheduler is
        gone: ``distributed`` would log the traceback of its cancelled reconnection)."""
        if self.client is not None and self._own_client:
            lost = self.scheduler_gone()
            quiet = [logging.getLogger(name) for name in ("distributed", "distributed.client",
                                                          "distributed.utils")] if lost else []
            levels = [log.level for log in quiet]
            for log in quiet:
                log.setLevel(logging.CRITICAL + 1)
            try:
                self.client.close(timeout=5 if lost else None)
            except Exception:                   # noqa: BLE001 - closing a broken connection
                pass
            finally:
                for log, level in zip(quiet, levels):
                    log.setLevel(level)
        self.client = None

    def scheduler_gone(self):
        """True when the client has lost its scheduler (it is reconnecting, or gave up)."""
        client = self.client
        if client is None:
            return False
        comm = getattr(client, "scheduler_comm", None)
        return client.status not in ("running", "newly-created") or comm is None or comm.closed()

    def run(self, tasks, emit, tick=None):
        """Run ``tasks`` on the cluster, calling ``emit`` with each record as it comes."""
        distributed = import_distributed()
        from ._trial import dask_trial
        if self.client is None:
            self.connect()
        client = self.client
        run_id = uuid.uuid4().hex[:10]
        futures = {}

        def submit(task):
            key = f"fastdl-trial-{run_id}-{task['index']}-{task.get('attempt', 1)}"
            future = client.submit(dask_trial, task, self.host_processes, self.threads, key=key, pure=False)
            futures[future] = task
            return future

        done = distributed.as_completed([submit(t) for t in tasks], loop=client.loop)
        try:
            for future in done:
                task = futures.pop(future)
                try:
                    record = future.result()
                except distributed.KilledWorker as exc:
                    deaths = self._deaths(future.key) or 1
                    attempts = task.get("attempt", 1) + deaths - 1
                    if attempts < MAX_ATTEMPTS:
                        self.notify(f"a worker died while running trial {task['index']}; running that trial again")
                        done.add(submit(dict(task, attempt=attempts + 1)))
                    else:
                        self.notify(f"a worker died while running trial {task['index']} again; "
                                    "recording it as an error")
                        emit(lost_record(dict(task, attempt=attempts),
                                         f"its worker died on each of {attempts} attempts ({exc})",
                                         "dask"))
                    continue
                except distributed.CancelledError as exc:
                    if getattr(exc, "reason", "") == "scheduler-connection-lost" or self.scheduler_gone():
                        raise SchedulerLost(str(self.address)) from None
                    continue
                except Exception as exc:        # noqa: BLE001 - a DataProblem, or the task could not run
                    if self.scheduler_gone():
                        raise SchedulerLost(str(self.address)) from None
                    from ._trial import DataProblem
                    raise SearchAborted(one_line(exc), usage=isinstance(exc, DataProblem)) from None
                deaths = self._deaths(future.key)
                if deaths:
                    record["attempts"] = task.get("attempt", 1) + deaths
                    self.notify(f"trial {task['index']} was given to another worker by the scheduler after the "
                                f"worker holding it (running it or with it in its queue) died"
                                + (f" ({deaths} times)" if deaths != 1 else ""))
                future.release()
                emit(record)
                if tick is not None:
                    tick()
        finally:
            if futures and not self.scheduler_gone():
                try:
                    client.cancel(list(futures))
                except Exception:               # noqa: BLE001 - the connection may be gone
                    pass
            self.close()

    def _deaths(self, key):
        """How many times the worker running ``key`` died under it (the scheduler's count)."""
        def suspicious(dask_scheduler, key=key):     # nested: sent by value, the scheduler needs no fastdl
            ts = dask_scheduler.tasks.get(key)
            return getattr(ts, "suspicious", 0) if ts is not None else 0
        try:
            return int(self.client.run_on_scheduler(suspicious))
        except Exception:                       # noqa: BLE001 - only for the report
            return 0
