"""Every op of the spec, tiny to the book's largest sizes: numba vs the numpy reference.

    python benchmarks/scripts/sweep.py                    # both dtypes, every op
    python benchmarks/scripts/sweep.py --paths --ops relu # numba forced serial / parallel too

See ``fastdl/sweep.py`` for the cases and the method.
"""
import sys

from fastdl.sweep import main

if __name__ == "__main__":
    sys.exit(main())
