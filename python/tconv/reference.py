"""The definition of transposed convolution, written as the naive loops: the oracle of the tests.

``conv_transpose`` here has the signature and semantics of :func:`tconv.conv_transpose` and is
the literal scatter form of the operator, one dimension at a time::

    y[n, g*C_out_g + co, ..., i*stride + k*dilation - crop_lo, ...] += x[n, ci, ..., i, ...]
                                                                      * w[ci, co, ..., k, ...]

in plain Python over float64 numbers; numpy only stores the arrays. ``conv_transpose_gather``
computes the same operator the other way round (each output cell collects the input cells
that reach it), so the two loops are independent derivations of one definition.

Nothing here is shared with the compiled path: argument parsing, the padding rules of PyTorch
and Keras and the ``output_size`` rule are written out again from the frameworks' own
definitions, so that a mistake in one place cannot hide in both. It is slow by design; use it
on small arrays only.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from ._args import check_ordered
from ._errors import ShapeError

__all__ = ["conv_transpose", "conv_transpose_gather"]


class _Layer(NamedTuple):
    """A fully resolved layer: canonical channels_first arrays and per-dimension crops."""

    x: np.ndarray  # (N, C_in, *in) float64
    w: np.ndarray  # (C_in, C_out_g, *k) float64
    bias: np.ndarray | None  # (C_out,) float64
    dtype: np.dtype
    batched: bool
    channels_last: bool
    groups: int
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    crop_lo: tuple[int, ...]  # cells cut from the start of the uncropped result
    out: tuple[int, ...]  # output spatial sizes
    out_array: np.ndarray | None


def _int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got {value!r}")
    check_ordered(value, name)  # a set or dict where one value per dimension belongs
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}") from None


def _ints(value: Any, rank: int, name: str) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an int or {rank} ints, got {value!r}")
    if isinstance(value, (Sequence, np.ndarray)) and np.ndim(value) > 0:
        items = [_int(v, name) for v in value]
        if len(items) == 1:
            items = items * rank
        if len(items) != rank:
            raise ShapeError(f"{name} needs 1 or {rank} values, got {tuple(items)}")
        return tuple(items)
    return (_int(value, name),) * rank


def _padding(padding: Any, rank: int) -> tuple[str, tuple[int, ...], tuple[int, ...]]:
    """("same" | "valid" | "explicit", lo, hi)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("same", "valid"):
            raise ValueError(f"padding must be 'same', 'valid' or numbers, got {padding!r}")
        return mode, (0,) * rank, (0,) * rank
    for p in padding if isinstance(padding, (tuple, list)) else ():
        check_ordered(p, "padding")
    if isinstance(padding, (tuple, list)) and any(isinstance(p, (tuple, list)) for p in padding):
        if len(padding) != rank or not all(
            isinstance(p, (tuple, list)) and len(p) == 2 for p in padding
        ):
            raise ShapeError(f"padding needs {rank} (lo, hi) pairs, got {padding!r}")
        lo = tuple(_int(p[0], "padding") for p in padding)
        hi = tuple(_int(p[1], "padding") for p in padding)
        return "explicit", lo, hi
    p = _ints(padding, rank, "padding")
    return "explicit", p, p


def _floats(value: Any, name: str) -> np.ndarray:
    a = np.asarray(value)
    if not isinstance(value, np.ndarray) and a.dtype.kind in "iu":
        a = a.astype(np.float64)
    if a.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name} must be float32 or float64, got {a.dtype}")
    return a


def _keras_length(i: int, k_eff: int, s: int, mode: str, op: int | None) -> int:
    """Keras 3's output length (keras/src/backend/common/backend_utils.py,
    _get_output_shape_given_tf_padding)."""
    if mode == "valid":
        if op is None:
            op = max(k_eff, s) - k_eff
        return (i - 1) * s + k_eff + op
    if op is None:
        return i * s
    return (i - 1) * s + k_eff % 2 + op


class _Geometry(NamedTuple):
    """Per-dimension sizes of a layer before its output lengths are chosen."""

    mode: str  # "same" | "valid" | "explicit"
    stride: tuple[int, ...]
    dilation: tuple[int, ...]
    pad_lo: tuple[int, ...]
    pad_hi: tuple[int, ...]
    inp: tuple[int, ...]
    kernel: tuple[int, ...]
    k_eff: list[int]  # the dilated kernel spans
    full: list[int]  # uncropped output lengths

    def length(self, dim: int, op_dim: int | None) -> int:
        if self.mode == "explicit":
            return self.full[dim] - self.pad_lo[dim] - self.pad_hi[dim] + (op_dim or 0)
        return _keras_length(self.inp[dim], self.k_eff[dim], self.stride[dim], self.mode, op_dim)


