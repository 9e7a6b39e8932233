"""tconv.conv_transpose (compiled) against tconv.reference (the scatter loop) over the whole
parameter space, and the two reference loops (scatter and gather) against each other."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tconv
from tconv import reference

from conftest import LAYOUTS, assert_close_in_norm, layer_forms, layer_inputs, relayout


def call_args(cfg: dict, x: np.ndarray, w: np.ndarray, kw: dict) -> dict:
    """Keyword arguments for both implementations; output_size (when drawn) is the spatial
    size the drawn output_padding gives, computed by the reference."""
    args = dict(kw)
    if cfg["output_size_from_op"]:
        xb = x if x.ndim == w.ndim else x[np.newaxis]
        try:
            y = reference.conv_transpose(xb[:0], w, **args)
        except tconv.ShapeError:
            return args  # no such output: the test checks that both refuse it
        spatial = y.shape[1:-1] if cfg["channels_last"] else y.shape[2:]
        args["output_padding"] = None
        args["output_size"] = tuple(spatial)
    return args


def float64_inputs(cfg: dict) -> tuple:
    """x, w, bias and the call's arguments of a layer in float64, with a bias."""
    x, w, b, kw = layer_inputs(dict(cfg, dtype=np.float64, bias=True))
    return x, w, b, call_args(cfg, x, w, kw)


@given(
    cfg=layer_forms(max_macs=80000),
    x_layout=st.sampled_from(LAYOUTS),
    w_layout=st.sampled_from(LAYOUTS),
    use_out=st.booleans(),
)
def test_matches_reference(cfg, x_layout, w_layout, use_out):
    x, w, b, kw = layer_inputs(cfg)
    args = call_args(cfg, x, w, kw)
    dtype = cfg["dtype"]
    try:
        want = reference.conv_transpose(x, w, b, **args)
    except tconv.ShapeError:
        # A configuration the frameworks refuse (e.g. Keras 'same' that leaves no cell):
        # the compiled path must refuse it as well.
        with pytest.raises(tconv.ShapeError):
            tconv.conv_transpose(x, w, b, **args)
        return
    assert want.dtype == dtype
    xv, wv = relayout(x, x_layout), relayout(w, w_layout)
    out = np.full(want.shape, np.nan, dtype=dtype) if use_out else None
    got = tconv.conv_transpose(xv, wv, b, **args, out=out)
    if use_out:
        assert got is out
    assert got.dtype == dtype
    assert got.flags.c_contiguous
    assert_close_in_norm(got, want, dtype, msg=str(cfg))
    # The inputs are left untouched.
    np.testing.assert_array_equal(xv, x)
    np.testing.assert_array_equal(wv, w)


@pytest.mark.parametrize("rank", [1, 2, 3])
@given(data=st.data())
def test_rank_specific_forms(rank, data):
    cfg = data.draw(layer_forms(ranks=(rank,), max_macs=5000))
    x, w, b, args = float64_inputs(cfg)
    fn = {1: tconv.conv_transpose1d, 2: tconv.conv_transpose2d, 3: tconv.conv_transpose3d}[rank]
    try:
        want = reference.conv_transpose(x, w, b, **args)
    except tconv.ShapeError:
        with pytest.raises(tconv.ShapeError):  # refused by the rank's own form too
            fn(x, w, b, **args)
        return
    assert_close_in_norm(fn(x, w, b, **args), want)
    other = {1: tconv.conv_transpose2d, 2: tconv.conv_transpose3d, 3: tconv.conv_transpose1d}[rank]
    with pytest.raises(tconv.ShapeError):
        other(x, w, b, **args)


@given(cfg=layer_forms(max_macs=3000))
def test_scatter_and_gather_references_agree(cfg):
    x, w, b, args = float64_inputs(cfg)
    try:
        scatter = reference.conv_transpose(x, w, b, **args)
    except tconv.ShapeError:
        with pytest.raises(tconv.ShapeError):
            reference.conv_transpose_gather(x, w, b, **args)
        return
    assert_close_in_norm(reference.conv_transpose_gather(x, w, b, **args), scatter)


