"""The numpy-facing transposed convolution."""

from __future__ import annotations

import functools
import math
import numbers
import os
from collections.abc import Callable
from typing import Any, NamedTuple, cast

import numpy as np

from . import _core
from ._args import as_int, describe, int_list, parse_data_format, parse_padding, per_dim, show_int
from ._bounded import near_root_divisor
from ._errors import ShapeError, SizeOverflowError

__all__ = [
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
]

_F32, _F64 = np.dtype(np.float32), np.dtype(np.float64)
_FLOAT_DTYPES = (_F32, _F64)
_DTYPE_FIX = {
    "x": "x.astype(np.float32)",
    "weight": "weight.astype(x.dtype) (or np.float32)",
    "bias": "bias.astype(x.dtype)",
}


def convert(value: Any, name: str) -> tuple[np.ndarray, bool]:
    """(array, adopts_dtype): the operand as an ndarray, and whether it is a Python sequence.

    Python lists and tuples have no dtype of their own: they are read with np.asarray and adopt
    the dtype of the ndarray operands (float64 when there is none), like Python numbers do in
    numpy arithmetic. Everything else that numpy can read as an array (ndarrays, numpy scalars,
    objects with __array__ or the buffer protocol) keeps its dtype and must be float32/float64.
    """
    if value is None:
        raise TypeError(f"{name} must be a numpy array (float32 or float64), got None")
    if isinstance(value, np.ma.MaskedArray):
        raise TypeError(
            f"{name} is a masked array; tconv would ignore its mask and compute with the hidden "
            f"values. Pass {name}.filled(0) (or another fill value) to say what masked cells hold"
        )
    if isinstance(value, np.ndarray):
        # A 0-d array has no shape to speak of: it adopts the dtype, and the shape check says
        # what is wrong with it (a scalar bias is a shape problem, not a precision problem).
        arr, adopts = value, value.ndim == 0
    elif isinstance(value, (str, bytes, dict, set)):
        raise TypeError(
            f"{name} must be a numpy array (float32 or float64) or a nested list of numbers, "
            f"got {type(value).__name__}"
        )
    else:
        try:
            arr = np.asarray(value)
        except Exception as exc:  # ragged lists, tensors that refuse conversion, ...
            raise TypeError(
                f"{name} could not be read as a numpy array ({type(exc).__name__}: {exc}); pass "
                f"a float32 or float64 ndarray"
            ) from None
        adopts = isinstance(value, (list, tuple)) or arr.ndim == 0
    kind = arr.dtype.kind
    if arr.dtype.fields is not None or kind == "V":
        raise TypeError(
            f"{name} is a structured array (dtype {arr.dtype}); tconv needs a plain float32 or "
            f"float64 array: select a field, e.g. {name}['a'], or view the data as floats"
        )
    if adopts:
        if kind in "iuf":
            return arr, True
        if kind == "O" and isinstance(value, (list, tuple)):
            raise TypeError(_object_entry_message(value, name))
        what = {"b": "booleans", "c": "complex numbers", "O": "Python objects"}
        got = (
            describe(value)
            if arr.ndim == 0
            else f"a {type(value).__name__} of {what.get(kind, f'dtype {arr.dtype}')}"
        )
        raise TypeError(
            f"{name} is {got}; "
            f"tconv computes real float32 or float64: pass numbers only, e.g. "
            f"np.asarray({name}, dtype=np.float32)"
        )
    if kind == "f" and arr.dtype.itemsize in (4, 8):
        return arr, False
    why = {
        "b": "booleans are not numbers to convolve",
        "c": "complex transposed convolution is not supported (convolve the real and imaginary "
        "parts separately)",
        "O": "object arrays hold Python objects",
        "i": "integer inputs are not converted silently (the result would not be integer)",
        "u": "integer inputs are not converted silently (the result would not be integer)",
        "f": "float16 has no native kernels (compute in float32, then cast back)",
    }.get(kind, "it is not a floating-point type")
    fix = _DTYPE_FIX.get(name, name + ".astype(np.float32)")
    if kind == "f" and arr.dtype.itemsize > 8:
        why = (
            f"{arr.dtype} (np.longdouble, extended precision) has no native kernels: float64 "
            f"is the widest it computes in (values beyond its range become inf)"
        )
        fix = f"{name}.astype(np.float64)"
    raise TypeError(
        f"{name} has dtype {arr.dtype}; tconv computes in float32 or float64 and {why}. "
        f"Convert it first, e.g. {fix}"
    )


