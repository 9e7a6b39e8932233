"""Grouped layers with few output channels per group (ResNeXt-style decoders, grouped GAN
generators: 8-16 channels per group) run on channel panels just wide enough for a group, with
no zero-padded columns, and give the reference's numbers on every ISA, layout and thread count.
"""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import _core

from conftest import assert_close_in_max_norm, reachable_isas, torch_weight_to_keras

# The narrowest panel (output channels) that holds C_out/g, per ISA and dtype: one ymm or one
# zmm of channels where that holds the group, else the full two-vector panel.
PANELS = {
    ("avx512", np.float32): (8, 16, 32),
    ("avx512", np.float64): (8, 16),
    ("avx2", np.float32): (8, 16),
    ("avx2", np.float64): (8,),
}


def _panel_width(isa, dtype, cout_g):
    widths = PANELS[(isa, np.dtype(dtype).type)]
    for w in widths:
        if cout_g <= w:
            return w
    return widths[-1]


@pytest.fixture
def isa_restored():
    threads = tconv.get_num_threads()
    yield
    tconv.set_max_isa(tconv.available_isas()[0])
    tconv.set_num_threads(threads)


def _layer(groups, cin_g, cout_g, size, kernel, stride, dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, groups * cin_g, *size)).astype(dtype)
    w = rng.standard_normal((groups * cin_g, cout_g, *kernel)).astype(dtype)
    b = rng.standard_normal(groups * cout_g).astype(dtype)
    return x, w, b


