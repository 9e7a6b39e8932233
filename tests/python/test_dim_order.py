"""Layers run in an equivalent order of their spatial dims are still exact.

The core drops dims with one input cell, one tap and one output cell and moves a narrow last
dim (under 16 outputs) away from a long one (64 outputs or more), and runs channels_last layers
of one channel in and out as channels_first, addressing x, weight and y through permuted strides; last_call_memory()["dims_reordered"] says it did.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
import tconv.reference

from conftest import assert_close_in_norm, channels, layer_inputs, layers


@st.composite
def _one_long_dim(draw, rank):
    """(kernel, stride, dilation, size, padding) per dim: one long dim (never the last, which
    is narrow or trivial), the others narrow or trivial (size 1, kernel 1: dropped)."""
    long_dim = draw(st.integers(0, rank - 2))
    dims = []
    for d in range(rank):
        if d == long_dim:  # 64 outputs or more
            dims.append(
                (
                    draw(st.integers(1, 9)),
                    draw(st.integers(1, 3)),
                    draw(st.integers(1, 2)),
                    draw(st.integers(66, 100)),
                    draw(st.integers(0, 1)),
                )
            )
        elif draw(st.booleans()):
            dims.append((1, draw(st.integers(1, 3)), 1, 1, 0))
        else:
            dims.append(
                (draw(st.integers(1, 2)), draw(st.integers(1, 2)), 1, draw(st.integers(1, 3)), 0)
            )
    return dims


REORDERED = layers(
    channels=channels(st.integers(1, 2), st.just(1), st.integers(1, 2)),
    ranks=(2, 3),
    batch=st.integers(1, 2),
    layouts=("c",),
    dims=lambda rank: _one_long_dim(rank),
)


@settings(max_examples=60)
@given(REORDERED, st.integers(1, 2))
def test_reordered_layers_match_the_reference(layer, threads):
    x, w, b, kw = layer_inputs(layer)
    dtype = layer["dtype"]
    t = tconv.get_num_threads()
    tconv.set_num_threads(threads)
    try:
        y = tconv.conv_transpose(x, w, b, **kw)
        reordered = tconv._core.last_call_memory()["dims_reordered"]
    finally:
        tconv.set_num_threads(t)
    assert reordered
    assert_close_in_norm(y, tconv.reference.conv_transpose(x, w, b, **kw), dtype=dtype)


@pytest.mark.parametrize("fmt", ["channels_first", "channels_last"])
@pytest.mark.parametrize("isa", ["portable", None])
def test_signal_stored_with_a_unit_dim_is_reordered(isa, fmt):
    # channels_last with one channel in and out also runs as channels_first.
    x = np.random.default_rng(1).standard_normal((1, 1, 300, 1)).astype(np.float32)
    w = np.random.default_rng(2).standard_normal((1, 1, 40, 1)).astype(np.float32)
    if fmt == "channels_last":
        x, w = x.reshape(1, 300, 1, 1), w.reshape(40, 1, 1, 1)
    before = tconv._core.active_isa()
    if isa:
        tconv.set_max_isa(isa)
    try:
        y = tconv.conv_transpose2d(x, w, stride=(3, 2), data_format=fmt)
        assert tconv._core.last_call_memory()["dims_reordered"]
    finally:
        tconv.set_max_isa(before)
    up = np.zeros(299 * 3 + 1)
    up[::3] = x.ravel()
    assert_close_in_norm(y.ravel(), np.convolve(up, w.ravel().astype(np.float64)), np.float32)


def test_square_images_keep_their_order():
    x = np.ones((1, 3, 8, 8), np.float32)
    tconv.conv_transpose2d(x, np.ones((3, 4, 4, 4), np.float32), stride=2, padding=1)
    assert not tconv._core.last_call_memory()["dims_reordered"]
