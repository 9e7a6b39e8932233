"""Output shapes of transposed convolutions, in each framework's own dialect.

Each function takes the framework's argument names and defaults plus an input shape, and
returns the output shape that framework produces (``None`` dimensions stay ``None``), or raises
:class:`tconv.ShapeError` where the framework raises, with what the framework would say, why,
and the fix. The per-dimension arithmetic is the compiled core's (``cpp/src/conventions.cpp``);
this module adds the dialects: argument names, defaults, the order of the checks, and the words.

Versions reproduced: torch 2.13, Keras 3.15 (``compute_output_shape``; the TensorFlow backend
for run-time refusals), tf.nn of TensorFlow 2.21, onnxruntime 1.32, jax 0.10. The conformance
data in ``tests/conformance/`` is measured on these.

>>> from tconv import shapes
>>> shapes.torch((1, 16, 5, 5), 16, 8, 3, stride=2, padding=1, output_padding=1)
(1, 8, 10, 10)
>>> shapes.keras((None, 5, 5, 16), 8, 3, strides=2, padding="same")
(None, 10, 10, 8)
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

from . import _core
from ._args import as_int, check_ordered, ints_per_dim, ordered_items, trim_full_shape
from ._bounded import complete, divisors, iroot, near_root_divisor
from ._errors import BackendWarning, ShapeError, overflow_as_value_error
from ._rules import output_padding_limit

__all__ = ["jax", "keras", "onnx", "tf_nn", "torch"]

Shape = tuple


# ---- shared helpers -------------------------------------------------------------------------


def _error(kind: str, framework: str, says: str, why: str, fix: str) -> ShapeError:
    err = ShapeError(f"{framework} would raise: {says}\n  why: {why}\n  fix: {fix}")
    err.kind = kind
    err.framework = framework
    err.framework_message = says
    err.fix = fix
    return err


def _shape(value: Any, name: str) -> tuple:
    """A shape tuple whose entries are ints or None."""
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise TypeError(f"{name} must be a tuple of ints (None for unknown sizes), got {value!r}")
    check_ordered(value, name)
    out = []
    for i, v in enumerate(value):
        out.append(None if v is None else as_int(v, f"{name}[{i}]"))
    return tuple(out)


def _tuple(value: Any, n: int, name: str) -> tuple[int, ...] | None:
    """int -> n copies; sequence -> tuple (its length is checked by the caller, in the
    framework's words); None -> None."""
    if value is None:
        return None

    def error(kind: str, whole: Any) -> Exception | None:
        if isinstance(whole, (str, bytes)):
            return TypeError(f"{name} must be an int or a tuple of {n} ints, got {whole!r}")
        return None  # as_int's wording

    return ints_per_dim(value, n, name, repeat_one=False, check_length=False, error=error)


# numpy arrays have at most 64 axes; per-dimension tuples are built for `dims` dimensions.
_MAX_DIMS = 62


def _infer_dims(dims: Any, kernel_size: Any, shape: tuple) -> int:
    """The layer's spatial rank: given, else from a tuple kernel_size, else from the input."""
    if dims is None:
        check_ordered(kernel_size, "kernel_size")
        items = ordered_items(kernel_size, "kernel_size")
        if items:  # an empty kernel_size says nothing: its length check reports it
            return len(items)
        return max(len(shape) - 2, 1)
    return _check_dims(dims)


def _check_dims(dims: Any) -> int:
    """A given `dims` as an int from 1 to _MAX_DIMS, or a TypeError/ValueError saying so."""
    dims = as_int(dims, "dims")
    if not 1 <= dims <= _MAX_DIMS:
        raise ValueError(
            f"dims is the layer's number of spatial dimensions (ConvTranspose2d -> "
            f"2), from 1 to {_MAX_DIMS}; got dims={dims}"
        )
    return dims


def _fmt(shape: Sequence[Any]) -> str:
    items = ", ".join("None" if v is None else str(v) for v in shape)
    return f"({items},)" if len(shape) == 1 else f"({items})"


def _list(shape: Sequence[Any]) -> str:
    return "[" + ", ".join("None" if v is None else str(v) for v in shape) + "]"


def _dim_names(rank: int) -> list[str]:
    if rank == 2:
        return ["height", "width"]
    if rank == 3:
        return ["depth", "height", "width"]
    return [f"dim {d}" for d in range(rank)]


def _warn(message: str) -> None:
    warnings.warn(message, BackendWarning, stacklevel=3)


def _common_divisors(a: int, b: int) -> str:
    """The positive divisors of both a and b, as a list for a message ("e.g." when partial)."""
    g = math.gcd(a, b)
    shown: list[int | str] = list(divisors(g)) if g > 0 else [1]
    if len(shown) > 24:
        shown = shown[:12] + ["..."] + shown[-12:]
    text = "[" + ", ".join(map(str, shown)) + "]"
    return (
        text
        if g == 0 or complete(g)
        else f"e.g. {text} (the divisors of {g} that are quick to find)"
    )


def _reshape_candidates(n: int, rank: int, channels_last: bool = True, limit: int = 4) -> list:
    """Factorisations of n into `rank` spatial sizes and a channel count, squarest first (among
    the divisors of n that are quick to find: n comes from a message and can be huge)."""
    cands = []
    for c in divisors(n):
        s = n // c
        root = iroot(s, rank)
        if root >= 1 and root**rank == s:
            cands.append(((root,) * rank, c))
    if rank == 2:
        # also rectangular ones for sizes with no square factor
        for c in divisors(n):
            s = n // c
            h = near_root_divisor(s, 2)
            if h > 1 and (h, s // h) != (s // h, h):
                cands.append(((h, s // h), c))
    seen, out = set(), []
    # prefer candidates with spatial > 1 and a few channels
    cands.sort(key=lambda t: (t[0][0] == 1, -min(t[0]) if t[1] <= 64 else 10**9, t[1]))
    for sp, c in cands:
        shape = (*sp, c) if channels_last else (c, *sp)
        if shape not in seen:
            seen.add(shape)
            out.append(shape)
        if len(out) >= limit:
            break
    return out


# ---- PyTorch ----------------------------------------------------------------------------------


@overflow_as_value_error
def torch(
    input_shape,
    in_channels,
    out_channels,
    kernel_size,
    stride=1,
    padding=0,
    output_padding=0,
    groups=1,
    dilation=1,
    output_size=None,
    dims=None,
    padding_mode="zeros",
):
    """Output shape of ``torch.nn.ConvTranspose{dims}d(in_channels, out_channels, kernel_size,
    stride, padding, output_padding, groups, dilation=dilation)(x, output_size)``.

    ``input_shape`` is ``(N, C, *spatial)`` or unbatched ``(C, *spatial)``; ``N`` may be None.
    ``dims`` is the layer's spatial rank (ConvTranspose2d -> 2); when None it comes from a tuple
    ``kernel_size``, else from the input (batched).
    """
    shape = _shape(input_shape, "input_shape")
    in_channels = as_int(in_channels, "in_channels")
    out_channels = as_int(out_channels, "out_channels")
    groups = as_int(groups, "groups")
    dims = _infer_dims(dims, kernel_size, shape)
    # nn.ConvTransposeNd.__init__
    _torch_check_groups(in_channels, out_channels, groups)
    _torch_check_padding_mode(padding_mode, padding, dims)
    ks, st, pd, op, dl = _torch_per_dim(
        dims, kernel_size, stride, padding, output_padding, dilation
    )
    # forward(): the rank check comes first
    _torch_check_rank(shape, dims, in_channels)
    batched = len(shape) == dims + 2
    sp = list(shape[-dims:])
    if output_size is not None:
        op = _torch_output_padding_for(output_size, shape, sp, ks, st, pd, dl)
    # F.conv_transpose checks (ATen check_shape_forward, then the kernel's own shape check)
    _torch_check_signs(pd, op, st)
    _torch_check_channels(shape, in_channels, out_channels, groups, ks)
    _torch_check_kernel_dilation(ks, dl)
    batch = shape[0] if batched else 1
    _torch_check_empty_input(shape, batch, in_channels, sp)
    # an empty batch skips the output_padding check: PyTorch returns the empty result
    if batch != 0:
        _torch_check_output_padding(sp, ks, st, pd, op, dl)
    out = [
        None if sp[d] is None else _core.torch_length(sp[d], ks[d], st[d], dl[d], pd[d], op[d])
        for d in range(dims)
    ]
    # PyTorch's oneDNN kernel returns an empty result for a zero-length output; its native
    # kernel raises. Negative lengths raise in both (oneDNN: "could not construct a memory
    # descriptor using a format tag").
    limit = (
        0 if batch == 0 or _torch_uses_onednn(shape, batched, ks, st, dl, op, groups, dims) else 1
    )
    _torch_check_output_length(sp, out, limit, ks, st, pd, op, dl)
    lead = (shape[0], out_channels) if batched else (out_channels,)
    return (*lead, *out)


_TORCH = "PyTorch"


def _torch_check_groups(in_channels: int, out_channels: int, groups: int) -> None:
    if groups <= 0:
        raise _error(
            "groups",
            _TORCH,
            "groups must be a positive integer",
            f"groups={groups}",
            "use groups=1 (or a positive divisor of both channel counts)",
        )
    if in_channels % groups:
        raise _error(
            "groups",
            _TORCH,
            "in_channels must be divisible by groups",
            f"in_channels={in_channels} is not a multiple of groups={groups}",
            f"use groups in {_common_divisors(in_channels, out_channels)}",
        )
    if out_channels % groups:
        raise _error(
            "groups",
            _TORCH,
            "out_channels must be divisible by groups",
            f"out_channels={out_channels} is not a multiple of groups={groups}",
            f"use groups in {_common_divisors(in_channels, out_channels)} or out_channels a "
            f"multiple of {groups}",
        )


def _torch_check_padding_mode(padding_mode: Any, padding: Any, dims: int) -> None:
    layer = f"ConvTranspose{dims}d"
    if padding_mode != "zeros":
        raise _error(
            "padding",
            _TORCH,
            f'Only "zeros" padding mode is supported for {layer}',
            f"padding_mode={padding_mode!r} pads the input of a forward convolution; "
            "a transposed convolution crops its output instead",
            "use padding_mode='zeros' (the default)",
        )
    if isinstance(padding, str):
        # nn.ConvTransposeNd passes the string on as a sequence of characters
        raise _error(
            "padding",
            _TORCH,
            f"TypeError: conv_transpose{dims}d(): argument 'padding' "
            "(position 5) must be tuple of ints, but found element of type str at pos "
            "0",
            f"{layer} has no padding={padding!r} mode "
            "(torch supports 'same'/'valid' only for forward convolutions)",
            "compute the padding with tconv.solve(..., convention='torch'), or use "
            "padding=(kernel_size - 1) // 2 with output_padding=stride - 1 for the "
            "shape of Keras 'same' with odd kernels",
        )


def _torch_per_dim(dims: int, kernel_size, stride, padding, output_padding, dilation) -> list:
    """The five per-dimension arguments as tuples of `dims` ints, in the layer's order."""
    named = {
        "kernel_size": kernel_size,
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
    }
    values: dict[str, Any] = {name: _tuple(v, dims, name) for name, v in named.items()}
    for name, v in values.items():
        if len(v) != dims:
            raise _error(
                "argument",
                _TORCH,
                f"{name} must have {dims} elements",
                f"{name}={v!r} has {len(v)} values for a {dims}-D layer",
                f"pass an int or a tuple of {dims} ints",
            )
    return list(values.values())


def _torch_check_rank(shape: tuple, dims: int, in_channels: int) -> None:
    if len(shape) in (dims + 1, dims + 2):
        return
    says = (
        f"Expected {dims + 1}D (unbatched) or {dims + 2}D (batched) input to "
        f"conv_transpose{dims}d, but got input of size: {_list(shape)}"
    )
    raise _error(
        "rank",
        _TORCH,
        says,
        f"ConvTranspose{dims}d needs (N, C, {'*spatial' if dims > 1 else 'L'}) or (C, ...) "
        f"with {dims} spatial dims; the input has rank {len(shape)}",
        _torch_rank_fix(shape, dims, in_channels),
    )


def _torch_output_padding_for(output_size, shape, sp, ks, st, pd, dl) -> tuple:
    """forward(x, output_size): the output_padding that gives output_size, or the error."""
    dims = len(sp)
    osz = _shape(output_size, "output_size")
    nns = 2 if len(shape) == dims + 2 else 1
    if len(osz) == nns + dims:
        osz = osz[nns:]
    if len(osz) != dims:
        raise _error(
            "output_size",
            _TORCH,
            f"ConvTranspose{dims}D: for {len(shape)}D input, output_size must have "
            f"{dims} or {nns + dims} elements (got {len(osz)})",
            "output_size gives the wanted spatial sizes",
            f"pass output_size with {dims} spatial sizes",
        )
    lo, hi = [], []
    for d in range(dims):
        a, b = (
            (None, None)
            if sp[d] is None
            else _core.torch_output_size_range(sp[d], ks[d], st[d], dl[d], pd[d])
        )
        lo.append(a)
        hi.append(b)
    bad = [d for d in range(dims) if lo[d] is not None and not lo[d] <= osz[d] <= hi[d]]
    if bad:
        says = (
            f"requested an output size of {_fmt(osz)}, but valid sizes range from "
            f"{_list(lo)} to {_list(hi)} (for an input of torch.Size({_list(sp)}))"
        )
        d = bad[0]
        raise _error(
            "output_size",
            _TORCH,
            says,
            f"with kernel {ks[d]}, stride {st[d]}, padding {pd[d]}, dilation {dl[d]} "
            f"an input of {sp[d]} gives {lo[d]} cells, and output_size can add at most "
            f"stride - 1 = {st[d] - 1} more",
            _torch_output_size_fix(sp, osz, lo, ks, st, pd, dl),
        )
    return tuple(osz[d] - lo[d] if lo[d] is not None else 0 for d in range(dims))


def _torch_check_signs(pd, op, st) -> None:
    if any(p < 0 for p in pd):
        raise _error(
            "argument",
            _TORCH,
            "negative padding is not supported",
            f"padding={pd}",
            "use padding >= 0; to enlarge the output use output_padding or a larger "
            "kernel, or pad the result",
        )
    if any(p < 0 for p in op):
        raise _error(
            "argument",
            _TORCH,
            "negative output_padding is not supported",
            f"output_padding={op}",
            "use output_padding >= 0, or more padding to shrink the output",
        )
    if any(s <= 0 for s in st):
        raise _error(
            "argument",
            _TORCH,
            "non-positive stride is not supported",
            f"stride={st}",
            "use stride >= 1",
        )


def _torch_check_channels(shape, in_channels, out_channels, groups, ks) -> None:
    dims = len(ks)
    batched = len(shape) == dims + 2
    c_in = shape[1] if batched else shape[0]
    if in_channels == 0:
        says = (
            f"Given groups={groups}, expected weight to be at least 1 at dimension 0, but "
            f"got weight of size {_list([0, out_channels // groups, *ks])} instead"
        )
        fix = (
            "use in_channels >= 1 (the channel count of the input)"
            if c_in != 0
            else "the input has 0 channels too, and every layer needs at least one: check the "
            "layer that produced it (a computed channel count of 0, e.g. an integer "
            "division)"
        )
        raise _error(
            "channels", _TORCH, says, "a layer with in_channels=0 has an empty weight", fix
        )
    if c_in is not None and c_in != in_channels:
        wshape = [in_channels, out_channels // groups, *ks]
        says = (
            f"Given transposed=1, weight of size {_list(wshape)}, expected "
            f"input{_list([shape[0] if batched else 1, *shape[-dims - 1 :]])} to have "
            f"{in_channels} channels, but got {c_in} channels instead"
        )
        raise _error(
            "channels",
            _TORCH,
            says,
            f"the layer was built with in_channels={in_channels}; the input's channel "
            f"axis (axis {1 if batched else 0}) has {c_in}",
            f"use in_channels={c_in}, or feed an input with {in_channels} channels"
            + (
                "; if the input is channels-last, permute it to (N, C, ...)"
                if shape[-1] == in_channels
                else ""
            ),
        )


def _torch_check_kernel_dilation(ks, dl) -> None:
    dims = len(ks)
    if any(k <= 0 for k in ks):
        raise _error(
            "argument",
            _TORCH,
            "kernel size should be greater than zero, but got " + _pair_words("kernel", ks, dims),
            f"kernel_size={ks}",
            "use kernel_size >= 1",
        )
    if any(d <= 0 for d in dl):
        raise _error(
            "argument",
            _TORCH,
            "dilation should be greater than zero, but got " + _pair_words("dilation", dl, dims),
            f"dilation={dl}",
            "use dilation >= 1",
        )


def _torch_check_empty_input(shape, batch, in_channels, sp) -> None:
    if batch == 0 or 0 not in sp:
        return
    # ATen runs 1-d as 2-d (a unit height) and unbatched inputs with a batch of one
    seen = [1 if batch is None else batch, in_channels, *([1] if len(sp) == 1 else []), *sp]
    raise _error(
        "empty_input",
        _TORCH,
        f"Only zero batch or zero channel inputs are supported, but got input shape: {_list(seen)}",
        f"a spatial size of 0 gives no cells to scatter (input {_fmt(shape)})",
        "check the layer before this one: it produced an empty spatial axis",
    )


def _torch_check_output_padding(sp, ks, st, pd, op, dl) -> None:
    dims = len(sp)
    bad = [d for d in range(dims) if op[d] >= output_padding_limit(st[d], dl[d])]
    if not bad:
        return
    d = bad[0]
    says = (
        "output padding must be smaller than either stride or dilation, but got "
        + _pair_words("output_padding", op, dims)
        + " "
        + _pair_words("stride", st, dims)
        + " "
        + _pair_words("dilation", dl, dims)
    )
    limit = output_padding_limit(st[d], dl[d])
    fix = f"use output_padding <= {limit - 1}"
    if sp[d] is not None:
        want = _core.torch_length(sp[d], ks[d], st[d], dl[d], pd[d], op[d])
        fix += f" in {_dim_names(dims)[d]}; to get {want} cells " + _torch_size_fix(
            sp[d], want, ks[d], st[d], pd[d], dl[d], avoid_op=True
        )
    raise _error(
        "output_padding",
        _TORCH,
        says,
        f"output_padding={op[d]} is not smaller than max(stride={st[d]}, "
        f"dilation={dl[d]}) = {limit}: it only chooses among the {limit} output "
        "sizes that the forward convolution maps to the same input size",
        fix,
    )


def _torch_check_output_length(sp, out, limit, ks, st, pd, op, dl) -> None:
    bad = [d for d in range(len(sp)) if out[d] is not None and out[d] < limit]
    if not bad:
        return
    says = (
        f"Given input size per channel: ({' x '.join(str(v) for v in sp)}). Calculated "
        f"output size per channel: ({' x '.join(str(v) for v in out)}). Output size is "
        "too small"
    )
    d = bad[0]
    full = _core.torch_length(sp[d], ks[d], st[d], dl[d], 0, op[d])
    raise _error(
        "nonpositive_output",
        _TORCH,
        says,
        f"(input - 1) * stride + dilation * (kernel - 1) + 1 + output_padding = "
        f"{full} cells before cropping, and padding={pd[d]} crops 2 * {pd[d]} = "
        f"{2 * pd[d]} of them, leaving {out[d]}",
        f"use padding <= {(full - 1) // 2} in {_dim_names(len(sp))[d]}",
    )


def _torch_uses_onednn(shape, batched, ks, st, dl, op, groups, dims) -> bool:
    """PyTorch's CPU kernel choice for a float32 transposed convolution (ConvParams::use_mkldnn
    in ATen's Convolution.cpp), with more than one thread (its default on multi-core CPUs)."""
    if any(o >= s for o, s in zip(op, st)):  # is_output_padding_big
        return False
    n = (shape[0] if batched else 1) or 1
    c = shape[1] if batched else shape[0]
    sp = [v or 1 for v in shape[-dims:]]
    # 1-D runs as 2-D with a height of 1: kernel (1, k), input (N, C, 1, L).
    kern = [1, *ks] if dims == 1 else list(ks)
    sizes = [n, c or 1, *([1] + sp if dims == 1 else sp)]
    return (
        groups > 1
        or (kern[-1] > 3 and kern[-2] > 3)
        or n > 1
        or sizes[0] * sizes[1] * sizes[2] * sizes[3] > 20480
    )


def _pair_words(name: str, v: Sequence[int], dims: int) -> str:
    if dims == 1:
        return f"{name}: {v[0]}"
    words = ["height", "width"] if dims == 2 else ["depth", "height", "width"]
    if dims > 3:
        words = [str(i) for i in range(dims)]
    sep = ", " if name in ("kernel", "dilation") else " "
    return sep.join(f"{name}_{w}: {x}" for w, x in zip(words, v))


def _torch_rank_fix(shape, dims, in_channels) -> str:
    if len(shape) == 2 and shape[1] is not None and in_channels and shape[1] % in_channels == 0:
        n = shape[1] // in_channels
        cands = [c[:-1] for c in _reshape_candidates(n, dims)]
        cands = [c for c in cands if math.prod(c) == n][:3]
        shown = ", ".join(
            f"x.view({shape[0] if shape[0] is not None else -1}, {in_channels}, "
            f"{', '.join(map(str, c))})"
            for c in cands
        )
        return (
            f"reshape the flat features to (N, {in_channels}, *spatial) with "
            f"prod(spatial) = {shape[1]} / {in_channels} = {n}"
            + (f", e.g. {shown}" if shown else "")
        )
    if len(shape) > dims + 2:
        extra = len(shape) - dims - 2
        higher = (
            f"use ConvTranspose{len(shape) - 2}d for {len(shape) - 2} spatial dims, or "
            if len(shape) - 2 <= 3
            else ""
        )
        return (
            f"{higher}fold the extra {'axis' if extra == 1 else 'axes'} into the batch: "
            f"x.flatten(0, {extra}) (and unflatten the result)"
        )
    return f"give the input shape (N, C, *spatial) with {dims} spatial dims"


def _torch_size_params(inp, want, k, s, p, d):
    """(padding, output_padding) that give `want` cells from `inp` in PyTorch, or None."""
    # The length falls by 2 per padding and grows by 1 per output_padding (< max(s, d)): the
    # paddings that reach `want` form a range; the one closest to the current padding wins.
    m = output_padding_limit(s, d)
    full = _core.torch_length(inp, k, s, d, 0, 0)
    first = max(0, -((want - full) // 2))
    last = min(k * d + s - 1, (full - want + m - 1) // 2)
    if first > last:
        return None
    pad = min(max(p, first), last)
    return pad, want - _core.torch_length(inp, k, s, d, pad, 0)


def _unreachable(want, k, s) -> str:
    return (
        f"{want} cannot be reached with kernel {k} and stride {s}; change the kernel or "
        f"stride (tconv.solve lists every option) or crop the result"
    )


def _torch_size_fix(inp, want, k, s, p, d, avoid_op=False) -> str:
    """Ways to get `want` cells from `inp` in PyTorch: output_padding, padding or output_size."""
    found = _torch_size_params(inp, want, k, s, p, d)
    if found is None:
        return _unreachable(want, k, s)
    return f"use padding={found[0]}, output_padding={found[1]} to get {want}"


def _torch_output_size_fix(sp, osz, lo, ks, st, pd, dl) -> str:
    """output_size out of range: the padding and output_padding of every dimension (the
    output_padding may reach max(stride, dilation) - 1 where output_size stops at stride - 1)."""
    names = _dim_names(len(sp))
    pads, ops, missing = [], [], []
    for d in range(len(sp)):
        found = _torch_size_params(sp[d], osz[d], ks[d], st[d], pd[d], dl[d])
        if found is None:
            missing.append(f"in {names[d]}: " + _unreachable(osz[d], ks[d], st[d]))
        else:
            pads.append(found[0])
            ops.append(found[1])
    if missing:
        return "; ".join(missing)
    one = lambda v: v[0] if len(set(v)) == 1 else tuple(v)  # noqa: E731
    return (
        f"drop output_size and use padding={one(pads)}, output_padding={one(ops)} to get "
        f"{_fmt(tuple(osz))}"
    )


# ---- Keras 3 ----------------------------------------------------------------------------------


@overflow_as_value_error
def keras(
    input_shape,
    filters,
    kernel_size,
    strides=1,
    padding="valid",
    output_padding=None,
    data_format="channels_last",
    dilation_rate=1,
    dims=None,
):
    """Output shape of ``keras.layers.Conv{dims}DTranspose(filters, kernel_size, strides,
    padding, output_padding, data_format, dilation_rate)`` on ``input_shape`` (Keras 3's
    ``compute_output_shape``; None stays None).

    Where Keras reports a shape but its TensorFlow backend refuses to run the layer, the shape
    is returned with a :class:`tconv.BackendWarning` naming the backends that run it.
    """
    shape = _shape(input_shape, "input_shape")
    dims = _infer_dims(dims, kernel_size, shape)
    ks, st, dl = _keras_per_dim(dims, kernel_size, strides, dilation_rate)
    padding = _keras_padding(padding, dims)
    op = _keras_output_padding(output_padding, dims)
    if data_format is None:
        data_format = "channels_last"  # Keras' image_data_format() unless configured otherwise
    _keras_check_data_format(data_format)
    filters = as_int(filters, "filters")
    _keras_check_filters(filters)
    if op is not None:
        _keras_check_output_padding(shape, op, ks, st, dl, padding, data_format)
    _keras_check_stride_dilation(st, dl)
    channels_last = data_format == "channels_last"
    _keras_check_rank(shape, dims, channels_last)
    _keras_check_channels(shape, ks, filters, channels_last)
    sp = _spatial(shape, dims, data_format)
    out, refusals = _keras_lengths(sp, padding, ks, st, dl, op)
    # An empty result never reaches TensorFlow's size check (it returns the empty tensor).
    if refusals and 0 not in out:
        d, o, lo, hi = refusals[0]
        fwd = _core.tf_conv(o, ks[d], st[d], dl[d], padding.upper())[0]
        _warn(
            f"Keras reports {_fmt(_keras_full(shape, out, filters, channels_last))} for this "
            f"Conv{dims}DTranspose, but its TensorFlow backend refuses to run it: "
            f"tf.nn.conv_transpose raises \"Size of out_backprop doesn't match computed: "
            f"actual = {sp[d]}, computed = {fwd}\" because TensorFlow's {padding.upper()} "
            f"forward convolution of {o} cells gives {fwd}, not {sp[d]} (it accepts outputs "
            f"{lo}..{hi} only). The JAX and torch backends run it. For the TensorFlow backend "
            f"use output_padding=None or a size in {lo}..{hi}."
        )
    return _keras_full(shape, out, filters, channels_last)


_KERAS = "Keras"


def _keras_per_dim(dims: int, kernel_size, strides, dilation_rate) -> list:
    """kernel_size, strides and dilation_rate as tuples of `dims` positive ints."""
    named = {"kernel_size": kernel_size, "strides": strides, "dilation_rate": dilation_rate}
    values: dict[str, Any] = {name: _tuple(v, dims, name) for name, v in named.items()}
    for name, v in values.items():
        shown = named[name]
        if len(v) != dims:
            raise _error(
                "argument",
                _KERAS,
                f"The `{name}` argument must be a tuple of {dims} "
                f"integers. Received {name}={v if len(set(v)) > 1 else shown}",
                f"Conv{dims}DTranspose has {dims} spatial dims",
                f"pass an int or {dims} ints",
            )
        bad = sorted({x for x in v if x <= 0})
        if bad:
            raise _error(
                "argument",
                _KERAS,
                f"The `{name}` argument must be a tuple of {dims} "
                f"integers. Received {name}={shown}, including values "
                f"{{{', '.join(map(str, bad))}}} that do not satisfy `value > 0`",
                f"{name} values must be positive",
                f"use {name} >= 1",
            )
    return list(values.values())


def _keras_padding(padding: Any, dims: int) -> str:
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise _error(
            "padding",
            _KERAS,
            "The `padding` argument must be a list/tuple or one of "
            f"{{'valid', 'same'}}. Received: {padding}",
            f"Conv{dims}DTranspose supports 'valid' and 'same' only",
            "use padding='same' or 'valid', and output_padding to pick among the sizes; "
            "for other crops use a Cropping layer after it",
        )
    return padding.lower()


def _keras_output_padding(output_padding: Any, dims: int) -> tuple[int, ...] | None:
    op = _tuple(output_padding, dims, "output_padding")
    if op is None:
        return None
    if len(op) != dims:
        raise _error(
            "argument",
            _KERAS,
            f"The `output_padding` argument must be a tuple of "
            f"{dims} integers. Received output_padding={output_padding}",
            f"Conv{dims}DTranspose has {dims} spatial dims",
            f"pass an int or {dims} ints",
        )
    bad = sorted({x for x in op if x < 0})
    if bad:
        raise _error(
            "argument",
            _KERAS,
            f"The `output_padding` argument must be a tuple of "
            f"{dims} integers. Received output_padding={output_padding}, including "
            f"values {{{', '.join(map(str, bad))}}} that do not satisfy `value >= 0`",
            "output_padding adds cells at the end; it cannot remove any",
            "use output_padding >= 0 (or None for Keras' own choice)",
        )
    return op


def _keras_check_data_format(data_format: Any) -> None:
    if data_format not in ("channels_last", "channels_first"):
        raise _error(
            "argument",
            _KERAS,
            "The `data_format` argument must be one of "
            f"{{'channels_first', 'channels_last'}}. Received: data_format={data_format}",
            "Keras names the layouts channels_last (NHWC) and channels_first (NCHW)",
            "use data_format='channels_last' or 'channels_first'",
        )


def _keras_check_filters(filters: int) -> None:
    if filters <= 0:
        raise _error(
            "argument",
            _KERAS,
            "Invalid value for argument `filters`. Expected a strictly "
            f"positive value. Received filters={filters}.",
            "a layer needs >= 1 filter",
            "use filters >= 1",
        )


def _keras_check_output_padding(shape, op, ks, st, dl, padding, data_format) -> None:
    for i, (o, s) in enumerate(zip(op, st)):
        if o < s:
            continue
        says = (
            "`output_padding` must be strictly less than `strides` for all "
            f"dimensions. At dimension {i}, `output_padding` is {o} but `strides` is "
            f"{s}. Received: output_padding={op}, strides={st}"
        )
        sp_i = _spatial(shape, len(ks), data_format)
        fix = f"use output_padding in [0, {s - 1}] at dimension {i}, or output_padding=None"
        if sp_i is not None and sp_i[i] is not None:
            # one more cell per output_padding
            want = _core.keras_length(sp_i[i], padding, ks[i], s, dl[i], 0) + o
            fix += "; " + _keras_size_fix(sp_i[i], want, ks[i], s, dl[i])
        raise _error(
            "output_padding",
            _KERAS,
            says,
            f"Keras only accepts output_padding < strides ({o} >= {s})",
            fix,
        )


def _keras_check_stride_dilation(st, dl) -> None:
    if any(s > 1 for s in st) and any(d > 1 for d in dl):
        raise _error(
            "argument",
            _KERAS,
            "`strides > 1` not supported in conjunction with "
            f"`dilation_rate > 1`. Received: strides={st} and dilation_rate={dl}",
            "Keras' transposed layers cannot combine upsampling and dilation",
            "use strides=1 with the dilation, or dilation_rate=1 with the stride",
        )


def _keras_check_rank(shape: tuple, dims: int, channels_last: bool) -> None:
    if len(shape) == dims + 2:
        return
    too_few = len(shape) < dims + 2
    if too_few:
        says = (
            f'Input 0 of layer "conv{dims}d_transpose" is incompatible with the layer: '
            f"expected min_ndim={dims + 2}, found ndim={len(shape)}. Full shape "
            f"received: {_fmt(shape)}"
        )
    else:
        says = "IndexError: tuple index out of range"
    axes = "*spatial, channels" if channels_last else "channels, *spatial"
    raise _error(
        "rank",
        _KERAS,
        says,
        f"Conv{dims}DTranspose needs (batch, {axes}) = {dims + 2} axes; the input has "
        f"{len(shape)}"
        + (
            ""
            if too_few
            else f" (Keras 3 only checks min_ndim={dims + 2}, so the "
            "extra axis fails inside compute_output_shape)"
        ),
        _keras_rank_fix(shape, dims, channels_last),
    )


def _keras_check_channels(shape, ks, filters, channels_last) -> None:
    c = shape[-1] if channels_last else shape[1]
    if c is None:
        raise _error(
            "channels",
            _KERAS,
            "Shapes used to initialize variables must be fully-defined "
            "(no `None` dimensions). Received: shape="
            f"{_fmt((*ks, filters, None))} for variable path='conv{len(ks)}d_transpose/kernel'",
            "the kernel's size depends on the number of input channels, which is None",
            "give the channel axis a fixed size, e.g. keras.Input(shape=(h, w, c))",
        )


def _keras_lengths(sp, padding, ks, st, dl, op) -> tuple[list, list]:
    """The output lengths, and the dims whose length TensorFlow's backend refuses."""
    out: list[int | None] = []
    refusals = []
    for d in range(len(sp)):
        if sp[d] is None:
            out.append(None)
            continue
        o = _core.keras_length(sp[d], padding, ks[d], st[d], dl[d], None if op is None else op[d])
        out.append(o)
        lo, hi = _core.tf_transposed_range(sp[d], ks[d], st[d], dl[d], padding.upper())
        if not lo <= o <= hi:
            refusals.append((d, o, lo, hi))
    return out, refusals


def _spatial(shape, dims, data_format):
    if len(shape) != dims + 2:
        return None
    return list(shape[1:-1]) if data_format == "channels_last" else list(shape[2:])


def _keras_full(shape, out, filters, channels_last):
    return (shape[0], *out, filters) if channels_last else (shape[0], filters, *out)


def _keras_rank_fix(shape, dims, channels_last) -> str:
    if len(shape) == 2 and shape[1] is not None:
        n = shape[1]
        cands = _reshape_candidates(n, dims, channels_last)
        letters = ("h", "w") if dims == 2 else ("d", "h", "w")[:dims] if dims == 3 else ("l",)
        if dims == 1:
            letters = ("l",)
        prod = "*".join(letters) + "*c"
        layout = ", ".join(letters) + ", c" if channels_last else "c, " + ", ".join(letters)
        shown = ", ".join(f"keras.layers.Reshape({_fmt(cd)})" for cd in cands)
        return (
            f"put a Reshape in front: keras.layers.Reshape(({layout})) with {prod} = {n}, "
            f"e.g. {shown}"
        )
    if len(shape) == dims + 3:
        higher = f"use Conv{dims + 1}DTranspose, or " if dims < 3 else ""
        return (
            f"the input has one axis too many (e.g. a time axis): {higher}wrap the layer "
            f"in keras.layers.TimeDistributed"
        )
    if len(shape) < dims + 2:
        return f"add the missing axes with keras.layers.Reshape so the input has {dims + 2} axes"
    return f"reshape the input to {dims + 2} axes (batch, spatial..., channels)"


def _keras_size_fix(inp, want, k, s, d) -> str:
    for pad in ("same", "valid"):
        # the length grows by one per output_padding (< strides)
        for opv in (None, want - _core.keras_length(inp, pad, k, s, d, 0)):
            if (opv is None or 0 <= opv < s) and _core.keras_length(inp, pad, k, s, d, opv) == want:
                return f"padding='{pad}', output_padding={opv} gives {want}"
    return (
        f"{want} cells are not reachable with kernel {k}, stride {s}; use a larger kernel "
        f"or a Cropping/ZeroPadding layer after the transposed convolution"
    )


# ---- tf.nn ------------------------------------------------------------------------------------


@overflow_as_value_error
def tf_nn(
    input_shape,
    filters_shape,
    output_shape,
    strides,
    padding="SAME",
    data_format=None,
    dilations=None,
):
    """Output shape of ``tf.nn.conv_transpose(input, filters, output_shape, strides, padding,
    data_format, dilations)`` (and of conv1d/2d/3d_transpose).

    tf.nn takes the output shape as an argument and checks it against the input; the return
    value is that shape, or ShapeError where TensorFlow refuses it. ``filters_shape`` is
    ``(*kernel, out_channels, in_channels)``; ``padding`` is 'SAME', 'VALID' or explicit pairs
    (one per input axis, zero for batch and channels).
    """
    shape = _shape(input_shape, "input_shape")
    fshape = _shape(filters_shape, "filters_shape")
    oshape = _shape(output_shape, "output_shape")
    _tf_check_input_rank(shape, fshape)
    n = len(shape) - 2
    fmt = data_format or ("NWC" if n == 1 else "NHWC" if n == 2 else "NDHWC")
    channels_last = fmt.upper().endswith("C")
    _tf_check_output_rank(shape, fshape, oshape, channels_last)
    st = _tf_list(strides, n, channels_last, "strides")
    dl = _tf_list(1 if dilations is None else dilations, n, channels_last, "dilations")
    mode, pads = _tf_padding(padding, n, channels_last)
    cax = -1 if channels_last else 1
    sp_in = list(shape[1:-1]) if channels_last else list(shape[2:])
    sp_out = list(oshape[1:-1]) if channels_last else list(oshape[2:])
    ks = list(fshape[:n])
    if any(s < 1 for s in st):
        raise _error(
            "argument", _TF, "strides must be positive", f"strides={st}", "use strides >= 1"
        )
    # The oneDNN build returns an empty result before any check; the plain CPU and GPU kernels
    # check first. Only dilated layers, which the plain CPU kernels refuse anyway, take the
    # oneDNN answer.
    empty = (0 in sp_out or oshape[0] == 0) and any(d > 1 for d in dl)
    if empty:
        _warn(
            "tf.nn returns this empty result with oneDNN on without checking it; the plain CPU "
            'kernels refuse dilation > 1 ("Current CPU implementations do not yet support '
            'dilation rates larger than 1."). ' + _ONEDNN_DEFAULT
        )
        return tuple(oshape)
    groups = _tf_groups(shape, fshape, oshape, cax, ks)
    _tf_check_sizes(sp_in, sp_out, ks, st, dl, mode, pads, channels_last)
    if groups > 1:
        _tf_check_group_split(fshape, oshape, cax, groups, ks)
        _warn(
            f"tf.nn reads this as a grouped transposed convolution ({groups} groups); "
            "TensorFlow's CPU kernels without oneDNN refuse it (\"Gradients for grouped "
            'convolutions are not supported on CPU."); oneDNN and GPUs run it. ' + _ONEDNN_DEFAULT
        )
    if any(d > 1 for d in dl):
        _warn(
            "TensorFlow's CPU kernels refuse dilation > 1 when oneDNN is off "
            '("Current CPU implementations do not yet support dilation rates larger than '
            '1."); oneDNN and GPUs run it. ' + _ONEDNN_DEFAULT
        )
    if not channels_last:
        _warn(
            f"TensorFlow's CPU kernels refuse data_format='{fmt}' when oneDNN is off "
            '("Conv2DCustomBackpropInputOp only supports NHWC."); oneDNN and GPUs run it. '
            + _ONEDNN_DEFAULT
        )
    return tuple(oshape)


_TF = "TensorFlow"
# The CPUs on which TensorFlow turns oneDNN on by default (its DefaultOneDnnPolicy, Linux).
_ONEDNN_CPUS = "AVX-512 VNNI or BF16, AVX-VNNI or AMX"
_ONEDNN_DEFAULT = (
    f"On Linux TensorFlow turns oneDNN on by default only on CPUs with {_ONEDNN_CPUS}; "
    "elsewhere set TF_ENABLE_ONEDNN_OPTS=1 before importing TensorFlow "
    "(TF_ENABLE_ONEDNN_OPTS=0 turns it off)."
)


def _tf_check_input_rank(shape: tuple, fshape: tuple) -> None:
    n = len(shape) - 2
    if n < 1 or n > 3:
        raise _error(
            "rank",
            _TF,
            f"input must be 3-5 dimensional, got: {len(shape)}",
            "tf.nn.conv_transpose takes (batch, *spatial, channels) with 1-3 spatial dims",
            f"reshape the input to rank {len(fshape)} to match filters {_fmt(fshape)}",
        )
    if len(fshape) != len(shape):
        raise _error(
            "rank",
            _TF,
            f"filter must be {len(shape)}-dimensional: {_fmt(fshape)}",
            f"the filters are (*kernel, out_channels, in_channels) with one kernel size "
            f"per spatial dim: {n} for an input of rank {len(shape)}",
            f"reshape the input to rank {len(fshape)} or use {len(shape) - 2}-D filters",
        )


def _tf_check_output_rank(shape, fshape, oshape, channels_last) -> None:
    n = len(shape) - 2
    if len(oshape) not in (3, 4, 5):
        raise _error(
            "rank",
            _TF,
            f"`output_shape` must be of length 3, 4 or 5. Received: "
            f"output_shape={_list(oshape)} of length {len(oshape)}.",
            "tf.nn.conv_transpose takes the full output shape (batch, *spatial, "
            "channels), not the spatial sizes alone",
            f"pass output_shape with {n + 2} values"
            + (
                f", e.g. {_list([shape[0], *oshape, fshape[-2]])}"
                if len(oshape) == n and channels_last
                else ""
            ),
        )
    if len(oshape) != n + 2:
        raise _error(
            "rank",
            _TF,
            f"input_sizes must be {n + 2}-dimensional, got: {len(oshape)}",
            f"output_shape gives the full output shape (batch, *spatial, channels) "
            f"or its {n} spatial sizes",
            f"pass output_shape with {n + 2} values",
        )


def _tf_padding(padding: Any, n: int, channels_last: bool) -> tuple[str, list]:
    """(mode, one (before, after) pair per spatial dim) from tf.nn's padding argument."""
    if isinstance(padding, str):
        return _tf_padding_string(padding, n), [(0, 0)] * n
    if n != 2 or not isinstance(padding, (list, tuple)):
        raise _error(
            "padding",
            _TF,
            f"Expected string for argument 'padding' not {padding!r}.",
            "explicit padding pairs exist for conv2d_transpose only; the "
            f"{n}-D transposed convolution takes 'SAME' or 'VALID'"
            if n != 2
            else "padding is 'SAME', 'VALID' or a list of (before, after) pairs, one per axis",
            "use 'VALID' with output_shape's spatial sizes + lo + hi and crop "
            "the result (y[:, lo:lo + size, ...] per spatial axis), or 'SAME' if "
            "it gives the size you want"
            if n != 2
            else "use padding=[[0, 0], [top, bottom], [left, right], [0, 0]] (NHWC)",
        )
    pairs = _tf_pairs(padding)
    spatial = pairs[1:-1] if channels_last else pairs[2:]
    others = [pairs[0], pairs[-1]] if channels_last else pairs[:2]
    if any(p != (0, 0) for p in others):
        raise _error(
            "padding",
            _TF,
            "Nonzero explicit padding in the batch or depth dimensions is not supported",
            "only the spatial axes can be padded",
            "use (0, 0) for the batch and channel axes",
        )
    if any(v < 0 for p in spatial for v in p):
        raise _error(
            "padding",
            _TF,
            "All elements of explicit_paddings must be nonnegative",
            "tf.nn crops nothing: a pair is the padding of the forward convolution",
            "use pairs >= 0",
        )
    return "EXPLICIT", spatial


def _tf_padding_string(padding: str, n: int) -> str:
    if padding == "EXPLICIT" and n == 2:
        raise _error(
            "padding",
            _TF,
            "'EXPLICIT' is not a valid value for `padding`. To use explicit padding, "
            "`padding` must be a list.",
            "explicit padding is given as the pairs themselves",
            "use padding=[[0, 0], [top, bottom], [left, right], [0, 0]] (NHWC)",
        )
    if padding not in ("SAME", "VALID"):
        allowed = '"SAME", "VALID", "EXPLICIT"' if n < 3 else '"SAME", "VALID"'
        raise _error(
            "padding",
            _TF,
            f"Value for attr 'padding' of \"{padding}\" is not in "
            f"the list of allowed values: {allowed}",
            "tf.nn's padding strings are upper case (unlike Keras' 'same'/'valid')",
            f"use padding={padding.upper()!r}"
            if padding.upper() in ("SAME", "VALID")
            else "use padding='SAME' or 'VALID'",
        )
    return padding


def _tf_pairs(padding: Sequence[Any]) -> list[tuple[int, int]]:
    """The four (before, after) pairs of an explicit padding list, checked as tf.nn does."""
    pairs = []
    for i, p in enumerate(padding):
        check_ordered(p, "padding")
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            got = f"of size {len(p)}" if isinstance(p, (list, tuple)) else f"of type {type(p)}"
            raise _error(
                "padding",
                _TF,
                "When `padding` is a list, each element of `padding` must be a list/tuple of "
                f"size 2. Received: padding={padding!r} with element at index {i} {got}",
                "explicit padding is one (before, after) pair per axis of the input",
                "use padding=[[0, 0], [top, bottom], [left, right], [0, 0]] (NHWC)",
            )
        pairs.append((as_int(p[0], "padding"), as_int(p[1], "padding")))
    if len(pairs) != 4:
        raise _error(
            "padding",
            _TF,
            f"When padding is a list, it must be of size 4. Received: padding={padding!r} of "
            f"size {len(pairs)}",
            "explicit padding is one (before, after) pair per axis of the 4-D input, batch "
            "and channels included",
            "use padding=[[0, 0], [top, bottom], [left, right], [0, 0]] (NHWC)",
        )
    return pairs


def _tf_groups(shape, fshape, oshape, cax, ks) -> int:
    """The batch and channel checks; the group count tf.nn reads from the channel counts."""
    if shape[0] is not None and oshape[0] is not None and shape[0] != oshape[0]:
        raise _error(
            "batch",
            _TF,
            "Conv2DCustomBackpropInput: input and out_backprop must have the "
            f"same batch size. Input batch: {oshape[0]}, outbackprop batch: {shape[0]}, "
            "batch_dim: 0",
            "output_shape[0] is the batch size of the result",
            f"use output_shape[0] = {shape[0]} (or tf.shape(x)[0])",
        )
    if shape[cax] is not None and fshape[-1] is not None and shape[cax] != fshape[-1]:
        raise _error(
            "channels",
            _TF,
            "Conv2DCustomBackpropInput: filter and out_backprop must have the same out_depth",
            f"the input has {shape[cax]} channels but filters {_fmt(fshape)} expect "
            f"{fshape[-1]} (filters are (*kernel, out_channels, in_channels))",
            f"use filters of shape {_fmt((*ks, fshape[-2], shape[cax]))}",
        )
    # tf.nn reads a filter depth smaller than the output depth as a grouped convolution.
    if oshape[cax] is None or fshape[-2] is None:
        return 1
    if fshape[-2] < 1 or oshape[cax] % fshape[-2]:
        raise _error(
            "channels",
            _TF,
            "Conv2DCustomBackpropInput: input depth must be evenly divisible by filter depth",
            f"output_shape asks for {oshape[cax]} channels but filters "
            f"{_fmt(fshape)} produce {fshape[-2]}",
            f"use output_shape with {fshape[-2]} channels",
        )
    return oshape[cax] // fshape[-2]


def _tf_check_sizes(sp_in, sp_out, ks, st, dl, mode, pads, channels_last) -> None:
    """Each requested output size must convolve back to the input's size."""
    n = len(sp_in)
    for d in range(n):
        if sp_in[d] is None or sp_out[d] is None:
            continue
        lo, hi = _core.tf_transposed_range(sp_in[d], ks[d], st[d], dl[d], mode, *pads[d])
        if lo <= sp_out[d] <= hi:
            continue
        fwd = _core.tf_conv(sp_out[d], ks[d], st[d], dl[d], mode, *pads[d])[0]
        op_name = "Conv2DCustomBackpropInput" if n < 3 else "Conv3DBackpropInputOp"
        says = (
            f"{op_name}: Size of out_backprop doesn't match computed: actual = "
            f"{sp_in[d]}, computed = {fwd} spatial_dim: {d + (1 if channels_last else 2)}"
            f" input: {sp_out[d]} filter: {ks[d]} output: {sp_in[d]} stride: {st[d]} "
            f"dilation: {dl[d]}"
        )
        mode_words = mode if mode != "EXPLICIT" else f"explicit padding {pads[d]}"
        raise _error(
            "output_size",
            _TF,
            says,
            f"TensorFlow runs the forward convolution ({mode_words}) on the "
            f"requested output: {sp_out[d]} cells give {fwd}, not the input's "
            f"{sp_in[d]} in {_dim_names(n)[d] if n > 1 else 'the spatial dim'}",
            f"use an output size in {lo}..{hi} for an input of {sp_in[d]} (e.g. "
            f"{lo if lo != sp_out[d] else hi})",
        )


def _tf_check_group_split(fshape, oshape, cax, groups, ks) -> None:
    if fshape[-1] is not None and fshape[-1] % groups:
        raise _error(
            "channels",
            _TF,
            f"output depth must be evenly divisible by number of groups: {fshape[-1]} vs {groups}",
            f"output_shape's {oshape[cax]} channels over filter depth "
            f"{fshape[-2]} make a grouped convolution with {groups} groups, and "
            f"the input's {fshape[-1]} channels do not split into {groups} groups",
            f"use filters of shape {_fmt((*ks, oshape[cax], fshape[-1]))} for an "
            "ordinary transposed convolution",
        )


def _tf_list(value, n, channels_last, name):
    """tf.nn's strides/dilations: an int, 1, n or n + 2 values (the batch and channel entries
    must be 1)."""
    items = ints_per_dim(value, n, name, repeat_one=False, check_length=False)
    if len(items) == 1:
        return list(items) * n
    spatial, outer = trim_full_shape(list(items), n, channels_last)
    if outer and outer != [1, 1]:
        raise _error(
            "argument",
            _TF,
            "Current implementation does not yet "
            f"support {name} in the batch and depth dimensions.",
            f"{name}={list(items)} moves along the batch or channel axis",
            f"use 1 for the batch and channel entries of {name}",
        )
    if len(spatial) == n:
        return spatial
    raise _error(
        "argument",
        _TF,
        f"{name} should be of length 1, {n} or {n + 2} but was {len(items)}",
        f"{name}={list(items)}",
        f"pass {n} values",
    )


# ---- ONNX -------------------------------------------------------------------------------------


@overflow_as_value_error
def onnx(
    input_shape,
    weight_shape,
    strides=None,
    pads=None,
    dilations=None,
    output_padding=None,
    output_shape=None,
    auto_pad="NOTSET",
    group=1,
    kernel_shape=None,
):
    """Output shape of an ONNX ConvTranspose node as onnxruntime runs it.

    ``input_shape`` is ``(N, C, *spatial)``, ``weight_shape`` ``(C, M/group, *kernel)``;
    attributes as in the ONNX operator (``pads`` = begins then ends; ``kernel_shape``, when
    given, must equal W's spatial dims; ``output_shape`` holds the spatial sizes only). With
    auto_pad SAME_* and no output_shape the result is input * stride whatever output_padding
    says (onnxruntime; ONNX shape inference adds output_padding). The model's input is taken
    to have this declared shape, so ONNX shape inference runs as onnxruntime loads it.
    """
    shape = _shape(input_shape, "input_shape")
    wshape = _shape(weight_shape, "weight_shape")
    _onnx_check_ranks(shape, wshape)
    n = len(shape) - 2
    if kernel_shape is not None:
        _onnx_check_kernel_shape(kernel_shape, wshape)
    st = _tuple(1 if strides is None else strides, n, "strides")
    dl = _tuple(1 if dilations is None else dilations, n, "dilations")
    op = _tuple(0 if output_padding is None else output_padding, n, "output_padding")
    pd = _tuple(0 if pads is None else pads, 2 * n, "pads")
    group = as_int(group, "group")
    auto_pad = _onnx_auto_pad(auto_pad)
    _onnx_check_lengths(n, strides=st, dilations=dl, output_padding=op, pads=pd)
    _onnx_check_channels(shape, wshape, group)
    _onnx_check_output_padding(st, dl, op)
    sp = list(shape[2:])
    osz = None if output_shape is None else _onnx_output_shape(output_shape, n)
    out, resolved = [], []
    for d in range(n):
        if sp[d] is None:
            out.append(None if osz is None else osz[d])
            resolved.append(None)
            continue
        r = _core.onnx_resolve(
            sp[d],
            wshape[2 + d],
            st[d],
            dl[d],
            op[d],
            auto_pad,
            pd[d],
            pd[d + n],
            None if osz is None else osz[d],
        )
        out.append(r[0])
        resolved.append(r)
    _onnx_check_round_trip(sp, wshape, st, dl, op, osz, resolved)
    _onnx_check_positive(sp, wshape, st, dl, op, pd, out)
    m = None if wshape[1] is None else wshape[1] * group
    return (shape[0], m, *out)


_ONNX = "onnxruntime"


def _onnx_check_ranks(shape: tuple, wshape: tuple) -> None:
    if len(shape) != len(wshape):
        says = (
            f"X num_dims does not match W num_dims. X: {{{','.join(map(str, shape))}}} "
            f"W: {{{','.join(map(str, wshape))}}}"
        )
        raise _error(
            "rank",
            _ONNX,
            says,
            f"X is (N, C, *spatial) and W (C, M/group, *kernel): both need one axis "
            f"per spatial dim, X has {len(shape) - 2} and W {len(wshape) - 2}",
            f"reshape X to rank {len(wshape)} (N, C, {', '.join(['...'] * (len(wshape) - 2))})",
        )
    if len(shape) < 3:
        raise _error(
            "rank",
            _ONNX,
            "Input X must have at least 3 dimensions",
            "ConvTranspose needs (N, C, *spatial)",
            "add the spatial axes",
        )


def _onnx_check_kernel_shape(kernel_shape: Any, wshape: tuple) -> None:
    n = len(wshape) - 2
    ks = _shape(kernel_shape, "kernel_shape")
    if len(ks) != n:
        raise _error(
            "argument",
            _ONNX,
            "[ShapeInferenceError] Attribute kernel_shape has incorrect size",
            f"kernel_shape has {len(ks)} values; W {_fmt(wshape)} has {n} spatial dims",
            f"use kernel_shape={list(wshape[2:])} (or leave it out: onnxruntime reads it from W)",
        )
    if tuple(ks) != tuple(wshape[2:]):
        says = (
            "kernel_shape is not compatible with W shape. kernel_shape: "
            f"{{{','.join(map(str, ks))}}} W: {{{','.join(map(str, wshape))}}} "
            "channels_last: 0"
        )
        raise _error(
            "argument",
            _ONNX,
            says,
            f"W {_fmt(wshape)} is (C, M/group, *kernel): its kernel is {_fmt(wshape[2:])}",
            f"use kernel_shape={list(wshape[2:])} (or leave it out)",
        )


def _onnx_auto_pad(auto_pad: Any) -> str:
    auto_pad = str(auto_pad).upper()
    if auto_pad not in ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"):
        raise _error(
            "padding",
            _ONNX,
            f"Unknown AutoPadType String: {auto_pad}",
            "auto_pad is NOTSET, SAME_UPPER, SAME_LOWER or VALID",
            "use auto_pad='NOTSET' with explicit pads",
        )
    return auto_pad


def _onnx_check_lengths(n: int, **values: Any) -> None:
    """Each attribute has one value per spatial dim; pads two (all begins, then all ends)."""
    for name, v in values.items():
        ln = 2 * n if name == "pads" else n
        if len(v) != ln:
            raise _error(
                "argument",
                _ONNX,
                f"{name} has {len(v)} values, expected {ln}",
                f"{name} needs {ln} values for {n} spatial dims",
                f"pass {ln} values",
            )


def _onnx_check_channels(shape: tuple, wshape: tuple, group: int) -> None:
    c = shape[1]
    if c is not None and wshape[0] != c:
        says = (
            "filter number not equal to input channel number. filter_number: "
            f"{wshape[0]} num_input_channels: {c}"
        )
        raise _error(
            "channels",
            _ONNX,
            says,
            f"W is (C, M/group, *kernel): its first axis ({wshape[0]}) must equal X's "
            f"channels ({c})",
            f"use a weight of shape {_fmt((c, *wshape[1:]))}"
            + (
                " (a PyTorch-layout weight (C_in, C_out/g, *k) is already right; a "
                "forward-conv weight (C_out, C_in, *k) must be transposed)"
                if wshape[1] == c
                else ""
            ),
        )
    if c is not None and group > 0 and c % group:
        says = f"Input channels is not divisible by group. num_input_channels: {c} group: {group}"
        raise _error(
            "groups",
            _ONNX,
            says,
            f"{c} channels cannot be split into {group} groups",
            f"use group in {_common_divisors(c, c)}",
        )


def _onnx_check_output_padding(st, dl, op) -> None:
    for d in range(len(st)):
        lim = output_padding_limit(st[d], dl[d])
        if op[d] >= lim:
            says = (
                f"output_padding[{d}] ({op[d]}) must be less than max(stride, dilation) "
                f"({lim}) for spatial dimension {d}."
            )
            raise _error(
                "output_padding",
                _ONNX,
                says,
                f"output_padding only chooses among the {lim} sizes the forward "
                "convolution maps to the same input",
                f"use output_padding[{d}] <= {lim - 1}, or output_shape for the exact size",
            )


def _onnx_output_shape(output_shape: Any, n: int) -> tuple:
    osz = _shape(output_shape, "output_shape")
    if len(osz) == n + 2:
        raise _error(
            "output_size",
            _ONNX,
            "[ShapeInferenceError] Attribute output_shape has incorrect size",
            f"output_shape {_list(osz)} is the full shape; the "
            f"attribute holds the {n} spatial sizes",
            f"use output_shape={_list(osz[2:])}",
        )
    if len(osz) != n:
        raise _error(
            "output_size",
            _ONNX,
            f"output_shape has {len(osz)} values, expected {n}",
            "output_shape gives the spatial output sizes",
            f"pass {n} values",
        )
    return osz


def _onnx_check_round_trip(sp, wshape, st, dl, op, osz, resolved) -> None:
    for d in range(len(sp)):
        if resolved[d] is None:
            continue
        # onnxruntime checks that the forward convolution of the output (with the crop it
        # resolved) gives the input back, before it looks at the output's sign.
        o, lo_, hi_ = resolved[d][0], resolved[d][1], resolved[d][2]
        expected = _core.conv_length(o, wshape[2 + d], st[d], dl[d], lo_, hi_)
        if expected == sp[d]:
            continue
        if osz is not None:
            lo, hi = _core.onnx_output_shape_range(sp[d], wshape[2 + d], st[d], dl[d])
            says = (
                "Explicit output_shape is inconsistent with input spatial dimensions and "
                f"convolution parameters. Expected input size {expected} but got "
                f"{sp[d]} (output_size={osz[d]}, kernel={wshape[2 + d]}, stride={st[d]}, "
                f"dilation={dl[d]}, output_padding={op[d]})."
            )
            fix = (
                f"use output_shape[{d}] in {lo}..{hi}"
                if op[d] < st[d]
                else f"use output_padding[{d}] <= {st[d] - 1} (output_shape picks the size)"
            )
            raise _error(
                "output_size",
                _ONNX,
                says,
                f"an output of {osz[d]} cells comes from {expected} input cells, not {sp[d]}",
                fix,
            )
        says = (
            "Computed output shape is inconsistent with input spatial dimensions. "
            f"output_padding ({op[d]}) may be too large for stride ({st[d]}). "
            f"Expected input size {expected} but got {sp[d]}."
        )
        raise _error(
            "output_padding",
            _ONNX,
            says,
            f"with output_padding {op[d]} >= stride {st[d]} the output is as long as "
            f"the output of an input of {expected} cells",
            f"use output_padding[{d}] <= {st[d] - 1}",
        )


def _onnx_check_positive(sp, wshape, st, dl, op, pd, out) -> None:
    n = len(sp)
    bad = [d for d in range(n) if out[d] is not None and out[d] <= 0]
    if not bad:
        return
    d = bad[0]
    says = (
        f"Computed output dimension is <= 0 for dim {d}. Input shape: "
        f"{{{','.join(str(v) for v in sp)}}}"
    )
    full = _core.transposed_length(sp[d], wshape[2 + d], st[d], dl[d], 0, 0, op[d])
    raise _error(
        "nonpositive_output",
        _ONNX,
        says,
        f"the uncropped output has {full} cells and pads crop "
        f"{pd[d]} + {pd[d + n]} of them, leaving {out[d]}",
        f"use pads with pads[{d}] + pads[{d + n}] < {full}",
    )


# ---- JAX --------------------------------------------------------------------------------------

_JAX_DEFAULT_DN = {
    2: ("NC", "IO", "NC"),
    3: ("NHC", "HIO", "NHC"),
    4: ("NHWC", "HWIO", "NHWC"),
    5: ("NHWDC", "HWDIO", "NHWDC"),
}


@overflow_as_value_error
def jax(
    lhs_shape,
    rhs_shape,
    strides,
    padding,
    rhs_dilation=None,
    dimension_numbers=None,
    transpose_kernel=False,
    use_consistent_padding=False,
):
    """Output shape of ``jax.lax.conv_transpose(lhs, rhs, strides, padding, rhs_dilation,
    dimension_numbers, transpose_kernel, use_consistent_padding=...)``.

    The default layouts are NHWC / HWIO (``rhs`` is (*kernel, in, out); with
    ``transpose_kernel=True`` it is the forward convolution's kernel (*kernel, out, in)).
    ``padding`` is 'SAME', 'VALID' or one (before, after) pair per spatial dim. The pairs pad
    the stride-dilated input (JAX's default), or, with ``use_consistent_padding=True``, are the
    forward convolution's padding as in PyTorch: JAX then pads the dilated input by
    ``dilation*(kernel - 1) - pad`` on each side.
    """
    lhs = _shape(lhs_shape, "lhs_shape")
    rhs = _shape(rhs_shape, "rhs_shape")
    _jax_check_ranks(lhs, rhs)
    nd = len(lhs)
    n = nd - 2
    if dimension_numbers is None:
        dimension_numbers = _jax_default_dn(nd)
    lspec, rspec, ospec = _jax_specs(dimension_numbers, nd)
    check_ordered(strides, "strides")
    st = tuple(as_int(s, "strides") for s in strides)
    mode, pairs, forward_mode = _jax_padding(padding, st, n, use_consistent_padding)
    check_ordered(rhs_dilation, "rhs_dilation")
    dl = (
        (1,) * n if rhs_dilation is None else tuple(as_int(s, "rhs_dilation") for s in rhs_dilation)
    )
    if len(st) != n or len(pairs) != n or len(dl) != n:
        # JAX names a wrong rhs_dilation length as a wrong number of pads, too
        got = next(len(v) for v in (pairs, st, dl) if len(v) != n)
        raise _error(
            "argument",
            _JAX,
            f"Wrong number of explicit pads for convolution: expected {n}, got {got}.",
            f"{n} spatial dims need {n} strides and {n} pads",
            f"pass {n} strides and {n} padding pairs",
        )
    in_axis, out_axis = (rspec[0], rspec[1]) if transpose_kernel else (rspec[1], rspec[0])
    _jax_check_channels(lhs[lspec[1]], rhs, in_axis, out_axis, dimension_numbers, transpose_kernel)
    if any(s <= 0 for s in st) or any(d <= 0 for d in dl):
        bad = st if any(s <= 0 for s in st) else dl
        raise _error(
            "argument",
            _JAX,
            f"All dilations must be positive, got {bad}.",
            "strides (the input dilation) and rhs_dilation must be >= 1",
            "use strides and rhs_dilation >= 1",
        )
    sp = [lhs[a] for a in lspec[2:]]
    ks = [rhs[a] for a in rspec[2:]]
    consistent = use_consistent_padding and mode == "EXPLICIT"
    if consistent:
        # the forward convolution's (lo, hi) become pads of span - lo, span - hi
        pairs = [
            (_core.effective_kernel(k, d) - 1 - lo, _core.effective_kernel(k, d) - 1 - hi)
            for k, d, (lo, hi) in zip(ks, dl, pairs)
        ]
    if forward_mode is not None:
        out = [
            None if s is None else max(0, _core.tf_conv(s, k, 1, d, forward_mode)[0])
            for s, k, d in zip(sp, ks, dl)
        ]
    else:
        out = _jax_lengths(sp, ks, st, dl, mode, pairs, consistent)
    canon = [lhs[lspec[0]], rhs[out_axis], *out]
    result = [None] * nd
    for pos, axis in enumerate(ospec):
        result[axis] = canon[pos]
    return tuple(result)


_JAX = "JAX"


def _jax_check_ranks(lhs: tuple, rhs: tuple) -> None:
    if len(lhs) != len(rhs) or len(lhs) < 2:
        raise _error(
            "rank",
            _JAX,
            "AssertionError (len(lhs.shape) == len(rhs.shape) and len(lhs.shape) >= 2)",
            f"lhs has rank {len(lhs)} and rhs rank {len(rhs)}; conv_transpose needs "
            "both of the same rank (batch, channel and one axis per spatial dim)",
            f"reshape lhs to rank {len(rhs)}"
            if len(rhs) >= 2
            else "give rhs a kernel axis per spatial dim plus in/out axes",
        )


def _jax_default_dn(nd: int) -> tuple:
    if nd not in _JAX_DEFAULT_DN:
        raise _error(
            "rank",
            _JAX,
            "No 4+ dimensional dimension_number defaults.",
            "JAX has default layouts for 0-3 spatial dims only",
            "pass dimension_numbers explicitly",
        )
    return _JAX_DEFAULT_DN[nd]


def _jax_padding(padding: Any, st: tuple, n: int, use_consistent_padding: bool) -> tuple:
    """(mode, pairs, forward_mode): forward_mode is set where JAX hands a padding string on to
    conv_general_dilated as a forward convolution's."""
    if isinstance(padding, str) and use_consistent_padding and padding not in ("SAME", "VALID"):
        raise _error(
            "padding",
            _JAX,
            f"Invalid padding mode: {padding}",
            "with use_consistent_padding=True JAX reads strings as the forward "
            "convolution's padding mode: 'SAME' or 'VALID' (upper case)",
            f"use padding={padding.upper()!r}"
            if padding.upper() in ("SAME", "VALID")
            else "use 'SAME', 'VALID' or (lo, hi) pairs",
        )
    if not isinstance(padding, str):
        for p in [padding, *padding]:
            check_ordered(p, "padding")
        return "EXPLICIT", [tuple(as_int(x, "padding") for x in p) for p in padding], None
    if padding in ("SAME", "VALID"):
        return padding, [(0, 0)] * n, None
    # Any other string goes to conv_general_dilated as a forward-convolution padding,
    # which it only accepts without input dilation, i.e. with all strides 1.
    if all(s == 1 for s in st) and padding.upper() in ("SAME", "VALID", "SAME_LOWER"):
        forward_mode = "VALID" if padding.upper() == "VALID" else "SAME"
        return padding, [(0, 0)] * n, forward_mode
    raise _error(
        "padding",
        _JAX,
        "String padding is not implemented for transposed "
        "convolution using this op. Please either exactly specify the required "
        "padding or use conv_transpose.",
        f"conv_transpose's own padding rule takes 'SAME' or 'VALID' (upper case); "
        f"{padding!r} is passed on as forward-convolution padding, which needs "
        "strides of 1",
        f"use padding={padding.upper()!r}"
        if padding.upper() in ("SAME", "VALID")
        else "use 'SAME', 'VALID' or explicit (before, after) pairs",
    )


def _jax_check_channels(lhs_c, rhs, in_axis, out_axis, dimension_numbers, transpose_kernel):
    rhs_in = rhs[in_axis]
    if lhs_c is None or rhs_in is None or lhs_c == rhs_in:
        return
    says = (
        "conv_general_dilated lhs feature dimension size divided by feature_group_count "
        "must equal the rhs input feature dimension size, but "
        f"{lhs_c} // 1 != {rhs_in}."
    )
    hint = ""
    if rhs[out_axis] == lhs_c:
        hint = f"; rhs has {lhs_c} on its other channel axis: " + (
            "pass transpose_kernel=False"
            if transpose_kernel
            else "pass transpose_kernel=True (the kernel is a forward convolution's)"
        )
    raise _error(
        "channels",
        _JAX,
        says,
        f"lhs has {lhs_c} channels but rhs's input-channel axis "
        f"({'O' if transpose_kernel else 'I'} of {dimension_numbers[1]!r}"
        f"{', swapped by transpose_kernel' if transpose_kernel else ''}) has {rhs_in}",
        f"use an rhs with {lhs_c} on that axis{hint}",
    )


def _jax_lengths(sp, ks, st, dl, mode, pairs, consistent) -> list:
    """conv_transpose's output lengths; an error where the pads remove more than the
    stride-dilated input has."""
    n = len(sp)
    out: list[int | None] = []
    for d in range(n):
        if sp[d] is None:
            out.append(None)
            continue
        o, _, _, padded, a, b = _core.jax_resolve(sp[d], ks[d], st[d], dl[d], mode, *pairs[d])
        if padded >= 0:
            out.append(o)
            continue
        pads_all = tuple(
            _core.jax_resolve(sp[i], ks[i], st[i], dl[i], mode, *pairs[i])[4:6]
            if sp[i] is not None
            else pairs[i]
            for i in range(n)
        )
        dil = tuple((sp[i] - 1) * st[i] + 1 if sp[i] is not None else None for i in range(n))
        says = (
            "Negative padding is larger than the size of the corresponding dimension: "
            f"got padding={pads_all} for lhs_shape[2:]={dil}"
        )
        spread = (sp[d] - 1) * st[d] + 1
        fix = f"use pads whose sum is >= {-spread}"
        if consistent:
            # the pads are dilation*(kernel - 1) - the forward padding on each side
            span = _core.effective_kernel(ks[d], dl[d]) - 1
            fix = (
                f"use a padding pair whose sum is <= {2 * span + spread} in spatial dim "
                f"{d} (with use_consistent_padding=True each pair is the forward "
                f"padding, and JAX pads dilation*(kernel - 1) minus it)"
            )
        raise _error(
            "nonpositive_output",
            _JAX,
            says,
            f"the stride-dilated input has {spread} cells and the "
            f"pads ({a}, {b}) remove more than that",
            fix,
        )
    return out


def _jax_specs(dn, nd):
    """(lhs, rhs, out) axis permutations: [batch/out-feature, feature/in-feature, *spatial]."""
    if hasattr(dn, "lhs_spec"):
        return tuple(dn.lhs_spec), tuple(dn.rhs_spec), tuple(dn.out_spec)
    check_ordered(dn, "dimension_numbers")
    lhs, rhs, out = dn
    if not all(isinstance(s, str) and len(s) == nd for s in (lhs, rhs, out)):
        raise _error(
            "argument",
            _JAX,
            f"convolution dimension_numbers must be three strings of length {nd}",
            f"got {dn!r}",
            "pass e.g. ('NCHW', 'OIHW', 'NCHW')",
        )
    spatial = [ch for ch in rhs if ch not in "IO"]
    lspec = (lhs.index("N"), lhs.index("C"), *(lhs.index(ch) for ch in spatial))
    rspec = (rhs.index("O"), rhs.index("I"), *(rhs.index(ch) for ch in spatial))
    ospec = (out.index("N"), out.index("C"), *(out.index(ch) for ch in spatial))
    return lspec, rspec, ospec
