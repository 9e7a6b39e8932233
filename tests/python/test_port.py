"""port: a layer with its weights moved between frameworks gives the source's numbers.

The expected numbers always come from running the source layer itself: in its framework, or
(for the default run, where only torch is installed) in tconv.reference, the naive scatter loop.
The frameworks' tests skip without them; CI's frameworks stage runs a sample, and the whole
matrix under -m slow.
"""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from _port_cases import (
    FRAMEWORKS,
    importorskip,
    random_case,
    run,
    to_layout,
)

import tconv
from tconv import reference
from tconv._port import weight_transform

from conftest import assert_close_in_max_norm

PAIRS = list(itertools.product(FRAMEWORKS, FRAMEWORKS))


def assert_same(y, want, msg=""):
    assert_close_in_max_norm(y, want, np.float32, msg)


def check_port(source, target, case, *, code=True):
    """Port the case, run the target framework, finish, compare with the source's own run.
    Returns the Port (None where the target refuses the layer, with the reason checked)."""
    layer, weights, x = case["layer"], case["weights"], case["x"]
    want = run(source, layer, weights, x)
    try:
        p = tconv.port(
            layer, weights, source=source, target=target, input_shape=case["input_shape"]
        )
    except ValueError as exc:
        groups = layer.get("groups", layer.get("group", 1))
        dilated_keras = target == "keras" and "dilation_rate > 1" in str(exc)
        assert (groups > 1 and "no grouped transposed convolution" in str(exc)) or dilated_keras, (
            exc
        )
        return None
    xt = to_layout(x, source, target)
    msg = f"{source} {layer} -> {target} {p.params} crop {p.crop} pad {p.pad}"
    y = p.finish(run(target, p.params, p.weights, xt))
    assert_same(y, to_layout(want, source, target), msg)
    if code:
        ns = {"x": xt, "kernel": weights[0], "bias": weights[1]}
        exec(p.code(), ns)
        assert_same(ns["y"], to_layout(want, source, target), msg + "\n" + p.code())
    return p


# ---- the default run: torch, and tconv.reference as the source's numbers ---------------------------


@pytest.mark.parametrize("seed", range(12))
def test_torch_to_torch_random_layers(seed):
    importorskip("torch")
    rng = np.random.default_rng(seed)
    case = random_case("torch", rng)
    p = check_port("torch", "torch", case)
    assert p.exact  # a torch layer is its own port


def _keras_by_reference(case):
    layer, (kernel, bias) = case["layer"], case["weights"]
    return reference.conv_transpose(
        case["x"].astype(np.float64),
        kernel.astype(np.float64),
        None if bias is None else bias.astype(np.float64),
        stride=layer["strides"],
        padding=layer["padding"],
        output_padding=layer["output_padding"],
        dilation=layer["dilation_rate"],
        data_format="channels_last",
    )


@pytest.mark.parametrize("seed", range(12))
def test_keras_layers_to_torch_match_the_reference(seed):
    importorskip("torch")
    case = random_case("keras", np.random.default_rng(100 + seed))
    want = _keras_by_reference(case)
    p = tconv.port(case["layer"], case["weights"], source="keras", target="torch")
    x = to_layout(case["x"], "keras", "torch")
    y = p.finish(run("torch", p.params, p.weights, x))
    assert_same(y, to_layout(want, "keras", "torch"), f"{case['layer']} -> {p.params}")
    ns = {"x": x, "kernel": case["weights"][0], "bias": case["weights"][1]}
    exec(p.code(), ns)
    assert_same(ns["y"], to_layout(want, "keras", "torch"), p.code())


