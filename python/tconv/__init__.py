"""tconv: transposed convolution done right.

Exact shape arithmetic in the dialect of PyTorch, Keras, ONNX, tf.nn and JAX, and a fast,
verified transposed convolution for numpy arrays.
"""

from importlib import import_module as _import_module

from . import _core, shapes
from ._errors import BackendWarning, ShapeError, SizeOverflowError
from ._runtime import available_isas, get_num_threads, set_max_isa, set_num_threads

_core.set_shape_error(ShapeError)

__version__ = _core.__version__

from ._threadpoolctl import register as _register_threadpoolctl  # noqa: E402

_register_threadpoolctl()

# Loaded on first use (PEP 562), so that `import tconv` and `tconv doctor` stay fast: the shape
# tools never import numpy, and the doctor's rule tables compile only when asked for.
_LAZY = {
    "conv_transpose": "_api",
    "conv_transpose1d": "_api",
    "conv_transpose2d": "_api",
    "conv_transpose3d": "_api",
    "ConvTranspose": "_plan",
    "reference": None,
    "DecoderPlan": "_decoder",
    "Diagnosis": "_doctor",
    "doctor": "_doctor",
    "explain": "_explain",
    "Solution": "_solve",
    "Translation": "_solve",
    "mirror": "_solve",
    "Port": "_port",
    "port": "_port",
    "plan_decoder": "_decoder",
    "solve": "_solve",
    "translate": "_solve",
    "show_config": "_info",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'tconv' has no attribute {name!r}")
    module = _LAZY[name]
    value = _import_module(f".{module or name}", __name__)
    if module is not None:
        value = getattr(value, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "BackendWarning",
    "ConvTranspose",
    "DecoderPlan",
    "Diagnosis",
    "Port",
    "ShapeError",
    "SizeOverflowError",
    "Solution",
    "Translation",
    "available_isas",
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "doctor",
    "explain",
    "get_num_threads",
    "mirror",
    "plan_decoder",
    "port",
    "reference",
    "set_max_isa",
    "set_num_threads",
    "shapes",
    "show_config",
    "solve",
    "translate",
]
