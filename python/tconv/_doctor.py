"""Diagnose framework error messages about transposed convolutions.

Each recogniser is a regular expression over the message text the framework really prints
(tests/doctor/messages.json holds the texts, collected by running the frameworks) and a function
that turns the numbers it captures into a cause and a fix. Sizes that the fix proposes come
from tconv.shapes and tconv.solve, never from a formula written here.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _core
from ._bounded import complete, divisors
from ._errors import ShapeError, overflow_as_value_error
from ._rules import output_padding_limit
from .shapes import _ONEDNN_CPUS

__all__ = ["Diagnosis", "doctor"]


@dataclass(frozen=True)
class Diagnosis:
    """What an error message means.

    Attributes
    ----------
    recognised : bool
        False when the message matched none of the known patterns (then cause and fix say so).
    framework : str or None
        "PyTorch", "Keras 3", "Keras 2 (tf.keras)", "Keras", "TensorFlow", "ONNX Runtime", "JAX".
    kind : str
        A short name of the failure: "rank", "channels", "output_padding", "output_size",
        "out_backprop", "negative_output", ...
    cause : str
        What went wrong, with the numbers from the message.
    fix : str
        What to write instead.
    numbers : dict
        The values extracted from the message (ints and tuples).
    message : str
        The message as given.
    options : tuple of dict
        The fix as argument changes, where the message gives enough numbers: per option, per
        spatial dimension, ``padding_less`` / ``kernel_size_more`` (how much to subtract /
        add) and the new ``output_padding``.
    """

    recognised: bool
    framework: str | None
    kind: str
    cause: str
    fix: str
    numbers: dict = field(default_factory=dict)
    message: str = ""
    options: tuple = ()

    def __str__(self) -> str:
        if not self.recognised:
            return _elide_digits(f"not recognised: {self.cause}\n{self.fix}")
        nums = ", ".join(f"{k}={_fmt(v)}" for k, v in self.numbers.items())
        lines = [f"{self.framework}: {self.kind} error"]
        if nums:
            lines.append(f"numbers: {nums}")
        lines.append(f"cause: {self.cause}")
        lines.append(f"fix:   {self.fix}")
        return _elide_digits("\n".join(lines))

    def as_dict(self) -> dict:
        """JSON-ready form (tuples become lists)."""
        return {
            "recognised": self.recognised,
            "framework": self.framework,
            "kind": self.kind,
            "cause": self.cause,
            "fix": self.fix,
            "numbers": {k: list(v) if isinstance(v, tuple) else v for k, v in self.numbers.items()},
            "message": self.message,
            "options": [{k: list(v) for k, v in o.items()} for o in self.options],
        }


_LONG_NUMBER = re.compile(r"\d{41,}")


def _elide_digits(text: str) -> str:
    """Numbers of more than 40 digits as their ends and length: a message may quote one of
    thousands of digits, and a diagnosis repeats it in its numbers, cause and fix."""
    return _LONG_NUMBER.sub(lambda m: f"{m[0][:8]}...{m[0][-8:]} ({len(m[0])} digits)", text)


def _fmt(v: Any) -> str:
    if isinstance(v, tuple):
        return "(" + ", ".join(map(str, v)) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(t) for t in re.findall(r"-?\d+", text))


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ---- shared advice ------------------------------------------------------------------------------


def _repeat(item: str, n: int) -> str:
    """`item` n times, comma-separated; elided past a few (n comes from a message)."""
    if n <= 8:
        return ", ".join([item] * max(n, 0))
    return f"{', '.join([item] * 3)}, ... ({n} in all)"


def _factorings(total: int, rank: int, limit: int = 4) -> list[tuple[int, ...]]:
    """Spatial-equal factorings (h, ..., h, c) of `total`, largest spatial size first (among
    the divisors that are quick to find: the total comes from a message and can be huge)."""
    out: list[tuple[int, ...]] = []
    if not 1 <= rank <= 8:  # a rank from a message that no layer has
        return out
    for h in divisors(total):
        if h**rank <= total and total % (h**rank) == 0:
            out.append((h,) * rank + (total // h**rank,))
    out.sort(key=lambda t: -t[0])
    # the candidate with c == 1 is least useful when others exist: keep it last
    out.sort(key=lambda t: t[-1] == 1)
    return out[:limit]


def _reshape_advice(features: int, rank: int, channels_last: bool) -> str:
    cands = _factorings(features, rank)
    names = ["h", "w"] if rank == 2 else ["d", "h", "w"] if rank == 3 else ["length"]
    prod = "*".join(names + ["c"])
    if channels_last:
        shown = ", ".join(f"Reshape({_fmt(c)})" for c in cands)
        return (
            f"put a Reshape(({', '.join(names)}, c)) with {prod} = {features} in front of "
            f"the layer, e.g. {shown}"
        )
    shown = ", ".join("x.view(N, " + ", ".join(map(str, (c[-1],) + c[:-1])) + ")" for c in cands)
    return (
        f"reshape to (N, c, {', '.join(names)}) with {prod} = {features}, e.g. {shown} "
        f"(c must equal the layer's in_channels)"
    )


def _solve_hint(
    input_size: int | tuple[int, ...], target: int | tuple[int, ...], convention: str, **fixed: Any
) -> str:
    from ._solve import solve

    try:
        sols: list[Any] = list(solve(input_size, target, convention=convention, **fixed))
    except (ShapeError, ValueError, TypeError):
        sols = []
    if not sols:
        return ""
    shown = "; ".join(s.code() for s in sols[:3])
    return f" Layers that do map {_fmt(input_size)} to {_fmt(target)}: {shown}."


def _one(v: tuple[int, ...]) -> int | tuple[int, ...]:
    return v[0] if len(v) == 1 else v


def _tf_accepted(actual: int, kernel: int, stride: int, dilation: int) -> dict[str, list[int]]:
    """The output sizes tf.nn accepts for an input of `actual`, per padding (via tconv.shapes)."""
    res: dict[str, list[int]] = {}
    for pad in ("SAME", "VALID"):
        try:  # the range tconv.shapes.tf_nn accepts
            lo, hi = _core.tf_transposed_range(actual, kernel, stride, dilation, pad)
        except (OverflowError, ValueError, TypeError):
            lo, hi = 1, 0  # numbers beyond 64 bits: no size to suggest
        lo = max(lo, 1)
        res[pad] = [] if hi < lo else [lo] if hi == lo else [lo, hi]
    return res


def _range(v: list[int]) -> str:
    if not v:
        return "none"
    return f"{v[0]}" if len(v) == 1 else f"{v[0]}..{v[-1]}"


# ---- recognisers --------------------------------------------------------------------------------

Handler = Callable[["re.Match[str]", str], Diagnosis]
_RULES: list[tuple[str, re.Pattern[str], Handler]] = []


def _rule(framework: str, pattern: str, flags: int = 0) -> Callable[[Handler], Handler]:
    def deco(fn: Handler) -> Handler:
        _RULES.append((framework, re.compile(pattern, flags | re.S), fn))
        return fn

    return deco


def _d(framework: str, kind: str, cause: str, fix: str, numbers: dict, text: str) -> Diagnosis:
    return Diagnosis(True, framework, kind, cause, fix, numbers, text)


# TensorFlow (tf.nn.conv*_transpose and Keras on the TensorFlow backend) ---------------------------


@_rule(
    "TensorFlow",
    r"(Size|Number of rows|Number of columns) of out_backprop doesn't match "
    r"computed: actual = (\d+), computed = (\d+)(?: spatial_dim: (\d+) input: (\d+) "
    r"filter: (\d+) output: (\d+) stride: (\d+)(?: dilation: (\d+))?)?",
)
def _tf_out_backprop(m: re.Match[str], text: str) -> Diagnosis:
    actual, computed = int(m.group(2)), int(m.group(3))
    nums: dict[str, Any] = {"actual": actual, "computed": computed}
    if m.group(4) is None:
        cause = (
            f"TensorFlow checks a transposed convolution by running the forward "
            f"convolution on the requested output shape: that gives {computed}, but the "
            f"input has {actual} along this dimension"
        )
        fix = (
            "request an output size whose forward convolution gives the input size back "
            "(tconv.shapes.tf_nn lists the accepted sizes in its error)"
        )
        return _d(_framework_tf(text), "out_backprop", cause, fix, nums, text)
    spatial_dim, requested, k, _out, s = (int(m.group(i)) for i in range(4, 9))
    d = int(m.group(9) or 1)
    nums.update(spatial_dim=spatial_dim, requested_output=requested, kernel=k, stride=s, dilation=d)
    cause = (
        f"TensorFlow checks a transposed convolution by running the forward convolution "
        f"(kernel {k}, stride {s}, dilation {d}) on the requested output size {requested} "
        f"along tensor axis {spatial_dim}: that gives {computed}, but the layer's input "
        f"has {actual}; so the requested output size is not one that this input can "
        f"produce"
    )
    accepted = _tf_accepted(actual, k, s, d)
    fix = (
        f"for an input of {actual}, ask for an output size in {_range(accepted['SAME'])} "
        f"with padding='SAME' or {_range(accepted['VALID'])} with padding='VALID'"
    )
    if _is_keras(text):
        fix = (
            "Keras chose an output size that TensorFlow's CPU kernel refuses (Keras' own "
            "shape rule, used on every backend, says it is fine; the JAX and torch "
            "backends run it): " + fix + " — with Keras, use an odd kernel or "
            "output_padding=None with padding='same', or switch the backend"
        )
    return _d(_framework_tf(text), "out_backprop", cause, fix, nums, text)


@_rule("TensorFlow", r"could not create a primitive descriptor for the convolution")
def _tf_onednn(m: re.Match[str], text: str) -> Diagnosis:
    nums: dict[str, Any] = {}
    shape = re.search(r"inputs=tf\.Tensor\(shape=\(([\d, ]+)\)", text)
    if shape:
        nums["input_shape"] = _ints(shape.group(1))
    cause = (
        "TensorFlow's oneDNN CPU kernel refused the configuration without saying why; "
        "the same layer without oneDNN reports the real reason, which is one of: the "
        'requested output size does not map back to the input size ("Size of '
        "out_backprop doesn't match computed\"), channel counts that do not match the "
        "filter, or a dilation > 1 (unsupported by TensorFlow's CPU kernels)"
    )
    fix = (
        "check the layer with tconv.shapes.tf_nn / tconv.shapes.keras (or `tconv shape "
        "...`), which name the failing dimension and the accepted sizes; or rerun with the "
        "environment variable TF_ENABLE_ONEDNN_OPTS=0 to get TensorFlow's precise message, "
        "then `tconv doctor` it"
    )
    if _is_keras(text):
        fix += (
            "; Keras on its JAX or torch backend runs configurations TensorFlow's CPU "
            "kernels refuse (even kernels with padding='same', dilation > 1)"
        )
    return _d(_framework_tf(text), "onednn_refused", cause, fix, nums, text)


@_rule("TensorFlow", r"filter and out_backprop must have the same out_depth")
def _tf_out_depth(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "the input's channel count differs from the filter's last axis: tf.nn's "
        "conv*_transpose takes filters of shape (*kernel, out_channels, in_channels), "
        "and in_channels must equal the input's channel axis"
    )
    fix = (
        "make filters.shape[-1] equal the input's channels (input[..., C] in NHWC), or "
        "transpose a PyTorch-layout weight (C_in, C_out, kh, kw) with "
        "w.transpose(2, 3, 1, 0)"
    )
    return _d(_framework_tf(text), "channels", cause, fix, {}, text)


@_rule("TensorFlow", r"input depth must be evenly divisible by filter depth(?::\s*(\d+) vs (\d+))?")
def _tf_depth(m: re.Match[str], text: str) -> Diagnosis:
    nums: dict[str, Any] = {}
    if m.group(1):
        nums = {"output_channels": int(m.group(1)), "filter_out_channels": int(m.group(2))}
        cause = (
            f"output_shape asks for {m.group(1)} channels but the filter produces "
            f"{m.group(2)} (filters.shape[-2])"
        )
    else:
        cause = (
            "output_shape's channel count differs from the filter's out_channels "
            "(filters.shape[-2]) — for a transposed convolution TensorFlow calls the "
            "output 'input'"
        )
    fix = "set output_shape[-1] = filters.shape[-2] (filters are (*kernel, out, in))"
    return _d(_framework_tf(text), "channels", cause, fix, nums, text)


@_rule("TensorFlow", r"filter must be (\d)-dimensional(?::\s*\[([\d,\s]+)\])?")
def _tf_filter_rank(m: re.Match[str], text: str) -> Diagnosis:
    want = int(m.group(1))
    nums: dict[str, Any] = {"expected_ndim": want}
    got = ""
    if m.group(2):
        nums["filter_shape"] = _ints(m.group(2))
        got = f", got shape {_fmt(nums['filter_shape'])}"
    cause = (
        f"a {want - 2}-D transposed convolution needs a filter of rank {want} "
        f"(*kernel, out_channels, in_channels){got}"
    )
    fix = (
        f"give the filter {want - 2} kernel axes followed by out_channels and in_channels, "
        f"e.g. filters of shape ({_repeat('3', want - 2)}, C_out, C_in)"
    )
    return _d(_framework_tf(text), "rank", cause, fix, nums, text)


# TensorFlow's plain CPU kernels refuse dilation and channels-first layouts; its oneDNN kernels run
# both, and on Linux TensorFlow turns oneDNN on by default only on some CPUs.
_ONEDNN_CAUSE = (
    f"; its oneDNN kernels run it, and on Linux TensorFlow turns oneDNN on by default only on "
    f"CPUs with {_ONEDNN_CPUS}"
)
_ONEDNN_FIX = (
    "set the environment variable TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is imported "
    "(`TF_ENABLE_ONEDNN_OPTS=1 python train.py`, or os.environ['TF_ENABLE_ONEDNN_OPTS'] = '1' "
    "above `import tensorflow`)"
)


@_rule("TensorFlow", r"Current CPU implementations do not yet support dilation rates larger than 1")
def _tf_dilation(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "TensorFlow's CPU kernels without oneDNN do not implement dilation > 1 for transposed "
        "convolution" + _ONEDNN_CAUSE
    )
    fix = (
        _ONEDNN_FIX + "; or run it on a GPU, use Keras with the JAX or torch backend, or "
        "dilate the kernel yourself (insert dilation-1 zeros between its taps: a kernel of "
        "dilation*(k-1)+1 taps with dilation 1 gives the same result)"
    )
    return _d(_framework_tf(text), "dilation_cpu", cause, fix, {}, text)


@_rule("TensorFlow", r"only supports ND?HWC")
def _tf_nhwc(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "TensorFlow's CPU kernels without oneDNN run transposed convolutions channels-last only"
        + _ONEDNN_CAUSE
    )
    fix = (
        _ONEDNN_FIX + "; or use data_format='NHWC' ('NDHWC' in 3-D, 'NWC' in 1-D): transpose "
        "the input with tf.transpose(x, [0, 2, 3, 1]) ([0, 2, 3, 4, 1] in 3-D, [0, 2, 1] in "
        "1-D), give output_shape in that order (N, H, W, C), and transpose the output back "
        "with [0, 3, 1, 2] ([0, 4, 1, 2, 3] in 3-D, [0, 2, 1] in 1-D); or run on a GPU"
    )
    return _d(_framework_tf(text), "data_format_cpu", cause, fix, {}, text)


@_rule(
    "TensorFlow", r"Current CPU implementation does not yet support dilation rates larger than 1"
)
def _tf_dilation_3d(m: re.Match[str], text: str) -> Diagnosis:
    return _tf_dilation(m, text)


@_rule("TensorFlow", r"Expected string for argument 'padding' not (\[[\[\]\d,\s]*\])")
def _tf_padding_pairs(m: re.Match[str], text: str) -> Diagnosis:
    pairs = m.group(1)
    cause = (
        f"this tf.nn transposed convolution takes padding='SAME' or 'VALID' only, not "
        f"explicit pairs {pairs} (of the tf.nn transposed ops only conv2d_transpose "
        f"accepts explicit padding)"
    )
    fix = (
        "use padding='VALID' with output_shape = the wanted size + before + after per "
        "spatial axis and slice the pairs' cells off the result (y[:, before:before + "
        "wanted, :] per spatial axis), or reshape to 2-D and use tf.nn.conv2d_transpose "
        "with the explicit pairs"
    )
    return _d(_framework_tf(text), "padding", cause, fix, {"padding": pairs}, text)


@_rule(
    "TensorFlow",
    r"out_backprop and filter_sizes must have the same number of channels\. "
    r"Got (\d+) for out_backprop and (\d+) for filter_sizes",
)
def _tf_channels_3d(m: re.Match[str], text: str) -> Diagnosis:
    got, want = int(m.group(1)), int(m.group(2))
    cause = (
        f"the input has {got} channels but the filters expect {want} (filters are "
        f"(*kernel, out_channels, in_channels); TensorFlow calls the transposed op's input "
        f"'out_backprop')"
    )
    fix = f"use filters whose last axis is {got}, or feed an input with {want} channels"
    return _d(
        _framework_tf(text),
        "channels",
        cause,
        fix,
        {"input_channels": got, "filter_in_channels": want},
        text,
    )


@_rule(
    "TensorFlow",
    r"input and filter_sizes must have the same number of channels\. "
    r"Got (\d+) for input and (\d+) for filter_sizes",
)
def _tf_out_channels_3d(m: re.Match[str], text: str) -> Diagnosis:
    got, want = int(m.group(1)), int(m.group(2))
    cause = (
        f"output_shape asks for {got} channels but the filters produce {want} "
        f"(filters.shape[-2]; TensorFlow calls the requested output 'input')"
    )
    fix = f"set output_shape[-1] = {want} (filters are (*kernel, out, in)), or change the filters"
    return _d(
        _framework_tf(text),
        "channels",
        cause,
        fix,
        {"output_channels": got, "filter_out_channels": want},
        text,
    )


@_rule("TensorFlow", r"output depth must be evenly divisible by number of groups: (\d+) vs (\d+)")
def _tf_groups_depth(m: re.Match[str], text: str) -> Diagnosis:
    a, b = int(m.group(1)), int(m.group(2))
    cause = (
        f"output_shape's channel count and the filters disagree: TensorFlow infers "
        f"groups from them and {a} channels do not split into {b} groups"
    )
    fix = "set output_shape[-1] = filters.shape[-2] (filters are (*kernel, out, in))"
    return _d(_framework_tf(text), "channels", cause, fix, {"depth": a, "groups": b}, text)


@_rule(
    "TensorFlow",
    r"Gradients for grouped convolutions are not supported on CPU.*?Computed "
    r"input depth (\d+) doesn't match filter input depth (\d+)",
)
def _tf_groups_cpu(m: re.Match[str], text: str) -> Diagnosis:
    a, b = int(m.group(1)), int(m.group(2))
    cause = (
        f"output_shape asks for {a} channels but the filters produce {b} "
        f"(filters.shape[-2]); TensorFlow reads the mismatch as a grouped convolution, "
        f"which its CPU kernels do not run"
    )
    fix = f"set output_shape[-1] = {b} (filters are (*kernel, out, in)), or change the filters"
    return _d(
        _framework_tf(text),
        "channels",
        cause,
        fix,
        {"output_channels": a, "filter_out_channels": b},
        text,
    )


@_rule(
    "TensorFlow",
    r"input and out_backprop must have the same batch size\. Input batch: "
    r"(\d+), outbackprop batch: (\d+)",
)
def _tf_batch(m: re.Match[str], text: str) -> Diagnosis:
    want, got = int(m.group(1)), int(m.group(2))
    cause = (
        f"output_shape[0] is {want} but the input's batch is {got} (TensorFlow calls the "
        f"requested output 'input' and the transposed op's input 'out_backprop')"
    )
    fix = f"use output_shape[0] = {got}, or tf.shape(x)[0] so that it follows the input"
    return _d(
        _framework_tf(text), "batch", cause, fix, {"output_batch": want, "input_batch": got}, text
    )


@_rule("TensorFlow", r"input and filter must have the same depth: (\d+) vs (\d+)")
def _tf_same_depth(m: re.Match[str], text: str) -> Diagnosis:
    a, b = int(m.group(1)), int(m.group(2))
    cause = f"output_shape asks for {a} channels but the filters produce {b} (filters.shape[-2])"
    fix = f"set output_shape[-1] = {b} (filters are (*kernel, out, in)), or change the filters"
    return _d(
        _framework_tf(text),
        "channels",
        cause,
        fix,
        {"output_channels": a, "filter_out_channels": b},
        text,
    )


def _is_keras(text: str) -> bool:
    return bool(re.search(r"Conv\dDTranspose|conv\dd_transpose_?\d*' \(type", text))


def _framework_tf(text: str) -> str:
    if re.search(r"when calling layer '\w+' \(type Conv\dDTranspose\)", text):
        return "Keras 2 (tf.keras) on TensorFlow"
    if re.search(r"when calling Conv\dDTranspose\.call\(\)", text):
        return "Keras 3 on TensorFlow"
    return "TensorFlow"


@_rule(
    "TensorFlow",
    r"`output_shape` must be of length 3, 4 or 5\. Received: "
    r"output_shape=\[([\d, ]*)\] of length (\d+)",
)
def _tf_output_shape_len(m: re.Match[str], text: str) -> Diagnosis:
    got = _ints(m.group(1))
    cause = (
        f"tf.nn.conv_transpose takes the full output shape (batch, *spatial, channels); "
        f"{_fmt(got)} has {len(got)} entries"
    )
    fix = (
        "pass output_shape with rank + 2 entries: [batch, *spatial sizes, out_channels] "
        "(channels-last), e.g. [tf.shape(x)[0], "
        + ", ".join(map(str, got[:3] or ["H"]))
        + ", out_channels] if those were the spatial sizes"
    )
    return _d("TensorFlow", "rank", cause, fix, {"output_shape": got}, text)


@_rule(
    "TensorFlow",
    r"Value for attr 'padding' of \"(\w+)\" is not in the list of allowed "
    r"values",
)
def _tf_padding_case(m: re.Match[str], text: str) -> Diagnosis:
    given = m.group(1)
    upper = given.upper()
    cause = (
        f"tf.nn's padding strings are upper case: {given!r} is not one of them (Keras "
        f"layers take lower case, tf.nn does not)"
    )
    fix = (
        f"use padding={upper!r} in tf.nn.conv_transpose"
        if upper in ("SAME", "VALID")
        else "use padding='SAME' or 'VALID' (or explicit pairs with conv2d_transpose)"
    )
    return _d("TensorFlow", "padding", cause, fix, {"padding": given}, text)


# PyTorch ----------------------------------------------------------------------------------------


@_rule("PyTorch", r"could not construct a memory descriptor using a format tag")
def _torch_onednn(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "PyTorch's oneDNN CPU kernel refused the shapes without saying why; for "
        "ConvTranspose this is an output with no cells (padding that crops every cell of "
        "a spatial dimension) or a zero-sized input or kernel, which PyTorch's own checks "
        "let through"
    )
    fix = (
        "check the layer with tconv.shapes.torch (or `tconv shape torch ...`), which names "
        "the empty dimension and the largest padding that keeps it; reduce padding, or "
        "raise output_padding/kernel_size"
    )
    return _d("PyTorch", "nonpositive_output", cause, fix, {}, text)


@_rule(
    "PyTorch",
    r"output padding must be smaller than either stride or dilation, but got "
    r"((?:output_padding_\w+: -?\d+\s*)+)((?:stride_\w+: \d+\s*)+)((?:dilation_\w+: \d+\s*)*)",
)
def _torch_output_padding(m: re.Match[str], text: str) -> Diagnosis:
    op, s, d = _ints(m.group(1)), _ints(m.group(2)), _ints(m.group(3)) or None
    names = re.findall(r"output_padding_(\w+):", m.group(1))
    d = (d or ()) + (1,) * (len(op) - len(d or ()))
    nums = {"output_padding": op, "stride": s, "dilation": d}
    bad = [i for i in range(len(op)) if op[i] >= output_padding_limit(s[i], d[i])]
    parts = [
        f"{names[i]}: output_padding {op[i]} >= max(stride {s[i]}, dilation {d[i]})" for i in bad
    ]
    cause = (
        "output_padding only picks one of the max(stride, dilation) output sizes that "
        "all map back to the same input under the forward convolution, so it must be "
        "smaller than max(stride, dilation); " + "; ".join(parts)
    )
    # The same length from other arguments: one unit less padding adds 2 cells, one more
    # kernel tap adds `dilation` cells; what is left must fit below max(stride, dilation).
    pad_less, pad_op, kern_more, kern_op = [], [], [], []
    for i in range(len(op)):
        top = output_padding_limit(s[i], d[i]) - 1
        t = max(0, -(-(op[i] - top) // 2))
        pad_less.append(t)
        pad_op.append(op[i] - 2 * t)
        e = max(0, -(-(op[i] - top) // d[i]))
        kern_more.append(e)
        kern_op.append(op[i] - d[i] * e)
    options = []
    words = []
    if all(v >= 0 for v in pad_op):
        options.append({"padding_less": tuple(pad_less), "output_padding": tuple(pad_op)})
        words.append(
            f"padding={_per_dim_words('padding', '-', pad_less, names)} with "
            f"output_padding={_one_or_tuple(pad_op)} (one unit less padding adds 2 "
            f"cells)"
        )
    options.append({"kernel_size_more": tuple(kern_more), "output_padding": tuple(kern_op)})
    words.append(
        f"kernel_size={_per_dim_words('kernel_size', '+', kern_more, names)} with "
        f"output_padding={_one_or_tuple(kern_op)} (one more tap adds dilation cells)"
    )
    fix = (
        "for the same output size use "
        + "; or ".join(words)
        + "; `tconv solve INPUT TARGET` lists every layer that reaches a size"
    )
    if names == ["height", "width"] and (op[0], s[0], d[0]) == (0, 1, 1):
        fix += (
            "; a ConvTranspose1d reports its one dimension as width (PyTorch runs it as "
            "2-d): for it use the width values"
        )
    return Diagnosis(True, "PyTorch", "output_padding", cause, fix, nums, text, tuple(options))


def _one_or_tuple(v: list[int] | tuple[int, ...]) -> str:
    return str(v[0]) if len(set(v)) == 1 else _fmt(tuple(v))


def _per_dim_words(name: str, sign: str, deltas: list[int], dims: list[str]) -> str:
    """`padding - 1`, or per dimension when they differ: `(padding_height - 1, padding_width)`."""
    if len(set(deltas)) == 1:
        return f"{name} {sign} {deltas[0]}" if deltas[0] else name
    return (
        "("
        + ", ".join(f"{name}_{n} {sign} {v}" if v else f"{name}_{n}" for n, v in zip(dims, deltas))
        + ")"
    )


@_rule(
    "PyTorch",
    r"Given groups=(\d+), expected weight to be at least 1 at dimension 0, but "
    r"got weight of size \[([\d, ]+)\] instead",
)
def _torch_weight_empty(m: re.Match[str], text: str) -> Diagnosis:
    w = _ints(m.group(2))
    cause = (
        f"the layer has in_channels=0: its weight {_fmt(w)} (C_in, C_out/groups, *kernel) "
        f"is empty, and PyTorch refuses it whatever the input"
    )
    fix = (
        "build the layer with in_channels equal to the input's channel count (x.shape[1]); "
        "a 0 there usually comes from a computed channel count, e.g. an integer division"
    )
    return _d("PyTorch", "channels", cause, fix, {"weight_shape": w}, text)


@_rule(
    "PyTorch",
    r"Only zero batch or zero channel inputs are supported, but got input shape: "
    r"\[([\d, ]+)\]",
)
def _torch_empty_input(m: re.Match[str], text: str) -> Diagnosis:
    shape = _ints(m.group(1))
    empty = [i - 2 for i, v in enumerate(shape) if i >= 2 and v == 0]
    cause = (
        f"the input {_fmt(shape)} has a spatial size of 0 (spatial axis "
        f"{', '.join(map(str, empty))}) but a non-empty batch; PyTorch only passes empty "
        f"batches through (a ConvTranspose1d shows up here with an extra axis of 1)"
    )
    fix = (
        "check the layer before this one: it produced an empty spatial axis (too much "
        "padding or pooling for the size); `tconv explain` on that layer shows where the "
        "cells go, and `tconv mirror` sizes a decoder layer so that none is empty"
    )
    return _d("PyTorch", "empty_input", cause, fix, {"input_shape": shape}, text)


@_rule(
    "PyTorch",
    r"Expected (\d)D \(unbatched\) or (\d)D \(batched\) input to "
    r"conv_transpose(\d)d, but got input of size: \[([\d, ]*)\]",
)
def _torch_rank(m: re.Match[str], text: str) -> Diagnosis:
    unb, bat, rank = int(m.group(1)), int(m.group(2)), int(m.group(3))
    shape = _ints(m.group(4))
    nums = {"expected_ndim": (unb, bat), "input_shape": shape, "spatial_rank": rank}
    cause = (
        f"conv_transpose{rank}d takes (N, C_in, *{rank} spatial) or unbatched "
        f"(C_in, *{rank} spatial), i.e. {bat}-D or {unb}-D, but the input is "
        f"{len(shape)}-D {_fmt(shape)}"
    )
    if len(shape) == 2:
        fix = (
            f"a flat (N, features) tensor (after a Linear layer) needs its spatial axes "
            f"back: {_reshape_advice(shape[1], rank, channels_last=False)}"
        )
    elif len(shape) > bat:
        extra = len(shape) - bat
        fix = (
            f"the input has {extra} axis(es) too many: fold the extra leading axes into "
            f"the batch (x.flatten(0, {extra}) and unflatten afterwards), or use "
            f"ConvTranspose{rank + extra}d if they are spatial"
        )
    else:
        spatial = ", ".join(["H", "W", "D"][:rank] if rank <= 3 else ["..."])
        fix = f"add the missing axes: reshape to (N, C_in, {spatial}) with the layer's in_channels"
        if len(shape) == rank:  # the spatial data alone
            fix += (
                f"; spatial data alone {_fmt(shape)} is one sample of one channel as "
                f"x[None, None] (for a layer with in_channels=1)"
            )
    return _d("PyTorch", "rank", cause, fix, nums, text)


@_rule(
    "PyTorch",
    r"Given transposed=1, weight of size \[([\d, ]+)\], expected input\[([\d, ]+)\] "
    r"to have (\d+) channels, but got (\d+) channels instead",
)
def _torch_channels(m: re.Match[str], text: str) -> Diagnosis:
    w, x = _ints(m.group(1)), _ints(m.group(2))
    want, got = int(m.group(3)), int(m.group(4))
    nums = {"weight_shape": w, "input_shape": x, "expected_channels": want, "got_channels": got}
    if len(x) == len(w) and x[0] == 1 and len(x) >= 3 and x[2] == want:
        cause = (
            f"the input has one axis too few for a {len(w) - 2}-D layer: PyTorch took it "
            f"as unbatched and added a batch axis, giving {_fmt(x)}, whose axis 1 ({got}) "
            f"is then read as the channels (expected {want})"
        )
        fix = (
            f"pass a batched (N, {want}, *spatial) input of rank {len(w)}, or use "
            f"ConvTranspose{len(w) - 3}d for {len(w) - 3}-D data"
        )
        return _d("PyTorch", "rank", cause, fix, nums, text)
    cause = (
        f"the layer was built for in_channels={want} (weight {_fmt(w)} is (C_in, "
        f"C_out/groups, *kernel)) but the input {_fmt(x)} has {got} channels on axis 1"
    )
    fix = f"use in_channels={got} in the layer, or feed it an input with {want} channels"
    if want in x[2:]:
        fix += (
            f"; your input has {want} on a later axis: if it is channels-last, move the "
            f"channels first with x.permute(0, {len(x) - 1}, "
            f"{', '.join(str(i) for i in range(1, len(x) - 1))})"
        )
    return _d("PyTorch", "channels", cause, fix, nums, text)


@_rule("PyTorch", r"(in|out)_channels must be divisible by groups")
def _torch_groups(m: re.Match[str], text: str) -> Diagnosis:
    which = m.group(1)
    cause = (
        f"grouped convolution splits the channels into equal groups: {which}_channels % groups != 0"
    )
    fix = (
        "choose groups that divides both in_channels and out_channels (groups=1, or "
        "groups=in_channels for depthwise with out_channels a multiple of it)"
    )
    return _d("PyTorch", "groups", cause, fix, {}, text)


@_rule(
    "PyTorch",
    r"requested an output size of [\[(]([\d, ]+)[\])], but valid sizes range from "
    r"\[([\d, ]+)\] to \[([\d, ]+)\] \(for an input of (?:torch\.Size\()?\[([\d, ]+)\]\)?\)",
)
def _torch_output_size(m: re.Match[str], text: str) -> Diagnosis:
    want, lo, hi, inp = (_ints(m.group(i)) for i in range(1, 5))
    nums = {"requested": want, "min": lo, "max": hi, "input": inp}
    bad = [i for i in range(len(want)) if not lo[i] <= want[i] <= hi[i]]
    cause = (
        f"output_size can only pick among the sizes this layer produces by varying "
        f"output_padding: {_fmt(lo)} to {_fmt(hi)} for an input of {_fmt(inp)}; "
        f"{_fmt(want)} is outside" + (f" in dimension {bad[0]}" if bad else "")
    )
    fix = (
        "change stride, padding or kernel so that the range covers the wanted size, or crop "
        "the result." + _solve_hint(_one(inp), _one(want), "torch")
    )
    return _d("PyTorch", "output_size", cause, fix, nums, text)


@_rule(
    "PyTorch",
    r"ConvTranspose(\d)D: for (\d)D input, output_size must have (\d) or (\d) "
    r"elements \(got (\d+)\)",
)
def _torch_output_size_len(m: re.Match[str], text: str) -> Diagnosis:
    rank, got = int(m.group(1)), int(m.group(5))
    nums = {"spatial_rank": rank, "got": got}
    cause = (
        f"output_size gives {got} values; a {rank}-D layer needs the {rank} spatial sizes "
        f"(or the full shape of {int(m.group(4))})"
    )
    fix = f"pass output_size=({', '.join(['H', 'W', 'D'][:rank])}) (the spatial sizes only)"
    return _d("PyTorch", "output_size", cause, fix, nums, text)


@_rule("PyTorch", r"conv_transpose(\d)d\(\): argument 'padding'.* must be tuple of ints")
def _torch_padding_str(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "PyTorch's transposed convolutions have no padding='same' or 'valid' (only "
        "numbers: cells cropped from each side)"
    )
    fix = (
        "padding='valid' is padding=0 (with a kernel smaller than the stride Keras' "
        "'valid' also adds stride - kernel cells: output_padding=stride - kernel). For "
        "Keras' 'same' size (output = input * stride) "
        "choose padding and output_padding per dimension, e.g. kernel 3, stride 2: "
        "padding=1, output_padding=1; Keras' own 'same' cells are another window (for "
        "kernel 3, stride 2: padding=0, then y[..., :-1]): `tconv explain keras --input "
        "... --kernel ... --strides ... --padding same` (or tconv.translate) prints the "
        "PyTorch layer or crop for any Keras layer"
    )
    return _d("PyTorch", "padding_string", cause, fix, {}, text)


@_rule(
    "PyTorch",
    r"Given input size per channel: \(([\d x]+)\)\. Calculated output size per "
    r"channel: \(([-\d x]+)\)\. Output size is too small",
)
def _torch_too_small(m: re.Match[str], text: str) -> Diagnosis:
    inp, out = _ints(m.group(1)), _ints(m.group(2))
    nums = {"input": inp, "output": out}
    cause = (
        f"the padding crops more cells than the transposed convolution produces: "
        f"input {_fmt(inp)} gives {_fmt(out)}"
    )
    # one unit less padding gives 2 cells back: enough units for one cell
    less = tuple(max(0, -(-(1 - o) // 2)) for o in out)
    fix = (
        f"reduce padding by {_one_or_tuple(less)} (per dimension; each unit crops 2 cells) "
        f"to get {_fmt(tuple(o + 2 * t for o, t in zip(out, less)))} cells, or increase "
        f"the kernel or stride; `tconv explain torch ...` shows the arithmetic"
    )
    if len(out) == 2 and less[0] == 0:
        fix += (
            "; a ConvTranspose1d shows up here as 2-d with a first size of 1: for it use "
            "the second value"
        )
    return _d("PyTorch", "negative_output", cause, fix, nums, text)


@_rule("PyTorch", r"negative padding is not supported")
def _torch_neg_pad(m: re.Match[str], text: str) -> Diagnosis:
    cause = "padding must be >= 0 (it is the number of cells cropped from each side)"
    fix = (
        "to enlarge the output use output_padding (< max(stride, dilation)) or a larger "
        "kernel, or pad the result with torch.nn.functional.pad"
    )
    return _d("PyTorch", "negative_padding", cause, fix, {}, text)


@_rule("PyTorch", r"kernel size should be greater than zero, but got ((?:kernel_\w+: -?\d+\s*)+)")
def _torch_kernel_zero(m: re.Match[str], text: str) -> Diagnosis:
    k = _ints(m.group(1))
    cause = f"kernel_size {_fmt(k)} has a dimension <= 0; every kernel has at least one tap"
    fix = (
        "use kernel_size >= 1 in every dimension (a 0 usually comes from a computed size, "
        "e.g. an integer division)"
    )
    return _d("PyTorch", "kernel_size", cause, fix, {"kernel_size": k}, text)


@_rule("PyTorch", r"non-empty \dD or \dD weight tensor expected, but got: \[([\d, ]+)\]")
def _torch_weight_zero(m: re.Match[str], text: str) -> Diagnosis:
    w = _ints(m.group(1))
    cause = (
        f"the weight {_fmt(w)} (C_in, C_out/groups, *kernel) is empty: a layer built "
        f"with out_channels=0 or a kernel size of 0"
    )
    fix = (
        "build the layer with out_channels >= 1 and kernel_size >= 1 (a 0 usually comes "
        "from a computed size, e.g. an integer division)"
    )
    return _d("PyTorch", "channels", cause, fix, {"weight_shape": w}, text)


@_rule("PyTorch", r"non-positive stride is not supported")
def _torch_stride(m: re.Match[str], text: str) -> Diagnosis:
    return _d(
        "PyTorch",
        "stride",
        "stride must be >= 1",
        "use stride=1 or more (stride is the upsampling factor)",
        {},
        text,
    )


# Keras ------------------------------------------------------------------------------------------


@_rule(
    "Keras",
    r"Input 0 (?:with name '[^']*' )?of layer [\"'](\w+)[\"'] is incompatible with "
    r"the layer: expected (min_)?ndim=(\d+), found ndim=(\d+)\. Full shape received: "
    r"\(([^)]*)\)",
)
def _keras_rank(m: re.Match[str], text: str) -> Diagnosis:
    layer = m.group(1)
    want, found = int(m.group(3)), int(m.group(4))
    shape = tuple(
        None if t.strip() == "None" else int(t) for t in m.group(5).split(",") if t.strip()
    )
    rank = want - 2
    nums = {"layer": layer, "expected_ndim": want, "found_ndim": found, "shape": shape}
    kind_layer = f"Conv{rank}DTranspose" if rank in (1, 2, 3) else "this layer"
    cause = (
        f"{kind_layer} '{layer}' needs inputs of rank {want} (batch, "
        f"{', '.join(['d', 'h', 'w'][3 - rank :]) if rank <= 3 else '*spatial'}, channels) "
        f"but got rank {found}, shape {_fmt(shape)}"
    )
    features = [v for v in shape[1:]]
    if found == 2 and features and isinstance(features[0], int):
        fix = (
            f"a Dense or Flatten output has no spatial axes: "
            f"{_reshape_advice(features[0], rank, channels_last=True)}"
        )
    elif found < want and all(isinstance(v, int) for v in features):
        fix = (
            f"add the missing axis(es): e.g. Reshape({_fmt(tuple(features) + (1,))}) for a "
            f"single channel, or Reshape to (spatial..., channels) with the same number of "
            f"elements"
        )
    else:
        fix = (
            f"reshape the input to rank {want} (batch, spatial..., channels), e.g. with a "
            f"Reshape layer"
        )
    return _d(_keras_version(text), "rank", cause, fix, nums, text)


@_rule("Keras", r"Inputs should have rank (\d)\. Received input_shape=\(([^)]*)\)")
def _keras2_rank_high(m: re.Match[str], text: str) -> Diagnosis:
    want = int(m.group(1))
    shape = tuple(
        None if t.strip() == "None" else int(t) for t in m.group(2).split(",") if t.strip()
    )
    nums = {"expected_ndim": want, "shape": shape}
    return _d(
        "Keras 2 (tf.keras)",
        "rank",
        _rank_high_cause(want, shape),
        _rank_high_fix(want, shape),
        nums,
        text,
    )


@_rule(
    "Keras",
    r"Exception encountered when calling Conv(\d)DTranspose\.call\(\).*tuple index "
    r"out of range.*shape=\(([^)]*)\)",
)
def _keras3_rank_high(m: re.Match[str], text: str) -> Diagnosis:
    want = int(m.group(1)) + 2
    shape = tuple(
        None if t.strip() == "None" else int(t) for t in m.group(2).split(",") if t.strip()
    )
    nums = {"expected_ndim": want, "shape": shape}
    return _d(
        "Keras 3", "rank", _rank_high_cause(want, shape), _rank_high_fix(want, shape), nums, text
    )


def _rank_high_cause(want: int, shape: tuple) -> str:
    return (
        f"Conv{want - 2}DTranspose takes inputs of rank {want} (batch, spatial..., "
        f"channels), the input has rank {len(shape)}: {_fmt(shape)} (Keras 3 only checks "
        f"min_ndim, so the error surfaces later, as 'tuple index out of range')"
    )


def _rank_high_fix(want: int, shape: tuple) -> str:
    if len(shape) == want + 1:
        return (
            "wrap the layer in TimeDistributed(...) if axis 1 is time, or use "
            f"Conv{want - 1}DTranspose if all middle axes are spatial"
        )
    return f"reshape the input to rank {want}"


def _keras_version(text: str) -> str:
    if (
        re.search(r"with name '[^']*' of layer '", text)
        or "`output_padding` must be strictly" in text
        or ".call()" in text
        or "one of {'" in text
        or "Received kernel_size=" in text
    ):
        return "Keras 3"
    if (
        re.search(r"of layer \"\w+\"", text)
        or "(type Conv" in text
        or '"causal"' in text
        or re.search(r"integers\. Received: \(", text)
    ):
        return "Keras 2 (tf.keras)"
    return "Keras"


@_rule(
    "Keras",
    r"expected axis (-?\d+) of input shape to have value (\d+), but received input "
    r"with shape \(([^)]*)\)",
)
def _keras_channels(m: re.Match[str], text: str) -> Diagnosis:
    want = int(m.group(2))
    shape = tuple(
        None if t.strip() == "None" else int(t) for t in m.group(3).split(",") if t.strip()
    )
    nums = {"axis": int(m.group(1)), "expected_channels": want, "shape": shape}
    cause = (
        f"the layer was built (first called) on inputs with {want} channels; this input "
        f"{_fmt(shape)} has {shape[-1] if shape else '?'}"
    )
    fix = (
        f"use a separate layer instance for inputs with {shape[-1] if shape else 'other'} "
        f"channels, or feed {want} channels; with data_format='channels_first' data, set "
        f"data_format='channels_first' on the layer"
    )
    return _d(_keras_version(text), "channels", cause, fix, nums, text)


@_rule(
    "Keras",
    r"`output_padding` must be strictly less than `strides` for all dimensions\..*"
    r"Received: output_padding=(\([\d, ]*\)), strides=(\([\d, ]*\))",
)
def _keras3_output_padding(m: re.Match[str], text: str) -> Diagnosis:
    return _keras_op(_ints(m.group(1)), _ints(m.group(2)), "Keras 3", text)


@_rule(
    "Keras",
    r"Strides must be greater than output padding\. Received strides=(\([\d, ]*\)), "
    r"output_padding=(\([\d, ]*\))",
)
def _keras2_output_padding(m: re.Match[str], text: str) -> Diagnosis:
    return _keras_op(_ints(m.group(2)), _ints(m.group(1)), "Keras 2 (tf.keras)", text)


def _keras_op(op: tuple, s: tuple, framework: str, text: str) -> Diagnosis:
    nums = {"output_padding": op, "strides": s}
    cause = (
        f"Keras requires output_padding < strides in every dimension (got output_padding="
        f"{_fmt(op)}, strides={_fmt(s)}): output_padding only chooses among the 'strides' "
        f"output sizes that map back to the same input"
    )
    fixed = tuple(min(o, st - 1) for o, st in zip(op, s))
    fix = (
        f"use output_padding={_fmt(fixed)} or output_padding=None (Keras' own choice); "
        f"for a bigger output increase the kernel or strides — `tconv solve INPUT TARGET "
        f"--convention keras` lists every layer that reaches a size"
    )
    return _d(framework, "output_padding", cause, fix, nums, text)


@_rule(
    "Keras",
    r"`strides > 1` not supported in conjunction with `dilation_rate > 1`\. Received: "
    r"strides=(\([\d, ]*\)) and dilation_rate=(\([\d, ]*\))",
)
def _keras_stride_dil(m: re.Match[str], text: str) -> Diagnosis:
    s, d = _ints(m.group(1)), _ints(m.group(2))
    nums = {"strides": s, "dilation_rate": d}
    cause = "Keras' transposed convolutions take strides > 1 or dilation_rate > 1, not both"
    fix = (
        "use dilation_rate=1 with a larger kernel (a dilated kernel of k taps spans "
        "dilation*(k-1)+1 cells), or split into a strided layer and a dilated layer; "
        "tconv.conv_transpose and PyTorch's ConvTranspose accept both"
    )
    return _d(_keras_version(text), "stride_and_dilation", cause, fix, nums, text)


@_rule(
    "Keras",
    r"Expected the (\d) dimensions of the `dilation_rate` argument to be equal to "
    r"each other\. Received: dilation_rate=(\([\d, ]*\))",
)
def _keras2_unequal_dil(m: re.Match[str], text: str) -> Diagnosis:
    d = _ints(m.group(2))
    cause = f"tf.keras' Conv2DTranspose needs the same dilation in every dimension, got {_fmt(d)}"
    fix = (
        "use one dilation for all dimensions, or Keras 3 / PyTorch, which accept "
        "per-dimension dilation"
    )
    return _d("Keras 2 (tf.keras)", "dilation", cause, fix, {"dilation_rate": d}, text)


@_rule("Keras", r"The `padding` argument must be a list/tuple or one of .*Received: (\S+)")
def _keras_padding(m: re.Match[str], text: str) -> Diagnosis:
    got = m.group(1)
    cause = f"Keras' transposed convolutions take padding='valid' or 'same', not {got!r}"
    fix = (
        "use 'same' (output = input * strides) or 'valid' (output = input * strides + "
        "max(kernel - strides, 0)); for any other crop use 'valid' followed by a Cropping "
        "layer, or PyTorch-style numbers with tconv.conv_transpose"
    )
    return _d(_keras_version(text), "padding_string", cause, fix, {"padding": got}, text)


@_rule(
    "Keras",
    r"The `kernel_size` argument must be a tuple of (\d) integers\. Received"
    r"(?: kernel_size=|: )(\([\d, ]*\))",
)
def _keras_kernel(m: re.Match[str], text: str) -> Diagnosis:
    rank = int(m.group(1))
    k = _ints(m.group(2))
    cause = f"Conv{rank}DTranspose needs {rank} kernel sizes, got {len(k)}: {_fmt(k)}"
    fix = (
        f"pass kernel_size as one int or {rank} ints, or use Conv{len(k)}DTranspose for "
        f"{len(k)}-D data"
    )
    return _d(
        _keras_version(text),
        "kernel_size",
        cause,
        fix,
        {"spatial_rank": rank, "kernel_size": k},
        text,
    )


# ONNX Runtime -----------------------------------------------------------------------------------


@_rule(
    "ONNX Runtime",
    r"filter number not equal to input channel number\. filter_number: (\d+) "
    r"num_input_channels: (\d+)",
)
def _ort_channels(m: re.Match[str], text: str) -> Diagnosis:
    w, x = int(m.group(1)), int(m.group(2))
    cause = (
        f"W (C_in, C_out/group, *kernel) has C_in = {w}, but X (N, C, *spatial) has {x} channels"
    )
    fix = (
        f"give W a first axis of {x}, or X {w} channels; ONNX is channels-first: a "
        f"channels-last X must be transposed to (N, C, *spatial)"
    )
    return _d(
        "ONNX Runtime", "channels", cause, fix, {"filter_number": w, "input_channels": x}, text
    )


@_rule(
    "ONNX Runtime",
    r"Input X must have at least 3 dimensions \(N x C x D1\.\.\.Dn\)\. X: "
    r"\{([\d,]*)\}",
)
def _ort_rank_x(m: re.Match[str], text: str) -> Diagnosis:
    x = _ints(m.group(1))
    cause = f"X must be (N, C, D1, ..., Dn); got {_fmt(x)}"
    fix = "insert a Reshape to (N, C, spatial...) before the ConvTranspose" + (
        f": {_reshape_advice(x[1], 2, channels_last=False)}" if len(x) == 2 else ""
    )
    return _d("ONNX Runtime", "rank", cause, fix, {"input_shape": x}, text)


@_rule("ONNX Runtime", r"X num_dims does not match W num_dims\. X: \{([\d,]*)\} W: \{([\d,]*)\}")
def _ort_rank_xw(m: re.Match[str], text: str) -> Diagnosis:
    x, w = _ints(m.group(1)), _ints(m.group(2))
    cause = (
        f"X {_fmt(x)} and W {_fmt(w)} must have the same rank: X is (N, C, *spatial), W "
        f"is (C_in, C_out/group, *kernel)"
    )
    fix = (
        f"give W {len(x) - 2} kernel axes (shape ({x[1] if len(x) > 1 else 'C_in'}, C_out, "
        f"{_repeat('k', max(len(x) - 2, 1))}))"
    )
    return _d("ONNX Runtime", "rank", cause, fix, {"input_shape": x, "weight_shape": w}, text)


@_rule(
    "ONNX Runtime",
    r"Computed output dimension is <= 0 for dim (\d+)\. Input shape: "
    r"\{([\d,]*)\}",
)
def _ort_negative(m: re.Match[str], text: str) -> Diagnosis:
    dim, x = int(m.group(1)), _ints(m.group(2))
    cause = f"pads crop all cells of spatial dimension {dim} (input spatial shape {_fmt(x)})"
    fix = "reduce pads (each crops cells from one side of the output), or use a larger kernel"
    return _d("ONNX Runtime", "negative_output", cause, fix, {"dim": dim, "input": x}, text)


@_rule(
    "ONNX Runtime",
    r"output_padding\[(\d+)\] \((\d+)\) must be less than max\(stride, "
    r"dilation\) \((\d+)\)",
)
def _ort_output_padding(m: re.Match[str], text: str) -> Diagnosis:
    dim, op, lim = (int(m.group(i)) for i in range(1, 4))
    nums = {"dim": dim, "output_padding": op, "limit": lim}
    cause = (
        f"output_padding[{dim}] = {op} but ONNX Runtime requires output_padding < "
        f"max(stride, dilation) = {lim}"
    )
    fix = (
        f"use output_padding[{dim}] <= {lim - 1}; for more cells reduce the end pad "
        f"(pads[{dim} + rank]) by {op - lim + 1} instead — ConvTranspose pads may be "
        f"asymmetric"
    )
    return _d("ONNX Runtime", "output_padding", cause, fix, nums, text)


@_rule(
    "ONNX Runtime",
    r"output_padding \((\d+)\) may be too large for stride \((\d+)\)\. "
    r"Expected input size (\d+) but got (\d+)",
)
def _ort_output_padding_size(m: re.Match[str], text: str) -> Diagnosis:
    op, s, exp, got = (int(m.group(i)) for i in range(1, 5))
    nums = {"output_padding": op, "stride": s, "expected_input": exp, "input": got}
    cause = (
        f"with output_padding={op} the output is long enough to come from {exp} input "
        f"cells, not {got}: ONNX Runtime checks the output against the input, and "
        f"output_padding may add at most stride - 1 = {s - 1} cells here"
    )
    fix = (
        f"use output_padding <= {s - 1}; for a longer output reduce the end pad instead "
        f"(ConvTranspose pads may be asymmetric), or give output_shape"
    )
    return _d("ONNX Runtime", "output_padding", cause, fix, nums, text)


@_rule(
    "ONNX Runtime",
    r"Explicit output_shape is inconsistent with input spatial dimensions and "
    r"convolution parameters\. Expected input size (\d+) but got (\d+) \(output_size=(\d+), "
    r"kernel=(\d+), stride=(\d+), dilation=(\d+), output_padding=(\d+)\)",
)
def _ort_output_shape(m: re.Match[str], text: str) -> Diagnosis:
    exp, got, out, k, s, d, op = (int(m.group(i)) for i in range(1, 8))
    nums = {
        "expected_input": exp,
        "input": got,
        "output_shape": out,
        "kernel": k,
        "stride": s,
        "dilation": d,
        "output_padding": op,
    }
    cause = (
        f"output_shape {out} with kernel {k}, stride {s}, dilation {d} belongs to an input "
        f"of {exp}, not {got}"
    )
    fix = "ask for an output_shape this input can produce" + _onnx_output_shape_hint(
        got, k, s, d, op
    )
    return _d("ONNX Runtime", "output_shape", cause, fix, nums, text)


def _onnx_output_shape_hint(x: int, k: int, s: int, d: int, op: int) -> str:
    from . import shapes

    if op >= output_padding_limit(s, d):
        return ""
    try:  # the range tconv.shapes.onnx accepts, checked at both ends
        lo, hi = _core.onnx_output_shape_range(x, k, s, d)
        for n in (lo, hi):
            shapes.onnx(
                (1, 1, x),
                (1, 1, k),
                strides=[s],
                dilations=[d],
                output_padding=[op],
                output_shape=[n],
            )
    except (ShapeError, OverflowError, ValueError, TypeError):
        return ""
    lo = max(lo, 1)
    return f": {_range([lo] if lo == hi else [lo, hi])} for an input of {x}" if hi >= lo else ""


@_rule(
    "ONNX Runtime",
    r"Input channels is not divisible by group\. num_input_channels: (\d+) "
    r"group: (\d+)",
)
def _ort_group(m: re.Match[str], text: str) -> Diagnosis:
    c, g = int(m.group(1)), int(m.group(2))
    cause = f"{c} input channels cannot be split into {g} equal groups"
    divs = divisors(c)
    fix = f"use a group that divides {c}: {'one of' if complete(c) else 'e.g. one of'} {divs}"
    return _d("ONNX Runtime", "groups", cause, fix, {"input_channels": c, "group": g}, text)


@_rule(
    "ONNX Runtime",
    r"(strides|dilations|output_padding|kernel_shape) size \((\d+)\) does not "
    r"match the number of spatial dimensions \((\d+)\)",
)
def _ort_attr_len(m: re.Match[str], text: str) -> Diagnosis:
    name, got, rank = m.group(1), int(m.group(2)), int(m.group(3))
    cause = f"{name} has {got} values, the input has {rank} spatial dimensions"
    fix = f"give {name} exactly {rank} values (one per spatial dimension)"
    return _d(
        "ONNX Runtime",
        "attribute_length",
        cause,
        fix,
        {"attribute": name, "got": got, "spatial_rank": rank},
        text,
    )


@_rule("ONNX Runtime", r"pads size \((\d+)\) does not match expected size \(2 \* (\d+)\)")
def _ort_pads_len(m: re.Match[str], text: str) -> Diagnosis:
    got, rank = int(m.group(1)), int(m.group(2))
    cause = (
        f"pads has {got} values; ONNX wants 2 * {rank}: all begins, then all ends "
        f"[x1_begin, x2_begin, ..., x1_end, x2_end, ...]"
    )
    fix = f"give pads {2 * rank} values, e.g. [{_repeat('1', 2 * rank)}]"
    return _d(
        "ONNX Runtime",
        "attribute_length",
        cause,
        fix,
        {"attribute": "pads", "got": got, "spatial_rank": rank},
        text,
    )


@_rule(
    "ONNX Runtime",
    r"kernel_shape is not compatible with W shape\. kernel_shape: \{([\d,]*)\} "
    r"W: \{([\d,]*)\}",
)
def _ort_kernel_shape(m: re.Match[str], text: str) -> Diagnosis:
    k, w = _ints(m.group(1)), _ints(m.group(2))
    cause = f"kernel_shape {_fmt(k)} differs from W's kernel axes {_fmt(w[2:])}"
    fix = f"drop kernel_shape (ONNX infers it from W) or set it to {list(w[2:])}"
    return _d(
        "ONNX Runtime", "kernel_shape", cause, fix, {"kernel_shape": k, "weight_shape": w}, text
    )


@_rule(
    "ONNX Runtime",
    r"kernel_shape num_dims is not compatible with W num_dims\. kernel_shape: "
    r"\{([\d,]*)\} W: \{([\d,]*)\}",
)
def _ort_kernel_shape_rank(m: re.Match[str], text: str) -> Diagnosis:
    return _ort_kernel_shape(m, text)


@_rule(
    "ONNX Runtime",
    r"Op \(ConvTranspose\) \[ShapeInferenceError\] Attribute kernel_shape has "
    r"incorrect size",
)
def _ort_kernel_shape_len(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "kernel_shape has a different number of values than X has spatial dimensions "
        "(ONNX shape inference checks it when the model declares X's shape)"
    )
    fix = (
        "drop kernel_shape (ONNX infers it from W, whose axes 2... are the kernel) or give "
        "it one value per spatial dimension: W.shape[2:]"
    )
    return _d("ONNX Runtime", "kernel_shape", cause, fix, {}, text)


@_rule(
    "ONNX Runtime",
    r"Op \(ConvTranspose\) \[ShapeInferenceError\] Attribute output_shape has "
    r"incorrect size",
)
def _ort_output_shape_len(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "output_shape holds the spatial output sizes only, one per spatial dimension; "
        "the full form (N, C, *spatial), or any other length, is refused by ONNX shape "
        "inference when the model declares X's shape"
    )
    fix = (
        "keep only the spatial sizes: output_shape=output_shape[2:] for the full form "
        "(N, C, H, W) -> [H, W]"
    )
    return _d("ONNX Runtime", "output_shape", cause, fix, {}, text)


# JAX --------------------------------------------------------------------------------------------


@_rule(
    "JAX",
    r"conv_general_dilated lhs feature dimension size divided by feature_group_count "
    r"must equal the rhs input feature dimension size, but (\d+) // (\d+) != (\d+)",
)
def _jax_channels(m: re.Match[str], text: str) -> Diagnosis:
    c, g, want = (int(m.group(i)) for i in range(1, 4))
    nums = {"lhs_features": c, "feature_group_count": g, "rhs_in_features": want}
    cause = (
        f"lhs has {c} channels but rhs's input-feature axis has {want}: with the default "
        f"dimension_numbers lax.conv_transpose takes lhs NHWC and rhs HWIO (kernel..., "
        f"in, out); with transpose_kernel=True the rhs axes are (kernel..., out, in)"
    )
    fix = (
        f"make rhs's I axis {c} (rhs.shape[-2] with HWIO), or swap its last two axes "
        f"(or toggle transpose_kernel) if the weight is in the other order; a PyTorch "
        f"weight (C_in, C_out, kh, kw) is used as w.transpose(2, 3, 1, 0) with "
        f"transpose_kernel=True"
    )
    return _d("JAX", "channels", cause, fix, nums, text)


@_rule("JAX", r"Wrong number of explicit pads for convolution: expected (\d+), got (\d+)")
def _jax_pads(m: re.Match[str], text: str) -> Diagnosis:
    want, got = int(m.group(1)), int(m.group(2))
    cause = f"padding has {got} (lo, hi) pairs but the convolution has {want} spatial dimensions"
    fix = (
        f"pass {want} pairs, e.g. padding=[{_repeat('(1, 1)', want)}], or 'SAME'/'VALID'"
        f"; if strides has the wrong length too, check that lhs has rank {want + 2}"
    )
    return _d("JAX", "padding", cause, fix, {"expected": want, "got": got}, text)


@_rule("JAX", r"String padding is not implemented for transposed convolution using this op")
def _jax_string_pad(m: re.Match[str], text: str) -> Diagnosis:
    cause = (
        "conv_general_dilated with lhs_dilation (how a transposed convolution is spelled "
        "there) takes explicit padding only; lax.conv_transpose takes 'SAME' and 'VALID'"
    )
    fix = (
        "use lax.conv_transpose(lhs, rhs, strides, 'SAME' or 'VALID'), or explicit "
        "[(lo, hi), ...] pairs; `tconv explain jax ...` shows the pairs a string resolves to"
    )
    return _d("JAX", "padding", cause, fix, {}, text)


@_rule(
    "JAX",
    r"Negative padding is larger than the size of the corresponding dimension: got "
    r"padding=(\(.*?\)) for lhs_shape\[2:\]=(\(.*?\))\s*$",
)
def _jax_negative(m: re.Match[str], text: str) -> Diagnosis:
    pads = _ints(re.sub(r"np\.int64", "", m.group(1)))
    shape = _ints(re.sub(r"np\.int64", "", m.group(2)))
    cause = f"explicit padding {m.group(1)} crops more than the dilated input {shape} holds"
    fix = (
        "use padding pairs >= -(dilated size - 1); for a transposed convolution the pair "
        "per side is dilation*(k-1) - crop, so 'VALID' or 'SAME' or smaller crops"
    )
    return _d("JAX", "negative_output", cause, fix, {"padding": pads, "lhs_spatial": shape}, text)


@_rule(
    "JAX",
    r"conv_general_dilated lhs and rhs must have the same number of dimensions, but got "
    r"(\([\d, ]*\)) and (\([\d, ]*\))",
)
def _jax_rank(m: re.Match[str], text: str) -> Diagnosis:
    lhs, rhs = _ints(m.group(1)), _ints(m.group(2))
    cause = f"lhs {_fmt(lhs)} and rhs {_fmt(rhs)} must have the same rank"
    fix = (
        f"reshape lhs to rank {len(rhs)} (N, spatial..., C) for the default NHWC/HWIO "
        f"dimension numbers"
    )
    return _d("JAX", "rank", cause, fix, {"lhs_shape": lhs, "rhs_shape": rhs}, text)


@_rule("JAX", r"convolution requires lhs and rhs ndim to be equal, got (\d+) and (\d+)")
def _jax_ndim(m: re.Match[str], text: str) -> Diagnosis:
    lhs, rhs = int(m.group(1)), int(m.group(2))
    cause = (
        f"lhs has rank {lhs} and rhs rank {rhs}: both need the batch/feature (in/out) "
        f"axes and one axis per spatial dim"
    )
    fix = (
        f"reshape lhs to rank {rhs} (N, spatial..., C with the default dimension numbers), "
        f"or give rhs {lhs - 2} kernel axes plus in and out"
    )
    return _d("JAX", "rank", cause, fix, {"lhs_ndim": lhs, "rhs_ndim": rhs}, text)


@_rule("JAX", r"Invalid padding mode: (.+)")
def _jax_padding_mode(m: re.Match[str], text: str) -> Diagnosis:
    given = m.group(1).strip()
    cause = (
        f"with use_consistent_padding=True lax.conv_transpose reads padding as the forward "
        f"convolution's: 'SAME', 'VALID' or one (lo, hi) tuple per spatial dim; got "
        f"{given}"
    )
    fix = (
        f"use padding={given.upper()!r} (upper case)"
        if given.upper() in ("SAME", "VALID")
        else "use 'SAME', 'VALID' or a sequence of (lo, hi) tuples (tuples, not lists: JAX "
        "refuses a list pair here)"
    )
    return _d("JAX", "padding", cause, fix, {}, text)


# Concatenation of a decoder's up-sampled tensor with its skip ------------------------------------


def _skip_mismatch(framework: str, text: str, shapes: list[tuple], axis: int | None) -> Diagnosis:
    """Two tensors of a concatenation that differ outside the concatenation axis: in a U-Net
    or auto-encoder, the up-layer's output and the skip it meets."""
    from ._decoder import EXAMPLE_ENCODER

    rank = min(len(v) for v in shapes)
    if axis is not None and axis < 0:
        axis += rank
    differ = [a for a in range(rank) if a != axis and len({v[a] for v in shapes}) > 1]
    conv = {"PyTorch": "torch", "JAX": "jax", "TensorFlow": "tf_nn"}.get(framework, "keras")
    nums: dict[str, Any] = {"shapes": tuple(shapes), "axis": axis, "differ": tuple(differ)}
    small = [min(v[a] for v in shapes) for a in differ]
    large = [max(v[a] for v in shapes) for a in differ]
    one_off = bool(differ) and all(b - a == 1 for a, b in zip(small, large))
    cause = (
        f"the tensors concatenated differ in axis {', '.join(map(str, differ))} "
        f"({' vs '.join('x'.join(str(v[a]) for a in differ) for v in shapes)}): in a U-Net or "
        "auto-encoder decoder, an up-sampled tensor that does not match its skip"
        + (
            "; one cell off is the mark of an odd size halved by a stride-2 layer, which "
            "a plain stride-2 up-layer gives back one short"
            if one_off
            else ""
        )
    )
    x = "x".join
    half = [v // 2 for v in large]  # what MaxPool2d(2) / 'valid' pooling leaves of the skip
    fix = (
        f"size every up-layer to its skip. Taking the larger tensor as the skip and a stride-2 "
        f"up-layer after a pool that rounds down: `tconv solve {x(map(str, half))} "
        f"{x(map(str, large))} --convention {conv} --kernel 2 --stride 2` gives the layer "
        f"that maps {x(map(str, half))} to {x(map(str, large))}. The whole decoder at once: "
        f"`tconv decoder {conv} --input <input-size> --encoder "
        f'"{EXAMPLE_ENCODER[conv]}" --up k=2,s=2` (with your encoder) prints '
        f"every skip size, the up-layer that gives it back, and the nearest input sizes that "
        f"need no output_padding"
    )
    return _d(framework, "skip_mismatch", cause, fix, nums, text)


def _shape_list(text: str) -> list[tuple]:
    """'[(None, 20, 8), (None, 21, 8)]' -> [(None, 20, 8), (None, 21, 8)]."""
    return [
        tuple(None if t == "None" else int(t) for t in re.findall(r"None|-?\d+", inner))
        for inner in re.findall(r"[(\[]([^()\[\]]*)[)\]]", text)
    ]


@_rule(
    "PyTorch",
    r"Sizes of tensors must match except in dimension (\d+)\. Expected size (\d+) but got "
    r"size (\d+) for tensor number (\d+) in the list",
)
def _torch_cat(m: re.Match[str], text: str) -> Diagnosis:
    axis, want, got, index = (int(m.group(i)) for i in range(1, 5))
    # torch names neither the axis that differs nor the shapes: one axis, two sizes
    d = _skip_mismatch("PyTorch", text, [(want,), (got,)], None)
    nums = {"cat_dim": axis, "expected": want, "got": got, "tensor": index}
    cause = d.cause.replace("in axis 0", f"in a dim other than the concatenated dim {axis}")
    return Diagnosis(True, "PyTorch", "skip_mismatch", cause, d.fix, nums, text)


@_rule(
    "Keras",
    r"A `Concatenate` layer requires inputs with matching shapes except for the "
    r"concat(?:enation)? axis\.?\s*(?:Received: input_shape=|Got inputs? shapes: )(\[.*?\])",
)
def _keras_concat(m: re.Match[str], text: str) -> Diagnosis:
    framework = "Keras" if "concatenation axis" in m.group(0) else "Keras 2 (tf.keras)"
    # Concatenate's default axis=-1 (channels_last): the channel counts may differ
    return _skip_mismatch(framework, text, _shape_list(m.group(1)), -1)


@_rule(
    "TensorFlow",
    r"ConcatOp : Dimension (\d+) in both shapes must be equal: shape\[\d+\] = (\[[\d,]*\]) vs\. "
    r"shape\[\d+\] = (\[[\d,]*\])",
)
def _tf_concat(m: re.Match[str], text: str) -> Diagnosis:
    # TF names the first axis that differs; the usual concatenation is of channels (NHWC)
    shapes = [_ints(m.group(2)), _ints(m.group(3))]
    return _skip_mismatch(_framework_tf(text), text, shapes, -1)


@_rule(
    "JAX",
    r"Cannot concatenate arrays with shapes that differ in dimensions other than the one being "
    r"concatenated: concatenating along dimension (\d+) for shapes (.*?)\.?\s*$",
)
def _jax_concat(m: re.Match[str], text: str) -> Diagnosis:
    return _skip_mismatch("JAX", text, _shape_list(m.group(2)), int(m.group(1)))


# ---- entry point ------------------------------------------------------------------------------


@overflow_as_value_error
def doctor(message: str) -> Diagnosis:
    """Explain a framework's error message about a transposed convolution.

    Parameters
    ----------
    message : str
        The text of the exception (``str(exc)``), from PyTorch, Keras 2 or 3, TensorFlow,
        ONNX Runtime or JAX. Surrounding traceback lines are fine.

    Returns
    -------
    Diagnosis
        ``recognised=False`` (with an honest "not recognised") for anything else.

    Examples
    --------
    >>> d = tconv.doctor('Input 0 of layer "conv2d_transpose" is incompatible with the layer: '
    ...                  'expected min_ndim=4, found ndim=2. Full shape received: (None, 100)')
    >>> d.kind, d.numbers["found_ndim"]
    ('rank', 2)
    """
    if not isinstance(message, str):
        raise TypeError(
            f"doctor() takes the error message as a str, got {type(message).__name__}"
            f"; pass str(exc)"
        )
    text = _ANSI.sub("", message)
    longest = max((len(run) for run in re.findall(r"\d+", text)), default=0)
    if longest > 4000:  # int() refuses more than 4300 digits; no layer has such sizes anyway
        return Diagnosis(
            False,
            None,
            "unknown",
            f"the message holds a number with {longest} digits, far beyond any tensor size",
            "check where that number comes from; tconv.shapes (or `tconv shape`) raises with "
            "the cause and fix for every configuration error the frameworks know",
            {},
            message,
        )
    for framework, pattern, handler in _RULES:
        m = pattern.search(text)
        if m:
            try:
                return handler(m, message)
            except (IndexError, ZeroDivisionError) as exc:
                # The words match but the numbers cannot come from one layer (a stride of 0,
                # fewer strides than dimensions): say so rather than guess.
                return Diagnosis(
                    False,
                    framework,
                    "unknown",
                    f"this reads like {framework}'s message, but its numbers do not describe "
                    f"one layer ({type(exc).__name__}: {exc}); was it edited or cut?",
                    "check the layer with tconv.shapes (or `tconv shape`), which raises with "
                    "the cause and fix for every configuration error the frameworks know",
                    {},
                    message,
                )
    short = " ".join(text.split())
    short = short[:160] + ("..." if len(short) > 160 else "")
    return Diagnosis(
        False,
        None,
        "unknown",
        f"this message does not match any transposed-convolution or rank error that tconv "
        f"knows: {short!r}"
        if short
        else "the message is empty",
        "check the layer with tconv.shapes (or `tconv shape`), which raises with the cause and "
        "fix for every configuration error the frameworks know",
        {},
        message,
    )