def _object_entry_message(value: Any, name: str) -> str:
    """Why numpy read a nested list as an object array: its first entry that is no number."""
    stack = [(name, value)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, (list, tuple)):
            stack.extend((f"{path}[{i}]", e) for i, e in reversed(list(enumerate(v))))
        elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
            iv = int(v)
            if -(2**63) <= iv < 2**64:
                continue
            too_big = (
                f"{path} is the integer {show_int(iv)}, too large for int64 (|value| < 2**63), so "
                f"numpy can only hold it as a Python object"
            )
            if abs(iv) < 2**1024:
                return (
                    f"{too_big}; to compute with it as a float, convert it explicitly: "
                    f"np.asarray({name}, dtype=np.float64) (it becomes {float(iv):.6g})"
                )
            return (
                f"{too_big}, and too large for float64 too (at most about 1.8e308): check the data"
            )
        elif not isinstance(v, (float, int, np.number)):
            return (
                f"{path} is {type(v).__name__} {v!r:.60}, not a number; tconv computes real "
                f"float32 or float64: pass numbers only, e.g. np.asarray({name}, "
                f"dtype=np.float32) after replacing it"
            )
    return (
        f"{name} could not be read as an array of numbers (numpy made an object array); "
        f"pass a float32 or float64 ndarray"
    )


