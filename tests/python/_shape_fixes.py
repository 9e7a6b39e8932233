"""Apply the fix of a tconv.shapes ShapeError (the "fix:" line explain and `tconv shape` print)
to the layer's arguments, as a user would: shared by test_shape_fixes.py (tconv.shapes) and
test_shape_fixes_frameworks.py (the frameworks themselves).

Each rule reads one kind of fix ("use padding <= 4 in height", "use kernel_shape=[3, 3]", ...)
and returns the arguments it asks for; fixes that are prose (e.g. "check the layer before this
one") have no rule and are counted apart.
"""

from __future__ import annotations

import ast
import copy
import re
from collections.abc import Callable

SPATIAL = {"width": -1, "height": -2, "depth": -3}


def _dim(word: str, n: int) -> int:
    if word.startswith("dim "):
        return int(word[4:])
    return n + SPATIAL[word]


def _set(params: dict, key: str, n: int, d: int, value, default) -> None:
    cur = params.get(key, default)
    vals = list(cur) if isinstance(cur, (list, tuple)) else [cur] * n
    vals[d] = value
    params[key] = vals


def _rank(fw: str, p: dict) -> int:
    if fw in ("torch", "keras"):
        return p["dims"]
    key = {"onnx": "weight_shape", "tf_nn": "filters_shape", "jax": "rhs_shape"}[fw]
    return len(p[key]) - 2


Rule = Callable[[re.Match, dict, int], list]
RULES: list[tuple[str, str, Rule]] = []


def rule(fw: str, pattern: str):
    def deco(fn: Rule) -> Rule:
        RULES.append((fw, pattern, fn))
        return fn

    return deco


# torch -----------------------------------------------------------------------------------------


@rule("torch", r"^use padding <= (\d+) in (depth|height|width|dim \d+)")
def _torch_padding(m, p, n):
    _set(p, "padding", n, _dim(m.group(2), n), int(m.group(1)), 0)
    return [p]


@rule("torch", r"^use output_padding <= (\d+) in (depth|height|width|dim \d+)")
def _torch_op(m, p, n):
    _set(p, "output_padding", n, _dim(m.group(2), n), int(m.group(1)), 0)
    return [p]


@rule("torch", r"^use in_channels=(\d+)")
def _torch_cin(m, p, n):
    p["in_channels"] = int(m.group(1))
    return [p]


@rule("torch", r"^use in_channels >= 1 \(the channel count of the input\)")
def _torch_cin0(m, p, n):
    shape = p["input_shape"]
    p["in_channels"] = shape[1] if len(shape) == n + 2 else shape[0]
    return [p]


@rule("torch", r"^use groups in (\[[\d, ]+\])")
def _torch_groups(m, p, n):
    return [dict(p, groups=g) for g in ast.literal_eval(m.group(1))]


@rule("torch", r"x\.flatten\(0, (\d+)\)")
def _torch_flatten(m, p, n):
    e = int(m.group(1))
    shape = p["input_shape"]
    batch = 1
    for v in shape[: e + 1]:
        batch *= v
    p["input_shape"] = [batch, *shape[e + 1 :]]
    return [p]


@rule("torch", r"e\.g\. x\.view\(([\d, ]+)\)")
def _torch_view(m, p, n):
    p["input_shape"] = [int(t) for t in m.group(1).split(",")]
    return [p]


@rule(
    "torch",
    r"^drop output_size and use padding=(\(?[\d, ]+\)?), output_padding=(\(?[\d, ]+\)?)"
    r" to get",
)
def _torch_output_size(m, p, n):
    p.pop("output_size")
    p["padding"] = ast.literal_eval(m.group(1))
    p["output_padding"] = ast.literal_eval(m.group(2))
    return [p]


# keras -----------------------------------------------------------------------------------------


@rule("keras", r"^use output_padding in \[0, (\d+)\] at dimension (\d+), or output_padding=None")
def _keras_op(m, p, n):
    q = copy.deepcopy(p)
    _set(q, "output_padding", n, int(m.group(2)), int(m.group(1)), 0)
    return [q, dict(p, output_padding=None)]


@rule("keras", r"^use strides=1 with the dilation, or dilation_rate=1 with the stride")
def _keras_stride_dil(m, p, n):
    return [dict(p, strides=1), dict(p, dilation_rate=1)]


@rule("keras", r"e\.g\. keras\.layers\.Reshape\((\([\d, ]+\))\)")
def _keras_reshape(m, p, n):
    p["input_shape"] = [p["input_shape"][0], *ast.literal_eval(m.group(1))]
    return [p]


# onnx ------------------------------------------------------------------------------------------


@rule("onnx", r"^use kernel_shape=(\[[\d, ]+\])")
def _onnx_kernel_shape(m, p, n):
    q = {k: v for k, v in p.items() if k != "kernel_shape"}
    return [dict(p, kernel_shape=ast.literal_eval(m.group(1))), q]


@rule("onnx", r"^use a weight of shape (\([\d, ]+\))")
def _onnx_weight(m, p, n):
    p["weight_shape"] = list(ast.literal_eval(m.group(1)))
    return [p]


@rule("onnx", r"^use group in (\[[\d, ]+\])")
def _onnx_group(m, p, n):
    return [dict(p, group=g) for g in ast.literal_eval(m.group(1))]


