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

from conftest import assert_close_in_norm


@st.composite
def reordered_layers(draw):
    rank = draw(st.integers(2, 3))
    fmt = draw(st.sampled_from(["channels_first", "channels_last"]))
    groups = draw(st.integers(1, 2))
    cin = groups
    cout = groups * draw(st.integers(1, 2))
    long_dim = draw(st.integers(0, rank - 2))  # never the last: that one is narrow or trivial
    inp, ker, stride, dil, pad = [], [], [], [], []
    for d in range(rank):
        if d == long_dim:
            inp.append(draw(st.integers(66, 100)))  # 64 outputs or more
            ker.append(draw(st.integers(1, 9)))
            stride.append(draw(st.integers(1, 3)))
            dil.append(draw(st.integers(1, 2)))
            pad.append(draw(st.integers(0, 1)))
        elif draw(st.booleans()):  # trivial: dropped
            inp.append(1), ker.append(1), stride.append(draw(st.integers(1, 3)))
            dil.append(1), pad.append(0)
        else:  # narrow
            inp.append(draw(st.integers(1, 3)))
            ker.append(draw(st.integers(1, 2)))
            stride.append(draw(st.integers(1, 2)))
            dil.append(1), pad.append(0)
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    batch = draw(st.integers(1, 2))
    xs = (batch, cin, *inp) if fmt == "channels_first" else (batch, *inp, cin)
    ws = (cin, cout // groups, *ker) if fmt == "channels_first" else (*ker, cout // groups, cin)
    kw = dict(
        stride=tuple(stride),
        dilation=tuple(dil),
        padding=tuple(pad),
        groups=groups,
        data_format=fmt,
    )
    return xs, ws, kw, dtype, draw(st.booleans())


@settings(max_examples=60)
@given(reordered_layers(), st.integers(1, 2))
def test_reordered_layers_match_the_reference(layer, threads):
    xs, ws, kw, dtype, with_bias = layer
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    cout = ws[1] * kw["groups"] if kw["data_format"] == "channels_first" else ws[-2] * kw["groups"]
    b = rng.standard_normal(cout).astype(dtype) if with_bias else None
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
