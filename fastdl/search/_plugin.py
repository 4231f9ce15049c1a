"""Trial plugins: code of one's own that a search runs in the worker at the start of each trial
(to inject failures when checking what a search survives, to log, to set something up).

``FASTDL_SEARCH_PLUGIN`` names the plugin when a search starts: a module name, or the path of a
``.py`` file; either must be importable (or present) where the client runs and where the trials
run. The module defines two functions, each optional:

``task_options(index) -> dict or None``
    Called by the client for each trial when the search starts. What it returns (JSON-able) is
    sent with the trial's task, to any worker, local or on a cluster, and to every attempt.
``before_trial(index, options) -> None``
    Called in the worker, with those options, once the data and the backend are ready and before
    the trial trains. What it raises is recorded as the trial's error, and the search goes on;
    a worker process that dies in it is handled as any worker that dies mid-trial.

fastdl's own tests use one (``tests/search/search_plugin.py``) to kill workers and fail trials.
"""
import importlib
import importlib.util
import os
import sys

#: the environment variable that names the plugin
VARIABLE = "FASTDL_SEARCH_PLUGIN"


def load(source):
    """The plugin module named by ``source`` (a module name or a ``.py`` file's path)."""
    if source.endswith(".py") or os.sep in source:
        path = os.path.abspath(source)
        name = "_fastdl_search_plugin_" + str(abs(hash(path)))
        module = sys.modules.get(name)
        if module is None:
            spec = importlib.util.spec_from_file_location(name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"{VARIABLE}={source!r}: not a Python file")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            sys.modules[name] = module
        return module
    return importlib.import_module(source)


def task_plugins(indices):
    """index -> what travels with the task (``{"source": ..., "options": ...}``) for the plugin the
    environment names, read on the client; {} without one."""
    source = os.environ.get(VARIABLE, "").strip()
    if not source:
        return {}
    module = load(source)
    options = getattr(module, "task_options", None)
    return {i: {"source": source, "options": (options(i) if callable(options) else None) or {}}
            for i in indices}


def before_trial(task):
    """Run the ``before_trial`` of the plugin a task carries (nothing without one)."""
    plugin = task.get("plugin")
    if not plugin:
        return
    hook = getattr(load(plugin["source"]), "before_trial", None)
    if callable(hook):
        hook(task["index"], plugin["options"])
