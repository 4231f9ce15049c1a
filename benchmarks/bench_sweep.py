"""Every op of the spec from tiny inputs to the book's largest (the cases of ``fastdl.sweep``),
on each backend: the size parameter that shows where a fast kernel would lose to the reference.

200 sizes x backend x dtype, each in a process of its own under asv: not part of the default
suite. Selected explicitly with FASTDL_BENCH_SWEEP=1 (README, section Benchmarks):

    FASTDL_BENCH_SWEEP=1 asv run --python=same --set-commit-hash $(git rev-parse HEAD) -b Sweep

``python benchmarks/scripts/sweep.py`` prints the same cases as one side-by-side table.
"""
import os

from .common import BACKENDS, DTYPES, Warmed, ops_or_skip, warm

if os.environ.get("FASTDL_BENCH_SWEEP") == "1":
    from fastdl.sweep import cases

    _CASES = {f"{op} {label}": make for op, label, make in cases()}

    class Sweep(Warmed):
        params = (BACKENDS, DTYPES, list(_CASES))
        param_names = ["backend", "dtype", "case"]
        timeout = 300

        def setup(self, backend, dtype, case):
            self.call = _CASES[case](ops_or_skip(backend), dtype)
            warm((backend, dtype, case), self.call)   # compiles (numba) or allocates; never timed

        def time_op(self, backend, dtype, case):
            self.call()
