"""Every op of the spec from tiny inputs to the book's largest (the cases of ``fastdl.sweep``),
on each backend: the size parameter that shows where a fast kernel would lose to the reference.

``python benchmarks/scripts/sweep.py`` prints the same cases as one side-by-side table.
"""
from fastdl.sweep import cases

from .common import BACKENDS, DTYPES, ops_or_skip

_CASES = {f"{op} {label}": make for op, label, make in cases()}


class Sweep:
    params = (BACKENDS, DTYPES, list(_CASES))
    param_names = ["backend", "dtype", "case"]
    timeout = 300

    def setup(self, backend, dtype, case):
        self.call = _CASES[case](ops_or_skip(backend), dtype)
        self.call()           # compiles (numba) or allocates; never timed

    def time_op(self, backend, dtype, case):
        self.call()
