"""Exception and warning types of tconv."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["BackendWarning", "ShapeError"]


class ShapeError(ValueError):
    """A layer configuration or input shape that cannot work.

    The message says what was expected, what was received and how to fix it. It subclasses
    ValueError, so ``except ValueError`` catches it too.

    Errors raised by :mod:`tconv.shapes` carry more detail as attributes (None otherwise):

    kind
        A short category: ``"rank"``, ``"channels"``, ``"groups"``, ``"output_padding"``,
        ``"output_size"``, ``"nonpositive_output"``, ``"argument"`` or ``"padding"``.
    framework
        The framework whose behaviour is reproduced ("PyTorch", "Keras", ...).
    framework_message
        What that framework itself says in this situation.
    fix
        The concrete change that makes the layer work.
    """

    kind: str | None = None
    framework: str | None = None
    framework_message: str | None = None
    fix: str | None = None


class BackendWarning(UserWarning):
    """The framework reports a shape, but some of its backends refuse to run the layer.

    For example Keras' TensorFlow backend on a 'same' layer whose shape TensorFlow's own
    transposed convolution does not accept. The message names the backends that run it.
    """


class SizeOverflowError(OverflowError, ValueError):
    """A size or parameter beyond 64-bit shape arithmetic.

    An OverflowError, as the compute API documents, and a ValueError like every other bad
    argument value, so ``except ValueError`` around the shape functions catches it too.
    """


def overflow_as_value_error(fn: Callable[..., T]) -> Callable[..., T]:
    """Re-raise the core's OverflowError (a product beyond int64) as a SizeOverflowError."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except OverflowError as exc:
            if isinstance(exc, ValueError):
                raise
            raise SizeOverflowError(
                f"{exc}; a size or parameter is too large for 64-bit shape arithmetic"
            ) from None

    return wrapper
