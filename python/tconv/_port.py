"""port: the same transposed convolution, weights included, in another framework.

Every framework's layer is the full (uncropped) scatter result of the same kernel, stride and
dilation, seen through a window: per dimension, the cells cropped at the start (`start`, < 0
when cells before the full result are added) and at the end (`end`, < 0 when cells are added
past it; added cells hold only the bias). This module is the one place that knows each
framework's window (through the compiled rules of tconv._core, via tconv._solve's candidates)
and its weight layout. A port picks the target layer whose window holds the source's, and
`finish` crops the difference, adds the bias-only cells and the bias the target cannot.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _core, shapes
from ._args import ints_per_dim
from ._dialects import CONVENTIONS, DIALECTS
from ._errors import BackendWarning, ShapeError
from ._rules import full_length, output_padding_limit
from ._solve import Solution, _compatible, _Dim, _dims, _make, _mode_class

__all__ = ["FRAMEWORKS", "Port", "port"]

FRAMEWORKS = ("torch", "keras", "onnx", "tf_nn", "jax")
# Weight layouts: axis labels, "i"/"o" the input/output channels, "k" the kernel axes in order.
# JAX's lax.conv_transpose (transpose_kernel=False) correlates the stride-dilated input with
# the kernel as given, so its kernel is also flipped in every spatial axis.
_LAYOUT = {"torch": "io*", "onnx": "io*", "keras": "*oi", "tf_nn": "*oi", "jax": "*io"}
_CHANNELS_FIRST = ("torch", "onnx")
_TAKES_BIAS = ("torch", "keras", "onnx")
# A source whose window is not given by the input size is measured at these two sizes: if the
# windows agree the layer does not depend on the input size.
_PROBES = (16, 17)
# Target layers checked through tconv.shapes per port (about 0.3 ms each), best first.
_MAX_TRIES = 32


@dataclass(frozen=True)
class _Layer:
    """A source layer in framework-neutral terms; the kernel in torch's layout, unflipped."""

    rank: int
    kernel_size: tuple
    stride: tuple
    dilation: tuple
    groups: int
    in_channels: int | None
    out_channels: int | None
    input_size: tuple | None  # spatial; None: the window does not depend on it
    batch: Any
    start: tuple  # per dim: cells cropped at the start of the full result (< 0: added)
    end: tuple  # per dim: cells cropped at its end (< 0: added)
    has_bias: bool
    kernel: Any = None
    bias: Any = None
    source: str = ""
    source_layout: str = ""