def _resolve(
    x: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
    groups: Any,
    output_size: Any,
    data_format: Any,
    out: Any,
) -> _Layer:
    if data_format not in ("channels_first", "channels_last"):
        raise ValueError(
            f"data_format must be 'channels_first' or 'channels_last', got {data_format!r}"
        )
    channels_last = data_format == "channels_last"
    x, w, dtype, batched = _canonical_arrays(x, weight, channels_last)
    rank = w.ndim - 2
    groups, c_out = _groups(x, w, groups)
    geom = _geometry(stride, dilation, padding, x.shape[2:], w.shape[2:])
    if output_size is not None and output_padding is not None:
        raise ValueError("pass output_size or output_padding, not both")
    op = None if output_padding is None else _ints(output_padding, rank, "output_padding")
    _check_sizes(geom, padding)
    if output_size is not None:
        op = _output_padding_for(output_size, geom, batched, channels_last)
    crop_lo, out_sz = _crops(geom, op)
    b = None
    if bias is not None:
        b = _floats(bias, "bias")
        if b.shape != (c_out,):
            raise ShapeError(f"bias must have shape ({c_out},), got {b.shape}")
        b = b.astype(np.float64)
    n = x.shape[0]
    shape = (n, *out_sz, c_out) if channels_last else (n, c_out, *out_sz)
    if not batched:
        shape = shape[1:]
    if out is not None:
        _check_out(out, shape, dtype)
    return _Layer(
        x,
        w,
        b,
        dtype,
        batched,
        channels_last,
        groups,
        geom.stride,
        geom.dilation,
        tuple(crop_lo),
        tuple(out_sz),
        out,
    )


def _canonical_arrays(
    x: Any, weight: Any, channels_last: bool
) -> tuple[np.ndarray, np.ndarray, np.dtype, bool]:
    """(x as float64 (N, C_in, *in), w as float64 (C_in, C_out_g, *k), dtype, batched)."""
    x = _floats(x, "x")
    weight = _floats(weight, "weight")
    if x.dtype != weight.dtype:
        raise TypeError(f"x is {x.dtype} but weight is {weight.dtype}")
    dtype = x.dtype
    rank = weight.ndim - 2
    if rank < 1:
        raise ShapeError(f"weight must have rank >= 3, got shape {weight.shape}")
    if x.ndim == rank + 1:
        batched = False
        x = x[np.newaxis]
    elif x.ndim == rank + 2:
        batched = True
    else:
        raise ShapeError(f"x must have rank {rank + 1} or {rank + 2}, got shape {x.shape}")
    # Keras stores the kernel as (*k, C_out_g, C_in), so moving its last two axes to the
    # front gives the same tensor.
    if channels_last:
        x = np.moveaxis(x, -1, 1)
        weight = np.moveaxis(weight, (-1, -2), (0, 1))
    return x.astype(np.float64), weight.astype(np.float64), dtype, batched


def _groups(x: np.ndarray, w: np.ndarray, groups: Any) -> tuple[int, int]:
    """(groups, C_out)."""
    groups = _int(groups, "groups")
    c_in = x.shape[1]
    if groups < 1:
        raise ShapeError(f"groups must be >= 1, got {groups}")
    if w.shape[0] != c_in:
        raise ShapeError(f"x has {c_in} channels but weight expects {w.shape[0]}")
    if c_in % groups:
        raise ShapeError(f"{c_in} input channels are not divisible by groups={groups}")
    return groups, w.shape[1] * groups


def _geometry(
    stride: Any, dilation: Any, padding: Any, inp: tuple[int, ...], kernel: tuple[int, ...]
) -> _Geometry:
    rank = len(kernel)
    s = _ints(stride, rank, "stride")
    d = _ints(dilation, rank, "dilation")
    mode, pad_lo, pad_hi = _padding(padding, rank)
    k_eff = [d[dim] * (kernel[dim] - 1) + 1 for dim in range(rank)]
    full = [(inp[dim] - 1) * s[dim] + k_eff[dim] for dim in range(rank)]
    return _Geometry(mode, s, d, pad_lo, pad_hi, inp, kernel, k_eff, full)


