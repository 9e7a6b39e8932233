"""Random transposed-convolution layers in each framework's dialect, and each framework's own
op run on them: the ground truth of the port tests (no tconv code computes an expected value)."""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

import tconv

FRAMEWORKS = ("torch", "keras", "onnx", "tf_nn", "jax")
# The module each framework's runner needs (pytest.importorskip skips without it).
MODULE = {
    "torch": "torch",
    "keras": "keras",
    "onnx": "onnxruntime",
    "onnx_reference": "onnx.reference",
    "tf_nn": "tensorflow",
    "jax": "jax",
}
CHANNELS_FIRST = ("torch", "onnx", "onnx_reference")


def _span(k: int, d: int) -> int:
    return d * (k - 1)


def _pick(rng: np.random.Generator, seq: Any) -> Any:
    return seq[int(rng.integers(len(seq)))]


def random_case(source: str, rng: np.random.Generator, rank: int | None = None) -> dict:
    """A layer that the source framework accepts: its arguments, weights and an input."""
    for _ in range(200):
        case = _draw(source, rng, rank or int(rng.integers(1, 4)))
        if case is not None:
            return case
    raise AssertionError(f"no valid {source} layer drawn")


def _geometry(source: str, rng: np.random.Generator, r: int) -> dict:
    """The layer in the tests' description (conftest.layers), plus its total C_out; padding
    comes from each framework's own rules."""
    g = int(_pick(rng, (1, 1, 2))) if source in ("torch", "onnx") else 1
    cin_g, cout_g = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    return {
        "rank": r,
        "groups": g,
        "cin": g * cin_g,
        "cout_g": cout_g,
        "cout": g * cout_g,
        "kernel": [int(rng.integers(1, 5)) for _ in range(r)],
        "stride": [int(rng.integers(1, 4)) for _ in range(r)],
        "dilation": [int(_pick(rng, (1, 1, 2))) for _ in range(r)],
        "size": [int(rng.integers(1, 6)) for _ in range(r)],
        "batch": int(rng.integers(1, 3)),
    }


def _draw(source: str, rng: np.random.Generator, r: int) -> dict | None:
    geo = _geometry(source, rng, r)
    try:
        with warnings.catch_warnings():
            # backends that refuse a layer at run time: the tests run it and see
            warnings.simplefilter("ignore", tconv.BackendWarning)
            return _DRAW[source](geo, rng)
    except tconv.ShapeError:
        return None


def _nonempty(shape: tuple, first: int) -> None:
    if min(shape[first : first + len(shape) - 2]) < 1:
        raise tconv.ShapeError("an empty output: draw again")


def _weights(rng: np.random.Generator, shape: tuple, cout: int, bias: bool) -> tuple:
    kernel = rng.standard_normal(shape).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32) if bias else None
    return kernel, b


