"""A local worker process of ``fastdl.search`` (``python -m fastdl.search._worker``).

Started by the client with its thread share already in the environment (``NUMBA_NUM_THREADS``,
``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``, ``MKL_NUM_THREADS``, read by the libraries when
they load), in a session of its own (a Ctrl-C in the terminal reaches the client only, which
then stops its workers). Reads one JSON task per line on stdin and answers one JSON line per
message on its original stdout: ``{"type": "ready"}`` once imported, then ``{"type": "result",
"record": ...}`` per task, or ``{"type": "abort", "message": ...}`` when the data cannot be had.
Anything else the process prints goes to stderr. It exits when stdin closes or when the client
that started it is gone (checked every half second).
"""
import json
import os
import signal
import sys
import threading
import time


def _watch_parent(parent):
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(3)                      # the client is gone: nobody will read the result


def main():
    """Answer tasks read from stdin with JSON lines on the original stdout, until stdin closes."""
    out = os.dup(1)                          # the channel to the client
    os.dup2(2, 1)                            # stray prints go to stderr, not into the channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()

    def send(message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(out, data):]

    from fastdl.search import _trial
    send({"type": "ready", "pid": os.getpid()})
    for line in sys.stdin.buffer:
        task = json.loads(line)
        try:
            record = _trial.run_trial(task)
        except _trial.DataProblem as exc:
            send({"type": "abort", "message": str(exc)})
            continue
        send({"type": "result", "record": record})
    return 0


if __name__ == "__main__":
    sys.exit(main())