def operands(
    x: Any, weight: Any, bias: Any, *, has_x: bool = True
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """x, weight and bias as native-byte-order arrays of one float dtype (the dtype rules).

    has_x=False leaves x out (a plan knows its weights before any input).
    """
    if _plain_operands(x if has_x else weight, weight, bias):
        return (x if has_x else None), weight, bias
    xa, x_adopts = convert(x, "x") if has_x else (None, True)
    wa, w_adopts = convert(weight, "weight")
    ba, b_adopts = (None, True) if bias is None else convert(bias, "bias")
    typed = [
        (name, a)
        for name, a, adopts in (
            ("x", xa, x_adopts),
            ("weight", wa, w_adopts),
            ("bias", ba, b_adopts),
        )
        if not adopts and a is not None
    ]
    for name, a in typed[1:]:
        first, fa = typed[0]
        if a.dtype.type != fa.dtype.type:
            raise TypeError(
                f"{first} is {fa.dtype} but {name} is {a.dtype}; tconv does not mix "
                f"precisions. Convert one of them, e.g. {name}.astype({first}.dtype)"
            )
    dtype = typed[0][1].dtype.newbyteorder("=") if typed else np.dtype(np.float64)

    def native(a: np.ndarray) -> np.ndarray:
        # Same values, native byte order: a copy only for byte-swapped or converted inputs.
        return a if a.dtype == dtype else a.astype(dtype)

    return (None if xa is None else native(xa)), native(wa), (None if ba is None else native(ba))


def _plain_operands(x: Any, weight: Any, bias: Any) -> bool:
    """Whether the operands are what the dtype rules return as they are: plain ndarrays of one
    native float dtype with at least one axis each (a 0-d array adopts the dtype)."""
    dtype = getattr(x, "dtype", None)
    return (
        (dtype is _F32 or dtype is _F64)
        and type(x) is np.ndarray
        and type(weight) is np.ndarray
        and weight.dtype is dtype
        and x.ndim > 0
        and weight.ndim > 0
        and (bias is None or (type(bias) is np.ndarray and bias.dtype is dtype and bias.ndim > 0))
    )


def aligned(a: np.ndarray) -> np.ndarray:
    """The core reads elements directly: copy arrays whose data or strides are misaligned."""
    item = a.dtype.itemsize
    if a.flags.aligned and a.dtype.alignment == item:  # numpy's own check, cheaper
        return a
    if a.ctypes.data % item or any(s % item for s in a.strides):
        return np.array(a, copy=True)
    return a


def empty_output(shape: tuple, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array whose data starts on a cache line (large results
    reuse the buffers of dropped ones, see _core.result_array). The kernels store whole
    64-byte vectors; numpy's own allocations of any size start 16 bytes into a cache line,
    which splits every such store over two lines (channels_last U-Net 128 -> 64 at 128x128 on
    one thread: 88 GFLOP/s into np.empty, 96 into a line-aligned array)."""
    return _core.result_array(shape, np.dtype(dtype))


def _nbytes(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"):
        if value < 1024 or unit == "EiB":
            return f"{value:.0f} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"  # pragma: no cover


def _read_int(path: str) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
        return int(text)
    except (OSError, ValueError):
        return None


@functools.cache
def _memory_bound() -> tuple[int, str] | None:
    """The most memory this process can ever get, and where that bound comes from.

    Physical memory plus swap, lowered by a cgroup limit or RLIMIT_AS. A result larger than this
    can never be allocated; asking for it anyway would either fail deep inside the allocator or,
    with memory overcommit, succeed lazily and get the process killed half-way through.
    """
    bounds: list[tuple[int, str]] = []
    try:
        meminfo = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                meminfo[key] = int(rest.split()[0]) * 1024
        if "MemTotal" in meminfo:
            bounds.append(
                (meminfo["MemTotal"] + meminfo.get("SwapTotal", 0), "physical memory plus swap")
            )
    except (OSError, ValueError, IndexError):
        try:
            total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
            if total > 0:
                bounds.append((total, "physical memory"))
        except (AttributeError, ValueError, OSError):
            pass
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        limit = _read_int(path)
        if limit is not None and 0 < limit < 2**62:
            bounds.append((limit, f"the cgroup limit in {path}"))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY and soft > 0:
            bounds.append((soft, "the address-space limit (ulimit -v)"))
    except (ImportError, ValueError, OSError):
        pass
    return min(bounds) if bounds else None


def check_memory(shape: tuple, dtype: np.dtype, batched: bool, channels_last: bool) -> None:
    """MemoryError before anything is allocated when the result cannot fit in this machine."""
    nbytes = math.prod(map(int, shape)) * dtype.itemsize
    # numpy multiplies the nonzero sizes even of an empty array
    described = nbytes or math.prod(max(int(s), 1) for s in shape) * dtype.itemsize
    if described > _INTP_MAX:
        raise ShapeError(
            f"the result would have shape {tuple(shape)}: empty, but its nonzero sizes describe "
            f"{show_int(described)} bytes of {dtype}, more than a numpy array can address "
            f"(2**63 - 1 bytes), so numpy cannot even make the empty array; check stride, "
            f"dilation, padding and the input size for a typo"
        )
    bound = _memory_bound()
    if bound is None or nbytes <= bound[0]:
        return
    fix = "pass out= a np.memmap of that shape to write it to disk"
    if batched and shape[0] > 1:
        fix = "split x along its batch axis and call once per part, or " + fix
    raise MemoryError(
        f"the result would have shape {tuple(shape)} ({dtype}) and need {_nbytes(nbytes)}, more "
        f"than this machine can ever provide ({_nbytes(bound[0])}, {bound[1]}); check stride, "
        f"dilation, padding and the input size, or {fix}"
    )


_INTP_MAX = int(np.iinfo(np.intp).max)


def unbatched_error(
    exc: ShapeError, xb_shape: tuple, x_shape: tuple, channels_last: bool
) -> ShapeError:
    """`exc` from the core, which saw unbatched x with a batch axis of 1, quoting the x shape
    the user passed instead."""
    batched = str(tuple(xb_shape))
    layout = "(N, *spatial, C_in)" if channels_last else "(N, C_in, *spatial)"
    alone = "(*spatial, C_in)" if channels_last else "(C_in, *spatial)"
    text = str(exc).replace(
        f"x shape {batched} is {layout}", f"x shape {tuple(x_shape)} is {alone}, unbatched"
    )
    text = text.replace(f"(x shape {batched})", f"(x shape {tuple(x_shape)}, unbatched)")
    return ShapeError(text)


class _Shape:
    """Just the .shape and .ndim of an array, for messages about shapes."""

    def __init__(self, shape: tuple) -> None:
        self.shape = tuple(shape)
        self.ndim = len(self.shape)


def _square_factors(n: int, k: int) -> list[int]:
    """k factors with product n, as close to each other as a bounded search finds, ascending."""
    factors = []
    for remaining in range(k, 1, -1):
        factors.append(near_root_divisor(n, remaining))
        n //= factors[-1]
    factors.append(n)
    return sorted(factors)


def rank_error(x: Any, weight: Any, rank: int, channels_last: bool) -> ShapeError:
    """The rank error for x (an array or just its shape) against weight (array or shape)."""
    x = _Shape(tuple(np.shape(x)) if not isinstance(x, tuple) else x)
    weight = _Shape(tuple(np.shape(weight)) if not isinstance(weight, tuple) else weight)
    layout = "(N, *spatial, C_in)" if channels_last else "(N, C_in, *spatial)"
    unbatched = "(*spatial, C_in)" if channels_last else "(C_in, *spatial)"
    msg = (
        f"x must have rank {rank + 2} {layout} or {rank + 1} {unbatched} (unbatched) for a "
        f"{rank}-D transposed convolution with weight of shape {weight.shape}, got x of "
        f"shape {x.shape} (rank {x.ndim})"
    )
    c_in = weight.shape[-1] if channels_last else weight.shape[0]
    if x.ndim == 2 and rank >= 2:
        n, features = x.shape
        if c_in and features % c_in == 0 and features:
            spatial = _square_factors(features // c_in, rank)
            target = (n, *spatial, c_in) if channels_last else (n, c_in, *spatial)
            sp = " * ".join(str(s) for s in spatial)
            msg += (
                f". A flat (N, features) array cannot feed a {rank}-D layer: reshape each row of "
                f"{features} features into {c_in} channels of {sp} cells, e.g. "
                f"x.reshape{target} (any spatial sizes whose product is {features // c_in} "
                f"work; in Keras, a Reshape({tuple(target[1:])}) layer)"
            )
        else:
            msg += (
                f". A flat (N, features) array cannot feed a {rank}-D layer, and {features} "
                f"features do not split into {c_in} channels (the weight's C_in): reshape x "
                f"to {layout} with prod(spatial) * {c_in} == features, or fix the size of the "
                f"layer before"
            )
    elif x.ndim == 0:
        msg += ". A scalar is not an image; pass an array with channel and spatial axes"
    elif x.ndim == 1:
        n = x.shape[0]
        msg += (
            f"; a 1-D array has no channel axis: add the missing axes to give it the layout "
            f"{unbatched} with C_in = {c_in}"
        )
        if c_in and n % c_in == 0:
            sizes = [str(n // c_in)] + ["1"] * (rank - 1)
            example = [*sizes, str(c_in)] if channels_last else [str(c_in), *sizes]
            msg += f", e.g. x.reshape({', '.join(example)})"
        else:
            msg += f" ({n} values do not split into {c_in} channels)"
    elif x.ndim < rank + 1:
        msg += f"; add the missing axes (e.g. x[np.newaxis]) or use a {x.ndim - 1}-D weight"
    else:
        msg += f"; drop extra axes (x.squeeze() or x.reshape) or use a {x.ndim - 2}-D weight"
    return ShapeError(msg)


@functools.lru_cache(maxsize=256)
def resolve_layer(
    args: tuple,
    op: tuple[int, ...] | None,
    mode: str,
    groups: int,
    channels_last: bool,
    wanted: tuple[int, ...] | None,
) -> tuple[Any, tuple | None]:
    """(geometry, Keras' empty spatial lengths or None) of a layer given as the core's
    arguments, output_padding `op` or the output size `wanted`. Keras' padding='same' with
    output_padding 0 and an even kernel on a length of 1 gives 0 cells; the core refuses empty
    outputs, so then it checks everything else on the uncropped ('valid') layer.

    Cached: the arguments are ints, strings and tuples of ints, the answer depends on them alone
    and a Geometry cannot be changed from Python (a failure raises again on every call)."""
    x_shape, w_shape, rank, stride, dilation, lo, hi = args
    if wanted is not None:
        spatial = _spatial(wanted, rank, channels_last)
        op = tuple(_output_padding_for_size(args, mode, groups, channels_last, wanted))
    empty = _keras_same_lengths(x_shape, w_shape, rank, stride, dilation, mode, op, channels_last)
    if wanted is not None and 0 in spatial and (empty is None or list(empty) != spatial):
        raise ShapeError(
            f"output_size {tuple(wanted)} is not reachable: an output of size "
            f"0 needs padding='same', output_padding=0, an even kernel and an "
            f"input of 1 in that dimension"
        )
    if empty is not None:
        op, mode = (0,) * rank, "valid"
    return _core.resolve_geometry(
        x_shape, w_shape, rank, stride, dilation, lo, hi, op, mode, groups, channels_last
    ), empty


def empty_output_shape(geometry: Any, empty: tuple, channels_last: bool) -> tuple:
    """The batched output shape of a layer whose spatial lengths are Keras' empty ones."""
    y = tuple(geometry.output_shape())
    return (y[0], *empty, y[-1]) if channels_last else (y[0], y[1], *empty)


def _spatial(wanted: tuple[int, ...], rank: int, channels_last: bool) -> list[int]:
    """The spatial sizes of an output_size given as spatial sizes or as a full shape."""
    if len(wanted) == rank:
        return list(wanted)
    return list(wanted[1:-1] if channels_last else wanted[2:])


def _output_padding_for_size(
    args: tuple, mode: str, groups: int, channels_last: bool, wanted: tuple[int, ...]
) -> list[int]:
    """output_padding per dim reaching `wanted`. Under Keras' 'same', a dim that wants 0 cells
    takes output_padding 0 (the only way to its empty output); the other dims are solved as a
    layer of their own."""
    x_shape, w_shape, rank, stride, dilation, lo, hi = args
    spatial = _spatial(wanted, rank, channels_last)
    if mode != "same" or 0 not in spatial:
        return list(
            _core.output_padding_for_size(
                x_shape,
                w_shape,
                rank,
                stride,
                dilation,
                lo,
                hi,
                mode,
                groups,
                channels_last,
                wanted,
            )
        )
    keep = [d for d in range(rank) if spatial[d] != 0]
    op = [0] * rank
    if not keep:
        return op

    def pick(v: Any) -> list:
        return [v[d] for d in keep]

    if channels_last:
        xs = (x_shape[0], *pick(x_shape[1:-1]), x_shape[-1])
        ws = (*pick(w_shape[:rank]), *w_shape[rank:])
        sub_wanted = (
            pick(spatial) if len(wanted) == rank else [wanted[0], *pick(spatial), wanted[-1]]
        )
    else:
        xs = (*x_shape[:2], *pick(x_shape[2:]))
        ws = (*w_shape[:2], *pick(w_shape[2:]))
        sub_wanted = pick(spatial) if len(wanted) == rank else [*wanted[:2], *pick(spatial)]
    sub = _core.output_padding_for_size(
        xs,
        ws,
        len(keep),
        pick(stride),
        pick(dilation),
        pick(lo),
        pick(hi),
        mode,
        groups,
        channels_last,
        sub_wanted,
    )
    for d, v in zip(keep, sub):
        op[d] = v
    return op


def conv_transpose(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = None,
    dilation: Any = 1,
    groups: int = 1,
    *,
    output_size: Any = None,
    data_format: str = "channels_first",
    out: np.ndarray | None = None,
    _rank: int | None = None,
) -> np.ndarray:
    """Transposed convolution of `x` with `weight`, the way PyTorch and Keras compute it.

    Parameters
    ----------
    x : ndarray or nested list
        ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)`` with
        ``data_format="channels_first"``; ``(N, *spatial, C_in)`` or ``(*spatial, C_in)`` with
        ``"channels_last"``. ndarrays (and array-likes with a dtype, such as CPU tensors) must
        be float32 or float64, all of one precision, and are never converted (except to
        native byte order). Python lists and tuples are read with ``np.asarray`` and adopt
        the dtype of the ndarray operands (float64 if there is none). Any strides, order or
        alignment are accepted; read-only arrays are fine.
    weight : ndarray
        ``(C_in, C_out/groups, *kernel)`` (PyTorch/ONNX layout) for channels_first,
        ``(*kernel, C_out/groups, C_in)`` (Keras layout) for channels_last. Its rank minus 2 is
        the number of spatial dimensions.
    bias : ndarray, optional
        ``(C_out,)``.
    stride, dilation, output_padding : int or tuple of int
        One value for every spatial dimension or one per dimension. ``output_padding=None``
        is 0 with numeric padding and Keras' own inference with ``"same"``/``"valid"``.
    padding : int, tuple, tuple of (lo, hi) pairs, "same" or "valid"
        Cells cropped from each end of the full result (PyTorch), explicit asymmetric crops,
        or Keras' ``"same"``/``"valid"``.
    groups : int
        Grouped (``groups=C_in``: depthwise) transposed convolution.
    output_size : tuple of int, optional
        Wanted spatial output sizes (or the full output shape), as PyTorch's ``output_size=``;
        the output_padding is chosen to reach them.
    data_format : {"channels_first", "channels_last"}
    out : ndarray, optional
        Writeable, aligned, C-contiguous array of the exact result shape and dtype, sharing no
        memory with the inputs, to write the result into. Anything else is refused, and `out`
        is left untouched when the call fails.

    Returns
    -------
    ndarray
        C-contiguous, of the input's dtype.

    Raises
    ------
    ShapeError
        (a ValueError) For a layer that cannot work: ranks, channels, groups, bias length,
        sizes below 1, padding that empties the output, output_padding or output_size out of
        reach. The message says what was expected, what was received and how to fix it.
    TypeError
        For dtypes other than float32/float64, mixed precisions, masked arrays, and
        non-integers where sizes are expected.
    ValueError
        For an unusable `out`, unknown padding or data_format strings.
    OverflowError
        For sizes that do not fit in 64 bits, before anything is allocated.
    MemoryError
        When the result cannot fit in this machine's memory, before anything is allocated.
    KeyboardInterrupt
        Ctrl-C stops a call in the main thread within a fraction of a second, whatever its
        shape (`out`, if given, is then partly written). The GIL is released while computing:
        calls from several threads run in parallel and give the serial results.
    """
    # A plain repeat goes straight to the core (docs/design.md, "A repeated functional call").
    args = (stride, padding, output_padding, dilation, groups, output_size, data_format, _rank)
    if out is None and (y := _core.repeat(x, weight, bias, args)) is not None:
        return cast(np.ndarray, y)
    channels_last = parse_data_format(data_format)
    x_in, w_in, b_in = x, weight, bias
    x, weight, bias = operands(x, weight, bias)
    rank = _weight_rank(weight, channels_last, _rank)
    if x.ndim == rank + 1:
        batched, x_b = False, x[np.newaxis]
    elif x.ndim == rank + 2:
        batched, x_b = True, x
    else:
        raise rank_error(x, weight, rank, channels_last)
    layer = layer_args(rank, stride, padding, output_padding, dilation, groups, output_size)
    try:
        geometry, empty = resolve_call(
            x_b.shape, weight.shape, batched, layer, channels_last, output_size
        )
    except ShapeError as exc:
        if batched:
            raise
        raise unbatched_error(exc, x_b.shape, x.shape, channels_last) from None
    except OverflowError as exc:
        # The core names the product that overflowed; say which arguments fed it.
        raise SizeOverflowError(
            f"{exc} (x shape {x_b.shape if batched else x.shape}, weight shape {weight.shape}, "
            f"stride={layer.stride}, dilation={layer.dilation}, padding={padding!r}, "
            f"output_padding={output_padding!r}); check these for a typo such as an extra "
            f"digit or exponent"
        ) from None
    if bias is not None:
        check_bias(bias, geometry.out_channels, weight.shape, layer.groups)
        bias = aligned(np.ascontiguousarray(bias))
    inputs: tuple = (("x", x_in), ("weight", w_in), ("bias", b_in))
    if x is not x_in or weight is not w_in or bias is not b_in:  # converted copies too
        inputs += (("x", x), ("weight", weight), ("bias", bias))

    def compute(xa: np.ndarray, y: np.ndarray) -> None:
        _core.conv_transpose(geometry, xa, aligned(weight), bias, y)

    result = run(geometry, empty, x_b, out, batched, channels_last, inputs, compute)
    if out is None:
        _keep(x_in, w_in, b_in, args, geometry, empty, channels_last, batched)
    return result


def _keep(x, weight, bias, args, geometry, empty, channels_last: bool, batched: bool) -> None:
    """Keeps a completed call's resolution for its repeats (_core.repeat: plain calls only)."""
    if empty is None:
        y_shape = result_shape(geometry, empty, channels_last)
        _core.remember(x, weight, bias, args, geometry, y_shape, batched)


class LayerArgs(NamedTuple):
    """conv_transpose's per-dimension arguments, parsed."""

    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    mode: str
    pad_lo: tuple[int, ...]
    pad_hi: tuple[int, ...]
    groups: int
    output_padding: tuple[int, ...] | None  # None: Keras' own choice for "same"/"valid"


def _weight_rank(weight: np.ndarray, channels_last: bool, want: int | None) -> int:
    """The number of spatial dimensions the weight gives (`want`: the one the caller needs)."""
    w_layout = "(*kernel, C_out/groups, C_in)" if channels_last else "(C_in, C_out/groups, *kernel)"
    if weight.ndim < 3:
        raise ShapeError(
            f"weight must have rank >= 3 {w_layout} (rank 3 for 1-D, 4 for 2-D, 5 for 3-D), got "
            f"shape {weight.shape} (rank {weight.ndim}); a dense (in, out) matrix is not a "
            f"convolution kernel: add kernel axes, e.g. weight.reshape(C_in, C_out, 1, 1)"
        )
    rank = weight.ndim - 2
    if want is not None and rank != want:
        raise ShapeError(
            f"conv_transpose{want}d needs a weight of rank {want + 2} {w_layout}, got shape "
            f"{weight.shape} (rank {weight.ndim}); use conv_transpose{rank}d or "
            f"tconv.conv_transpose for a {rank}-D weight"
        )
    return rank


def layer_args(
    rank: int,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
    groups: Any,
    output_size: Any,
) -> LayerArgs:
    stride_t = per_dim(stride, rank, "stride")
    dilation_t = per_dim(dilation, rank, "dilation")
    mode, pad_lo, pad_hi = parse_padding(padding, rank)
    groups_i = as_int(groups, "groups")
    if output_size is not None and output_padding is not None:
        raise ValueError(
            f"pass either output_size or output_padding, not both (got output_size="
            f"{output_size!r} and output_padding={output_padding!r}): output_size chooses the "
            f"output_padding itself, so drop output_padding"
        )
    op = None if output_padding is None else per_dim(output_padding, rank, "output_padding")
    if op is None and mode == "explicit":
        op = (0,) * rank
    return LayerArgs(stride_t, dilation_t, mode, pad_lo, pad_hi, groups_i, op)


def resolve_call(
    xb_shape: tuple,
    weight_shape: tuple,
    batched: bool,
    layer: LayerArgs,
    channels_last: bool,
    output_size: Any,
) -> tuple[Any, Any]:
    """(geometry, empty) of the core for a batched input shape; output_size as PyTorch reads
    it."""
    rank = len(weight_shape) - 2
    args = (
        tuple(xb_shape),
        tuple(weight_shape),
        rank,
        layer.stride,
        layer.dilation,
        layer.pad_lo,
        layer.pad_hi,
    )
    wanted = wanted_sizes(output_size, rank, batched)
    return resolve_layer(
        args,
        layer.output_padding,
        layer.mode,
        layer.groups,
        channels_last,
        None if wanted is None else tuple(wanted),
    )


def wanted_sizes(output_size: Any, rank: int, batched: bool) -> list[int] | None:
    """PyTorch's output_size as the core reads it: spatial sizes (one value for all of them
    allowed) or a full shape, an unbatched one given its batch of 1."""
    if output_size is None:
        return None
    wanted = int_list(output_size, "output_size")
    if len(wanted) == 1 and rank > 1:
        wanted *= rank
    if not batched and len(wanted) == rank + 1:
        wanted = [1] + wanted
    return wanted


def result_shape(geometry: Any, empty: Any, channels_last: bool) -> tuple:
    """The batched output shape of a resolved call (Keras' empty 'same' output included)."""
    if empty is not None:
        return empty_output_shape(geometry, empty, channels_last)
    return tuple(geometry.output_shape())


def run(
    geometry: Any,
    empty: Any,
    x_b: np.ndarray,
    out: np.ndarray | None,
    batched: bool,
    channels_last: bool,
    inputs: tuple,
    compute: Callable[[np.ndarray, np.ndarray], None],
) -> np.ndarray:
    """Allocate the result (or check `out`) and compute(aligned x_b, y) into it; `inputs`
    are the (name, array) pairs `out` must not overlap."""
    dtype = x_b.dtype
    y_shape = result_shape(geometry, empty, channels_last)
    shape = y_shape if batched else y_shape[1:]
    if empty is not None:  # nothing to compute
        return np.empty(shape, dtype=dtype) if out is None else check_out(out, shape, dtype, ())
    if out is None:
        check_memory(shape, dtype, batched, channels_last)
        y = empty_output(y_shape, dtype)
    else:
        y = check_out(out, shape, dtype, inputs)
        if not batched:
            y = y[np.newaxis]
    compute(aligned(x_b), y)
    if out is not None:
        return out
    return y if batched else y[0]


def check_bias(bias: np.ndarray, c_out: int, weight_shape: tuple, groups: int) -> None:
    """ShapeError unless bias has shape (C_out,)."""
    if bias.shape == (c_out,):
        return
    hint = ""
    if bias.size == c_out and bias.ndim != 1:
        hint = "; flatten it with bias.reshape(-1)"
    elif bias.ndim == 0:
        hint = (
            f"; for the same value in every channel pass np.full({c_out}, "
            f"{bias.item()!r}, dtype=x.dtype)"
        )
    raise ShapeError(
        f"bias must have shape ({c_out},), one value per output channel (C_out = {c_out} from "
        f"weight shape {tuple(weight_shape)} and groups={groups}), got shape {bias.shape}{hint}"
    )


def _keras_same_lengths(
    x_shape: tuple,
    w_shape: tuple,
    rank: int,
    stride: tuple,
    dilation: tuple,
    mode: str,
    op: tuple | None,
    channels_last: bool,
) -> tuple | None:
    """Keras' lengths for padding='same' with an explicit output_padding when one is 0 (the
    layer then gives an empty output), else None."""
    if mode != "same" or op is None or len(x_shape) != rank + 2:
        return None
    sp = x_shape[1:-1] if channels_last else x_shape[2:]
    ks = w_shape[:rank] if channels_last else w_shape[2:]
    if len(op) != rank or any(v < 0 or v >= s for v, s in zip(op, stride)):
        return None  # the core reports the bad output_padding
    lengths = tuple(
        _core.keras_length(i, "same", k, s, d, o)
        for i, k, s, d, o in zip(sp, ks, stride, dilation, op)
    )
    return lengths if 0 in lengths else None


def check_out(out: Any, shape: tuple, dtype: np.dtype, inputs: tuple) -> np.ndarray:
    """`out` as given, or an error: it must be exactly what the result would be."""
    if not isinstance(out, np.ndarray):
        raise TypeError(
            f"out must be a numpy array of shape {shape} and dtype {dtype}, got "
            f"{type(out).__name__}; pass np.empty({shape}, dtype=np.{dtype}) or drop out="
        )
    if isinstance(out, np.ma.MaskedArray):
        raise TypeError(
            "out is a masked array; tconv would write its data and leave its mask as it was, "
            "so masked cells would hide results. Pass out.data (a plain view of the same "
            "memory) and reset the mask yourself, or drop out="
        )
    if type(out) is not np.ndarray and not isinstance(out, np.memmap):
        # Subclasses attach meaning to their data (np.matrix, units, masks) that a raw write
        # bypasses; np.memmap is a plain buffer on disk and is welcome.
        raise TypeError(
            f"out must be a plain numpy.ndarray (or np.memmap), got the subclass "
            f"{type(out).__module__}.{type(out).__name__}, whose own semantics a raw write "
            f"would bypass; pass np.asarray(out) to write into its memory, or drop out="
        )
    if out.shape != shape:
        raise ValueError(
            f"out has shape {out.shape}, expected {shape} (the result's shape); pass "
            f"np.empty({shape}, dtype=np.{dtype}) or drop out="
        )
    if out.dtype != dtype:
        native = "" if out.dtype.isnative else " (non-native byte order)"
        raise ValueError(
            f"out has dtype {out.dtype}{native}, expected {dtype} (the dtype of x); out is "
            f"written in place, never converted: pass np.empty({shape}, dtype=np.{dtype})"
        )
    if not out.flags.writeable:
        raise ValueError(
            "out is read-only (writeable=False, e.g. a broadcast view or a read-only buffer); "
            "pass a writeable array"
        )
    if not out.flags.c_contiguous:
        order = "Fortran-ordered" if out.flags.f_contiguous else "non-contiguous (a strided view)"
        raise ValueError(
            f"out must be C-contiguous, got a {order} array; pass np.empty({shape}, "
            f"dtype=np.{dtype}) or drop out="
        )
    # numpy's aligned flag implies the data is (it is vacuous for an empty array)
    fine = out.flags.aligned and out.size and out.dtype.alignment == out.dtype.itemsize
    if not fine and out.ctypes.data % out.dtype.itemsize:
        raise ValueError(
            f"out is not aligned to its item size ({out.dtype.itemsize} bytes, address "
            f"{out.ctypes.data:#x}); pass a freshly allocated array such as np.empty({shape}, "
            f"dtype=np.{dtype})"
        )
    for name, a in inputs:
        if isinstance(a, np.ndarray) and np.may_share_memory(out, a):
            raise ValueError(
                f"out shares memory with {name}; the inputs would be overwritten while they are "
                f"read: pass a separate output array, or drop out= and assign the result"
            )
    return out


def conv_transpose1d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = None,
    dilation: Any = 1,
    groups: int = 1,
    *,
    output_size: Any = None,
    data_format: str = "channels_first",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """1-D :func:`conv_transpose` (checks that the weight has rank 3)."""
    return conv_transpose(
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        output_size=output_size,
        data_format=data_format,
        out=out,
        _rank=1,
    )


def conv_transpose2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = None,
    dilation: Any = 1,
    groups: int = 1,
    *,
    output_size: Any = None,
    data_format: str = "channels_first",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """2-D :func:`conv_transpose` (checks that the weight has rank 4)."""
    return conv_transpose(
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        output_size=output_size,
        data_format=data_format,
        out=out,
        _rank=2,
    )


def conv_transpose3d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = None,
    dilation: Any = 1,
    groups: int = 1,
    *,
    output_size: Any = None,
    data_format: str = "channels_first",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """3-D :func:`conv_transpose` (checks that the weight has rank 5)."""
    return conv_transpose(
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        output_size=output_size,
        data_format=data_format,
        out=out,
        _rank=3,
    )
