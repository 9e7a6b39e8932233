"""Layers with 1-4 output channels per group (RGB heads, super-resolution) against the literal
scatter loop.

These run the position algorithm: vectors over output positions, every phase of the last dim
and every output channel in registers, input rows cached per thread and taken in runs of
consecutive output rows per thread. The draws aim at what that path gets wrong when it is
wrong: tap shifts feeding only some phases (paired in one pass over C_in), phases with no
taps, tails shorter than a vector, borders, several row blocks, groups, and the run split
between threads (1 and 2 threads must agree bit for bit).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tconv
from tconv import reference

from conftest import (
    assert_close_in_norm,
    channels,
    examples,
    layer_inputs,
    layers,
    reachable_isas,
)


@pytest.fixture
def threads_restored():
    before = tconv.get_num_threads()
    yield
    tconv.set_num_threads(before)


# Long last dims cross several position tiles and row blocks; kernels up to 9 along it give tap
# shifts feeding only some phases; the reference loop is pure Python, hence the bound.
TINY = layers(
    channels=channels(cin_g=st.integers(1, 6), cout_g=st.integers(1, 4)),
    ranks=(1, 2, 2, 2, 3),
    last_kernel=st.integers(1, 9),
    stride=st.integers(1, 5),
    dilation=st.sampled_from([1, 1, 1, 2, 3]),
    outer=st.integers(1, 4),
    last=st.integers(1, 60),
    batch=st.integers(1, 2),
    layouts=("c", "c", "strided", "fortran"),
    max_products=60_000,
)


@settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cfg=TINY)
def test_tiny_cout_matches_reference_on_one_and_two_threads(cfg, threads_restored):
    x, w, b, kw = layer_inputs(cfg)
    want = reference.conv_transpose(x, w, b, **kw)
    tconv.set_num_threads(1)
    one = tconv.conv_transpose(x, w, b, **kw)
    assert_close_in_norm(one, want, cfg["dtype"], msg=str(cfg))
    tconv.set_num_threads(2)
    two = tconv.conv_transpose(x, w, b, **kw)
    assert np.array_equal(one.view(np.uint8), two.view(np.uint8)), str(cfg)


def assert_tiny_cout_kernel(isa: str) -> None:
    """The last call ran a tiny-C_out kernel of `isa`: the one for all the phases of the last two
    dims (phase_grid) or the per-row ones over positions (phase_positions*); portable has neither."""
    kernel = tconv._core.last_call_kernel()
    if isa == "portable":
        assert kernel == "portable", kernel
    else:
        assert kernel == "phase_grid" or kernel.startswith("phase_positions"), kernel


# The suite's tiny-C_out layer classes, scaled down so the reference loop stays quick, at
# sizes that cross the position tiles, with several rows per thread.
SHAPES = [
    # DCGAN -> RGB: k4 s2 p1, two of the three shifts feed one phase each.
    ((2, 5, 7, 37), (5, 3, 4, 4), dict(stride=2, padding=1)),
    # FSRCNN x3: k9 s3 p4 op2, shifts feeding 2, 3, 3 and 1 of the 3 phases.
    ((1, 3, 6, 41), (3, 1, 9, 9), dict(stride=3, padding=4, output_padding=2)),
    # FSRCNN x4: k9 s4 p4 op3, a shift feeding one phase of four with no partner.
    ((1, 3, 5, 29), (3, 1, 9, 9), dict(stride=4, padding=4, output_padding=3)),
    # Two output channels, k3 s2 with asymmetric padding, grouped.
    ((1, 4, 9, 50), (4, 2, 3, 3), dict(stride=2, padding=((1, 0), (0, 2)), groups=2)),
    # Four output channels, stride 3, dilation 2.
    ((1, 2, 4, 33), (2, 4, 3, 5), dict(stride=3, padding=2, dilation=2)),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("xs,ws,kw", SHAPES)
def test_suite_like_tiny_cout_layers(xs, ws, kw, dtype, threads_restored):
    rng = np.random.default_rng(7)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * kw.get("groups", 1)).astype(dtype)
    want = reference.conv_transpose(x, w, b, **kw)
    got = {}
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        got[threads] = tconv.ConvTranspose(w, b, **kw)(x)
        assert_tiny_cout_kernel(reachable_isas()[0])
        assert_close_in_norm(got[threads], want, dtype)
    assert np.array_equal(got[1].view(np.uint8), got[2].view(np.uint8))


# Every (output channels, phases) pair of the multi-phase kernel, on rows that leave a partial
# vector at either width (37 positions: 2 x 16 + 5 floats, 4 x 8 + 5 doubles) and on rows
# longer than one tile of the widest kinds (100 positions), with kernels whose every shift
# feeds every phase (k = 2s) and kernels with shifts feeding some phases only (k = 2s + 1,
# run in pairs with a partner shift), in both data layouts (interleaved vector stores for
# channels_first, element stores for channels_last). Checked on every instruction set.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [2, 3, 4])
@pytest.mark.parametrize("cout", [1, 2, 3, 4])
def test_multi_phase_every_channel_and_phase_count(cout, stride, dtype):
    rng = np.random.default_rng(cout * 10 + stride)
    try:
        for width in (37, 100):
            for k in (2 * stride, 2 * stride + 1):
                x = rng.standard_normal((1, 3, width)).astype(dtype)
                w = rng.standard_normal((3, cout, k)).astype(dtype)
                b = rng.standard_normal(cout).astype(dtype)
                kw = dict(stride=stride, padding=1)
                want = reference.conv_transpose(x, w, b, **kw)
                x_cl = np.ascontiguousarray(x.transpose(0, 2, 1))
                w_cl = np.ascontiguousarray(w.transpose(2, 1, 0))
                for isa in reachable_isas():
                    tconv.set_max_isa(isa)
                    got = tconv.conv_transpose(x, w, b, **kw)
                    assert_tiny_cout_kernel(isa)
                    assert_close_in_norm(got, want, dtype, msg=f"{isa} width {width} k {k}")
                    got = tconv.conv_transpose(x_cl, w_cl, b, data_format="channels_last", **kw)
                    assert_tiny_cout_kernel(isa)
                    assert_close_in_norm(
                        got.transpose(0, 2, 1),
                        want,
                        dtype,
                        msg=f"{isa} width {width} k {k} channels_last",
                    )
    finally:
        tconv.set_max_isa(tconv.available_isas()[0])


# Every (output channels, row phases, column phases) shape of the kernel that computes all the
# phases of the last two dims at once, reading a channels_first input in place: rows that
# leave a partial vector (37 positions) and rows longer than one tile (100), output sizes that
# are a whole number of strides and ones that are not (the last input row then feeds only some
# output rows, the last positions only some column phases), kernels whose every shift feeds
# every phase (k = 2s) and kernels with shifts feeding some phases only (k = 2s + 1).
# Shapes past 24 accumulators take the per-row kernels and are checked the same way.
GRID_SHAPES = [(c, sy, sx) for c in (1, 2, 3, 4) for sy in (2, 3, 4) for sx in (2, 3, 4)]


@functools.cache
def _grid_layers(cout, sy, sx):
    """(x, w, b, kwargs, reference result) per row width, in float64 holding float32 values:
    one reference loop serves both dtypes."""
    rng = np.random.default_rng(cout * 100 + sy * 10 + sx)
    layers = []
    for width, height, extra, k in ((37, 3, 0, 0), (100, 2, 1, 1)):
        ky, kx = 2 * sy + k, 2 * sx + k
        x, w, b = (
            rng.standard_normal(shape).astype(np.float32).astype(np.float64)
            for shape in ((1, 3, height, width), (3, cout, ky, kx), (cout,))
        )
        # Padding s/2 + output padding: an output of s x input, or `extra` short of it.
        kw = dict(
            stride=(sy, sx),
            padding=((sy + k) // 2, (sx + k) // 2),
            output_padding=(max(0, sy - 1 - extra), max(0, sx - 1 - extra)),
        )
        layers.append((x, w, b, kw, reference.conv_transpose(x, w, b, **kw)))
    return layers


def _grid_or_positions_kernel(accumulators: int) -> str:
    """The driver these layers must reach: every phase at once where the ISA has that kernel
    (AVX-512) and the phases fit in its 24 accumulators, else the per-row position kernels."""
    isa = reachable_isas()[0]
    if isa == "portable":
        return "portable"
    return "phase_grid" if isa == "avx512" and accumulators <= 24 else "phase_positions"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cout,sy,sx", GRID_SHAPES)
def test_all_phases_of_two_dims_every_shape(cout, sy, sx, dtype, threads_restored):
    for x, w, b, kw, want in _grid_layers(cout, sy, sx):
        x, w, b = x.astype(dtype), w.astype(dtype), b.astype(dtype)
        width = x.shape[-1]
        results = []
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            got = tconv.conv_transpose(x, w, b, **kw)
            assert tconv._core.last_call_kernel() == _grid_or_positions_kernel(cout * sy * sx)
            assert_close_in_norm(got, want, dtype, msg=f"{threads} threads, width {width}")
            results.append(got)
        assert np.array_equal(results[0].view(np.uint8), results[1].view(np.uint8))


def test_all_phases_of_two_dims_in_3d_and_strided_inputs(threads_restored):
    """The outer dims' taps (a 3-D layer), a batch, groups, and inputs whose rows are
    contiguous but whose channels and rows are not packed (a slice of a larger array)."""
    rng = np.random.default_rng(11)
    cases = [
        ((2, 4, 3, 5, 21), (4, 1, 3, 4, 5), dict(stride=(2, 2, 3), padding=1, groups=2)),
        ((1, 3, 4, 6, 40), (3, 2, 2, 6, 6), dict(stride=(1, 3, 2), padding=(0, 2, 1))),
    ]
    for xs, ws, kw in cases:
        big = rng.standard_normal((xs[0], xs[1] + 2, *(v + 3 for v in xs[2:]))).astype(np.float32)
        x = big[:, 1 : xs[1] + 1, 2 : xs[2] + 2, 1 : xs[3] + 1, 3 : xs[4] + 3]
        w = rng.standard_normal(ws).astype(np.float32)
        want = reference.conv_transpose(x, w, None, **kw)
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            assert_close_in_norm(
                tconv.conv_transpose(x, w, None, **kw), want, np.float32, msg=str(kw)
            )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_phases_of_two_dims_with_more_input_rows_than_one_pass_takes(dtype, threads_restored):
    """Output rows fed by more input rows than the kernel runs in one pass over the input
    channels (four): kernels five strides tall or more, their first and last input rows
    feeding only some output row phases, the image's top and bottom rows fewer input rows;
    and a 3-D layer whose outer taps multiply the input rows of a call."""
    rng = np.random.default_rng(13)
    cases = [
        ((1, 3, 6, 37), (3, 2, 16, 7), dict(stride=(3, 2), padding=(4, 1))),
        ((2, 2, 7, 20), (2, 1, 11, 9), dict(stride=(2, 4), padding=(3, 2), output_padding=1)),
        ((1, 2, 3, 4, 21), (2, 3, 3, 11, 5), dict(stride=(2, 2, 2), padding=(1, 2, 1))),
    ]
    for xs, ws, kw in cases:
        sy = kw["stride"][-2]
        assert ws[-2] >= 5 * sy  # an interior output row reads five input rows or more
        x, w = (rng.standard_normal(s).astype(np.float32).astype(dtype) for s in (xs, ws))
        b = rng.standard_normal(ws[1]).astype(dtype)
        want = reference.conv_transpose(x, w, b, **kw)
        results = []
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            got = tconv.conv_transpose(x, w, b, **kw)
            cout, sx = ws[1], kw["stride"][-1]
            assert tconv._core.last_call_kernel() == _grid_or_positions_kernel(cout * sy * sx)
            assert_close_in_norm(got, want, dtype, msg=f"{threads} threads, {kw}")
            results.append(got)
        assert np.array_equal(results[0].view(np.uint8), results[1].view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_phases_of_two_dims_on_an_input_beyond_the_caches(dtype, threads_restored):
    """Inputs of 2 MiB and more take the path that fetches each next input row ahead. Too large
    for the reference loop: checked against the per-row kernels of the AVX2 set, which the
    reference checks everywhere else."""
    if "avx512" not in tconv.available_isas() or "avx2" not in tconv.available_isas():
        pytest.skip("compares the AVX-512 all-phases kernel with the AVX2 per-row kernels")
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3, 64, 40, 48)).astype(dtype)  # 3.5-7 MiB
    w = rng.standard_normal((64, 3, 4, 4)).astype(dtype)
    b = rng.standard_normal(3).astype(dtype)
    kw = dict(stride=2, padding=1)
    try:
        tconv.set_max_isa("avx2")
        want = tconv.conv_transpose(x, w, b, **kw)
        tconv.set_max_isa("avx512")
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            assert_close_in_norm(tconv.conv_transpose(x, w, b, **kw), want, dtype)
    finally:
        tconv.set_max_isa(tconv.available_isas()[0])


def rgb_head_like(seed, cin, height, width, dtype):
    """A k4 s2 p1 layer to 3 channels, batch 2, for the all-phases kernel (AVX-512 only: the
    test is skipped elsewhere): rng, x, w, b, kw and the bytes of its grid layout. Each output
    phase of a dim reads input shifts {-1, 0} or {0, 1}, so the layout is 3 x 3 shifts of
    [C_in][2 row phases][2 column phases][C_out], zeros where a phase has no tap at that shift;
    the per-phase blocks hold each of the 16 taps' weights once."""
    if reachable_isas()[0] != "avx512":
        pytest.skip("the all-phases kernel is AVX-512's")
    rng = np.random.default_rng(seed)
    cout = 3
    x = rng.standard_normal((2, cin, height, width)).astype(dtype)
    w = rng.standard_normal((cin, cout, 4, 4)).astype(dtype)
    b = rng.standard_normal(cout).astype(dtype)
    grid_bytes = 3 * 3 * cin * 2 * 2 * cout * w.itemsize
    return rng, x, w, b, dict(stride=2, padding=1), grid_bytes


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_functional_call_packs_the_grid_layout_alone(dtype, threads_restored):
    """A call that packs for itself and runs the all-phases kernel packs only that kernel's
    layout, straight from the weights; a plan keeps the per-phase blocks too. Same numbers.
    An input whose rows are not contiguous takes the per-row kernels, which then get the
    per-phase blocks; Inf/NaN weights go to the portable loop, as in a plan."""
    rng, x, w, b, kw, grid_bytes = rgb_head_like(17, 8, 9, 21, dtype)
    want = reference.conv_transpose(x, w, b, **kw)
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        got = tconv.conv_transpose(x, w, b, **kw)
        assert tconv._core.last_call_kernel() == "phase_grid"
        # On two threads the second thread packs a layout of its own if it took part (below).
        packed = tconv._core.last_call_memory()["packed_weight_bytes"]
        assert packed in ((grid_bytes,) if threads == 1 else (grid_bytes, 2 * grid_bytes))
        plan = tconv.ConvTranspose(w, b, **kw)
        planned = plan(x)
        assert tconv._core.last_call_kernel() == "phase_grid"
        assert plan.packed_bytes == grid_bytes + w.nbytes
        assert np.array_equal(got.view(np.uint8), planned.view(np.uint8))
        assert_close_in_norm(got, want, dtype)

        wide = rng.standard_normal((2, x.shape[1], 9, 42)).astype(dtype)
        x_strided = wide[..., ::2]  # rows 2 elements apart: not the grid kernel's input
        got = tconv.conv_transpose(x_strided, w, b, **kw)
        assert tconv._core.last_call_kernel().startswith("phase_positions")
        assert tconv._core.last_call_memory()["packed_weight_bytes"] == grid_bytes + w.nbytes
        assert_close_in_norm(got, reference.conv_transpose(x_strided, w, b, **kw), dtype)

        w_nan = w.copy()
        w_nan[5, 1, 2, 3] = np.nan
        got = tconv.conv_transpose(x, w_nan, b, **kw)
        assert tconv._core.last_call_kernel() == "portable"
        ref = reference.conv_transpose(x, w_nan, b, **kw)
        assert np.array_equal(np.isnan(got), np.isnan(ref))
        assert_close_in_norm(np.nan_to_num(got), np.nan_to_num(ref), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_functional_grid_call_on_two_threads_gives_each_thread_its_own_layout(
    dtype, threads_restored
):
    """On two threads a functional call's second thread packs a grid layout of its own from the
    weights (the caller's, rewritten every call, is then read by no other core): the call's
    packed weights are two layouts whenever the second thread took part, its scratch is a
    plan's, and its numbers are the plan's bits (the plan's against the reference: above)."""
    # A call of about a millisecond: the second thread joins it unless it gets no core in time
    # (a busy machine), so the calls go on until one has both threads, 200 at most.
    _, x, w, b, kw, grid_bytes = rgb_head_like(23, 16, 160, 256, dtype)
    tconv.set_num_threads(2)
    plan = tconv.ConvTranspose(w, b, **kw)
    planned = plan(x)
    assert tconv._core.last_call_kernel() == "phase_grid"
    plan_scratch = tconv._core.last_call_memory()["scratch_bytes"]
    packed = []
    while len(packed) < 200 and 2 * grid_bytes not in packed:
        got = tconv.conv_transpose(x, w, b, **kw)
        assert tconv._core.last_call_kernel() == "phase_grid"
        memory = tconv._core.last_call_memory()
        packed.append(memory["packed_weight_bytes"])
        assert memory["scratch_bytes"] == plan_scratch
        assert np.array_equal(got.view(np.uint8), planned.view(np.uint8))
    assert set(packed) <= {grid_bytes, 2 * grid_bytes}, packed
    assert 2 * grid_bytes in packed, len(packed)
    tconv.set_num_threads(1)
    tconv.conv_transpose(x, w, b, **kw)
    assert tconv._core.last_call_memory()["packed_weight_bytes"] == grid_bytes
