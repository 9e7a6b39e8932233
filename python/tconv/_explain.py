"""explain: a transposed-convolution layer's shape, derived step by step and drawn.

The numbers come from the same places as everywhere else: tconv.shapes decides the output shape
(and raises where the framework raises), and the compiled per-dimension rules of tconv._core
resolve each framework's padding into the scatter form of shape.hpp -- cells cropped at the
start (pad_lo) and at the end (pad_hi) of the full result, and cells added at the end
(output_padding). This module only substitutes those numbers into words and a picture.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from . import _core, shapes
from ._args import check_ordered, spread
from ._dialects import DIALECTS, dialect
from ._errors import BackendWarning, ShapeError, overflow_as_value_error
from ._rules import full_length

__all__ = ["explain"]

# Widest picture line; the terminals people paste from are 100 columns or wider.
WIDTH = 100
_LABEL = 18


@dataclass
class _Dim:
    """One spatial dimension, resolved: scatter-form numbers plus the framework's own words."""

    name: str
    i: int
    k: int
    s: int
    d: int
    lo: int
    hi: int
    op: int
    out: int
    native: list[str] = field(default_factory=list)  # the framework's rule, substituted
    key: tuple = ()  # equal keys = same derivation


@dataclass
class Report:
    """Everything explain() says, as data (the command line's --json uses it)."""

    convention: str
    layer: str
    input_shape: tuple
    spatial_only: bool
    output_shape: tuple | None = None
    rule: list[str] = field(default_factory=list)
    dims: list[_Dim] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: ShapeError | None = None
    rank: int = 0
    translations: list[tuple[str, str]] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        err = None
        if self.error is not None:
            err = {
                "kind": self.error.kind,
                "framework": self.error.framework,
                "framework_message": self.error.framework_message,
                "why": _why(self.error),
                "fix": self.error.fix,
                "message": str(self.error),
            }
        return {
            "convention": self.convention,
            "layer": self.layer,
            "input_shape": _jsonable(self.input_shape),
            "output_shape": _jsonable(self.output_shape),
            "dims": [
                {
                    "name": d.name,
                    "input": d.i,
                    "kernel": d.k,
                    "stride": d.s,
                    "dilation": d.d,
                    "pad_lo": d.lo,
                    "pad_hi": d.hi,
                    "output_padding": d.op,
                    "full": _full(d),
                    "output": d.out,
                }
                for d in self.dims
            ],
            "warnings": list(self.warnings),
            "error": err,
            "translations": {c: t for c, t in self.translations},
            "text": self.text(),
        }

    def text(self) -> str:
        return _render(self)


def _jsonable(shape: Any) -> Any:
    return None if shape is None else list(shape)


def _why(err: ShapeError) -> str | None:
    for line in str(err).splitlines():
        if line.strip().startswith("why: "):
            return line.strip()[5:]
    return None


def _full(d: _Dim) -> int:
    return full_length(d.i, d.k, d.s, d.d)


def _fmt(shape: Sequence[Any]) -> str:
    items = ", ".join("None" if v is None else str(v) for v in shape)
    return f"({items},)" if len(shape) == 1 else f"({items})"


def _dim_names(rank: int) -> list[str]:
    if rank == 1:
        return ["length"]
    if rank == 2:
        return ["height", "width"]
    if rank == 3:
        return ["depth", "height", "width"]
    return [f"dim {j}" for j in range(rank)]


