"""`tconv port SOURCE --to TARGET|all ...`: the code to paste, or the layer's portability table."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .shapes import _ONEDNN_CPUS

FRAMEWORKS = ("torch", "keras", "onnx", "tf_nn", "jax")
_ONEDNN_OFF = "oneDNN off"  # TensorFlow's plain CPU kernels
_ONEDNN_FOOTNOTE = (
    f"oneDNN on: TensorFlow's default on Linux CPUs with {_ONEDNN_CPUS}, else "
    "TF_ENABLE_ONEDNN_OPTS=1\noneDNN off: its plain CPU kernels (TF_ENABLE_ONEDNN_OPTS=0, and "
    "the default on other CPUs)"
)


def _note(*words: str) -> Any:
    """A refusal test: the port's first note that holds any of `words`."""
    return lambda p: next((n for n in p.notes if any(w in n for w in words)), None)


def _keras_tf_plain(p: Any) -> str | None:
    d = p.params.get("dilation_rate", 1)
    if any(v > 1 for v in (d if isinstance(d, tuple) else (d,))):
        return (
            "TensorFlow's plain CPU kernels refuse dilation > 1 (\"Current CPU implementations "
            'do not yet support dilation rates larger than 1.")'
        )
    return _note("TensorFlow backend refuses")(p)


# The rows of the table: per framework, its backends / runtimes / CPU kernels, each with the
# test that finds its refusal of the port (None: it runs the port).
_BACKENDS: dict[str, list[tuple[str, Any]]] = {
    "torch": [("ConvTransposeNd", None)],
    "keras": [
        ("tensorflow, oneDNN on", _note("TensorFlow backend refuses")),
        ("tensorflow, " + _ONEDNN_OFF, _keras_tf_plain),
        ("jax", None),
        ("torch", None),
    ],
    "onnx": [("onnxruntime", None), ("onnx.reference", _note("reference evaluator"))],
    "tf_nn": [
        ("CPU, oneDNN on", None),
        ("CPU, " + _ONEDNN_OFF, _note("when oneDNN is off", "without oneDNN")),
    ],
    "jax": [("lax.conv_transpose", None)],
}


def add_port(sub: Any, formatter: Any, int_type: Any, pair_type: Any) -> None:
    help_text = "the same layer, weights included, in another framework (or every one: --to all)"
    cmd = sub.add_parser(
        "port",
        help=help_text,
        description=help_text + ". Prints runnable code: weight conversion, the target's "
        "op, and the crop / bias-only cells / bias that make its numbers the source's.",
        epilog="examples:\n  tconv port keras --to torch --filters 8 --kernel 4 4 "
        "--strides 2 --padding same --input 1 32 32 3\n  tconv port keras --to all "
        "--filters 8 --kernel 4 4 --strides 2 --padding same --weights layer.npz",
        formatter_class=formatter,
    )
    convs = cmd.add_subparsers(dest="source", metavar="source", required=True)
    for conv in FRAMEWORKS:
        p = convs.add_parser(conv, help=f"a {conv} layer (its own argument names)")
        p.add_argument("--to", required=True, choices=(*FRAMEWORKS, "all"), dest="target")
        p.add_argument(
            "--input",
            nargs="+",
            type=int_type("input", 0, True),
            metavar="N",
            help="the full input shape in the source's layout (tf_nn and ONNX's "
            "output_shape need it; it also gives the channel counts)",
        )
        p.add_argument(
            "--weights",
            metavar="FILE.npz",
            help="numpy .npz with arrays 'kernel' and (optional) 'bias', source layout",
        )
        p.add_argument("--json", action="store_true", help="machine-readable output on stdout")
        _OPTIONS[conv](p, int_type, pair_type)
        p.set_defaults(func=_run, _parser=p)


def _ints(p: argparse.ArgumentParser, int_type: Any, flag: str, dest: str, lo: int) -> None:
    p.add_argument(flag, dest=dest, nargs="+", type=int_type(dest, lo), metavar="N")