@rule("onnx", r"^use pads with pads\[(\d+)\] \+ pads\[(\d+)\] < (\d+)")
def _onnx_pads(m, p, n):
    a, b, total = int(m.group(1)), int(m.group(2)), int(m.group(3)) - 1
    pads = list(p["pads"])
    pads[a] = min(pads[a], total)
    pads[b] = total - pads[a]
    p["pads"] = pads
    return [p]


@rule("onnx", r"^use output_padding\[(\d+)\] <= (\d+)")
def _onnx_op(m, p, n):
    _set(p, "output_padding", n, int(m.group(1)), int(m.group(2)), 0)
    return [p]


@rule("onnx", r"^use output_shape=(\[[\d, ]+\])")
def _onnx_output_shape(m, p, n):
    p["output_shape"] = ast.literal_eval(m.group(1))
    return [p]


@rule("onnx", r"^use output_shape\[(\d+)\] in (\d+)\.\.(\d+)")
def _onnx_output_shape_range(m, p, n):
    d = int(m.group(1))
    out = []
    for v in {int(m.group(2)), int(m.group(3))}:
        q = copy.deepcopy(p)
        q["output_shape"][d] = v
        out.append(q)
    return out


# tf.nn -----------------------------------------------------------------------------------------


@rule("tf_nn", r"^use padding=('\w+')")
def _tf_padding(m, p, n):
    p["padding"] = ast.literal_eval(m.group(1))
    return [p]


@rule("tf_nn", r"^use filters of shape (\([\d, ]+\))")
def _tf_filters(m, p, n):
    p["filters_shape"] = list(ast.literal_eval(m.group(1)))
    return [p]


@rule("tf_nn", r"^use output_shape with (\d+) channels")
def _tf_out_channels(m, p, n):
    p["output_shape"] = [*p["output_shape"][:-1], int(m.group(1))]
    return [p]


@rule("tf_nn", r"^use output_shape\[0\] = (\d+)")
def _tf_batch(m, p, n):
    p["output_shape"] = [int(m.group(1)), *p["output_shape"][1:]]
    return [p]


@rule("tf_nn", r"^pass output_shape with \d+ values, e\.g\. (\[[\d, ]+\])")
def _tf_output_shape(m, p, n):
    p["output_shape"] = ast.literal_eval(m.group(1))
    return [p]


@rule("tf_nn", r"^use an output size in (\d+)\.\.(\d+) for an input of (\d+).*?spatial_dim: (\d+)")
def _tf_output_size(m, p, n):
    d = int(m.group(4))  # TensorFlow's axis in NHWC
    out = []
    for v in {int(m.group(1)), int(m.group(2))}:
        q = copy.deepcopy(p)
        q["output_shape"][d] = v
        out.append(q)
    return out


@rule("tf_nn", r"^use 'VALID' with output_shape's spatial sizes \+ lo \+ hi and crop")
def _tf_explicit_as_valid(m, p, n):
    pairs = p["padding"][1:-1]
    p["output_shape"] = [
        p["output_shape"][0],
        *(v + lo + hi for v, (lo, hi) in zip(p["output_shape"][1:-1], pairs)),
        p["output_shape"][-1],
    ]
    p["padding"] = "VALID"
    return [p]


# jax -------------------------------------------------------------------------------------------


@rule("jax", r"^use padding=('\w+')")
def _jax_padding(m, p, n):
    p["padding"] = ast.literal_eval(m.group(1))
    return [p]


@rule("jax", r"pass transpose_kernel=(True|False)")
def _jax_transpose(m, p, n):
    p["transpose_kernel"] = m.group(1) == "True"
    return [p]


@rule("jax", r"^use an rhs with (\d+) on that axis")
def _jax_rhs_channels(m, p, n):
    spec = p["dimension_numbers"][1] if p.get("dimension_numbers") else "HWD"[:n] + "IO"
    axis = spec.index("O" if p.get("transpose_kernel") else "I")
    p["rhs_shape"] = list(p["rhs_shape"])
    p["rhs_shape"][axis] = int(m.group(1))
    return [p]


@rule("jax", r"(?s)^use pads whose sum is >= (-?\d+).*?the pads \((-?\d+), (-?\d+)\)")
def _jax_pads_sum(m, p, n):
    low, a, b = int(m.group(1)), int(m.group(2)), int(m.group(3))
    pads = [list(q) for q in p["padding"]]
    d = next(i for i, q in enumerate(pads) if tuple(q) == (a, b))
    pads[d][1] = low - a
    p["padding"] = pads
    return [p]


@rule("jax", r"^use a padding pair whose sum is <= (-?\d+) in spatial dim (\d+)")
def _jax_consistent_pads_sum(m, p, n):
    top, d = int(m.group(1)), int(m.group(2))
    pads = [list(q) for q in p["padding"]]
    pads[d][1] = top - pads[d][0]
    p["padding"] = pads
    return [p]


def apply(fw: str, params: dict, exc) -> list[dict] | None:
    """The argument sets the fix of `exc` asks for, or None when no rule reads it."""
    text = exc.fix
    if fw in ("tf_nn", "jax"):  # the failing axis is in the framework's message or the why
        text = f"{exc.fix} || {exc.framework_message} || {exc}"
    for f, pattern, fn in RULES:
        if f != fw:
            continue
        m = re.search(pattern, text)
        if m:
            return fn(m, copy.deepcopy(params), _rank(fw, params))
    return None
