"""plan_decoder: the upsampling layers of a U-Net / auto-encoder decoder that give back every
skip size exactly.

The encoder's sizes come from each framework's own forward rules: convolutions through the
compiled rules of tconv._core (the ones tconv.mirror uses), pooling through one small function
per convention below (tested against the frameworks). Every decoder layer is a Solution from
tconv.solve / tconv.mirror, so its size has been through tconv.shapes; nothing here computes a
transposed convolution's length.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _core
from ._args import describe, pad_pairs, show_int
from ._dialects import DIALECTS, dialect
from ._errors import ShapeError, SizeOverflowError, overflow_as_value_error
from ._solve import Solution, _dims, _per_dim, _rank_of, _reach, mirror, solve

__all__ = ["DecoderPlan", "plan_decoder"]

TYPES = ("conv", "maxpool", "avgpool")

# Per convention and layer type: the framework's argument names for kernel, stride, padding,
# dilation and ceil_mode (None: the layer has none), and the arguments that do not bear on sizes.
_NAMES: dict[str, dict[str, tuple]] = {
    "torch": {
        "conv": ("kernel_size", "stride", "padding", "dilation", None),
        "maxpool": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
        "avgpool": ("kernel_size", "stride", "padding", None, "ceil_mode"),
    },
    "keras": {
        "conv": ("kernel_size", "strides", "padding", "dilation_rate", None),
        "maxpool": ("pool_size", "strides", "padding", None, None),
        "avgpool": ("pool_size", "strides", "padding", None, None),
    },
    "jax": {  # lax.conv_general_dilated and lax.reduce_window
        "conv": ("kernel_size", "window_strides", "padding", "rhs_dilation", None),
        "maxpool": ("window_dimensions", "window_strides", "padding", None, None),
        "avgpool": ("window_dimensions", "window_strides", "padding", None, None),
    },
    "tf_nn": {  # tf.nn.convolution, tf.nn.max_pool, tf.nn.avg_pool
        "conv": ("kernel_size", "strides", "padding", "dilations", None),
        "maxpool": ("ksize", "strides", "padding", None, None),
        "avgpool": ("ksize", "strides", "padding", None, None),
    },
    "onnx": {  # Conv, MaxPool, AveragePool
        "conv": ("kernel_shape", "strides", "pads", "dilations", None),
        "maxpool": ("kernel_shape", "strides", "pads", "dilations", "ceil_mode"),
        "avgpool": ("kernel_shape", "strides", "pads", None, "ceil_mode"),
    },
}
_IGNORED = {
    "torch": {
        "in_channels",
        "out_channels",
        "groups",
        "bias",
        "padding_mode",
        "return_indices",
        "count_include_pad",
        "divisor_override",
    },
    "keras": {"filters", "activation", "use_bias", "groups", "data_format", "name"},
    "jax": {"feature_group_count"},
    "tf_nn": {"data_format", "filters"},
    "onnx": {"group", "count_include_pad", "storage_order"},
}
# The up-layer's arguments: kernel, stride, dilation (the sizing ones are solved).
_UP = {
    "torch": ("kernel_size", "stride", "dilation"),
    "keras": ("kernel_size", "strides", "dilation_rate"),
    "onnx": ("kernel_shape", "strides", "dilations"),
    "tf_nn": ("kernel_size", "strides", "dilations"),
    "jax": ("kernel_size", "strides", "rhs_dilation"),
}
_UP_SIZING = {
    "torch": ("padding", "output_padding", "output_size"),
    "keras": ("padding", "output_padding"),
    "onnx": ("pads", "output_padding", "output_shape", "auto_pad"),
    "tf_nn": ("padding", "output_shape"),
    "jax": ("padding",),
}
_UP_IGNORED = {
    "torch": {"in_channels", "out_channels", "groups", "bias"},
    "keras": {"filters", "activation", "use_bias", "data_format", "name"},
    "onnx": {"group"},
    "tf_nn": {"data_format"},
    "jax": {"use_consistent_padding"},
}
# Nearest clean inputs are searched this far on each side (in multiples of the encoder's total
# stride), and never past this many sizes: a stride in the millions must not mean a long search.
_SEARCH_PERIODS = 4
_SEARCH_MAX = 4096
_SEARCH_BUDGET = 200_000  # encoder layers evaluated per direction and dim
# Sizes and layer parameters beyond this cannot go through 64-bit shape arithmetic.
_MAX_INT = 2**62


@dataclass(frozen=True)
class _Layer:
    """An encoder layer, normalised: per dim kernel, stride, dilation and padding."""

    type: str
    args: dict  # as given, for the tables and error messages
    kernel: tuple
    stride: tuple
    dilation: tuple
    pad: tuple  # per dim: ("SAME" | "VALID" | "FULL_SAME" | "EXPLICIT", lo, hi)
    ceil_mode: bool

    def describe(self) -> str:
        return layer_text(self.args)


def _show(v: Any) -> str:
    if isinstance(v, str):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "(" + ", ".join(_show(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return str(v)


def _x(size: Sequence[int]) -> str:
    return "x".join(map(str, size))


# ---- pooling lengths, one function per convention --------------------------------------------


def _torch_pool_length(i: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """nn.MaxPoolNd / nn.AvgPoolNd (ATen's pooling_output_shape): with ceil_mode the last window
    may hang over the end, but must start inside the input or its left padding."""
    span = d * (k - 1) + 1
    out = (i + 2 * p - span + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= i + p:
        out -= 1
    return out


def _keras_pool_length(i: int, pool: int, s: int, padding: str) -> int:
    """keras.layers.MaxPoolingND / AveragePoolingND (compute_output_shape): 'valid' keeps the
    windows that fit, 'same' one output per stride started."""
    if padding == "same":
        return (i + s - 1) // s
    return (i - pool) // s + 1


def _onnx_pool_length(i: int, k: int, s: int, d: int, lo: int, hi: int, ceil_mode: bool) -> int:
    """ONNX MaxPool / AveragePool with explicit pads, as onnxruntime computes it (its shape
    inference differs): C++ integer division, which truncates toward zero when the window
    overhangs the padded input; with ceil_mode the last window starts inside the input or its
    begin pad."""
    num = i + lo + hi - (d * (k - 1) + 1)
    if not ceil_mode:
        return (num // s if num >= 0 else -(-num // s)) + 1
    out = -(-num // s) + 1
    if (out - 1) * s >= i + lo:
        out -= 1
    return out


def _length(conv: str, layer: _Layer, i: int, j: int) -> int:
    """The size after `layer` in dimension j, by the framework's forward rule."""
    k, s, d = layer.kernel[j], layer.stride[j], layer.dilation[j]
    mode, lo, hi = layer.pad[j]
    if mode == "FULL_SAME":  # torch's padding='same' (stride 1)
        return i
    pool = _POOL_LENGTH.get(conv) if layer.type != "conv" else None
    if pool is not None:  # pools with their own rule; the others follow the convolution's
        return pool(layer, i, j)
    if mode in ("SAME", "VALID"):  # TF's rule, shared by Keras, tf.nn, lax and auto_pad
        return _core.tf_conv(i, k, s, d, mode)[0]
    return _core.conv_length(i, k, s, d, lo, hi)


def _keras_pool(layer: _Layer, i: int, j: int) -> int:
    return _keras_pool_length(i, layer.kernel[j], layer.stride[j], layer.pad[j][0].lower())


def _torch_pool(layer: _Layer, i: int, j: int) -> int:
    k, lo = layer.kernel[j], layer.pad[j][1]
    if layer.type == "avgpool" and len(layer.kernel) == 3 and i < k:
        return 0  # avg_pool3d alone refuses an input smaller than its window, padding aside
    return _torch_pool_length(i, k, layer.stride[j], lo, layer.dilation[j], layer.ceil_mode)


def _onnx_pool(layer: _Layer, i: int, j: int) -> int:
    _, lo, hi = layer.pad[j]
    k, s, d = layer.kernel[j], layer.stride[j], layer.dilation[j]
    return _onnx_pool_length(i, k, s, d, lo, hi, layer.ceil_mode)


_POOL_LENGTH = {"keras": _keras_pool, "torch": _torch_pool, "onnx": _onnx_pool}


# ---- argument normalisation --------------------------------------------------------------


def _check_size(values: Sequence[int], name: str) -> None:
    for v in values:
        if v > _MAX_INT:
            raise SizeOverflowError(
                f"{name} = {show_int(v)} is beyond 64-bit shape arithmetic (at most 2**62); "
                "no tensor has such a size"
            )


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
        return bool(value)
    raise TypeError(f"{name} must be True or False (or 0/1), got {describe(value)}")


def _pads(conv: str, kind: str, value: Any, rank: int, stride: tuple) -> tuple:
    """Per dim (mode, lo, hi) from the framework's own padding argument."""
    if isinstance(value, str):
        allowed = {
            "torch": ("same", "valid") if kind == "conv" else (),
            "keras": ("same", "valid"),
            "jax": ("SAME", "VALID"),
            "tf_nn": ("SAME", "VALID"),
            "onnx": (),
        }[conv]
        if value not in allowed:
            raise ValueError(
                f"{kind} padding={value!r} is not a {conv} padding; use "
                + (" or ".join(map(repr, allowed)) + " or " if allowed else "")
                + ("numbers" if conv in ("torch", "onnx", "jax", "tf_nn") else "nothing else")
            )
        if conv == "torch" and value == "same":
            if any(v != 1 for v in stride):
                raise ShapeError(
                    "PyTorch says: padding='same' is not supported for strided convolutions; "
                    "give the padding as a number (kernel_size // 2 keeps odd kernels centred)"
                )
            return (("FULL_SAME", 0, 0),) * rank
        if conv == "torch":
            return (("EXPLICIT", 0, 0),) * rank
        return ((value.upper(), 0, 0),) * rank
    if conv == "keras":
        raise ValueError(f"keras {kind} padding must be 'same' or 'valid', got {value!r}")
    want = {
        "torch": f"an int or {rank} ints",
        "onnx": f"{2 * rank} ints (begins then ends)",
    }.get(conv, f"'SAME', 'VALID' or {rank} (lo, hi) pairs")
    takes_pairs = conv in ("jax", "tf_nn")

    def error(k: str, whole: Any) -> Exception | None:
        if k in ("form", "length") or (k == "pairs" and not takes_pairs):
            return ValueError(f"{kind} padding must be {want}, got {value!r}")
        return None

    vals = pad_pairs(
        value,
        rank,
        "padding",
        per_dim=conv == "torch",
        begins_ends=conv == "onnx",
        pairs=takes_pairs,
        error=error,
    )
    out = []
    for lo, hi in vals:
        if lo < 0 or hi < 0:
            raise ValueError(f"{kind} padding must be >= 0, got {value!r}")
        _check_size((lo, hi), f"{kind} padding")
        out.append(("EXPLICIT", lo, hi))
    return tuple(out)


def _layer(conv: str, index: int, spec: Any, rank: int) -> _Layer:
    where = f"encoder[{index}]"
    if not isinstance(spec, dict):
        raise TypeError(
            f"{where} must be a dict such as {{'type': 'maxpool', ...}}, got {describe(spec)}"
        )
    kind = spec.get("type")
    if kind not in TYPES:
        raise ValueError(
            f"{where}['type'] must be one of {', '.join(map(repr, TYPES))}, got {kind!r}"
        )
    kname, sname, pname, dname, cname = _NAMES[conv][kind]
    known = {kname, sname, pname, dname, cname} - {None}
    unknown = [k for k in spec if k != "type" and k not in known and k not in _IGNORED[conv]]
    if unknown:
        raise TypeError(
            f"{where}: {conv} {kind} layers take no argument {unknown[0]!r}; their "
            f"arguments are {', '.join(sorted(known))}"
        )
    default_k = 2 if conv == "keras" and kind != "conv" else None
    kval = spec.get(kname, default_k)
    if kval is None:
        raise TypeError(f"{where}: a {conv} {kind} layer needs {kname}")
    kernel = _per_dim(kval, rank, f"{where} {kname}")
    # pools stride by their window unless told otherwise (Keras, PyTorch); tf.nn, lax and ONNX
    # default to 1 where they have a default at all
    pool_default = kind != "conv" and conv in ("torch", "keras")
    sval = spec.get(sname)
    stride = (
        kernel
        if sval is None and pool_default
        else _per_dim(1 if sval is None else sval, rank, f"{where} {sname}")
    )
    dilation = _per_dim(spec.get(dname, 1) if dname else 1, rank, f"{where} {dname}")
    assert kernel and stride and dilation
    for name, vals in ((kname, kernel), (sname, stride), (dname, dilation)):
        if any(v < 1 for v in vals):
            raise ValueError(f"{where}: {name} must be >= 1, got {vals}")
        _check_size(vals, f"{where} {name}")
    default_pad = DIALECTS[conv].default_padding
    pad = _pads(conv, kind, spec.get(pname, default_pad), rank, stride)
    ceil_mode = _flag(spec.get(cname, False), f"{where} {cname}") if cname else False
    if conv == "keras" and kind == "conv" and max(stride) > 1 and max(dilation) > 1:
        raise ShapeError(
            f"{where}: Keras says: `strides > 1` not supported in conjunction with "
            f"`dilation_rate > 1`. Received: strides={stride} and dilation_rate={dilation}; "
            "downsample with a pool or a separate strided conv"
        )
    if conv == "torch" and kind != "conv":
        for k, (_, lo, _) in zip(kernel, pad):
            if lo > k // 2:
                raise ShapeError(
                    f"{where}: PyTorch says: pad should be at most half of kernel size, but "
                    f"got pad={lo}, kernel_size={k}; use padding <= {k // 2}"
                )
    return _Layer(kind, dict(spec), kernel, stride, dilation, pad, ceil_mode)


def _forward(conv: str, layers: Sequence[_Layer], inp: tuple) -> list[tuple]:
    sizes = [inp]
    for n, layer in enumerate(layers):
        cur = sizes[-1]
        out = tuple(_length(conv, layer, cur[j], j) for j in range(len(cur)))
        if min(out) < 1:
            raise ShapeError(
                f"encoder[{n}] {layer.describe()} turns {_x(cur)} into {_x(out)}: the "
                f"framework raises here (its window does not fit the input); use a larger "
                f"input, fewer downsampling layers, or more padding"
            )
        sizes.append(out)
    return sizes


def _up_args(conv: str, up: Any, rank: int) -> tuple | None:
    if up is None:
        return None
    if not isinstance(up, dict):
        raise TypeError(
            f"up must be a dict of the up-layer's arguments or None, got {describe(up)}"
        )
    kname, sname, dname = _UP[conv]
    for key in up:
        if key in _UP_SIZING[conv]:
            raise ValueError(
                f"up[{key!r}]: plan_decoder solves the up-layer's {key} per step; leave "
                f"it out (give {kname}, {sname} and {dname})"
            )
        if key not in (kname, sname, dname) and key not in _UP_IGNORED[conv]:
            raise TypeError(
                f"up takes the {conv} up-layer's {kname}, {sname} and {dname}, not {key!r}"
            )
    if kname not in up:
        raise TypeError(f"up needs {kname} (e.g. {{{kname!r}: 2, {sname!r}: 2}})")
    k = _per_dim(up[kname], rank, f"up {kname}")
    s = _per_dim(up.get(sname, 1), rank, f"up {sname}")
    d = _per_dim(up.get(dname, 1), rank, f"up {dname}")
    assert k and s and d
    for name, vals in ((kname, k), (sname, s), (dname, d)):
        if any(v < 1 for v in vals):
            raise ValueError(f"up {name} must be >= 1, got {vals}")
        _check_size(vals, f"up {name}")
    return k, s, d


# ---- the plan -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecoderPlan:
    """The decoder of a U-Net / auto-encoder, sized to give back every skip exactly.

    Attributes
    ----------
    convention : str
    input_size : tuple of int
    encoder : tuple of dict
        The encoder layers as given.
    sizes : tuple of tuple
        The spatial size at the input and after every encoder layer.
    steps : tuple of Solution
        One up-layer per encoder layer with a stride > 1, deepest first; ``steps[j].params``
        builds the framework's layer (``nn.ConvTranspose2d(c_in, c_out, **step.params)``,
        ``layers.Conv2DTranspose(filters, **step.params)``).
    skips : tuple of int
        Per step, the index into ``sizes`` of the skip it meets (the size before its encoder
        layer): ``steps[j].output_size == sizes[skips[j]]``.
    nearest_inputs : tuple of (int or None, int or None)
        Per dim, the nearest input sizes at or below and at or above ``input_size`` for which
        the same up-layer with no output_padding gives back every skip (None: none within
        the search window of four times the encoder's total stride).
    """

    convention: str
    input_size: tuple
    encoder: tuple
    sizes: tuple
    steps: tuple
    skips: tuple
    nearest_inputs: tuple
    up: dict | None = None
    notes: tuple = field(default=())

    @property
    def rank(self) -> int:
        return len(self.input_size)

    def code(self) -> str:
        """The decoder's up-layers in the framework's syntax, deepest first."""
        return _code(self)

    def svg(self) -> str:
        """The plan as an SVG picture (text): encoder levels down the left, up-layers up the
        right, every skip an arrow across; steps that add cells are drawn in orange."""
        from ._svg import decoder_svg

        return decoder_svg(self)

    def _repr_svg_(self) -> str:  # Jupyter shows the picture
        return self.svg()

    def as_dict(self) -> dict:
        return {
            "convention": self.convention,
            "input_size": list(self.input_size),
            "encoder": [dict(e) for e in self.encoder],
            "up": self.up,
            "sizes": [list(s) for s in self.sizes],
            "steps": [
                {**s.as_dict(), "skip": k, "skip_size": list(self.sizes[k])}
                for s, k in zip(self.steps, self.skips)
            ],
            "nearest_inputs": [list(p) for p in self.nearest_inputs],
            "clean": self.clean,
            "code": self.code(),
            "notes": list(self.notes),
        }

    @property
    def clean(self) -> bool:
        """True when the input size needs no output_padding anywhere."""
        return all(lo == i == hi for (lo, hi), i in zip(self.nearest_inputs, self.input_size))

    def __str__(self) -> str:
        return _table(self)


@overflow_as_value_error
def plan_decoder(
    input_size: Any, encoder: Any, *, up: Any = None, convention: str = "torch"
) -> DecoderPlan:
    """The decoder of a U-Net / auto-encoder that gives back every skip size exactly.

    Parameters
    ----------
    input_size : int or tuple of int
        The encoder's input spatial size.
    encoder : sequence of dict
        The forward layers in order: ``"type"`` is "conv", "maxpool" or "avgpool", the rest
        are that layer's own arguments in the convention's names (torch: kernel_size, stride,
        padding, dilation, ceil_mode -- pools stride by kernel_size by default; keras:
        kernel_size / pool_size, strides, padding, dilation_rate; jax: kernel_size /
        window_dimensions, window_strides, padding, rhs_dilation; tf_nn: kernel_size / ksize,
        strides, padding, dilations; onnx: kernel_shape, strides, pads, dilations, ceil_mode).
    up : dict, optional
        The decoder's upsampling layer without its sizing arguments, e.g. ``{"kernel_size": 2,
        "stride": 2}``; None: each step mirrors its encoder layer (its kernel, stride and
        dilation, and its padding where that gives the size back).
    convention : {"torch", "keras", "onnx", "tf_nn", "jax"}

    Returns
    -------
    DecoderPlan

    Raises
    ------
    ShapeError
        When an encoder layer does not fit its input, or no up-layer of the given kernel and
        stride reaches a skip size: the message names the step, the sizes it can reach, and
        the nearest input sizes that work.
    """
    dialect(convention)
    if isinstance(encoder, (dict, str)) or not isinstance(encoder, Sequence) or not encoder:
        raise TypeError(
            f"encoder must be a non-empty list of layer dicts, got {describe(encoder)}; e.g. "
            "[{'type': 'conv', 'kernel_size': 3, 'padding': 1}, {'type': 'maxpool', "
            "'kernel_size': 2}]"
        )
    kernels = [
        spec.get(_NAMES[convention].get(str(spec.get("type")), ("",))[0])
        for spec in encoder
        if isinstance(spec, dict)
    ]
    if isinstance(up, dict):
        kernels.append(up.get(_UP[convention][0]))
    rank = _rank_of(input_size, *kernels)
    inp = _per_dim(input_size, rank, "input_size")
    assert inp is not None
    if any(v < 1 for v in inp):
        raise ValueError(f"input_size must be >= 1 in every dim, got {inp}")
    _check_size(inp, "input_size")
    layers = [_layer(convention, n, spec, rank) for n, spec in enumerate(encoder)]
    up_kd = _up_args(convention, up, rank)
    stepped = [n for n, layer in enumerate(layers) if any(s > 1 for s in layer.stride)]
    if not stepped:
        raise ValueError(
            "no encoder layer has a stride > 1, so the decoder has nothing to upsample; "
            "pools stride by their window by default in torch and keras only"
        )
    sizes = _forward(convention, layers, inp)
    steps: list[Solution] = []
    notes: list[str] = []
    current = sizes[-1]
    for count, n in enumerate(reversed(stepped), 1):
        sol = _step(convention, layers[n], up_kd, current, sizes[n])
        if sol is None:
            raise _unreachable(convention, layers, up_kd, inp, sizes, count, n, current)
        steps.append(sol)
        notes.extend(sol.notes)
        current = sol.output_size
    nearest = tuple(
        (
            _nearest(convention, layers, up_kd, inp, j, -1, clean=True),
            _nearest(convention, layers, up_kd, inp, j, +1, clean=True),
        )
        for j in range(rank)
    )
    return DecoderPlan(
        convention,
        inp,
        tuple(dict(e) for e in encoder),
        tuple(sizes),
        tuple(steps),
        tuple(reversed(stepped)),
        nearest,
        dict(up) if up is not None else None,
        tuple(dict.fromkeys(notes)),
    )


def _kernel_of(layer: _Layer, up_kd: tuple | None) -> tuple:
    return up_kd if up_kd is not None else (layer.kernel, layer.stride, layer.dilation)


def _step(
    conv: str, layer: _Layer, up_kd: tuple | None, current: tuple, target: tuple
) -> Solution | None:
    k, s, d = _kernel_of(layer, up_kd)
    if up_kd is None:
        mirrored = _mirror(conv, layer, target)
        if mirrored is not None and mirrored.input_size == current:
            return mirrored
    sols = solve(current, target, kernel_size=k, stride=s, dilation=d, convention=conv)
    return sols[0] if sols else None


def _mirror(conv: str, layer: _Layer, target: tuple) -> Solution | None:
    """The adjoint of the encoder layer (its padding kept), when one gives the size back."""
    if layer.ceil_mode or any(m == "FULL_SAME" for m, _, _ in layer.pad):
        return None
    mode = layer.pad[0][0]
    padding: Any
    if mode in ("SAME", "VALID"):
        padding = DIALECTS[conv].mode_word(mode)
    else:
        spell = _NUMERIC_PADDING.get(conv)
        padding = spell(layer.pad) if spell is not None else None
        if padding is None:
            return None
    try:
        return mirror(target, layer.kernel, layer.stride, padding, layer.dilation, convention=conv)
    except (ShapeError, ValueError):
        return None


def _symmetric_padding(pad: tuple) -> tuple | None:
    """PyTorch's padding: one crop per dimension, the same at both ends."""
    if any(lo != hi for _, lo, hi in pad):
        return None
    return tuple(lo for _, lo, _ in pad)


# The encoder layer's explicit (lo, hi) pads in the framework's padding= argument (None: cannot)
_NUMERIC_PADDING = {
    "torch": _symmetric_padding,
    "onnx": lambda pad: [lo for _, lo, _ in pad] + [hi for _, _, hi in pad],
    "jax": lambda pad: tuple((lo, hi) for _, lo, hi in pad),
}


# ---- nearest inputs -----------------------------------------------------------------------


def _clean_key(conv: str, x: Any, i: int) -> Any:
    """The up-layer's size-independent arguments when it adds no output_padding, else None:
    two steps with the same key use the same layer."""
    return _CLEAN_KEY[conv](x, i)


def _clean_key_tf_nn(x: Any, i: int) -> Any:
    # output_shape is an argument: clean is the length Keras would ask for
    natural = _core.keras_length(i, x.native[0].lower(), x.kernel, x.stride, x.dilation, None)
    return x.native[0] if x.output == natural else None


_CLEAN_KEY = {
    "torch": lambda x, i: x.native[0] if x.native[1] == 0 else None,
    "keras": lambda x, i: x.native[0] if x.native[1] is None else None,
    "onnx": lambda x, i: x.native[:2] if x.native[2] == 0 else None,
    "tf_nn": _clean_key_tf_nn,
    # JAX: no cells beyond the full result
    "jax": lambda x, i: x.native if x.pad_hi >= 0 else None,
}


def _works(
    conv: str, layers: Sequence[_Layer], up_kd: tuple | None, n: int, j: int, clean: bool
) -> bool:
    """Whether input size n in dim j gives back every skip (with clean: with one up-layer and
    no output_padding)."""
    sizes = [n]
    for layer in layers:
        sizes.append(_length(conv, layer, sizes[-1], j))
        if sizes[-1] < 1:
            return False
    current = sizes[-1]
    shared: set | None = None
    for idx in reversed(range(len(layers))):
        layer = layers[idx]
        if all(s == 1 for s in layer.stride):
            continue
        k, s, d = (v[j] for v in _kernel_of(layer, up_kd))
        target = sizes[idx]
        found = [x for x in _dims(conv, current, k, s, d, target) if x.output == target]
        if clean:
            keys = {_clean_key(conv, x, current) for x in found} - {None}
            shared = keys if shared is None or up_kd is None else shared & keys
            if not shared:
                return False
        elif not found:
            return False
        current = target
    return True


def _nearest(
    conv: str,
    layers: Sequence[_Layer],
    up_kd: tuple | None,
    inp: tuple,
    j: int,
    direction: int,
    clean: bool,
) -> int | None:
    period = math.prod(layer.stride[j] for layer in layers)
    reach = min(_SEARCH_MAX, _SEARCH_PERIODS * period + 8, _SEARCH_BUDGET // len(layers))
    for delta in range(reach + 1):
        n = inp[j] + direction * delta
        if n < 1:
            return None
        if _works(conv, layers, up_kd, n, j, clean):
            return n
    return None


def _unreachable(
    conv: str,
    layers: Sequence[_Layer],
    up_kd: tuple | None,
    inp: tuple,
    sizes: Sequence[tuple],
    count: int,
    n: int,
    current: tuple,
) -> ShapeError:
    k, s, d = _kernel_of(layers[n], up_kd)
    target = sizes[n]
    reach = []
    for j in range(len(inp)):
        got = _reach(conv, current[j], k[j], s[j], d[j])
        if target[j] not in got:
            shown = f"{got[0]}..{got[-1]}" if got else "nothing"
            gaps = sorted(set(range(got[0], got[-1] + 1)) - set(got)) if got else []
            reach.append(
                f"dim {j}: they turn {current[j]} into {shown}"
                + (f" except {gaps[:8]}" if gaps else "")
                + f", not {target[j]}"
            )
    if not reach:
        reach.append(
            f"each dim is reachable, but not with one {conv} layer: "
            + (
                "its padding string, and output_padding None or ints, hold for all dims at once"
                if conv == "keras"
                else "its padding string holds for all dims at once"
            )
        )
    near = []
    for j in range(len(inp)):
        below = _nearest(conv, layers, up_kd, inp, j, -1, clean=False)
        above = _nearest(conv, layers, up_kd, inp, j, +1, clean=False)
        found = " or ".join(str(v) for v in dict.fromkeys((below, above)) if v is not None)
        near.append(found or "none nearby")
    where = near[0] if len(near) == 1 else "; ".join(f"dim {j}: {v}" for j, v in enumerate(near))
    return ShapeError(
        f"decoder step {count} (the up-layer that meets the skip before encoder[{n}] "
        f"{layers[n].describe()}) must map {_x(current)} to {_x(target)}, and no {conv} "
        f"layer with kernel {_x(k)}, stride {_x(s)}, dilation {_x(d)} does: "
        + "; ".join(reach)
        + f".\nnearest input sizes whose skips can all be reached: {where}"
        + "\nfix: use such an input size, or another up-layer kernel/stride (up=...), or "
        "crop or pad the skip before concatenating"
    )


# ---- text -------------------------------------------------------------------------------


def _code(plan: DecoderPlan) -> str:
    conv, rank = plan.convention, plan.rank
    stages = sorted(plan.skips)
    rows = [
        (
            s.code(),
            f"{_x(s.input_size)} -> {_x(s.output_size)}, the skip of stage {stages.index(k)}",
        )
        for s, k in zip(plan.steps, plan.skips)
    ]
    if conv == "torch":
        head = "# deepest first: x = torch.cat([up[j](x), skips[j]], dim=1), then the stage's convs"
        body = [f"    {c},  # {note}" for c, note in rows]
        return "\n".join([head, "up = nn.ModuleList([", *body, "])"])
    if conv == "keras":
        head = (
            "# deepest first: x = layers.Concatenate()([up[j](x), skips[j]]), then the "
            "stage's convs"
        )
        body = [f"    {c},  # {note}" for c, note in rows]
        return "\n".join([head, "up = [", *body, "]"])
    head = f"# deepest first ({rank}-d), each output concatenated with its skip"
    return "\n".join([head, *(f"{c}  # {note}" for c, note in rows)])


def _table(plan: DecoderPlan) -> str:
    """One row per stage (the layers between two downsamplings): its size, which is the skip,
    and the up-layer that gives it back."""
    stepped = sorted(plan.skips)
    bounds = [0, *stepped, len(plan.encoder)]
    m = len(stepped)
    by_skip = {k: (j + 1, s) for j, (s, k) in enumerate(zip(plan.steps, plan.skips))}
    rows = []
    for j in range(m + 1):
        layers = _runs([layer_text(e) for e in plan.encoder[bounds[j] : bounds[j + 1]]])
        if j == m:
            rows.append((str(j), layers or "-", _x(plan.sizes[-1]), "", "(bottom)", ""))
            continue
        number, step = by_skip[stepped[j]]
        up = _args_text(step.code())
        rows.append(
            (
                str(j),
                layers or "-",
                _x(plan.sizes[stepped[j]]),
                str(number),
                up,
                _x(step.output_size),
            )
        )
    head = ("stage", "encoder layers", "size", "step", "up-layer", "output")
    widths = [max(len(r[c]) for r in [head, *rows]) for c in range(6)]
    lines = [
        f"{plan.convention} decoder for a {_x(plan.input_size)} input: {m} up-layers, each "
        "giving back the skip of its stage (step 1 is the deepest)",
        "",
    ]
    for r in [head, *rows]:
        cells = [r[0].rjust(widths[0]), *(v.ljust(w) for v, w in zip(r[1:], widths[1:]))]
        cells[3] = r[3].rjust(widths[3])
        lines.append("  ".join(cells).rstrip())
    lines.append("")
    lines.append(_nearest_text(plan))
    for note in plan.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _runs(texts: list[str]) -> str:
    """'a a b' -> '2*a b' (the command line's repeat syntax)."""
    out: list[list] = []
    for t in texts:
        if out and out[-1][0] == t:
            out[-1][1] += 1
        else:
            out.append([t, 1])
    return " ".join(t if n == 1 else f"{n}*{t}" for t, n in out)


def _args_text(code: str) -> str:
    """A layer's arguments from its code, without the class, channels and comment."""
    code = code.split("  #")[0]
    inner = code[code.index("(") + 1 : code.rindex(")")]
    for placeholder in ("in_channels, out_channels, ", "out_channels, ", "x, filters, "):
        inner = inner.replace(placeholder, "", 1)
    return inner.removeprefix("x, ")


def layer_text(spec: dict) -> str:
    shown = ", ".join(f"{k}={_show(v)}" for k, v in spec.items() if k != "type")
    return f"{spec.get('type')}({shown})"


def _nearest_text(plan: DecoderPlan) -> str:
    if plan.clean:
        return f"{_x(plan.input_size)} needs no output_padding at any step."
    below = [lo for lo, _ in plan.nearest_inputs]
    above = [hi for _, hi in plan.nearest_inputs]
    words = []
    if None not in below:
        words.append(f"{_x(below)} (below)")
    if None not in above:
        words.append(f"{_x(above)} (above)")
    per_dim = ", ".join(
        f"{lo if lo is not None else '-'}..{hi if hi is not None else '-'}"
        for lo, hi in plan.nearest_inputs
    )
    return (
        "nearest input sizes that need no output_padding: "
        + (" or ".join(words) if words else "none nearby")
        + (f"  (per dim: {per_dim})" if plan.rank > 1 else "")
    )


# ---- the command line's layer syntax ------------------------------------------------------

_ALIASES = {"k": 0, "s": 1, "p": 2, "d": 3}
# A four-stage U-Net encoder (two 3x3 convs and a 2x2 pool per stage) in each dialect.
EXAMPLE_ENCODER = {
    "torch": "4*(conv:k=3,p=1 conv:k=3,p=1 maxpool:k=2)",
    "keras": "4*(conv:k=3,p=same conv:k=3,p=same maxpool:k=2)",
    "onnx": "4*(conv:k=3,p=1x1x1x1 conv:k=3,p=1x1x1x1 maxpool:k=2,s=2)",
    "tf_nn": "4*(conv:k=3,p=SAME conv:k=3,p=SAME maxpool:k=2,s=2)",
    "jax": "4*(conv:k=3,p=SAME conv:k=3,p=SAME maxpool:k=2,s=2)",
}
_MAX_LAYERS = 1000
LAYER_SYNTAX = """\
Layers are written TYPE:ARG=VALUE,ARG=VALUE ... separated by spaces, in the framework's own
argument names or the short k (kernel), s (stride), p (padding), d (dilation); values are ints,
per-dim sizes as 3x1, true/false, same/valid (SAME/VALID), or lo:hi pairs per dim as 1:2x0:1.
N*LAYER and N*(LAYER LAYER ...) repeat. JSON (a list of dicts) is accepted too.
  --encoder "4*(conv:k=3,p=1 conv:k=3,p=1 maxpool:k=2) conv:k=3,p=1"
  --encoder "conv:kernel_size=3,padding=same maxpool:pool_size=2"      (keras)
  --up k=2,s=2"""


def _value(text: str, where: str) -> Any:
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("same", "valid"):
        return text
    parts = text.lower().split("x")
    try:
        if any(":" in p for p in parts):
            pairs = [tuple(int(v, 10) for v in p.split(":")) for p in parts]
            if any(len(p) != 2 for p in pairs):
                raise ValueError
            return tuple(pairs)
        vals = tuple(int(p, 10) for p in parts)
    except ValueError:
        raise ValueError(
            f"{where}: cannot read {text!r}; give an int, per-dim ints as 3x1, true/false, "
            "same/valid, or lo:hi pairs as 1:2x0:1"
        ) from None
    return vals[0] if len(vals) == 1 else vals


def _expand(text: str) -> list[str]:
    """Layer tokens with N*(...) and N*LAYER repeated (bounded)."""
    import re

    group = re.compile(r"(\d+)\s*\*\s*\(([^()]*)\)")
    single = re.compile(r"(?<![\w:=,])(\d+)\s*\*\s*([^\s()]+)")

    def repeat(m: Any) -> str:
        body = m.group(2).split()
        if int(m.group(1)) * len(body) > _MAX_LAYERS:
            raise ValueError(f"more than {_MAX_LAYERS} layers: check the repeat counts")
        return " ".join(body * int(m.group(1)))

    for _ in range(100):
        new = single.sub(repeat, group.sub(repeat, text))
        if new == text:
            break
        text = new
        if len(text.split()) > _MAX_LAYERS:
            raise ValueError(f"more than {_MAX_LAYERS} layers: check the repeat counts")
    if "(" in text or ")" in text or "*" in text:
        raise ValueError(f"unbalanced repeat in {text.strip()!r}: write N*(LAYER LAYER ...)")
    return text.split()


def parse_layers(text: str, convention: str) -> list[dict]:
    """The command line's --encoder: TYPE:ARG=VALUE,... tokens (see LAYER_SYNTAX) or JSON."""
    import json

    if text.strip().startswith("["):
        layers = json.loads(text)
        if not isinstance(layers, list):
            raise ValueError("--encoder JSON must be a list of layer dicts")
        return layers
    out = []
    for n, token in enumerate(_expand(text)):
        kind, _, rest = token.partition(":")
        if kind not in TYPES:
            raise ValueError(
                f"layer {n} {token!r}: the type must be one of {', '.join(TYPES)} "
                f"(write TYPE:ARG=VALUE,...)"
            )
        spec: dict[str, Any] = {"type": kind}
        names = _NAMES[convention][kind]
        spec.update(_args_of(rest, f"layer {n} {token!r}", names))
        out.append(spec)
    return out


def parse_up(text: str, convention: str) -> dict:
    """The command line's --up: ARG=VALUE,... (k, s, d or the framework's names) or JSON."""
    import json

    if text.strip().startswith("{"):
        up = json.loads(text)
        if not isinstance(up, dict):
            raise ValueError("--up JSON must be a dict")
        return up
    kname, sname, dname = _UP[convention]
    return _args_of(text, f"--up {text!r}", (kname, sname, None, dname, None))


def _args_of(text: str, where: str, names: tuple) -> dict:
    spec: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise ValueError(f"{where}: {item!r} is not ARG=VALUE")
        if key in _ALIASES:
            name = names[_ALIASES[key]]
            if name is None:
                raise ValueError(
                    f"{where}: this layer has no {key} ({'/'.join(n for n in names if n)})"
                )
            key = name
        spec[key] = _value(value, where)
    return spec
