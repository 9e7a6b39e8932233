"""Normalisation of layer arguments (ints, tuples, padding forms) shared by the public API."""

from __future__ import annotations

import numbers
import operator
from typing import Any

from ._errors import ShapeError

_INT64_MAX = 2**63 - 1


def as_int(value: Any, name: str) -> int:
    """An exact Python int from an int-like value, or a TypeError/OverflowError naming it."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        try:
            if isinstance(value, bool):
                raise TypeError
            value = operator.index(value)
        except TypeError:
            raise TypeError(
                f"{name} must be an int or a tuple of ints, got {type(value).__name__} {value!r}"
            ) from None
    value = int(value)
    if abs(value) > _INT64_MAX:
        raise OverflowError(
            f"{name}={value} does not fit in a 64-bit integer; no layer can use it "
            f"(expected a value below 2**63)"
        )
    return value


def per_dim(value: Any, rank: int, name: str) -> tuple[int, ...]:
    """An int or one int per spatial dimension -> a tuple of `rank` ints."""
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or a tuple of {rank} ints, got {value!r}")
    try:
        items = list(value)
    except TypeError:
        return (as_int(value, name),) * rank
    if len(items) == 1 and rank != 1:
        # PyTorch's _ntuple repeats a 1-element sequence too.
        return (as_int(items[0], name),) * rank
    if len(items) != rank:
        raise ShapeError(
            f"{name} must be an int or a tuple of {rank} ints (one per spatial dimension), "
            f"got {tuple(items)!r} with {len(items)} values"
        )
    return tuple(as_int(v, f"{name}[{i}]") for i, v in enumerate(items))


def parse_padding(padding: Any, rank: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Padding in any accepted form -> (mode, pad_lo, pad_hi).

    mode is "same", "valid" or "explicit"; pad_lo/pad_hi are meaningful for "explicit" only.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("same", "valid"):
            raise ValueError(
                f"padding must be 'same', 'valid', an int, a tuple of {rank} ints or "
                f"{rank} (lo, hi) pairs; got {padding!r}"
            )
        return mode, (0,) * rank, (0,) * rank
    try:
        items = list(padding)
    except TypeError:
        p = as_int(padding, "padding")
        return "explicit", (p,) * rank, (p,) * rank
    pairs = [isinstance(v, (tuple, list)) for v in items]
    if any(pairs):
        if not all(pairs) or len(items) != rank or any(len(v) != 2 for v in items):
            raise ShapeError(
                f"explicit padding must be {rank} (lo, hi) pairs, one per spatial dimension, "
                f"got {padding!r}"
            )
        lo = tuple(as_int(v[0], f"padding[{i}][0]") for i, v in enumerate(items))
        hi = tuple(as_int(v[1], f"padding[{i}][1]") for i, v in enumerate(items))
        return "explicit", lo, hi
    if len(items) != rank and not (len(items) == 1):
        hint = ""
        if len(items) == 2 * rank:
            pairs_hint = tuple((items[i], items[i + rank]) for i in range(rank))
            hint = (
                f"; for asymmetric (lo, hi) padding write pairs, e.g. "
                f"padding={pairs_hint!r} for ONNX-style pads {tuple(items)!r}"
            )
        raise ShapeError(
            f"padding must be an int, a tuple of {rank} ints, or {rank} (lo, hi) pairs; "
            f"got {tuple(items)!r}{hint}"
        )
    p = per_dim(items, rank, "padding")
    return "explicit", p, p


def parse_data_format(data_format: Any) -> bool:
    """True for channels_last."""
    if data_format in ("channels_first", "channels_last"):
        return data_format == "channels_last"
    hint = ""
    if isinstance(data_format, str) and data_format.upper() in ("NCHW", "NCW", "NCDHW", "NHWC",
                                                                  "NWC", "NDHWC"):
        last = data_format.upper().endswith("C")
        hint = f"; for {data_format!r} use data_format={'channels_last' if last else 'channels_first'!r}"
    raise ValueError(
        f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}{hint}"
    )