def _is_seq(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _call(name: str, args: dict) -> str:
    shown = ", ".join(f"{k}={v!r}" for k, v in args.items() if v is not None)
    return f"{name}({shown})"


# ---- preparing the framework call ------------------------------------------------------------


@dataclass
class _Prep:
    fn: Any
    args: tuple
    kwargs: dict
    layer: str
    spatial_only: bool
    shown_input: tuple


def _rank_hint(kernel: Any, dims: Any) -> int | None:
    if dims is not None:
        return shapes._check_dims(dims)
    if _is_seq(kernel):
        return len(kernel)
    return None


def _check_args(convention: str, args: dict, allowed: Sequence[str]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise TypeError(
            f"explain({convention!r}, ...) got unknown argument(s) "
            f"{', '.join(unknown)}; {convention} takes {', '.join(allowed)}"
        )


def _prepare(convention: str, input_shape: Any, args: dict) -> _Prep:
    """Turn explain()'s arguments into a tconv.shapes call.

    Without the channel or weight arguments (in_channels, filters, weight_shape, filters_shape,
    rhs_shape) input_shape holds the spatial sizes alone, and one channel stands in for the
    others; kernel_size (kernel_shape for ONNX) then gives the kernel.
    """
    dialect(convention)
    shape = shapes._shape(input_shape, "input_shape")
    for name, value in args.items():
        check_ordered(value, name)
    return _STEPS[convention].prepare(shape, dict(args))


def _prepare_torch(shape: tuple, a: dict) -> _Prep:
    _check_args(
        "torch",
        a,
        (
            "in_channels",
            "out_channels",
            "kernel_size",
            "stride",
            "padding",
            "output_padding",
            "groups",
            "dilation",
            "output_size",
            "dims",
        ),
    )
    if "kernel_size" not in a:
        raise TypeError("explain('torch', ...) needs kernel_size")
    hint = _rank_hint(a["kernel_size"], a.get("dims"))
    cin = a.pop("in_channels", None)
    spatial = cin is None and not (hint is not None and len(shape) > hint)
    if cin is None:
        cin = 1 if spatial else (shape[1] if len(shape) == (hint or 0) + 2 else shape[0])
    cout = a.pop("out_channels", None)
    shown_cout = "out_channels" if cout is None else cout
    cout = 1 if cout is None else cout
    full = (None, cin, *shape) if spatial else shape
    if spatial:
        a.setdefault("dims", len(shape))
    ctor = {k: v for k, v in a.items() if k not in ("dims", "output_size")}
    layer = _call(
        f"nn.ConvTranspose{hint or (len(shape) if spatial else max(len(shape) - 2, 1))}d",
        {"in_channels": "in_channels" if spatial else cin, "out_channels": shown_cout, **ctor},
    )
    layer = layer.replace("in_channels='in_channels'", "in_channels").replace(
        "out_channels='out_channels'", "out_channels"
    )
    if a.get("output_size") is not None:
        # output_size is an argument of forward(), not of the constructor
        layer += f"(x, output_size={tuple(a['output_size'])!r})"
    return _Prep(shapes.torch, (full, cin, cout), a, layer, spatial, shape)


def _prepare_keras(shape: tuple, a: dict) -> _Prep:
    _check_args(
        "keras",
        a,
        (
            "filters",
            "kernel_size",
            "strides",
            "padding",
            "output_padding",
            "data_format",
            "dilation_rate",
            "dims",
        ),
    )
    if "kernel_size" not in a:
        raise TypeError("explain('keras', ...) needs kernel_size")
    hint = _rank_hint(a["kernel_size"], a.get("dims"))
    filters = a.pop("filters", None)
    spatial = filters is None and not (hint is not None and len(shape) > hint)
    shown_filters = "filters" if filters is None else filters
    filters = 1 if filters is None else filters
    if spatial:
        cl = a.get("data_format", "channels_last") != "channels_first"
        full = (None, *shape, 1) if cl else (None, 1, *shape)
        a.setdefault("dims", len(shape))
    else:
        full = shape
    n = hint or (len(shape) if spatial else max(len(shape) - 2, 1))
    layer = _call(
        f"layers.Conv{n}DTranspose",
        {"filters": shown_filters, **{k: v for k, v in a.items() if k != "dims"}},
    )
    layer = layer.replace("filters='filters'", "filters")
    return _Prep(shapes.keras, (full, filters), a, layer, spatial, shape)


def _prepare_onnx(shape: tuple, a: dict) -> _Prep:
    _check_args(
        "onnx",
        a,
        (
            "weight_shape",
            "kernel_shape",
            "kernel_size",
            "strides",
            "pads",
            "dilations",
            "output_padding",
            "output_shape",
            "auto_pad",
            "group",
        ),
    )
    wshape = a.pop("weight_shape", None)
    kernel = a.pop("kernel_shape", a.pop("kernel_size", None))
    spatial = wshape is None
    if spatial:
        if kernel is None:
            raise TypeError(
                "explain('onnx', ...) needs weight_shape, or kernel_shape with "
                "input_shape as the spatial sizes"
            )
        n = len(shape)
        wshape = (1, 1, *spread(kernel, n))
        full = (None, 1, *shape)
    else:
        full = shape
        if kernel is not None:
            a["kernel_shape"] = kernel  # onnxruntime checks it against W
    shown = {"W": tuple(wshape)} if not spatial else {"kernel_shape": kernel}
    layer = _call("ConvTranspose", {**shown, **a})
    return _Prep(shapes.onnx, (full, tuple(wshape)), a, layer, spatial, shape)


def _prepare_tf_nn(shape: tuple, a: dict) -> _Prep:
    _check_args(
        "tf_nn",
        a,
        (
            "filters_shape",
            "kernel_size",
            "output_shape",
            "strides",
            "padding",
            "data_format",
            "dilations",
        ),
    )
    fshape = a.pop("filters_shape", None)
    kernel = a.pop("kernel_size", None)
    spatial = fshape is None
    if "output_shape" not in a or a["output_shape"] is None:
        raise TypeError(
            "tf.nn.conv_transpose needs output_shape (the size it checks against "
            "the input); explain lists the sizes it accepts in the error"
        )
    if "strides" not in a:
        raise TypeError("explain('tf_nn', ...) needs strides")
    if spatial:
        if kernel is None:
            raise TypeError(
                "explain('tf_nn', ...) needs filters_shape, or kernel_size with "
                "input_shape as the spatial sizes"
            )
        n = len(shape)
        fshape = (*spread(kernel, n), 1, 1)
        cf = str(a.get("data_format") or "").upper().startswith("NC")
        full = (None, 1, *shape) if cf else (None, *shape, 1)
        osz = tuple(a["output_shape"])
        if len(osz) == n:  # the spatial sizes alone, like input_shape
            a["output_shape"] = (None, 1, *osz) if cf else (None, *osz, 1)
    else:
        full = shape
    shown = {"filters": tuple(fshape)} if not spatial else {"kernel_size": kernel}
    layer = _call(f"tf.nn.conv{len(fshape) - 2}d_transpose", {**shown, **a})
    return _Prep(shapes.tf_nn, (full, tuple(fshape)), a, layer, spatial, shape)


def _prepare_jax(shape: tuple, a: dict) -> _Prep:
    _check_args(
        "jax",
        a,
        (
            "rhs_shape",
            "kernel_size",
            "strides",
            "padding",
            "rhs_dilation",
            "dimension_numbers",
            "transpose_kernel",
            "use_consistent_padding",
        ),
    )
    rshape = a.pop("rhs_shape", None)
    kernel = a.pop("kernel_size", None)
    spatial = rshape is None
    for name in ("strides", "padding"):
        if name not in a:
            raise TypeError(f"explain('jax', ...) needs {name}")
    if spatial:
        if kernel is None:
            raise TypeError(
                "explain('jax', ...) needs rhs_shape, or kernel_size with "
                "input_shape as the spatial sizes"
            )
        if a.get("dimension_numbers") is not None:
            raise TypeError(
                "dimension_numbers needs full shapes (lhs_shape with batch and "
                "feature axes, and rhs_shape)"
            )
        n = len(shape)
        rshape = (*spread(kernel, n), 1, 1)
        full = (None, *shape, 1)
    else:
        full = shape
    shown = {"rhs": tuple(rshape)} if not spatial else {"kernel_size": kernel}
    layer = _call("lax.conv_transpose", {**shown, **a})
    return _Prep(shapes.jax, (full, tuple(rshape)), a, layer, spatial, shape)


# ---- per-dimension resolution (numbers from tconv._core) --------------------------------------


def _resolve(convention: str, prep: _Prep, out_shape: tuple) -> tuple[list[str], list[_Dim], int]:
    """The rule in the framework's words, the resolved dims and the spatial rank."""
    return _STEPS[convention].resolve(prep, out_shape)


def _resolve_torch(prep: _Prep, out_shape: tuple) -> tuple[list[str], list[_Dim], int]:
    full_in, kw = prep.args[0], prep.kwargs
    n = len(out_shape) - (2 if len(full_in) == len(out_shape) and len(out_shape) > 1 else 1)
    n = int(kw.get("dims") or n)
    sp = list(full_in[-n:])
    ks, st = spread(kw["kernel_size"], n), spread(kw.get("stride", 1), n)
    pd, dl = spread(kw.get("padding", 0), n), spread(kw.get("dilation", 1), n)
    osz = kw.get("output_size")
    osp = list(out_shape[-n:])
    if osz is not None:
        ops = []
        for j in range(n):
            lo, _ = (
                _core.torch_output_size_range(sp[j], ks[j], st[j], dl[j], pd[j])
                if sp[j] is not None
                else (0, 0)
            )
            ops.append(osp[j] - lo if sp[j] is not None else 0)
    else:
        ops = spread(kw.get("output_padding", 0), n)
    rule = ["out = (in - 1)*stride - 2*padding + dilation*(kernel_size - 1) + output_padding + 1"]
    dims = []
    for j in range(n):
        if sp[j] is None:
            continue
        i, k, s, d, p, op = sp[j], ks[j], st[j], dl[j], pd[j], ops[j]
        out = _core.torch_length(i, k, s, d, p, op)
        native = [f"({i} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1 = {out}"]
        if osz is not None:
            lo, hi = _core.torch_output_size_range(i, k, s, d, p)
            native.append(
                f"output_size asks for {out}: PyTorch takes the size at "
                f"output_padding=0 ({lo}) and sets output_padding = {out} - {lo} "
                f"= {op} (it accepts {lo}..{hi})"
            )
        dims.append(_Dim(_dim_names(n)[j], i, k, s, d, p, p, op, out, native, (i, k, s, d, p, op)))
    return rule, dims, n


def _resolve_keras(prep: _Prep, out_shape: tuple) -> tuple[list[str], list[_Dim], int]:
    full_in, kw = prep.args[0], prep.kwargs
    cl = kw.get("data_format", "channels_last") == "channels_last"
    n = len(full_in) - 2
    sp = list(full_in[1:-1] if cl else full_in[2:])
    ks, st = spread(kw["kernel_size"], n), spread(kw.get("strides", 1), n)
    dl = spread(kw.get("dilation_rate", 1), n)
    mode = str(kw.get("padding", "valid")).lower()
    op_arg = kw.get("output_padding")
    ops = [None] * n if op_arg is None else spread(op_arg, n)
    dilated = any(d > 1 for d in dl)
    kname = "kernel" if dilated else "kernel_size"
    if op_arg is None and mode == "same":
        rule = ["length = input * strides   (output_padding=None, padding='same')"]
    elif op_arg is None:
        rule = [
            f"length = input * strides + max({kname} - strides, 0)   "
            "(output_padding=None, padding='valid')"
        ]
    elif mode == "same":
        rule = [
            f"length = (input - 1)*strides + {kname} - 2*({kname} // 2) + "
            "output_padding   (padding='same')"
        ]
    else:
        rule = [f"length = (input - 1)*strides + {kname} + output_padding   (padding='valid')"]
    if dilated:
        rule.insert(0, "kernel = dilation_rate*(kernel_size - 1) + 1   (the dilated span)")
    dims = []
    for j in range(n):
        if sp[j] is None:
            continue
        i, k, s, d, op = sp[j], ks[j], st[j], dl[j], ops[j]
        e = _core.effective_kernel(k, d)
        out = _core.keras_length(i, mode, k, s, d, op)
        lo, hi, extra = _core.resolve_keras_padding(mode, k, s, d, op)
        if op is None and mode == "same":
            native = [f"{i}*{s} = {out}"]
        elif op is None:
            native = [f"{i}*{s} + max({e} - {s}, 0) = {out}"]
        elif mode == "same":
            native = [f"({i} - 1)*{s} + {e} - 2*({e} // 2) + {op} = {out}"]
        else:
            native = [f"({i} - 1)*{s} + {e} + {op} = {out}"]
        if dilated:
            native.insert(0, f"kernel = {d}*({k} - 1) + 1 = {e}")
        if mode == "same":
            other = 0 if op is None else None
            alt = _core.keras_length(i, mode, k, s, d, other)
            if alt != out:
                native.append(
                    f"(with output_padding={other} instead it would be {alt}: "
                    "None and 0 are different rules in Keras)"
                )
        dims.append(
            _Dim(_dim_names(n)[j], i, k, s, d, lo, hi, extra, out, native, (i, k, s, d, mode, op))
        )
    return rule, dims, n


def _resolve_onnx(prep: _Prep, out_shape: tuple) -> tuple[list[str], list[_Dim], int]:
    full_in, kw = prep.args[0], prep.kwargs
    wshape = prep.args[1]
    n = len(full_in) - 2
    sp = list(full_in[2:])
    ks = list(wshape[2:])
    st = spread(1 if kw.get("strides") is None else kw["strides"], n)
    dl = spread(1 if kw.get("dilations") is None else kw["dilations"], n)
    ops = spread(0 if kw.get("output_padding") is None else kw["output_padding"], n)
    pads = kw.get("pads")
    pads = spread(0 if pads is None else pads, 2 * n)
    auto = str(kw.get("auto_pad", "NOTSET")).upper()
    osz = kw.get("output_shape")
    if osz is not None:
        osz = list(osz)[-n:]
    generic = (
        "output = strides*(input - 1) + output_padding + ((kernel_shape - 1)*dilations"
        " + 1) - pads_begin - pads_end"
    )
    if osz is not None:
        rule = [
            f"output_shape given: output = output_shape; the pads follow from it "
            f"(auto_pad={auto!r}):",
            "total_padding = strides*(input - 1) + output_padding + ((kernel_shape - 1)"
            "*dilations + 1) - output_shape",
        ]
    elif auto in ("SAME_UPPER", "SAME_LOWER"):
        rule = [
            f"auto_pad={auto!r}: output = input * strides (onnxruntime), and",
            "total_padding = strides*(input - 1) + output_padding + ((kernel_shape - 1)"
            "*dilations + 1) - output, split with the odd cell at the "
            + ("start" if auto == "SAME_LOWER" else "end"),
        ]
    else:
        rule = [generic + ("   (auto_pad='VALID': pads are 0)" if auto == "VALID" else "")]
    dims = []
    for j in range(n):
        if sp[j] is None:
            continue
        i, k, s, d, op = sp[j], ks[j], st[j], dl[j], ops[j]
        out, lo, hi, extra = _core.onnx_resolve(
            i, k, s, d, op, auto, pads[j], pads[j + n], None if osz is None else osz[j]
        )
        if osz is not None or auto in ("SAME_UPPER", "SAME_LOWER"):
            native = [f"{i}*{s} = {out}"] if osz is None else [f"output = {out}"]
            native.append(
                f"total_padding = {s}*({i} - 1) + {op} + (({k} - 1)*{d} + 1) - "
                f"{out} = {lo + hi}  ->  pads (begin, end) = ({lo}, {hi})"
            )
            if osz is None and op:
                native.append(
                    f"(output_padding={op} only moves the crop here; ONNX shape "
                    "inference adds it to the size, onnxruntime does not: "
                    "onnx/onnx#4299)"
                )
        else:
            pl, ph = (0, 0) if auto == "VALID" else (pads[j], pads[j + n])
            native = [f"{s}*({i} - 1) + {op} + (({k} - 1)*{d} + 1) - {pl} - {ph} = {out}"]
        dims.append(
            _Dim(
                _dim_names(n)[j],
                i,
                k,
                s,
                d,
                lo,
                hi,
                extra,
                out,
                native,
                (i, k, s, d, op, lo, hi),
            )
        )
    return rule, dims, n


def _resolve_tf_nn(prep: _Prep, out_shape: tuple) -> tuple[list[str], list[_Dim], int]:
    full_in, kw = prep.args[0], prep.kwargs
    fshape = prep.args[1]
    n = len(full_in) - 2
    fmt = str(kw.get("data_format") or "")
    cl = not fmt.upper().startswith("NC")
    sp = list(full_in[1:-1] if cl else full_in[2:])
    ks = list(fshape[:n])
    st = shapes._tf_list(kw["strides"], n, cl, "strides")
    dl = shapes._tf_list(1 if kw.get("dilations") is None else kw["dilations"], n, cl, "dilations")
    osp = list(out_shape[1:-1] if cl else out_shape[2:])
    padding = kw.get("padding", "SAME")
    if isinstance(padding, str):
        mode, pairs = padding.upper(), [(0, 0)] * n
    else:
        mode = "EXPLICIT"
        pairs = [tuple(p) for p in padding]
        if len(pairs) == n + 2:
            pairs = pairs[1:-1] if cl else pairs[2:]
    rule = [
        "tf.nn takes the output size as an argument and checks it: the forward "
        f"convolution ({mode if mode != 'EXPLICIT' else 'explicit padding'}) of the "
        "output must give back the input,",
        {
            "SAME": "ceil(output / strides) == input",
            "VALID": "ceil((output - kernel + 1) / strides) == input",
            "EXPLICIT": "(output + pad_before + pad_after - kernel) // strides + 1 == input",
        }[mode],
    ]
    dims = []
    for j in range(n):
        if sp[j] is None or osp[j] is None:
            continue
        i, k, s, d, o = sp[j], ks[j], st[j], dl[j], osp[j]
        e = _core.effective_kernel(k, d)
        fwd, flo, fhi = _core.tf_conv(o, k, s, d, mode, *pairs[j])
        lo_r, hi_r = _core.tf_transposed_range(i, k, s, d, mode, *pairs[j])
        out, lo, hi, extra = _core.tf_transposed(i, o, k, s, d, mode, *pairs[j])
        shown = {
            "SAME": f"ceil({o} / {s}) = {fwd}",
            "VALID": f"ceil(({o} - {e} + 1) / {s}) = {fwd}",
            "EXPLICIT": f"({o} + {pairs[j][0]} + {pairs[j][1]} - {e}) // {s} + 1 = {fwd}",
        }
        native = [
            f"{shown[mode]} == {i}: accepted (for an input of {i} it accepts {lo_r}..{hi_r})",
            f"TensorFlow pads that forward convolution ({flo}, {fhi}); the transposed "
            "one crops the same cells",
        ]
        dims.append(
            _Dim(
                _dim_names(n)[j],
                i,
                k,
                s,
                d,
                lo,
                hi,
                extra,
                out,
                native,
                (i, k, s, d, o, mode, pairs[j]),
            )
        )
    return rule, dims, n


def _resolve_jax(prep: _Prep, out_shape: tuple) -> tuple[list[str], list[_Dim], int]:
    full_in, kw = prep.args[0], prep.kwargs
    rshape = prep.args[1]
    nd = len(full_in)
    n = nd - 2
    dn = kw.get("dimension_numbers")
    if dn is None:
        dn = shapes._JAX_DEFAULT_DN[nd]
    lspec, rspec, _ = shapes._jax_specs(dn, nd)
    sp = [full_in[a] for a in lspec[2:]]
    ks = [rshape[a] for a in rspec[2:]]
    st = spread(kw["strides"], n)
    dl = spread(kw.get("rhs_dilation") or 1, n)
    padding = kw["padding"]
    if isinstance(padding, str):
        mode, pairs = padding, [(0, 0)] * n
    else:
        mode, pairs = "EXPLICIT", [tuple(p) for p in padding]
    consistent = bool(kw.get("use_consistent_padding")) and mode == "EXPLICIT"
    if consistent:
        pairs = [
            (_core.effective_kernel(k, d) - 1 - lo, _core.effective_kernel(k, d) - 1 - hi)
            for k, d, (lo, hi) in zip(ks, dl, pairs)
        ]
    rule = [
        "lax.conv_transpose spreads the input stride apart ((input - 1)*strides + 1 cells), "
        "pads it (before, after)",
        "and slides the kernel over it: output = spread + before + after - kernel + 1",
    ]
    if consistent:
        rule.append(
            "use_consistent_padding=True: each (lo, hi) is the forward convolution's "
            "padding; the pads are (kernel - 1 - lo, kernel - 1 - hi)"
        )
    if mode == "SAME":
        rule.append(
            "'SAME' pads kernel + strides - 2 cells in all (the larger half at the end "
            "unless strides > kernel - 1)"
        )
    elif mode == "VALID":
        rule.append(
            "'VALID' pads kernel - 1 before and the rest of kernel + strides - 2 + "
            "max(kernel - strides, 0) after"
        )
    dims = []
    for j in range(n):
        if sp[j] is None:
            continue
        i, k, s, d = sp[j], ks[j], st[j], dl[j]
        out, lo, hi, padded, before, after = _core.jax_resolve(i, k, s, d, mode, *pairs[j])
        e = _core.effective_kernel(k, d)
        spread_len = padded - before - after
        native = [
            f"spread ({i} - 1)*{s} + 1 = {spread_len}; pads ({before}, {after}); "
            f"{spread_len} + {before} + {after} - {e} + 1 = {out}"
        ]
        dims.append(
            _Dim(
                _dim_names(n)[j],
                i,
                k,
                s,
                d,
                lo,
                hi,
                0,
                out,
                native,
                (i, k, s, d, mode, before, after),
            )
        )
    return rule, dims, n


# ---- the report -------------------------------------------------------------------------------


def _report(convention: str, input_shape: Any, layer_args: dict) -> Report:
    prep = _prepare(convention, input_shape, layer_args)
    rep = Report(convention, prep.layer, prep.shown_input, prep.spatial_only)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", BackendWarning)
        try:
            out = prep.fn(*prep.args, **prep.kwargs)
        except ShapeError as exc:
            rep.error = exc
            return rep
        except OverflowError as exc:
            raise ValueError(
                f"a size or parameter is too large for 64-bit shape arithmetic: {exc}"
            ) from None
    rep.warnings = list(
        dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, BackendWarning))
    )
    rep.output_shape = tuple(out)
    rep.rule, rep.dims, rep.rank = _resolve(convention, prep, rep.output_shape)
    rep.translations = _translations(convention, rep, prep)
    return rep


