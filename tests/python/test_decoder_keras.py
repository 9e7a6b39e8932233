"""plan_decoder against Keras (skipped without it): random encoders of Conv / MaxPooling /
AveragePooling layers ('same' and 'valid', ranks 1-3, odd sizes) run on a real tensor, and the
planned Conv*DTranspose layers, built from each step's params, meet every skip in a
Concatenate."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import tconv

from conftest import examples

keras = pytest.importorskip("keras")
layers = keras.layers


def _layer(spec: dict, rank: int):
    args = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "conv":
        return getattr(layers, f"Conv{rank}D")(2, **args)
    name = "MaxPooling" if spec["type"] == "maxpool" else "AveragePooling"
    return getattr(layers, f"{name}{rank}D")(**args)


@st.composite
def _encoders(draw):
    rank = draw(st.integers(1, 3))
    top = {1: 61, 2: 33, 3: 15}[rank]
    size = tuple(draw(st.integers(7, top).map(lambda v: v | 1)) for _ in range(rank))
    specs = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            spec = {"type": "conv", "kernel_size": draw(st.sampled_from([1, 3]))}
            spec["padding"] = draw(st.sampled_from(["same", "valid"]))
            if draw(st.booleans()):
                spec["dilation_rate"] = 2
            specs.append(spec)
        kind = draw(st.sampled_from(["maxpool", "avgpool", "conv"]))
        k = draw(st.integers(1, 3))
        s = draw(st.integers(2, 3))
        padding = draw(st.sampled_from(["same", "valid"]))
        if kind == "conv":
            spec = {"type": kind, "kernel_size": k, "strides": s, "padding": padding}
            if draw(st.integers(0, 3)) == 0:
                spec["dilation_rate"] = 2  # Keras refuses it with strides > 1
            specs.append(spec)
        elif k == s and draw(st.booleans()):
            specs.append({"type": kind, "pool_size": k, "padding": padding})  # strides=None
        else:
            specs.append({"type": kind, "pool_size": k, "strides": s, "padding": padding})
    return size, specs


def _encoder_sizes(size, specs):
    x = keras.ops.zeros((1, *size, 2))
    sizes = [tuple(size)]
    try:
        for spec in specs:
            x = _layer(spec, len(size))(x)
            sizes.append(tuple(x.shape[1:-1]))
    except Exception:  # a ValueError from Keras, or the backend's own (TF's oneDNN pools)
        return None
    if min(min(s) for s in sizes) < 1:
        return None
    return sizes


def _keras_reaches(cur: tuple, target: tuple, k: int, s: int, d: int) -> bool:
    """Whether some ConvNDTranspose of this kernel/strides/dilation maps cur to target, by
    running each padding and output_padding (None, or one int per dim: Keras takes one form
    for all dims)."""
    rank = len(cur)
    x = keras.ops.zeros((1, *cur, 1))
    ops = [None, *itertools.product(range(s), repeat=rank)]
    for padding in ("same", "valid"):
        for op in ops:
            try:
                y = getattr(layers, f"Conv{rank}DTranspose")(
                    1, k, strides=s, padding=padding, output_padding=op, dilation_rate=d
                )(x)
            except Exception:  # Keras refuses it, or TF's kernels do
                continue
            if tuple(y.shape[1:-1]) == tuple(target):
                return True
    return False


def _every_step_reachable(specs, sizes) -> bool:
    current = sizes[-1]
    for n in reversed(range(len(specs))):
        spec = specs[n]
        k = spec.get("kernel_size", spec.get("pool_size"))
        s = spec.get("strides") or (1 if spec["type"] == "conv" else k)
        if s == 1:
            continue
        if not _keras_reaches(current, sizes[n], k, s, spec.get("dilation_rate", 1)):
            return False
        current = sizes[n]
    return True


@settings(max_examples=examples(30))
@given(_encoders())
def test_planned_decoder_concatenates_in_keras(case):
    size, specs = case
    sizes = _encoder_sizes(size, specs)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", tconv.BackendWarning)
            plan = tconv.plan_decoder(size, specs, convention="keras")
    except tconv.ShapeError as exc:
        if sizes is None:
            event("the framework refuses the encoder")
            assert "encoder[" in str(exc)
            return
        event("a skip is unreachable")
        assert "decoder step" in str(exc)
        assert not _every_step_reachable(specs, sizes)
        return
    assert sizes is not None, "tconv planned an encoder that Keras refuses"
    event("planned")
    assert plan.sizes == tuple(sizes)
    rank = len(size)
    x = keras.ops.zeros((1, *sizes[-1], 2))
    for step, k in zip(plan.steps, plan.skips):
        layer = getattr(layers, f"Conv{rank}DTranspose")(2, **step.params)
        if step.notes:  # a backend refuses it at run time (the note says which): Keras' shape
            event("a step with a backend note")
            x = keras.Input(tuple(x.shape[1:]))
        y = layer(x)
        skip = keras.ops.zeros((1, *sizes[k], 2)) if not step.notes else keras.Input((*sizes[k], 2))
        assert tuple(y.shape[1:-1]) == sizes[k]
        x = layers.Concatenate()([y, skip])[..., :2]


def test_unet_161x241_in_keras_with_an_up_layer():
    specs = [
        {"type": "conv", "kernel_size": 3, "padding": "same"},
        {"type": "conv", "kernel_size": 3, "padding": "same"},
        {"type": "maxpool"},
    ] * 4
    plan = tconv.plan_decoder(
        (161, 241), specs, up={"kernel_size": 2, "strides": 2}, convention="keras"
    )
    sizes = _encoder_sizes((161, 241), specs)
    assert plan.sizes == tuple(sizes)
    x = keras.ops.zeros((1, *sizes[-1], 2))
    for step, k in zip(plan.steps, plan.skips):
        x = layers.Conv2DTranspose(2, **step.params)(x)
        assert tuple(x.shape[1:-1]) == sizes[k]
    assert np.asarray(x).shape == (1, 161, 241, 2)
    assert plan.nearest_inputs == ((160, 176), (240, 256))
