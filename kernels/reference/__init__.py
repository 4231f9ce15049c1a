"""Backend ``"numpy"``: the book's algorithms in vectorised NumPy, the oracle for every other backend.

The fused conv ops and the device-placement ops are the composite definitions
(``fastdl.kernels.composite``), filled in by ``complete`` below.
"""
from .. import complete as _complete
# each module's __all__ lists its ops, so a new op is added in its module only
from .conv import *  # noqa: F401,F403
from .pool import *  # noqa: F401,F403
from .activations import *  # noqa: F401,F403
from .affine import *  # noqa: F401,F403
from .loss import *  # noqa: F401,F403
from .batchnorm import *  # noqa: F401,F403
from .optim import *  # noqa: F401,F403

NAME = "numpy"

_complete(__name__)