def _torch(p: argparse.ArgumentParser, it: Any, pt: Any) -> None:
    p.add_argument("--in-channels", dest="in_channels", type=it("in_channels", 1))
    p.add_argument("--out-channels", dest="out_channels", type=it("out_channels", 1))
    _ints(p, it, "--kernel", "kernel_size", 1)
    _ints(p, it, "--stride", "stride", 1)
    _ints(p, it, "--padding", "padding", 0)
    _ints(p, it, "--output-padding", "output_padding", 0)
    _ints(p, it, "--dilation", "dilation", 1)
    p.add_argument("--groups", type=it("groups", 1))
    p.add_argument("--no-bias", dest="bias", action="store_false", default=None)


def _keras(p: argparse.ArgumentParser, it: Any, pt: Any) -> None:
    p.add_argument("--filters", type=it("filters", 1))
    _ints(p, it, "--kernel", "kernel_size", 1)
    _ints(p, it, "--strides", "strides", 1)
    p.add_argument("--padding", choices=("valid", "same"), type=str.lower)
    _ints(p, it, "--output-padding", "output_padding", 0)
    _ints(p, it, "--dilation-rate", "dilation_rate", 1)
    p.add_argument("--data-format", choices=("channels_last", "channels_first"))
    p.add_argument("--no-bias", dest="use_bias", action="store_false", default=None)


def _onnx(p: argparse.ArgumentParser, it: Any, pt: Any) -> None:
    _ints(p, it, "--kernel", "kernel_shape", 1)
    _ints(p, it, "--strides", "strides", 1)
    _ints(p, it, "--pads", "pads", 0)
    _ints(p, it, "--dilations", "dilations", 1)
    _ints(p, it, "--output-padding", "output_padding", 0)
    _ints(p, it, "--output-shape", "output_shape", 1)
    p.add_argument(
        "--auto-pad", type=str.upper, choices=("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
    )
    p.add_argument("--group", type=it("group", 1))


def _tf_nn(p: argparse.ArgumentParser, it: Any, pt: Any) -> None:
    _ints(p, it, "--output-shape", "output_shape", 1)
    _ints(p, it, "--strides", "strides", 1)
    p.add_argument("--padding", type=str.upper, choices=("SAME", "VALID"))
    _ints(p, it, "--dilations", "dilations", 1)
    _ints(p, it, "--filters-shape", "filters_shape", 1)
    p.add_argument("--data-format")


def _jax(p: argparse.ArgumentParser, it: Any, pt: Any) -> None:
    _ints(p, it, "--strides", "strides", 1)
    p.add_argument("--padding", nargs="+", metavar="SAME|VALID|LO,HI")
    _ints(p, it, "--rhs-dilation", "rhs_dilation", 1)
    _ints(p, it, "--rhs-shape", "rhs_shape", 1)
    p.add_argument("--transpose-kernel", action="store_true", default=None)
    p.add_argument("--use-consistent-padding", action="store_true", default=None)
    p.set_defaults(_pair=pt)


_OPTIONS = {"torch": _torch, "keras": _keras, "onnx": _onnx, "tf_nn": _tf_nn, "jax": _jax}
_NOT_LAYER = {"source", "target", "input", "weights", "json", "func", "_parser", "_pair", "command"}
# arguments the frameworks take as lists (ONNX attributes, tf.nn); the rest are int or tuple
_LISTS = {"kernel_shape", "strides", "pads", "dilations", "output_padding", "output_shape"}


def _layer(args: argparse.Namespace) -> dict:
    layer: dict[str, Any] = {}
    for key, value in vars(args).items():
        if key in _NOT_LAYER or value is None:
            continue
        if isinstance(value, list) and key != "padding":
            if args.source in ("onnx", "tf_nn") and key in _LISTS:
                value = list(value)
            else:
                value = value[0] if len(value) == 1 else tuple(value)
        layer[key] = value
    if args.source == "jax" and layer.get("padding") is not None:
        pad = layer["padding"]
        if len(pad) == 1 and pad[0].upper() in ("SAME", "VALID"):
            layer["padding"] = pad[0].upper()
        else:
            try:
                layer["padding"] = tuple(args._pair(p) for p in pad)
            except argparse.ArgumentTypeError as exc:
                args._parser.error(f"argument --padding: {exc}")
    elif args.source == "jax" or (args.source == "tf_nn" and "padding" not in layer):
        layer.setdefault("padding", "SAME" if args.source == "tf_nn" else None)
    return layer


def _weights(path: str | None) -> tuple | None:
    if path is None:
        return None
    import numpy as np

    try:
        with np.load(path) as data:
            if "kernel" not in data.files:
                raise ValueError(
                    f"{path} holds {data.files}; expected an array 'kernel' (and optionally "
                    "'bias'), e.g. np.savez(path, kernel=kernel, bias=bias)"
                )
            return data["kernel"], data["bias"] if "bias" in data.files else None
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc}") from None


