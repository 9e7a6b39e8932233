"""The dispatch's driver list (tconv._core.drivers()): every driver computes the reference's
numbers on every layer it takes, whatever the thresholds that normally route layers to it; the
dispatch runs the first driver of the list that takes a layer; and every driver is reached."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tconv
from tconv import _core, reference

from conftest import (
    assert_close_in_max_norm,
    assert_close_in_norm,
    channels,
    examples,
    layer_inputs,
    layers,
    reachable_isas,
)

# The drivers as the C++ header documents them, in the dispatch's order.
DRIVERS = ["depthwise", "phase_shuffle", "direct", "phase_grid", "phase", "portable"]
VECTOR_ISAS = [i for i in reachable_isas() if i != "portable"]


def driver_of(kernel: str) -> str:
    """The driver a last_call_kernel() name belongs to (the phase driver's variants are
    phase_channel*, phase_positions*; the shuffle's phase_shuffle_in_place,
    phase_shuffle_stream and phase_shuffle_columns; the direct driver's direct_cells and direct_phases; the depthwise
    driver's depthwise_pairs)."""
    if kernel in DRIVERS:
        return kernel
    if kernel == "depthwise_pairs":
        return "depthwise"
    if kernel in ("phase_shuffle_in_place", "phase_shuffle_stream", "phase_shuffle_columns"):
        return "phase_shuffle"
    if kernel in ("direct_cells", "direct_phases"):
        return "direct"
    assert kernel.startswith(("phase_channel", "phase_positions")), kernel
    return "phase"


def run_on(driver: str | None, isa: str, x, w, b, kw) -> tuple[np.ndarray, str] | None:
    """y and the kernel that ran, on `driver` (None: the dispatch's pick) capped to `isa`;
    None where the driver does not take the layer."""
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    out = np.empty(g.output_shape(), x.dtype)
    try:
        _core.conv_transpose(g, x, w, b, out, 0, isa, driver)
    except ValueError as e:
        if "does not take this layer" in str(e) or "declined this layer" in str(e):
            return None
        raise
    return out, _core.last_call_kernel()


def test_the_list_is_the_documented_order():
    assert _core.drivers() == DRIVERS


# Depthwise and grouped channel counts, kernels equal to the stride (the one-GEMM shuffle) and
# free ones, every size the driver thresholds look at.
ANY_DRIVER = layers(
    channels=st.one_of(
        channels(
            groups=st.sampled_from([1, 1, 2, 3]),
            cin_g=st.integers(1, 6),
            cout_g=st.sampled_from([1, 2, 3, 4, 8, 17]),
        ),
        st.tuples(st.sampled_from([1, 1, 2, 3]), st.just(1), st.just(1)),
    ),
    ranks=(1, 2, 2, 3),
    dilation=st.integers(1, 2),
    outer={2: st.integers(1, 8), 3: st.integers(1, 4)},
    last={1: st.integers(1, 20), 2: st.integers(1, 8), 3: st.integers(1, 4)},
    geometries=("free", "kernel_is_stride"),
    pads="symmetric",
    outpad=False,
    batch=st.integers(1, 2),
    layouts=("c",),
)


@pytest.mark.hypothesis
@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=ANY_DRIVER)
def test_every_driver_that_takes_a_layer_gives_the_reference(cfg):
    x, w, b, kw = layer_inputs(cfg)
    want = reference.conv_transpose(x, w, b, **kw)
    for isa in reachable_isas():
        taken, kernels = [], {}
        for driver in DRIVERS:
            got = run_on(driver, isa, x, w, b, kw)
            if got is None:
                continue
            y, kernels[driver] = got
            assert driver_of(kernels[driver]) == driver
            assert_close_in_norm(y, want, cfg["dtype"], msg=f"{driver} on {isa}")
            taken.append(driver)
        assert taken[-1] == "portable"  # it takes every layer and closes the list
        y, kernel = run_on(None, isa, x, w, b, kw)
        # The dispatch sends a layer to direct where its phases path takes it with 5-12 output
        # channels per group (the path's shape rule is the core's, after it drops dims of one
        # cell, one tap and one output) or the pack does not pay (weights of 256 KiB or more,
        # which these small layers never have).
        by_phases = 5 <= cfg["cout_g"] <= 12 and kernels.get("direct") == "direct_phases"
        routed = [d for d in taken if d != "direct" or by_phases]
        assert driver_of(kernel) == routed[0], f"dispatch on {isa}: {kernel}, list: {taken}"
        if isa == "portable":
            # The phase drivers need an ISA's kernels; depthwise has scalar ones.
            assert set(taken) <= {"depthwise", "portable"}