def _layer_and_reference(case, dtype, channels_last, seed):
    """x, w, b, the reference's y and the call's arguments for a (groups, cin_g, cout_g, size,
    kernel, kw) case, in the given layout (Keras-ordered weights for channels_last)."""
    groups, cin_g, cout_g, size, kernel, kw = case[:6]
    kw = dict(kw, groups=groups)
    x, w, b = _layer(groups, cin_g, cout_g, size, kernel, kernel, dtype, seed=seed)
    want = tconv.reference.conv_transpose(x, w, b, **kw)
    if channels_last:
        x = np.ascontiguousarray(np.moveaxis(x, 1, -1))
        w = torch_weight_to_keras(w)
        want = np.moveaxis(want, 1, -1)
        kw["data_format"] = "channels_last"
    return x, w, b, want, kw


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cout_g", [5, 8, 12, 16, 24])
def test_grouped_layers_pack_panels_as_wide_as_a_group(cout_g, dtype, isa_restored):
    """The packed weights hold C_out/g rounded up to the narrowest panel only: a group of 8
    channels packs 8 columns, not the 32 of the AVX-512 float32 panel (4x the weights, and 4x
    the FMAs, three quarters on zeros)."""
    isas = [i for i in reachable_isas() if i in ("avx2", "avx512")]
    if not isas:
        pytest.skip("the channel panels are the x86 kernels'")
    groups, cin_g = 4, 8
    kw = dict(stride=2, padding=1, groups=groups)
    x, w, b = _layer(groups, cin_g, cout_g, (7, 13), (3, 3), (2, 2), dtype)
    want = tconv.reference.conv_transpose(x, w, b, **kw)
    for isa in isas:
        tconv.set_max_isa(isa)
        tconv.set_num_threads(1)
        plan = tconv.ConvTranspose(w, b, **kw)
        got = plan(x)
        assert _core.last_call_kernel().startswith("phase_channel"), _core.last_call_kernel()
        assert _core.last_call_isa() == isa
        width = _panel_width(isa, dtype, cout_g)
        padded = -(-cout_g // width) * width
        packed = _core.last_call_memory()["packed_weight_bytes"]
        assert packed == w.nbytes // cout_g * padded, (isa, packed, w.nbytes)
        assert_close_in_max_norm(got, want, dtype)


# Rows of every length around the narrow tile (12 positions) and its merged remainders, through
# the row-buffer driver (k3 s2, k3 s1) and the one-GEMM driver (kernel == stride); the last two
# are small enough beside their output for the row cache to keep every group's input rows.
CASES = [
    (32, 8, 8, (3, 13), (3, 3), dict(stride=2, padding=1, output_padding=1)),
    (8, 16, 8, (4, 25), (3, 3), dict(stride=2, padding=1, output_padding=1)),
    (4, 32, 16, (5, 11), (3, 3), dict(stride=1, padding=1)),
    (4, 16, 16, (3, 14), (4, 4), dict(stride=4)),
    (2, 8, 12, (2, 17), (4, 4), dict(stride=2, padding=1)),
    (4, 8, 8, (37,), (16,), dict(stride=8, padding=4)),
    (4, 8, 8, (8, 20), (3, 3), dict(stride=2, padding=1, output_padding=1)),
    (4, 16, 16, (6, 14), (4, 4), dict(stride=4)),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"g{c[0]}_{c[1]}to{c[2]}_{c[3]}")
def test_grouped_layers_match_the_reference_on_every_isa(case, dtype, channels_last, isa_restored):
    x, w, b, want, kw = _layer_and_reference(case, dtype, channels_last, seed=len(case[3]))
    for isa in reachable_isas():
        tconv.set_max_isa(isa)
        first = None
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            got = tconv.conv_transpose(x, w, b, **kw)
            assert _core.last_call_isa() == isa
            assert_close_in_max_norm(got, want, dtype, f"{isa}, {threads} thread(s)")
            planned = tconv.ConvTranspose(w, b, **kw)(x)
            assert np.array_equal(planned, got)
            if first is None:
                first = got
            assert np.array_equal(got, first), "results depend on the thread count"


# Output rows of every length around the store's 16-position blocks (8, 16 and 32 +- 1-2),
# with groups of a whole band of 8 channels and of one and a half: the channels_first output
# is written from the staged channels_last rows, in blocks of 16 positions, then 8, then one
# by one, band by band of 8 channels, then channel by channel. (One output row more than
# stride x input: 5-12 channels per group on outputs of stride x input go to the direct
# driver's phases path.)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cout_g", [8, 12, 16])
@pytest.mark.parametrize("width", [3, 4, 5, 7, 8, 9, 15, 16, 17])
def test_staged_rows_of_every_length_reach_a_channels_first_output(
    width, cout_g, dtype, isa_restored
):
    isas = [i for i in reachable_isas() if i in ("avx2", "avx512")]
    if not isas:
        pytest.skip("the staged store's transposes are the x86 kernels'")
    groups, cin_g = 2, 8
    kw = dict(stride=2, output_padding=(1, 0), groups=groups)
    x, w, b = _layer(groups, cin_g, cout_g, (3, width), (2, 2), (2, 2), dtype, seed=width)
    want = tconv.reference.conv_transpose(x, w, b, **kw)
    tconv.set_num_threads(1)
    got = tconv.ConvTranspose(w, b, **kw)(x)
    assert _core.last_call_kernel().startswith("phase_channel"), _core.last_call_kernel()
    assert got.flags.c_contiguous and got.shape == (2, groups * cout_g, 7, 2 * width)
    assert_close_in_max_norm(got, want, dtype)


# Kernel == stride along the last dim (one tap per phase there, at input shift 0): with a
# channels_first output, every phase of that dim is computed by one full-width GEMM whose
# columns are (phase, channel), where C_out/g fills its panel exactly; the others and the
# positions past the last whole phase row (padding after, output_padding) on the per-phase
# calls.
JOINT_CASES = [
    (2, 8, 8, (3, 9), (2, 2), dict(stride=2, output_padding=(1, 0))),
    (2, 16, 16, (4, 7), (4, 4), dict(stride=4)),
    (3, 8, 16, (3, 5), (3, 3), dict(stride=3)),
    (2, 8, 8, (4, 6), (3, 2), dict(stride=2, padding=((1, 1), (0, 1)))),
    (2, 8, 16, (5, 4), (3, 2), dict(stride=2, padding=(1, 0), output_padding=(0, 1))),
    (4, 8, 16, (37,), (8,), dict(stride=8)),
    (1, 12, 32, (2, 3, 5), (1, 2, 2), dict(stride=(1, 2, 2))),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", JOINT_CASES, ids=lambda c: f"g{c[0]}_{c[1]}to{c[2]}_{c[3]}")
def test_phases_of_kernel_equal_stride_run_as_one_gemm(case, dtype, isa_restored):
    groups, cin_g, cout_g, size, kernel, kw = case
    kw = dict(kw, groups=groups)
    x, w, b = _layer(groups, cin_g, cout_g, size, kernel, kernel, dtype, seed=len(size))
    want = tconv.reference.conv_transpose(x, w, b, **kw)
    isas = [i for i in reachable_isas() if i in ("avx2", "avx512")]
    if not isas:
        pytest.skip("the channel panels are the x86 kernels'")
    for isa in isas:
        tconv.set_max_isa(isa)
        joint = _panel_width(isa, dtype, cout_g) == cout_g
        first = None
        for threads in (1, 2):
            tconv.set_num_threads(threads)
            got = tconv.ConvTranspose(w, b, **kw)(x)
            kernel_ran = _core.last_call_kernel()
            wanted = "phase_channel_joint" if joint else "phase_channel"
            variant = kernel_ran.removesuffix("_in_place").removesuffix("_groups")
            assert variant == wanted, (isa, kernel_ran)
            assert_close_in_max_norm(got, want, dtype, f"{isa}, {threads} thread(s)")
            assert np.array_equal(tconv.conv_transpose(x, w, b, **kw), got)
            if first is None:
                first = got
            assert np.array_equal(got, first), "results depend on the thread count"


# Groups that fit one panel each: every group of an output row in one row pass, each group's
# calls reading its channels of row copies that hold all groups' channels, or of the input in
# place where those copies would pass their share of the output (small outputs of many input
# channels). A phase of the
# last dim with no tap and rows of bias only, kernel == stride along the last dim (the joint
# GEMM per group), 1-D and 3-D, 16 groups of 8.
ONE_PASS, ONE_PASS_JOINT = "phase_channel_groups", "phase_channel_joint_groups"
IN_PLACE, JOINT_IN_PLACE = ONE_PASS + "_in_place", ONE_PASS_JOINT + "_in_place"
ONE_PASS_CASES = [
    (16, 8, 8, (5, 13), (4, 4), dict(stride=2, padding=1), IN_PLACE),
    (8, 16, 8, (2, 25), (3, 3), dict(stride=2, padding=1, output_padding=1), IN_PLACE),
    (3, 8, 5, (3, 31), (5, 3), dict(stride=(2, 3), padding=(2, 1)), IN_PLACE),
    (2, 32, 8, (1, 9), (2, 2), dict(stride=3, dilation=(1, 2), output_padding=(1, 0)), IN_PLACE),
    (4, 8, 8, (2, 9), (2, 2), dict(stride=(1, 3), dilation=(1, 2)), IN_PLACE),
    (4, 32, 8, (37,), (16,), dict(stride=8, padding=4), IN_PLACE),
    (2, 4, 8, (2, 2, 20), (3, 3, 3), dict(stride=(1, 1, 2), padding=1), IN_PLACE),
    (4, 16, 8, (2, 40), (3, 4), dict(stride=(1, 4), padding=(1, 0)), JOINT_IN_PLACE),
    (2, 8, 8, (2, 4), (3, 2), dict(stride=(1, 2), padding=(1, 0)), JOINT_IN_PLACE),
    (4, 8, 8, (20, 13), (4, 4), dict(stride=2, padding=1), ONE_PASS),
    (2, 16, 8, (24, 20), (3, 3), dict(stride=2, padding=1, output_padding=1), ONE_PASS),
    (2, 16, 8, (12, 40), (3, 4), dict(stride=(2, 4), padding=(1, 0)), ONE_PASS_JOINT),
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ONE_PASS_CASES, ids=lambda c: f"g{c[0]}_{c[1]}to{c[2]}_{c[3]}")
def test_every_group_of_a_row_in_one_pass_matches_the_reference(
    case, dtype, channels_last, isa_restored
):
    kernel_name = case[6]
    isas = [i for i in reachable_isas() if i in ("avx2", "avx512")]
    if not isas:
        pytest.skip("the channel panels are the x86 kernels'")
    x, w, b, want, kw = _layer_and_reference(case, dtype, channels_last, seed=case[0])
    if channels_last:
        # The joint GEMM stages channels_first rows only.
        kernel_name = kernel_name.replace(ONE_PASS_JOINT, ONE_PASS)
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    for isa in isas:
        first = None
        for threads in (1, 2):
            # The phase driver named: the dispatch sends the cases whose output is stride x
            # input, channels_first, to the direct driver's phases path (test_drivers.py).
            got = np.empty(g.output_shape(), dtype)
            _core.conv_transpose(g, x, w, b, got, threads, isa, "phase")
            assert _core.last_call_kernel() == kernel_name, (isa, _core.last_call_kernel())
            assert_close_in_max_norm(got, want, dtype, f"{isa}, {threads} thread(s)")
            if first is None:
                first = got
            assert np.array_equal(got, first), "results depend on the thread count"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_channels_last_keeps_only_the_per_phase_blocks(dtype, isa_restored):
    # 64 -> 64, 4 groups, k4 s4: each phase has one tap per dim and the panel is exactly C_out/g
    # wide, so the per-phase blocks hold each weight once. The joint copy serves only the staged
    # rows of a channels_first output; a channels_first call keeps both.
    if "avx512" not in reachable_isas():
        pytest.skip("a 16-channel panel is the AVX-512 kernels'")
    tconv.set_max_isa("avx512")
    kw = dict(stride=4, groups=4)
    x, w, b = _layer(4, 16, 16, (6, 5), (4, 4), (4, 4), dtype, seed=3)
    want = tconv.reference.conv_transpose(x, w, b, **kw)
    got = tconv.conv_transpose(x, w, b, **kw)
    # the joint GEMM, group by group or every group of a row in one pass
    assert _core.last_call_kernel().startswith("phase_channel_joint"), _core.last_call_kernel()
    assert _core.last_call_memory()["packed_weight_bytes"] == 2 * w.nbytes
    assert_close_in_max_norm(got, want, dtype, "channels_first")
    x_cl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    got_cl = tconv.conv_transpose(
        x_cl, torch_weight_to_keras(w), b, data_format="channels_last", **kw
    )
    # kernel == stride on channels_last: the shuffle, on the same per-phase blocks
    assert _core.last_call_kernel() == "phase_shuffle"
    assert _core.last_call_memory()["packed_weight_bytes"] == w.nbytes
    assert_close_in_max_norm(np.moveaxis(got_cl, -1, 1), want, dtype, "channels_last")
