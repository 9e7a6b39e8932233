"""Command line: ``tconv <command> ...`` (also ``python -m tconv``).

    tconv shape torch --input 1 16 5 5 --in-channels 16 --out-channels 8 --kernel 3 --stride 2 \
        --padding 1 --output-padding 1
    tconv shape keras --input None 5 5 16 --filters 3 --kernel 3 --strides 2 --padding same
    tconv solve 5 11 --convention keras --stride 2
    tconv mirror 28 --kernel 3 --stride 2 --padding 1
    tconv explain keras --input 5 --kernel 3 --strides 2 --padding same --output-padding 1
    tconv decoder torch --input 161x241 --encoder "4*(conv:k=3,p=1 conv:k=3,p=1 maxpool:k=2)" \
        --up k=2,s=2
    tconv doctor "RuntimeError: ..."        (or the message on stdin: tconv doctor -)
    tconv info                              (what a bug report needs; tconv --version)

Exit status: 0 success, 1 a shape error (or a layer that does not exist / an unrecognised
message; the explanation goes to stderr), 2 bad usage. --json prints machine-readable output.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Callable
from typing import Any

from ._args import ints_per_dim
from ._dialects import CONVENTIONS, DIALECTS

__all__ = ["main"]


def _demo(args: argparse.Namespace) -> int:
    import numpy as np

    import tconv
    from tconv import reference

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 8, 5, 5)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    print(
        "ConvTranspose2d(8, 4, kernel_size=3, stride=2, padding=1, output_padding=1) on x of shape (1, 8, 5, 5)"
    )
    print(
        "  output length per spatial dim = (in - 1)*stride - 2*padding + dilation*(kernel - 1) + output_padding + 1"
    )
    print("                                = (5 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 10")
    y = tconv.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    print(f"  tconv.conv_transpose2d -> shape {y.shape}, dtype {y.dtype}")
    ref = reference.conv_transpose(
        x.astype(np.float64),
        w.astype(np.float64),
        b.astype(np.float64),
        stride=2,
        padding=1,
        output_padding=1,
    )
    err = float(np.max(np.abs(y - ref)))
    print(f"  max |tconv - naive reference| = {err:.2e}")
    print()
    print("Keras Conv2DTranspose(4, 3, strides=2, padding='same') on a 5x5 input (channels_last)")
    xl = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
    wl = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    for op in (None, 0, 1):
        yl = tconv.conv_transpose2d(
            xl, wl, stride=2, padding="same", output_padding=op, data_format="channels_last"
        )
        print(f"  output_padding={op!s:<4} -> {yl.shape[1]}x{yl.shape[2]}")
    return 0 if err < 1e-4 else 1


# ---- argument types: malformed values are usage errors (exit 2), never tracebacks ----------

# Sizes and layer parameters beyond this are typing mistakes, not layers; the shape arithmetic
# itself is 64-bit and checked.
_MAX = 2**31 - 1


def _int_type(name: str, lo: int, allow_none: bool = False) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        if allow_none and text.lower() == "none":
            return None
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid int value: {text!r} ({name} takes whole numbers"
                + (", or None for an unknown size" if allow_none else "")
                + ")"
            ) from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"{name} must be >= {lo}, got {value}")
        if value > _MAX:
            raise argparse.ArgumentTypeError(f"{name} = {text} is out of range (at most {_MAX})")
        return value

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def _sizes_type(name: str, lo: int = 1) -> Callable[[str], tuple]:
    """'5', '5x7' or '5,7' -> a tuple of ints."""
    one = _int_type(name, lo)

    def parse(text: str) -> tuple:
        parts = text.replace("x", ",").replace("X", ",").split(",")
        if not text or any(p.strip() == "" for p in parts):
            raise argparse.ArgumentTypeError(
                f"invalid {name}: {text!r} (give one int, or one per dim as 5x7 or 5,7)"
            )
        return tuple(one(p.strip()) for p in parts)

    parse.__name__ = name
    return parse


def _pair_type(text: str) -> tuple:
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"invalid padding pair {text!r}: give lo,hi (e.g. 1,2)")
    vals = []
    for p in parts:
        try:
            v = int(p, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"invalid padding pair {text!r}: give lo,hi (e.g. 1,2)"
            ) from None
        if abs(v) > _MAX:
            raise argparse.ArgumentTypeError(f"padding {v} is out of range")
        vals.append(v)
    return tuple(vals)


def _one_or_tuple(values: list | None) -> Any:
    if values is None:
        return None
    return values[0] if len(values) == 1 else tuple(values)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


_ARGV: list[str] = []


class _Parser(argparse.ArgumentParser):
    """Names an unknown option even when a required argument is missing too (argparse reports
    the missing one first, which hides the typo)."""

    def error(self, message: str):
        if "required" in message:
            unknown = [
                t.split("=")[0]
                for t in _ARGV
                if t.startswith("--") and t.split("=")[0] not in self._option_string_actions
            ]
            if unknown:
                message = f"unrecognized arguments: {' '.join(unknown)}"
        super().error(message)


# ---- per-framework layer options (shared by `shape` and `explain`) -------------------------

_POS, _NONNEG = 1, 0


def _ints(name: str, lo: int) -> dict[str, Any]:
    return {"type": _int_type(name, lo), "nargs": "+", "metavar": "N"}


def _add_layer_options(p: argparse.ArgumentParser, conv: str) -> None:
    p.add_argument(
        "--input",
        required=True,
        nargs="+",
        type=_int_type("input", 0, True),
        metavar="N",
        help="input shape as the framework takes it (None for an unknown "
        "size), or the spatial sizes alone when the channel/weight options are left "
        "out",
    )
    _LAYER_OPTIONS[conv](p)


def _torch_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--in-channels", type=_int_type("in_channels", _POS))
    p.add_argument("--out-channels", type=_int_type("out_channels", _POS))
    p.add_argument(
        "--kernel",
        "--kernel-size",
        dest="kernel_size",
        required=True,
        **_ints("kernel_size", _POS),
    )
    p.add_argument("--stride", **_ints("stride", _POS))
    p.add_argument("--padding", **_ints("padding", _NONNEG))
    p.add_argument("--output-padding", **_ints("output_padding", _NONNEG))
    p.add_argument("--groups", type=_int_type("groups", _POS))
    p.add_argument("--dilation", **_ints("dilation", _POS))
    p.add_argument("--output-size", **_ints("output_size", _POS))
    p.add_argument(
        "--dims",
        type=_int_type("dims", _POS),
        help="the layer's spatial rank (ConvTranspose2d -> 2)",
    )


def _keras_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--filters", type=_int_type("filters", _POS))
    p.add_argument(
        "--kernel",
        "--kernel-size",
        dest="kernel_size",
        required=True,
        **_ints("kernel_size", _POS),
    )
    p.add_argument("--strides", **_ints("strides", _POS))
    p.add_argument("--padding", choices=("valid", "same"), type=str.lower)
    p.add_argument(
        "--output-padding",
        **_ints("output_padding", _NONNEG),
        help="default None: Keras' own choice (0 is a different rule)",
    )
    p.add_argument("--data-format", choices=("channels_last", "channels_first"))
    p.add_argument("--dilation-rate", **_ints("dilation_rate", _POS))
    p.add_argument(
        "--dims",
        type=_int_type("dims", _POS),
        help="the layer's spatial rank (Conv2DTranspose -> 2)",
    )


def _onnx_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--weight",
        "--weight-shape",
        dest="weight_shape",
        **_ints("weight_shape", _POS),
        help="W's shape (C, M/group, *kernel)",
    )
    p.add_argument(
        "--kernel",
        "--kernel-shape",
        dest="kernel_shape",
        **_ints("kernel_shape", _POS),
        help="instead of --weight, with --input the spatial sizes",
    )
    p.add_argument("--strides", **_ints("strides", _POS))
    p.add_argument("--pads", **_ints("pads", _NONNEG), help="begins then ends")
    p.add_argument("--dilations", **_ints("dilations", _POS))
    p.add_argument("--output-padding", **_ints("output_padding", _NONNEG))
    p.add_argument("--output-shape", **_ints("output_shape", _POS))
    p.add_argument(
        "--auto-pad", type=str.upper, choices=("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
    )
    p.add_argument("--group", type=_int_type("group", _POS))


def _tf_nn_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--filters",
        "--filters-shape",
        dest="filters_shape",
        **_ints("filters_shape", _POS),
        help="(*kernel, out_channels, in_channels)",
    )
    p.add_argument(
        "--kernel",
        "--kernel-size",
        dest="kernel_size",
        **_ints("kernel_size", _POS),
        help="instead of --filters, with --input the spatial sizes",
    )
    p.add_argument("--output-shape", required=True, **_ints("output_shape", _POS))
    p.add_argument("--strides", required=True, **_ints("strides", _POS))
    p.add_argument("--padding", type=str.upper, choices=("SAME", "VALID"))
    p.add_argument("--data-format")
    p.add_argument("--dilations", **_ints("dilations", _POS))


def _jax_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--rhs",
        "--rhs-shape",
        dest="rhs_shape",
        **_ints("rhs_shape", _POS),
        help="the kernel's shape (HWIO by default)",
    )
    p.add_argument(
        "--kernel",
        "--kernel-size",
        dest="kernel_size",
        **_ints("kernel_size", _POS),
        help="instead of --rhs, with --input the spatial sizes",
    )
    p.add_argument("--strides", required=True, **_ints("strides", _POS))
    p.add_argument(
        "--padding",
        required=True,
        nargs="+",
        metavar="SAME|VALID|LO,HI",
        help="'SAME', 'VALID' or one lo,hi pair per spatial dim",
    )
    p.add_argument("--rhs-dilation", **_ints("rhs_dilation", _POS))
    p.add_argument("--dimension-numbers", nargs=3, metavar=("LHS", "RHS", "OUT"))
    p.add_argument("--transpose-kernel", action="store_true")
    p.add_argument(
        "--use-consistent-padding",
        action="store_true",
        help="read lo,hi pairs as the forward convolution's padding (PyTorch's)",
    )


_LAYER_OPTIONS = {
    "torch": _torch_options,
    "keras": _keras_options,
    "onnx": _onnx_options,
    "tf_nn": _tf_nn_options,
    "jax": _jax_options,
}


_SKIP = {"command", "convention", "func", "json", "input", "bench", "_parser", "svg"}


def _layer_kwargs(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[tuple, dict]:
    conv = args.convention
    kw: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key in _SKIP or value is None or value is False:
            continue
        kw[key] = value
    inp = tuple(args.input)
    for key in (
        "kernel_size",
        "stride",
        "padding",
        "output_padding",
        "dilation",
        "strides",
        "dilation_rate",
        "kernel_shape",
    ):
        if key in kw and isinstance(kw[key], list) and not (conv == "jax" and key == "padding"):
            kw[key] = _one_or_tuple(kw[key])
    for key in (
        "weight_shape",
        "filters_shape",
        "rhs_shape",
        "output_size",
        "output_shape",
        "pads",
        "dilations",
    ):
        if key in kw:
            kw[key] = tuple(kw[key])
    if DIALECTS[conv].list_args:  # ONNX attributes hold one value per dimension
        for key in ("strides", "output_padding"):
            if key in kw and not isinstance(kw[key], tuple):
                kw[key] = ints_per_dim(kw[key], _spatial_rank(inp, kw, "weight_shape"), key)
    if conv == "jax":
        n = _spatial_rank(inp, kw, "rhs_shape")
        for key in ("strides", "rhs_dilation"):
            if key in kw:  # lengths are checked in JAX's words by tconv.shapes
                kw[key] = ints_per_dim(kw[key], n, key, check_length=False)
        pad = kw["padding"]
        if len(pad) == 1 and pad[0].upper() in ("SAME", "VALID"):
            kw["padding"] = pad[0].upper()
        else:
            try:
                pairs = tuple(_pair_type(p) for p in pad)
            except argparse.ArgumentTypeError as exc:
                parser.error(f"argument --padding: {exc}")
            kw["padding"] = pairs * n if len(pairs) == 1 else pairs
        if "dimension_numbers" in kw:
            kw["dimension_numbers"] = tuple(kw["dimension_numbers"])
    return inp, kw


def _spatial_rank(inp: tuple, kw: dict, weight_key: str) -> int:
    return len(inp) - 2 if kw.get(weight_key) is not None else len(inp)


def _shape_error_json(exc: Exception) -> dict:
    from ._errors import ShapeError
    from ._explain import _why

    return {
        "error": {
            "kind": getattr(exc, "kind", None),
            "framework": getattr(exc, "framework", None),
            "framework_message": getattr(exc, "framework_message", None),
            "why": _why(exc) if isinstance(exc, ShapeError) and hasattr(exc, "kind") else None,
            "fix": getattr(exc, "fix", None),
            "message": str(exc),
        }
    }


def _print_json(obj: Any) -> None:
    print(json.dumps(obj, indent=2))


# ---- shape ---------------------------------------------------------------------------------


def _shape(args: argparse.Namespace) -> int:
    from . import ShapeError
    from ._errors import BackendWarning
    from ._explain import _prepare

    parser = args._parser
    inp, kw = _layer_kwargs(args, parser)
    try:
        prep = _prepare(args.convention, inp, kw)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", BackendWarning)
            out = prep.fn(*prep.args, **prep.kwargs)
    except ShapeError as exc:
        if args.json:
            _print_json(_shape_error_json(exc))
        print(f"tconv shape {args.convention}: {exc}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, OverflowError) as exc:
        parser.error(str(exc))
    notes = list(
        dict.fromkeys(str(w.message) for w in caught if issubclass(w.category, BackendWarning))
    )
    out = tuple(out)
    shown = out
    if prep.spatial_only:
        # one stand-in channel surrounds the spatial sizes: show those alone
        n = len(inp)
        shown = _spatial_of(args.convention, out, n, kw)
    if args.json:
        _print_json(
            {
                "convention": args.convention,
                "layer": prep.layer,
                "input_shape": list(inp),
                "output_shape": list(shown),
                "spatial_only": prep.spatial_only,
                "notes": notes,
            }
        )
    else:

        def fmt(t: tuple) -> str:
            body = ", ".join("None" if v is None else str(v) for v in t)
            return f"({body}{',' if len(t) == 1 else ''})"

        print(f"{prep.layer}")
        print(
            f"{'spatial input' if prep.spatial_only else 'input'} {fmt(inp)}  ->  output "
            f"{fmt(shown)}"
        )
        for note in notes:
            print(f"note: {note}")
    return 0


def _spatial_of(conv: str, out: tuple, n: int, kw: dict) -> tuple:
    if DIALECTS[conv].is_channels_first(kw.get("data_format")):
        return out[-n:]
    return out[1:-1]


# ---- explain -------------------------------------------------------------------------------


def _explain(args: argparse.Namespace) -> int:
    from ._explain import _report

    parser = args._parser
    inp, kw = _layer_kwargs(args, parser)
    try:
        rep = _report(args.convention, inp, kw)
    except (TypeError, ValueError, OverflowError) as exc:
        parser.error(str(exc))
    if args.json:
        _print_json(rep.as_dict())
    if rep.error is not None:
        print(rep.text(), file=sys.stderr)
        return 1
    if getattr(args, "svg", None):
        from ._svg import explain_svg

        _write_svg(args.svg, explain_svg(rep), parser)
    if not args.json:
        print(rep.text())
    return 0


# ---- solve / mirror --------------------------------------------------------------------------


def _solve(args: argparse.Namespace) -> int:
    from ._solve import solve

    parser = args._parser
    try:
        sols = solve(
            _one_or_tuple(list(args.input)),
            _one_or_tuple(list(args.target)),
            kernel_size=_opt(args.kernel),
            stride=_opt(args.stride),
            dilation=_opt(args.dilation) or 1,
            convention=args.convention,
            max_kernel=args.max_kernel,
            max_stride=args.max_stride,
            in_channels=args.in_channels,
            out_channels=args.out_channels,
            use_consistent_padding=args.use_consistent_padding,
        )
    except (TypeError, ValueError, OverflowError) as exc:
        parser.error(str(exc))
    shown = sols if args.limit == 0 else sols[: args.limit]
    if args.json:
        _print_json(
            {
                "convention": args.convention,
                "count": len(sols),
                "solutions": [s.as_dict() for s in shown],
                "why": sols.why or None,
            }
        )
    if not sols:
        print(
            f"tconv solve: no {args.convention} layer maps {_x(args.input)} to "
            f"{_x(args.target)}.\n{sols.why}",
            file=sys.stderr,
        )
        return 1
    if not args.json:
        print(
            f"{args.convention} layers that map {_x(args.input)} to {_x(args.target)}, "
            f"simplest first ({len(sols)} found):"
        )
        for s in shown:
            print(f"  {s.code()}")
            for note in s.notes:
                print(f"      note: {note}")
        if len(shown) < len(sols):
            print(f"  ... {len(sols) - len(shown)} more (--limit 0 shows all)")
    return 0


def _opt(values: tuple | None) -> Any:
    return None if values is None else _one_or_tuple(list(values))


def _x(sizes: tuple) -> str:
    return "x".join(map(str, sizes))


def _padding_value(text: str, conv: str) -> Any:
    if text.lower() in ("same", "valid"):
        return DIALECTS[conv].mode_word(text)
    parts = [p for p in text.replace(";", " ").split()]
    if all("," in p for p in parts) and conv == "jax":
        return tuple(_pair_type(p) for p in parts)
    try:
        vals = [int(v, 10) for v in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid padding {text!r}: give a number, one per dim (1,2), 'same'/'valid', "
            "or for jax lo,hi pairs"
        ) from None
    if not vals or any(v < 0 or v > _MAX for v in vals):
        raise argparse.ArgumentTypeError(f"invalid padding {text!r}: numbers must be in 0..{_MAX}")
    return vals[0] if len(vals) == 1 else (list(vals) if DIALECTS[conv].list_args else tuple(vals))


def _mirror(args: argparse.Namespace) -> int:
    from . import ShapeError
    from ._solve import mirror

    parser = args._parser
    try:
        padding = (
            _padding_value(args.padding, args.convention)
            if args.padding
            else DIALECTS[args.convention].default_padding
        )
    except argparse.ArgumentTypeError as exc:
        parser.error(f"argument --padding: {exc}")
    try:
        sol = mirror(
            _one_or_tuple(list(args.input)),
            _opt(args.kernel),
            _opt(args.stride) or 1,
            padding,
            _opt(args.dilation) or 1,
            convention=args.convention,
            in_channels=args.in_channels,
            out_channels=args.out_channels,
            use_consistent_padding=args.use_consistent_padding,
        )
    except ShapeError as exc:
        if args.json:
            _print_json(_shape_error_json(exc))
        print(f"tconv mirror: {exc}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, OverflowError) as exc:
        parser.error(str(exc))
    if args.json:
        _print_json({"forward_output": list(sol.input_size), **sol.as_dict()})
        return 0
    print(
        f"the forward convolution maps {_x(args.input)} to {_x(sol.input_size)}; its mirror "
        f"maps it back:"
    )
    print(f"  {sol.code()}")
    for note in sol.notes:
        print(f"      note: {note}")
    return 0


# ---- decoder -------------------------------------------------------------------------------


def _write_svg(path: str, text: str, parser: argparse.ArgumentParser) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as exc:
        parser.error(f"argument --svg: cannot write {path!r}: {exc.strerror}")


def _decoder(args: argparse.Namespace) -> int:
    from . import ShapeError
    from ._decoder import parse_layers, parse_up, plan_decoder

    parser = args._parser
    try:
        inp = tuple(v for text in args.input for v in _sizes_type("input size")(text))
        encoder = parse_layers(" ".join(args.encoder), args.convention)
        up = parse_up(args.up, args.convention) if args.up else None
        plan = plan_decoder(_one_or_tuple(list(inp)), encoder, up=up, convention=args.convention)
    except ShapeError as exc:
        if args.json:
            _print_json({"error": {"message": str(exc)}})
        print(f"tconv decoder: {exc}", file=sys.stderr)
        return 1
    except (TypeError, ValueError, OverflowError, argparse.ArgumentTypeError) as exc:
        parser.error(str(exc))
    if args.svg:
        _write_svg(args.svg, plan.svg(), parser)
    if args.json:
        _print_json(plan.as_dict())
    else:
        print(plan)
        print()
        print("the decoder as code:")
        print(plan.code())
    return 0


# ---- doctor --------------------------------------------------------------------------------


def _doctor(args: argparse.Namespace) -> int:
    from ._doctor import doctor

    parser = args._parser
    if args.message == ["-"]:
        message = sys.stdin.read()
    else:
        message = " ".join(args.message)
    if not message.strip():
        parser.error(
            "the error message is empty: pass it as an argument, or '-' to read it from stdin"
        )
    d = doctor(message)
    if args.json:
        _print_json(d.as_dict())
    if not d.recognised:
        print(str(d), file=sys.stderr)
        return 1
    if not args.json:
        print(str(d))
    return 0


# ---- info ----------------------------------------------------------------------------------


def _info(args: argparse.Namespace) -> int:
    from ._info import config, format_config

    cfg = config()
    if args.json:
        _print_json(cfg)
    else:
        print(format_config(cfg))
    return 0


# ---- the parser ------------------------------------------------------------------------------


def _add_json(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output on stdout")


def _add_svg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--svg", metavar="FILE", help="also write the picture as an SVG file")


def _layer_command(sub: Any, name: str, func: Callable, help_text: str, example: str) -> None:
    cmd = sub.add_parser(
        name,
        help=help_text,
        description=help_text,
        epilog=f"example:\n  {example}",
        formatter_class=_Formatter,
    )
    convs = cmd.add_subparsers(dest="convention", metavar="framework", required=True)
    for conv in CONVENTIONS:
        p = convs.add_parser(
            conv,
            help=DIALECTS[conv].cli_help,
            description=f"{help_text} ({DIALECTS[conv].cli_help}; the framework's "
            "own argument names)",
        )
        _add_layer_options(p, conv)
        _add_json(p)
        if name == "explain":
            _add_svg(p)
        p.set_defaults(func=func, _parser=p)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tconv",
        description="Transposed convolution: shapes in every framework's dialect, and the op "
        "itself. Exit status: 0 success, 1 shape error, 2 bad usage.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"tconv {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="command")

    _layer_command(
        sub,
        "shape",
        _shape,
        "the output shape a framework's transposed "
        "convolution gives (exit 1 with the cause and fix where it raises)",
        "tconv shape torch --input 1 16 5 5 --in-channels 16 --out-channels 8 "
        "--kernel 3 --stride 2 --padding 1 --output-padding 1",
    )
    _add_solve(sub)
    _add_mirror(sub)
    _layer_command(
        sub,
        "explain",
        _explain,
        "the shape derivation step by step, a picture of "
        "every spatial dim (--svg: as SVG), and the same layer in the other frameworks",
        "tconv explain keras --input 5 --kernel 3 --strides 2 --padding same --output-padding 1",
    )
    _add_decoder(sub)
    _add_doctor(sub)
    from ._port_cli import add_port

    add_port(sub, _Formatter, _int_type, _pair_type)
    _add_info_demo_bench(sub)
    return parser


def _add_solve(sub: Any) -> None:
    solve = sub.add_parser(
        "solve",
        help="every layer that maps an input size to a target size",
        description="every transposed-convolution layer (in one framework's "
        "dialect) that maps INPUT to TARGET, simplest first",
        epilog="example:\n  tconv solve 5 11 --convention keras --stride 2",
        formatter_class=_Formatter,
    )
    solve.add_argument("input", type=_sizes_type("input size"), help="e.g. 5 or 5x7")
    solve.add_argument("target", type=_sizes_type("target size"), help="e.g. 11 or 11x13")
    solve.add_argument("--convention", choices=CONVENTIONS, default="torch")
    solve.add_argument(
        "--kernel",
        "--kernel-size",
        type=_sizes_type("kernel"),
        help="fix the kernel (searched otherwise)",
    )
    solve.add_argument(
        "--stride",
        "--strides",
        type=_sizes_type("stride"),
        help="fix the stride (searched otherwise)",
    )
    solve.add_argument("--dilation", type=_sizes_type("dilation"))
    solve.add_argument("--max-kernel", type=_int_type("max_kernel", 1), default=8)
    solve.add_argument("--max-stride", type=_int_type("max_stride", 1), default=4)
    solve.add_argument("--in-channels", type=_int_type("in_channels", 1))
    solve.add_argument("--out-channels", type=_int_type("out_channels", 1))
    solve.add_argument(
        "--use-consistent-padding",
        action="store_true",
        help="jax: write lo,hi pairs as the forward convolution's padding "
        "(lax.conv_transpose's use_consistent_padding=True)",
    )
    solve.add_argument(
        "--limit",
        type=_int_type("limit", 0),
        default=10,
        help="how many to list (0: all; default 10)",
    )
    _add_json(solve)
    solve.set_defaults(func=_solve, _parser=solve)


def _add_mirror(sub: Any) -> None:
    mirror = sub.add_parser(
        "mirror",
        help="the transposed layer that undoes a forward convolution's size change",
        description="the transposed layer that maps the output of the "
        "forward convolution (these arguments, on INPUT) back to INPUT",
        epilog="example:\n  tconv mirror 28 --kernel 3 --stride 2 --padding 1",
        formatter_class=_Formatter,
    )
    mirror.add_argument("input", type=_sizes_type("input size"), help="e.g. 28 or 28x28")
    mirror.add_argument("--kernel", "--kernel-size", required=True, type=_sizes_type("kernel"))
    mirror.add_argument("--stride", "--strides", type=_sizes_type("stride"))
    mirror.add_argument(
        "--padding",
        help="torch: 1 or 1,2 per dim; keras: same|valid; onnx: "
        "pads begins,ends; tf_nn: SAME|VALID; jax: SAME|VALID or 'lo,hi lo,hi'",
    )
    mirror.add_argument("--dilation", type=_sizes_type("dilation"))
    mirror.add_argument("--convention", choices=CONVENTIONS, default="torch")
    mirror.add_argument("--in-channels", type=_int_type("in_channels", 1))
    mirror.add_argument("--out-channels", type=_int_type("out_channels", 1))
    mirror.add_argument(
        "--use-consistent-padding",
        action="store_true",
        help="jax: write lo,hi pairs as the forward convolution's padding "
        "(lax.conv_transpose's use_consistent_padding=True)",
    )
    _add_json(mirror)
    mirror.set_defaults(func=_mirror, _parser=mirror)


def _add_decoder(sub: Any) -> None:
    from ._decoder import LAYER_SYNTAX

    decoder = sub.add_parser(
        "decoder",
        help="the up-layers of a U-Net / auto-encoder decoder that give back every skip size",
        description="the sizes a forward encoder produces, one transposed-convolution layer\n"
        "per downsampling layer (deepest first) that gives back the skip it meets, and the\n"
        "nearest input sizes that need no output_padding (exit 1 when a skip cannot be reached)",
        epilog=LAYER_SYNTAX + "\n\nexample:\n  tconv decoder torch --input 161x241 "
        '--encoder "4*(conv:k=3,p=1 conv:k=3,p=1 maxpool:k=2)" --up k=2,s=2',
        formatter_class=_Formatter,
    )
    decoder.add_argument(
        "convention",
        choices=CONVENTIONS,
        metavar="framework",
        help="torch, keras, onnx, tf_nn or jax",
    )
    decoder.add_argument(
        "--input", required=True, nargs="+", metavar="N", help="spatial size: 161x241 or 161 241"
    )
    decoder.add_argument(
        "--encoder", required=True, nargs="+", metavar="LAYER", help="the forward layers in order"
    )
    decoder.add_argument(
        "--up",
        help="the up-layer's kernel, stride and dilation (k=2,s=2); default: each step mirrors "
        "its encoder layer",
    )
    _add_json(decoder)
    _add_svg(decoder)
    decoder.set_defaults(func=_decoder, _parser=decoder)


def _add_doctor(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor",
        help="explain a framework's error message",
        description="recognise a PyTorch, Keras, TensorFlow, ONNX Runtime "
        "or JAX error message about a transposed convolution and say what "
        "went wrong and the fix (exit 1: not recognised)",
        epilog='examples:\n  tconv doctor "RuntimeError: output padding '
        'must be smaller than ..."\n  python train.py 2>&1 | tail -1 | '
        "tconv doctor -",
        formatter_class=_Formatter,
    )
    doctor.add_argument("message", nargs="+", help="the message ('-' reads it from stdin)")
    _add_json(doctor)
    doctor.set_defaults(func=_doctor, _parser=doctor)


def _add_info_demo_bench(sub: Any) -> None:
    info = sub.add_parser(
        "info",
        help="version, build, instruction sets and threads: what a bug report needs",
        description="tconv's version, build type and "
        "compiler, the instruction sets compiled in, available and in use, "
        "threads (and threadpoolctl's view), numpy, Python and platform: "
        "paste it into a bug report",
    )
    _add_json(info)
    info.set_defaults(func=_info)

    demo = sub.add_parser(
        "demo", help="compute a transposed convolution and show its shape arithmetic"
    )
    demo.set_defaults(func=_demo)
    bench = sub.add_parser(
        "bench", help="time the suite of real layers against every installed peer", add_help=False
    )
    bench.set_defaults(func=None, bench=True)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    _ARGV[:] = argv
    if argv[:1] == ["bench"]:
        from ._bench import main as bench_main  # its own options, parsed there

        return bench_main(argv[1:])
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        # `tconv explain ... | head`: the reader left; say nothing more
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
