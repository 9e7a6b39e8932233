"""Find layers: solve (input -> target size), mirror (undo a forward convolution), translate.

Everything here is a search. Candidate layers are enumerated in each framework's own parameter
space; the compiled per-dimension rules (tconv._core, the same ones tconv.shapes uses) give each
candidate's length and crop window cheaply, and every layer that is returned has been fed back
through tconv.shapes, whose output shape it carries. No length formula is written here.

Every candidate is described, per spatial dimension, by the scatter form of shape.hpp: kernel k,
stride s, dilation d, the cells cropped at the start (pad_lo) and at the end (pad_hi), and the
cells added at the end (output_padding). Two layers with the same k, s, d, pad_lo and output
length compute the same numbers from the same weights; translate() relies on that.
"""

from __future__ import annotations

import dataclasses
import itertools
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _core, shapes
from ._args import describe, ints_per_dim, pad_pairs
from ._dialects import CONVENTIONS, DIALECTS, dialect
from ._errors import BackendWarning, ShapeError, overflow_as_value_error
from ._rules import output_padding_limit

__all__ = ["CONVENTIONS", "Solution", "Solutions", "mirror", "solve", "translate"]


@dataclass(frozen=True)
class _Dim:
    """One spatial dimension of a candidate layer."""

    kernel: int
    stride: int
    dilation: int
    pad_lo: int  # scatter form: cells cropped at the start
    pad_hi: int
    output_padding: int
    output: int
    # the convention's own spelling: torch (padding, op); keras (mode, op or None);
    # onnx (lo, hi, op); tf_nn (mode,); jax (mode, before, after)
    native: tuple
    key: tuple  # simplicity: smaller first


@dataclass(frozen=True)
class Solution:
    """A transposed-convolution layer in one framework's dialect.

    Attributes
    ----------
    convention : str
        "torch", "keras", "onnx", "tf_nn" or "jax".
    params : dict
        The layer's arguments in that framework's own names (ints when the same in every
        dimension, else tuples).
    input_size, output_size : tuple of int
        Spatial sizes in and out.
    output_shape : tuple
        The full output shape as tconv.shapes reports it for a batch of None (with the channel
        counts given, 1 where none were given).
    crop : tuple of (pad_lo, pad_hi, output_padding)
        Per dimension, the cells cropped at the start and at the end of the full result and the
        cells added at the end: the exact window, identical for equivalent layers.
    notes : tuple of str
        Backend caveats (e.g. a backend that refuses to run the layer).
    """

    convention: str
    params: dict
    input_size: tuple
    output_size: tuple
    output_shape: tuple
    crop: tuple
    kernel_size: tuple
    stride: tuple
    dilation: tuple
    in_channels: int | None = None
    out_channels: int | None = None
    notes: tuple = field(default=())

    @property
    def rank(self) -> int:
        return len(self.input_size)

    def code(self, in_channels: int | None = None, out_channels: int | None = None) -> str:
        """The layer as code in the framework's syntax (channel counts as given, else names)."""
        cin = in_channels if in_channels is not None else self.in_channels
        cout = out_channels if out_channels is not None else self.out_channels
        return _CODE[self.convention](
            self,
            "in_channels" if cin is None else str(cin),
            "out_channels" if cout is None else str(cout),
        )

    def as_dict(self) -> dict:
        return {
            "convention": self.convention,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in self.params.items()},
            "code": self.code(),
            "input_size": list(self.input_size),
            "output_size": list(self.output_size),
            "output_shape": list(self.output_shape),
            "crop": [list(c) for c in self.crop],
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return self.code()


class Solutions(list):
    """A list of Solution, simplest first; ``why`` explains an empty result."""

    why: str = ""


# ---- per-dimension enumeration ---------------------------------------------------------------


def _stride_key(s: int, i: int, t: int) -> float:
    return abs(s - t / i) if i else 0.0


# At most this many candidates per dimension and (kernel, stride): the simplest come first. A
# kernel, stride or dilation in the millions must not turn a search into millions of steps, so
# the enumerators invert each rule (the output is linear in every padding and output_padding)
# instead of trying every value.
PER_DIM = 64
# At most this many (kernel, stride) pairs searched per dimension, and layers checked through
# tconv.shapes (about 0.3 ms each): the simplest MAX_LAYERS are returned.
MAX_SEARCH = 1024
MAX_LAYERS = 1024


def _sample(lo: int, hi: int) -> Sequence[int]:
    """lo..hi, or its first and last PER_DIM values when longer: the output is monotone in each
    parameter, so the smallest and largest outputs are kept."""
    if hi - lo < 2 * PER_DIM:
        return range(lo, hi + 1)
    return [*range(lo, lo + PER_DIM), *range(hi - PER_DIM + 1, hi + 1)]


def _outward(lo: int, hi: int, center: int) -> Iterable[int]:
    """lo..hi from `center` (clamped) outwards: the most symmetric paddings first."""
    c = min(max(center, lo), hi)
    yield c
    for step in range(1, hi - lo + 1):
        if c + step > hi and c - step < lo:
            return
        if c + step <= hi:
            yield c + step
        if c - step >= lo:
            yield c - step


