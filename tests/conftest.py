import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# The suite tests the compiled kernels themselves: each op compiles in the calling thread
# rather than running the reference while it compiles (tests/kernels/test_compile.py tests that mode).
os.environ.setdefault("FASTDL_COMPILE", "lazy")

import fastdl  # noqa: E402

# Small, fixed hypothesis profile: the suite must stay fast on 2 cores.
settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=60, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: every available backend; the reference ("numpy") is the oracle for the others
BACKENDS = [b for b in fastdl.available_backends()]
# The cuda backend is tested in its own process (tests/cuda, run by .ci/run on Numba's CUDA
# simulator, which is far too slow for the shapes used here); this run keeps to the others.
if "cuda" in BACKENDS:
    BACKENDS.remove("cuda")
collect_ignore = [] if "cuda" in fastdl.available_backends() else ["cuda"]
FAST_BACKENDS = [b for b in BACKENDS if b != "numpy"]
DTYPES = [np.float32, np.float64]


@pytest.fixture(params=BACKENDS)
def backend_name(request):
    with fastdl.using_backend(request.param):
        yield request.param


@pytest.fixture(params=DTYPES, ids=["f32", "f64"])
def dtype(request):
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(autouse=True)
def _process_backend_restored():
    """A test that chooses the process-wide backend (set_backend, a CLI command run in-process)
    leaves the next test the backend it found."""
    from fastdl import backend
    chosen = backend._global_name
    yield
    backend._global_name = chosen
