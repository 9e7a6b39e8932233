"""Transposed convolution of dask arrays: chunked, out of core, on any dask scheduler.

``tconv.dask.conv_transpose`` takes the arguments of :func:`tconv.conv_transpose` with a
dask array as `x` and returns a dask array with one block per block of `x`. Each output block
is computed by tconv from its input block plus the neighbouring input cells whose kernel
footprint reaches it (the halo); the index arithmetic is in :func:`axis_windows`.

Needs the ``dask`` extra (``pip install "tconv[dask]"``); ``import tconv`` alone never imports
dask.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

try:
    import dask.array as da
    from dask.base import tokenize
    from dask.highlevelgraph import HighLevelGraph
except ImportError as exc:  # pragma: no cover - exercised only without dask
    raise ImportError(
        f'tconv.dask needs dask ({exc}); install the extra: pip install "tconv[dask]" '
        f"(dask[array], distributed and zarr)"
    ) from exc

from . import _core
from ._api import aligned, empty_output, operands, rank_error
from ._api import conv_transpose as _conv_transpose
from ._args import as_int, parse_data_format, parse_padding, per_dim
from ._rules import full_length

__all__ = ["Window", "axis_windows", "conv_transpose"]


class Window(NamedTuple):
    """Where one output block along one spatial axis comes from.

    The block's cells are ``size`` consecutive output cells. They are exactly the result of a
    transposed convolution of input cells ``start:stop`` (same layer) with explicit padding
    ``(crop_lo, crop_hi)``; a negative ``crop_hi`` means ``-crop_hi`` cells past the end of
    that local result (output_padding: they hold the bias only). ``start == stop``: no input
    cell reaches the block (it holds the bias only, or it is empty).
    """

    size: int
    start: int
    stop: int
    crop_lo: int
    crop_hi: int


def axis_windows(
    chunks: Sequence[int], kernel: int, stride: int, dilation: int, pad_lo: int, out_size: int
) -> list[Window]:
    """The output block of each input chunk along one spatial axis, and what it reads.

    Parameters
    ----------
    chunks : sizes of the input chunks along the axis (their sum is the input size L).
    kernel, stride, dilation : the layer along the axis.
    pad_lo : the resolved low-side crop of the whole result (``>= 0``).
    out_size : the resolved output size along the axis (after both crops and output_padding).

    Input cell i, tap t lands on cell ``j = i*stride + t*dilation`` of the uncropped result
    ("full" coordinates), which is output cell ``j - pad_lo``. Output block m starts at
    ``stride * (first input cell of chunk m)`` (clipped to the output), so with equal input
    chunks the output chunks are equal too (what zarr needs), each ``stride`` times larger.

    For output cells ``[a, b)`` (full cells ``[a + pad_lo, b + pad_lo)``) the contributing
    inputs satisfy ``(j - D)/s <= i <= j/s`` with ``D = dilation*(kernel - 1)``, so they lie in
    ``[ceil((a + pad_lo - D)/s), floor((b - 1 + pad_lo)/s) + 1)`` intersected with ``[0, L)``:
    the low-side halo is about D/s cells. ``start`` is lowered to at most ``floor((a +
    pad_lo)/s)`` so that ``crop_lo = a + pad_lo - start*s`` is never negative (the extra cells
    only add contributions that the crop removes). The local uncropped result has
    ``(stop - start - 1)*s + D + 1`` cells and ``crop_hi`` is what is left past the block;
    when negative it is above ``-max(stride, dilation)``: inside the array the block overruns
    the last contributing tap by less than one stride, and at the array's end by at most the
    layer's own output_padding. A block starting past every contribution reads nothing.
    """
    total = sum(chunks)
    reach = dilation * (kernel - 1)
    bounds = [0]
    offset = 0
    for c in chunks[:-1]:
        offset += c
        bounds.append(min(offset * stride, out_size))
    bounds.append(out_size)
    windows = []
    for a, b in itertools.pairwise(bounds):
        j = a + pad_lo  # full coordinate of the block's first cell
        if b == a:
            windows.append(Window(b - a, 0, 0, 0, 0))
            continue
        start = min(max(0, min(-((reach - j) // stride), j // stride)), total - 1)
        stop = min(total, (b - 1 + pad_lo) // stride + 1)
        local_full = full_length(stop - start, kernel, stride, dilation)
        crop_lo = j - start * stride
        if crop_lo >= local_full:
            windows.append(Window(b - a, start, start, 0, 0))
        else:
            windows.append(Window(b - a, start, stop, crop_lo, local_full - crop_lo - (b - a)))
    return windows


def _pieces(chunks: Sequence[int], start: int, stop: int) -> list[tuple[int, int, int]]:
    """(chunk index, lo, hi): the slices of the chunks that make up cells start:stop."""
    out = []
    offset = 0
    for m, c in enumerate(chunks):
        lo, hi = max(start, offset), min(stop, offset + c)
        if lo < hi:
            out.append((m, lo - offset, hi - offset))
        offset += c
    return out


class _Layer:
    """What every block task shares: one graph key, sent once to each worker that needs it."""

    def __init__(
        self, weight: np.ndarray, bias: np.ndarray | None, geometry: Any, num_threads: int
    ) -> None:
        # Copies: later changes to the caller's arrays do not reach a graph built already.
        self.weight = np.array(weight, copy=True)
        self.bias = None if bias is None else np.array(bias, copy=True)
        self.rank = geometry.rank
        self.stride = list(geometry.stride)
        self.dilation = list(geometry.dilation)
        self.groups = geometry.groups
        self.channels_last = geometry.channels_last
        self.out_channels = geometry.out_channels
        self.num_threads = num_threads


def _cut(block: np.ndarray, *, bounds: Sequence[tuple[int, int]]) -> np.ndarray:
    """The part of an input block that a neighbouring output block reads: a copy, so that the
    block itself can be freed once its own task has run."""
    return block[tuple(slice(lo, hi) for lo, hi in bounds)].copy()


def _assemble(nested: Any, ndim: int) -> np.ndarray:
    """One array from the input pieces a task reads, nested one list level per axis."""
    leaves: dict = {}

    def walk(item: Any, index: tuple) -> None:
        if len(index) == ndim:
            leaves[index] = item
        else:
            for i, sub in enumerate(item):
                walk(sub, index + (i,))

    walk(nested, ())
    if len(leaves) == 1:
        return leaves[(0,) * ndim]
    counts = [1 + max(index[ax] for index in leaves) for ax in range(ndim)]
    offsets = []
    for ax in range(ndim):
        sizes = [
            leaves[(0,) * ax + (i,) + (0,) * (ndim - ax - 1)].shape[ax] for i in range(counts[ax])
        ]
        offsets.append(np.concatenate([[0], np.cumsum(sizes)]).tolist())
    first = leaves[(0,) * ndim]
    out = np.empty([o[-1] for o in offsets], dtype=first.dtype)
    for index, piece in leaves.items():
        out[tuple(slice(offsets[ax][i], offsets[ax][i + 1]) for ax, i in enumerate(index))] = piece
    return out


def _block(
    layer: _Layer,
    nested: Any,
    *,
    windows: Sequence[Window],
    shape: tuple[int, ...],
    dtype: np.dtype,
) -> np.ndarray:
    """One output block: tconv on the input block plus its halo, cropped to the block."""
    if any(w.start == w.stop for w in windows) or 0 in shape:
        y = np.empty(shape, dtype=dtype)
        bias = 0 if layer.bias is None else layer.bias
        y[...] = bias if layer.channels_last else np.reshape(bias, (-1,) + (1,) * layer.rank)
        return y
    x = _assemble(nested, len(shape))
    geometry = _core.resolve_geometry(
        x.shape,
        layer.weight.shape,
        layer.rank,
        layer.stride,
        layer.dilation,
        [w.crop_lo for w in windows],
        [max(w.crop_hi, 0) for w in windows],
        [max(-w.crop_hi, 0) for w in windows],
        "explicit",
        layer.groups,
        layer.channels_last,
    )
    y = empty_output(tuple(geometry.output_shape()), x.dtype)
    assert y.shape == shape, (y.shape, shape)
    _core.conv_transpose(
        geometry, aligned(x), aligned(layer.weight), layer.bias, y, num_threads=layer.num_threads
    )
    return y


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
    data_format: str = "channels_first",
    num_threads: int | None = 1,
) -> Any:
    """Transposed convolution of a chunked dask array; the numbers of tconv.conv_transpose.

    Parameters
    ----------
    x : dask.array.Array
        Batched ``(N, C_in, *spatial)`` / ``(N, *spatial, C_in)`` or unbatched, as for
        :func:`tconv.conv_transpose`, chunked along the batch and spatial axes in any way
        (uneven chunks and chunks smaller than the halo are fine). The channel axis must be
        one chunk: every output cell reads all input channels of its group.
    weight, bias, stride, padding, output_padding, dilation, groups, data_format
        As for :func:`tconv.conv_transpose` (numpy weight and bias).
    num_threads : int or None, default 1
        tconv's threads per task. The scheduler's workers are the parallelism, so 1 is right
        for most clusters; None uses tconv's process-wide setting on the worker
        (``tconv.set_num_threads`` / ``TCONV_NUM_THREADS``). Per call: other calls in the
        same process are not affected.

    Returns
    -------
    dask.array.Array
        One block per block of `x`. Along a spatial axis, output block m starts at
        ``stride * (first input cell of block m)``, clipped to the output: equal input chunks
        give equal output chunks ``stride`` times larger (the last one may differ), so the
        result can go to ``to_zarr`` as it is.

    Raises
    ------
    TypeError
        x is not a dask array, or its dtype is not the weight's float32/float64.
    ValueError
        The channel axis is split into several chunks, chunk sizes are unknown, or
        num_threads is not a positive int or None. Every layer error of
        :func:`tconv.conv_transpose` (tconv.ShapeError ...) is raised here, before any task
        runs.
    """
    if not isinstance(x, da.Array):
        raise TypeError(
            f"x must be a dask array, got {type(x).__name__}; wrap it with "
            f"dask.array.from_array(x, chunks=...) or call tconv.conv_transpose for numpy arrays"
        )
    if num_threads is not None:
        num_threads = as_int(num_threads, "num_threads")
        if num_threads < 1:
            raise ValueError(
                f"num_threads must be a positive int or None (tconv's process-wide setting), "
                f"got {num_threads}"
            )
    cl = parse_data_format(data_format)
    if any(np.isnan(c) for cs in x.chunks for c in cs):
        raise ValueError(
            f"x has unknown chunk sizes (chunks {x.chunks}); call x.compute_chunk_sizes() first"
        )
    w_ndim = np.ndim(weight)
    if w_ndim >= 3 and x.ndim == w_ndim - 1:  # unbatched
        return conv_transpose(
            x[np.newaxis],
            weight,
            bias,
            stride,
            padding,
            output_padding,
            dilation,
            groups,
            data_format=data_format,
            num_threads=num_threads,
        )[0]
    if w_ndim >= 3 and x.ndim != w_ndim:
        raise rank_error(x.shape, np.shape(weight), w_ndim - 2, cl)
    weight, bias, geometry = _resolve(
        x, weight, bias, stride, padding, output_padding, dilation, groups, data_format
    )
    if isinstance(geometry, tuple):  # Keras' empty 'same' output: nothing to compute
        return _empty_result(x, geometry, weight.dtype, cl)
    if x.dtype != weight.dtype:  # x in non-native byte order: the same values, native
        x = x.astype(weight.dtype)
    c_axis = x.ndim - 1 if cl else 1
    if len(x.chunks[c_axis]) > 1:
        raise ValueError(
            f"x is split into {len(x.chunks[c_axis])} chunks along its channel axis (axis "
            f"{c_axis}, chunks {x.chunks[c_axis]}); every output cell reads all input channels, "
            f"so they must be in one chunk: rechunk first, e.g. x.rechunk({{{c_axis}: -1}})"
        )
    layer = _Layer(weight, bias, geometry, 0 if num_threads is None else num_threads)
    token = tokenize(
        x.name,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        data_format,
        num_threads,
    )
    return _chunked(x, layer, geometry, c_axis, token)


def _resolve(
    x: Any,
    weight: Any,
    bias: Any,
    stride: Any,
    padding: Any,
    output_padding: Any,
    dilation: Any,
    groups: Any,
    data_format: str,
) -> tuple:
    """(weight, bias, geometry of the whole call), or the in-memory call's error."""
    # The in-memory call on an empty batch of x's shape: every check and message of
    # tconv.conv_transpose, before any task exists, at no cost.
    probe = np.empty((0, *x.shape[1:]), dtype=x.dtype)
    y0 = _conv_transpose(
        probe,
        weight,
        bias,
        stride,
        padding,
        output_padding,
        dilation,
        groups,
        data_format=data_format,
    )
    _, weight, bias = operands(probe, weight, bias)
    if y0.size == 0 and 0 in (y0.shape[1:-1] if parse_data_format(data_format) else y0.shape[2:]):
        return weight, bias, y0.shape[1:]
    rank = weight.ndim - 2
    mode, lo, hi = parse_padding(padding, rank)
    op = None if output_padding is None else list(per_dim(output_padding, rank, "output_padding"))
    if op is None and mode == "explicit":
        op = [0] * rank
    geometry = _core.resolve_geometry(
        x.shape,
        weight.shape,
        rank,
        list(per_dim(stride, rank, "stride")),
        list(per_dim(dilation, rank, "dilation")),
        list(lo),
        list(hi),
        op,
        mode,
        as_int(groups, "groups"),
        parse_data_format(data_format),
    )
    return weight, bias, geometry


