"""The cuda backend's tests. .ci/run runs them in their own pytest process with
NUMBA_ENABLE_CUDASIM=1 (set before Numba is imported) and small launch constants
(FASTDL_CUDA_THREADS=8, FASTDL_CUDA_TILE=4), so tiny shapes span several blocks.
The main test run does not collect this folder unless a GPU or the simulator is there
(tests/conftest.py). Tests marked `gpu` need a real GPU and are skipped on the simulator."""
import numpy as np
import pytest

import fastdl

CUDA = backend = fastdl.backend.ops("cuda")


def pytest_collection_modifyitems(config, items):
    if CUDA.simulator():
        skip = pytest.mark.skip(reason="needs a real GPU (running on Numba's CUDA simulator)")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(params=[np.float32, np.float64], ids=["f32", "f64"])
def dtype(request):
    return request.param