@dataclass(frozen=True)
class Port:
    """The source layer as the target framework's own op, plus the steps that make its output
    the source's numbers. See :func:`port`."""

    source: str
    target: str
    params: dict
    weights: tuple | None
    crop: tuple
    pad: tuple
    rank: int
    takes_bias: bool  # the target op takes the bias (else finish adds it, if there is one)
    adds_bias: bool  # finish adds the bias
    bias: Any = field(default=None, repr=False)
    notes: tuple = ()
    solution: Solution | None = field(default=None, repr=False)
    _perm: tuple = field(default=(), repr=False)
    _flip: tuple = field(default=(), repr=False)

    @property
    def exact(self) -> bool:
        """True when finish only adds the bias (no crop, no added cells)."""
        return not any(a or b for a, b in (*self.crop, *self.pad))

    def finish(self, y: Any) -> Any:
        """The target op's output (numpy, the target's layout, batched) -> the source's
        numbers: crop, add the cells only the bias reaches, add the bias."""
        import numpy as np

        y = np.asarray(y)
        axes = self._spatial_axes(y.ndim)
        index: list[Any] = [slice(None)] * y.ndim
        for ax, (a, b) in zip(axes, self.crop):
            index[ax] = slice(a, y.shape[ax] - b)
        y = y[tuple(index)]
        if any(a or b for a, b in self.pad):
            widths = [(0, 0)] * y.ndim
            for ax, pair in zip(axes, self.pad):
                widths[ax] = pair
            y = np.pad(y, widths)
        if self.adds_bias:
            if self.bias is None:
                raise ValueError(
                    "finish adds the layer's bias here, and port was given no weights: pass "
                    "(kernel, bias) to tconv.port"
                )
            y = y + self._bias_view(np.asarray(self.bias, dtype=y.dtype), y.ndim)
        return y

    def _spatial_axes(self, ndim: int) -> list[int]:
        first = 2 if self.target in _CHANNELS_FIRST else 1
        return list(range(first, first + self.rank))

    def _bias_view(self, bias: Any, ndim: int) -> Any:
        if self.target in _CHANNELS_FIRST:
            return bias.reshape((-1,) + (1,) * self.rank)
        return bias

    def code(self) -> str:
        """Runnable code for the target: reads `x` (the target's layout) and `kernel`, `bias`
        (numpy, the source's layout), leaves the source layer's numbers in `y`."""
        from ._port_code import port_code

        return port_code(self)

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "target": self.target,
            "params": _jsonable(self.params),
            "crop": [list(c) for c in self.crop],
            "pad": [list(p) for p in self.pad],
            "exact": self.exact,
            "notes": list(self.notes),
            "code": self.code(),
        }

    def __str__(self) -> str:
        return self.code()


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {k: _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    return v


# ---- argument helpers ---------------------------------------------------------------------


def _ints(value: Any, rank: int, name: str, source: str) -> tuple:
    """ints_per_dim with messages that name the source layer."""

    def error(kind: str, whole: Any) -> Exception:
        if kind == "type":
            return TypeError(f"{source} layer: {name} must be an int or {rank} ints, got {whole!r}")
        return ValueError(
            f"{source} layer: {name} must be an int or {rank} ints for a {rank}-d layer, "
            f"got {whole!r}"
        )

    return ints_per_dim(value, rank, name, error=error)


def _rank(layer: dict, key: str, kernel: Any, input_shape: Any, source: str) -> int:
    k = layer.get(key)
    if k is not None and not isinstance(k, int):
        return len(tuple(k))
    if kernel is not None:
        return int(kernel.ndim) - 2
    if input_shape is not None:
        return len(input_shape) - 2
    raise ValueError(
        f"{source} layer: the spatial rank is unknown ({key}={k!r}); give {key} as a tuple "
        "(one per spatial dim), the weights, or input_shape"
    )


def _split_weights(weights: Any, source: str) -> tuple[Any, Any]:
    if weights is None:
        return None, None
    import numpy as np

    if isinstance(weights, np.ndarray) or not isinstance(weights, (tuple, list)):
        raise TypeError(
            f"weights must be a (kernel, bias) pair of numpy arrays in {source}'s layout "
            f"(bias may be None), got {type(weights).__name__}"
        )
    if len(weights) != 2:
        raise ValueError(f"weights must be (kernel, bias), got {len(weights)} items")
    kernel = np.asarray(weights[0])
    bias = None if weights[1] is None else np.asarray(weights[1])
    return kernel, bias


def _input_split(
    input_shape: Any, rank: int, channels_first: bool, source: str
) -> tuple[Any, Any, tuple | None]:
    """(batch, channels, spatial) of a full input shape in the source's layout."""
    if input_shape is None:
        return None, None, None
    shape = tuple(input_shape)
    if len(shape) != rank + 2:
        order = "(N, C, *spatial)" if channels_first else "(N, *spatial, C)"
        raise ValueError(
            f"input_shape must be the full input shape {order} of the {rank}-d {source} "
            f"layer ({rank + 2} entries), got {shape}"
        )
    if channels_first:
        return shape[0], shape[1], tuple(shape[2:])
    return shape[0], shape[-1], tuple(shape[1:-1])


def _unknown_keys(layer: dict, known: Sequence[str], source: str, what: str) -> None:
    extra = sorted(set(layer) - set(known))
    if extra:
        raise ValueError(
            f"{source} layer: unknown argument(s) {extra} for {what}; expected some of "
            f"{sorted(known)}"
        )


# ---- weights: one permutation and flip per (source, target) --------------------------------


def _labels(fw: str, rank: int) -> list[str]:
    ks = [f"k{j}" for j in range(rank)]
    out: list[str] = []
    for c in _LAYOUT[fw]:
        out.extend(ks if c == "*" else [c])
    return out


def weight_transform(source: str, target: str, rank: int) -> tuple[tuple, tuple]:
    """(perm, flip_axes): target kernel = flip(source_kernel.transpose(perm), flip_axes)."""
    src, tgt = _labels(source, rank), _labels(target, rank)
    perm = tuple(src.index(lab) for lab in tgt)
    flipped = (source == "jax") != (target == "jax")
    flip = tuple(j for j, lab in enumerate(tgt) if lab.startswith("k")) if flipped else ()
    return perm, flip


def _convert_kernel(kernel: Any, source: str, target: str, rank: int) -> Any:
    import numpy as np

    perm, flip = weight_transform(source, target, rank)
    out = kernel.transpose(perm)
    if flip:
        out = np.flip(out, flip)
    return np.array(out, order="C")  # a copy: a flipped length-1 axis keeps a negative stride


# ---- sources: the layer's window in the full result -------------------------------------------


def _window(fn: Any, rank: int, sizes: tuple | None, needs_input: str | None) -> list:
    """Per dim (start, end) from fn(j, i); `sizes` None: probed, and refused if it varies."""
    if sizes is not None:
        return [fn(j, sizes[j]) for j in range(rank)]
    a = [fn(j, _PROBES[0]) for j in range(rank)]
    b = [fn(j, _PROBES[1]) for j in range(rank)]
    if a != b or needs_input:
        raise ValueError(
            f"{needs_input or 'this layer'}'s output window depends on the input size: "
            "pass input_shape (the full input shape in the source's layout)"
        )
    return a


def _from_torch(layer: dict, kernel: Any, bias: Any, input_shape: Any) -> _Layer:
    known = (
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
        "padding",
        "output_padding",
        "groups",
        "bias",
        "dilation",
        "padding_mode",
        "device",
        "dtype",
    )
    _unknown_keys(layer, known, "torch", "nn.ConvTransposeNd")
    if layer.get("padding_mode", "zeros") != "zeros":
        raise ValueError(
            "torch layer: ConvTranspose supports only padding_mode='zeros' "
            f"(got {layer['padding_mode']!r})"
        )
    for key in ("in_channels", "out_channels", "kernel_size"):
        if key not in layer:
            raise ValueError(f"torch layer: {key} is required (nn.ConvTransposeNd's argument)")
    r = _rank(layer, "kernel_size", kernel, input_shape, "torch")
    k = _ints(layer["kernel_size"], r, "kernel_size", "torch")
    s = _ints(layer.get("stride", 1), r, "stride", "torch")
    p = _ints(layer.get("padding", 0), r, "padding", "torch")
    op = _ints(layer.get("output_padding", 0), r, "output_padding", "torch")
    d = _ints(layer.get("dilation", 1), r, "dilation", "torch")
    g = layer.get("groups", 1)
    batch, _, sizes = _input_split(input_shape, r, True, "torch")
    shapes.torch(
        (batch, layer["in_channels"], *(sizes or (_PROBES[0],) * r)),
        layer["in_channels"],
        layer["out_channels"],
        k,
        s,
        p,
        op,
        g,
        d,
        dims=r,
    )
    win = [(p[j], p[j] - op[j]) for j in range(r)]
    return _finish_source(
        ("torch", "torch"),
        r,
        k,
        s,
        d,
        g,
        (layer["in_channels"], layer["out_channels"]),
        sizes,
        batch,
        win,
        bool(layer.get("bias", True)),
        (kernel, bias),
    )


def _finish_source(
    names: tuple[str, str],
    r: int,
    k: tuple,
    s: tuple,
    d: tuple,
    g: int,
    channels: tuple,
    sizes: tuple | None,
    batch: Any,
    win: list,
    has_bias: bool,
    weights: tuple,
) -> _Layer:
    """Check the weights against the layer and bring the kernel to torch's layout.
    `names`: (the source framework, the framework whose weight layout its kernel has)."""
    source, layout = names
    cin, cout = channels
    kernel, bias = weights
    canon = None
    if kernel is not None:
        if kernel.ndim != r + 2:
            raise ValueError(
                f"{source} kernel has {kernel.ndim} dims, but a {r}-d layer's has {r + 2}: "
                f"{_layout_words(layout)}"
            )
        cin = cin if cin is not None else _channel_of(layout, kernel, "i", r)
        cout = cout if cout is not None else _channel_of(layout, kernel, "o", r) * g
        expected = _weight_shape(layout, r, k, cin, cout, g)
        if tuple(kernel.shape) != expected:
            raise ValueError(
                f"{source} kernel has shape {tuple(kernel.shape)}, but this layer needs "
                f"{expected} ({_layout_words(layout)})"
            )
        canon = _convert_kernel(kernel, layout, "torch", r)
        if bias is not None and tuple(bias.shape) != (cout,):
            raise ValueError(f"bias has shape {tuple(bias.shape)}, expected ({cout},)")
        if bias is None and has_bias and source in _TAKES_BIAS:
            raise ValueError(
                f"the {source} layer has a bias but weights carry none: pass (kernel, bias), "
                "or declare the layer without a bias"
            )
        if bias is not None and not has_bias:
            raise ValueError(
                f"weights carry a bias but the {source} layer has none: pass (kernel, None)"
            )
    has_bias = bias is not None if kernel is not None else has_bias and source in _TAKES_BIAS
    return _Layer(
        r,
        k,
        s,
        d,
        g,
        cin,
        cout,
        sizes,
        batch,
        tuple(a for a, _ in win),
        tuple(b for _, b in win),
        has_bias,
        canon,
        bias,
        source,
        layout,
    )


def _layout_words(fw: str) -> str:
    return {
        "torch": "(in_channels, out_channels/groups, *kernel)",
        "onnx": "(C, M/group, *kernel_shape)",
        "keras": "(*kernel, filters, in_channels)",
        "tf_nn": "(*kernel, out_channels, in_channels)",
        "jax": "(*kernel, in, out), flipped in every spatial axis (transpose_kernel=False)",
    }[fw]


def _channel_of(fw: str, kernel: Any, which: str, rank: int) -> int:
    return int(kernel.shape[_labels(fw, rank).index(which)])


def _weight_shape(fw: str, r: int, k: tuple, cin: int | None, cout: int | None, g: int) -> tuple:
    dims = {"i": cin, "o": None if cout is None else cout // g}
    out: list = []
    for c in _LAYOUT[fw]:
        out.extend(k if c == "*" else [dims[c]])
    return tuple(out)


_KERAS_IGNORED = (
    "kernel_initializer",
    "bias_initializer",
    "kernel_regularizer",
    "bias_regularizer",
    "activity_regularizer",
    "kernel_constraint",
    "bias_constraint",
    "name",
    "trainable",
    "dtype",
)


def _from_keras(layer: dict, kernel: Any, bias: Any, input_shape: Any) -> _Layer:
    known = (
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "output_padding",
        "data_format",
        "dilation_rate",
        "activation",
        "use_bias",
        *_KERAS_IGNORED,
    )
    _unknown_keys(layer, known, "keras", "layers.ConvNDTranspose")
    if layer.get("activation") not in (None, "linear"):
        raise ValueError(
            "keras layer: port moves the transposed convolution only; apply the activation "
            f"{layer['activation']!r} after it (or pass activation=None)"
        )
    for key in ("filters", "kernel_size"):
        if key not in layer:
            raise ValueError(f"keras layer: {key} is required (ConvNDTranspose's argument)")
    r = _rank(layer, "kernel_size", kernel, input_shape, "keras")
    k = _ints(layer["kernel_size"], r, "kernel_size", "keras")
    s = _ints(layer.get("strides", 1), r, "strides", "keras")
    d = _ints(layer.get("dilation_rate", 1), r, "dilation_rate", "keras")
    mode = layer.get("padding", "valid")
    op_arg = layer.get("output_padding")
    op = None if op_arg is None else _ints(op_arg, r, "output_padding", "keras")
    fmt = layer.get("data_format") or "channels_last"
    batch, cin, sizes = _input_split(input_shape, r, fmt == "channels_first", "keras")
    if kernel is not None:
        cin = _channel_of("keras", kernel, "i", r)
    shape_in = (batch, *(sizes or (_PROBES[0],) * r))
    c = 1 if cin is None else cin  # the channels do not bear on the window
    shape_in = (batch, c, *shape_in[1:]) if fmt == "channels_first" else (*shape_in, c)
    shapes.keras(shape_in, layer["filters"], k, s, mode, op_arg, fmt, d, dims=r)

    def win(j: int, i: int) -> tuple[int, int]:
        lo, hi, extra = _core.resolve_keras_padding(
            str(mode).lower(), k[j], s[j], d[j], None if op is None else op[j]
        )
        return lo, hi - extra

    return _finish_source(
        ("keras", "keras"),
        r,
        k,
        s,
        d,
        1,
        (cin, layer["filters"]),
        sizes,
        batch,
        _window(win, r, sizes, None),
        bool(layer.get("use_bias", True)),
        (kernel, bias),
    )


def _from_onnx(layer: dict, kernel: Any, bias: Any, input_shape: Any) -> _Layer:
    known = (
        "kernel_shape",
        "strides",
        "pads",
        "dilations",
        "output_padding",
        "output_shape",
        "auto_pad",
        "group",
    )
    _unknown_keys(layer, known, "onnx", "the ConvTranspose node's attributes")
    r = _rank(layer, "kernel_shape", kernel, input_shape, "onnx")
    if layer.get("kernel_shape") is None and kernel is None:
        raise ValueError("onnx layer: give kernel_shape or the weights (W)")
    k = tuple(layer["kernel_shape"]) if layer.get("kernel_shape") else tuple(kernel.shape[2:])
    s = _ints(layer.get("strides") or 1, r, "strides", "onnx")
    d = _ints(layer.get("dilations") or 1, r, "dilations", "onnx")
    op = _ints(layer.get("output_padding") or 0, r, "output_padding", "onnx")
    pads = tuple(layer.get("pads") or (0,) * (2 * r))
    if len(pads) != 2 * r:
        raise ValueError(f"onnx layer: pads needs {2 * r} values (begins, then ends), got {pads}")
    auto = layer.get("auto_pad", "NOTSET")
    oshape = layer.get("output_shape")
    g = layer.get("group", 1)
    batch, cin, sizes = _input_split(input_shape, r, True, "onnx")
    if kernel is not None:
        cin = kernel.shape[0]
    wshape = (cin, None if kernel is None else kernel.shape[1], *k)
    shapes.onnx(
        (batch, cin, *(sizes or (_PROBES[0],) * r)),
        wshape,
        strides=list(s),
        pads=list(pads),
        dilations=list(d),
        output_padding=list(op),
        output_shape=oshape,
        auto_pad=auto,
        group=g,
        kernel_shape=list(k),
    )
    osp = None if oshape is None else tuple(oshape)[-r:]

    def win(j: int, i: int) -> tuple[int, int]:
        o = None if osp is None else osp[j]
        _, lo, hi, pop = _core.onnx_resolve(
            i, k[j], s[j], d[j], op[j], auto, pads[j], pads[r + j], o
        )
        return lo, hi - pop

    needs = "ONNX ConvTranspose with output_shape" if oshape is not None else None
    cout = None if kernel is None else kernel.shape[1] * g
    return _finish_source(
        ("onnx", "onnx"),
        r,
        k,
        s,
        d,
        g,
        (cin, cout),
        sizes,
        batch,
        _window(win, r, sizes, needs),
        bias is not None,
        (kernel, bias),
    )


def _from_tf_nn(layer: dict, kernel: Any, bias: Any, input_shape: Any) -> _Layer:
    known = ("output_shape", "strides", "padding", "data_format", "dilations", "filters_shape")
    _unknown_keys(layer, known, "tf_nn", "tf.nn.conv_transpose")
    if "output_shape" not in layer:
        raise ValueError("tf_nn layer: output_shape is required (tf.nn.conv_transpose's argument)")
    fshape = tuple(kernel.shape) if kernel is not None else layer.get("filters_shape")
    if fshape is None:
        raise ValueError("tf_nn layer: give the weights (filters) or filters_shape")
    r = len(fshape) - 2
    fmt = layer.get("data_format") or ("NWC" if r == 1 else "NHWC" if r == 2 else "NDHWC")
    first = str(fmt).upper().startswith("NC")
    if input_shape is None:
        raise ValueError(
            "tf_nn layer: tf.nn.conv_transpose's window depends on the input size: pass "
            "input_shape (the full input shape)"
        )
    batch, _, sizes = _input_split(input_shape, r, first, "tf_nn")
    oshape = tuple(layer["output_shape"])
    padding = layer.get("padding", "SAME")
    shapes.tf_nn(
        tuple(input_shape),
        fshape,
        oshape,
        layer.get("strides", 1),
        padding,
        fmt,
        layer.get("dilations"),
    )
    s = _tf_per_dim(layer.get("strides", 1), r, first, "strides")
    d = _tf_per_dim(layer.get("dilations") or 1, r, first, "dilations")
    mode, pairs = shapes._tf_padding(padding, r, not first)
    osp = oshape[2:] if first else oshape[1:-1]
    k = tuple(fshape[:r])
    cout = oshape[1] if first else oshape[-1]
    if cout != fshape[-2]:
        raise ValueError(
            "tf_nn layer: a grouped tf.nn.conv_transpose (filter depth below the output "
            "depth) is not supported by port"
        )

    def win(j: int, i: int) -> tuple[int, int]:
        _, lo, hi, pop = _core.tf_transposed(i, osp[j], k[j], s[j], d[j], mode, *pairs[j])
        return lo, hi - pop

    assert sizes is not None
    return _finish_source(
        ("tf_nn", "tf_nn"),
        r,
        k,
        s,
        d,
        1,
        (fshape[-1], cout),
        sizes,
        batch,
        _window(win, r, sizes, None),
        bias is not None,
        (kernel, bias),
    )


def _tf_per_dim(value: Any, r: int, first: bool, name: str) -> tuple:
    """tf.nn's strides/dilations (already checked by shapes.tf_nn) for the spatial dims."""
    return tuple(shapes._tf_list(value, r, not first, name))


def _from_jax(layer: dict, kernel: Any, bias: Any, input_shape: Any) -> _Layer:
    known = (
        "strides",
        "padding",
        "rhs_dilation",
        "dimension_numbers",
        "transpose_kernel",
        "precision",
        "preferred_element_type",
        "use_consistent_padding",
        "rhs_shape",
    )
    _unknown_keys(layer, known, "jax", "lax.conv_transpose")
    if layer.get("dimension_numbers") is not None:
        raise ValueError(
            "jax layer: port reads JAX's default dimension_numbers (channels-last input, "
            "kernel (*kernel, in, out)); transpose x and the kernel to them first"
        )
    rshape = tuple(kernel.shape) if kernel is not None else layer.get("rhs_shape")
    if rshape is None:
        raise ValueError("jax layer: give the weights (rhs) or rhs_shape")
    r = len(rshape) - 2
    tk = bool(layer.get("transpose_kernel", False))
    layout = "keras" if tk else "jax"  # transpose_kernel=True takes Keras' kernel as is
    if "strides" not in layer or "padding" not in layer:
        raise ValueError("jax layer: strides and padding are required (lax.conv_transpose's)")
    s = _ints(layer["strides"], r, "strides", "jax")
    d = _ints(layer.get("rhs_dilation") or 1, r, "rhs_dilation", "jax")
    padding = layer["padding"]
    consistent = bool(layer.get("use_consistent_padding", False))
    if isinstance(padding, str) and padding not in ("SAME", "VALID"):
        raise ValueError(f"jax layer: port reads padding 'SAME', 'VALID' or pairs, got {padding!r}")
    batch, _, sizes = _input_split(input_shape, r, False, "jax")
    shapes.jax(
        (batch, *(sizes or (_PROBES[0],) * r), rshape[-2] if not tk else rshape[-1]),
        rshape,
        s,
        padding,
        rhs_dilation=d,
        transpose_kernel=tk,
        use_consistent_padding=consistent,
    )
    k = tuple(rshape[:r])

    def win(j: int, i: int) -> tuple[int, int]:
        span = _core.effective_kernel(k[j], d[j]) - 1
        if isinstance(padding, str):
            b, a = _core.jax_resolve(i, k[j], s[j], d[j], padding)[4:]
        else:
            b, a = padding[j]
            if consistent:
                b, a = span - b, span - a
        return span - b, span - a

    channels = (rshape[-1], rshape[-2]) if tk else (rshape[-2], rshape[-1])
    return _finish_source(
        ("jax", layout),
        r,
        k,
        s,
        d,
        1,
        channels,
        sizes,
        batch,
        _window(win, r, sizes, None),
        bias is not None,
        (kernel, bias),
    )


_SOURCES = {
    "torch": _from_torch,
    "keras": _from_keras,
    "onnx": _from_onnx,
    "tf_nn": _from_tf_nn,
    "jax": _from_jax,
}


# ---- targets: the layer whose window holds the source's ---------------------------------------


def _candidates(conv: str, lay: _Layer, j: int, i: int) -> list[_Dim]:
    k, s, d = lay.kernel_size[j], lay.stride[j], lay.dilation[j]
    near = _NEAREST.get(conv)
    if near is None:  # a padding string: its few layers are all there is
        return list(_dims(conv, i, k, s, d, None))
    return near(i, k, s, d, lay.start[j], lay.end[j])


# The layers of a numeric-padding framework nearest the window that crops `start` cells of the
# full result at the start and `end` at the end (negative: cells past it).


def _nearest_torch(i: int, k: int, s: int, d: int, start: int, end: int) -> list[_Dim]:
    m = output_padding_limit(s, d)
    full = full_length(i, k, s, d)
    out: list[_Dim] = []
    if start >= 0:
        out += _dims("torch", i, k, s, d, full - start - end, lo=start)
    # the nearest layers that hold the window: crop as much as both ends allow, and (when
    # cells past the full result are wanted) the one output_padding reaches them from
    for top in dict.fromkeys((max(end, 0), end)):
        p = max(0, min(start, top + m - 1))
        op = min(max(p - end, 0), m - 1)
        out.append(_Dim(k, s, d, p, p, op, full - 2 * p + op, (p, op), (1, 0, p, op)))
    return out


def _nearest_onnx(i: int, k: int, s: int, d: int, start: int, end: int) -> list[_Dim]:
    m = output_padding_limit(s, d)
    b, e = max(start, 0), max(end, 0)
    want = max(-end, 0)
    # onnxruntime refuses some output_padding >= stride: smaller ones, the rest as pad
    ops = dict.fromkeys((min(want, m - 1), min(want, s - 1), 0))
    out = []
    for op in ops:
        o, plo, phi, pop = _core.onnx_resolve(i, k, s, d, op, "NOTSET", b, e, None)
        out.append(_Dim(k, s, d, plo, phi, pop, o, (b, e, op), (op > 0, b != e, b + e, op)))
    return out


def _nearest_jax(i: int, k: int, s: int, d: int, start: int, end: int) -> list[_Dim]:
    span = _core.effective_kernel(k, d) - 1
    same_valid = list(_dims("jax", i, k, s, d, None))[:2]
    b, a = span - start, span - end
    o, plo, phi, _, _, _ = _core.jax_resolve(i, k, s, d, "EXPLICIT", b, a)
    explicit = _Dim(k, s, d, plo, phi, 0, o, ("EXPLICIT", b, a), (2, b != a, abs(b - a), b + a))
    return [*same_valid, explicit]


_NEAREST = {"torch": _nearest_torch, "onnx": _nearest_onnx, "jax": _nearest_jax}


def _fit(x: _Dim, start: int, end: int) -> tuple[tuple, tuple] | None:
    """((crop_start, crop_end), (pad_start, pad_end)) that turn candidate x's window into the
    source's, or None when x misses cells of the full result the source holds."""
    ts, te = x.pad_lo, x.pad_hi - x.output_padding
    if ts > max(start, 0) or te > max(end, 0) or x.output < 1:
        return None
    return (max(start - ts, 0), max(end - te, 0)), (max(ts - start, 0), max(te - end, 0))


def _choices(conv: str, lay: _Layer, sizes: tuple) -> list[list[tuple]]:
    """Layers to try, best first: per dim (candidate, crop, pad). Per mode class (one padding
    string for every dim), the best candidate of each dim, then the next best, and so on."""
    per_class: dict[Any, list] = {}
    for j in range(lay.rank):
        for x in _candidates(conv, lay, j, sizes[j]):
            fit = _fit(x, lay.start[j], lay.end[j])
            if fit is not None:
                cost = (sum(fit[0]) + sum(fit[1]), x.key)
                per_dim = per_class.setdefault(_mode_class(conv, x), [[] for _ in sizes])
                per_dim[j].append((cost, x, *fit))
    tries = []
    for per_dim in per_class.values():
        if not all(per_dim):
            continue
        for v in per_dim:
            v.sort(key=lambda e: e[0])
        for level in range(max(len(v) for v in per_dim)):
            tries.append([v[min(level, len(v) - 1)] for v in per_dim])
    tries.sort(key=lambda t: (sum(e[0][0] for e in t), [e[0][1] for e in t]))
    return [[e[1:] for e in t] for t in tries]


def _no_groups(target: str, lay: _Layer) -> str:
    g = lay.groups
    ci = "C_in" if lay.in_channels is None else lay.in_channels
    co = "C_out" if lay.out_channels is None else lay.out_channels
    gi = "C_in // groups" if lay.in_channels is None else lay.in_channels // g
    go = "C_out // groups" if lay.out_channels is None else lay.out_channels // g
    return (
        f"{target} has no grouped transposed convolution ({DIALECTS[target].layer} takes no "
        f"groups) and this layer has groups={g}. Nearest recipe: the same layer with "
        "groups=1 and a block-diagonal kernel (zeros between the groups):\n"
        f"dense = np.zeros(({ci}, {co}, *kernel.shape[2:]), kernel.dtype)\n"
        f"for g in range({g}):\n"
        f"    dense[g * {gi}:(g + 1) * {gi}, g * {go}:(g + 1) * {go}] = "
        f"kernel[g * {gi}:(g + 1) * {gi}]\n"
        f"# then tconv.port(the layer with groups=1, (dense, bias), source={lay.source!r}, "
        f"target={target!r})"
    )


def _to_target(lay: _Layer, target: str, strict: bool = True, consistent: bool = False) -> Port:
    if lay.groups > 1 and target not in ("torch", "onnx"):
        raise ValueError(_no_groups(target, lay))
    if lay.input_size is None and target == "tf_nn":
        raise ValueError(
            "tf.nn.conv_transpose takes the output shape, which depends on the input size: "
            "pass input_shape"
        )
    sizes = lay.input_size or (_PROBES[0],) * lay.rank
    refusals: list[str] = []
    fallback = None
    for choice in _choices(target, lay, sizes)[:_MAX_TRIES]:
        dims = [c[0] for c in choice]
        if not _compatible(target, dims):
            continue
        sol = _make(
            target,
            dims,
            sizes,
            lay.in_channels,
            lay.out_channels,
            refusals,
            consistent and target == "jax",
        )
        if sol is None:
            continue
        found = (sol, tuple(c[1] for c in choice), tuple(c[2] for c in choice))
        if not sol.notes:  # a layer every backend runs beats one with a smaller crop
            return _build(lay, target, *found, strict)
        fallback = fallback or found
    if fallback is not None:
        return _build(lay, target, *fallback, strict)
    why = refusals[0] if refusals else "no layer of it holds this window"
    raise ValueError(
        f"{target} cannot run this layer: {why}. Nearest recipe: lax.conv_transpose runs "
        f"every window (tconv.port(..., target='jax')), or compute it with "
        "tconv.conv_transpose"
    )


def _build(
    lay: _Layer, target: str, sol: Solution, crop: tuple, pad: tuple, strict: bool = True
) -> Port:
    padded = any(a or b for a, b in pad)
    takes_bias = lay.has_bias and target in _TAKES_BIAS and not padded
    params = _target_params(lay, target, sol, takes_bias, strict)
    weights = None
    if lay.kernel is not None:
        weights = (
            _convert_kernel(lay.kernel, "torch", target, lay.rank),
            lay.bias if takes_bias else None,
        )
    perm, flip = weight_transform(lay.source_layout, target, lay.rank)
    notes = list(sol.notes)
    if target == "tf_nn" and not isinstance(lay.batch, int):
        notes.append("output_shape[0] is the batch size (1 here): pass tf.shape(x)[0]")
    if target == "onnx" and lay.groups > 1:
        # measured with onnx 1.23: onnx.reference's ConvTranspose slices a group's weights by
        # the output channels and hands every group the whole bias
        notes.append(
            "the onnx reference evaluator (onnx.reference) cannot run grouped ConvTranspose: it "
            "raises, except depthwise (C = M = group), where it adds group 0's bias to every "
            "group; onnxruntime runs it"
        )
    if lay.has_bias and lay.bias is None and not takes_bias:
        notes.append("the bias is added after this op (it takes none here): the code adds `bias`")
    return Port(
        lay.source,
        target,
        params,
        weights,
        crop,
        pad,
        lay.rank,
        takes_bias,
        lay.has_bias and not takes_bias,
        lay.bias if lay.has_bias else None,
        tuple(notes),
        sol,
        perm,
        flip,
    )


def _need(value: Any, what: str, target: str, strict: bool) -> Any:
    if value is None and strict:
        raise ValueError(
            f"{target} needs {what}, which this layer description does not give: pass the "
            "weights or input_shape"
        )
    return value


def _target_params(lay: _Layer, target: str, sol: Solution, takes_bias: bool, strict: bool) -> dict:
    """The target op's arguments; `strict` False leaves unknown channel counts None."""
    p = dict(sol.params)
    if target == "torch":
        out = {
            "in_channels": _need(lay.in_channels, "in_channels", target, strict),
            "out_channels": _need(lay.out_channels, "out_channels", target, strict),
            **p,
        }
        if lay.groups > 1:
            out["groups"] = lay.groups
        out["bias"] = takes_bias
        return out
    if target == "keras":
        return {
            "filters": _need(lay.out_channels, "filters", target, strict),
            **p,
            "use_bias": takes_bias,
        }
    if target == "onnx":
        if lay.groups > 1:
            p["group"] = lay.groups
        return p
    if target == "tf_nn":
        batch = lay.batch if isinstance(lay.batch, int) else 1
        cout = _need(lay.out_channels, "the output channels", target, strict)
        return {
            "output_shape": [batch, *p["output_shape"], cout],
            "strides": p["strides"],
            "padding": p["padding"],
            "dilations": p["dilations"],
        }
    pad = p["padding"]
    out = {
        "strides": tuple(p["strides"]),
        "padding": pad if isinstance(pad, str) else tuple(tuple(t) for t in pad),
    }
    if any(v != 1 for v in p["rhs_dilation"]):
        out["rhs_dilation"] = tuple(p["rhs_dilation"])
    return out


def _source_layer(layer: Any, weights: Any, source: str, input_shape: Any) -> _Layer:
    if source not in FRAMEWORKS:
        raise ValueError(f"source must be one of {', '.join(FRAMEWORKS)}; got {source!r}")
    if not isinstance(layer, dict):
        raise TypeError(
            f"layer must be a dict of the {source} layer's own arguments, got "
            f"{type(layer).__name__}"
        )
    kernel, bias = _split_weights(weights, source)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BackendWarning)
            lay = _SOURCES[source](layer, kernel, bias, input_shape)
    except ShapeError as exc:
        raise ShapeError(f"the {source} layer itself is refused: {exc}") from None
    for j, i in enumerate(lay.input_size or ()):
        full = full_length(i, lay.kernel_size[j], lay.stride[j], lay.dilation[j])
        if full - lay.start[j] - lay.end[j] < 1:
            raise ValueError(
                f"the {source} layer's output is empty in spatial dim {j} for input_shape "
                f"{tuple(input_shape)}: there is nothing to port"
            )
    return lay


def port(
    layer: dict,
    weights: Any = None,
    *,
    source: str,
    target: str,
    input_shape: Any = None,
) -> Any:
    """The same layer, weights included, in another framework.

    Parameters
    ----------
    layer : dict
        The source layer's arguments in its own names: torch ConvTransposeNd's constructor,
        keras ConvNDTranspose's, the ONNX node's attributes, tf.nn.conv_transpose's keyword
        arguments, lax.conv_transpose's (without the operands; ``filters_shape`` /
        ``rhs_shape`` give the kernel's shape when no weights are passed).
    weights : (kernel, bias) or None
        numpy arrays in the source's layout; bias may be None.
    source, target : {"torch", "keras", "onnx", "tf_nn", "jax"}
        ``target="all"``: a dict with every target's Port, or the reason (a string) there is
        none.
    input_shape : tuple, optional
        The full input shape in the source's layout; needed where the window depends on it
        (tf.nn, ONNX's output_shape).

    Returns
    -------
    Port
        ``params`` build the target's op, ``weights`` are in its layout, ``finish(y)`` turns its
        output into the source's numbers; ``crop``/``pad`` per spatial dim, ``exact``,
        ``notes`` and ``code()``.
    """
    lay = _source_layer(layer, weights, source, input_shape)
    if target == "all":
        table: dict[str, Any] = {}
        for t in FRAMEWORKS:
            try:
                table[t] = _to_target(lay, t)
            except ValueError as exc:
                table[t] = str(exc)
        return table
    if target not in FRAMEWORKS:
        raise ValueError(f"target must be one of {', '.join(FRAMEWORKS)} or 'all'; got {target!r}")
    return _to_target(lay, target)


_ELSEWHERE = "lax.conv_transpose holds every crop window (see the jax line)"


def solution_layer(src: Solution) -> _Layer:
    """A Solution's layer in port's terms: its window in the full result and the channel counts
    it has (unknown ones stay names in the printed code); no weights, no bias."""
    start, end = [], []
    for j in range(src.rank):
        i, k, s, d = src.input_size[j], src.kernel_size[j], src.stride[j], src.dilation[j]
        start.append(src.crop[j][0])
        end.append(full_length(i, k, s, d) - src.crop[j][0] - src.output_size[j])
    return _Layer(
        src.rank,
        tuple(src.kernel_size),
        tuple(src.stride),
        tuple(src.dilation),
        1,
        src.in_channels,
        src.out_channels,
        tuple(src.input_size),
        None,
        tuple(start),
        tuple(end),
        False,
        source=src.convention,
        source_layout=src.convention,
    )


def _why_not_torch(k: int, s: int, d: int) -> str:
    return (
        f"PyTorch's ConvTranspose crops the same number (padding) from both ends and can only "
        f"add cells at the end (output_padding < max(stride, dilation) = "
        f"{output_padding_limit(s, d)})"
    )


def _why_not_keras(k: int, s: int, d: int) -> str:
    return f"Keras only crops as padding='same' or 'valid' dictate for kernel {k}, stride {s}"


def _why_not_tf_nn(k: int, s: int, d: int) -> str:
    return (
        "tf.nn.conv_transpose derives the crop from output_shape and 'SAME'/'VALID', which "
        "put it elsewhere"
    )


_WHY_NOT = {
    "torch": _why_not_torch,
    "keras": _why_not_keras,
    "onnx": lambda k, s, d: "not expressible with onnx's padding",
    "tf_nn": _why_not_tf_nn,
    "jax": lambda k, s, d: "not expressible with jax's padding",
}


def _no_recipe(conv: str, j: int | None) -> str:
    where = f" in dimension {j}" if j is not None else ""
    return (
        f"no {conv} layer holds this window{where} (its padding and output_padding "
        f"cannot reach it with this kernel, stride and dilation); JAX's explicit pads hold "
        f"it (see the jax line), or compute it with tconv.conv_transpose"
    )


def _no_translation(conv: str, j: int, start: int, end: int, k: int, s: int, d: int) -> str:
    """Why no layer of `conv` has the window that crops `start` cells of the full result at the
    start of dimension j and `end` at its end (negative: adds cells)."""
    first = (
        f"crops {start} cell(s) at the start" if start >= 0 else f"adds {-start} before the start"
    )
    if end < 0:
        last = f"adds {-end} past the end"
    else:
        last = f"{end} at the end" if start >= 0 else f"crops {end} at the end"
    window = f"dimension {j} {first} and {last} of the full result"
    return f"{window}; " + _WHY_NOT[conv](k, s, d)


def translation(lay: _Layer, conv: str, consistent: bool = False, short: bool = False) -> Any:
    """translate()'s answer for one convention: the layer of `conv` that holds `lay`'s window,
    or why there is none and a recipe: Port.code(), or with `short` the layer and a crop in
    the target's own syntax (where a crop is not enough, a pointer to the jax line)."""
    from ._port_code import recipe_code
    from ._solve import Translation

    try:
        p = _to_target(lay, conv, strict=False, consistent=consistent)
    except ValueError as exc:
        return Translation(conv, None, str(exc), _no_recipe(conv, None) if short else _ELSEWHERE)
    if p.exact:
        return Translation(conv, p.solution)
    if short:
        j = next(j for j in range(lay.rank) if any(p.crop[j]) or any(p.pad[j]))
        window = (lay.start[j], lay.end[j], lay.kernel_size[j], lay.stride[j], lay.dilation[j])
        code = recipe_code(p)
        notes = p.solution.notes if code and p.solution else ()
        return Translation(
            conv, None, _no_translation(conv, j, *window), code or _no_recipe(conv, j), notes
        )
    what = []
    if any(a or b for a, b in p.crop):
        what.append(f"crops {list(p.crop)} (start, end) per dim after it")
    if any(a or b for a, b in p.pad):
        what.append(f"adds {list(p.pad)} bias-only cells per dim")
    reason = f"no {conv} layer has this crop window; the nearest one " + " and ".join(what)
    return Translation(conv, None, reason, p.code())


def translate_layer(layer: dict, convention: str, input_shape: Any) -> dict:
    """translate() of a layer description: one Translation per convention, from port."""
    lay = _source_layer(layer, None, convention, input_shape)
    return {conv: translation(lay, conv) for conv in CONVENTIONS}