# Fixed cases that pin sizes at the edges: 1, primes, a kernel larger than the input, a stride
# larger than the kernel (gaps of zeros), full crop down to one cell, depthwise.
FIXED = [
    dict(x=(1, 1, 1), w=(1, 1, 1)),
    dict(x=(2, 3, 7), w=(3, 5, 5), stride=3, padding=2, output_padding=1),
    dict(x=(1, 2, 2), w=(2, 1, 5), stride=4),
    dict(x=(1, 1, 3), w=(1, 1, 3), padding=((4, 0),)),  # crops all but one cell
    dict(x=(1, 6, 5, 3), w=(6, 1, 3, 3), groups=6, stride=2, padding=1, output_padding=1),
    dict(
        x=(3, 4, 2, 3, 2),
        w=(4, 2, 2, 3, 1),
        groups=2,
        stride=(1, 2, 3),
        dilation=(2, 1, 1),
        padding=((0, 1), (1, 0), (0, 0)),
    ),
    dict(x=(1, 2, 11, 13), w=(2, 3, 4, 4), stride=2, padding=1, dilation=3, output_padding=2),
    dict(x=(0, 2, 4), w=(2, 3, 3), stride=2),
]


ISAS = tconv.available_isas()


@pytest.fixture(params=ISAS)
def isa(request):
    """Runs a test once per instruction set this CPU has, then lifts the cap again."""
    tconv.set_max_isa(request.param)
    yield request.param
    tconv.set_max_isa(ISAS[0])


@pytest.mark.parametrize("case", FIXED, ids=lambda c: str(c["x"]) + str(c["w"]))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fixed_cases(case, dtype, isa):
    rng = np.random.default_rng(7)
    kw = {k: v for k, v in case.items() if k not in ("x", "w")}
    x = rng.standard_normal(case["x"]).astype(dtype)
    w = rng.standard_normal(case["w"]).astype(dtype)
    c_out = case["w"][1] * kw.get("groups", 1)
    b = rng.standard_normal(c_out).astype(dtype)
    want = reference.conv_transpose(x, w, b, **kw)
    assert_close_in_norm(tconv.conv_transpose(x, w, b, **kw), want, dtype)
    assert_close_in_norm(reference.conv_transpose_gather(x, w, b, **kw), want, dtype)


def test_reference_is_a_scatter_of_single_taps():
    # One input cell and one kernel tap: the whole output is zero except x*w at
    # i*stride + k*dilation - pad, the definition itself.
    x = np.zeros((1, 1, 4, 5))
    w = np.zeros((1, 1, 3, 3))
    x[0, 0, 2, 3] = 2.0
    w[0, 0, 1, 2] = 3.0
    y = reference.conv_transpose(x, w, stride=(2, 3), dilation=(2, 1), padding=((1, 0), (2, 1)))
    expected = np.zeros_like(y)
    expected[0, 0, 2 * 2 + 1 * 2 - 1, 3 * 3 + 2 * 1 - 2] = 6.0
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(
        tconv.conv_transpose(x, w, stride=(2, 3), dilation=(2, 1), padding=((1, 0), (2, 1))),
        expected,
    )


def test_output_size_reachable_only_with_output_padding():
    # PyTorch: min size (2-1)*2 - 2*3 + 3*(2-1) + 1 = 0, so output_size 1 means
    # output_padding 1 < max(stride, dilation) = 3; nn.ConvTranspose2d accepts it.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 1, 2, 4))
    w = rng.standard_normal((1, 1, 2, 1))
    kw = dict(stride=2, padding=3, dilation=(3, 1))
    want = reference.conv_transpose(x, w, **kw, output_size=(1, 2))
    assert want.shape == (1, 1, 1, 2)
    assert_close_in_norm(reference.conv_transpose(x, w, **kw, output_padding=(1, 1)), want)
    assert_close_in_norm(tconv.conv_transpose(x, w, **kw, output_size=(1, 2)), want)
