"""The functional call on layers with one input position (DCGAN's z -> 4x4 projection) reads the
weights as they lie: each input channel's (C_out/g, *kernel) run is a row of the shuffle's GEMM
and the output's order too (PyTorch's layout), or each (tap, output channel)'s run of input
channels a column of it, in the order of a channels_last output (Keras's), so nothing is packed
(blocks of a few panels are copied as the GEMM reaches them, Keras's turned in registers; with
AVX-512, up to 16 samples on PyTorch's weights run on the stream kernel, which copies nothing).
A channels_first plan copies all the blocks once and runs the same GEMM on them, a channels_last
one keeps its per-tap packed weights; both give the functional call's bits and the reference's
numbers."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

import tconv
from tconv import _core, reference

from conftest import assert_close_in_norm, reachable_isas

VECTOR_ISAS = [i for i in reachable_isas() if i != "portable"]
pytestmark = pytest.mark.skipif(not VECTOR_ISAS, reason="no ISA with vector kernels here")


def projection(
    batch, cin, cout_g, kernel, groups=1, dtype=np.float32, bias=True, seed=0, keras=False
):
    """x, w, b and keyword arguments; keras: channels_last data and (*kernel, C_out/g, C_in)
    weights."""
    rng = np.random.default_rng(seed)
    ones = [1] * len(kernel)
    if keras:
        x = rng.standard_normal((batch, *ones, cin * groups)).astype(dtype)
        w = rng.standard_normal((*kernel, cout_g, cin * groups)).astype(dtype)
    else:
        x = rng.standard_normal((batch, cin * groups, *ones)).astype(dtype)
        w = rng.standard_normal((cin * groups, cout_g, *kernel)).astype(dtype)
    b = rng.standard_normal(cout_g * groups).astype(dtype) if bias else None
    data_format = "channels_last" if keras else "channels_first"
    return x, w, b, dict(groups=groups, data_format=data_format)


@contextlib.contextmanager
def capped(isa):
    """tconv capped to `isa` within the block (a plan's calls included)."""
    tconv.set_max_isa(isa)
    try:
        yield
    finally:
        tconv.set_max_isa(reachable_isas()[0])


STREAM_POSITIONS = 16  # the AVX-512 stream kernel's tile


def functional_kernel(isa, batch, keras):
    """The functional call's path: the stream kernel where it applies, else the copied blocks."""
    streams = isa == "avx512" and not keras and batch <= STREAM_POSITIONS
    return "phase_shuffle_stream" if streams else "phase_shuffle_in_place"


def functional_on(isa, x, w, b, kw):
    """The functional call's core, capped to `isa`: y and the kernel that ran."""
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    out = np.empty(g.output_shape(), x.dtype)
    _core.conv_transpose(g, x, w, b, out, 0, isa, None)
    return out, _core.last_call_kernel()


# (batch, C_in/g, C_out/g, kernel, groups): columns (C_out/g x kernel) in whole vectors of 32.
LAYERS = [
    (16, 100, 32, (4, 4), 1),  # DCGAN's z -> 4x4, narrowed
    (1, 7, 8, (4, 4), 1),
    (5, 3, 16, (2, 4), 2),
    (3, 6, 8, (8,), 1),
    (2, 5, 8, (2, 2, 2), 3),
]


# The same in Keras's layout: C_out/g whole vectors of 32, so that a panel lies in one tap.
KERAS_LAYERS = [
    (16, 100, 32, (4, 4), 1),
    (1, 7, 64, (4, 4), 1),
    (5, 3, 32, (2, 4), 2),
    (3, 6, 32, (8,), 1),
    (2, 5, 32, (2, 2, 2), 3),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "layer, keras", [(la, False) for la in LAYERS] + [(la, True) for la in KERAS_LAYERS]
)
def test_functional_reads_the_weights_in_place_on_every_isa(layer, keras, dtype):
    batch, cin, cout_g, kernel, groups = layer
    x, w, b, kw = projection(batch, cin, cout_g, kernel, groups, dtype, keras=keras)
    want = reference.conv_transpose(x, w, b, **kw)
    for isa in VECTOR_ISAS:
        y, kernel_ran = functional_on(isa, x, w, b, kw)
        assert kernel_ran == functional_kernel(isa, batch, keras), isa
        assert_close_in_norm(y, want, dtype, msg=isa)


@pytest.mark.parametrize("keras", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_plan_copies_the_columns_once_and_gives_the_same_bits(bias, keras, threads_restored):
    x, w, b, kw = projection(16, 100, 32, (4, 4), bias=bias, keras=keras)
    tconv.set_num_threads(1)
    y = tconv.conv_transpose(x, w, b, **kw)
    kernel_ran = functional_kernel(reachable_isas()[0], 16, keras)
    assert _core.last_call_kernel() == kernel_ran
    copied = _core.last_call_memory()["packed_weight_bytes"]
    if kernel_ran == "phase_shuffle_stream":
        assert copied == 0
    else:
        # One block of four panels (of 32 or 16 columns) is copied at a time: an eighth or a
        # quarter of the weights here, never all of them.
        assert 0 < copied <= w.nbytes // 4 and copied % (4 * 100 * 16 * 4) == 0
    plan = tconv.ConvTranspose(w, b, **kw)
    yp = plan(x)
    assert _core.last_call_kernel() == ("phase_shuffle" if keras else "phase_shuffle_columns")
    # Every column once (whole panels: no padding), and a channels_first plan's bias per column
    # (32 channels x 16 taps), kept for its later calls: nothing is built per call.
    kept = w.nbytes + (32 * 16 * w.itemsize if bias and not keras else 0)
    assert plan.packed_bytes == kept
    memory = _core.last_call_memory()
    assert memory["packed_weight_bytes"] == kept
    if not keras:
        assert memory["scratch_bytes"] == 0
    np.testing.assert_array_equal(y, yp)
    np.testing.assert_array_equal(plan(x), yp)
    assert plan.packed_bytes == kept


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", LAYERS)
def test_plan_on_the_copied_columns_matches_the_reference(layer, dtype):
    batch, cin, cout_g, kernel, groups = layer
    x, w, b, kw = projection(batch, cin, cout_g, kernel, groups, dtype, seed=3)
    plan = tconv.ConvTranspose(w, b, **kw)
    want = reference.conv_transpose(x, w, b, **kw)
    for isa in VECTOR_ISAS:
        with capped(isa):
            y = plan(x)
            assert _core.last_call_kernel() == "phase_shuffle_columns", isa
        assert_close_in_norm(y, want, dtype, msg=isa)


@pytest.mark.parametrize("keras", [False, True])
def test_nonfinite_weights_reach_exactly_their_cells(keras):
    # Every product the in-place GEMM forms is one of the definition's: no kernel change, for
    # the functional call and for a channels_first plan on the copied columns.
    x, w, b, kw = projection(4, 9, 32, (4, 4), keras=keras)
    w[(1, 3, 5, 2) if keras else (2, 5, 1, 3)] = np.nan
    w[(3, 0, 0, 7) if keras else (7, 0, 0, 0)] = np.inf
    want = reference.conv_transpose(x, w, b, **kw)
    plan = tconv.ConvTranspose(w, b, **kw)
    for isa in VECTOR_ISAS:
        y, kernel_ran = functional_on(isa, x, w, b, kw)
        assert kernel_ran == functional_kernel(isa, 4, keras), isa
        results = [y]
        if not keras:
            with capped(isa):
                results.append(plan(x))
                assert _core.last_call_kernel() == "phase_shuffle_columns", isa
        for got in results:
            np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
            np.testing.assert_array_equal(np.isposinf(got), np.isposinf(want))
            np.testing.assert_array_equal(np.isneginf(got), np.isneginf(want))
            finite = np.isfinite(want)
            assert_close_in_norm(got[finite], want[finite], np.float32, msg=isa)


@pytest.mark.parametrize(
    "why",
    [
        "partial vector of columns",
        "weights not dense",
        "keras: a tap's columns not whole panels",
        "keras: weights not dense",
        "padding",
    ],
)
def test_other_layers_keep_the_packed_shuffle(why):
    if why == "partial vector of columns":
        x, w, b, kw = projection(4, 6, 5, (3, 3))  # 45 columns
    elif why.startswith("keras"):
        # 6 output channels per tap: no vector width divides them.
        x, w, b, kw = projection(4, 6, 6 if "panels" in why else 32, (4, 4), keras=True)
    else:
        x, w, b, kw = projection(4, 6, 8, (4, 4))
    if "weights not dense" in why:
        w = np.asfortranarray(w)
    if why == "padding":
        kw["padding"] = 1
    y = tconv.conv_transpose(x, w, b, **kw)
    assert _core.last_call_kernel() not in ("phase_shuffle_in_place", "phase_shuffle_stream")
    assert_close_in_norm(y, reference.conv_transpose(x, w, b, **kw), np.float32)
    tconv.ConvTranspose(w, b, **kw)(x)
    # A plan's own copy of the weights is dense, whatever the caller's layout.
    plan_kernel = _core.last_call_kernel()
    if why == "weights not dense":
        assert plan_kernel == "phase_shuffle_columns"
    else:
        assert plan_kernel != "phase_shuffle_columns"


# Layers whose columns are no whole number of panels (45, 28 and 54 columns): the per-tap
# packed shuffle.
PACKED_LAYERS = [(4, 6, 5, (3, 3), 1), (3, 5, 7, (4,), 2), (5, 7, 6, (3, 3), 1)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "layer, kernel_name",
    [(la, "phase_shuffle_columns") for la in LAYERS]
    + [(la, "phase_shuffle") for la in PACKED_LAYERS],
)
def test_plan_on_two_threads_gives_the_same_bits(layer, kernel_name, dtype):
    # Two threads take runs of whole blocks of columns, or (the per-tap packed shuffle) whole
    # panels of output channels, as every tap of a channel lies in one cache line: the same
    # numbers as one thread, bit for bit, and the reference's.
    batch, cin, cout_g, kernel, groups = layer
    x, w, b, kw = projection(batch, cin, cout_g, kernel, groups, dtype)
    plan = tconv.ConvTranspose(w, b, **kw)
    before = tconv.get_num_threads()
    try:
        tconv.set_num_threads(1)
        one = plan(x)
        tconv.set_num_threads(2)
        two = plan(x)
        assert _core.last_call_kernel() == kernel_name
    finally:
        tconv.set_num_threads(before)
    np.testing.assert_array_equal(one, two)
    assert_close_in_norm(two, reference.conv_transpose(x, w, b, **kw), dtype)


def test_plan_keeps_the_columns_beside_its_other_packs():
    # One plan, inputs of one position and of several in turn: each call runs on the layout
    # its input needs, packed once and kept, and gives the reference's numbers.
    rng = np.random.default_rng(1)
    w = rng.standard_normal((7, 32, 4, 4)).astype(np.float32)
    b = rng.standard_normal(32).astype(np.float32)
    plan = tconv.ConvTranspose(w, b, stride=2)
    kept = []
    for shape in [(3, 7, 1, 1), (2, 7, 3, 2), (5, 7, 1, 1), (2, 7, 1, 3)]:
        x = rng.standard_normal(shape).astype(np.float32)
        y = plan(x)
        one_position = shape[2:] == (1, 1)
        assert (_core.last_call_kernel() == "phase_shuffle_columns") == one_position, shape
        assert_close_in_norm(y, reference.conv_transpose(x, w, b, stride=2), np.float32)
        kept.append(plan.packed_bytes)
    # The columns (and their bias) from the first call, the phase driver's blocks added by the
    # second, nothing more after.
    assert kept[0] == w.nbytes + 32 * 16 * 4
    assert kept[1] > kept[0] and kept[1] == kept[2] == kept[3]


needs_stream = pytest.mark.skipif(
    "avx512" not in VECTOR_ISAS, reason="the stream kernel is AVX-512's"
)

# (batch, C_in/g, C_out/g, kernel, groups): one to 16 samples, input channels below, at and
# past the kernel's blocks of 8 and 16 rows, columns in one or several blocks of panels.
STREAM_LAYERS = [
    (1, 100, 32, (4, 4), 1),
    (4, 7, 8, (4, 4), 1),
    (8, 16, 16, (2, 4), 2),
    (9, 17, 32, (8,), 1),
    (12, 33, 8, (2, 2, 2), 3),
    (16, 100, 64, (4, 4), 1),
    (16, 300, 32, (4, 4), 2),
]


@needs_stream
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", STREAM_LAYERS)
def test_stream_kernel_gives_the_plans_bits(layer, dtype, bias):
    # The stream kernel sums each output over the input channels in the order the plan's
    # copied panels do, from the bias: the same bits, and the reference's numbers.
    batch, cin, cout_g, kernel, groups = layer
    x, w, b, kw = projection(batch, cin, cout_g, kernel, groups, dtype, bias=bias, seed=5)
    y, kernel_ran = functional_on("avx512", x, w, b, kw)
    assert kernel_ran == "phase_shuffle_stream"
    with capped("avx512"):
        yp = tconv.ConvTranspose(w, b, **kw)(x)
        assert _core.last_call_kernel() == "phase_shuffle_columns"
    np.testing.assert_array_equal(y, yp)
    assert_close_in_norm(y, reference.conv_transpose(x, w, b, **kw), dtype)


@needs_stream
def test_stream_kernel_copies_no_weights(threads_restored):
    x, w, b, kw = projection(16, 100, 32, (4, 4), groups=2)
    tconv.set_num_threads(1)
    with capped("avx512"):
        tconv.conv_transpose(x, w, b, **kw)
        assert _core.last_call_kernel() == "phase_shuffle_stream"
        memory = _core.last_call_memory()
    assert memory["packed_weight_bytes"] == 0
    # The input by channel and the bias of the columns of one item (four panels of 32), not
    # of every (output channel, tap) column (2 x 32 x 16).
    assert memory["scratch_bytes"] == (x.size + 4 * 32) * x.itemsize


@needs_stream
def test_seventeen_samples_take_the_copied_blocks():
    x, w, b, kw = projection(17, 20, 32, (4, 4))
    y, kernel_ran = functional_on("avx512", x, w, b, kw)
    assert kernel_ran == "phase_shuffle_in_place"
    y16, kernel16 = functional_on("avx512", x[:16], w, b, kw)
    assert kernel16 == "phase_shuffle_stream"
    np.testing.assert_array_equal(y[:16], y16)


@needs_stream
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stream_kernel_on_two_threads_gives_the_same_bits(dtype, threads_restored):
    # Two threads take runs of whole blocks of columns: one thread's numbers, bit for bit.
    x, w, b, kw = projection(11, 40, 32, (4, 4), groups=2, dtype=dtype, seed=7)
    results = []
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        with capped("avx512"):
            results.append(tconv.conv_transpose(x, w, b, **kw))
            assert _core.last_call_kernel() == "phase_shuffle_stream"
    np.testing.assert_array_equal(results[0], results[1])
    assert_close_in_norm(results[1], reference.conv_transpose(x, w, b, **kw), dtype)
