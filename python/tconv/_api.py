"""The numpy-facing transposed convolution."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _core
from ._args import as_int, parse_data_format, parse_padding, per_dim
from ._errors import ShapeError

__all__ = [
    "conv_transpose",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _as_float_array(value: Any, name: str) -> np.ndarray:
    """A native-byte-order float32/float64 ndarray, or a TypeError that says what to do."""
    if not isinstance(value, np.ndarray):
        if value is None:
            raise TypeError(f"{name} must be a numpy array, got None")
        try:
            value = np.asarray(value)
        except Exception as exc:  # ragged lists and the like
            raise TypeError(f"{name} could not be converted to a numpy array: {exc}") from None
        if value.dtype.kind in "iub" and value.dtype != np.bool_:
            # A literal list of numbers: compute in float64, as numpy would.
            value = value.astype(np.float64)
    if value.dtype.kind == "V" or value.dtype.fields is not None:
        raise TypeError(f"{name} is a structured array (dtype {value.dtype}); pass a plain "
                        f"float32 or float64 array")
    if value.dtype.kind == "f" and value.dtype.itemsize in (4, 8):
        if not value.dtype.isnative:
            value = value.astype(value.dtype.newbyteorder("="))
        return value
    fix = "x.astype(np.float32)" if name == "x" else f"{name}.astype(x.dtype)"
    raise TypeError(
        f"{name} has dtype {value.dtype}; tconv computes in float32 or float64. "
        f"Convert it first, e.g. {fix}"
    )


def _aligned(a: np.ndarray) -> np.ndarray:
    """The core reads elements directly: copy arrays whose data or strides are misaligned."""
    item = a.dtype.itemsize
    if a.ctypes.data % item or any(s % item for s in a.strides):
        return np.array(a, copy=True)
    return a


def _rank_error(x: np.ndarray, weight: np.ndarray, rank: int, channels_last: bool) -> ShapeError:
    layout = "(N, *spatial, C_in)" if channels_last else "(N, C_in, *spatial)"
    msg = (
        f"x must have rank {rank + 2} {layout} or {rank + 1} (unbatched) for a {rank}-D "
        f"transposed convolution (weight shape {weight.shape}), got x of shape {x.shape}"
    )
    if x.ndim == 2 and rank >= 1:
        c_in = weight.shape[-1] if channels_last else weight.shape[0]
        features = x.shape[1]
        if c_in and features % c_in == 0:
            spatial = features // c_in
            sp = f"{rank} spatial sizes whose product is {spatial}"
            if channels_last:
                target = f"(N, {'*spatial, ' if rank > 1 else ''}{c_in})"
            else:
                target = f"(N, {c_in}, *spatial)"
            msg += (
                f". A flat (N, features) array cannot feed a {rank}-D layer: reshape it to "
                f"{target} with {sp}, e.g. x.reshape({x.shape[0]}, "
                + (
                    f"{', '.join(['1'] * (rank - 1))}{', ' if rank > 1 else ''}{spatial}, {c_in})"
                    if channels_last
                    else f"{c_in}, {', '.join(['1'] * (rank - 1))}{', ' if rank > 1 else ''}{spatial})"
                )
            )
        else:
            msg += (
                f". A flat (N, features) array cannot feed a {rank}-D layer: reshape it so that "
                f"the channel axis has {c_in} entries"
            )
    elif x.ndim == 0:
        msg += ". A scalar is not an image; pass an array with channel and spatial axes"
    return ShapeError(msg)


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
    x : ndarray
        ``(N, C_in, *spatial)`` or unbatched ``(C_in, *spatial)`` with
        ``data_format="channels_first"``; ``(N, *spatial, C_in)`` or ``(*spatial, C_in)`` with
        ``"channels_last"``.
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
        C-contiguous array of the exact result shape and dtype, sharing no memory with the
        inputs, to write the result into.

    Returns
    -------
    ndarray
        C-contiguous, of the input's dtype.

    Raises
    ------
    ShapeError
        For an impossible configuration; the message says how to fix it.
    TypeError
        For dtypes other than float32/float64 or mixed dtypes.
    """
    channels_last = parse_data_format(data_format)
    x = _as_float_array(x, "x")
    weight = _as_float_array(weight, "weight")
    if x.dtype != weight.dtype:
        raise TypeError(
            f"x is {x.dtype} but weight is {weight.dtype}; convert one of them, e.g. "
            f"weight.astype(x.dtype)"
        )
    if weight.ndim < 3:
        raise ShapeError(
            "weight must have rank >= 3: "
            + ("(*kernel, C_out/groups, C_in)" if channels_last else "(C_in, C_out/groups, *kernel)")
            + f", got shape {weight.shape}"
        )
    rank = weight.ndim - 2
    if _rank is not None and rank != _rank:
        layout = ("(*kernel, C_out/groups, C_in)" if channels_last
                  else "(C_in, C_out/groups, *kernel)")
        raise ShapeError(
            f"conv_transpose{_rank}d needs a weight of rank {_rank + 2} {layout}, got shape "
            f"{weight.shape}; use conv_transpose{rank}d or tconv.conv_transpose for a {rank}-D "
            f"weight"
            if rank >= 1
            else f"conv_transpose{_rank}d needs a weight of rank {_rank + 2} {layout}, "
            f"got shape {weight.shape}"
        )
    if x.ndim == rank + 1:
        batched = False
        x_b = x[np.newaxis]
    elif x.ndim == rank + 2:
        batched = True
        x_b = x
    else:
        raise _rank_error(x, weight, rank, channels_last)

    stride_t = per_dim(stride, rank, "stride")
    dilation_t = per_dim(dilation, rank, "dilation")
    mode, pad_lo, pad_hi = parse_padding(padding, rank)
    groups_i = as_int(groups, "groups")
    if output_size is not None and output_padding is not None:
        raise ValueError(
            "pass either output_size or output_padding, not both: output_size chooses the "
            "output_padding itself"
        )
    op = None if output_padding is None else list(per_dim(output_padding, rank, "output_padding"))
    if op is None and mode == "explicit":
        op = [0] * rank
    args = (x_b.shape, weight.shape, rank, list(stride_t), list(dilation_t), list(pad_lo),
            list(pad_hi))
    if output_size is not None:
        wanted = [as_int(v, "output_size") for v in _seq(output_size)]
        if len(wanted) == 1 and rank > 1:
            wanted *= rank
        if not batched and len(wanted) == rank + 1:
            wanted = [x_b.shape[0]] + wanted
        op = list(_core.output_padding_for_size(*args, mode, groups_i, channels_last, wanted))
    geometry = _core.resolve_geometry(*args, op, mode, groups_i, channels_last)

    b = None
    if bias is not None:
        b = _as_float_array(bias, "bias")
        if isinstance(bias, np.ndarray) and b.dtype != x.dtype:
            raise TypeError(f"bias is {b.dtype} but x is {x.dtype}; use bias.astype(x.dtype)")
        b = b.astype(x.dtype, copy=False)
        if b.shape != (geometry.out_channels,):
            raise ShapeError(
                f"bias must have shape ({geometry.out_channels},) (one value per output channel), "
                f"got {b.shape}"
            )
        b = np.ascontiguousarray(b)

    y_shape = tuple(geometry.output_shape())
    result_shape = y_shape if batched else y_shape[1:]
    if out is None:
        y = np.empty(y_shape, dtype=x.dtype)
    else:
        y = _check_out(out, result_shape, x.dtype, (x, weight, bias))
        if not batched:
            y = y[np.newaxis]
    _core.conv_transpose(geometry, _aligned(x_b), _aligned(weight), b, y)
    if out is not None:
        return out
    return y if batched else y[0]


