"""Port.code(): the ported layer as code in the target framework's own syntax.

The code reads `x` (numpy, the target's layout) and `kernel`, `bias` (numpy, the source's
layout), converts the weights, runs the target's op and finishes: it leaves the source layer's
numbers in `y` (numpy, the target's layout).
"""

from __future__ import annotations

from typing import Any

_GET_WEIGHTS = {
    "torch": "kernel, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()",
    "keras": "kernel, bias = layer.get_weights()",
    "onnx": "kernel, bias = the node's W and B initializers (numpy_helper.to_array)",
    "tf_nn": "kernel = the filters argument, bias = the bias added after it (or None)",
    "jax": "kernel = the rhs argument, bias = the bias added after it (or None)",
}


def _args(params: dict) -> str:
    # an unknown channel count stays a name for the user to fill in
    return ", ".join(
        f"{k}={k if v is None and k != 'output_padding' else repr(v)}" for k, v in params.items()
    )


def _weights_line(port: Any) -> str:
    expr = "kernel"
    if port._perm != tuple(range(len(port._perm))):
        expr += f".transpose{tuple(port._perm)}"
    if port._flip:
        expr = f"np.flip({expr}, {tuple(port._flip)})"
    return f"w = np.array({expr}, dtype=np.float32, order='C')"


def _run_lines(port: Any) -> list[str]:
    p, r, bias = port.params, port.rank, port.takes_bias
    if port.target == "torch":
        lines = [
            "import torch",
            "from torch import nn",
            "",
            _weights_line(port),
            f"layer = nn.ConvTranspose{r}d({_args(p)})",
            "with torch.no_grad():",
            "    layer.weight.copy_(torch.from_numpy(w))",
        ]
        if bias:
            lines.append("    layer.bias.copy_(torch.from_numpy(bias))")
        return [*lines, "    y = layer(torch.from_numpy(x)).numpy()"]
    if port.target == "keras":
        return [
            "import keras",
            "",
            _weights_line(port),
            f"layer = keras.layers.Conv{r}DTranspose({_args(p)})",
            "layer.build(x.shape)",
            f"layer.set_weights([w{', bias' if bias else ''}])",
            "y = keras.ops.convert_to_numpy(layer(x))",
        ]
    if port.target == "onnx":
        inputs = ["X", "W", "B"] if bias else ["X", "W"]
        inits = 'numpy_helper.from_array(w, "W")'
        if bias:
            inits += ', numpy_helper.from_array(bias.astype(np.float32), "B")'
        return [
            "import onnxruntime as ort",
            "from onnx import TensorProto, helper, numpy_helper",
            "",
            _weights_line(port),
            f"node = helper.make_node('ConvTranspose', {inputs!r}, ['Y'], {_args(p)})",
            "graph = helper.make_graph(",
            "    [node], 'port',",
            "    [helper.make_tensor_value_info('X', TensorProto.FLOAT, x.shape)],",
            "    [helper.make_tensor_value_info('Y', TensorProto.FLOAT, None)],",
            f"    [{inits}],",
            ")",
            "model = helper.make_model(graph, opset_imports=[helper.make_opsetid('', 17)])",
            "model.ir_version = 8",
            "session = ort.InferenceSession(model.SerializeToString(), "
            "providers=['CPUExecutionProvider'])",
            "y = session.run(None, {'X': x})[0]",
        ]
    if port.target == "tf_nn":
        tp = dict(p)
        shape = ", ".join(["x.shape[0]", *map(str, tp.pop("output_shape")[1:])])
        return [
            "import tensorflow as tf",
            "",
            _weights_line(port),
            f"y = tf.nn.conv_transpose(x, w, output_shape=[{shape}], {_args(tp)}).numpy()",
        ]
    return [
        "from jax import lax",
        "",
        _weights_line(port),
        f"y = np.asarray(lax.conv_transpose(x, w, {_args(p)}))",
    ]


def _finish_lines(port: Any) -> list[str]:
    lines = []
    first = 2 if port.target in ("torch", "onnx") else 1
    ndim = port.rank + 2
    if any(a or b for a, b in port.crop):
        index = [":"] * ndim
        for j, (a, b) in enumerate(port.crop):
            index[first + j] = f"{a or ''}:{-b if b else ''}"
        lines.append(
            f"y = y[{', '.join(index)}]  # the cells this layer computes beyond the source's"
        )
    if any(a or b for a, b in port.pad):
        widths = [(0, 0)] * ndim
        for j, pair in enumerate(port.pad):
            widths[first + j] = tuple(pair)
        lines.append(f"y = np.pad(y, {widths})  # cells outside the full result: only the bias")
    if port.adds_bias:
        view = "bias" if first == 1 else "bias.reshape(-1" + ", 1" * port.rank + ")"
        why = (
            "the op takes no bias"
            if port.target not in ("torch", "keras", "onnx")
            else ("added after the pad")
        )
        lines.append(f"y = y + {view}  # {why}")
    return lines


def port_code(port: Any) -> str:
    head = [
        f"# {port.source} -> {port.target}. x: the input in {port.target}'s layout (float32);",
        f"# {_GET_WEIGHTS[port.source]}",
        "import numpy as np",
    ]
    return "\n".join([*head, *_run_lines(port), *_finish_lines(port)]) + "\n"


def _slices(crops: Any) -> str:
    return ", ".join(f"{a or ''}:{-b if b else ''}" for a, b in crops)


def recipe_code(port: Any) -> str | None:
    """translate()'s short recipe: the target layer's code (Solution.code()), then the crop
    that leaves the source's window, in the target's syntax. None where the port adds cells
    (a crop is not enough) or the target has no one-line crop (ONNX)."""
    if any(a or b for a, b in port.pad) or port.target == "onnx":
        return None
    code, crops, r = port.solution.code(), port.crop, port.rank
    if port.target == "torch":
        return f"layer = {code}\ny = layer(x)[..., {_slices(crops)}]"
    if port.target == "keras":
        crop = crops[0] if r == 1 else tuple(crops)
        return f"layer = {code}\ny = layers.Cropping{r}D({crop})(layer(x))"
    call, note = code.split("  #")[:2]  # tf.nn and lax: channels-last
    return f"y = {call}[:, {_slices(crops)}, :]  #{note}"
