"""Results of at least 32 MiB reuse the buffer of a result the caller has dropped.

glibc maps such blocks afresh on every allocation, so without reuse every page of every large
result faults in again. A buffer is handed out again only once no array refers to it: a result
or any view of it that is still alive keeps its memory to itself. Values are checked against a
float64 per-tap scatter in numpy (conftest.tap_scatter), so a reused buffer's stale contents
would show.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import tconv
from tconv import _core

from conftest import tap_scatter

# (1, 4, 256, 256) through a k2 s2 layer to 32 channels: a 32 MiB float32 result.
X_SHAPE, C_OUT = (1, 4, 256, 256), 32


def inputs(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(X_SHAPE, dtype=np.float32)
    w = rng.standard_normal((X_SHAPE[1], C_OUT, 2, 2), dtype=np.float32)
    b = rng.standard_normal(C_OUT, dtype=np.float32)
    return x, w, b


def check(y, x, w, b):
    want = tap_scatter(x, w, b, 2, 0)
    np.testing.assert_allclose(y, want, rtol=1e-5, atol=1e-4)


def test_the_layer_is_large_enough_to_reuse():
    x, w, b = inputs(0)
    assert tconv.conv_transpose(x, w, b, stride=2).nbytes >= _core.RESULT_REUSE_BYTES


@pytest.mark.parametrize("call", ["functional", "plan"])
def test_a_dropped_result_lends_its_buffer_to_the_next(call):
    x1, w, b = inputs(1)
    x2 = inputs(2)[0]
    layer = tconv.ConvTranspose(w, b, stride=2)
    run = layer if call == "plan" else (lambda x: tconv.conv_transpose(x, w, b, stride=2))
    y1 = run(x1)
    check(y1, x1, w, b)
    first = y1.ctypes.data
    del y1
    kept = _core.kept_result_buffers()
    assert kept >= 1
    y2 = run(x2)
    assert _core.kept_result_buffers() == kept - 1
    assert y2.ctypes.data == first
    assert y2.ctypes.data % 64 == 0 and y2.flags.c_contiguous and y2.flags.writeable
    check(y2, x2, w, b)


def test_a_view_of_a_dropped_result_keeps_its_memory():
    x1, w, b = inputs(3)
    x2 = inputs(4)[0]
    y1 = tconv.conv_transpose(x1, w, b, stride=2)
    view = y1[0, 5]
    saved = view.copy()
    del y1
    y2 = tconv.conv_transpose(x2, w, b, stride=2)
    lo, hi = y2.ctypes.data, y2.ctypes.data + y2.nbytes
    assert not lo <= view.ctypes.data < hi
    np.testing.assert_array_equal(view, saved)
    check(y2, x2, w, b)


def test_results_held_at_once_never_share_memory():
    x, w, b = inputs(5)
    ys = [tconv.conv_transpose(x, w, b, stride=2) for _ in range(4)]
    starts = {y.ctypes.data for y in ys}
    assert len(starts) == len(ys)
    for y in ys[1:]:
        np.testing.assert_array_equal(y, ys[0])
    check(ys[0], x, w, b)


def test_at_most_two_buffers_are_kept_and_small_results_are_not():
    w, b = inputs(6)[1:]
    x = np.random.default_rng(6).standard_normal((1, 4, 272, 256), dtype=np.float32)
    for rows in (256, 264, 272):  # three different large sizes, each dropped at once
        tconv.conv_transpose(x[:, :, :rows], w, b, stride=2)
        assert _core.kept_result_buffers() <= 2
    kept = _core.kept_result_buffers()
    assert kept >= 1
    small = tconv.conv_transpose(x[:, :, :8, :8], w, b, stride=2)
    del small
    assert _core.kept_result_buffers() == kept


def test_threads_each_get_their_own_buffer():
    w, b = inputs(7)[1:]
    xs = [inputs(10 + i)[0] for i in range(4)]
    out: list = [None] * len(xs)

    def work(i):
        out[i] = tconv.conv_transpose(xs[i], w, b, stride=2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(xs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({y.ctypes.data for y in out}) == len(xs)
    for x, y in zip(xs, out):
        check(y, x, w, b)
