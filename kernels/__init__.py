"""Stateless array kernels behind fastdl's layers, one sub-package per backend.

- ``fastdl.kernels.reference``: backend ``"numpy"``, the book's algorithms in
  vectorised NumPy. It is the oracle every other backend is tested against.
- ``fastdl.kernels.cpu``: backend ``"numba"`` (the default), the same functions
  compiled with Numba, under the same module and function names.
- ``fastdl.kernels.cuda``: backend ``"cuda"``, numba.cuda kernels, imported only
  when asked for.

``spec.OPS`` is the one list of op names and signatures every backend
implements; ``shapes`` holds the plain-integer size helpers they share.
Nothing here is imported by ``import fastdl`` except through the backend switch.
"""