def _check_sizes(geom: _Geometry, padding: Any) -> None:
    for dim in range(len(geom.kernel)):
        if geom.stride[dim] < 1 or geom.dilation[dim] < 1:
            raise ShapeError(
                f"stride and dilation must be >= 1, got {geom.stride[dim]} and {geom.dilation[dim]}"
            )
        if geom.kernel[dim] < 1 or geom.inp[dim] < 1:
            raise ShapeError(
                f"kernel and input sizes must be >= 1, got {geom.kernel} and {geom.inp}"
            )
        if geom.pad_lo[dim] < 0 or geom.pad_hi[dim] < 0:
            raise ShapeError(f"padding must be >= 0, got {padding!r}")


def _output_padding_for(
    output_size: Any, geom: _Geometry, batched: bool, channels_last: bool
) -> tuple[int, ...]:
    """PyTorch's _output_padding: the sizes reachable are [min, min + stride - 1], min being
    the size with output_padding 0; a full output shape counts by its spatial part."""
    rank = len(geom.kernel)
    wanted = list(output_size) if isinstance(output_size, (tuple, list)) else [output_size]
    wanted = [_int(v, "output_size") for v in wanted]
    if len(wanted) == 1:
        wanted *= rank
    non_spatial = 2 if batched else 1
    if len(wanted) == rank + non_spatial:
        wanted = wanted[1 : 1 + rank] if channels_last else wanted[non_spatial:]
    if len(wanted) != rank:
        raise ShapeError(f"output_size needs {rank} spatial sizes, got {output_size!r}")
    lowest = [geom.length(dim, 0) for dim in range(rank)]
    s = geom.stride
    if any(not lowest[dim] <= wanted[dim] <= lowest[dim] + s[dim] - 1 for dim in range(rank)):
        raise ShapeError(
            f"output_size {tuple(wanted)} is not reachable: the sizes range from "
            f"{tuple(lowest)} to {tuple(lo + st - 1 for lo, st in zip(lowest, s))}"
        )
    return tuple(wanted[dim] - lowest[dim] for dim in range(rank))


def _crops(geom: _Geometry, op: tuple[int, ...] | None) -> tuple[list[int], list[int]]:
    """(cells cropped at the start, output length) per dimension."""
    crop_lo, out_sz = [], []
    for dim in range(len(geom.kernel)):
        op_dim = None if op is None else op[dim]
        if op_dim is not None:
            # PyTorch allows output_padding < max(stride, dilation); Keras < stride.
            s = geom.stride[dim]
            limit = max(s, geom.dilation[dim]) if geom.mode == "explicit" else s
            if not 0 <= op_dim < limit:
                raise ShapeError(f"output_padding must be in [0, {limit}), got {op_dim}")
        o = geom.length(dim, op_dim)
        if geom.mode == "explicit":
            lo = geom.pad_lo[dim]
        elif geom.mode == "valid":
            lo = 0
        else:
            # TensorFlow runs Keras' 'same' as the gradient of a 'same' convolution whose
            # input is the output o: it pads that input by max((ceil(o/s) - 1)*s + k - o, 0)
            # cells, the smaller half in front (conv_grad_input_ops / GetWindowedOutputSize).
            # Here ceil(o/s) == i, so the front crop is max(full - o, 0) // 2; whatever
            # remains is cut from (or, if negative, appended to) the end.
            lo = max(geom.full[dim] - o, 0) // 2
        # Keras gives 0 cells for 'same' with output_padding=0, an even kernel and one input
        if o < (0 if geom.mode == "same" else 1):
            raise ShapeError(f"the output would have size {o} in spatial dimension {dim}")
        crop_lo.append(lo)
        out_sz.append(o)
    return crop_lo, out_sz


def _check_out(out: Any, shape: tuple, dtype: np.dtype) -> None:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy array, got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(
            f"out must have shape {shape} and dtype {dtype}, got {out.shape} {out.dtype}"
        )
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError("out must be a writeable C-contiguous array")


