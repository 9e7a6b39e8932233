"""The layer arithmetic the Python side shares: lengths come from the C++ core, never rewritten.

Every module that needs an output length or the output_padding bound asks here, so the rule
has one Python spelling and it defers to the core (cpp/src/shape.cpp). The reference
implementation (reference.py) derives its own on purpose, as an independent oracle.
"""

from __future__ import annotations

from . import _core


def full_length(input: int, kernel: int, stride: int, dilation: int) -> int:
    """Cells of the uncropped scatter: the last input lands at (input - 1) * stride and its
    kernel spans dilation * (kernel - 1) + 1 cells."""
    return _core.transposed_length(input, kernel, stride, dilation, 0, 0, 0)


def output_padding_limit(stride: int, dilation: int) -> int:
    """output_padding with explicit padding must stay below this (PyTorch's and ONNX's bound,
    checked by the core's resolve_geometry; Keras' same/valid allow only output_padding < stride)."""
    if max(abs(stride), abs(dilation)) < 2**63:
        return _core.output_padding_limit(stride, dilation)
    # Numbers beyond int64 come only from messages the doctor reads; the core takes int64.
    return max(stride, dilation)
