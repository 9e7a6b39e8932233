"""Layers with short rows and large weights: output rows are run in blocks, panel by panel.

When a row has few positions per phase and the packed weights exceed the cache, the fast path
gives each work item a block of consecutive output rows (and, when there are too few blocks for
the threads, a share of the output channels) so a weight panel is reused across the rows, taken
phase by phase. These
layers are compared with the naive scatter of tconv.reference, and every thread count must give
bit-identical numbers.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import tconv
from tconv import reference

from conftest import assert_close_in_norm, reachable_isas, tap_scatter

CASES = [
    # (batch, C_in, C_out, input spatial, kernel, stride, padding, output_padding, dilation)
    (2, 128, 64, (6, 5), (4, 4), 2, 1, 0, 1),  # DCGAN-like, 512 KiB of float32 weights
    (1, 112, 72, (5, 7), (3, 3), 2, 1, 1, 1),  # partial panel, output_padding
    (3, 112, 40, (4, 3), (5, 3), (3, 2), (2, 1), 0, 1),  # stride 3 rows, asymmetric kernel
    (1, 160, 48, (7, 4), (3, 3), 1, 2, 0, 2),  # stride 1 with dilation
    (1, 64, 40, (3, 4, 5), (3, 3, 3), 2, 1, 0, 1),  # 3-D: blocks along the middle dim
    # 256 channels: 1 KiB (float32) / 2 KiB (float64) per buffered position, the pitch that
    # gets a cache line of padding; stride 3 rows taken phase by phase within a block.
    (2, 256, 40, (5, 6), (5, 4), (3, 2), (1, 2), (2, 0), 1),
]


def _arrays(case):
    """x, weight and bias in float64 holding float32 values: the same numbers in both dtypes,
    so one reference serves every dtype and layout of a case."""
    n, cin, cout, size, k = case[:5]
    rng = np.random.default_rng(sum(size) + cin)
    return tuple(
        rng.standard_normal(shape).astype(np.float32).astype(np.float64)
        for shape in ((n, cin, *size), (cin, cout, *k), (cout,))
    )


# The blocked path of the channel driver; with the ISA capped to portable, the portable kernel.
EXPECTED_KERNEL = "phase_channel_blocks" if reachable_isas()[0] != "portable" else "portable"


def _kwargs(case):
    s, p, op, d = case[5:]
    return dict(stride=s, padding=p, output_padding=op, dilation=d)


@functools.cache
def _reference(case):
    """The scatter loop's channels_first result, computed once per case."""
    return reference.conv_transpose(*_arrays(case), **_kwargs(case))


def _layer(case, dtype, data_format):
    x, w, b = (a.astype(dtype) for a in _arrays(case))
    want = _reference(case)
    if data_format == "channels_last":
        rank = x.ndim - 2
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        w = np.ascontiguousarray(w.transpose(*range(2, rank + 2), 1, 0))
        want = np.moveaxis(want, 1, -1)
    return x, w, b, dict(_kwargs(case), data_format=data_format), want


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=[f"case{i}" for i in range(len(CASES))])
def test_blocked_rows_match_reference_on_every_thread_count(case, dtype, data_format):
    x, w, b, kw, want = _layer(case, dtype, data_format)
    threads = tconv.get_num_threads()
    try:
        got = []
        for t in (1, 2, 3, 5):
            tconv.set_num_threads(t)
            got.append(tconv.ConvTranspose(w, b, **kw)(x))
            assert tconv._core.last_call_kernel() == EXPECTED_KERNEL
    finally:
        tconv.set_num_threads(threads)
    assert_close_in_norm(got[0], want, dtype)
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [(256, 128, 90), (512, 256, 100)], ids=["2MiB", "8MiB"])
def test_one_row_layers_with_large_weights_match_the_scatter_on_every_thread_count(
    channels, dtype, data_format
):
    """1-D layers whose packed weights reach 1 MiB (HiFi-GAN's up-sampling shapes, 2 and 8 MiB
    in float32) cut their one output row into longer blocks than other layers, each reading
    every weight; beyond 2 MiB the blocks of one panel run one after another (the tiling's
    choices are checked in tests/cpp/test_phase_tiling.cpp)."""
    cin, cout, length = channels
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, cin, length)).astype(np.float32).astype(dtype)
    w = rng.standard_normal((cin, cout, 16)).astype(np.float32).astype(dtype)
    b = rng.standard_normal(cout).astype(np.float32).astype(dtype)
    want = tap_scatter(x, w, b, 8, 4)
    if data_format == "channels_last":
        x, w = (
            np.ascontiguousarray(np.moveaxis(x, 1, -1)),
            np.ascontiguousarray(w.transpose(2, 1, 0)),
        )
        want = np.moveaxis(want, 1, -1)
    threads = tconv.get_num_threads()
    try:
        got = []
        for t in (1, 2, 3):
            tconv.set_num_threads(t)
            got.append(tconv.ConvTranspose(w, b, stride=8, padding=4, data_format=data_format)(x))
            if reachable_isas()[0] != "portable":
                assert tconv._core.last_call_kernel().startswith("phase_channel")
    finally:
        tconv.set_num_threads(threads)
    assert_close_in_norm(got[0], want, dtype)
    for g in got[1:]:
        np.testing.assert_array_equal(g, got[0])