def _finish(layer: _Layer, y: np.ndarray) -> np.ndarray:
    """Bias, layout, dtype and out= for a float64 (N, C_out, *out) result."""
    if layer.bias is not None:
        y += layer.bias.reshape((1, -1) + (1,) * len(layer.out))
    if layer.channels_last:
        y = np.moveaxis(y, 1, -1)
    if not layer.batched:
        y = y[0]
    if layer.out_array is not None:
        layer.out_array[...] = y
        return layer.out_array
    return np.ascontiguousarray(y, dtype=layer.dtype)


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
) -> np.ndarray:
    """Transposed convolution as the literal scatter loop (see :func:`tconv.conv_transpose`).

    Every input cell adds ``x * w`` to output cell ``i*stride + k*dilation - crop_lo`` for each
    kernel tap ``k``, in float64; the result has the input's dtype.
    """
    layer = _resolve(
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        output_size,
        data_format,
        out,
    )
    xs, ws = layer.x, layer.w
    n, c_in = xs.shape[:2]
    c_out_g = ws.shape[1]
    c_in_g = c_in // layer.groups
    c_out = c_out_g * layer.groups
    rank = len(layer.out)
    y = np.zeros((n, c_out, *layer.out))
    ydata = [0.0] * y.size
    xdata = xs.ravel().tolist()
    wdata = ws.ravel().tolist()
    out_cells = int(np.prod(layer.out))
    in_cells = int(np.prod(xs.shape[2:]))
    taps = int(np.prod(ws.shape[2:]))
    x_pos = list(itertools.product(*(range(v) for v in xs.shape[2:])))
    k_pos = list(itertools.product(*(range(v) for v in ws.shape[2:])))

    def flat(index: tuple[int, ...], sizes: tuple[int, ...]) -> int:
        f = 0
        for v, sz in zip(index, sizes):
            f = f * sz + v
        return f

    for b in range(n):
        for g in range(layer.groups):
            for cig in range(c_in_g):
                ci = g * c_in_g + cig
                for ip, i in enumerate(x_pos):
                    xv = xdata[(b * c_in + ci) * in_cells + ip]
                    for kp, k in enumerate(k_pos):
                        o = tuple(
                            i[dim] * layer.stride[dim]
                            + k[dim] * layer.dilation[dim]
                            - layer.crop_lo[dim]
                            for dim in range(rank)
                        )
                        if not all(0 <= o[dim] < layer.out[dim] for dim in range(rank)):
                            continue
                        op = flat(o, layer.out)
                        for co in range(c_out_g):
                            yi = (b * c_out + g * c_out_g + co) * out_cells + op
                            ydata[yi] += xv * wdata[(ci * c_out_g + co) * taps + kp]
    y = np.array(ydata, dtype=np.float64).reshape(y.shape)
    return _finish(layer, y)


def conv_transpose_gather(
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
    """The same operator as :func:`conv_transpose`, as a gather: output cell ``o`` sums
    ``x[i] * w[k]`` over the taps with ``i = (o + crop_lo - k*dilation) / stride`` an integer
    inside the input."""
    layer = _resolve(
        x,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        output_size,
        data_format,
        out,
    )
    xs, ws = layer.x, layer.w
    n, c_in = xs.shape[:2]
    in_sz = xs.shape[2:]
    k_sz = ws.shape[2:]
    c_out_g = ws.shape[1]
    c_in_g = c_in // layer.groups
    rank = len(layer.out)
    y = np.zeros((n, c_out_g * layer.groups, *layer.out))
    for o in itertools.product(*(range(v) for v in layer.out)):
        # Per dimension, the (input index, tap) pairs that land on o.
        hits = []
        for dim in range(rank):
            pairs = []
            for k in range(k_sz[dim]):
                num = o[dim] + layer.crop_lo[dim] - k * layer.dilation[dim]
                if num % layer.stride[dim] == 0 and 0 <= num // layer.stride[dim] < in_sz[dim]:
                    pairs.append((num // layer.stride[dim], k))
            hits.append(pairs)
        for combo in itertools.product(*hits):
            i = tuple(p[0] for p in combo)
            tap = tuple(p[1] for p in combo)
            for b in range(n):
                for g in range(layer.groups):
                    for co in range(c_out_g):
                        acc = 0.0
                        for cig in range(c_in_g):
                            ci = g * c_in_g + cig
                            acc += float(xs[(b, ci) + i]) * float(ws[(ci, co) + tap])
                        y[(b, g * c_out_g + co) + o] += acc
    return _finish(layer, y)
