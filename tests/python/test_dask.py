"""tconv.dask.conv_transpose on dask's threaded scheduler against the in-memory call.

The halo arithmetic (tconv.dask.axis_windows) is checked on its own against a scatter written
here in plain numpy, then the whole chunked call against tconv.conv_transpose over drawn
layers: ranks 1-3, every padding form, output_padding, dilation, groups, both data formats,
uneven chunks, chunks smaller than the halo, batch chunking.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")

import tconv  # noqa: E402
import tconv.dask as tdask  # noqa: E402

from _dask_cases import chunked_layers, partitions  # noqa: E402
from conftest import assert_close_in_norm  # noqa: E402


def scatter_1d(x: np.ndarray, w: np.ndarray, stride: int, dilation: int, extra: int) -> np.ndarray:
    """The uncropped 1-D transposed convolution of one channel, plus `extra` zero cells."""
    full = (len(x) - 1) * stride + dilation * (len(w) - 1) + 1
    y = np.zeros(full + extra)
    for i, xv in enumerate(x):
        for t, wv in enumerate(w):
            y[i * stride + t * dilation] += xv * wv
    return y


@st.composite
def axis_layers(draw):
    length = draw(st.integers(1, 14))
    kernel, stride, dilation = (
        draw(st.integers(1, 6)),
        draw(st.integers(1, 5)),
        draw(st.integers(1, 4)),
    )
    full = (length - 1) * stride + dilation * (kernel - 1) + 1
    op = draw(st.integers(0, max(stride, dilation) - 1))
    lo = draw(st.integers(0, full - 1 + op))
    hi = draw(st.integers(0, full - 1 + op - lo))
    return dict(
        chunks=draw(partitions(length)),
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        lo=lo,
        hi=hi,
        op=op,
        out=full - lo - hi + op,
    )


@settings(max_examples=400)
@given(axis_layers(), st.data())
def test_axis_windows_rebuild_each_block_from_its_input_range(layer, data):
    chunks, k, s, d = layer["chunks"], layer["kernel"], layer["stride"], layer["dilation"]
    lo, out = layer["lo"], layer["out"]
    windows = tdask.axis_windows(chunks, k, s, d, lo, out)
    assert len(windows) == len(chunks)
    assert sum(w.size for w in windows) == out
    starts = np.cumsum([0] + [w.size for w in windows[:-1]])
    assert list(starts) == [min(c * s, out) for c in np.cumsum([0, *chunks[:-1]])]

    # Positive integer data: every contribution shows and the sums are exact.
    x = np.array(
        data.draw(st.lists(st.integers(1, 9), min_size=sum(chunks), max_size=sum(chunks))),
        dtype=np.float64,
    )
    w = np.array(data.draw(st.lists(st.integers(1, 9), min_size=k, max_size=k)), dtype=np.float64)
    y = scatter_1d(x, w, s, d, layer["op"])[lo : lo + out]
    assert len(y) == out
    for a, win in zip(starts, windows):
        block = y[a : a + win.size]
        if win.start == win.stop:
            assert not block.any(), "a block that reads no input got contributions"
            continue
        assert win.crop_lo >= 0 and -max(s, d) < win.crop_hi
        local = scatter_1d(x[win.start : win.stop], w, s, d, max(-win.crop_hi, 0))
        assert len(local) - max(-win.crop_hi, 0) - win.crop_lo - win.crop_hi == win.size
        np.testing.assert_array_equal(local[win.crop_lo : win.crop_lo + win.size], block)


@settings(max_examples=80)
@given(chunked_layers())
def test_chunked_call_matches_the_in_memory_call(case):
    x, w, b, kw = case["x"], case["weight"], case["bias"], case["kwargs"]
    xd = da.from_array(x, chunks=case["chunks"])
    try:
        expected = tconv.conv_transpose(x, w, b, **kw)
    except tconv.ShapeError as exc:  # a drawn layer that cannot work: the same refusal
        with pytest.raises(tconv.ShapeError) as info:
            tdask.conv_transpose(xd, w, b, **kw)
        assert str(info.value) == str(exc)
        event("refused layer")
        return
    y = tdask.conv_transpose(xd, w, b, **kw)
    assert y.numblocks == xd.numblocks
    assert y.shape == expected.shape and y.dtype == expected.dtype
    reads = _blocks_read(y)
    event(
        f"blocks: {min(y.npartitions, 10)}{'+' * (y.npartitions > 10)}; "
        f"most input blocks one task reads: {min(reads, 4)}{'+' * (reads > 4)}"
    )
    got = y.compute(scheduler="threads")
    assert_close_in_norm(got, expected, msg=f"chunks {xd.chunks} -> {y.chunks}, {kw}")


@pytest.mark.parametrize("kernel,stride,padding", [(2, 2, 0), (4, 2, 1), (3, 2, "same")])
def test_equal_input_chunks_give_equal_output_chunks_that_zarr_accepts(
    tmp_path, kernel, stride, padding
):
    zarr = pytest.importorskip("zarr")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 12, 8, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, kernel, kernel, kernel)).astype(np.float32)
    xd = da.from_array(x, chunks=(1, 3, 4, 4, 2))
    y = tdask.conv_transpose(xd, w, stride=stride, padding=padding)
    assert y.chunks[2:] == ((8,) * 3, (8,) * 2, (4,) * 2)
    y.to_zarr(str(tmp_path / "y.zarr"), compute=True)
    back = np.asarray(zarr.open(str(tmp_path / "y.zarr"), mode="r")[...])
    assert_close_in_norm(back, tconv.conv_transpose(x, w, stride=stride, padding=padding))


def _conv_tasks(y) -> dict:
    """The tasks of the result's own layer: its blocks, the layer's constants, halo cuts."""
    return dict(y.__dask_graph__().layers[y.name])


def _blocks_read(y) -> int:
    """The most input pieces (whole blocks of x or halo cuts) one block of the result reads."""
    most = 0
    for key, task in _conv_tasks(y).items():
        if isinstance(key, tuple) and key[0] == y.name and isinstance(task, tuple):
            stack, count = [task[2]], 0
            while stack:
                item = stack.pop()
                if isinstance(item, list):
                    stack.extend(item)
                else:
                    count += 1
            most = max(most, count)
    return most


def test_weights_travel_in_one_graph_key_whatever_the_number_of_blocks():
    w = np.random.default_rng(2).standard_normal((32, 32, 3, 3, 3))  # 216 KiB
    sizes = {}
    for n in (4, 32):
        x = da.zeros((2, 32, 4 * n, 4, 4), chunks=(1, 32, 2, 4, 4))
        y = tdask.conv_transpose(x, w, stride=2, padding=1)
        tasks = _conv_tasks(y)
        per_task = sorted(len(pickle.dumps(t)) for t in tasks.values())
        # Exactly one entry carries the weights; every block task is far smaller.
        assert per_task[-1] > w.nbytes and per_task[-2] < w.nbytes / 20, per_task[-3:]
        assert sum(isinstance(k, tuple) and k[0] == y.name for k in tasks) == y.npartitions
        sizes[n] = len(pickle.dumps(dict(y.__dask_graph__())))
    # 112 more blocks (of x and of the result), and the whole graph grows by less than a
    # quarter of one weight.
    assert sizes[32] - sizes[4] < w.nbytes / 4, sizes


def test_tconv_threads_default_to_one_per_task_and_are_set_per_call(monkeypatch):
    from tconv import _core

    seen = []
    original = _core.conv_transpose

    def spy(*args, **kwargs):
        seen.append(kwargs.get("num_threads"))
        return original(*args, **kwargs)

    monkeypatch.setattr(_core, "conv_transpose", spy)
    before = tconv.get_num_threads()
    x = da.ones((2, 3, 6, 6), chunks=(1, 3, 3, 2))
    w = np.ones((3, 2, 3, 3))
    expected = tconv.conv_transpose(np.ones((2, 3, 6, 6)), w, stride=2)
    for num_threads, passed in ((1, 1), (2, 2), (None, 0)):
        kwargs = {} if num_threads == 1 else {"num_threads": num_threads}
        y = tdask.conv_transpose(x, w, stride=2, **kwargs)
        seen.clear()  # the checks on an empty batch while building the graph
        assert_close_in_norm(y.compute(scheduler="threads"), expected)
        # One core call per block, each with the requested thread count (0: the process-wide
        # setting); the process-wide setting itself is never touched.
        assert seen == [passed] * y.npartitions, (num_threads, seen)
        assert tconv.get_num_threads() == before


def test_unbatched_input_and_culling():
    x = np.arange(2 * 9 * 5, dtype=np.float64).reshape(2, 9, 5)
    w = np.linspace(-1, 1, 2 * 3 * 3 * 2).reshape(2, 3, 3, 2)
    xd = da.from_array(x, chunks=(2, 2, 3))
    y = tdask.conv_transpose(xd, w, stride=(2, 1), padding="same")
    assert y.numblocks == xd.numblocks
    expected = tconv.conv_transpose(x, w, stride=(2, 1), padding="same")
    assert_close_in_norm(y.compute(scheduler="threads"), expected)
    # One block needs only its input block and the halo's: the graph of a slice stays small.
    part = y[:, :4, :3]
    culled = part.__dask_optimize__(part.__dask_graph__(), part.__dask_keys__())
    assert len(culled) < len(dict(y.__dask_graph__())) // 2
    assert_close_in_norm(part.compute(scheduler="threads"), expected[:, :4, :3])


def test_bad_inputs_are_refused_before_any_task_runs():
    w = np.ones((4, 2, 3, 3), dtype=np.float32)
    x = da.ones((2, 4, 8, 8), chunks=(1, 2, 4, 4), dtype=np.float32)
    with pytest.raises(ValueError, match=r"channel axis.*x.rechunk\(\{1: -1\}\)"):
        tdask.conv_transpose(x, w)
    with pytest.raises(ValueError, match=r"x.rechunk\(\{3: -1\}\)"):
        tdask.conv_transpose(
            da.ones((2, 8, 8, 4), chunks=(1, 4, 4, 2), dtype=np.float32),
            np.ones((3, 3, 2, 4), dtype=np.float32),
            data_format="channels_last",
        )
    with pytest.raises(TypeError, match=r"dask\.array\.from_array"):
        tdask.conv_transpose(np.ones((2, 4, 8, 8), dtype=np.float32), w)
    x = x.rechunk({1: -1})
    with pytest.raises(TypeError, match="float64 but weight is float32"):
        tdask.conv_transpose(x.astype(np.float64), w)
    with pytest.raises(TypeError, match="int64"):
        tdask.conv_transpose(da.ones((2, 4, 8, 8), chunks=2, dtype=np.int64), w)
    with pytest.raises(ValueError, match="num_threads must be a positive int or None"):
        tdask.conv_transpose(x, w, num_threads=0)
    with pytest.raises(tconv.ShapeError, match="channel"):
        tdask.conv_transpose(x, np.ones((3, 2, 3, 3), dtype=np.float32))
    with pytest.raises(tconv.ShapeError):
        tdask.conv_transpose(x, w, padding=9)
    unknown = x[x[:, 0, 0, 0] > 0]
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        tdask.conv_transpose(unknown, w)


def test_empty_blocks_and_blocks_that_only_hold_the_bias():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 2, 6)).astype(np.float32)
    w = rng.standard_normal((2, 3, 1)).astype(np.float32)
    b = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    xd = da.from_array(x, chunks=(1, 2, 1))
    # Kernel 1, stride 2, crop 5: 7 output cells where blocks of 2 would need 12, so the last
    # two blocks are empty; the last cell (past the last input's only tap) is output_padding's
    # and makes a block of its own that reads no input.
    kw = dict(stride=2, padding=((5, 0),), output_padding=1)
    y = tdask.conv_transpose(xd, w, b, **kw)
    windows = tdask.axis_windows((1,) * 6, 1, 2, 1, 5, 7)
    assert y.chunks[2] == (2, 2, 2, 1, 0, 0)
    assert any(w_.start == w_.stop and w_.size for w_ in windows), windows
    expected = tconv.conv_transpose(x, w, b, **kw)
    np.testing.assert_array_equal(expected[..., -1], np.broadcast_to(b, (1, 3)))
    assert_close_in_norm(y.compute(scheduler="threads"), expected)


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_keras_empty_same_output_is_an_empty_array_of_the_in_memory_shape(data_format):
    # Keras' padding='same', output_padding=0 with an even kernel on a length of 1: no cells.
    w = np.ones((1, 1, 2), np.float32)
    if data_format == "channels_last":
        w = np.ascontiguousarray(w.transpose(2, 1, 0))
    x = np.ones((3, 1, 1), np.float32)
    want = tconv.conv_transpose(x, w, padding="same", output_padding=0, data_format=data_format)
    y = tdask.conv_transpose(
        da.from_array(x, chunks=(2, 1, 1)),
        w,
        padding="same",
        output_padding=0,
        data_format=data_format,
    )
    assert 0 in want.shape
    assert y.shape == want.shape
    assert y.compute().shape == want.shape