def test_keras_same_even_kernel_to_torch_and_back():
    importorskip("torch")
    rng = np.random.default_rng(7)
    kernel = rng.standard_normal((4, 4, 8, 3)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    layer = dict(filters=8, kernel_size=4, strides=2, padding="same")
    p = tconv.port(layer, (kernel, bias), source="keras", target="torch")
    assert p.params["padding"] == 1 and p.params["output_padding"] == 0 and p.exact
    assert p.weights[0].shape == (3, 8, 4, 4)
    np.testing.assert_array_equal(p.weights[0], kernel.transpose(3, 2, 0, 1))
    x = rng.standard_normal((2, 5, 5, 3)).astype(np.float32)
    want = reference.conv_transpose(x, kernel, bias, 2, "same", data_format="channels_last")
    y = run("torch", p.params, p.weights, to_layout(x, "keras", "torch"))
    assert_same(p.finish(y), to_layout(want, "keras", "torch"))
    back = tconv.port(p.params, p.weights, source="torch", target="keras")
    np.testing.assert_array_equal(back.weights[0], kernel)
    assert back.params["strides"] == 2 and back.exact


def test_a_window_no_torch_layer_holds_is_cropped():
    # Keras 'same', kernel 4, stride 3: one cell more cropped at the start than at the end
    importorskip("torch")
    rng = np.random.default_rng(3)
    kernel = rng.standard_normal((4, 2, 3)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    layer = dict(filters=2, kernel_size=(4,), strides=(3,), padding="same")
    p = tconv.port(layer, (kernel, bias), source="keras", target="torch")
    assert not p.exact and p.crop != ((0, 0),)
    x = rng.standard_normal((1, 5, 3)).astype(np.float32)
    want = reference.conv_transpose(x, kernel, bias, 3, "same", data_format="channels_last")
    y = p.finish(run("torch", p.params, p.weights, to_layout(x, "keras", "torch")))
    assert_same(y, to_layout(want, "keras", "torch"))
    assert "y = y[" in p.code()


def test_cells_past_the_full_result_hold_the_bias():
    # JAX's explicit pads reach past the full result; no torch layer adds 3 cells at stride 2
    importorskip("torch")
    rng = np.random.default_rng(4)
    kernel = rng.standard_normal((3, 2, 2)).astype(np.float32)  # (k, in, out), flipped
    bias = rng.standard_normal(2).astype(np.float32)
    layer = dict(strides=(2,), padding=((2, 5),))
    p = tconv.port(layer, (kernel, bias), source="jax", target="torch")
    assert p.pad == ((0, 2),) and p.params["output_padding"] == 1 and not p.params["bias"]
    x = rng.standard_normal((1, 2, 4)).astype(np.float32)  # torch layout
    torch_kernel = np.flip(kernel, 0).transpose(1, 2, 0)
    full = reference.conv_transpose(x, torch_kernel, bias, stride=2)
    y = p.finish(run("torch", p.params, p.weights, x))
    assert y.shape == (1, 2, full.shape[-1] + 3)
    assert_same(y[..., : full.shape[-1]], full)
    assert_same(y[..., full.shape[-1] :], np.broadcast_to(bias[None, :, None], (1, 2, 3)))


def test_weight_layouts_follow_each_framework():
    r = 2
    perm, flip = weight_transform("torch", "keras", r)
    assert perm == (2, 3, 1, 0) and flip == ()  # (in, out, kh, kw) -> (kh, kw, out, in)
    perm, flip = weight_transform("torch", "jax", r)
    assert perm == (2, 3, 0, 1) and flip == (0, 1)  # HWIO, flipped in space
    perm, flip = weight_transform("jax", "jax", r)
    assert perm == (0, 1, 2, 3) and flip == ()


def test_jax_transpose_kernel_takes_the_keras_kernel():
    rng = np.random.default_rng(5)
    kernel = rng.standard_normal((3, 3, 4, 2)).astype(np.float32)  # (k, out, in)
    a = tconv.port(
        dict(strides=2, padding="SAME", transpose_kernel=True),
        (kernel, None),
        source="jax",
        target="keras",
    )
    np.testing.assert_array_equal(a.weights[0], kernel)
    b = tconv.port(dict(strides=2, padding="SAME"), (kernel, None), source="jax", target="keras")
    np.testing.assert_array_equal(b.weights[0], np.flip(kernel, (0, 1)).transpose(0, 1, 3, 2))


def test_all_targets_give_a_port_or_the_reason():
    rng = np.random.default_rng(6)
    kernel = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    layer = dict(
        in_channels=4, out_channels=4, kernel_size=3, stride=2, padding=1, groups=2, bias=False
    )
    table = tconv.port(
        layer, (kernel, None), source="torch", target="all", input_shape=(1, 4, 5, 5)
    )
    assert set(table) == set(FRAMEWORKS)
    assert table["torch"].exact and table["onnx"].params["group"] == 2
    for fw in ("keras", "tf_nn", "jax"):
        assert isinstance(table[fw], str) and "no grouped transposed convolution" in table[fw]
        assert "block-diagonal" in table[fw]


def test_impossible_and_bad_ports_say_why():
    layer = dict(in_channels=4, out_channels=4, kernel_size=(3, 3), groups=2)
    with pytest.raises(ValueError, match="keras has no grouped transposed convolution"):
        tconv.port(layer, source="torch", target="keras")
    with pytest.raises(ValueError, match="pass input_shape"):
        tconv.port(
            dict(in_channels=1, out_channels=1, kernel_size=(3,)), source="torch", target="tf_nn"
        )
    with pytest.raises(ValueError, match="spatial rank is unknown"):
        tconv.port(dict(in_channels=1, out_channels=1, kernel_size=3), source="torch", target="jax")
    with pytest.raises(ValueError, match="unknown argument"):
        tconv.port(dict(filters=1, kernel_size=(3,), kernal=2), source="keras", target="torch")
    with pytest.raises(ValueError, match=r"needs \(3, 2, 4\)"):
        tconv.port(
            dict(in_channels=3, out_channels=2, kernel_size=4),
            (np.zeros((2, 3, 4), np.float32), None),
            source="torch",
            target="keras",
        )
    with pytest.raises(ValueError, match="has a bias but weights carry none"):
        tconv.port(
            dict(in_channels=3, out_channels=2, kernel_size=(4,)),
            (np.zeros((3, 2, 4), np.float32), None),
            source="torch",
            target="keras",
        )
    with pytest.raises(TypeError, match=r"a \(kernel, bias\) pair"):
        tconv.port(
            dict(filters=1, kernel_size=(3,)), np.zeros((3, 1, 1)), source="keras", target="jax"
        )
    with pytest.raises(ValueError, match="output is empty"):
        tconv.port(
            dict(filters=1, kernel_size=(4,), strides=3, padding="same", output_padding=0),
            source="keras",
            target="jax",
            input_shape=(1, 1, 1),
        )
    with pytest.raises(ValueError, match="source must be one of"):
        tconv.port({}, source="caffe", target="torch")
    with pytest.raises(TypeError, match="dict of the torch layer"):
        tconv.port(3, source="torch", target="keras")
    with pytest.raises(ValueError, match="strides > 1"):
        tconv.port(
            dict(in_channels=1, out_channels=1, kernel_size=(3,), stride=2, dilation=2),
            source="torch",
            target="keras",
        )


def test_translate_takes_a_layer_description():
    importorskip("torch")
    layer = dict(filters=2, kernel_size=(4,), strides=3, padding="same")
    tr = tconv.translate(layer, convention="keras")
    assert tr["keras"].exact and tr["jax"].exact and tr["onnx"].exact
    assert not tr["torch"].exact and "crop window" in tr["torch"].reason
    assert "input_shape" in tr["tf_nn"].reason
    rng = np.random.default_rng(9)
    kernel = rng.standard_normal((4, 2, 3)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    x = rng.standard_normal((1, 6, 3)).astype(np.float32)
    want = reference.conv_transpose(x, kernel, bias, 3, "same", data_format="channels_last")
    ns = {"x": to_layout(x, "keras", "torch"), "kernel": kernel, "bias": bias, "in_channels": 3}
    exec(tr["torch"].recipe, ns)
    assert_same(ns["y"], to_layout(want, "keras", "torch"))
    with pytest.raises(TypeError, match="needs convention="):
        tconv.translate(layer)


def test_port_without_weights_gives_params_only():
    p = tconv.port(
        dict(filters=8, kernel_size=(4, 4), strides=2, padding="same"), source="keras", target="jax"
    )
    assert p.weights is None
    assert p.params == {"strides": (2, 2), "padding": "SAME"}


# ---- the frameworks: run both sides --------------------------------------------------------------


@pytest.mark.parametrize("source, target", PAIRS)
def test_a_random_layer_between_frameworks(source, target):
    importorskip(source, target)
    rng = np.random.default_rng(FRAMEWORKS.index(source) * 10 + FRAMEWORKS.index(target))
    check_port(source, target, random_case(source, rng))


@pytest.mark.slow
@pytest.mark.parametrize("source, target", PAIRS)
def test_random_layers_between_frameworks(source, target):
    importorskip(source, target)
    rng = np.random.default_rng(1000 + FRAMEWORKS.index(source) * 10 + FRAMEWORKS.index(target))
    for rank in (1, 2, 3):
        for _ in range(4):
            check_port(source, target, random_case(source, rng, rank))


def test_onnx_reference_evaluator_agrees_with_the_port():
    importorskip("torch", "onnx_reference")
    rng = np.random.default_rng(11)
    done = 0
    while done < 4:
        case = random_case("torch", rng, 2)
        if case["layer"]["groups"] > 1:
            continue
        p = tconv.port(case["layer"], case["weights"], source="torch", target="onnx")
        want = run("torch", case["layer"], case["weights"], case["x"])
        y = p.finish(run("onnx_reference", p.params, p.weights, case["x"]))
        assert_same(y, want, str(p.params))
        done += 1


@pytest.mark.parametrize("cin, cout, groups", [(4, 4, 2), (4, 2, 2), (2, 4, 2), (4, 4, 4)])
def test_onnx_reference_evaluator_grouped_note_is_true(cin, cout, groups):
    importorskip("torch", "onnx", "onnx_reference")
    rng = np.random.default_rng(cin * 100 + cout * 10 + groups)
    layer = dict(in_channels=cin, out_channels=cout, kernel_size=(2, 2), groups=groups)
    weights = (
        rng.standard_normal((cin, cout // groups, 2, 2)).astype(np.float32),
        rng.standard_normal(cout).astype(np.float32),
    )
    x = rng.standard_normal((1, cin, 3, 3)).astype(np.float32)
    p = tconv.port(layer, weights, source="torch", target="onnx")
    assert any("reference evaluator" in n for n in p.notes)
    want = run("torch", layer, weights, x)
    assert_same(p.finish(run("onnx", p.params, p.weights, x)), want)  # onnxruntime runs it
    if cin == cout == groups:  # depthwise runs, with group 0's bias in every group
        y = run("onnx_reference", p.params, p.weights, x)
        assert np.abs(y - want).max() > 1e-3
        assert_same(y - weights[1][0] + weights[1][:, None, None], want)
    else:
        with pytest.raises(ValueError, match=r"reshape|broadcast"):
            run("onnx_reference", p.params, p.weights, x)


def test_keras_same_even_kernel_port_avoids_the_refused_layer():
    # Keras 'same', output_padding=0, even kernel: TensorFlow's backend refuses the layer; the
    # port to Keras picks one every backend runs, and a crop
    importorskip("keras")
    if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
        pytest.skip("the refusal is Keras' TensorFlow backend's")
    rng = np.random.default_rng(12)
    kernel = rng.standard_normal((2, 2, 1)).astype(np.float32)
    bias = rng.standard_normal(2).astype(np.float32)
    layer = dict(filters=2, kernel_size=(2,), padding="same", output_padding=0)
    x = rng.standard_normal((1, 5, 1)).astype(np.float32)
    with pytest.raises(Exception, match=r"out_backprop|primitive descriptor"):
        run("keras", layer, (kernel, bias), x)
    p = tconv.port(layer, (kernel, bias), source="keras", target="keras", input_shape=x.shape)
    assert not p.notes
    assert (p.params["padding"], p.params["output_padding"]) != ("same", 0)
    want = reference.conv_transpose(x, kernel, bias, 1, "same", 0, data_format="channels_last")
    assert_same(p.finish(run("keras", p.params, p.weights, x)), want)


def test_readme_port_example_runs_and_agrees(capsys):
    import pathlib
    import re

    importorskip("torch", "keras", "jax")
    readme = pathlib.Path(__file__).resolve().parents[2] / "README.md"
    if not readme.exists():
        pytest.skip("README.md is not beside these tests")
    block = re.search(r"## Porting a layer\n.*?```python\n(.*?)```", readme.read_text(), re.S)
    assert block is not None
    exec(compile(block.group(1), "README.md", "exec"), {})
    printed = [float(v) for v in capsys.readouterr().out.split()]
    assert len(printed) == 2 and all(v < 1e-4 for v in printed), printed
