"""Normalisation of layer arguments (ints, tuples, padding forms) shared by the public API.

Every error names the argument, what was expected, what was received and how to fix it.
"""

from __future__ import annotations

import numbers
import operator
from collections.abc import Callable, Iterable, Mapping, MappingView, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np

from ._errors import ShapeError, SizeOverflowError

_INT64_MAX = 2**63 - 1


def show_int(value: int) -> str:
    """An int for a message: digits when short, its size in bits when huge (str() of an int
    with more than 4300 digits raises)."""
    if abs(value) < 2**128:
        return str(value)
    return f"{'-' if value < 0 else ''}2**{abs(value).bit_length() - 1}-ish ({abs(value).bit_length()} bits)"


def describe(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"int {show_int(value)}"
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def as_int(value: Any, name: str, expected: str = "an int") -> int:
    """An exact Python int from an int-like value, or a TypeError/OverflowError naming it.

    `expected` is what the argument takes, for the message ("an int or a tuple of 2 ints").
    """
    if type(value) is int and -_INT64_MAX <= value <= _INT64_MAX:  # the common case, fast
        return value
    if isinstance(value, bool):
        raise TypeError(
            f"{name} must be an int, got bool {value!r}; pass {int(value)} if that is meant"
        )
    if not isinstance(value, numbers.Integral):
        try:
            value = operator.index(value)
        except TypeError:
            hint = ""
            if isinstance(value, numbers.Real) and float(value).is_integer():
                hint = f"; pass {int(float(value))} (an int, not a float)"
            elif isinstance(value, numbers.Real):
                hint = "; layer sizes are whole numbers"
            elif value is None:
                hint = f"; None is not a size here, pass e.g. {name}=1"
            elif isinstance(value, (str, bytes)):
                hint = _string_hint(value, name)
            elif isinstance(value, (Sequence, np.ndarray)) and expected == "an int":
                # e.g. groups=(2,): one value for the whole layer, not one per dimension
                only = next(iter(value)) if len(value) == 1 else None
                hint = f"; {name} is one value for the whole layer, not one per dimension" + (
                    f": pass {name}={only!r}" if only is not None else ""
                )
            raise TypeError(f"{name} must be {expected}, got {describe(value)}{hint}") from None
    value = int(value)
    if abs(value) > _INT64_MAX:
        raise SizeOverflowError(
            f"{name}={show_int(value)} does not fit in a 64-bit integer (expected |{name}| < 2**63); "
            f"no layer can use it, pass a realistic {name}"
        )
    return value


def _string_hint(value: str | bytes, name: str) -> str:
    """For a size given as a string: the int it spells, if it spells one."""
    if len(value) > 40:  # no size is that long: not worth parsing
        return ""
    try:
        return f"; pass {name}={int(value)} (an int, not a string)"
    except ValueError:
        return ""


_ORDERED_TYPES = (int, tuple, list, np.ndarray)  # checked first: isinstance on ABCs is slow


def _unordered_reason(value: Any) -> str | None:
    """Why `value` cannot stand for values in dimension order, or None when it can.

    Sequences (tuple, list, range, torch.Size), arrays and scalars are ordered. Sets have no
    order, a dict iterates over its keys, and other iterables (generators, iterators) have no
    length to check and are consumed by reading them.
    """
    if type(value) in _ORDERED_TYPES or isinstance(value, (str, bytes, Sequence, np.ndarray)):
        return None
    if isinstance(value, (AbstractSet, MappingView)):
        return f"a {type(value).__name__} has no order, so its values could land on any dimension"
    if isinstance(value, Mapping):
        return f"a {type(value).__name__} would give its keys, not its values"
    if hasattr(value, "__array__") or hasattr(value, "__index__"):
        return None  # array-likes (tensors) and integer scalars
    if isinstance(value, Iterable):
        return (
            f"a {type(value).__name__} is not a sequence: it has no length to check and "
            "reading it consumes it"
        )
    return None


def check_ordered(value: Any, name: str) -> None:
    """TypeError for an unordered container (set, dict, dict view, iterator) given as `name`.

    Every argument that holds one value per dimension (or a shape) goes through this check.
    """
    reason = _unordered_reason(value)
    if reason is not None:
        raise TypeError(
            f"{name} must be an int or a tuple or list of ints in dimension order, got "
            f"{describe(value)}; {reason}. Pass a tuple or list, e.g. "
            + (f"{name}=(2, 1)" if name.isidentifier() else "(2, 1)")
        )


def ordered_items(value: Any, name: str) -> list | None:
    """The entries of a per-dimension argument, or None for a scalar (strings included).

    Unordered containers are a TypeError (see check_ordered).
    """
    if isinstance(value, (str, bytes)):
        return None
    check_ordered(value, name)
    try:
        return list(value)
    except TypeError:
        return None


# How a caller words a bad per-dimension value: error(kind, value) gets the whole argument and
# returns the exception to raise, or None for the default wording (per_dim's). kind is "type"
# (neither an int nor a sequence), "item" (an entry is not an int) or "length".
Wording = Callable[[str, Any], "Exception | None"]


def _int_entry(
    entry: Any, name: str, expected: str, kind: str, whole: Any, error: Wording | None
) -> int:
    try:
        return as_int(entry, name, expected)
    except TypeError:
        custom = error(kind, whole) if error is not None else None
        if custom is None:
            raise
        raise custom from None


def _fail(kind: str, whole: Any, error: Wording | None, default: Exception) -> Exception:
    custom = error(kind, whole) if error is not None else None
    return default if custom is None else custom


def _plain_ints(value: Any, rank: int | None) -> tuple[int, ...] | None:
    """The common forms, read the way the general path reads them, without its checks (they
    cost tens of microseconds per call): a Python int, or a tuple or list of exactly `rank`
    of them, within int64. None for anything else (bools are not ints here: type() is exact),
    and for rank 0, which the general path words."""
    if rank == 0:
        return None
    if type(value) is int:
        return (value,) * (rank or 1) if abs(value) <= _INT64_MAX else None
    if (
        type(value) in (tuple, list)
        and rank is not None
        and len(value) == rank
        and all(type(v) is int and abs(v) <= _INT64_MAX for v in value)
    ):
        return tuple(value)
    return None


def ints_per_dim(
    value: Any,
    rank: int | None,
    name: str,
    *,
    repeat_one: bool = True,
    check_length: bool = True,
    expected: str | None = None,
    error: Wording | None = None,
) -> tuple[int, ...]:
    """The one per-dimension normaliser: an int or ints in dimension order -> a tuple of ints.

    Integers are Python ints and numpy integers (anything with __index__, as
    operator.index takes); bools are refused, as PyTorch and numpy refuse them as sizes; sets,
    dicts and iterators are refused (check_ordered). A scalar is repeated `rank` times (once
    when rank is None, the rank then being the sequence's length). repeat_one: a one-entry
    sequence is repeated too (PyTorch's ATen expands them). check_length: a sequence must hold
    `rank` entries (False: the caller checks, in its framework's words). `error` words the
    failures (see Wording); without it they read as per_dim's. `expected` is what a bad scalar
    is told the argument takes.
    """
    plain = _plain_ints(value, rank)
    if plain is not None:
        return plain
    if isinstance(value, (str, bytes)):
        many = f"a tuple of {rank} ints" if rank else "a tuple of ints"
        example = f" or {name}={(2,) * rank!r}" if rank else ""
        raise _fail(
            "type",
            value,
            error,
            TypeError(
                f"{name} must be an int or {many}, got {describe(value)}; e.g. {name}=2{example}"
            ),
        )
    items = ordered_items(value, name)
    if expected is None:
        expected = f"an int or a tuple of {rank} ints" if rank else "an int or a tuple of ints"
    if items is None:
        return (_int_entry(value, name, expected, "type", value, error),) * (rank or 1)
    if repeat_one and len(items) == 1 and rank is not None and rank != 1:
        return (_int_entry(items[0], name, "an int", "item", value, error),) * rank
    if check_length and (not items or (rank is not None and len(items) != rank)):
        want = rank if rank is not None else "1 or more"
        raise _fail(
            "length",
            value,
            error,
            ShapeError(
                f"{name} must be an int or a tuple of {want} ints (one per spatial dimension), "
                f"got {tuple(items)!r} with {len(items)} values; pass a single int for all "
                f"dimensions or exactly {want} values"
            ),
        )
    return tuple(
        _int_entry(v, f"{name}[{i}]", "an int", "item", value, error) for i, v in enumerate(items)
    )


def per_dim(value: Any, rank: int, name: str) -> tuple[int, ...]:
    """An int or one int per spatial dimension -> a tuple of `rank` ints (ints_per_dim's own
    wording)."""
    return ints_per_dim(value, rank, name)


def pad_pairs(
    value: Any,
    rank: int,
    name: str,
    *,
    per_dim: bool,
    begins_ends: bool,
    pairs: bool,
    repeat_one: bool = False,
    expected: str | None = None,
    error: Wording | None = None,
) -> list[tuple[int, int]]:
    """Numeric padding -> one (lo, hi) per spatial dimension.

    Forms: an int for every dim (always), one int per dim (per_dim), ONNX's begins then ends
    (begins_ends), (lo, hi) pairs (pairs); repeat_one: a one-int sequence stands for every dim.
    Besides ints_per_dim's kinds, `error` words "form" (a form the framework does not take)
    and "pairs" (not `rank` pairs of two); `expected` is as in ints_per_dim.
    """
    plain = _plain_ints(value, rank)
    if plain is not None and (per_dim or type(value) is int):
        return [(p, p) for p in plain]
    items = ordered_items(value, name)
    if items is None:
        scalar = ints_per_dim(value, rank, name, expected=expected, error=error)
        return [(p, p) for p in scalar]
    inner = [ordered_items(v, f"{name}[{i}]") for i, v in enumerate(items)]
    if all(v is None for v in inner):  # ints
        if begins_ends and len(items) == 2 * rank:
            flat = ints_per_dim(items, 2 * rank, name, error=error)
            return list(zip(flat[:rank], flat[rank:]))
        if not per_dim:
            raise _fail(
                "form",
                value,
                error,
                ValueError(f"{name} must be {rank} (lo, hi) pairs, got {value!r}"),
            )
        each = ints_per_dim(value, rank, name, repeat_one=repeat_one, error=error)
        return [(v, v) for v in each]
    if len(items) != rank or any(v is None or len(v) != 2 for v in inner):
        raise _fail(
            "pairs",
            value,
            error,
            ValueError(f"{name} must be {rank} (lo, hi) pairs, got {value!r}"),
        )
    if not pairs:
        raise _fail(
            "form",
            value,
            error,
            ValueError(f"{name} must be an int or {rank} ints, not (lo, hi) pairs; got {value!r}"),
        )
    lo_hi = [ints_per_dim(v, 2, f"{name}[{i}]", repeat_one=False) for i, v in enumerate(inner)]
    return [(lo, hi) for lo, hi in lo_hi]


def trim_full_shape(items: list, rank: int, channels_last: bool) -> tuple[list, list]:
    """TensorFlow's per-dim arguments may cover all rank + 2 axes: (spatial entries, the batch
    and channel entries), or (items, []) when they hold the spatial ones only."""
    if len(items) != rank + 2:
        return items, []
    if channels_last:
        return items[1:-1], [items[0], items[-1]]
    return items[2:], items[:2]


def spread(value: Any, rank: int) -> list:
    """A per-dimension argument the framework's own rules accepted, one entry per dimension:
    a scalar or a one-entry list or tuple repeated (PyTorch's _ntuple), a longer one as is."""
    if isinstance(value, (list, tuple)):
        vals = list(value)
        return vals * rank if len(vals) == 1 else vals
    return [value] * rank


def int_list(value: Any, name: str) -> list[int]:
    """A shape-like argument (output_size): an int or a sequence of ints."""
    if isinstance(value, (str, bytes)):
        raise TypeError(
            f"{name} must be an int or a tuple of ints, got {describe(value)}; e.g. {name}=(10, 10)"
        )
    items = ordered_items(value, name)
    if items is None:
        return [as_int(value, name, "an int or a tuple of ints")]
    return [as_int(v, f"{name}[{i}]") for i, v in enumerate(items)]


def parse_padding(padding: Any, rank: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """Padding in any accepted form -> (mode, pad_lo, pad_hi).

    mode is "same", "valid" or "explicit"; pad_lo/pad_hi are meaningful for "explicit" only.
    """
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("same", "valid"):
            raise ValueError(
                f"padding must be 'same', 'valid', an int, a tuple of {rank} ints or "
                f"{rank} (lo, hi) pairs; got {padding!r}; e.g. padding='same' or padding=1"
            )
        return mode, (0,) * rank, (0,) * rank
    plain = _plain_ints(padding, rank)  # pad_pairs' own fast path, before its wording is built
    if plain is not None:
        return "explicit", plain, plain

    def error(kind: str, whole: Any) -> Exception | None:
        if kind == "pairs":
            example = tuple((1, 1) for _ in range(rank))
            return ShapeError(
                f"explicit padding must be {rank} (lo, hi) pairs, one per spatial dimension, "
                f"got {padding!r}; e.g. padding={example!r}"
            )
        if kind != "length":
            return None
        items = list(whole)
        hint = f"; pass a single int or exactly {rank} values"
        if len(items) == 2 * rank:
            pairs_hint = tuple((items[i], items[i + rank]) for i in range(rank))
            hint = (
                f"; for asymmetric (lo, hi) padding write pairs, e.g. "
                f"padding={pairs_hint!r} for ONNX-style pads {tuple(items)!r}"
            )
        return ShapeError(
            f"padding must be an int, a tuple of {rank} ints, or {rank} (lo, hi) pairs; "
            f"got {tuple(items)!r} with {len(items)} values{hint}"
        )

    lo_hi = pad_pairs(
        padding,
        rank,
        "padding",
        per_dim=True,
        begins_ends=False,
        pairs=True,
        repeat_one=True,
        expected=f"an int, a tuple of {rank} ints or {rank} (lo, hi) pairs",
        error=error,
    )
    return "explicit", tuple(lo for lo, _ in lo_hi), tuple(hi for _, hi in lo_hi)


def parse_data_format(data_format: Any) -> bool:
    """True for channels_last."""
    if isinstance(data_format, str) and data_format in ("channels_first", "channels_last"):
        return data_format == "channels_last"
    hint = "; pass data_format='channels_first' (PyTorch layout) or 'channels_last' (Keras)"
    if isinstance(data_format, str) and data_format.upper() in (
        "NCHW",
        "NCW",
        "NCDHW",
        "NHWC",
        "NWC",
        "NDHWC",
    ):
        last = data_format.upper().endswith("C")
        hint = f"; for {data_format!r} use data_format={'channels_last' if last else 'channels_first'!r}"
    raise ValueError(
        f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}{hint}"
    )