def _empty_result(x: Any, tail: tuple, dtype: Any, cl: bool) -> Any:
    """The result of a layer whose output has no cells along a spatial axis (Keras'
    padding='same' with output_padding=0 on a length of 1): zeros of that shape, with one
    block per block of x."""
    shape = (x.shape[0], *tail)
    chunks = [x.chunks[0]] + [(n,) for n in tail]
    c_axis = len(shape) - 1 if cl else 1
    for ax in range(1, len(shape)):
        if ax != c_axis:  # one block per input block; the array holds no element anyway
            k = len(x.chunks[ax])
            chunks[ax] = (shape[ax],) + (0,) * (k - 1)
    return da.zeros(shape, dtype=dtype, chunks=tuple(chunks))


def _chunked(x: Any, layer: _Layer, geometry: Any, c_axis: int, token: str) -> Any:
    """The result's graph: the layer under one key, one task per block of x, and a task per
    halo piece cut from a neighbouring block (so that no task holds on to whole neighbours)."""
    rank, cl = layer.rank, layer.channels_last
    spatial_axes = list(range(1, 1 + rank)) if cl else list(range(2, 2 + rank))
    kernel = layer.weight.shape[:rank] if cl else layer.weight.shape[2:]
    windows = [
        axis_windows(
            x.chunks[ax],
            kernel[d],
            layer.stride[d],
            layer.dilation[d],
            geometry.pad_lo[d],
            geometry.output[d],
        )
        for d, ax in enumerate(spatial_axes)
    ]
    # Per axis: for each output block, the slices of x's blocks it reads.
    reads = [[[(m, 0, c)] for m, c in enumerate(cs)] for cs in x.chunks]
    out_chunks = list(x.chunks)
    out_chunks[c_axis] = (layer.out_channels,)
    for d, ax in enumerate(spatial_axes):
        reads[ax] = [_pieces(x.chunks[ax], w.start, w.stop) for w in windows[d]]
        out_chunks[ax] = tuple(w.size for w in windows[d])

    name = f"conv-transpose-{token}"
    cut_name = f"conv-transpose-halo-{token}"
    layer_key = f"conv-transpose-layer-{token}"
    dsk: dict = {layer_key: layer}

    def leaf(blocks: tuple, bounds: tuple) -> tuple:
        """The key of one input piece: a whole block of x, or a halo cut from one."""
        key = (x.name, *blocks)
        if all(
            (lo, hi) == (0, x.chunks[ax][m]) for ax, (m, (lo, hi)) in enumerate(zip(blocks, bounds))
        ):
            return key
        cut_key = (cut_name, *blocks, *itertools.chain.from_iterable(bounds))
        if cut_key not in dsk:
            dsk[cut_key] = (functools.partial(_cut, bounds=bounds), key)
        return cut_key

    def nest(cuts: list, blocks: tuple = (), bounds: tuple = ()) -> Any:
        if len(blocks) == len(cuts):
            return leaf(blocks, bounds)
        return [nest(cuts, blocks + (m,), bounds + ((lo, hi),)) for m, lo, hi in cuts[len(blocks)]]

    for index in itertools.product(*(range(len(r)) for r in reads)):
        cuts = [reads[ax][i] for ax, i in enumerate(index)]
        block_windows = [windows[d][index[ax]] for d, ax in enumerate(spatial_axes)]
        shape = tuple(out_chunks[ax][i] for ax, i in enumerate(index))
        nested = [] if any(not c for c in cuts) else nest(cuts)  # [] reads nothing: bias only
        # Static arguments in a partial: dask must not mistake them for keys or tasks.
        task = functools.partial(_block, windows=block_windows, shape=shape, dtype=x.dtype)
        dsk[(name,) + tuple(index)] = (task, layer_key, nested)
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    meta = np.empty((0,) * x.ndim, dtype=x.dtype)
    return da.Array(graph, name, tuple(out_chunks), meta=meta)
