"""``fastdl.kernels`` for a ``fastdl`` imported straight from the repository's own folders.

The repository keeps the kernels at its root (``kernels/``) and every install maps that folder to
``fastdl.kernels`` (``package-dir`` in pyproject.toml): a wheel copies it into ``fastdl/``, the
editable install links it there. When Python finds ``fastdl`` in the checkout itself instead (the
checkout's root is the current folder, as under ``python -m pytest`` run there), ``fastdl/`` has
no ``kernels`` folder; :func:`register_source_kernels` then registers ``kernels/`` under that name.
"""
import importlib.util
import os
import sys
from types import ModuleType


def register_source_kernels(package: ModuleType) -> None:
    """Import ``kernels/`` (next to the folder of ``package``) as ``fastdl.kernels`` when the
    package's own folder has no ``kernels`` and the name is not imported yet; else do nothing."""
    package_dir = os.path.dirname(os.path.abspath(package.__file__ or ""))
    if "fastdl.kernels" in sys.modules or os.path.isdir(os.path.join(package_dir, "kernels")):
        return
    folder = os.path.join(os.path.dirname(package_dir), "kernels")
    init = os.path.join(folder, "__init__.py")
    spec = importlib.util.spec_from_file_location("fastdl.kernels", init,
                                                  submodule_search_locations=[folder])
    if not os.path.isfile(init) or spec is None or spec.loader is None:
        return
    module = importlib.util.module_from_spec(spec)
    sys.modules["fastdl.kernels"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["fastdl.kernels"]
        raise
    package.kernels = module  # type: ignore[attr-defined]