def _layer(cin, cout_g, size, kernel, stride, padding=0, groups=1, channels_last=False, **extra):
    rng = np.random.default_rng(3)
    rank = len(size)
    if channels_last:
        x = rng.standard_normal((1, *size, cin)).astype(np.float32)
        w = rng.standard_normal((*[kernel] * rank, cout_g, cin)).astype(np.float32)
    else:
        x = rng.standard_normal((1, cin, *size)).astype(np.float32)
        w = rng.standard_normal((cin, cout_g, *[kernel] * rank)).astype(np.float32)
    kw = dict(
        stride=stride,
        padding=padding,
        groups=groups,
        data_format="channels_last" if channels_last else "channels_first",
        **extra,
    )
    return x, w, kw


# One layer per driver that the dispatch sends there on an ISA with vector kernels.
ROUTED = {
    "depthwise": _layer(8, 1, (10, 10), 3, 2, padding=1, groups=8),
    "phase_shuffle": _layer(16, 8, (5, 5), 2, 2, channels_last=True),
    "direct": _layer(512, 32, (6, 6), 4, 2, padding=1),  # 1 MiB of weights, 36 cells
    "phase_grid": _layer(4, 1, (12, 12), 9, 3, padding=4, output_padding=2),
    "phase": _layer(16, 16, (6, 6), 4, 2, padding=1),
}


@pytest.mark.skipif(not VECTOR_ISAS, reason="no ISA with vector kernels on this machine")
@pytest.mark.parametrize("driver", list(ROUTED))
@pytest.mark.parametrize("isa", VECTOR_ISAS)
def test_each_driver_is_reached_by_the_dispatch(driver, isa):
    x, w, kw = ROUTED[driver]
    y, kernel = run_on(None, isa, x, w, None, kw)
    # The grid tiles exist on AVX-512 only; elsewhere the phase driver takes the layer.
    want = "phase" if driver == "phase_grid" and isa != "avx512" else driver
    assert driver_of(kernel) == want
    assert_close_in_norm(y, reference.conv_transpose(x, w, None, **kw), np.float32)


def test_portable_is_reached_by_nonfinite_weights():
    x, w, kw = ROUTED["phase"]
    w = w.copy()
    w[0, 0, 0, 0] = np.nan
    for isa in reachable_isas():
        y, kernel = run_on(None, isa, x, w, None, kw)
        assert kernel == "portable"
        # The NaN weight reaches the cells its tap feeds and no others.
        assert np.isnan(y).any() and not np.isnan(y).all()


@pytest.mark.parametrize("value", [np.nan, np.inf])
@pytest.mark.parametrize(
    "layer",
    [
        _layer(16, 16, (6, 6), 4, 2, padding=1),  # PyTorch weights
        _layer(16, 16, (6, 6), 4, 2, padding=1, channels_last=True),  # Keras weights
        _layer(12, 3, (7, 7), 3, 2),  # tiny C_out: the position kernels
    ],
    ids=["torch_layout", "keras_layout", "tiny_cout"],
)
def test_functional_call_with_nonfinite_weights_runs_the_portable_kernel(layer, value):
    x, w, kw = layer
    w = w.copy()
    w.flat[w.size // 2] = value
    want = reference.conv_transpose(x, w, None, **kw)
    y = tconv.conv_transpose(x, w, None, **kw)
    assert _core.last_call_kernel() == "portable"
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))


def test_a_driver_that_does_not_take_the_layer_says_so():
    x, w, kw = ROUTED["phase"]
    g = tconv.ConvTranspose(w, None, **kw)._resolve(x.shape, None)[0]
    out = np.empty(g.output_shape(), x.dtype)
    with pytest.raises(ValueError, match="the driver 'depthwise' does not take this layer"):
        _core.conv_transpose(g, x, w, None, out, 0, None, "depthwise")
    with pytest.raises(ValueError, match="unknown driver 'fast'; the drivers are depthwise, "):
        _core.conv_transpose(g, x, w, None, out, 0, None, "fast")


