"""tconv's printed Keras, tf.nn, JAX and ONNX code, executed in those frameworks.

solve()'s layers, translate()'s equivalents (which explain prints as "the same layer
elsewhere") and the recipes for windows a framework cannot hold are run as printed and must
give the promised size and the source layer's numbers. Each framework is optional: its tests
skip when it is not installed (CI installs them all in the frameworks stage).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv

from _advice import (
    explain_args,
    explain_elsewhere,
    split_recipe,
    torch_layers,
    torch_source,
    window_numbers,
)
from conftest import assert_close_in_norm

CIN, COUT = 2, 3
FAST = settings(max_examples=8, deadline=None, derandomize=True, database=None)
F32 = np.float32


def _data(sol, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal((1, CIN, *sol.input_size)),
        rng.standard_normal((CIN, COUT, *sol.kernel_size)),
        rng.standard_normal(COUT),
    )


def _last(a: np.ndarray) -> np.ndarray:
    """(N, C, *spatial) -> (N, *spatial, C)."""
    return np.moveaxis(a, 1, -1)


def _kernel_last(w: np.ndarray, order: tuple[int, int]) -> np.ndarray:
    """torch's (C_in, C_out, *k) -> (*k, a, b) with (a, b) = channel axes `order`."""
    r = w.ndim - 2
    return w.transpose(*range(2, 2 + r), *order).copy()


def _sources(layer, conv: str):
    """The drawn torch layer, and a few solutions of `conv` for the same sizes."""
    src = torch_source(layer, CIN, COUT)
    sols = tconv.solve(
        src.input_size,
        src.output_size,
        kernel_size=src.kernel_size,
        stride=src.stride,
        dilation=src.dilation,
        convention=conv.split()[0],
        in_channels=CIN,
        out_channels=COUT,
        use_consistent_padding=conv.endswith("consistent"),
    )
    return [src, *sols[:3]]


# ---- runners: the printed code -> numpy, channels-first ----------------------------------------


def _run_keras(code: str, x, w, b):
    keras = pytest.importorskip("keras")
    ns = {"layers": keras.layers}
    xl = _last(x).astype(F32)
    first, rest = split_recipe(code) if "\n" in code else (f"layer = {code}", "y = layer(x)")
    exec(first, ns)
    layer = ns["layer"]
    layer(xl)  # build
    layer.set_weights([_kernel_last(w, (1, 0)).astype(F32), b.astype(F32)])
    ns["x"] = xl
    exec(rest, ns)
    return np.moveaxis(np.asarray(ns["y"]), -1, 1)


def _run_tf_nn(code: str, x, w):
    tf = pytest.importorskip("tensorflow")
    ns = {
        "tf": tf,
        "x": tf.constant(_last(x).astype(F32)),
        "filters": tf.constant(_kernel_last(w, (1, 0)).astype(F32)),
    }
    exec(code if code.startswith("y = ") else f"y = {code}", ns)
    return np.moveaxis(ns["y"].numpy(), -1, 1)


def _run_jax(code: str, x, w):
    jax = pytest.importorskip("jax")
    ns = {
        "lax": jax.lax,
        "jnp": jax.numpy,
        "x": jax.numpy.asarray(_last(x).astype(F32)),
        "w": jax.numpy.asarray(_kernel_last(w, (0, 1)).astype(F32)),
    }
    exec(f"y = {code}", ns)
    return np.moveaxis(np.asarray(ns["y"]), -1, 1)