def _dims_torch(
    i: int, k: int, s: int, d: int, target: int | None, lo: int | None = None
) -> Iterable[_Dim]:
    span = _core.effective_kernel(k, d) - 1
    m = output_padding_limit(s, d)
    if target is None:
        pads: Iterable[int] = [lo] if lo is not None else _sample(0, span)
        pairs = ((p, op) for p in pads for op in _sample(0, m - 1))
    else:
        # out = full - 2*padding + output_padding, with 0 <= output_padding < m
        full = _core.torch_length(i, k, s, d, 0, 0)
        first = max(0, -((target - full) // 2))
        last = min(span, (full - target + m - 1) // 2)
        pads = [lo] if lo is not None else range(first, min(last, first + PER_DIM - 1) + 1)
        pairs = ((p, target - full + 2 * p) for p in pads)
    for p, op in pairs:
        if 0 <= op < m:
            out = _core.torch_length(i, k, s, d, p, op)
            yield _Dim(k, s, d, p, p, op, out, (p, op), (op > 0, 0, p, op))


def _dims_keras(i: int, k: int, s: int, d: int, target: int | None) -> Iterable[_Dim]:
    for mode in ("same", "valid"):
        if target is None:
            ops: list = [None, *_sample(0, s - 1)]
        else:  # the length grows by one per output_padding
            op = target - _core.keras_length(i, mode, k, s, d, 0)
            ops = [None] + ([op] if 0 <= op < s else [])
        for op in ops:
            lo, hi, extra = _core.resolve_keras_padding(mode, k, s, d, op)
            out = _core.keras_length(i, mode, k, s, d, op)
            yield _Dim(
                k,
                s,
                d,
                lo,
                hi,
                extra,
                out,
                (mode, op),
                (op is not None, 0, mode != "same", op or 0),
            )


def _dims_onnx(
    i: int,
    k: int,
    s: int,
    d: int,
    target: int | None,
    lo: int | None = None,
    pads: tuple | None = None,
) -> Iterable[_Dim]:
    span = _core.effective_kernel(k, d) - 1
    m = output_padding_limit(s, d)

    def make(lo: int, hi: int, op: int) -> _Dim:
        out, plo, phi, pop = _core.onnx_resolve(i, k, s, d, op, "NOTSET", lo, hi, None)
        return _Dim(k, s, d, plo, phi, pop, out, (lo, hi, op), (op > 0, lo != hi, lo + hi, op))

    if lo is not None and not pads:
        pads = (lo, None)
    if target is None:
        los = [pads[0]] if pads else _sample(0, span)
        his = [pads[1]] if pads and pads[1] is not None else _sample(0, span)
        yield from (make(b, e, op) for b in los for e in his for op in _sample(0, m - 1))
        return
    # out = full - pads_begin - pads_end + output_padding, with 0 <= output_padding < m
    full = _core.onnx_resolve(i, k, s, d, 0, "NOTSET", 0, 0, None)[0]
    first = max(0, full - target)
    last = full - target + m - 1  # the largest total of pads: output_padding m - 1
    if pads and pads[1] is not None:
        if first <= pads[0] + pads[1] <= last:
            yield make(pads[0], pads[1], target - full + pads[0] + pads[1])
        return
    if pads:  # the begin pad is pinned: symmetric first, then growing end pads
        b = pads[0]
        start = max(0, first - b)
        ends = [b, *range(start, min(span, last - b, start + PER_DIM - 1) + 1)]
        for e in dict.fromkeys(ends):
            if 0 <= e <= span and first <= b + e <= last:
                yield make(b, e, target - full + b + e)
        return
    totals = range(first, min(2 * span, last, first + PER_DIM - 1) + 1)
    for total in totals:  # symmetric pads first, then the rest
        if total % 2 == 0:
            yield make(total // 2, total // 2, target - full + total)
    count = 0
    for total in totals:
        for b in _outward(max(0, total - span), min(span, total), total // 2):
            if count == PER_DIM:
                return
            if 2 * b != total:
                count += 1
                yield make(b, total - b, target - full + total)


def _dims_tf_nn(i: int, k: int, s: int, d: int, target: int | None) -> Iterable[_Dim]:
    for mode in ("SAME", "VALID"):
        lo_t, hi_t = _core.tf_transposed_range(i, k, s, d, mode)
        wanted = [target] if target is not None else _sample(lo_t, hi_t)
        for t in wanted:
            if not lo_t <= t <= hi_t:
                continue
            out, plo, phi, pop = _core.tf_transposed(i, t, k, s, d, mode)
            yield _Dim(k, s, d, plo, phi, pop, out, (mode,), (0, 0, mode != "SAME", 0))


def _dims_jax(
    i: int, k: int, s: int, d: int, target: int | None, lo: int | None = None
) -> Iterable[_Dim]:
    span = _core.effective_kernel(k, d) - 1
    for mode in ("SAME", "VALID"):
        out, plo, phi, _, b, a = _core.jax_resolve(i, k, s, d, mode)
        yield _Dim(k, s, d, plo, phi, 0, out, (mode, b, a), (0, 0, mode != "SAME", 0))
    # explicit (before, after) pads of the stride-dilated input: before <= span keeps every
    # input cell; after up to span + s - 1 adds up to s - 1 cells, like output_padding. A crop
    # `lo` pins before = span - lo (a mirror of a forward padding wider than the kernel needs
    # negative pads).
    a_max = span + s - 1
    if target is None:
        befores: Iterable[int] = [span - lo] if lo is not None else _sample(0, span)
        pairs = ((b, a) for b in befores for a in _sample(0, a_max))
    else:
        # out = spread + before + after - span, spread = (i - 1)*s + 1
        total = target - _core.jax_resolve(i, k, s, d, "EXPLICIT", 0, 0)[3] + span
        if lo is not None:
            befores = [span - lo]
        else:
            befores = itertools.islice(
                _outward(max(0, total - a_max), min(span, total), total // 2), PER_DIM
            )
        pairs = ((b, total - b) for b in befores)
    for b, a in pairs:
        if a > a_max or (lo is None and (a < 0 or b < 0)):
            continue
        out, plo, phi, padded, _, _ = _core.jax_resolve(i, k, s, d, "EXPLICIT", b, a)
        if padded < 0 or out < 1:
            continue
        yield _Dim(
            k,
            s,
            d,
            plo,
            phi,
            0,
            out,
            ("EXPLICIT", b, a),
            (1 + (a > span), b != a, abs(b - a), b + a),
        )


def _dims(
    convention: str,
    i: int,
    k: int,
    s: int,
    d: int,
    target: int | None,
    lo: int | None = None,
    pads: tuple | None = None,
) -> Iterable[_Dim]:
    """Candidates for one dimension, at most a few PER_DIM of them, simplest first.

    `target` keeps those of that output length (None: a sample that spans every length);
    `lo` keeps those that crop `lo` cells at the start (torch's padding, ONNX's begin pad and
    JAX's explicit before-pad follow from it); `pads` = (begin, end) pins ONNX's pads.
    """
    return _STEPS[convention].dims(i, k, s, d, target, lo, pads)


# ---- combining dimensions and verifying through tconv.shapes ---------------------------------


def _compatible(convention: str, dims: Sequence[_Dim]) -> bool:
    """Whether per-dimension choices can be spelled as one layer (shared padding strings)."""
    return len({_mode_class(convention, x) for x in dims}) == 1


def _mode_class(convention: str, x: _Dim) -> Any:
    """Candidates of one class can be combined over dimensions (one padding string)."""
    return _STEPS[convention].mode_class(x)


def _no_mode(x: _Dim) -> Any:
    return 0  # numbers per dimension: anything combines


def _mode(x: _Dim) -> Any:
    return x.native[0]


def _mode_and_op_form(x: _Dim) -> Any:
    # Keras: one padding string, and output_padding given in every dimension or in none
    return (x.native[0], x.native[1] is None)


def _collapse(values: Sequence[Any]) -> Any:
    return values[0] if len(set(values)) == 1 else tuple(values)


def _params(convention: str, dims: Sequence[_Dim], consistent: bool = False) -> dict:
    """The layer's arguments in the convention's names. `consistent`: JAX's
    use_consistent_padding=True, whose pairs are the forward convolution's padding (each pad
    of the stride-dilated input is dilation*(kernel - 1) minus it)."""
    return _STEPS[convention].params(dims, consistent)


def _ksd(dims: Sequence[_Dim]) -> tuple[tuple, tuple, tuple]:
    return (
        tuple(x.kernel for x in dims),
        tuple(x.stride for x in dims),
        tuple(x.dilation for x in dims),
    )


def _params_torch(dims: Sequence[_Dim], consistent: bool) -> dict:
    k, s, d = _ksd(dims)
    return {
        "kernel_size": _collapse(k),
        "stride": _collapse(s),
        "padding": _collapse([x.native[0] for x in dims]),
        "output_padding": _collapse([x.native[1] for x in dims]),
        "dilation": _collapse(d),
    }


def _params_keras(dims: Sequence[_Dim], consistent: bool) -> dict:
    k, s, d = _ksd(dims)
    ops = [x.native[1] for x in dims]
    return {
        "kernel_size": _collapse(k),
        "strides": _collapse(s),
        "padding": dims[0].native[0],
        "output_padding": None if ops[0] is None else _collapse(ops),
        "dilation_rate": _collapse(d),
    }


def _params_onnx(dims: Sequence[_Dim], consistent: bool) -> dict:
    k, s, d = _ksd(dims)
    return {
        "kernel_shape": list(k),
        "strides": list(s),
        "pads": [x.native[0] for x in dims] + [x.native[1] for x in dims],
        "output_padding": [x.native[2] for x in dims],
        "dilations": list(d),
    }


def _params_tf_nn(dims: Sequence[_Dim], consistent: bool) -> dict:
    k, s, d = _ksd(dims)
    return {
        "kernel_size": list(k),
        "strides": list(s),
        "padding": dims[0].native[0],
        "output_shape": [x.output for x in dims],
        "dilations": list(d),
    }


def _params_jax(dims: Sequence[_Dim], consistent: bool) -> dict:
    k, s, d = _ksd(dims)
    mode = dims[0].native[0]
    padding: Any = mode
    if mode == "EXPLICIT":
        spans = [_core.effective_kernel(x.kernel, x.dilation) - 1 for x in dims]
        padding = [
            (e - x.native[1], e - x.native[2]) if consistent else (x.native[1], x.native[2])
            for e, x in zip(spans, dims)
        ]
    return {
        "kernel_size": list(k),
        "strides": list(s),
        "padding": padding,
        "rhs_dilation": list(d),
        "use_consistent_padding": consistent,
    }


def _shape_call(
    convention: str,
    dims: Sequence[_Dim],
    inp: Sequence[int],
    cin: int,
    cout: int,
    consistent: bool = False,
) -> tuple[tuple, tuple]:
    """Run the candidate through tconv.shapes; (output shape, backend notes)."""
    p = _params(convention, dims, consistent)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BackendWarning)
        out = _STEPS[convention].shape(p, dims, inp, cin, cout)
    notes = tuple(
        dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, BackendWarning))
    )
    return tuple(out), notes


def _shape_torch(p: dict, dims: Sequence[_Dim], inp: Sequence[int], cin: int, cout: int) -> Any:
    return shapes.torch(
        (None, cin, *inp),
        cin,
        cout,
        p["kernel_size"],
        p["stride"],
        p["padding"],
        p["output_padding"],
        1,
        p["dilation"],
        dims=len(dims),
    )


def _shape_keras(p: dict, dims: Sequence[_Dim], inp: Sequence[int], cin: int, cout: int) -> Any:
    return shapes.keras(
        (None, *inp, cin),
        cout,
        p["kernel_size"],
        p["strides"],
        p["padding"],
        p["output_padding"],
        "channels_last",
        p["dilation_rate"],
        dims=len(dims),
    )


def _shape_onnx(p: dict, dims: Sequence[_Dim], inp: Sequence[int], cin: int, cout: int) -> Any:
    return shapes.onnx(
        (None, cin, *inp),
        (cin, cout, *[x.kernel for x in dims]),
        strides=p["strides"],
        pads=p["pads"],
        dilations=p["dilations"],
        output_padding=p["output_padding"],
    )


def _shape_tf_nn(p: dict, dims: Sequence[_Dim], inp: Sequence[int], cin: int, cout: int) -> Any:
    return shapes.tf_nn(
        (None, *inp, cin),
        (*[x.kernel for x in dims], cout, cin),
        (None, *p["output_shape"], cout),
        p["strides"],
        p["padding"],
        dilations=p["dilations"],
    )


def _shape_jax(p: dict, dims: Sequence[_Dim], inp: Sequence[int], cin: int, cout: int) -> Any:
    return shapes.jax(
        (None, *inp, cin),
        (*[x.kernel for x in dims], cin, cout),
        p["strides"],
        p["padding"],
        rhs_dilation=p["rhs_dilation"],
        use_consistent_padding=p["use_consistent_padding"],
    )


def _make(
    convention: str,
    dims: Sequence[_Dim],
    inp: Sequence[int],
    cin: int | None,
    cout: int | None,
    refusals: list[str] | None = None,
    consistent: bool = False,
) -> Solution | None:
    try:
        out_shape, notes = _shape_call(convention, dims, inp, cin or 1, cout or 1, consistent)
    except ShapeError as exc:
        # a rule beyond the length (e.g. Keras: strides > 1 with dilation > 1)
        if refusals is not None:
            refusals.append(str(exc))
        return None
    expected = tuple(x.output for x in dims)
    got = DIALECTS[convention].spatial(out_shape)
    if got != expected:
        raise AssertionError(
            f"internal: {convention} candidate {_params(convention, dims)} "
            f"gives {got} in tconv.shapes but {expected} in the search"
        )
    return Solution(
        convention,
        _params(convention, dims, consistent),
        tuple(inp),
        expected,
        out_shape,
        tuple((x.pad_lo, x.pad_hi, x.output_padding) for x in dims),
        tuple(x.kernel for x in dims),
        tuple(x.stride for x in dims),
        tuple(x.dilation for x in dims),
        cin,
        cout,
        notes,
    )


# ---- argument normalisation ---------------------------------------------------------------


def _per_dim(
    value: Any, rank: int | None, name: str, optional: bool = False
) -> tuple[int, ...] | None:
    """ints_per_dim in the solver's words; no one-entry repeat (a rank of None takes the
    sequence's length)."""
    if value is None:
        if optional:
            return None
        raise TypeError(f"{name} must be an int or a tuple of ints, got None")

    def error(kind: str, whole: Any) -> Exception:
        if kind != "length":
            return TypeError(f"{name} must be an int or a tuple of ints, got {describe(whole)}")
        if not len(whole):
            return ValueError(f"{name} is empty; give one int, or one per spatial dimension")
        return ValueError(
            f"{name} has {len(whole)} values but the sizes have {rank} dimensions; "
            f"give one int or {rank} ints"
        )

    return ints_per_dim(value, rank, name, repeat_one=False, error=error)


def _rank_of(*values: Any) -> int:
    for v in values:
        if v is not None and not isinstance(v, int):
            try:
                return len(tuple(v))
            except TypeError:
                pass
    return 1


def _check_convention(convention: str) -> str:
    return dialect(convention).name


def _consistent(convention: str, value: Any) -> bool:
    """JAX's use_consistent_padding: a bool, and an argument of lax.conv_transpose only."""
    if not isinstance(value, bool):
        raise TypeError(f"use_consistent_padding must be True or False, got {describe(value)}")
    if value and convention != "jax":
        raise ValueError(
            f"use_consistent_padding is an argument of JAX's lax.conv_transpose; "
            f"convention={convention!r} has none: use convention='jax' or leave "
            f"it False"
        )
    return value


def _positive(values: Sequence[int], name: str, fix: str) -> None:
    for v in values:
        if v < 1:
            raise ValueError(f"{name} must be >= 1, got {v}; {fix}")


# ---- solve ------------------------------------------------------------------------------------


@overflow_as_value_error
def solve(
    input_size: Any,
    target_size: Any,
    *,
    kernel_size: Any = None,
    stride: Any = None,
    dilation: Any = 1,
    convention: str = "torch",
    max_kernel: int = 8,
    max_stride: int = 4,
    in_channels: int | None = None,
    out_channels: int | None = None,
    use_consistent_padding: bool = False,
) -> Solutions:
    """Every transposed-convolution layer that maps `input_size` to `target_size`.

    Parameters
    ----------
    input_size, target_size : int or tuple of int
        Spatial sizes (one int for every dimension, or one per dimension).
    kernel_size, stride : int or tuple, optional
        Fixed when given; otherwise searched over 1..max_kernel and 1..max_stride.
    dilation : int or tuple
        Fixed (default 1).
    convention : {"torch", "keras", "onnx", "tf_nn", "jax"}
    in_channels, out_channels : int, optional
        Only used to write the layers' code and output shapes.
    use_consistent_padding : bool
        JAX only: write explicit pairs as lax.conv_transpose reads them with
        ``use_consistent_padding=True`` (the forward convolution's padding, PyTorch's meaning:
        padding p with output_padding q is the pair (p, p - q)); the code passes it.

    Returns
    -------
    Solutions
        A list of :class:`Solution`, simplest first: no output_padding before output_padding,
        string paddings before explicit numbers, stride closest to target/input, small kernels,
        symmetric before asymmetric padding, less padding. Paddings range over
        0..dilation*(kernel-1) per side (more would crop every contribution of an input
        cell). When dimensions have the same sizes and bounds, the solutions use the same
        parameters in every dimension. Empty when nothing reaches the target; ``.why`` then
        says why. The search is bounded, so that huge sizes answer at once: per dimension and
        (kernel, stride) the 64 simplest paddings, at most 1024 (kernel, stride) pairs (else
        ValueError), and at most the 1024 simplest layers overall.
    """
    convention = _check_convention(convention)
    consistent = _consistent(convention, use_consistent_padding)
    rank = _rank_of(input_size, target_size, kernel_size, stride, dilation)
    inp = _per_dim(input_size, rank, "input_size")
    tgt = _per_dim(target_size, rank, "target_size")
    ks = _per_dim(kernel_size, rank, "kernel_size", optional=True)
    ss = _per_dim(stride, rank, "stride", optional=True)
    ds = _per_dim(dilation, rank, "dilation")
    assert inp is not None and tgt is not None and ds is not None
    _positive(inp, "input_size", "sizes are lengths of spatial axes")
    _positive(tgt, "target_size", "sizes are lengths of spatial axes")
    _positive(ds, "dilation", "use dilation=1 for an ordinary kernel")
    for name, v in (("max_kernel", max_kernel), ("max_stride", max_stride)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    searched = (1 if ks else max_kernel) * (1 if ss else max_stride)
    if searched > MAX_SEARCH:
        raise ValueError(
            f"the search would try {searched} (kernel, stride) pairs per dimension "
            f"(max_kernel={max_kernel} x max_stride={max_stride}); at most {MAX_SEARCH}: fix "
            f"kernel_size or stride, or lower max_kernel / max_stride"
        )
    if ks:
        _positive(ks, "kernel_size", "a kernel has at least one tap")
    if ss:
        _positive(ss, "stride", "stride is the upsampling factor, at least 1")

    per_dim: list[list[_Dim]] = []
    problems = {}
    for j in range(rank):
        key = (inp[j], tgt[j], ks[j] if ks else None, ss[j] if ss else None, ds[j])
        if key not in problems:
            problems[key] = _solve_dim(convention, *key, max_kernel, max_stride)
        per_dim.append(problems[key])

    result = Solutions()
    refusals: list[str] = []
    if all(per_dim):
        if len(problems) == 1:
            combos: Iterable[tuple[_Dim, ...]] = ((x,) * rank for x in per_dim[0][:MAX_LAYERS])
        else:
            # each list is simplest first: keep the heads whose product stays bounded
            keep = max(1, int(MAX_LAYERS ** (1 / rank)))
            combos = sorted(
                itertools.product(*(c[:keep] for c in per_dim)),
                key=lambda c: tuple(sum(col) for col in zip(*(x.key for x in c))),
            )
        for combo in combos:
            if not _compatible(convention, combo):
                continue
            sol = _make(convention, combo, inp, in_channels, out_channels, refusals, consistent)
            if sol is not None:
                result.append(sol)
    if not result:
        result.why = _why(convention, inp, tgt, ks, ss, ds, max_kernel, max_stride, per_dim)
        if refusals:
            first = refusals[0].splitlines()[0]
            result.why = (
                f"layers whose length arithmetic reaches {_tup(tgt)} exist, but "
                f"{convention} refuses all {len(refusals)} of them, e.g.: {first}"
            )
    return result


def _solve_dim(
    convention: str,
    i: int,
    t: int,
    k: int | None,
    s: int | None,
    d: int,
    max_kernel: int,
    max_stride: int,
) -> list[_Dim]:
    found = []
    for kk in [k] if k else range(1, max_kernel + 1):
        for st in [s] if s else range(1, max_stride + 1):
            cands = [x for x in _dims(convention, i, kk, st, d, t) if x.output == t]
            if convention in ("onnx", "jax"):  # equally simple ones by their paddings
                cands.sort(key=lambda x: x.native)
            found.extend(cands)
    # simplest first: no output_padding, no holes, then plain/symmetric padding, then the stride closest
    # to target/input, then the smallest kernel, then the enumerator's own order
    # (a dilated kernel shorter than the stride leaves output cells that no input reaches)
    found = [
        dataclasses.replace(
            x,
            key=(
                x.key[0],
                _core.effective_kernel(x.kernel, x.dilation) < x.stride,
                x.key[1],
                _stride_key(x.stride, i, t),
                x.kernel,
            )
            + x.key[2:],
        )
        for x in found
    ]
    found.sort(key=lambda x: x.key)
    return found


def _reach(convention: str, i: int, k: int, s: int, d: int) -> list[int]:
    if convention == "onnx":
        return _reach_onnx(i, k, s, d)
    return sorted({x.output for x in _dims(convention, i, k, s, d, None) if x.output >= 1})


def _reach_onnx(i: int, k: int, s: int, d: int) -> list[int]:
    """_dims_onnx's outputs without its windows: an output depends on the total of the two
    pads only (out = full - total + output_padding), so each total is taken once."""
    span = _core.effective_kernel(k, d) - 1
    ops = _sample(0, output_padding_limit(s, d) - 1)
    pads = _sample(0, span)
    totals = {b + e for b in pads for e in pads}
    full = _core.onnx_resolve(i, k, s, d, 0, "NOTSET", 0, 0, None)[0]
    return sorted({full - t + op for t in totals for op in ops if full - t + op >= 1})


def _why(
    convention: str,
    inp: tuple,
    tgt: tuple,
    ks: tuple | None,
    ss: tuple | None,
    ds: tuple,
    max_kernel: int,
    max_stride: int,
    per_dim: list[list[_Dim]],
) -> str:
    lines = []
    for j, cands in enumerate(per_dim):
        if cands:
            continue
        i, t, d = inp[j], tgt[j], ds[j]
        kr = [ks[j]] if ks else list(range(1, max_kernel + 1))
        sr = [ss[j]] if ss else list(range(1, max_stride + 1))
        reach: set[int] = set()
        for kk in kr:
            for st in sr:
                reach.update(_reach(convention, i, kk, st, d))
        fixed = ", ".join(
            f"{n}={v}"
            for n, v in (
                ("kernel_size", ks[j] if ks else None),
                ("stride", ss[j] if ss else None),
                ("dilation", d),
            )
            if v is not None
        )
        span = f"sizes {min(reach)}..{max(reach)}" if reach else "no size"
        # the reach of huge layers is sampled (its ends are exact): list gaps of small ones
        gaps = (
            sorted(set(range(min(reach), max(reach) + 1)) - reach)
            if reach and max(reach) - min(reach) <= 4 * PER_DIM
            else []
        )
        lines.append(
            f"dimension {j}: {convention} layers with {fixed} (kernel 1..{max(kr)}, stride "
            f"1..{max(sr)}) turn {i} into {span}"
            + (f" except {gaps}" if gaps else "")
            + f", not {t}."
        )
        if reach and t > max(reach):
            lines.append(
                f"  To reach {t}: allow a larger stride or kernel (max_stride, "
                f"max_kernel), or fix fewer parameters."
            )
        elif reach and t < min(reach):
            lines.append(
                f"  {t} is smaller than anything a transposed convolution of {i} "
                f"cells gives here: use a smaller stride, or crop the result."
            )
        else:
            lines.append("  Free the kernel or stride, or crop/pad the result by the difference.")
    if not lines:
        lines.append(
            "each dimension has solutions, but none share the padding string that "
            f"{convention} applies to all dimensions at once; solve the dimensions "
            "separately and use explicit paddings"
        )
    return "\n".join(lines)


# ---- mirror -----------------------------------------------------------------------------------


@overflow_as_value_error
def mirror(
    input_size: Any,
    kernel_size: Any,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    *,
    convention: str = "torch",
    in_channels: int | None = None,
    out_channels: int | None = None,
    use_consistent_padding: bool = False,
) -> Solution:
    """The transposed layer that maps a forward convolution's output back to `input_size`.

    The forward convolution is the convention's own (Conv2d, Conv2D, ONNX Conv, tf.nn.conv2d,
    lax.conv_general_dilated) with these arguments, applied to `input_size`. The mirror keeps
    kernel, stride, dilation and padding — so it is the forward convolution's adjoint, the
    layer every decoder uses — and picks the output_padding (or, for tf.nn, output_shape; for
    JAX, explicit pads) that restores the size exactly.

    padding: torch an int or one int per dim; keras "same"/"valid"; onnx an int, one int per
    dim or the ONNX pads list [begins..., ends...]; tf_nn "SAME"/"VALID"; jax "SAME"/"VALID" or
    (lo, hi) pairs. ``use_consistent_padding=True`` (JAX only) writes the mirror's pairs as
    lax.conv_transpose reads them with that argument: the forward padding, with the cells the
    mirror adds at the end taken off its second entry.
    """
    convention = _check_convention(convention)
    consistent = _consistent(convention, use_consistent_padding)
    rank = _rank_of(
        input_size, kernel_size, stride, dilation, padding if convention in ("torch",) else None
    )
    inp = _per_dim(input_size, rank, "input_size")
    ks = _per_dim(kernel_size, rank, "kernel_size")
    ss = _per_dim(stride, rank, "stride")
    ds = _per_dim(dilation, rank, "dilation")
    assert inp and ks and ss and ds
    _positive(inp, "input_size", "sizes are lengths of spatial axes")
    _positive(ks, "kernel_size", "a kernel has at least one tap")
    _positive(ss, "stride", "stride must be at least 1")
    _positive(ds, "dilation", "use dilation=1 for an ordinary kernel")
    pads = _forward_pads(convention, padding, rank)
    dims, ms = [], []
    for j in range(rank):
        i, k, s, d = inp[j], ks[j], ss[j], ds[j]
        mode, lo, hi = pads[j]
        if mode in ("same", "SAME", "valid", "VALID"):
            m, flo, fhi = _core.tf_conv(i, k, s, d, mode.upper())
        else:
            m = _core.conv_length(i, k, s, d, lo, hi)
            flo, fhi = lo, hi
        if m < 1:
            raise ShapeError(
                f"the forward convolution has no output in dimension {j}: an input of {i} "
                f"with kernel {k} (dilation {d}, span {_core.effective_kernel(k, d)}) and "
                f"padding ({flo}, {fhi}) leaves no room for the kernel; use a smaller kernel "
                f"or more padding"
            )
        pinned = mode == "EXPLICIT"
        matches = sorted(
            (
                x
                for x in _dims(
                    convention,
                    m,
                    k,
                    s,
                    d,
                    i,
                    lo=_mirror_crop(convention, lo, flo) if pinned else None,
                    pads=(lo, hi) if pinned and convention == "onnx" else None,
                )
                if x.output == i and _mirror_native_ok(convention, x, mode, lo, hi, flo)
            ),
            key=lambda x: x.key,
        )
        if not matches:
            raise ShapeError(
                f"no {convention} transposed layer with kernel {k}, stride {s}, dilation {d} "
                f"and this padding maps {m} back to {i} in dimension {j}; "
                + _mirror_fix(convention)
            )
        dims.append(matches)
        ms.append(m)
    # one padding spelling for all dimensions: the simplest shared one
    for spelling in [
        None,
        *sorted({x.native[0] for c in dims for x in c if isinstance(x.native[0], str)}),
    ]:
        found = [
            next((x for x in c if spelling is None or x.native[0] == spelling), None) for c in dims
        ]
        pick = [x for x in found if x is not None]
        if len(pick) == len(found) and _compatible(convention, pick):
            break
    else:
        raise ShapeError(
            f"the dimensions need different {convention} padding modes; {_mirror_fix(convention)}"
        )
    sol = _make(convention, pick, ms, in_channels, out_channels, consistent=consistent)
    if sol is None:
        raise ShapeError(
            f"the mirror layer is rejected by {convention}'s own rules (see "
            f"tconv.shapes.{convention}); {_mirror_fix(convention)}"
        )
    return sol


def _mirror_crop(convention: str, lo: int, flo: int) -> int | None:
    """The crop at the start that the mirror of a forward padding (lo, flo resolved) keeps."""
    return _STEPS[convention].mirror_crop(lo, flo)


def _mirror_native_ok(convention: str, x: _Dim, mode: str, lo: int, hi: int, flo: int) -> bool:
    return _STEPS[convention].mirror_ok(x, mode, lo, hi, flo)


def _mirror_fix(convention: str) -> str:
    return (
        f"check the forward layer with tconv.shapes, or use tconv.solve(<conv output>, "
        f"<input size>, convention={convention!r}) for other layers"
    )


def _forward_pads(convention: str, padding: Any, rank: int) -> list[tuple[str, int, int]]:
    if isinstance(padding, str):
        allowed = DIALECTS[convention].modes
        if padding not in allowed:
            raise ValueError(
                f"padding={padding!r} is not a {convention} forward padding; use "
                + (" or ".join(map(repr, allowed)) if allowed else "numbers (cells per side)")
            )
        return [(padding, 0, 0)] * rank
    if convention in ("keras", "tf_nn"):
        raise ValueError(
            f"{convention} forward convolutions take padding "
            f"{'/'.join(DIALECTS[convention].modes)}, got "
            f"{padding!r}"
        )
    vals = _pad_pairs(convention, padding, rank)
    for lo, hi in vals:
        if lo < 0 or hi < 0:
            raise ValueError(f"padding must be >= 0, got {padding!r}")
    return [("EXPLICIT", lo, hi) for lo, hi in vals]


def _pad_pairs(convention: str, padding: Any, rank: int) -> list[tuple[int, int]]:
    """Numeric forward padding -> (lo, hi) per dim: an int for every dim, one int per dim
    (torch, onnx), ONNX's begins then ends, or (lo, hi) pairs (onnx, jax)."""

    def error(kind: str, whole: Any) -> Exception | None:
        if kind == "length":
            return ValueError(f"padding has {len(whole)} values for {rank} dimensions")
        if kind == "form" and convention == "torch":
            return ValueError(
                "PyTorch's Conv padding is one int per dimension (symmetric); "
                "use convention='onnx' or 'jax' for (lo, hi) pairs"
            )
        return None

    return pad_pairs(
        padding,
        rank,
        "padding",
        per_dim=convention in ("torch", "onnx"),
        begins_ends=convention == "onnx",
        pairs=convention in ("onnx", "jax"),
        error=error,
    )


# ---- translate ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Translation:
    """The equivalent of a layer in another framework, or why there is none."""

    convention: str
    solution: Solution | None
    reason: str = ""
    recipe: str = ""
    recipe_notes: tuple = ()  # where a backend refuses the recipe's layer (Solution.notes)

    @property
    def exact(self) -> bool:
        return self.solution is not None

    def __str__(self) -> str:
        if self.solution is not None:
            return f"{self.convention}: {self.solution.code()}"
        notes = "".join(f"\n  note: {n}" for n in self.recipe_notes)
        return (
            f"{self.convention}: no equivalent layer. {self.reason}\n  instead: {self.recipe}"
            + notes
        )

    def as_dict(self) -> dict:
        return {
            "convention": self.convention,
            "solution": self.solution.as_dict() if self.solution else None,
            "reason": self.reason,
            "recipe": self.recipe,
            "recipe_notes": list(self.recipe_notes),
        }


@overflow_as_value_error
def translate(
    source: Solution | dict,
    *,
    convention: str | None = None,
    input_shape: Any = None,
    use_consistent_padding: bool | None = None,
) -> dict[str, Translation]:
    """The same layer in every convention: same kernel, stride, dilation and crop window.

    `source` is a :class:`Solution` (from solve or mirror), or a layer description: a dict of
    the layer's own arguments in `convention`'s names (as :func:`tconv.port` takes them, with
    `input_shape` where the window depends on the input size). Returns one
    :class:`Translation` per convention; where none exists, ``reason`` says why, ``recipe``
    what to do instead and ``recipe_notes`` where a backend refuses the recipe's layer.
    Equivalent layers compute the same numbers from the same weights (in each framework's
    weight layout): they crop the same cells at the start and give the same length.
    ``use_consistent_padding``: how the JAX layer spells explicit pairs (see :func:`solve`); None
    follows the source (False unless it is a JAX layer that uses it).
    """
    if isinstance(source, dict):
        if convention is None:
            raise TypeError(
                "translate(layer) needs convention=: the framework whose arguments the dict "
                f"holds, one of {', '.join(CONVENTIONS)}"
            )
        from ._port import translate_layer

        return translate_layer(source, _check_convention(convention), input_shape)
    if not isinstance(source, Solution):
        raise TypeError(
            f"translate() takes a tconv.Solution (from tconv.solve or tconv.mirror) or a "
            f"layer's arguments as a dict, got {type(source).__name__}"
        )
    if use_consistent_padding is None:
        use_consistent_padding = bool(source.params.get("use_consistent_padding", False))
    consistent = _consistent("jax", use_consistent_padding)
    return {conv: _translate_to(source, conv, consistent) for conv in CONVENTIONS}


def _translate_to(src: Solution, conv: str, consistent: bool = False) -> Translation:
    if conv == src.convention and (
        conv != "jax" or src.params["use_consistent_padding"] == consistent
    ):
        return Translation(conv, src)
    from ._port import solution_layer, translation

    return translation(solution_layer(src), conv, consistent, short=True)


# ---- code in each framework's syntax -----------------------------------------------------------


def _lst(v: Sequence[Any]) -> str:
    return "[" + ", ".join(map(str, v)) + "]"


def _tup(v: Sequence[Any]) -> str:
    return "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"


def _code_torch(s: Solution, cin: str, cout: str) -> str:
    p = s.params
    args = [cin, cout, f"kernel_size={p['kernel_size']}"]
    for name, default in (("stride", 1), ("padding", 0), ("output_padding", 0), ("dilation", 1)):
        if p[name] != default:
            args.append(f"{name}={p[name]}")
    return f"nn.ConvTranspose{s.rank}d({', '.join(args)})"


def _code_keras(s: Solution, cin: str, cout: str) -> str:
    p = s.params
    args = [cout, str(p["kernel_size"])]
    if p["strides"] != 1:
        args.append(f"strides={p['strides']}")
    args.append(f"padding={p['padding']!r}")
    if p["output_padding"] is not None:
        args.append(f"output_padding={p['output_padding']}")
    if p["dilation_rate"] != 1:
        args.append(f"dilation_rate={p['dilation_rate']}")
    return f"layers.Conv{s.rank}DTranspose({', '.join(args)})"


def _code_onnx(s: Solution, cin: str, cout: str) -> str:
    p = s.params
    args = [f"kernel_shape={_lst(p['kernel_shape'])}", f"strides={_lst(p['strides'])}"]
    if any(p["pads"]):
        args.append(f"pads={_lst(p['pads'])}")
    if any(p["output_padding"]):
        args.append(f"output_padding={_lst(p['output_padding'])}")
    if any(v != 1 for v in p["dilations"]):
        args.append(f"dilations={_lst(p['dilations'])}")
    w = _tup([cin, cout, *p["kernel_shape"]])
    return f"helper.make_node('ConvTranspose', ['X', 'W'], ['Y'], {', '.join(args)})  # W: {w}"


def _code_tf_nn(s: Solution, cin: str, cout: str) -> str:
    p = s.params
    shape = _lst(["tf.shape(x)[0]", *p["output_shape"], cout])
    strides = p["strides"][0] if len(set(p["strides"])) == 1 else _lst(p["strides"])
    args = [
        "x",
        "filters",
        f"output_shape={shape}",
        f"strides={strides}",
        f"padding={p['padding']!r}",
    ]
    if any(v != 1 for v in p["dilations"]):
        args.append(f"dilations={_lst(p['dilations'])}")
    f = _tup([*p["kernel_size"], cout, cin])
    return f"tf.nn.conv{s.rank}d_transpose({', '.join(args)})  # filters: {f}"


def _code_jax(s: Solution, cin: str, cout: str) -> str:
    from ._port import weight_transform

    p = s.params
    pad = p["padding"]
    pad_s = repr(pad) if isinstance(pad, str) else _tup([_tup(t) for t in pad])
    # the weight layout and flip come from port's engine: (kernel, in, out), flipped in space
    # (lax.conv_transpose with transpose_kernel=False correlates with the kernel as given)
    to_jax, flip = weight_transform("torch", "jax", s.rank)
    args = ["x", f"jnp.flip(w, {_tup(list(flip))})", f"strides={_tup(p['strides'])}"]
    args.append(f"padding={pad_s}")
    if any(v != 1 for v in p["rhs_dilation"]):
        args.append(f"rhs_dilation={_tup(p['rhs_dilation'])}")
    if p["use_consistent_padding"]:
        args.append("use_consistent_padding=True")
    w = _tup([*p["kernel_size"], cin, cout])
    perm = ", ".join(map(str, to_jax))
    return (
        f"lax.conv_transpose({', '.join(args)})  # x: channels-last; w: {w} (kernel, in, "
        f"out), e.g. torch's weight.permute({perm})"
    )


_CODE = {
    "torch": _code_torch,
    "keras": _code_keras,
    "onnx": _code_onnx,
    "tf_nn": _code_tf_nn,
    "jax": _code_jax,
}


def _no_crop(lo: int, flo: int) -> None:
    return None  # the padding string decides the crop


def _same_mode(x: _Dim, mode: str, lo: int, hi: int, flo: int) -> bool:
    return x.native[0] == mode


@dataclass(frozen=True)
class _Steps:
    """What solve(), mirror() and translate() do differently for each framework."""

    dims: Callable[..., Iterable[_Dim]]  # (i, k, s, d, target, lo, pads): candidates of a dim
    mode_class: Callable[[_Dim], Any]  # dims of one class can be spelled as one layer
    params: Callable[[Sequence[_Dim], bool], dict]  # the layer's arguments in its names
    shape: Callable[..., Any]  # (params, dims, inp, cin, cout): its tconv.shapes check
    mirror_crop: Callable[[int, int], int | None]  # (lo, flo): the crop a mirror pins
    mirror_ok: Callable[..., bool]  # (x, mode, lo, hi, flo): x spells the forward padding


_STEPS = {
    "torch": _Steps(
        lambda i, k, s, d, t, lo, pads: _dims_torch(i, k, s, d, t, lo),
        _no_mode,
        _params_torch,
        _shape_torch,
        lambda lo, flo: lo,
        lambda x, mode, lo, hi, flo: x.native[0] == lo,
    ),
    "keras": _Steps(
        lambda i, k, s, d, t, lo, pads: _dims_keras(i, k, s, d, t),
        _mode_and_op_form,
        _params_keras,
        _shape_keras,
        _no_crop,
        _same_mode,
    ),
    "onnx": _Steps(
        _dims_onnx,
        _no_mode,
        _params_onnx,
        _shape_onnx,
        _no_crop,
        lambda x, mode, lo, hi, flo: (x.native[0], x.native[1]) == (lo, hi),
    ),
    "tf_nn": _Steps(
        lambda i, k, s, d, t, lo, pads: _dims_tf_nn(i, k, s, d, t),
        _mode,
        _params_tf_nn,
        _shape_tf_nn,
        _no_crop,
        _same_mode,
    ),
    "jax": _Steps(
        lambda i, k, s, d, t, lo, pads: _dims_jax(i, k, s, d, t, lo),
        _mode,
        _params_jax,
        _shape_jax,
        # the adjoint crops what the forward convolution padded at the start
        lambda lo, flo: flo,
        lambda x, mode, lo, hi, flo: x.pad_lo == flo,
    ),
}