# The direct driver over every geometry it reads: any stride, dilation and padding (crops
# beyond the kernel included), output_padding, groups, C_out/g x taps below and above a panel,
# inputs in place or strided.
DIRECT_LAYERS = layers(
    channels=channels(
        groups=st.sampled_from([1, 1, 2, 3]),
        cin_g=st.integers(1, 6),
        cout_g=st.sampled_from([1, 2, 3, 5, 8, 17]),
    ),
    pads=("pairs", "crop", "symmetric"),
    channels_last=st.sampled_from([False, False, False, True]),
    layouts=("c", "c", "strided", "fortran"),
    max_products=40000,
)


def direct_kernel(isa: str, x: np.ndarray, w: np.ndarray, kw: dict) -> str:
    """The direct driver's kernel. The cell kernel (AVX-512 only) holds an image's cells in its
    vector lanes, so it takes one image's cells where they fit one tile (four vectors: 64
    float32, 32 float64): by phases where every output dim is stride x input (any batch; cells
    that are not one element apart copied so), otherwise, where they lie one element apart, with
    a col2im for one image. With 5-12 output channels per group it takes any number of cells by
    phases. By phases it reads weights in any layout, but those not dense per input channel
    (Keras's) only with 128 or more input channels per group; its other paths need them dense.
    Dims of one cell, one tap and one output, unpadded, do not count (the core drops them, all
    but the last where every dim is one)."""
    g = tconv.ConvTranspose(w, None, **kw)._resolve(x.shape, None)[0]
    first_spatial = 1 if g.channels_last else 2
    kept = [
        d
        for d in range(g.rank)
        if (g.input[d], g.kernel[d], g.output[d], g.pad_lo[d]) != (1, 1, 1, 0)
    ] or [g.rank - 1]
    step, unit = x.itemsize, True
    for d in reversed(kept):
        if g.input[d] > 1:
            unit = unit and x.strides[first_spatial + d] == step
            step *= g.input[d]
    cells = int(np.prod(g.input))
    tile = cells <= 4 * 64 // x.itemsize
    grid = all(g.output[d] == g.stride[d] * g.input[d] for d in kept)
    cout_g, cin_g = g.out_channels // g.groups, g.in_channels // g.groups
    k_axis, co_axis = (0, g.rank) if g.channels_last else (2, 1)
    taps, dense = 1, True
    for d in reversed(kept):
        dense = dense and (g.kernel[d] == 1 or w.strides[k_axis + d] == taps * w.itemsize)
        taps *= g.kernel[d]
    dense = dense and (cout_g == 1 or w.strides[co_axis] == taps * w.itemsize)
    along = dense or cin_g >= 128
    if isa == "avx512" and grid and along and (tile or 5 <= cout_g <= 12):
        return "direct_phases"
    assert dense, "the driver declines this layer"
    return "direct_cells" if isa == "avx512" and unit and tile and g.batch == 1 else "direct"


@pytest.mark.hypothesis
@pytest.mark.skipif(not VECTOR_ISAS, reason="no ISA with vector kernels on this machine")
@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cfg=DIRECT_LAYERS)
def test_direct_gives_the_reference(cfg):
    x, w, b, kw = layer_inputs(cfg)
    want = reference.conv_transpose(x, w, b, **kw)
    for isa in VECTOR_ISAS:
        got = run_on("direct", isa, x, w, b, kw)
        if got is None:
            # It reads PyTorch-layout weights (on its other paths than by phases) and an input
            # whose cells lie at one stride.
            assert cfg["channels_last"] or cfg["layout"] != "c"
            continue
        y, kernel = got
        assert kernel == direct_kernel(isa, x, w, kw), (kernel, isa)
        assert_close_in_norm(y, want, cfg["dtype"], msg=f"direct on {isa}")


