"""tconv.ConvTranspose gives the numbers of tconv.conv_transpose, packs once, and validates."""

from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import tconv
from tconv import reference

CASES = [
    ((2, 16, 7, 8), (16, 8, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ((16, 7, 8), (16, 8, 3, 3), dict(stride=2, padding=1)),  # unbatched
    ((1, 8, 30), (8, 2, 5), dict(stride=3, padding=((1, 2),), dilation=2)),
    ((1, 12, 6, 5), (12, 1, 4, 4), dict(stride=2, padding=1, groups=12)),
    ((2, 5, 6, 12), (3, 3, 20, 12), dict(stride=2, padding="same", data_format="channels_last")),
    ((1, 8, 3, 4, 5), (8, 16, 2, 2, 2), dict(stride=2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_plan_equals_functional(case, dtype):
    xs, ws, kw = CASES[case]
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    cl = kw.get("data_format") == "channels_last"
    b = rng.standard_normal((ws[-2] if cl else ws[1]) * kw.get("groups", 1)).astype(dtype)
    plan = tconv.ConvTranspose(w, b, **kw)
    want = tconv.conv_transpose(x, w, b, **kw)
    got = plan(x)
    assert got.shape == want.shape == plan.output_shape(x.shape)
    assert np.array_equal(got, want)
    out = np.empty_like(want)
    assert plan(x, out=out) is out and np.array_equal(out, want)
    # The plan copied the weights: changing the caller's array changes nothing.
    w[...] = 0
    assert np.array_equal(plan(x), want)


def _weight_view(kind: str, rng) -> np.ndarray:
    """A (6, 3, 4, 4) weight that is a view, not a C-contiguous array."""
    if kind == "channels_sliced":  # the taps and the kept channels dense, the rows apart
        return rng.standard_normal((6, 5, 4, 4))[:, 1:4]
    if kind == "axes_swapped":  # the taps dense, the two channel axes swapped
        return np.ascontiguousarray(rng.standard_normal((3, 6, 4, 4))).transpose(1, 0, 2, 3)
    if kind == "taps_reversed":  # a negative innermost stride
        return rng.standard_normal((6, 3, 4, 4))[:, :, :, ::-1]
    if kind == "fortran":
        return np.asfortranarray(rng.standard_normal((6, 3, 4, 4)))
    return rng.standard_normal((12, 3, 4, 4))[::2]  # every other input channel


@pytest.mark.parametrize(
    "kind", ["channels_sliced", "axes_swapped", "taps_reversed", "fortran", "strided_rows"]
)
def test_plan_copies_weights_given_as_views(kind):
    rng = np.random.default_rng(3)
    w = _weight_view(kind, rng)
    assert w.shape == (6, 3, 4, 4) and not w.flags.c_contiguous
    x = rng.standard_normal((2, 6, 5, 5))
    plan = tconv.ConvTranspose(w, stride=2, padding=1)
    want = reference.conv_transpose(x, np.ascontiguousarray(w), stride=2, padding=1)
    np.testing.assert_allclose(plan(x), want, rtol=1e-12, atol=1e-12)
    assert np.array_equal(plan.weight, w) and plan.weight.flags.c_contiguous
    w[...] = 0  # the plan holds its own copy
    np.testing.assert_allclose(plan(x), want, rtol=1e-12, atol=1e-12)
    assert not np.array_equal(plan.weight, w)


def test_plan_holds_one_copy_of_the_weights():
    w = np.random.default_rng(4).standard_normal((256, 128, 4, 4)).astype(np.float32)
    tracemalloc.start()
    try:
        plan = tconv.ConvTranspose(w, stride=2, padding=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # tracemalloc sees numpy's allocations, not the core's: the one copy is the core's.
    assert peak < w.nbytes // 4
    held = plan.weight
    assert np.array_equal(held, w) and not np.shares_memory(held, w)
    assert held.dtype == w.dtype and held.flags.c_contiguous and not held.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        held[0, 0, 0, 0] = 1.0
    del plan
    gc.collect()
    assert np.array_equal(held, w)  # the array keeps the plan's copy alive


def test_output_size_matches_functional():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    plan = tconv.ConvTranspose(w, stride=2, padding=1)
    got = plan(x, output_size=(10, 10))
    assert got.shape == (1, 3, 10, 10)
    assert np.array_equal(
        got, tconv.conv_transpose(x, w, stride=2, padding=1, output_size=(10, 10))
    )
    assert plan.output_shape(x.shape, output_size=(10, 10)) == (1, 3, 10, 10)


def test_one_plan_on_inputs_of_changing_shape():
    # The plan keeps the last input shape's geometry: every change of shape, batch, output_size
    # or batched-ness must still give the reference's result.
    rng = np.random.default_rng(1)
    w = rng.standard_normal((4, 3, 3, 3))
    plan = tconv.ConvTranspose(w, stride=2, padding=1)
    shapes = [(1, 4, 5, 5), (2, 4, 5, 5), (1, 4, 6, 5), (4, 5, 5), (1, 4, 5, 5), (1, 4, 5, 5)]
    sizes = [None, None, None, None, (10, 10), None]
    for shape, size in zip(shapes, sizes):
        x = rng.standard_normal(shape)
        xb = x if x.ndim == 4 else x[np.newaxis]
        op = 0 if size is None else 1  # (5 - 1) * 2 - 2 + 3 = 9 cells, 10 asked for
        want = reference.conv_transpose(xb, w, stride=2, padding=1, output_padding=op)
        got = plan(x, output_size=size)
        assert got.shape == (want.shape if x.ndim == 4 else want.shape[1:])
        np.testing.assert_allclose(got, want if x.ndim == 4 else want[0], rtol=1e-12, atol=1e-12)


def test_plan_rejects_bad_layers_and_inputs():
    w = np.ones((4, 3, 3, 3), np.float32)
    with pytest.raises(tconv.ShapeError):
        tconv.ConvTranspose(w, groups=3)  # 4 input channels, 3 groups
    with pytest.raises(tconv.ShapeError):
        tconv.ConvTranspose(w, np.ones(4, np.float32))  # bias of the wrong length
    with pytest.raises(tconv.ShapeError):
        tconv.ConvTranspose(np.ones((4, 3), np.float32))
    plan = tconv.ConvTranspose(w, stride=2)
    with pytest.raises(tconv.ShapeError):
        plan(np.ones((1, 5, 4, 4), np.float32))  # 5 channels, weight wants 4
    with pytest.raises(TypeError):
        plan(np.ones((1, 4, 4, 4), np.float64))
    with pytest.raises(tconv.ShapeError):
        plan.output_shape((1, 4, 4))


def test_packs_once_and_counts_packed_bytes():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((32, 24, 4, 4)).astype(np.float32)
    plan = tconv.ConvTranspose(w, stride=2, padding=1)
    x = rng.standard_normal((1, 32, 6, 6)).astype(np.float32)
    plan(x)
    first = plan.packed_bytes
    # The ISA that ran, not the CPU's best: TCONV_MAX_ISA=portable runs unpacked weights.
    if tconv._core.last_call_isa() in ("avx2", "avx512"):
        # Packed per phase without padded taps: the weights, with C_out rounded up to the
        # kernel's width (16 for AVX2, 32 for AVX-512: 24 becomes 32 either way).
        assert first == 32 * 16 * 32 * 4
    plan(rng.standard_normal((3, 32, 9, 7)).astype(np.float32))
    assert plan.packed_bytes == first


def test_threadpoolctl_caps_the_pool():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    before = tconv.get_num_threads()
    infos = [i for i in threadpoolctl.threadpool_info() if i["user_api"] == "tconv"]
    assert len(infos) == 1 and infos[0]["num_threads"] == before
    with threadpoolctl.threadpool_limits(1, user_api="tconv"):
        assert tconv.get_num_threads() == 1
    assert tconv.get_num_threads() == before


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_allocated_outputs_start_on_a_cache_line(case, dtype):
    # The kernels store whole 64-byte vectors; numpy's np.empty starts 16 bytes into a line.
    xs, ws, kw = CASES[case]
    x = np.ones(xs, dtype)
    w = np.ones(ws, dtype)
    plan = tconv.ConvTranspose(w, **kw)
    for y in (tconv.conv_transpose(x, w, **kw), plan(x)):
        assert y.ctypes.data % 64 == 0, y.ctypes.data % 64
        assert y.flags.c_contiguous and y.flags.writeable and y.dtype == dtype
        assert y.shape == plan.output_shape(xs)
        np.testing.assert_array_equal(y, plan(x, out=np.empty_like(y)))


# Keras' padding='same' with output_padding 0 and an even kernel over one cell gives 0 cells;
# output_size may ask for that in some dims and for other sizes in the rest. Plans and the
# functional form resolve these the same way, and as the reference does.
EMPTY_SAME = [
    # x shape, weight shape, layer arguments, call arguments
    (
        (1, 1, 5),
        (2, 3, 5),
        dict(stride=3, padding="same", output_padding=0, data_format="channels_last"),
        {},
    ),
    (
        (0, 1, 1, 1, 1),
        (1, 1, 1, 2, 1),
        dict(stride=(1, 1, 2), padding="same", dilation=(1, 1, 2)),
        dict(output_size=(1, 0, 2)),
    ),
    (
        (2, 1, 1, 1, 3),
        (1, 2, 1, 4, 3),
        dict(stride=(1, 1, 2), padding="same", dilation=(1, 1, 2), data_format="channels_last"),
        dict(output_size=(2, 1, 0, 2, 4)),
    ),
]


@pytest.mark.parametrize("xs, ws, layer, call", EMPTY_SAME)
def test_keras_empty_same_outputs_alike_in_plans_and_calls(xs, ws, layer, call):
    x = np.ones(xs, np.float32)
    w = np.ones(ws, np.float32)
    want = reference.conv_transpose(x, w, **layer, **call).shape
    assert 0 in want[1:]
    assert tconv.conv_transpose(x, w, **layer, **call).shape == want
    plan = tconv.ConvTranspose(w, **layer)
    assert plan(x, **call).shape == want
    assert plan.output_shape(xs, **call) == want
