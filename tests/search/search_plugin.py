"""The trial plugin of fastdl's search tests (``FASTDL_SEARCH_PLUGIN``, see fastdl.search._plugin):
failures injected into real worker processes, chosen by the test through the environment of the
client.

``FASTDL_SEARCH_TEST_KILL=INDEX:MARKER`` makes the worker running trial INDEX exit abruptly
(``os._exit(70)``) in the middle of it unless the file MARKER exists (creating it first, with the
worker's pid: so only the first attempt dies); ``INDEX`` alone: every attempt dies.
``FASTDL_SEARCH_TEST_RAISE=INDEX[,INDEX]`` makes those trials raise.
"""
import os


def task_options(index):
    """Read by the client when a search starts; the options travel with the task."""
    options = {}
    kill = os.environ.get("FASTDL_SEARCH_TEST_KILL", "")
    if kill:
        which, _, marker = kill.partition(":")
        if int(which) == index:
            options["kill"] = marker
    if str(index) in os.environ.get("FASTDL_SEARCH_TEST_RAISE", "").split(","):
        options["raise"] = True
    return options


def before_trial(index, options):
    """Run in the worker, inside the trial."""
    marker = options.get("kill")
    if marker is not None and not (marker and os.path.exists(marker)):
        if marker:
            with open(marker, "w") as f:
                f.write(f"{os.getpid()}\n")
        os._exit(70)                                      # the worker dies mid-trial
    if options.get("raise"):
        raise RuntimeError(f"test hook: trial {index} raises")