def _seq(value: Any) -> list:
    try:
        return list(value)
    except TypeError:
        return [value]


def _check_out(out: Any, shape: tuple, dtype: np.dtype, inputs: tuple) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, expected {shape}")
    if out.dtype != dtype:
        raise ValueError(f"out has dtype {out.dtype}, expected {dtype} (the dtype of x)")
    if not out.flags.c_contiguous:
        raise ValueError("out must be C-contiguous; pass np.empty(shape, dtype) or drop out=")
    if not out.flags.writeable:
        raise ValueError("out is read-only; pass a writeable array")
    if out.ctypes.data % out.dtype.itemsize:
        raise ValueError("out is not aligned to its item size; pass a freshly allocated array")
    for name, a in zip(("x", "weight", "bias"), inputs):
        if isinstance(a, np.ndarray) and np.may_share_memory(out, a):
            raise ValueError(f"out shares memory with {name}; pass a separate output array")
    return out


def conv_transpose1d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = None, dilation: Any = 1, groups: int = 1, *,
                     output_size: Any = None, data_format: str = "channels_first",
                     out: np.ndarray | None = None) -> np.ndarray:
    """1-D :func:`conv_transpose` (checks that the weight has rank 3)."""
    return conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups,
                          output_size=output_size, data_format=data_format, out=out, _rank=1)


def conv_transpose2d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = None, dilation: Any = 1, groups: int = 1, *,
                     output_size: Any = None, data_format: str = "channels_first",
                     out: np.ndarray | None = None) -> np.ndarray:
    """2-D :func:`conv_transpose` (checks that the weight has rank 4)."""
    return conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups,
                          output_size=output_size, data_format=data_format, out=out, _rank=2)


def conv_transpose3d(x: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                     output_padding: Any = None, dilation: Any = 1, groups: int = 1, *,
                     output_size: Any = None, data_format: str = "channels_first",
                     out: np.ndarray | None = None) -> np.ndarray:
    """3-D :func:`conv_transpose` (checks that the weight has rank 5)."""
    return conv_transpose(x, weight, bias, stride, padding, output_padding, dilation, groups,
                          output_size=output_size, data_format=data_format, out=out, _rank=3)
