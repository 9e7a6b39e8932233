"""Large channels_first float32 outputs written with streaming stores are still exact.

From 8 MiB of output on x86 (AVX2 and up) the phase driver writes its channels_first rows with
streaming stores, which skip reading each line before writing it; last_call_memory() says so
("output_streamed"). Whole aligned lines stream, the rest (row ends, outputs off a line) take
ordinary stores, and the threads order their streamed lines before the call returns. Checked
against a float64 per-tap scatter in numpy (conftest.tap_scatter; the naive reference is too
slow at this size), on one and two threads, functional call and plan, into fresh results and
into out= arrays on and off a line.
"""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import _core

from conftest import tap_scatter

STREAMS = _core.active_isa() in ("avx2", "avx512")


CASES = [
    # (x shape, C_out, kernel, stride, padding): kernel == stride (the joint GEMM), 34 MB out
    ((1, 4, 16, 32, 64), 32, 2, 2, 0),
    # overlapping taps, two panels (48 channels), rows of 254 outputs (not whole lines), 12 MB
    ((1, 6, 128, 128), 48, 4, 2, 1),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("case", CASES, ids=["3d_k2s2", "2d_k4s2p1"])
def test_a_large_output_streams_and_matches_the_scatter(case, threads):
    shape, c_out, k, s, pad = case
    rng = np.random.default_rng(7)
    x = rng.standard_normal(shape, dtype=np.float32)
    w = rng.standard_normal((shape[1], c_out, *[k] * (len(shape) - 2)), dtype=np.float32)
    b = rng.standard_normal(c_out, dtype=np.float32)
    want = tap_scatter(x, w, b, s, pad)
    assert want.nbytes // 2 >= 8 << 20  # the float32 result reaches the streaming size
    saved = tconv.get_num_threads()
    tconv.set_num_threads(threads)
    try:
        got = tconv.conv_transpose(x, w, b, stride=s, padding=pad)
        assert _core.last_call_memory()["output_streamed"] == STREAMS
        if STREAMS:
            assert _core.last_call_kernel().startswith("phase_channel")
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
        plan = tconv.ConvTranspose(w, b, stride=s, padding=pad)
        # out= on a line, and one element off it (no destination row starts on a line)
        buf = np.full(want.size + 16, np.nan, dtype=np.float32)
        base = (-buf.ctypes.data // 4) % 16
        for off in (base, base + 1):
            out = buf[off : off + want.size].reshape(want.shape)
            out.fill(np.nan)
            plan(x, out=out)
            assert _core.last_call_memory()["output_streamed"] == STREAMS
            np.testing.assert_array_equal(out, got)
    finally:
        tconv.set_num_threads(saved)


def test_small_float64_and_channels_last_outputs_do_not_stream():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((1, 4, 16, 32, 64), dtype=np.float32)
    w = rng.standard_normal((4, 32, 2, 2, 2), dtype=np.float32)
    tconv.conv_transpose(x[:, :, :2], w, stride=2)  # 4 MiB: below the size
    assert not _core.last_call_memory()["output_streamed"]
    tconv.conv_transpose(x.astype(np.float64), w.astype(np.float64), stride=2)
    assert not _core.last_call_memory()["output_streamed"]
    x_cl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    w_cl = np.ascontiguousarray(np.transpose(w, (2, 3, 4, 1, 0)))
    tconv.conv_transpose(x_cl, w_cl, stride=2, data_format="channels_last")
    assert not _core.last_call_memory()["output_streamed"]
    if STREAMS:  # the same layer at full size does stream: the three above were below it
        tconv.conv_transpose(x, w, stride=2)
        assert _core.last_call_memory()["output_streamed"]
