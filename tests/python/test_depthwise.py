"""The depthwise driver (one input channel per group) against the naive scatter reference.

Drawn to reach its corners: ranks 1-3, both data formats and dtypes, strides above and below
the kernel, dilations, asymmetric and Keras 'same' padding, output_padding, channel counts
around the vector width (the channels_last tail) and channel multipliers (channels_first),
rows shorter and longer than a vector (the stride-2 interleave and its ragged end), strided
inputs, and out= prefilled with NaN so that an output left unwritten shows. Every case runs at
the best ISA and the portable one, and on 1 and 2 threads, which must agree bit for bit.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import tconv
from tconv import _core
from tconv.reference import conv_transpose as reference

from conftest import (
    assert_close,
    assert_close_in_norm,
    channels,
    examples,
    layer_inputs,
    layers,
    reachable_isas,
)

ISAS = tconv.available_isas()


@pytest.fixture
def restore_runtime():
    threads = tconv.get_num_threads()
    yield
    tconv.set_max_isa(ISAS[0])
    tconv.set_num_threads(threads)


# One input channel per group (1-40 of them), channel multipliers, every padding form; long
# last dims cross a few vectors of outputs. x strided along its last axis: for channels_last
# the channel axis, which the driver must decline or handle.
DEPTHWISE = layers(
    channels=channels(st.integers(1, 40), st.just(1), st.sampled_from([1, 1, 1, 2, 3])),
    outer={2: st.integers(1, 4), 3: st.integers(1, 3)},
    last={1: st.integers(1, 40), 2: st.integers(1, 24), 3: st.integers(1, 12)},
    pads=("symmetric", "crop", "same"),
    batch=st.integers(1, 2),
    layouts=("c", "last_strided"),
)


# The fixture restores the runtime once, after all examples; each example sets what it uses.
@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(layer=DEPTHWISE)
def test_matches_the_reference_on_every_isa_and_thread_count(restore_runtime, layer):
    x, w, b, kw = layer_inputs(layer)
    try:
        want = reference(x, w, b, **kw)
    except tconv.ShapeError:
        assume(False)  # 'same' with an output_padding that leaves no cell
    for isa in dict.fromkeys([ISAS[0], "portable"]):
        tconv.set_max_isa(isa)
        results = []
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            out = np.full(want.shape, np.nan, layer["dtype"])
            got = tconv.conv_transpose(x, w, b, out=out, **kw)
            assert got is out or np.shares_memory(got, out)
            assert_close_in_norm(got, want, layer["dtype"], msg=f"isa={isa} threads={threads}")
            results.append(got)
        np.testing.assert_array_equal(results[0], results[1], err_msg=f"isa={isa}")


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_takes_the_depthwise_path_and_packs_one_kernel_per_channel(
    restore_runtime, data_format, dtype
):
    rng = np.random.default_rng(3)
    c, k = 24, (4, 4)
    if data_format == "channels_first":
        x = rng.standard_normal((2, c, 9, 13)).astype(dtype)
        w = rng.standard_normal((c, 1, *k)).astype(dtype)
    else:
        x = rng.standard_normal((2, 9, 13, c)).astype(dtype)
        w = rng.standard_normal((*k, 1, c)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    kw = dict(stride=2, padding=1, groups=c, data_format=data_format)
    want = reference(x, w, b, **kw)
    for isa in dict.fromkeys([ISAS[0], "portable"]):
        tconv.set_max_isa(isa)
        got = tconv.conv_transpose(x, w, b, **kw)
        mem = _core.last_call_memory()
        # The depthwise packing: the weights once, [channel][tap] or [tap][channel].
        assert mem["packed_weight_bytes"] == c * math.prod(k) * np.dtype(dtype).itemsize
        # Its scratch: tap tables and per-thread row buffers, far below the output.
        assert 0 < mem["scratch_bytes"] < got.nbytes // 4
        assert_close_in_norm(got, want, dtype)


def test_plan_packs_once(restore_runtime):
    rng = np.random.default_rng(4)
    c = 16
    w = rng.standard_normal((c, 1, 3, 3)).astype(np.float32)
    plan = tconv.ConvTranspose(w, stride=2, padding=1, groups=c)
    x = rng.standard_normal((1, c, 7, 5)).astype(np.float32)
    assert_close(plan(x), reference(x, w, stride=2, padding=1, groups=c))
    assert plan.packed_bytes == c * 9 * 4
    x2 = rng.standard_normal((2, c, 4, 11)).astype(np.float32)
    assert_close(plan(x2), reference(x2, w, stride=2, padding=1, groups=c))
    assert plan.packed_bytes == c * 9 * 4


@pytest.mark.parametrize(
    "layer",
    [
        # The suite's CenterNet layers, shrunk: stride 2, kernel 4, padding 1.
        dict(c=8, size=(16, 16), k=(4, 4), s=2, p=1),
        # Stride 1 (the direct-store kernel) with a 3x3 kernel, long rows.
        dict(c=5, size=(3, 37), k=(3, 3), s=1, p=1),
        # Stride 3 (the scatter kernel), rank 3.
        dict(c=3, size=(2, 3, 19), k=(3, 2, 5), s=3, p=0),
        # Many rows of one tap pattern: stride-2 rows run in batches per pattern.
        dict(c=2, size=(45, 9), k=(4, 4), s=2, p=1),
        # Many tap patterns at the borders of a volume (more than are kept at once).
        dict(c=2, size=(6, 7, 10), k=(3, 5, 4), s=(1, 1, 2), p=(1, 2, 1)),
    ],
)
def test_larger_rows_match_on_both_threads(restore_runtime, layer):
    rng = np.random.default_rng(5)
    c = layer["c"]
    x = rng.standard_normal((2, c, *layer["size"])).astype(np.float32)
    w = rng.standard_normal((c, 1, *layer["k"])).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    kw = dict(stride=layer["s"], padding=layer["p"], groups=c)
    want = reference(x, w, b, **kw)
    tconv.set_num_threads(1)
    one = tconv.conv_transpose(x, w, b, **kw)
    tconv.set_num_threads(2)
    two = tconv.conv_transpose(x, w, b, **kw)
    assert_close_in_norm(one, want, np.float32)
    np.testing.assert_array_equal(one, two)


# channels_last runs vectors along the channels in blocks of four vectors: channel counts
# past one block (of 16-lane vectors too), whole and with a tail of one to four vectors, the
# last one partial. Every ISA, against the reference.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [64, 100, 129, 190])
def test_channels_last_blocks_and_tails_past_one_block(restore_runtime, c, dtype):
    rng = np.random.default_rng(c)
    x = rng.standard_normal((1, 4, 5, c)).astype(dtype)
    w = rng.standard_normal((4, 3, 1, c)).astype(dtype)
    b = rng.standard_normal(c).astype(dtype)
    kw = dict(stride=2, padding=1, groups=c, data_format="channels_last")
    want = reference(x, w, b, **kw)
    for isa in ISAS:
        tconv.set_max_isa(isa)
        assert_close_in_norm(tconv.conv_transpose(x, w, b, **kw), want, dtype, msg=isa)


# Stride 2 with kernel 4 (padding 1) or kernel 2 along the row: output rows that read the
# same input rows run two at a time, in runs listed once per call, and any other row of 1, 2
# or 4 input rows alone on the same kernels (rank 1: its one row). Odd and even row counts
# (a single row left over at each end), runs cut by the two-thread split, an odd output row
# (its last phase partial), 1, 2 and 4 shared input rows, channel multipliers, a strided x,
# and out= prefilled with NaN so that a row the runs skip shows.
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "c, mult, size, k, p, op, step",
    [
        (3, 1, (20,), (4,), 1, 1, 1),
        (2, 1, (11,), (2,), 0, 0, 2),
        (3, 1, (9, 16), (4, 4), 1, 0, 1),
        (2, 2, (7, 19), (4, 4), 1, 1, 1),
        (3, 1, (12, 8), (2, 2), 0, 0, 2),
        (2, 1, (3, 5, 17), (4, 4, 4), 1, 0, 1),
        (2, 1, (4, 6, 9), (2, 4, 2), (0, 1, 0), 0, 1),
        (3, 2, (5, 16), (4, 2), (1, 0), 1, 3),
    ],
)
def test_stride_two_rows_that_share_input_rows_run_in_pairs(
    restore_runtime, dtype, c, mult, size, k, p, op, step
):
    rng = np.random.default_rng(len(size) + sum(k) + c)
    big = rng.standard_normal((2, c, *size[:-1], size[-1] * step)).astype(dtype)
    x = big[..., ::step]
    w = rng.standard_normal((c, mult, *k)).astype(dtype)
    b = rng.standard_normal(c * mult).astype(dtype)
    kw = dict(stride=2, padding=p, output_padding=op, groups=c)
    want = reference(x, w, b, **kw)
    for isa in reachable_isas():
        tconv.set_max_isa(isa)
        results = []
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            out = np.full(want.shape, np.nan, dtype)
            tconv.conv_transpose(x, w, b, out=out, **kw)
            # The portable kernel runs rows one at a time; every ISA kernel in pairs.
            assert _core.last_call_kernel() == (
                "depthwise" if isa == "portable" else "depthwise_pairs"
            ), (isa, threads)
            assert_close_in_norm(out, want, dtype, msg=f"isa={isa} threads={threads}")
            results.append(out)
        np.testing.assert_array_equal(results[0], results[1], err_msg=isa)