def _run(args: argparse.Namespace) -> int:
    from . import ShapeError
    from ._port import port

    layer = _layer(args)
    try:
        weights = _weights(args.weights)
        result = port(
            layer,
            weights,
            source=args.source,
            target=args.target,
            input_shape=None if args.input is None else tuple(args.input),
        )
    except ShapeError as exc:
        print(f"tconv port: {exc}", file=sys.stderr)
        return 1
    except (ValueError, TypeError) as exc:
        print(f"tconv port: {exc}", file=sys.stderr)
        return 1
    if args.target != "all":
        if args.json:
            print(json.dumps(result.as_dict(), indent=2))
        else:
            for note in result.notes:
                print(f"# note: {note}")
            print(result.code(), end="")
        return 0
    rows = table(result)
    if args.json:
        out = {
            t: {
                "port": None if isinstance(p, str) else p.as_dict(),
                "reason": p if isinstance(p, str) else "",
                "backends": {b: s for fw, b, s in rows if fw == t},
            }
            for t, p in result.items()
        }
        print(json.dumps(out, indent=2))
    else:
        print(format_table(args.source, result, rows))
    return 0


def status(p: Any) -> str:
    """One framework's answer, in words."""
    if isinstance(p, str):
        return "cannot port: " + p
    if p.exact:
        return "exact"
    parts = []
    if any(a or b for a, b in p.crop):
        parts.append(f"needs a crop {list(p.crop)}")
    if any(a or b for a, b in p.pad):
        parts.append(f"needs bias-only cells {list(p.pad)}")
    return ", ".join(parts) + " (start, end) per dim"


def table(ports: dict) -> list[tuple[str, str, str]]:
    """(framework, backend, status) rows: the port's status, or a backend's refusal; a
    framework that cannot express the layer gets one row."""
    rows = []
    for fw in FRAMEWORKS:
        p = ports[fw]
        if isinstance(p, str):
            rows.append((fw, "", "cannot port: " + p.split(". Nearest recipe")[0].split("\n")[0]))
            continue
        for backend, refusal in _BACKENDS[fw]:
            why = None if refusal is None else refusal(p)
            rows.append((fw, backend, "cannot run: " + why if why else status(p)))
    return rows


def format_table(source: str, ports: dict, rows: list[tuple[str, str, str]]) -> str:
    width = max(len(b) for _, b, _ in rows)
    lines = [f"{'':<6} {'backend / runtime':<{width}}  the {source} layer"]
    for fw, backend, text in rows:
        lines.append(f"{fw:<6} {backend:<{width}}  {text}")
    lines += ["", _ONEDNN_FOOTNOTE]
    recipes = {
        p.split(". Nearest recipe: ")[1]
        for p in ports.values()
        if isinstance(p, str) and ". Nearest recipe: " in p
    }
    # one recipe per kind: the target named in its last line differs
    for recipe in sorted({r.split("target=")[0] + "target=...)" for r in recipes}):
        lines += ["", "nearest recipe: " + recipe.replace("\n", "\n  ")]
    lines += ["", f"code for one framework: tconv port {source} --to FRAMEWORK ..."]
    return "\n".join(lines)
