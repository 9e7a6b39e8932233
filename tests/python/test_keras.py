"""channels_last with padding "same"/"valid" is Keras 3's Conv{1,2,3}DTranspose, number for number.

Keras is not needed here: tests/golden/keras_transpose.npz holds what Keras itself computed
(see tests/golden/make_keras_golden.py, which also cross-checks the JAX and TensorFlow
backends), and the shape rule is written out from Keras' source.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tconv
from tconv import reference

from conftest import assert_close_in_norm

GOLDEN = Path(__file__).resolve().parent.parent / "golden" / "keras_transpose.npz"


def _load():
    data = np.load(GOLDEN)
    configs = json.loads(str(data["configs"]))
    return [
        (cfg, {n: data[f"{j}/{n}"] for n in ("x", "kernel", "bias", "y")})
        for j, cfg in enumerate(configs)
    ]


LAYERS = _load()


def _label(cfg: dict) -> str:
    return (
        f"{cfg['rank']}d-in{cfg['input']}-k{cfg['kernel']}-s{cfg['strides']}-"
        f"{cfg['padding']}-op{cfg['output_padding']}-d{cfg['dilation_rate']}"
    )


def _kwargs(cfg: dict) -> dict:
    return dict(
        stride=cfg["strides"],
        padding=cfg["padding"],
        output_padding=cfg["output_padding"],
        dilation=cfg["dilation_rate"],
        data_format="channels_last",
    )


@pytest.mark.parametrize("cfg,arrays", LAYERS, ids=[_label(c) for c, _ in LAYERS])
def test_matches_keras_golden(cfg, arrays):
    bias = arrays["bias"] if cfg["use_bias"] else None
    want = arrays["y"]
    assert list(want.shape) == cfg["output_shape"]
    got = tconv.conv_transpose(arrays["x"], arrays["kernel"], bias, **_kwargs(cfg))
    assert got.dtype == np.float32
    assert_close_in_norm(got, want, np.float32, msg=_label(cfg))
    ref = reference.conv_transpose(arrays["x"], arrays["kernel"], bias, **_kwargs(cfg))
    assert_close_in_norm(ref, want, np.float32, msg=_label(cfg))


def keras_length(i: int, k: int, s: int, d: int, padding: str, op: int | None) -> int:
    """keras/src/backend/common/backend_utils.py::_get_output_shape_given_tf_padding."""
    k = (k - 1) * d + 1
    if padding == "valid":
        return (i - 1) * s + k + (max(k, s) - k if op is None else op)
    return i * s if op is None else (i - 1) * s + k % 2 + op


def test_keras_shape_rule_over_a_grid():
    # Every combination of small sizes, in 1-D: tconv's shape is Keras' compute_output_shape.
    w_cache = {}
    for padding in ("same", "valid"):
        for i in range(1, 6):
            for k in range(1, 6):
                for s in range(1, 5):
                    for d in (1, 2):
                        for op in [None, *range(s)]:
                            want = keras_length(i, k, s, d, padding, op)
                            w = w_cache.setdefault(k, np.ones((k, 1, 1)))
                            x = np.ones((1, i, 1))
                            kw = dict(
                                stride=s,
                                padding=padding,
                                output_padding=op,
                                dilation=d,
                                data_format="channels_last",
                            )
                            assert want >= 0  # Keras' 'same' gives 0 cells, never fewer
                            y = tconv.conv_transpose(x, w, **kw)
                            assert y.shape == (1, want, 1), (padding, i, k, s, d, op)
                            assert reference.conv_transpose(x, w, **kw).shape == y.shape


def test_keras_output_padding_limit():
    # Keras: output_padding must be strictly less than strides, in both paddings.
    x = np.ones((1, 4, 4, 1))
    w = np.ones((3, 3, 1, 1))
    for padding in ("same", "valid"):
        tconv.conv_transpose(
            x, w, stride=2, padding=padding, output_padding=1, data_format="channels_last"
        )
        with pytest.raises(tconv.ShapeError):
            tconv.conv_transpose(
                x, w, stride=2, padding=padding, output_padding=2, data_format="channels_last"
            )
        with pytest.raises(tconv.ShapeError):
            reference.conv_transpose(
                x, w, stride=2, padding=padding, output_padding=2, data_format="channels_last"
            )


# The article-famous layer: Conv2DTranspose(3, 3, strides=2, padding='same', ...).
# Keras 3 (checked on TensorFlow and JAX): 5x5 with output_padding=(1, 1) -> 10x10;
# 6x6 with output_padding=(0, 0) -> 11x11; 6x6 with output_padding=None -> 12x12.
THREE_CASES = [((5, 5), (1, 1), (10, 10)), ((6, 6), (0, 0), (11, 11)), ((6, 6), None, (12, 12))]


@pytest.mark.parametrize("size,op,expected", THREE_CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_same_padding_three_cases(size, op, expected, dtype):
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, *size, 4)).astype(dtype)
    w = rng.standard_normal((3, 3, 3, 4)).astype(dtype)  # Keras layout (kH, kW, filters, C_in)
    b = rng.standard_normal(3).astype(dtype)
    y = tconv.conv_transpose2d(
        x, w, b, stride=2, padding="same", output_padding=op, data_format="channels_last"
    )
    assert y.shape == (2, *expected, 3)
    assert_close_in_norm(
        y,
        reference.conv_transpose(
            x, w, b, stride=2, padding="same", output_padding=op, data_format="channels_last"
        ),
        dtype,
    )


@pytest.mark.parametrize("j", [0, 1, 2])
def test_three_cases_are_in_the_golden_file(j):
    cfg, arrays = LAYERS[j]
    size, op, expected = THREE_CASES[j]
    assert (cfg["input"], cfg["kernel"], cfg["strides"], cfg["padding"]) == (
        list(size),
        3,
        2,
        "same",
    )
    assert cfg["output_padding"] == (None if op is None else list(op))
    assert arrays["y"].shape[1:3] == expected


@pytest.mark.parametrize("data_format", ["channels_last", "channels_first"])
def test_same_with_output_padding_0_gives_keras_empty_output(data_format):
    # Conv2DTranspose(4, 2, strides=3, padding='same', output_padding=0) on a width of 1: Keras
    # (and tconv.shapes.keras) give width 0; the compute gives the same empty array.
    cl = data_format == "channels_last"
    x = np.ones((2, 1, 5, 3) if cl else (2, 3, 1, 5))
    w = np.ones((2, 2, 4, 3) if cl else (3, 4, 2, 2))
    want = tconv.shapes.keras(
        x.shape, 4, 2, strides=3, padding="same", output_padding=0, data_format=data_format
    )
    assert want == ((2, 0, 12, 4) if cl else (2, 4, 0, 12))
    y = tconv.conv_transpose(
        x, w, stride=3, padding="same", output_padding=0, data_format=data_format
    )
    assert y.shape == want and y.dtype == x.dtype
    assert (
        reference.conv_transpose(
            x, w, stride=3, padding="same", output_padding=0, data_format=data_format
        ).shape
        == want
    )
    # the other checks still run: a bias of the wrong length is refused
    with pytest.raises(tconv.ShapeError, match="bias must have shape"):
        tconv.conv_transpose(
            x, w, np.ones(3), stride=3, padding="same", output_padding=0, data_format=data_format
        )
    keras = pytest.importorskip("keras")
    layer = keras.layers.Conv2DTranspose(
        4, 2, strides=3, padding="same", output_padding=0, data_format=data_format
    )
    assert tuple(np.asarray(layer(x.astype(np.float32))).shape) == want