def _run_onnx(code: str, x, w):
    pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper, numpy_helper

    node = eval(code, {"helper": helper})
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        [numpy_helper.from_array(w.astype(F32), "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"X": x.astype(F32)})[0]


def _run(conv: str, code: str, sol, x, w, b):
    """(result, expected) for the printed code of `conv` holding the window of `sol`."""
    if conv == "keras":
        return _run_keras(code, x, w, b), window_numbers(x, w, b, sol)
    runner = {"tf_nn": _run_tf_nn, "jax": _run_jax, "onnx": _run_onnx}[conv]
    return runner(code, x, w), window_numbers(x, w, None, sol)


def _check(conv: str, code: str, sol, notes=()):
    if notes:
        return  # a backend refuses the layer at run time, and tconv says so
    x, w, b = _data(sol)
    y, want = _run(conv, code, sol, x, w, b)
    assert y.shape[2:] == tuple(sol.output_size), code
    assert_close_in_norm(y, want, dtype=F32, msg=code)


_IMPORT = {"keras": "keras", "tf_nn": "tensorflow", "jax": "jax", "onnx": "onnxruntime"}


@pytest.mark.parametrize("conv", ["keras", "tf_nn", "jax", "onnx"])
@FAST
@given(layer=torch_layers())
def test_solve_code_runs(conv, layer):
    pytest.importorskip(_IMPORT[conv])
    for sol in _sources(layer, conv)[1:]:
        assert str(sol) == sol.code()
        _check(conv, sol.code(), sol, sol.notes)


@pytest.mark.parametrize("conv", ["keras", "tf_nn", "jax", "onnx"])
@FAST
@given(
    layer=torch_layers(),
    source=st.sampled_from(["torch", "keras", "onnx", "tf_nn", "jax", "jax consistent"]),
)
def test_translations_and_recipes_run(conv, layer, source):
    pytest.importorskip(_IMPORT[conv])
    for src in _sources(layer, source):
        tr = tconv.translate(src)[conv]
        if tr.exact:
            _check(conv, tr.solution.code(), tr.solution, tr.solution.notes)
        elif tr.recipe.startswith(("layer = ", "y = ")):
            if conv == "tf_nn" and max(np.atleast_1d(src.dilation)) > 1:
                # TensorFlow's plain CPU kernels refuse it: the recipe says how to run it
                assert any("TF_ENABLE_ONEDNN_OPTS=1" in n for n in tr.recipe_notes), tr
            _check(conv, tr.recipe, src)
        else:
            # no layer of `conv` holds the window: the recipe points to JAX, which must
            assert "JAX's explicit pads" in tr.recipe and tconv.translate(src)["jax"].exact


@FAST
@given(layer=torch_layers(), data=st.data())
def test_jax_consistent_padding_code_runs(layer, data):
    """solve, translate and mirror with use_consistent_padding=True: the printed
    lax.conv_transpose(..., use_consistent_padding=True) gives the size and the numbers."""
    pytest.importorskip("jax")
    src = torch_source(layer, CIN, COUT)
    sols = tconv.solve(
        src.input_size,
        src.output_size,
        kernel_size=src.kernel_size,
        stride=src.stride,
        dilation=src.dilation,
        convention="jax",
        in_channels=CIN,
        out_channels=COUT,
        use_consistent_padding=True,
    )
    twin = tconv.translate(src, use_consistent_padding=True)["jax"]
    assert twin.exact
    ran = 0
    for sol in [twin.solution, *sols[:3]]:
        assert "use_consistent_padding=True" in sol.code()
        _check("jax", sol.code(), sol)
        ran += not isinstance(sol.params["padding"], str)
    # PyTorch's padding p with output_padding q is the consistent pair (p, p - q)
    pad = twin.solution.params["padding"]
    if not isinstance(pad, str):
        assert pad == [(p, p - q) for p, q in zip(layer[3], layer[4])]
    inp, ks, ss, ps, _, ds = layer
    fwd_in = tuple(max(i * s, d * (k - 1) + 1) for i, k, s, d in zip(inp, ks, ss, ds))
    pairs = tuple((p, data.draw(st.integers(0, p + 1))) for p in ps)
    try:
        mir = tconv.mirror(
            fwd_in,
            ks,
            ss,
            pairs,
            ds,
            convention="jax",
            in_channels=CIN,
            out_channels=COUT,
            use_consistent_padding=True,
        )
    except tconv.ShapeError:
        return
    x, w, b = _data(mir)
    y, want = _run("jax", str(mir), mir, x, w, b)
    assert y.shape[2:] == fwd_in, str(mir)
    assert_close_in_norm(y, want, dtype=F32, msg=str(mir))


@pytest.mark.parametrize("conv", ["keras", "tf_nn", "jax", "onnx"])
@FAST
@given(
    layer=torch_layers(),
    source=st.sampled_from(["torch", "keras", "onnx", "tf_nn", "jax", "jax consistent"]),
)
def test_explain_same_layer_elsewhere_runs(conv, layer, source):
    """explain's "The same layer elsewhere" lines, parsed from its text as printed: each
    layer or recipe gives the explained layer's size and numbers."""
    pytest.importorskip(_IMPORT[conv])
    if source.split()[0] == conv:
        return
    for src in _sources(layer, source)[:3]:
        text = tconv.explain(src.convention, src.input_size, **explain_args(src))
        code = explain_elsewhere(text, CIN, COUT).get(conv)
        tr = tconv.translate(src)[conv]
        if code.startswith("no "):
            # no layer of `conv` holds the window: the text points to JAX, which must
            assert not tr.exact and "JAX's explicit pads hold it" in code
            assert tconv.translate(src)["jax"].exact
            continue
        notes = tr.solution.notes if tr.exact else ()
        _check(conv, code, src, notes)
        _EXPLAINED_RUN[conv] = _EXPLAINED_RUN.get(conv, 0) + (not notes)


_EXPLAINED_RUN: dict = {}


@pytest.mark.parametrize("conv", ["keras", "tf_nn", "jax", "onnx"])
def test_explain_examples_reached_the_framework(conv):
    """Some of explain's lines above ran in each framework (pytest runs this file in order)."""
    pytest.importorskip(_IMPORT[conv])
    assert _EXPLAINED_RUN.get(conv, 0) > 0


def test_keras_recipe_for_torch_padding_1_output_padding_1():
    pytest.importorskip("keras")
    src = tconv.solve(
        (5, 5), (10, 10), kernel_size=3, stride=2, in_channels=CIN, out_channels=COUT
    )[0]
    assert src.params["padding"] == 1 and src.params["output_padding"] == 1
    recipe = tconv.translate(src)["keras"].recipe
    assert "Cropping2D(((1, 0), (1, 0)))" in recipe
    _check("keras", recipe, src)


_TF_DOCTOR = r"""
import json, os, re, sys
os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"   # the plain kernels name the failing size
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
import tconv
out = []
for i, k, s, want in json.loads(sys.argv[1]):
    x, f = tf.zeros((1, i, 2)), tf.zeros((k, 3, 2))
    try:
        tf.nn.conv1d_transpose(x, f, [1, want, 3], s, "SAME")
        out.append(None)
        continue
    except tf.errors.InvalidArgumentError as exc:
        d = tconv.doctor(str(exc))
    ranges = re.findall(r"(\d+)(?:\.\.(\d+))? with padding='(SAME|VALID)'", d.fix)
    ran = []
    for lo, hi, pad in ranges:
        for n in range(int(lo), int(hi or lo) + 1):
            y = tf.nn.conv1d_transpose(x, f, [1, n, 3], s, pad)   # must not raise
            ran.append([n, pad, int(y.shape[1])])
    out.append({"kind": d.kind, "ran": ran})
print(json.dumps(out))
"""


@settings(max_examples=2, deadline=None, derandomize=True, database=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 6), st.integers(1, 5), st.integers(1, 3), st.integers(1, 4)),
        min_size=6,
        max_size=6,
    )
)
def test_doctor_fix_for_tensorflow_out_backprop_runs(layers):
    """The sizes doctor proposes for "out_backprop doesn't match computed" all run in tf.nn
    (in a subprocess: TF_ENABLE_ONEDNN_OPTS must be set before TensorFlow is imported)."""
    import json
    import subprocess
    import sys

    pytest.importorskip("tensorflow")
    # past every size 'SAME' accepts for the input
    cases = [[i, k, s, i * s + off + s] for i, k, s, off in layers]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    res = subprocess.run(
        [sys.executable, "-c", _TF_DOCTOR, json.dumps(cases)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    for got in json.loads(res.stdout.strip().splitlines()[-1]):
        assert got is not None and got["kind"] == "out_backprop" and got["ran"]
        for n, _pad, length in got["ran"]:
            assert length == n


@pytest.mark.parametrize("op, strides", [((2, 1), (2, 2)), ((3, 0), (3, 1)), ((1,), (1,))])
def test_doctor_fix_for_keras_output_padding_runs(op, strides):
    keras = pytest.importorskip("keras")
    import re

    rank = len(op)
    layer_cls = getattr(keras.layers, f"Conv{rank}DTranspose")
    x = np.zeros((1, *[4] * rank, 2), np.float32)
    with pytest.raises(ValueError) as exc:
        layer_cls(3, 3, strides=strides, output_padding=op)(x)
    d = tconv.doctor(str(exc.value))
    assert d.kind == "output_padding", str(exc.value)
    fixed = re.search(r"use output_padding=(\([\d, ]+\))", d.fix).group(1)
    y = layer_cls(3, 3, strides=strides, output_padding=eval(fixed))(x)
    want = tconv.shapes.keras(x.shape, 3, 3, strides, "valid", eval(fixed))
    assert tuple(y.shape) == want


_FORWARD_PADDING = {
    "keras": ["same", "valid"],
    "tf_nn": ["SAME", "VALID"],
    "jax": ["SAME", "VALID", "pairs"],
    "onnx": ["pads"],
}


@pytest.mark.parametrize("conv", ["keras", "tf_nn", "jax", "onnx"])
@FAST
@given(layer=torch_layers(), data=st.data())
def test_mirror_code_runs_and_restores_the_size(conv, layer, data):
    pytest.importorskip(_IMPORT[conv])
    inp, ks, ss, ps, _, ds = layer
    fwd_in = tuple(max(i * s, d * (k - 1) + 1) for i, k, s, d in zip(inp, ks, ss, ds))
    pad = data.draw(st.sampled_from(_FORWARD_PADDING[conv]))
    if pad == "pairs":
        pad = tuple((p, p) for p in ps)
    elif pad == "pads":
        pad = list(ps) + list(ps)
    try:
        sol = tconv.mirror(
            fwd_in, ks, ss, pad, ds, convention=conv, in_channels=CIN, out_channels=COUT
        )
    except tconv.ShapeError:
        return  # the framework has no such layer (e.g. Keras: strides > 1 with dilation)
    if sol.notes:
        return
    x, w, b = _data(sol)
    y, _ = _run(conv, str(sol), sol, x, w, b)
    assert y.shape[2:] == fwd_in, str(sol)
    _MIRRORS_RUN[conv] = _MIRRORS_RUN.get(conv, 0) + 1


_MIRRORS_RUN: dict = {}


@pytest.mark.parametrize("conv", ["keras", "tf_nn", "jax", "onnx"])
def test_mirror_examples_reached_the_framework(conv):
    """The drawn mirrors above are not all refused: some ran (pytest runs this file in order)."""
    pytest.importorskip(_IMPORT[conv])
    assert _MIRRORS_RUN.get(conv, 0) > 0


def test_keras_translation_prefers_a_layer_every_backend_runs():
    """torch padding=1 with kernel 2, stride 1 is Keras 'same' with output_padding=0, which
    Keras' TensorFlow backend refuses: translate gives 'same' without output_padding plus a
    crop, and that runs on the backend in use."""
    src = tconv.solve(3, 2, kernel_size=2, stride=1, convention="torch")[0]
    assert src.params["padding"] == 1
    twin = tconv.solve(3, 2, kernel_size=2, stride=1, convention="keras")[0]
    assert twin.params["output_padding"] == 0 and twin.notes  # the exact layer TF refuses
    tr = tconv.translate(src)["keras"]
    assert not tr.exact
    assert tr.recipe == (
        "layer = layers.Conv1DTranspose(out_channels, 2, padding='same')\n"
        "y = layers.Cropping1D((1, 0))(layer(x))"
    )
    pytest.importorskip("keras")
    _check("keras", tr.recipe.replace("out_channels", str(COUT)), src)