def _source_solution(convention: str, rep: Report, prep: _Prep):
    """A verified Solution with this layer's crop window, for translate()."""
    from ._solve import solve

    dims = rep.dims
    cin, cout = _channels(convention, prep)
    want = tuple(d.lo for d in dims)
    for conv in (convention, "onnx", "torch", "keras", "tf_nn", "jax"):
        try:
            sols = solve(
                tuple(d.i for d in dims),
                tuple(d.out for d in dims),
                kernel_size=tuple(d.k for d in dims),
                stride=tuple(d.s for d in dims),
                dilation=tuple(d.d for d in dims),
                convention=conv,
                in_channels=cin,
                out_channels=cout,
            )
        except (ShapeError, ValueError):
            continue
        for sol in sols:
            if tuple(c[0] for c in sol.crop) == want:
                return sol
    return None


def _channels(convention: str, prep: _Prep) -> tuple[int | None, int | None]:
    """The channel counts the user gave (None where only spatial sizes were given), so that
    the printed code shows them instead of placeholders."""
    if prep.spatial_only:
        return None, None
    return _STEPS[convention].channels(prep.args, prep.kwargs)


def _channels_torch(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    return args[1], args[2]


def _channels_keras(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    cl = kwargs.get("data_format", "channels_last") != "channels_first"
    return args[0][-1] if cl else args[0][1], args[1]


def _channels_onnx(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    if (kwargs.get("group", 1) or 1) != 1:
        return None, None
    return args[1][0], args[1][1]


def _channels_tf_nn(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    return args[1][-1], args[1][-2]


def _channels_jax(args: tuple, kwargs: dict) -> tuple[Any, Any]:
    if kwargs.get("dimension_numbers") is not None:
        return None, None
    io = args[1][-2:] if not kwargs.get("transpose_kernel") else args[1][-2:][::-1]
    return io[0], io[1]


def _translations(convention: str, rep: Report, prep: _Prep) -> list[tuple[str, str]]:
    from ._solve import translate

    if not rep.dims or len(rep.dims) != rep.rank:
        return []  # a size is None: the crop window of that dim is unknown
    src = _source_solution(convention, rep, prep)
    if src is None:
        return [
            (
                "",
                "none found: no layer with this kernel, stride and crop window in tconv's "
                "search (the crop may lie outside every convention's range)",
            )
        ]
    out = []
    for conv, tr in translate(src).items():
        if conv == convention:
            continue
        if tr.exact and tr.solution is not None:
            text = tr.solution.code()
            if tr.solution.notes:
                text += "\n      note: " + tr.solution.notes[0]
        else:
            recipe = tr.recipe.replace("\n", "\n               ")
            text = f"no equivalent layer: {tr.reason}\n      instead: {recipe}"
            if tr.recipe_notes:
                text += "\n      note: " + tr.recipe_notes[0]
        out.append((conv, text))
    return out


# ---- rendering --------------------------------------------------------------------------------


def _render(rep: Report) -> str:
    fw = DIALECTS[rep.convention].framework
    lines = [f"{fw}: {rep.layer}"]
    what = "spatial input" if rep.spatial_only else "input"
    if rep.error is not None:
        lines.append(f"{what} {_fmt(rep.input_shape)}  ->  error")
        lines.append("")
        err = rep.error
        if err.framework_message:
            lines.append(f"{err.framework} says: {err.framework_message}")
            why = _why(err)
            if why:
                lines.append(f"why: {why}")
            lines.append(f"fix: {err.fix}")
        else:
            lines.append(str(err))
        lines.extend(rep.extra)
        return "\n".join(lines)
    out = rep.output_shape
    if rep.spatial_only:
        out = tuple(d.out for d in rep.dims) if len(rep.dims) == len(rep.input_shape) else out
    lines.append(f"{what} {_fmt(rep.input_shape)}  ->  output {_fmt(out or ())}")
    lines.append("")
    lines.append(f"{fw}'s rule, per spatial dim:")
    lines.extend("  " + r for r in rep.rule)
    groups = _groups(rep.dims)
    for names, d in groups:
        for k, line in enumerate(d.native):
            lines.append(f"  {names + ':' if k == 0 else '':<{len(names) + 1}} {line}")
    for names, d in groups:
        lines.append("")
        lines.append(f"In cells ({names}):")
        lines.extend("  " + s for s in _cells(d))
    for names, d in groups:  # every spatial dim; dims with the same numbers share one
        lines.append("")
        lines.append(f"Picture ({names}; one column per cell of the full result):")
        lines.extend(_picture(d))
    for w in rep.warnings:
        lines.append("")
        lines.append("Note: " + w)
    if rep.translations:
        lines.append("")
        lines.append(
            "The same layer elsewhere (same kernel, stride and crop window, so the same "
            "numbers from the same weights):"
        )
        for conv, text in rep.translations:
            lines.append(f"  {conv + ':':<7} {text}" if conv else f"  {text}")
    return "\n".join(lines)


def _groups(dims: list[_Dim]) -> list[tuple[str, _Dim]]:
    out: list[tuple[list[str], _Dim]] = []
    for d in dims:
        for names, rep in out:
            if rep.key == d.key:
                names.append(d.name)
                break
        else:
            out.append(([d.name], d))
    return [(", ".join(n), d) for n, d in out]


def _cells(d: _Dim) -> list[str]:
    full = _full(d)
    span = _core.effective_kernel(d.k, d.d)
    last = full - span  # where the last input cell lands
    cropped = _core.transposed_length(d.i, d.k, d.s, d.d, d.lo, d.hi, 0)
    res = _core.transposed_length(d.i, d.k, d.s, d.d, d.lo, d.hi, d.op)
    if d.out == 0 and res <= 0:  # JAX's negative pads may remove more than there is
        return [f"{full} cells before cropping; cropping {d.lo} + {d.hi} leaves none: 0 cells"]
    assert res == d.out, (res, d)
    lines = []
    if d.i == 1:
        lines.append("1 input cell, at position 0")
    elif d.s == 1:
        lines.append(f"{d.i} input cells land side by side (stride 1): positions 0..{last}")
    else:
        shown = ", ".join(str(j * d.s) for j in range(min(d.i, 3)))
        lines.append(
            f"{d.i} input cells land stride {d.s} apart: positions {shown}"
            f"{', ..' if d.i > 3 else ''}{', ' + str(last) if d.i > 3 else ''}"
            f"  ({d.s - 1} zero cell{'s' if d.s > 2 else ''} between neighbours)"
        )
    taps = (
        f"kernel {d.k}"
        if d.d == 1
        else f"kernel {d.k} with dilation {d.d}: a span of {d.d}*({d.k} - 1) + 1 = {span}"
    )
    lines.append(
        f"each one spreads over {span} cell{'s' if span > 1 else ''} ({taps}): the full "
        f"result has {last} + {span} = {full} cells (positions 0..{full - 1})"
    )
    if span < d.s:
        lines.append(
            f"  the kernel span {span} is shorter than the stride {d.s}: "
            f"{d.s - span} of every {d.s} cells receive no input (only the bias)"
        )
    crop_words = []
    if d.lo > 0:
        crop_words.append(
            f"{d.lo} at the start (position{'s' if d.lo > 1 else ''} {_span_words(0, d.lo)})"
        )
    if d.hi > 0:
        crop_words.append(
            f"{d.hi} at the end (position{'s' if d.hi > 1 else ''} "
            f"{_span_words(full - d.hi, full)})"
        )
    if crop_words:
        lines.append(
            f"crop {' and '.join(crop_words)}: {full} - {d.lo + d.hi} = {cropped}"
            if d.lo >= 0 and d.hi >= 0
            else "crop " + " and ".join(crop_words)
        )
    if d.lo < 0:
        lines.append(f"add {_n(-d.lo, 'zero cell')} before position 0 (negative padding)")
    if d.hi < 0:
        lines.append(f"add {_n(-d.hi, 'zero cell')} after position {full - 1} (negative padding)")
    if d.lo <= 0 and d.hi <= 0 and not crop_words and d.lo == 0 and d.hi == 0:
        lines.append("nothing is cropped")
    if d.op:
        a, b = full - d.hi, full - d.hi + d.op
        inside = max(0, min(b, full) - a)
        where = _span_words(a, b)
        lines.append(
            f"output_padding adds {_n(d.op, 'cell')} at the end (position"
            f"{'s' if d.op > 1 else ''} {where}): {cropped} + {d.op} = {res}"
        )
        if inside == d.op:
            lines.append(
                "  they lie inside the full result (the crop had removed them), so "
                "they hold real values, not just the bias"
            )
        elif inside == 0:
            lines.append(
                "  they lie past the full result: no input reaches them, they hold only the bias"
            )
        else:
            lines.append(
                f"  {inside} of them lie inside the full result (real values), "
                f"{d.op - inside} past it (bias only)"
            )
    lines.append(
        f"output: positions {_span_words(d.lo, d.lo + d.out)} = {d.out} cell"
        f"{'s' if d.out != 1 else ''}"
    )
    return lines


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _span_words(a: int, b: int) -> str:
    """Positions a..b-1 in words."""
    return str(a) if b - a == 1 else f"{a}..{b - 1}"


# ---- the picture ------------------------------------------------------------------------------


def _columns(start: int, end: int, room: int) -> list[int | None]:
    """Positions shown, left to right; None marks the elided middle."""
    if end - start <= room:
        return list(range(start, end))
    half = (room - 3) // 2
    return [*range(start, start + half), None, *range(end - (room - 3 - half), end)]


def _picture(d: _Dim, width: int = WIDTH) -> list[str]:
    full = _full(d)
    span = _core.effective_kernel(d.k, d.d)
    last = full - span
    start = min(0, d.lo)
    end = max(full, d.lo + d.out, full - d.hi + d.op)
    cols = _columns(start, end, width - _LABEL)

    def row(label: str, cell) -> str:
        chars = []
        for p in cols:
            chars.append("   " if p is None and label == "" else "~~~" if p is None else cell(p))
        return f"{label:<{_LABEL}}{''.join(chars)}".rstrip()

    def is_input(p: int) -> bool:
        return 0 <= p <= last and p % d.s == 0

    def tap(j: int):
        base = j * d.s

        def cell(p: int) -> str:
            off = p - base
            if 0 <= off < span:
                return "#" if off % d.d == 0 else "-"
            return " "

        return cell

    lines = [row("position", lambda p: str(p % 10) if p >= 0 else "-")]
    lines.append(
        row(
            f"input (stride {d.s})" if d.s > 1 else "input",
            lambda p: "o" if is_input(p) else "." if 0 <= p <= last else " ",
        )
    )
    shown: list = list(range(d.i)) if d.i <= 5 else [0, 1, None, d.i - 1]
    for j in shown:
        if j is None:
            lines.append(f"{'':<{_LABEL}}  ...")
            continue
        lines.append(row(f"kernel of x[{j}]", tap(j)))
    if span < d.s:

        def gets(p: int) -> str:
            if not 0 <= p < full:
                return " "
            return "^" if p % d.s < span and (p % d.s) % d.d == 0 else "0"

        lines.append(row("inputs reaching", gets))
    lines.append(row(f"full result {full}", lambda p: "=" if 0 <= p < full else " "))
    if d.lo or d.hi:

        def crop(p: int) -> str:
            if 0 <= p < d.lo or full - d.hi <= p < full:
                return "x"
            if d.lo <= p < 0 or full <= p < full - d.hi:
                return "+"
            return " "

        lines.append(row(f"crop {d.lo} + {d.hi}" if d.lo >= 0 and d.hi >= 0 else "pads", crop))
    if d.op:
        a = full - d.hi
        lines.append(row(f"output_padding {d.op}", lambda p: "+" if a <= p < a + d.op else " "))
    lines.append(
        row(
            f"output {d.out}",
            lambda p: ("=" if 0 <= p < full else "+") if d.lo <= p < d.lo + d.out else " ",
        )
    )
    legend = (
        "o input cell  . zero between inputs  # kernel tap"
        + ("  - dilation gap" if d.d > 1 else "")
        + ("  ^/0 reached/not" if span < d.s else "")
        + "  = cell  x cropped  + added"
    )
    if None in cols:
        legend += "  ~~~ elided"
    lines.append(legend)
    return lines


# ---- entry point ------------------------------------------------------------------------------


@overflow_as_value_error
def explain(convention: str, input_shape: Any, **layer_args: Any) -> str:
    """The shape of a transposed-convolution layer, derived step by step.

    Parameters
    ----------
    convention : {"torch", "keras", "onnx", "tf_nn", "jax"}
    input_shape : tuple
        The input shape as the framework takes it (batch first, None allowed), or -- when the
        channel/weight arguments are left out -- the spatial sizes alone.
    **layer_args
        The arguments of the matching :mod:`tconv.shapes` function, in the framework's own
        names: torch ``in_channels, out_channels, kernel_size, stride, padding,
        output_padding, groups, dilation, output_size, dims``; keras ``filters, kernel_size,
        strides, padding, output_padding, data_format, dilation_rate, dims``; onnx
        ``weight_shape`` (or ``kernel_shape``), ``strides, pads, dilations, output_padding,
        output_shape, auto_pad, group``; tf_nn ``filters_shape`` (or ``kernel_size``),
        ``output_shape, strides, padding, data_format, dilations``; jax ``rhs_shape`` (or
        ``kernel_size``), ``strides, padding, rhs_dilation, dimension_numbers,
        transpose_kernel, use_consistent_padding``.

    Returns
    -------
    str
        The framework's rule with the numbers substituted; per spatial dim, which cells the
        padding crops (which side, how many), what output_padding adds, and the result; a
        picture of every spatial dim (one for dims with the same numbers); the equivalent
        layer in every other framework (or why there is none); and any backend that refuses
        the layer at run time. Where the framework raises, the text is its message, why, and
        the fix (no exception).

    Examples
    --------
    >>> print(tconv.explain("keras", (5,), kernel_size=3, strides=2, padding="same",
    ...                     output_padding=1))  # doctest: +SKIP
    """
    return _report(convention, input_shape, layer_args).text()


@dataclass(frozen=True)
class _Steps:
    """What explain() does differently for each framework."""

    prepare: Callable[[tuple, dict], _Prep]
    resolve: Callable[[_Prep, tuple], tuple[list[str], list[_Dim], int]]
    channels: Callable[[tuple, dict], tuple[Any, Any]]  # (C_in, C_out) the call gave, or None


_STEPS = {
    "torch": _Steps(_prepare_torch, _resolve_torch, _channels_torch),
    "keras": _Steps(_prepare_keras, _resolve_keras, _channels_keras),
    "onnx": _Steps(_prepare_onnx, _resolve_onnx, _channels_onnx),
    "tf_nn": _Steps(_prepare_tf_nn, _resolve_tf_nn, _channels_tf_nn),
    "jax": _Steps(_prepare_jax, _resolve_jax, _channels_jax),
}
