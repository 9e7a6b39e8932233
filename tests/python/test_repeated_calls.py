"""Repeated functional calls reuse the layer's resolution, keyed on values only: arrays changed
in place, other shapes and bad arguments are seen afresh on every call. A call that repeats a
resolved layer with plain arrays goes straight to the core (_core.repeat); anything the full
path would convert, copy or refuse takes the full path."""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import _api, reference

LAYER = dict(stride=2, padding=1)


def _arrays(dtype=np.float32):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 4, 5, 6)).astype(dtype)
    w = rng.standard_normal((4, 3, 4, 4)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    return x, w, b


def _close(got, want):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


def test_a_repeated_layer_is_resolved_once_and_computes_each_call():
    x, w, b = _arrays()
    _api.resolve_layer.cache_clear()
    tconv._core.forget_repeats()
    first = tconv.conv_transpose(x, w, b, **LAYER)
    assert _api.resolve_layer.cache_info().misses == 1
    second = tconv.conv_transpose(x, w, b, [2, 2], [1, 1])  # lists: a new key, the same layer
    info = _api.resolve_layer.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    third = tconv.conv_transpose(x, w, b, **LAYER)  # a repeat: not even looked up
    assert _api.resolve_layer.cache_info() == info
    want = reference.conv_transpose(x, w, b, **LAYER)
    _close(first, want)
    np.testing.assert_array_equal(second, first)
    np.testing.assert_array_equal(third, first)
    assert second is not first and third is not first
    assert third.ctypes.data % 64 == 0 and third.flags.c_contiguous and third.flags.writeable


def test_a_repeat_goes_straight_to_the_core(monkeypatch):
    x, w, b = _arrays()
    tconv._core.forget_repeats()
    first = tconv.conv_transpose(x, w, b, **LAYER)
    first_1 = tconv.conv_transpose(x[0], w, b, **LAYER)  # unbatched: its own key

    def no_parsing(*args, **kwargs):
        raise AssertionError("a repeated call parsed its arguments again")

    monkeypatch.setattr(_api, "layer_args", no_parsing)
    monkeypatch.setattr(_api, "operands", no_parsing)
    np.testing.assert_array_equal(tconv.conv_transpose(x, w, b, **LAYER), first)
    got_1 = tconv.conv_transpose(x[0], w, b, **LAYER)
    assert got_1.shape == first_1.shape == first.shape[1:]
    np.testing.assert_array_equal(got_1, first_1)
    # what the full path would convert or check afresh takes it (and meets the patch)
    for call in (
        lambda: tconv.conv_transpose(x, w, b, **LAYER, out=np.empty_like(first)),
        lambda: tconv.conv_transpose(x, w, np.repeat(b, 2)[::2], **LAYER),
        lambda: tconv.conv_transpose(x, w, b.tolist(), **LAYER),
        lambda: tconv.conv_transpose(x, w.astype(w.dtype.newbyteorder(">")), b, **LAYER),
        lambda: tconv.conv_transpose(x, w, b, stride=np.int64(2), padding=1),
    ):
        with pytest.raises(AssertionError, match="parsed its arguments again"):
            call()


def test_a_repeat_of_misaligned_operands_still_copies_them():
    x, w, b = _arrays()
    want = tconv.conv_transpose(x, w, b, **LAYER)
    raw = np.zeros(x.nbytes + 1, np.uint8)
    x_odd = raw[1:].view(np.float32).reshape(x.shape)  # 1 byte off its item size
    x_odd[...] = x
    assert not x_odd.flags.aligned
    for _ in range(2):
        np.testing.assert_array_equal(tconv.conv_transpose(x_odd, w, b, **LAYER), want)


def test_arrays_changed_in_place_between_calls_give_new_results():
    x, w, b = _arrays()
    tconv.conv_transpose(x, w, b, **LAYER)
    x *= 2
    w[0] += 1
    b[:] = -b
    _close(tconv.conv_transpose(x, w, b, **LAYER), reference.conv_transpose(x, w, b, **LAYER))


def test_a_resolved_layer_still_refuses_other_shapes_and_bad_arguments():
    x, w, b = _arrays()
    tconv.conv_transpose(x, w, b, **LAYER)
    with pytest.raises(tconv.ShapeError, match="channels"):
        tconv.conv_transpose(x[:, :3], w, b, **LAYER)
    with pytest.raises(TypeError, match="stride"):
        tconv.conv_transpose(x, w, b, stride=2.0, padding=1)
    with pytest.raises(TypeError, match="stride"):
        tconv.conv_transpose(x, w, b, stride=[2.0, 2], padding=1)
    with pytest.raises(TypeError, match="bool"):
        tconv.conv_transpose(x, w, b, stride=2, padding=True)
    with pytest.raises(TypeError, match="mix"):
        tconv.conv_transpose(x, w.astype(np.float64), b, **LAYER)
    with pytest.raises(TypeError, match="groups"):
        tconv.conv_transpose(x, w, b, stride=2, padding=1, groups=True)
    with pytest.raises(tconv.ShapeError, match="bias"):
        tconv.conv_transpose(x, w, b[:2], **LAYER)
    with pytest.raises(ValueError, match="data_format"):
        tconv.conv_transpose(x, w, b, **LAYER, data_format="channels_middle")
    with pytest.raises(OverflowError, match="64-bit"):  # no key: past int64
        tconv.conv_transpose(x, w, b, stride=(2**70, 2), padding=1)
    # and the layer that worked still works, for another batch too
    x3 = np.concatenate([x, x[:1]])
    _close(tconv.conv_transpose(x3, w, b, **LAYER), reference.conv_transpose(x3, w, b, **LAYER))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_plain_arrays_and_other_operand_forms_agree(dtype):
    x, w, b = _arrays(dtype)
    plain = tconv.conv_transpose(x, w, b, **LAYER)
    swapped = w.astype(w.dtype.newbyteorder(">"))
    np.testing.assert_array_equal(tconv.conv_transpose(x, swapped, b, **LAYER), plain)
    np.testing.assert_array_equal(tconv.conv_transpose(x, w, b.tolist(), **LAYER), plain)
    strided = np.ascontiguousarray(np.repeat(b, 2))[::2]
    np.testing.assert_array_equal(tconv.conv_transpose(x, w, strided, **LAYER), plain)
    plan = tconv.ConvTranspose(w, b, **LAYER)
    np.testing.assert_array_equal(plan(x), plain)
    np.testing.assert_array_equal(plan(x.astype(x.dtype.newbyteorder(">"))), plain)
    np.testing.assert_array_equal(plan(x.tolist()), plain)


def test_out_overlapping_an_input_is_named_whichever_path_the_operands_take():
    x, w, b = _arrays()
    y = tconv.conv_transpose(x, w, b, **LAYER)
    buf = np.zeros(y.size + x.size, np.float32)
    xs = buf[: x.size].reshape(x.shape)
    xs[...] = x
    out = buf[: y.size].reshape(y.shape)
    with pytest.raises(ValueError, match="out shares memory with x"):
        tconv.conv_transpose(xs, w, b, **LAYER, out=out)
    plan = tconv.ConvTranspose(w, b, **LAYER)
    with pytest.raises(ValueError, match="out shares memory with x"):
        plan(xs, out=out)
    np.testing.assert_array_equal(xs, x)  # refused before anything was written
