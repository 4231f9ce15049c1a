"""Stateless array kernels behind fastdl's layers, one sub-package per backend.

- ``fastdl.kernels.reference``: backend ``"numpy"``, the book's algorithms in
  vectorised NumPy. It is the oracle every other backend is tested against.
- ``fastdl.kernels.cpu``: backend ``"numba"`` (the default), the same functions
  compiled with Numba, under the same module and function names.
- ``fastdl.kernels.cuda``: backend ``"cuda"``, numba.cuda kernels, imported only
  when asked for.

``spec.TABLE`` is the one list of op names and signatures every backend namespace
holds. A backend package defines the ops it has kernels for and ends with
``complete(__name__)``, which fills in every other op from its composite definition
(``composite``). ``shapes`` holds the plain-integer size helpers the backends share,
``arrays`` the one test for a device array, ``examples`` the example inputs of every op
family (for tests, the sweep and asv).
Nothing here is imported by ``import fastdl`` except through the backend switch.
"""
import functools
import inspect
import sys
from types import ModuleType
from typing import Any, Callable, List

from . import _tbb

_tbb.preload()   # before anything can start Numba's threads (see _tbb)


def complete(module_name: str) -> List[str]:
    """Give backend package ``module_name`` every op of the spec it does not define itself,
    bound to the package (each marked ``fn.composite = True``): the op's definition in
    ``composite`` where there is one, else the reference kernel run on the host
    (``composite.via_reference``). Returns the names filled in. Raises TypeError when the
    reference itself lacks an op that has no composite definition."""
    from . import composite
    from .spec import TABLE
    module = sys.modules[module_name]
    filled: List[str] = []
    for op in TABLE:
        if callable(getattr(module, op.name, None)):
            continue
        definition = getattr(composite, op.name, None)
        if definition is None:
            if module_name == composite.REFERENCE:
                raise TypeError(f"the reference backend must define op {op.name!r}: it has no "
                                "composite definition in fastdl.kernels.composite")
            definition = composite.via_reference(op)
        setattr(module, op.name, _bind(definition, module))
        filled.append(op.name)
    setattr(module, "COMPOSITE_OPS", tuple(filled))
    return filled


def _bind(definition: Callable[..., Any], module: ModuleType) -> Callable[..., Any]:
    @functools.wraps(definition)
    def op(*args: Any, **kwargs: Any) -> Any:
        return definition(module, *args, **kwargs)
    sig = inspect.signature(definition)
    op.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])  # type: ignore[attr-defined]
    op.__module__ = module.__name__
    op.composite = True  # type: ignore[attr-defined]
    return op