def _x(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _draw_torch(geo: dict, rng: np.random.Generator) -> dict:
    r, k, s, d = geo["rank"], geo["kernel"], geo["stride"], geo["dilation"]
    p = [int(rng.integers(0, _span(k[j], d[j]) + 1)) for j in range(r)]
    op = [int(rng.integers(0, max(s[j], d[j]))) for j in range(r)]
    bias = bool(rng.integers(2))
    layer = dict(
        in_channels=geo["cin"],
        out_channels=geo["cout"],
        kernel_size=tuple(k),
        stride=tuple(s),
        padding=tuple(p),
        output_padding=tuple(op),
        groups=geo["groups"],
        bias=bias,
        dilation=tuple(d),
    )
    shape = (geo["batch"], geo["cin"], *geo["size"])
    _nonempty(tconv.shapes.torch(shape, geo["cin"], geo["cout"], k, s, p, op, geo["groups"], d), 2)
    w = _weights(rng, (geo["cin"], geo["cout"] // geo["groups"], *k), geo["cout"], bias)
    return dict(layer=layer, weights=w, input_shape=shape, x=_x(rng, shape))


def _draw_keras(geo: dict, rng: np.random.Generator) -> dict:
    r, k, s = geo["rank"], geo["kernel"], geo["stride"]
    # Keras refuses strides > 1 with dilation > 1
    d = geo["dilation"] if all(v == 1 for v in s) else [1] * r
    mode = _pick(rng, ("same", "valid"))
    op = None if rng.integers(2) else tuple(int(rng.integers(0, s[j])) for j in range(r))
    bias = bool(rng.integers(2))
    layer = dict(
        filters=geo["cout"],
        kernel_size=tuple(k),
        strides=tuple(s),
        padding=mode,
        output_padding=op,
        dilation_rate=tuple(d),
        use_bias=bias,
    )
    shape = (geo["batch"], *geo["size"], geo["cin"])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", tconv.BackendWarning)
        out = tconv.shapes.keras(shape, geo["cout"], k, s, mode, op, "channels_last", d, dims=r)
    if caught and os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
        raise tconv.ShapeError("a layer Keras' TensorFlow backend refuses: draw again")
    _nonempty(out, 1)
    w = _weights(rng, (*k, geo["cout"], geo["cin"]), geo["cout"], bias)
    return dict(layer=layer, weights=w, input_shape=shape, x=_x(rng, shape))


def _draw_onnx(geo: dict, rng: np.random.Generator) -> dict:
    r, k, s, d, g = geo["rank"], geo["kernel"], geo["stride"], geo["dilation"], geo["groups"]
    layer: dict = dict(kernel_shape=list(k), strides=list(s), dilations=list(d))
    if g > 1:
        layer["group"] = g
    form = _pick(rng, ("pads", "pads", "auto", "output_shape"))
    shape = (geo["batch"], geo["cin"], *geo["size"])
    if form == "pads":
        spans = [_span(k[j], d[j]) for j in range(r)]
        layer["pads"] = [int(rng.integers(0, sp + 1)) for sp in spans * 2]
        layer["output_padding"] = [int(rng.integers(0, max(s[j], d[j]))) for j in range(r)]
    elif form == "auto":
        layer["auto_pad"] = _pick(rng, ("SAME_UPPER", "SAME_LOWER", "VALID"))
    else:
        lo_hi = [
            tconv._core.onnx_output_shape_range(geo["size"][j], k[j], s[j], d[j]) for j in range(r)
        ]
        layer["output_shape"] = [int(rng.integers(a, b + 1)) for a, b in lo_hi]
    wshape = (geo["cin"], geo["cout"] // g, *k)
    _nonempty(tconv.shapes.onnx(shape, wshape, **layer), 2)
    w = _weights(rng, wshape, geo["cout"], bool(rng.integers(2)))
    return dict(layer=layer, weights=w, input_shape=shape, x=_x(rng, shape))


def _draw_tf_nn(geo: dict, rng: np.random.Generator) -> dict:
    r, k, s, d = geo["rank"], geo["kernel"], geo["stride"], geo["dilation"]
    # tf.nn.conv_transpose takes explicit pairs in 2-d only, and not with dilation on CPU
    explicit = r == 2 and all(v == 1 for v in d)
    modes = ("SAME", "VALID", "EXPLICIT") if explicit else ("SAME", "VALID")
    mode = _pick(rng, modes)
    pairs = [(0, 0)] * r
    if mode == "EXPLICIT":
        pairs = [(int(rng.integers(0, 3)), int(rng.integers(0, 3))) for _ in range(r)]
    out = []
    for j in range(r):
        lo, hi = tconv._core.tf_transposed_range(geo["size"][j], k[j], s[j], d[j], mode, *pairs[j])
        if lo > hi or hi < 1:
            raise tconv.ShapeError("no output size")
        out.append(int(rng.integers(max(lo, 1), hi + 1)))
    padding: Any = mode if mode != "EXPLICIT" else [[0, 0], *map(list, pairs), [0, 0]]
    shape = (geo["batch"], *geo["size"], geo["cin"])
    layer = dict(
        output_shape=[geo["batch"], *out, geo["cout"]],
        strides=list(s),
        padding=padding,
        dilations=list(d),
    )
    fshape = (*k, geo["cout"], geo["cin"])
    _nonempty(tconv.shapes.tf_nn(shape, fshape, **layer), 1)
    w = _weights(rng, fshape, geo["cout"], bool(rng.integers(2)))
    return dict(layer=layer, weights=w, input_shape=shape, x=_x(rng, shape))


def _draw_jax(geo: dict, rng: np.random.Generator) -> dict:
    r, k, s, d = geo["rank"], geo["kernel"], geo["stride"], geo["dilation"]
    tk = bool(rng.integers(2))
    consistent = bool(rng.integers(2))
    padding: Any = _pick(rng, ("SAME", "VALID", "pairs", "pairs"))
    if padding == "pairs":
        padding = tuple(
            (
                int(rng.integers(-1, _span(k[j], d[j]) + s[j])),
                int(rng.integers(-1, _span(k[j], d[j]) + s[j])),
            )
            for j in range(r)
        )
    else:
        consistent = False
    layer: dict = dict(strides=tuple(s), padding=padding, rhs_dilation=tuple(d))
    if tk:
        layer["transpose_kernel"] = True
    if consistent:
        layer["use_consistent_padding"] = True
    shape = (geo["batch"], *geo["size"], geo["cin"])
    rshape = (*k, geo["cout"], geo["cin"]) if tk else (*k, geo["cin"], geo["cout"])
    _nonempty(tconv.shapes.jax(shape, rshape, **layer), 1)
    w = _weights(rng, rshape, geo["cout"], bool(rng.integers(2)))
    return dict(layer=layer, weights=w, input_shape=shape, x=_x(rng, shape))


_DRAW = {
    "torch": _draw_torch,
    "keras": _draw_keras,
    "onnx": _draw_onnx,
    "tf_nn": _draw_tf_nn,
    "jax": _draw_jax,
}


# ---- each framework's own op ---------------------------------------------------------------


def run(framework: str, params: dict, weights: tuple, x: np.ndarray) -> np.ndarray:
    """The framework's op built from `params` (its own names) on `x`; a bias the op cannot
    take (tf.nn, lax) is added after it, as a layer would."""
    kernel, bias = weights
    return _RUN[framework](params, kernel, bias, x)


def _run_torch(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> np.ndarray:
    import torch

    r = kernel.ndim - 2
    layer = getattr(torch.nn, f"ConvTranspose{r}d")(**params)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.ascontiguousarray(kernel)))
        if bias is not None:
            layer.bias.copy_(torch.from_numpy(bias))
        return layer(torch.from_numpy(x)).numpy()


def _run_keras(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> np.ndarray:
    import keras

    r = kernel.ndim - 2
    layer = getattr(keras.layers, f"Conv{r}DTranspose")(**params)
    layer.build(x.shape)
    layer.set_weights([kernel] if bias is None else [kernel, bias])
    return keras.ops.convert_to_numpy(layer(x))


def _onnx_model(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> Any:
    from onnx import TensorProto, helper, numpy_helper

    inputs = ["X", "W"] if bias is None else ["X", "W", "B"]
    inits = [numpy_helper.from_array(np.ascontiguousarray(kernel), "W")]
    if bias is not None:
        inits.append(numpy_helper.from_array(bias, "B"))
    node = helper.make_node("ConvTranspose", inputs, ["Y"], **params)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape)],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _run_onnx(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    model = _onnx_model(params, kernel, bias, x)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x})[0]


def _run_onnx_reference(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> np.ndarray:
    from onnx.reference import ReferenceEvaluator

    return ReferenceEvaluator(_onnx_model(params, kernel, bias, x)).run(None, {"X": x})[0]


def _run_tf_nn(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    y = tf.nn.conv_transpose(x, kernel, **params).numpy()
    return y if bias is None else y + bias


def _run_jax(params: dict, kernel: Any, bias: Any, x: np.ndarray) -> np.ndarray:
    from jax import lax

    y = np.asarray(lax.conv_transpose(x, kernel, **params))
    return y if bias is None else y + bias


_RUN = {
    "torch": _run_torch,
    "keras": _run_keras,
    "onnx": _run_onnx,
    "onnx_reference": _run_onnx_reference,
    "tf_nn": _run_tf_nn,
    "jax": _run_jax,
}


def to_layout(x: np.ndarray, source: str, target: str) -> np.ndarray:
    """x moved from the source's layout to the target's (channels first or last)."""
    a, b = source in CHANNELS_FIRST, target in CHANNELS_FIRST
    if a == b:
        return x
    return np.moveaxis(x, 1, -1) if a else np.moveaxis(x, -1, 1)


def importorskip(*frameworks: str) -> None:
    import pytest

    for fw in frameworks:
        pytest.importorskip(MODULE[fw])
    if "keras" in frameworks or "tf_nn" in frameworks:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
