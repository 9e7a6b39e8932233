"""The driver's working memory beyond x, weight, bias and y, as counted by the C++ core.

The phase driver keeps, per thread, copies of the input rows an output row needs (the rows
between its lowest and highest tap shift, one block of the last dim each) where those copies
are a small share of the output, and otherwise reads the input in place; for channels_first
output it adds a channels-last staging row of one panel. Tiny-C_out layers read their input in
place on AVX-512 machines, every phase of the last two dims at once. None of it grows with the batch, and
on every layer of the suite it stays under 10 % of the output.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tconv
from tconv import _core

SUITE = Path(tconv.__file__).with_name("bench_suite.json")


def _layer_args(layer, batch=None, dtype=np.float32):
    rng = np.random.default_rng(0)
    cin, g = layer["in_channels"], layer["groups"]
    n = layer["batch"] if batch is None else batch
    x = rng.standard_normal((n, cin, *layer["input_size"])).astype(dtype)
    w = rng.standard_normal((cin, layer["out_channels"] // g, *layer["kernel_size"])).astype(dtype)
    kw = dict(
        stride=layer["stride"],
        padding=layer["padding"],
        output_padding=layer["output_padding"],
        dilation=layer["dilation"],
        groups=g,
    )
    return x, w, kw


def _memory_of(x, w, kw):
    y = tconv.conv_transpose(x, w, **kw)
    return _core.last_call_memory(), y


def test_counter_reports_the_call_just_made(threads_restored):
    tconv.set_num_threads(1)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 32, 9, 9)).astype(np.float32)
    w = rng.standard_normal((32, 24, 4, 4)).astype(np.float32)
    mem, _ = _memory_of(x, w, dict(stride=2, padding=1))
    # Packed weights: 4 phases x 4 taps x 32 input channels x 32 (24 rounded up to the
    # 16-wide panels) floats -- when the vector kernels ran; the portable kernel packs nothing.
    if _core.active_isa() == "portable":
        assert mem["packed_weight_bytes"] == 0
    else:
        assert mem["packed_weight_bytes"] == 4 * 4 * 32 * 32 * 4
        assert mem["scratch_bytes"] > 0


@pytest.mark.parametrize("threads", [1, 2])
def test_scratch_does_not_grow_with_the_batch(threads, threads_restored):
    tconv.set_num_threads(threads)
    rng = np.random.default_rng(2)
    w = rng.standard_normal((48, 20, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=1, output_padding=1)
    sizes = []
    for n in (1, 6, 12):
        x = rng.standard_normal((n, 48, 20, 20)).astype(np.float32)
        sizes.append(_memory_of(x, w, kw)[0]["scratch_bytes"])
    # Row buffers are per thread, whatever the batch; a single image is small enough to be
    # read in place, with less still.
    assert sizes[2] == sizes[1]
    assert sizes[0] <= sizes[1]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("threads", [1, 2])
def test_suite_layers_keep_row_copies_within_their_share_of_the_bound(
    threads, dtype, threads_restored
):
    """Every layer whose output channels are the vector axis reads small inputs in place when
    copies would pass their share of the scratch bound (all threads' row buffers at most 9/10
    of the larger of 10 % of the output and 4 MiB: HiFi-GAN up2's slices copy 360 KB). Layers
    with at most 4 output channels per group and strides of 2-4 in their last two dims compute
    all those phases at once from the input in place with the AVX-512 kernels; the AVX2 kernels
    always copy their rows (DCGAN's RGB head at batch 1: 1.3x its 48 KiB output), within the
    same bound."""
    if _core.active_isa() in ("portable", "neon"):
        pytest.skip("the in-place reads need the x86 kernels' row windows")
    tconv.set_num_threads(threads)
    layers = json.loads(SUITE.read_text())["layers"]
    for layer in layers:
        x, w, kw = _layer_args(layer, dtype=dtype)
        out_bytes = (
            x.itemsize * layer["batch"] * layer["out_channels"] * int(np.prod(layer["output_size"]))
        )
        mem, y = _memory_of(x, w, kw)
        assert y.nbytes == out_bytes
        bound = max(0.1 * out_bytes, 0.9 * (4 << 20))
        assert mem["scratch_bytes"] < bound, (layer["name"], mem, out_bytes)


@pytest.mark.parametrize("threads", [1, 2])
def test_tiny_cout_layers_read_in_place_on_avx512(threads, threads_restored):
    """FSRCNN's and DCGAN's tiny-C_out layers, at batch 1 and 16: no row copies, only index
    lists (under 2 % of the output: 0.9 KiB on two threads for the 48 KiB RGB head at batch 1)."""
    if _core.active_isa() != "avx512":
        pytest.skip("the kernel that computes every phase of two dims in place is AVX-512")
    tconv.set_num_threads(threads)
    for layer in json.loads(SUITE.read_text())["layers"]:
        if layer["groups"] > 1 or layer["out_channels"] > 4:
            continue  # depthwise layers have a driver of their own
        for batch in (1, 16):
            x, w, kw = _layer_args(layer, batch=batch)
            mem, y = _memory_of(x, w, kw)
            assert mem["scratch_bytes"] < 0.02 * y.nbytes, (layer["name"], batch, mem)


def test_rgb_head_at_batch_1_reads_in_place(threads_restored):
    """DCGAN's RGB head at batch 1: copies of its input rows would be 1.3x its output."""
    if _core.active_isa() != "avx512":
        pytest.skip("the grouped-shift kernel that reads tiny-C_out inputs in place is AVX-512")
    layer = next(
        entry
        for entry in json.loads(SUITE.read_text())["layers"]
        if entry["name"] == "dcgan_128_32_b1"
    )
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        x, w, kw = _layer_args(layer)
        mem, y = _memory_of(x, w, kw)
        assert mem["scratch_bytes"] < 0.02 * y.nbytes, (threads, mem)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize("threads", [1, 2])
def test_input_rows_are_copied_once_per_block(dtype, data_format, threads, threads_restored):
    """CycleGAN's 256->128 up-sample (k3 s2, 64x64 input): each output row reads input rows that
    the next one reads again, which the row cache keeps. With channels_first data the staging
    row shares the row buffers' budget and each row runs in blocks of the last dim; the rows of
    one block go before the next block, so each input row is still copied about once (halos,
    and on two threads the rows where a thread's run of items starts, add a little). Blocks
    alternating row by row copied every row three times. In float64 the packed weights (2.4 MB)
    pass L2, where the blocks of one panel may run in consecutive items to keep its weights in
    cache; each panel's pass would copy the rows again (12-25x the input), more than the
    weights, so they do not."""
    if _core.active_isa() == "portable":
        pytest.skip("the portable kernel copies no input rows")
    tconv.set_num_threads(threads)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 256, 64, 64)).astype(dtype)
    w = rng.standard_normal((256, 128, 3, 3)).astype(dtype)
    if data_format == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        w = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    tconv.conv_transpose(x, w, stride=2, padding=1, output_padding=1, data_format=data_format)
    mem = _core.last_call_memory()
    assert _core.last_call_kernel().startswith("phase_channel")
    assert x.nbytes <= mem["input_copy_bytes"] <= 1.3 * x.nbytes, mem
