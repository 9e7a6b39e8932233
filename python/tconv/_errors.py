"""Exception types of tconv."""

__all__ = ["ShapeError"]


class ShapeError(ValueError):
    """A layer configuration or input shape that cannot work.

    The message says what was expected, what was received and how to fix it. It subclasses
    ValueError, so ``except ValueError`` catches it too.
    """
