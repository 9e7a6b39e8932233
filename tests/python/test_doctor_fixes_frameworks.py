"""doctor's fixes for Keras, TensorFlow, ONNX Runtime and JAX messages, applied as written.

Each test provokes the error in the framework, asks tconv.doctor, reads the fix's numbers or
code out of its text, applies it and runs again: it must run and give the promised size (and,
where the fix promises the same result, the same numbers as tconv's reference). Each
framework is optional: its tests skip when it is absent (CI's "frameworks" stage has them
all). TensorFlow's precise messages come from its kernels without oneDNN, so its cases run in
a subprocess with TF_ENABLE_ONEDNN_OPTS=0 (it must be set before TensorFlow is imported).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv

from conftest import assert_close_in_norm

FAST = settings(max_examples=8, deadline=None, derandomize=True, database=None)
F32 = np.float32


def _diagnose(fn, kind: str, errors=(Exception,)):
    with pytest.raises(errors) as info:
        fn()
    d = tconv.doctor(str(info.value))
    assert d.recognised and d.kind == kind, str(info.value)[:500]
    return d


# ---- Keras ------------------------------------------------------------------------------------


@FAST
@given(st.integers(1, 300), st.integers(1, 3))
def test_keras_flat_input_reshapes_run(features, rank):
    keras = pytest.importorskip("keras")
    layer = getattr(keras.layers, f"Conv{rank}DTranspose")
    x = np.zeros((2, features), F32)
    d = _diagnose(lambda: layer(3, 1)(x), "rank")
    shapes = re.findall(r"Reshape\((\([\d, ]+\))\)", d.fix)
    assert shapes
    for shape in map(eval, shapes):
        y = layer(3, 1)(keras.layers.Reshape(shape)(x))
        assert tuple(y.shape) == (2, *shape[:-1], 3)


def test_keras_rank_fixes_run():
    keras = pytest.importorskip("keras")
    L = keras.layers
    x = np.zeros((2, 5, 5), F32)
    d = _diagnose(lambda: L.Conv2DTranspose(3, 3)(x), "rank")
    shape = eval(re.search(r"Reshape\((\([\d, ]+\))\) for a single channel", d.fix).group(1))
    assert tuple(L.Conv2DTranspose(3, 3)(L.Reshape(shape)(x)).shape) == (2, 7, 7, 3)
    x = np.zeros((2, 4, 5, 5, 3), F32)  # (batch, time, h, w, c)
    d = _diagnose(lambda: L.Conv2DTranspose(3, 3)(x), "rank")
    assert "TimeDistributed(...)" in d.fix and "Conv3DTranspose" in d.fix
    assert tuple(L.TimeDistributed(L.Conv2DTranspose(3, 3))(x).shape) == (2, 4, 7, 7, 3)
    assert tuple(L.Conv3DTranspose(3, 3)(x).shape) == (2, 6, 7, 7, 3)


def test_keras_channels_fix_runs():
    keras = pytest.importorskip("keras")
    layer = keras.layers.Conv2DTranspose(3, 3)
    layer(np.zeros((1, 5, 5, 3), F32))
    x = np.zeros((1, 5, 5, 4), F32)
    d = _diagnose(lambda: layer(x), "channels")
    assert "a separate layer instance for inputs with 4 channels" in d.fix
    assert tuple(keras.layers.Conv2DTranspose(3, 3)(x).shape) == (1, 7, 7, 3)


@pytest.mark.parametrize("k, s, d", [(3, 2, 2), (2, 3, 3), (4, 2, 2)])
def test_keras_stride_and_dilation_fix_runs(k, s, d):
    keras = pytest.importorskip("keras")
    msg = _diagnose(
        lambda: keras.layers.Conv1DTranspose(3, k, strides=s, dilation_rate=d),
        "stride_and_dilation",
    )
    assert "dilation*(k-1)+1 cells" in msg.fix
    # the larger kernel spans the dilated one: the same length as PyTorch's layer with both
    y = keras.layers.Conv1DTranspose(3, d * (k - 1) + 1, strides=s)(np.zeros((1, 5, 2), F32))
    assert y.shape[1] == tconv.shapes.torch((1, 2, 5), 2, 3, k, s, dilation=d)[2]


@FAST
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 8))
def test_keras_padding_string_fix_sizes(k, s, i):
    keras = pytest.importorskip("keras")
    layer = keras.layers.Conv1DTranspose
    d = _diagnose(lambda: layer(3, k, strides=s, padding="causal"), "padding_string")
    same = re.search(r"'same' \(output = input \* strides\)", d.fix)
    valid = re.search(r"'valid' \(output = input \* strides \+ max\(kernel - strides, 0\)\)", d.fix)
    assert same and valid
    x = np.zeros((1, i, 2), F32)
    assert layer(3, k, strides=s, padding="same")(x).shape[1] == i * s
    assert layer(3, k, strides=s, padding="valid")(x).shape[1] == i * s + max(k - s, 0)


def test_keras_kernel_size_fix_runs():
    keras = pytest.importorskip("keras")
    L = keras.layers
    d = _diagnose(lambda: L.Conv2DTranspose(3, (3, 3, 3)), "kernel_size")
    assert "one int or 2 ints" in d.fix and "Conv3DTranspose for 3-D data" in d.fix
    assert tuple(L.Conv2DTranspose(3, 3)(np.zeros((1, 5, 5, 2), F32)).shape) == (1, 7, 7, 3)
    assert tuple(L.Conv3DTranspose(3, (3, 3, 3))(np.zeros((1, 5, 5, 5, 2), F32)).shape) == (
        1,
        7,
        7,
        7,
        3,
    )


def test_torch_string_padding_fix_keras_window_numbers():
    """PyTorch's "padding must be tuple of ints" fix: for kernel 3, stride 2, Keras' 'same'
    cells are padding=0 then y[..., :-1] (and padding=1, output_padding=1 is the same size,
    another window)."""
    keras = pytest.importorskip("keras")
    torch = pytest.importorskip("torch")
    d = tconv.doctor("conv_transpose2d(): argument 'padding' must be tuple of ints, not str")
    assert "kernel 3, stride 2: padding=0, then y[..., :-1]" in d.fix
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 2, 5, 5)).astype(F32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(F32)
    layer = keras.layers.Conv2DTranspose(3, 3, strides=2, padding="same", use_bias=False)
    layer(np.moveaxis(x, 1, -1))
    layer.set_weights([w.transpose(2, 3, 1, 0)])
    want = np.moveaxis(np.asarray(layer(np.moveaxis(x, 1, -1))), -1, 1)
    with torch.no_grad():
        y = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=0
        )[..., :-1, :-1]
        other = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x), torch.from_numpy(w), stride=2, padding=1, output_padding=1
        )
    assert_close_in_norm(y.numpy(), want, dtype=F32)
    assert other.shape == y.shape and not np.allclose(other.numpy(), want, atol=1e-3)


_KERAS_JAX = r"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
import numpy as np, keras
out = []
for k, s, op, i in json.loads(sys.argv[1]):
    layer = keras.layers.Conv2DTranspose(3, k, strides=s, padding="same", output_padding=op)
    out.append(list(layer(np.zeros((1, i, i, 2), "float32")).shape))
print(json.dumps(out))
"""


