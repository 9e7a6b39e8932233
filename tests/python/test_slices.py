"""Functional calls in slices: with 256 KiB of weights or more, a call on several threads gives
each thread its own groups (weights at least half the input's size), or its own pairs of panels
of output channels (weights at least twice the input's size), to pack and compute as a layer of
its own (last_call_memory()["slices"]).

The slices form the same products and sum each output in the same order as the whole layer: the
results are the same bits on 1, 2 and 3 threads, and match a float64 per-tap scatter in numpy
(conftest.tap_scatter). A slice whose weights hold Inf or NaN hands the call back to the whole
layer; plans (packed once) and layers whose weights fall short of those sizes run whole.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import tconv
from tconv import _core

from conftest import assert_close_in_max_norm, tap_scatter

TWO_CPUS = (os.cpu_count() or 1) >= 2 and _core.active_isa() != "portable"

# (x shape, PyTorch-layout weight shape, stride, padding, groups); none whose functional call
# the direct driver takes unpacked (64 input cells or fewer per image at twice the input's size).
LAYERS = {
    # 512 KiB of weights, 768 KiB of input, four groups (the grouped vocoder's shape, shorter)
    "groups_4_small": ((1, 256, 200), (256, 32, 16), 8, 4, 4),
    # 2 MiB, 128 channels: two slices of two 32-channel panels (AVX-512; more on AVX2)
    "channels": ((1, 256, 16, 16), (256, 128, 4, 4), 2, 1, 1),
    # 200 channels: the last slice ends in a partial panel
    "channels_odd": ((3, 96, 9, 7), (96, 200, 4, 4), 2, 1, 1),
    # whole groups per slice, 8 and 3 of them (1 + 2 on two threads)
    "groups_8": ((1, 512, 9, 8), (512, 64, 4, 4), 2, 1, 8),
    "groups_3": ((1, 384, 6, 5), (384, 96, 3, 3), 2, 1, 3),
    "line_1d": ((1, 256, 100), (256, 128, 16), 8, 4, 1),
    "volume_3d": ((1, 64, 6, 5, 4), (64, 160, 3, 3, 3), 2, 1, 1),
}


def layer(name, dtype, seed=0):
    xs, ws, stride, pad, groups = LAYERS[name]
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * groups).astype(dtype)
    return x, w, b, dict(stride=stride, padding=pad, groups=groups)


def scatter(x, w, b, kw):
    """The float64 result, group by group."""
    g, cin, cout = kw["groups"], x.shape[1] // kw["groups"], w.shape[1]
    parts = [
        tap_scatter(
            x[:, i * cin : (i + 1) * cin],
            w[i * cin : (i + 1) * cin],
            b[i * cout : (i + 1) * cout],
            kw["stride"],
            kw["padding"],
        )
        for i in range(g)
    ]
    return np.concatenate(parts, axis=1)


def to_channels_last(x, w):
    """x as (N, *spatial, C) and w in the Keras layout (*kernel, C_out/g, C_in)."""
    return np.moveaxis(x, 1, -1).copy(), np.moveaxis(np.moveaxis(w, 0, -1), 0, -2).copy()


@pytest.mark.skipif(not TWO_CPUS, reason="slices need two threads and vector kernels")
@pytest.mark.parametrize("channels_last", [False, True], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", list(LAYERS))
def test_slices_give_the_bits_of_the_whole_layer(name, dtype, channels_last, threads_restored):
    x, w, b, kw = layer(name, dtype)
    df = "channels_last" if channels_last else "channels_first"
    xa, wa = to_channels_last(x, w) if channels_last else (x, w)
    got, slices = {}, {}
    for threads in (1, 2, 3):
        tconv.set_num_threads(threads)
        got[threads] = tconv.conv_transpose(xa, wa, b, data_format=df, **kw)
        slices[threads] = _core.last_call_memory()["slices"]
        assert _core.last_call_kernel().startswith("phase_channel"), _core.last_call_kernel()
    assert slices[1] == 1
    assert slices[2] == 2, slices
    for threads in (2, 3):
        assert np.array_equal(got[threads].view(np.uint8), got[1].view(np.uint8)), threads
    y = np.moveaxis(got[1], -1, 1) if channels_last else got[1]
    assert_close_in_max_norm(y, scatter(x, w, b, kw), dtype)


@pytest.mark.skipif(not TWO_CPUS, reason="slices need two threads and vector kernels")
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_a_nonfinite_weight_in_one_slice_runs_the_whole_layer(value, threads_restored):
    x, w, b, kw = layer("channels", np.float32)
    w[200, 100, 1, 2] = value  # in the second slice's output channels
    tconv.set_num_threads(1)
    one = tconv.conv_transpose(x, w, b, **kw)
    tconv.set_num_threads(2)
    two = tconv.conv_transpose(x, w, b, **kw)
    assert _core.last_call_memory()["slices"] == 1
    assert _core.last_call_kernel() == "portable"
    assert np.array_equal(two.view(np.uint8), one.view(np.uint8))
    want = scatter(x, w, b, kw)
    np.testing.assert_array_equal(np.isnan(two), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(two), np.isinf(want))


@pytest.mark.skipif(not TWO_CPUS, reason="slices need two threads and vector kernels")
def test_plans_and_inputs_larger_than_the_weights_run_whole(threads_restored):
    tconv.set_num_threads(2)
    x, w, b, kw = layer("channels", np.float32)
    plan = tconv.ConvTranspose(w, b, **kw)
    y = plan(x)
    assert _core.last_call_memory()["slices"] == 1
    np.testing.assert_array_equal(y, tconv.conv_transpose(x, w, b, **kw))
    assert _core.last_call_memory()["slices"] == 2
    big = np.random.default_rng(1).standard_normal((8, 256, 32, 32)).astype(np.float32)
    assert big.nbytes > 2 * w.nbytes
    tconv.conv_transpose(big, w, b, **kw)
    assert _core.last_call_memory()["slices"] == 1


@pytest.mark.skipif(not TWO_CPUS, reason="slices need two threads and vector kernels")
def test_slices_by_channels_need_weights_twice_the_input(threads_restored):
    # Each slice of output channels reads the whole input; a slice of groups only its own.
    tconv.set_num_threads(2)
    _, w, b, kw = layer("channels", np.float32)  # 2 MiB of weights, 256 KiB of input per image
    rng = np.random.default_rng(1)
    for batch, want in ((4, 2), (5, 1)):
        x = rng.standard_normal((batch, 256, 16, 16)).astype(np.float32)
        tconv.conv_transpose(x, w, b, **kw)
        assert _core.last_call_memory()["slices"] == want, (batch, x.nbytes, w.nbytes)
    _, w, b, kw = layer("groups_8", np.float32)  # 2 MiB of weights, 144 KiB of input per image
    x = rng.standard_normal((16, 512, 9, 8)).astype(np.float32)
    assert w.nbytes < x.nbytes < 2 * w.nbytes
    tconv.conv_transpose(x, w, b, **kw)
    assert _core.last_call_memory()["slices"] == 2


@pytest.mark.skipif(not TWO_CPUS, reason="slices need two threads and vector kernels")
def test_sliced_scratch_stays_within_the_whole_layers_bound(threads_restored):
    tconv.set_num_threads(2)
    x, w, b, kw = layer("groups_8", np.float32)
    y = tconv.conv_transpose(x, w, b, **kw)
    mem = _core.last_call_memory()
    assert mem["slices"] == 2
    assert mem["scratch_bytes"] <= max(0.10 * y.nbytes, 4 << 20)
    assert mem["packed_weight_bytes"] >= w.nbytes  # both slices' packs, summed