# The cell kernel's tiles: cell counts around its vector width (8 float64, 16 float32 lanes)
# up to its four-vector tile, columns around its six-column tile, groups, rank 3, a bias, and
# input channels per group past its blocks of 64 weight rows (129: two whole blocks and one row);
# past one tile (or one image) the driver keeps its channel kernel.
@pytest.mark.skipif("avx512" not in VECTOR_ISAS, reason="the cell kernel is AVX-512's")
@pytest.mark.parametrize(
    "size",
    [
        (1,),
        (7,),
        (8,),
        (9,),
        (15,),
        (16,),
        (17,),
        (31,),
        (32,),
        (33,),
        (63,),
        (64,),
        (65,),
        (100,),
        (3, 5),
        (4, 8),
        (2, 2, 3),
    ],
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("groups, cout_g, batch", [(1, 7, 1), (2, 3, 1), (1, 4, 2)])
@pytest.mark.parametrize("cin_g", [5, 129])
def test_direct_cells_gives_the_reference(size, dtype, groups, cout_g, batch, cin_g):
    rng = np.random.default_rng(len(size) * 100 + size[-1])
    cin = cin_g * groups
    x = rng.standard_normal((batch, cin, *size)).astype(dtype)
    w = rng.standard_normal((cin, cout_g, *[3] * len(size))).astype(dtype)
    b = rng.standard_normal(cout_g * groups).astype(dtype)
    kw = dict(stride=2, padding=1, groups=groups)
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    y = np.empty(g.output_shape(), dtype)
    _core.conv_transpose(g, x, w, b, y, 0, "avx512", "direct")
    assert _core.last_call_kernel() == direct_kernel("avx512", x, w, kw)
    assert_close_in_norm(y, reference.conv_transpose(x, w, b, **kw), dtype)


# A layer of each direct path the dispatch takes on AVX-512: by phases (outputs 2x the input;
# 1 MiB of weights) and with a col2im (k3 s2 p1: 11 outputs from 6; 1.1 MiB, 512 input channels).
DIRECT_PATHS = {
    "phases": ROUTED["direct"],
    "cells": _layer(512, 64, (6, 6), 3, 2, padding=1),
}


@pytest.mark.skipif(not VECTOR_ISAS, reason="no ISA with vector kernels on this machine")
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("where", ["weight", "input"])
@pytest.mark.parametrize("path", list(DIRECT_PATHS))
def test_direct_passes_nonfinite_values_as_the_definition_does(value, where, path):
    # Its products are the definition's only: no scan of the weights, no other kernel.
    x, w, kw = DIRECT_PATHS[path]
    x, w = x.copy(), w.copy()
    if where == "weight":
        # Tap (0, 2): its products with input row 0 fall in the cropped padding (col2im: the
        # GEMM forms them, none may reach y; by phases: the lanes of row 0 are masked).
        w[5, 7, 0, 2] = value
    else:
        x[0, 9, 0, 5] = value
    want = reference.conv_transpose(x, w, None, **kw)
    assert np.isnan(want).any() or np.isinf(want).any()
    for isa in VECTOR_ISAS:
        y, kernel = run_on(None, isa, x, w, None, kw)
        assert kernel == direct_kernel(isa, x, w, kw)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
        finite = np.isfinite(want)
        assert_close_in_max_norm(y[finite], want[finite], np.float32)


# The phases path: every output dim stride x input (kernel = stride + 2 * padding, or with
# output_padding and dilation to match), in 1-3 dims, cells around the vector width and up to
# the four-vector tile, groups, batches, input channels past a block of 64 weight rows, and
# Inf or NaN in either operand where the definition's products carry them.
PHASE_LAYERS = [
    # (size, kernel, stride, padding, output_padding, dilation)
    ((8, 8), 4, 2, 1, 0, 1),
    ((5, 7), 4, 2, 1, 0, 1),
    ((4, 4), 2, 2, 0, 0, 1),
    ((6, 6), 3, 2, 1, 1, 1),
    ((3, 5), 3, 1, 1, 0, 1),
    ((4, 3), 3, 4, 1, 1, 2),
    ((17,), 16, 8, 4, 0, 1),
    ((64,), 4, 2, 1, 0, 1),
    ((2, 3, 4), 4, 2, 1, 0, 1),
    ((5, 6), 1, 2, 0, 1, 1),  # odd phases have no tap: the bias alone
]


def phases_operands(layer, channels, dtype, special, keras):
    """x, w, b and keyword arguments of a PHASE_LAYERS layer with (groups, C_out/g, batch,
    C_in/g); keras: channels_last data and (*kernel, C_out/g, C_in) weights; special: a NaN
    weight or an Inf input."""
    size, kernel, stride, padding, output_padding, dilation = layer
    groups, cout_g, batch, cin_g = channels
    rng = np.random.default_rng(sum(size) * (5 if keras else 7) + kernel)
    cin, taps = cin_g * groups, [kernel] * len(size)
    if keras:
        x = rng.standard_normal((batch, *size, cin)).astype(dtype)
        w = rng.standard_normal((*taps, cout_g, cin)).astype(dtype)
    else:
        x = rng.standard_normal((batch, cin, *size)).astype(dtype)
        w = rng.standard_normal((cin, cout_g, *taps)).astype(dtype)
    b = rng.standard_normal(cout_g * groups).astype(dtype)
    if special == "nan_weight":
        w.flat[w.size // 3] = np.nan
    elif special == "inf_input":
        x.flat[x.size // 2] = np.inf
    kw = dict(
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
        data_format="channels_last" if keras else "channels_first",
    )
    return x, w, b, kw


def assert_reference_with_nonfinite(y, x, w, b, kw, dtype):
    """y is the reference's: its NaN and Inf where the reference has them, close elsewhere."""
    want = reference.conv_transpose(x, w, b, **kw)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
    finite = np.isfinite(want)
    assert_close_in_max_norm(y[finite], want[finite], dtype)


@pytest.mark.skipif("avx512" not in VECTOR_ISAS, reason="the cell kernel is AVX-512's")
@pytest.mark.parametrize("layer", PHASE_LAYERS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [(1, 7, 1, 5), (2, 3, 2, 70), (3, 13, 1, 9)])
@pytest.mark.parametrize("special", [None, "nan_weight", "inf_input"])
def test_direct_phases_gives_the_reference(layer, dtype, channels, special):
    x, w, b, kw = phases_operands(layer, channels, dtype, special, keras=False)
    size, stride, cout_g = layer[0], layer[2], channels[1]
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    y = np.empty(g.output_shape(), dtype)
    assert all(o == stride * i for o, i in zip(y.shape[2:], size))  # the layer is the path's
    _core.conv_transpose(g, x, w, b, y, 0, "avx512", "direct")
    fits = np.prod(size) <= 4 * 64 // x.itemsize or 5 <= cout_g <= 12
    assert _core.last_call_kernel() == ("direct_phases" if fits else "direct")
    assert_reference_with_nonfinite(y, x, w, b, kw, dtype)


# The phases path on channels_last data with Keras-ordered weights: the input copied with its
# cells one element apart, the weights read along the input channels at their strides; 128 or
# more input channels per group (fewer go to the pack), groups, batches, Inf and NaN.
@pytest.mark.skipif("avx512" not in VECTOR_ISAS, reason="the cell kernel is AVX-512's")
@pytest.mark.parametrize("layer", PHASE_LAYERS[:7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels", [(1, 7, 1, 128), (2, 3, 2, 130)])
@pytest.mark.parametrize("special", [None, "nan_weight", "inf_input"])
def test_direct_phases_reads_channels_last_operands(layer, dtype, channels, special):
    x, w, b, kw = phases_operands(layer, channels, dtype, special, keras=True)
    size, cout_g = layer[0], channels[1]
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    y = np.empty(g.output_shape(), dtype)
    fits = np.prod(size) <= 4 * 64 // x.itemsize or 5 <= cout_g <= 12
    if not fits:
        # Its other paths read the weights dense per input channel only.
        with pytest.raises(ValueError, match="does not take this layer"):
            _core.conv_transpose(g, x, w, b, y, 0, "avx512", "direct")
        return
    _core.conv_transpose(g, x, w, b, y, 0, "avx512", "direct")
    assert _core.last_call_kernel() == "direct_phases"
    # The copy of the input is scratch of the call.
    assert _core.last_call_memory()["scratch_bytes"] >= x.nbytes
    assert_reference_with_nonfinite(y, x, w, b, kw, dtype)


@pytest.mark.skipif("avx512" not in VECTOR_ISAS, reason="the cell kernel is AVX-512's")
@pytest.mark.parametrize(
    "cin, groups, want",
    [
        (128, 1, "direct_phases"),  # Keras's weights read along 128 input channels in place
        (256, 2, "direct_phases"),
        (128, 2, "phase"),  # 64 per group: packed
    ],
)
def test_a_channels_last_call_reads_long_channel_runs_in_place(cin, groups, want):
    x, w, kw = _layer(cin, 64, (8, 8), 4, 2, padding=1, groups=groups, channels_last=True)
    b = np.random.default_rng(7).standard_normal(64 * groups).astype(np.float32)
    y = tconv.conv_transpose(x, w, b, **kw)
    kernel, memory = _core.last_call_kernel(), _core.last_call_memory()
    assert (kernel if want == "direct_phases" else driver_of(kernel)) == want, kernel
    assert (memory["packed_weight_bytes"] == 0) == (want == "direct_phases")
    assert_close_in_norm(y, reference.conv_transpose(x, w, b, **kw), np.float32)
    # The same layer on NCHW data and PyTorch's weights sums in the same order.
    y_first = tconv.conv_transpose(
        np.ascontiguousarray(np.moveaxis(x, -1, 1)),
        np.ascontiguousarray(w.transpose(3, 2, 0, 1)),
        b,
        **dict(kw, data_format="channels_first"),
    )
    if want == "direct_phases":
        np.testing.assert_array_equal(np.moveaxis(y_first, 1, -1), y)


# Layers of 5-12 output channels per group on the phases path past one tile of cells: chunks of
# whole lines that start on a lane vector (lines of 36, 17 and 9 cells: chunks of 144, 272 and
# 144), 1-D and 3-D, several groups or one, a NaN weight and an Inf input.
NARROW_LAYERS = [
    # (size, kernel, stride, padding, output_padding, groups, cout_g, cin_g, batch)
    ((40, 36), 4, 2, 1, 0, 2, 8, 6, 1),
    ((33, 17), 4, 2, 1, 0, 3, 5, 4, 2),
    ((24, 9), 3, 2, 1, 1, 1, 12, 9, 1),
    ((900,), 2, 2, 0, 0, 4, 7, 3, 1),
    ((6, 10, 12), 2, 2, 0, 0, 2, 6, 5, 1),
]


@pytest.mark.skipif("avx512" not in VECTOR_ISAS, reason="the cell kernel is AVX-512's")
@pytest.mark.parametrize(
    "size, kernel, stride, padding, output_padding, groups, cout_g, cin_g, batch", NARROW_LAYERS
)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("special", [None, "nan_weight", "inf_input"])
def test_narrow_groups_run_by_phases_over_chunks_of_cells(
    size,
    kernel,
    stride,
    padding,
    output_padding,
    groups,
    cout_g,
    cin_g,
    batch,
    dtype,
    threads,
    special,
    threads_restored,
):
    rng = np.random.default_rng(sum(size) + cout_g)
    x = rng.standard_normal((batch, cin_g * groups, *size)).astype(dtype)
    w = rng.standard_normal((cin_g * groups, cout_g, *[kernel] * len(size))).astype(dtype)
    b = rng.standard_normal(cout_g * groups).astype(dtype)
    if special == "nan_weight":
        w.flat[w.size // 3] = np.nan
    elif special == "inf_input":
        x.flat[x.size // 2] = np.inf
    kw = dict(stride=stride, padding=padding, output_padding=output_padding, groups=groups)
    tconv.set_num_threads(threads)
    want = reference.conv_transpose(x, w, b, **kw)
    plan = tconv.ConvTranspose(w, b, **kw)
    for y in (tconv.conv_transpose(x, w, b, **kw), plan(x)):
        # The dispatch's pick for the functional call and the plan alike.
        assert _core.last_call_kernel() == "direct_phases"
        # C holds chunks of cells, not every cell of the image: the chunked path ran.
        c_all = cout_g * np.prod(size) * stride ** len(size) * x.itemsize
        assert 0 < _core.last_call_memory()["scratch_bytes"] < c_all
        np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
        np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
        finite = np.isfinite(want)
        assert_close_in_max_norm(y[finite], want[finite], dtype)


@pytest.mark.skipif("avx512" not in VECTOR_ISAS, reason="the cell kernel is AVX-512's")
@pytest.mark.parametrize("size, groups", [((8, 8), 1), ((20, 20), 2)])
def test_narrow_groups_give_the_same_bits_on_any_thread_count(size, groups, threads_restored):
    # Items are (group, chunk of cells, image): one group of one chunk still splits by image.
    x, w, kw = _layer(16 * groups, 8, size, 4, 2, padding=1, groups=groups)
    x = np.concatenate([x, 2 * x, -x])
    b = np.random.default_rng(8).standard_normal(8 * groups).astype(np.float32)
    ys = []
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        ys.append(tconv.conv_transpose(x, w, b, **kw))
        assert _core.last_call_kernel() == "direct_phases"
    np.testing.assert_array_equal(ys[0], ys[1])
    assert_close_in_max_norm(ys[0], reference.conv_transpose(x, w, b, **kw), np.float32)


@pytest.mark.skipif(not VECTOR_ISAS, reason="no ISA with vector kernels on this machine")
@pytest.mark.parametrize(
    "cout_g, want",
    [
        (4, {"avx512": "phase_grid", "avx2": "phase_positions"}),  # tiny C_out: its own kernels
        (5, {"avx512": "direct_phases", "avx2": "phase_channel_groups"}),
        (12, {"avx512": "direct_phases", "avx2": "phase_channel_groups"}),
        (13, {"avx512": "phase_channel_groups", "avx2": "phase_channel_groups"}),
    ],
)
def test_the_phases_path_serves_groups_of_5_to_12_channels(cout_g, want):
    x, w, kw = _layer(64, cout_g, (32, 32), 4, 2, padding=1, groups=8)
    b = np.random.default_rng(7).standard_normal(cout_g * 8).astype(np.float32)
    want_y = reference.conv_transpose(x, w, b, **kw)
    for isa in VECTOR_ISAS:
        y, kernel = run_on(None, isa, x, w, b, kw)
        assert kernel == want[isa], isa
        assert_close_in_norm(y, want_y, np.float32)
    if "avx512" in VECTOR_ISAS:
        # A plan as well: the phases path packs nothing.
        tconv.ConvTranspose(w, b, **kw)(x)
        assert _core.last_call_kernel() == want["avx512"]


def _weights_in_memory_order(w, order):
    """w's values, laid out in memory along `order` of its axes (a strided view of a copy)."""
    return np.moveaxis(np.ascontiguousarray(np.transpose(w, order)), range(w.ndim), order)


# Each way the phase pack reads weights: PyTorch's layout (in register transposes; from 64 KiB
# on two threads share it), its kernel axes not dense, output channels innermost, Keras's
# layout, and the GridCall and shuffle layouts built from the packed blocks. (Output padding 1:
# 7 outputs from 3, not the direct driver's phases, which would take these weights unpacked.)
_BIG = _layer(256, 72, (3, 3), 4, 2, padding=1, output_padding=1)
PACKED_LAYERS = {
    "torch": _BIG,
    "torch_kernel_not_dense": (_BIG[0], _weights_in_memory_order(_BIG[1], (0, 2, 1, 3)), _BIG[2]),
    "cout_innermost": (_BIG[0], _weights_in_memory_order(_BIG[1], (0, 2, 3, 1)), _BIG[2]),
    "keras": _layer(64, 24, (5, 5), 4, 2, padding=1, channels_last=True),
    "grid": ROUTED["phase_grid"],
    "shuffle": ROUTED["phase_shuffle"],
}


@pytest.mark.skipif(not VECTOR_ISAS, reason="no ISA with vector kernels on this machine")
@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("value", [np.nan, -np.inf])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
@pytest.mark.parametrize("name", list(PACKED_LAYERS))
def test_the_pack_finds_a_nonfinite_weight_wherever_it_lies(name, where, value, threads):
    # A functional call learns whether its weights are finite from its own pack.
    x, w, kw = PACKED_LAYERS[name]
    before = tconv.get_num_threads()
    tconv.set_num_threads(threads)
    try:
        tconv.conv_transpose(x, w, None, **kw)
        assert _core.last_call_kernel() != "portable", "finite weights must take a vector kernel"
        w = w.copy(order="K")
        at = {
            "first": (0,) * w.ndim,
            "middle": tuple(n // 2 for n in w.shape),
            "last": tuple(n - 1 for n in w.shape),
        }[where]
        w[at] = value
        want = reference.conv_transpose(x, w, None, **kw)
        y = tconv.conv_transpose(x, w, None, **kw)
        assert _core.last_call_kernel() == "portable"
    finally:
        tconv.set_num_threads(before)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(want))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(want))
