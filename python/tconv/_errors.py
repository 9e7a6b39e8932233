"""Exception and warning types of tconv."""

from __future__ import annotations

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
