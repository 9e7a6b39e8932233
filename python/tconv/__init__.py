"""tconv: transposed convolution done right.

Exact shape arithmetic in the dialect of PyTorch, Keras, ONNX, tf.nn and JAX, and a fast,
verified transposed convolution for numpy arrays.
"""

from . import _core, reference, shapes
from ._api import conv_transpose, conv_transpose1d, conv_transpose2d, conv_transpose3d
from ._errors import BackendWarning, ShapeError
from ._plan import ConvTranspose
from ._runtime import available_isas, get_num_threads, set_max_isa, set_num_threads
from ._doctor import Diagnosis, doctor
from ._explain import explain
from ._solve import Solution, Translation, mirror, solve, translate

_core.set_shape_error(ShapeError)

__version__ = _core.__version__

from ._threadpoolctl import register as _register_threadpoolctl  # noqa: E402

_register_threadpoolctl()

__all__ = [
    "Diagnosis",
    "Solution",
    "Translation",
    "doctor",
    "explain",
    "mirror",
    "solve",
    "translate",
    "BackendWarning",
    "ConvTranspose",
    "ShapeError",
    "available_isas",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "get_num_threads",
    "reference",
    "set_max_isa",
    "set_num_threads",
    "shapes",
]