def test_keras_layers_tensorflow_refuses_run_as_advised():
    """Even kernels with 'same' that TensorFlow's CPU kernels refuse: the fix's three ways
    (an odd kernel, output_padding=None, another backend) all run."""
    keras = pytest.importorskip("keras")
    pytest.importorskip("tensorflow")
    pytest.importorskip("jax")
    layers = [(4, 1, 0, 9), (6, 3, 0, 7), (6, 2, 1, 8)]  # (kernel, strides, op, size)
    refused = []
    for k, s, op, i in layers:
        layer = keras.layers.Conv2DTranspose(3, k, strides=s, padding="same", output_padding=op)
        try:
            layer(np.zeros((1, i, i, 2), F32))
        except Exception as exc:
            d = tconv.doctor(str(exc))
            assert d.recognised and d.kind in ("onednn_refused", "out_backprop")
            assert "JAX or torch backend" in d.fix
            refused.append((k, s, op, i))
            continue
    assert refused, "TensorFlow ran every layer: the case no longer reaches the fix"
    for k, s, op, i in refused:
        odd = keras.layers.Conv2DTranspose(3, k + 1, strides=s, padding="same", output_padding=op)
        assert (
            odd(np.zeros((1, i, i, 2), F32)).shape[1]
            == tconv.shapes.keras((1, i, i, 2), 3, k + 1, s, "same", op)[1]
        )
        auto = keras.layers.Conv2DTranspose(3, k, strides=s, padding="same")
        assert auto(np.zeros((1, i, i, 2), F32)).shape[1] == i * s
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    res = subprocess.run(
        [sys.executable, "-c", _KERAS_JAX, json.dumps(refused)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for (k, s, op, i), shape in zip(refused, json.loads(res.stdout.strip().splitlines()[-1])):
        with pytest.warns(tconv.BackendWarning, match="The JAX and torch backends run it"):
            assert tuple(shape) == tconv.shapes.keras((1, i, i, 2), 3, k, s, "same", op)


# ---- ONNX Runtime -------------------------------------------------------------------------------


def _ort(x_shape, w, declared=False, b=None, x=None, **attrs):
    """Run one ConvTranspose node; the output array."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    inputs = ["X", "W"] + (["B"] if b is not None else [])
    node = helper.make_node("ConvTranspose", inputs, ["Y"], **attrs)
    init = [numpy_helper.from_array(np.asarray(w, F32), "W")]
    if b is not None:
        init.append(numpy_helper.from_array(np.asarray(b, F32), "B"))
    graph = helper.make_graph(
        [node],
        "g",
        [
            helper.make_tensor_value_info(
                "X", TensorProto.FLOAT, list(x_shape) if declared else None
            )
        ],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        init,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    opts = ort.SessionOptions()
    opts.log_severity_level = 4
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    xv = np.zeros(x_shape, F32) if x is None else np.asarray(x, F32)
    return sess.run(None, {"X": xv})[0]


def _w(*shape):
    return np.zeros(shape, F32)


def test_onnx_channel_and_rank_fixes_run():
    pytest.importorskip("onnxruntime")
    d = _diagnose(lambda: _ort((1, 3, 5, 5), _w(4, 2, 3, 3)), "channels")
    c = int(re.search(r"give W a first axis of (\d+)", d.fix).group(1))
    assert _ort((1, 3, 5, 5), _w(c, 2, 3, 3)).shape == (1, 2, 7, 7)
    d = _diagnose(lambda: _ort((1, 3, 5), _w(3, 2, 3, 3)), "rank")
    n = int(re.search(r"give W (\d+) kernel axes", d.fix).group(1))
    assert _ort((1, 3, 5), _w(3, 2, *[3] * n)).shape == (1, 2, 7)
    d = _diagnose(lambda: _ort((2, 100), _w(4, 2, 3, 3)), "rank")
    for v in re.findall(r"x\.view\(N, ([\d, ]+)\)", d.fix):
        c, h, w = (int(t) for t in v.split(","))
        assert _ort((2, c, h, w), _w(c, 2, 3, 3)).shape == (2, 2, h + 2, w + 2)


def test_onnx_attribute_fixes_run():
    pytest.importorskip("onnxruntime")
    x, w = (1, 3, 5, 5), _w(3, 2, 3, 3)
    d = _diagnose(lambda: _ort(x, w, strides=[2]), "attribute_length")
    n = int(re.search(r"give strides exactly (\d+) values", d.fix).group(1))
    assert _ort(x, w, strides=[2] * n).shape == (1, 2, 11, 11)
    d = _diagnose(lambda: _ort(x, w, pads=[1, 1]), "attribute_length")
    pads = eval(re.search(r"e\.g\. (\[[\d, ]+\])", d.fix).group(1))
    assert _ort(x, w, pads=pads).shape == (1, 2, 5, 5)
    d = _diagnose(lambda: _ort(x, w, group=2), "groups")
    for g in eval(re.search(r"one of (\[[\d, ]+\])", d.fix).group(1)):
        assert _ort(x, w, group=g).shape == (1, 2 * g, 7, 7)
    for bad, declared in (([3, 2], False), ([3], False), ([3], True), ([3, 3, 3], True)):
        d = _diagnose(lambda: _ort(x, w, declared, kernel_shape=bad), "kernel_shape")
        assert "drop kernel_shape" in d.fix
        assert _ort(x, w, declared).shape == (1, 2, 7, 7)
        shown = re.search(r"set it to (\[[\d, ]+\])", d.fix)
        ks = eval(shown.group(1)) if shown else list(w.shape[2:])  # "W.shape[2:]"
        assert _ort(x, w, declared, kernel_shape=ks).shape == (1, 2, 7, 7)
    full = [1, 2, 10, 10]
    d = _diagnose(lambda: _ort(x, w, True, strides=[2, 2], output_shape=full), "output_shape")
    assert "output_shape=output_shape[2:]" in d.fix
    assert _ort(x, w, True, strides=[2, 2], output_shape=full[2:]).shape == tuple(full)


@FAST
@given(
    st.integers(1, 6),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(0, 3),
    st.integers(0, 3),
    st.data(),
)
def test_onnx_output_padding_fix_gives_the_size(i, k, s, lo, hi, data):
    """output_padding past its limit: the fix's output_padding and smaller end pad give the
    length the layer asked for."""
    pytest.importorskip("onnxruntime")
    op = data.draw(st.integers(s, s + 2))
    want = (i - 1) * s + k - lo - hi + op
    if want < 1:
        return
    w = _w(1, 1, k)
    d = _diagnose(
        lambda: _ort((1, 1, i), w, strides=[s], pads=[lo, hi], output_padding=[op]),
        "output_padding",
    )
    m = re.search(
        r"use output_padding\[0\] <= (\d+); for more cells reduce the end pad "
        r"\(pads\[0 \+ rank\]\) by (\d+)",
        d.fix,
    )
    assert m, d.fix
    op2, less = int(m.group(1)), int(m.group(2))
    assert op2 + less == op
    if less > hi:
        return  # no end pad to give back: the fix's other way (output_shape) is tested below
    y = _ort((1, 1, i), w, strides=[s], pads=[lo, hi - less], output_padding=[op2])
    assert y.shape[2] == want


@FAST
@given(st.integers(1, 6), st.integers(1, 4), st.integers(1, 3), st.integers(1, 30))
def test_onnx_output_shape_fix_sizes_run(i, k, s, size):
    pytest.importorskip("onnxruntime")
    w = _w(1, 1, k)
    try:
        y = _ort((1, 1, i), w, strides=[s], output_shape=[size])
    except Exception as exc:
        d = tconv.doctor(str(exc))
        assert d.recognised and d.kind == "output_shape", str(exc)
        m = re.search(r"(\d+)(?:\.\.(\d+))? for an input of", d.fix)
        assert m, d.fix
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        assert not lo <= size <= hi
        for n in {lo, hi}:
            assert _ort((1, 1, i), w, strides=[s], output_shape=[n]).shape[2] == n
        return
    assert y.shape[2] == size


def test_onnx_output_padding_too_large_for_the_stride_fix_runs():
    pytest.importorskip("onnxruntime")
    w = _w(1, 2, 5)
    attrs = dict(strides=[2], dilations=[3], auto_pad="VALID")
    d = _diagnose(lambda: _ort((1, 1, 6), w, output_padding=[2], **attrs), "output_padding")
    op = int(re.search(r"use output_padding <= (\d+)", d.fix).group(1))
    y = _ort((1, 1, 6), w, output_padding=[op], **attrs)
    assert y.shape == tconv.shapes.onnx((1, 1, 6), w.shape, output_padding=[op], **attrs)


def test_onnx_negative_output_fix_runs():
    pytest.importorskip("onnxruntime")
    w = _w(3, 2, 3, 3)
    d = _diagnose(lambda: _ort((1, 3, 2, 2), w, pads=[3, 3, 3, 3]), "negative_output")
    assert "reduce pads" in d.fix
    assert _ort((1, 3, 2, 2), w, pads=[1, 1, 1, 1]).shape == (1, 2, 2, 2)


# ---- JAX --------------------------------------------------------------------------------------


@FAST
@given(
    st.integers(1, 3), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3), st.integers(3, 6)
)
def test_jax_channels_fix_gives_pytorch_numbers(cin, cout, k, s, i):
    """'a PyTorch weight (C_in, C_out, kh, kw) is used as w.transpose(2, 3, 1, 0) with
    transpose_kernel=True': the numbers of PyTorch's conv_transpose2d."""
    jax = pytest.importorskip("jax")
    lax, jnp = jax.lax, jax.numpy
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, cin, i, i)).astype(F32)
    w = rng.standard_normal((cin, cout, k, k)).astype(F32)
    xl = jnp.asarray(x.transpose(0, 2, 3, 1))
    # the message appears where the channel counts differ: the fix is the same for all
    d = _diagnose(
        lambda: lax.conv_transpose(xl, jnp.zeros((k, k, cin + 1, cout)), (s, s), "VALID"),
        "channels",
    )
    code = re.search(r"w\.transpose\(([\d, ]+)\) with transpose_kernel=True", d.fix)
    perm = tuple(int(t) for t in code.group(1).split(","))
    y = lax.conv_transpose(
        xl, jnp.asarray(w.transpose(*perm)), (s, s), "VALID", transpose_kernel=True
    )
    # JAX's 'VALID' is Keras' (input * strides + max(kernel - strides, 0))
    want = tconv.reference.conv_transpose(
        x.astype(np.float64), w.astype(np.float64), stride=s, padding="valid"
    )
    assert_close_in_norm(np.moveaxis(np.asarray(y), -1, 1), want, dtype=F32)


def test_jax_padding_and_rank_fixes_run():
    jax = pytest.importorskip("jax")
    lax, jnp = jax.lax, jax.numpy
    x, w = jnp.zeros((1, 5, 5, 3)), jnp.zeros((3, 3, 3, 2))
    d = _diagnose(lambda: lax.conv_transpose(x, w, (2, 2), [(1, 1)]), "padding")
    pad = eval(re.search(r"padding=(\[[\d(), ]+\])", d.fix).group(1))
    assert lax.conv_transpose(x, w, (2, 2), pad).shape == tconv.shapes.jax(
        x.shape, w.shape, (2, 2), pad
    )
    d = _diagnose(lambda: lax.conv_transpose(x, w, (2, 2), "same"), "padding")
    assert "'SAME' or 'VALID'" in d.fix
    assert lax.conv_transpose(x, w, (2, 2), "SAME").shape == (1, 10, 10, 2)
    for bad in ([[1, 1], [1, 1]], "same"):
        d = _diagnose(
            lambda: lax.conv_transpose(x, w, (2, 2), bad, use_consistent_padding=True), "padding"
        )
        fixed = re.search(r"use padding=('\w+')", d.fix)
        pad = eval(fixed.group(1)) if fixed else tuple(tuple(p) for p in bad)
        assert "tuples, not lists" in d.fix or fixed
        y = lax.conv_transpose(x, w, (2, 2), pad, use_consistent_padding=True)
        assert y.shape == tconv.shapes.jax(
            x.shape, w.shape, (2, 2), pad, use_consistent_padding=True
        )
    small = jnp.zeros((1, 2, 2, 3))
    d = _diagnose(
        lambda: lax.conv_transpose(small, w, (1, 1), [(-3, -3), (0, 0)]), "negative_output"
    )
    assert "'VALID'" in d.fix
    assert lax.conv_transpose(small, w, (1, 1), "VALID").shape == (1, 4, 4, 2)
    d = _diagnose(lambda: lax.conv_general_dilated(x, jnp.zeros((3, 3, 3)), (1, 1), "SAME"), "rank")
    assert "give rhs 2 kernel axes plus in and out" in d.fix
    y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    assert y.shape == (1, 5, 5, 2)


# ---- TensorFlow (in a subprocess: TF_ENABLE_ONEDNN_OPTS before the import) -------------------

_TF_FIXES = r'''
import json, os, re, sys
import numpy as np
import tensorflow as tf
import tconv
z = tf.zeros
rng = np.random.default_rng(0)
out = {}


def check(name, fail, apply):
    try:
        fail()
        out[name] = {"raised": False}
        return
    except Exception as exc:  # noqa: BLE001
        d = tconv.doctor(str(exc))
    res = {"raised": True, "kind": d.kind, "recognised": d.recognised, "fix": d.fix}
    if d.kind != "onednn_refused":
        got, want = apply(d)
        res["shape"], res["want"] = list(np.shape(got)), list(np.shape(want))
        res["err"] = float(np.max(np.abs(np.asarray(got) - np.asarray(want)))) if \
            np.shape(got) == np.shape(want) else None
    out[name] = res


x5 = rng.standard_normal((1, 5, 5, 3)).astype("float32")
w_torch = rng.standard_normal((3, 8, 3, 3)).astype("float32")   # (C_in, C_out, kh, kw)


def torch_numbers(x_nhwc, w, stride, pairs):
    """PyTorch's conv_transpose with explicit crops, as tconv computes it (channels-last)."""
    xc = np.ascontiguousarray(x_nhwc.transpose(0, 3, 1, 2))
    y = tconv.conv_transpose(xc, np.ascontiguousarray(w), stride=stride, padding=pairs)
    return y.transpose(0, 2, 3, 1)


def fix_out_depth(d):
    perm = tuple(int(t) for t in re.search(r"w\.transpose\(([\d, ]+)\)", d.fix).group(1).split(","))
    f = w_torch.transpose(*perm)
    y = tf.nn.conv2d_transpose(x5, f, (1, 10, 10, 8), 2, "SAME")
    return y.numpy(), torch_numbers(x5, w_torch, 2, ((0, 1), (0, 1)))


check("out_depth", lambda: tf.nn.conv2d_transpose(x5, z((3, 3, 8, 4)), (1, 10, 10, 8), 2, "SAME"),
      fix_out_depth)


def fix_depth(d):
    assert "output_shape[-1] = filters.shape[-2]" in d.fix
    y = tf.nn.conv2d_transpose(x5, z((3, 3, 8, 3)), (1, 10, 10, 8), 2, "SAME")
    return y, np.zeros((1, 10, 10, 8))


check("depth", lambda: tf.nn.conv2d_transpose(x5, z((3, 3, 8, 3)), (1, 10, 10, 6), 2, "SAME"),
      fix_depth)


def fix_filter_rank(d):
    shape = re.search(r"filters of shape \(([\w, ]+)\)", d.fix).group(1).split(", ")
    shape = [{"C_out": 8, "C_in": 3}.get(t, t) for t in shape]
    y = tf.nn.conv2d_transpose(x5, z([int(t) for t in shape]), (1, 10, 10, 8), 2, "SAME")
    return y, np.zeros((1, 10, 10, 8))


check("filter_rank", lambda: tf.nn.conv2d_transpose(x5, z((3, 8, 3)), (1, 10, 10, 8), 2, "SAME"),
      fix_filter_rank)


def fix_dilation(d):
    assert "dilation*(k-1)+1 taps with dilation 1" in d.fix
    f = rng.standard_normal((3, 3, 8, 3)).astype("float32")
    dil = np.zeros((5, 5, 8, 3), "float32")
    dil[::2, ::2] = f                       # dilation - 1 zeros between the taps
    y = tf.nn.conv2d_transpose(x5, dil, (1, 9, 9, 8), 1, "VALID")
    want = tconv.conv_transpose(x5, f, dilation=2, padding="valid", data_format="channels_last")
    return y.numpy(), want


check("dilation", lambda: tf.nn.conv2d_transpose(x5, z((3, 3, 8, 3)), (1, 9, 9, 8), 1, "VALID",
                                                 dilations=2), fix_dilation)


def fix_nhwc(d):
    to_last = [int(t) for t in re.search(r"tf\.transpose\(x, \[([\d, ]+)\]\)", d.fix).group(1).split(",")]
    back = [int(t) for t in re.search(r"back with \[([\d, ]+)\]", d.fix).group(1).split(",")]
    assert "(N, H, W, C)" in d.fix
    xc = x5.transpose(0, 3, 1, 2)
    f = w_torch.transpose(2, 3, 1, 0)
    y = tf.nn.conv2d_transpose(tf.transpose(xc, to_last), f, (1, 10, 10, 8), 2, "SAME",
                               data_format="NHWC")
    want = torch_numbers(x5, w_torch, 2, ((0, 1), (0, 1))).transpose(0, 3, 1, 2)
    return tf.transpose(y, back).numpy(), want


check("nhwc", lambda: tf.nn.conv2d_transpose(x5.transpose(0, 3, 1, 2), w_torch.transpose(2, 3, 1, 0),
                                             (1, 8, 10, 10), 2, "SAME", data_format="NCHW"), fix_nhwc)

x1 = rng.standard_normal((1, 5, 3)).astype("float32")
f1 = rng.standard_normal((3, 8, 3)).astype("float32")


def fix_pairs(d):
    assert "output_shape = the wanted size + before + after" in d.fix
    wanted, before, after = 9, 1, 1
    y = tf.nn.conv1d_transpose(x1, f1, (1, wanted + before + after, 8), 2, "VALID")
    y = y[:, before:before + wanted, :]
    want = tconv.conv_transpose(x1, f1, stride=2, padding=((before, after),),
                                data_format="channels_last")
    return y.numpy(), want


check("pairs", lambda: tf.nn.conv1d_transpose(x1, f1, (1, 9, 8), 2, [[0, 0], [1, 1], [0, 0]]),
      fix_pairs)

x3 = np.zeros((1, 4, 4, 4, 3), "float32")


def fix_ch3d(d):
    c = int(re.search(r"filters whose last axis is (\d+)", d.fix).group(1))
    y = tf.nn.conv3d_transpose(x3, z((3, 3, 3, 8, c)), (1, 8, 8, 8, 8), 2, "SAME")
    return y, np.zeros((1, 8, 8, 8, 8))


check("ch3d", lambda: tf.nn.conv3d_transpose(x3, z((3, 3, 3, 8, 4)), (1, 8, 8, 8, 8), 2, "SAME"),
      fix_ch3d)


def fix_outch3d(d):
    c = int(re.search(r"output_shape\[-1\] = (\d+)", d.fix).group(1))
    y = tf.nn.conv3d_transpose(x3, z((3, 3, 3, 8, 3)), (1, 8, 8, 8, c), 2, "SAME")
    return y, np.zeros((1, 8, 8, 8, 8))


check("outch3d", lambda: tf.nn.conv3d_transpose(x3, z((3, 3, 3, 8, 3)), (1, 8, 8, 8, 6), 2, "SAME"),
      fix_outch3d)


def fix_batch(d):
    n = int(re.search(r"output_shape\[0\] = (\d+)", d.fix).group(1))
    assert "tf.shape(x)[0]" in d.fix
    y = tf.nn.conv2d_transpose(x5, z((3, 3, 8, 3)), (n, 10, 10, 8), 2, "SAME")
    y2 = tf.nn.conv2d_transpose(x5, z((3, 3, 8, 3)), (tf.shape(x5)[0], 10, 10, 8), 2, "SAME")
    assert y2.shape == y.shape
    return y, np.zeros((1, 10, 10, 8))


check("batch", lambda: tf.nn.conv2d_transpose(x5, z((3, 3, 8, 3)), (2, 10, 10, 8), 2, "SAME"),
      fix_batch)


def fix_output_shape_length(d):
    code = re.search(r"e\.g\. (\[tf\.shape\(x\)\[0\], [\w, ]+\])", d.fix).group(1)
    shape = eval(code, {"tf": tf, "x": x5, "out_channels": 8})
    y = tf.nn.conv_transpose(x5, z((3, 3, 8, 3)), shape, 2, "SAME")
    return y, np.zeros((1, 10, 10, 8))


check("output_shape_length", lambda: tf.nn.conv_transpose(x5, z((3, 3, 8, 3)), [10, 10], 2, "SAME"),
      fix_output_shape_length)


def fix_groups_cpu(d):
    c = int(re.search(r"output_shape\[-1\] = (\d+)", d.fix).group(1))
    y = tf.nn.conv2d_transpose(np.zeros((1, 5, 5, 4), "float32"), z((3, 3, 2, 4)), (1, 10, 10, c),
                               2, "SAME")
    return y, np.zeros((1, 10, 10, 2))


check("groups_cpu", lambda: tf.nn.conv2d_transpose(np.zeros((1, 5, 5, 4), "float32"),
                                                   z((3, 3, 2, 4)), (1, 10, 10, 4), 2, "SAME"),
      fix_groups_cpu)


def fix_groups_depth(d):
    c = re.search(r"output_shape\[-1\] = (\d+)", d.fix)
    c = 1 if "output_shape[-1] = filters.shape[-2]" in d.fix else int(c.group(1))
    y = tf.nn.conv2d_transpose(np.zeros((1, 3, 9, 1), "float32"), z((4, 2, 1, 1)),
                               (1, 14, 36, c), 4, "VALID")
    return y, np.zeros((1, 14, 36, 1))


check("groups_depth", lambda: tf.nn.conv2d_transpose(np.zeros((1, 3, 9, 1), "float32"),
                                                     z((4, 2, 1, 1)), (1, 14, 36, 2), 4, "VALID"),
      fix_groups_depth)
print(json.dumps(out))
'''


_TF_RUNS: dict = {}


def _tf_script(code: str, onednn_opts: str) -> dict:
    """The JSON a script prints last, run in a TensorFlow process with TF_ENABLE_ONEDNN_OPTS set
    (it must be set before TensorFlow is imported)."""
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join(sys.path),
        TF_CPP_MIN_LOG_LEVEL="3",
        TF_ENABLE_ONEDNN_OPTS=onednn_opts,
    )
    res = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def _tf_run(onednn: bool) -> dict:
    """The cases' results in one TensorFlow process (run once per setting)."""
    pytest.importorskip("tensorflow")
    if onednn not in _TF_RUNS:
        _TF_RUNS[onednn] = _tf_script(_TF_FIXES, "1" if onednn else "0")
    return _TF_RUNS[onednn]


_TF_KINDS = {
    "out_depth": "channels",
    "depth": "channels",
    "filter_rank": "rank",
    "dilation": "dilation_cpu",
    "nhwc": "data_format_cpu",
    "pairs": "padding",
    "ch3d": "channels",
    "outch3d": "channels",
    "batch": "batch",
    "output_shape_length": "rank",
    "groups_cpu": "channels",
    "groups_depth": "channels",
}


def test_tensorflow_fixes_run():
    """Without oneDNN (TensorFlow's precise messages): every fix applied as written runs and
    gives the size, and the numbers where it promises them."""
    got = _tf_run(onednn=False)
    assert set(got) == set(_TF_KINDS)
    for name, kind in _TF_KINDS.items():
        r = got[name]
        assert r["raised"] and r["recognised"] and r["kind"] == kind, (name, r)
        assert r["shape"] == r["want"], (name, r)
        if name in ("out_depth", "dilation", "nhwc", "pairs"):
            assert r["err"] is not None and r["err"] < 1e-4, (name, r)


def test_tensorflow_onednn_fix_gives_the_precise_message():
    """oneDNN's "could not create a primitive descriptor": the fix says to rerun with
    TF_ENABLE_ONEDNN_OPTS=0; that run's message is one doctor names precisely."""
    with_onednn = _tf_run(onednn=True)
    opaque = [n for n, r in with_onednn.items() if r["raised"] and r["kind"] == "onednn_refused"]
    assert opaque, "no case reaches oneDNN's opaque message any more"
    for name in opaque:
        assert "TF_ENABLE_ONEDNN_OPTS=0" in with_onednn[name]["fix"]
    classic = _tf_run(onednn=False)
    for name in opaque:
        assert classic[name]["recognised"] and classic[name]["kind"] == _TF_KINDS[name]


def test_tensorflow_onednn_messages_fixes_run():
    """With oneDNN (TensorFlow's default) the messages that are not opaque differ in places
    (numbers in the channel messages, "output depth must be evenly divisible by number of
    groups"): their fixes run too."""
    got = _tf_run(onednn=True)
    precise = {n: r for n, r in got.items() if r["raised"] and r["kind"] != "onednn_refused"}
    assert len(precise) >= 4
    for name, r in precise.items():
        assert r["recognised"] and r["shape"] == r["want"], (name, r)
        if name in ("dilation", "nhwc", "pairs", "out_depth"):
            assert r["err"] is not None and r["err"] < 1e-4, (name, r)
    assert (
        "evenly divisible by number of groups" in json.dumps(got)
        or precise.get("groups_depth", {}).get("kind") == "channels"
    )


# TensorFlow's plain CPU kernels refuse dilation and channels-first data; the fix's first advice
# is to turn oneDNN on. Per case: (name, x, filters, output_shape, strides, padding, dilations,
# data_format); the result compared with tconv's for the same layer.
_TF_ONEDNN_CASES = r"""
import json
import numpy as np
import tensorflow as tf
import tconv

rng = np.random.default_rng(5)
x1, f1 = rng.standard_normal((1, 5, 3)), rng.standard_normal((3, 8, 3))
x2, f2 = rng.standard_normal((1, 5, 5, 3)), rng.standard_normal((3, 3, 8, 3))
x3, f3 = rng.standard_normal((1, 5, 5, 5, 3)), rng.standard_normal((3, 3, 3, 8, 3))
ops = {3: tf.nn.conv1d_transpose, 4: tf.nn.conv2d_transpose, 5: tf.nn.conv3d_transpose}
cases = [
    ("dilation_1d", x1, f1, (1, 9, 8), 1, "VALID", 2, None),
    ("dilation_2d", x2, f2, (1, 9, 9, 8), 1, "VALID", 2, None),
    ("dilation_3d", x3, f3, (1, 9, 9, 9, 8), 1, "VALID", 2, None),
    ("ncw", x1, f1, (1, 8, 10), 2, "SAME", 1, "NCW"),
    ("nchw", x2, f2, (1, 8, 10, 10), 2, "SAME", 1, "NCHW"),
    ("ncdhw", x3, f3, (1, 8, 10, 10, 10), 2, "SAME", 1, "NCDHW"),
]
out = {}
for name, x, f, shape, s, pad, d, fmt in cases:
    x, f = x.astype("float32"), f.astype("float32")
    kw = {"dilations": d} if fmt is None else {"data_format": fmt}
    try:
        y = np.asarray(ops[x.ndim](x if fmt is None else np.moveaxis(x, -1, 1), f, shape, s,
                                   pad, **kw))
    except Exception as exc:  # noqa: BLE001
        dg = tconv.doctor(str(exc))
        out[name] = {"raised": True, "kind": dg.kind, "fix": dg.fix}
        continue
    if fmt is not None:
        y = np.moveaxis(y, 1, -1)
    pairs = "valid" if pad == "VALID" else ((0, 1),) * (x.ndim - 2)
    want = tconv.conv_transpose(x, f, stride=s, dilation=d, padding=pairs,
                                data_format="channels_last")
    out[name] = {"raised": False, "shape": list(y.shape), "want": list(want.shape),
                 "err": float(np.max(np.abs(y - want))) if y.shape == want.shape else None}
print(json.dumps(out))
"""


def test_tensorflow_dilation_and_channels_first_fix_turns_onednn_on():
    """Without oneDNN, dilated and channels-first tf.nn calls (1-, 2- and 3-D) are refused; the
    fix names the environment setting, and the same calls run with it as written, giving
    tconv's shapes and numbers."""
    pytest.importorskip("tensorflow")
    refused = _tf_script(_TF_ONEDNN_CASES, "0")
    advice = set()
    for name, r in refused.items():
        kind = "dilation_cpu" if name.startswith("dilation") else "data_format_cpu"
        assert r["raised"] and r["kind"] == kind, (name, r)
        advice.update(re.findall(r"`TF_ENABLE_ONEDNN_OPTS=(\w+) python", r["fix"]))
    assert len(advice) == 1, advice
    (value,) = advice
    advised = _tf_script(_TF_ONEDNN_CASES, value)
    assert set(advised) == set(refused)
    for name, r in advised.items():
        assert not r["raised"], (name, r)
        assert r["shape"] == r["want"], (name, r)
        assert r["err"] is not None and r["err"] < 1e-4, (name, r)
