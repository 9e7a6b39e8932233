"""NaN and Inf propagate exactly as the scatter definition says: every output cell that a NaN
(or Inf * 0, or Inf - Inf) reaches is NaN, every cell it does not reach is untouched."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tconv
from tconv import reference

from conftest import assert_close, channels, layer_inputs, layers, reachable_isas

f32, f64 = np.float32, np.float64
nan, inf = np.nan, np.inf


def oracle(x, w, b=None, **kw):
    return reference.conv_transpose(x, w, b, **kw)


def same_specials(y, expected):
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(expected))
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(expected))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(expected))
    finite = np.isfinite(expected)
    assert_close(y[finite], expected[finite])


KW = dict(stride=2, padding=1, output_padding=1, dilation=1)


@pytest.fixture(params=[f32, f64])
def dtype(request):
    return request.param


def data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    w = rng.standard_normal((3, 2, 3, 3)).astype(dtype)
    b = rng.standard_normal(2).astype(dtype)
    return x, w, b


def test_literal_oracle_agrees_on_finite_data(dtype):
    x, w, b = data(dtype)
    same_specials(tconv.conv_transpose(x, w, b, **KW), oracle(x, w, b, **KW))


def test_nan_in_x_reaches_exactly_its_footprint(dtype):
    x, w, b = data(dtype)
    x[1, 2, 3, 1] = nan
    y = tconv.conv_transpose(x, w, b, **KW)
    same_specials(y, oracle(x, w, b, **KW))
    assert np.isnan(y[1]).any() and not np.isnan(y[0]).any()


def test_inf_in_x_times_zero_weight_is_nan(dtype):
    x, w, b = data(dtype)
    x[0, 0, 2, 2] = inf
    w[0, 1, 1, 1] = 0.0
    y = tconv.conv_transpose(x, w, b, **KW)
    same_specials(y, oracle(x, w, b, **KW))
    assert np.isnan(y).any() and np.isinf(y).any()


def test_plus_and_minus_inf_meeting_give_nan(dtype):
    x = np.zeros((1, 2, 1), dtype)
    x[0, 0, 0], x[0, 1, 0] = inf, -inf
    w = np.ones((2, 1, 3), dtype)
    y = tconv.conv_transpose(x, w)
    same_specials(y, oracle(x, w))
    assert np.isnan(y).all()


def test_nan_in_weight(dtype):
    x, w, b = data(dtype)
    w[2, 0, 0, 2] = nan
    y = tconv.conv_transpose(x, w, b, **KW)
    same_specials(y, oracle(x, w, b, **KW))
    assert np.isnan(y[:, 0]).any() and not np.isnan(y[:, 1]).any()


def test_nan_and_inf_in_bias_fill_their_channel(dtype):
    x, w, _ = data(dtype)
    b = np.array([nan, -inf], dtype)
    y = tconv.conv_transpose(x, w, b, **KW)
    same_specials(y, oracle(x, w, b, **KW))
    assert np.isnan(y[:, 0]).all() and np.isneginf(y[:, 1]).all()


def test_cells_no_input_reaches_stay_bias_even_if_x_is_all_nan(dtype):
    # stride 3 with a 1-tap kernel leaves two empty cells between contributions, and
    # output_padding adds cells that only the bias reaches.
    x = np.full((1, 1, 4), nan, dtype)
    w = np.ones((1, 1, 1), dtype)
    b = np.array([0.25], dtype)
    y = tconv.conv_transpose(x, w, b, stride=3, output_padding=2)
    assert y.shape == (1, 1, 12)
    expected = np.full(12, 0.25)
    expected[::3] = nan
    same_specials(y[0, 0], expected)
    same_specials(y, oracle(x, w, b, stride=3, output_padding=2))


def test_inf_in_x_channels_last(dtype):
    x, w, b = data(dtype)
    x[0, 1, 0, 0] = -inf
    y = tconv.conv_transpose(
        x.transpose(0, 2, 3, 1), w.transpose(2, 3, 1, 0), b, data_format="channels_last", **KW
    )
    same_specials(y.transpose(0, 3, 1, 2), oracle(x, w, b, **KW))


def test_grouped_nan_stays_in_its_group(dtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 3)).astype(dtype)
    w = rng.standard_normal((4, 1, 2)).astype(dtype)
    x[0, 0, 1] = nan
    y = tconv.conv_transpose(x, w, groups=4)
    same_specials(y, oracle(x, w, groups=4))
    assert np.isnan(y[0, 0]).any() and not np.isnan(y[0, 1:]).any()


# ---- every ISA, plans and functional calls ---------------------------------------------------
# The vector kernels multiply weights by the zero halo around the input and by zero-padded
# rows; with an Inf or NaN weight that would put NaN where the definition has none. Checked on
# every instruction set, for the functional form and plans, against the literal definition.

ISAS = reachable_isas()
SPECIALS = np.array([nan, inf, -inf])


@pytest.fixture
def every_isa():
    """Restores the process-wide ISA cap after a test that sets it."""
    yield ISAS
    tconv.set_max_isa(tconv.available_isas()[0])


def run_everywhere(x, w, b, kw, check):
    """check(y, isa, ran) for the functional form and a plan on every ISA; `ran` is the ISA
    whose kernels the call reports."""
    for isa in ISAS:
        tconv.set_max_isa(isa)
        y = tconv.conv_transpose(x, w, b, **kw)
        check(y, isa, tconv._core.last_call_isa())
        y = tconv.ConvTranspose(w, b, **kw)(x)
        check(y, isa, tconv._core.last_call_isa())


@pytest.mark.parametrize("dtype", [f32, f64])
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    "w_row, want",
    [
        ([1, 1, nan], [2, nan, nan, nan]),
        ([inf, 1, 1], [inf, inf, inf, 2]),
    ],
)
def test_nonfinite_weight_reaches_only_its_cells(w_row, want, dtype, channels_last, every_isa):
    x = np.ones((1, 1, 4), dtype)
    w = np.array([[w_row]], dtype)
    kw = dict(padding=1)
    if channels_last:
        x, w = x.transpose(0, 2, 1), w.transpose(2, 1, 0)
        kw["data_format"] = "channels_last"

    def check(y, isa, ran):
        same_specials(y.reshape(-1), np.array(want))

    run_everywhere(x, w, None, kw, check)


# Layers small enough for the reference loop, drawn to reach every kernel family: dense, tiny
# C_out (the position algorithm), depthwise (with a channel multiplier), C_out around the panels.
_GROUPS = st.sampled_from([1, 1, 2])
SMALL = layers(
    channels=st.one_of(
        channels(_GROUPS, st.integers(1, 4), st.integers(5, 9)),
        channels(_GROUPS, st.integers(1, 4), st.integers(1, 4)),
        channels(st.integers(1, 4), st.just(1), st.sampled_from([1, 1, 2])),
        channels(_GROUPS, st.integers(1, 4), st.sampled_from([15, 16, 17, 33])),
    ),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.sampled_from([1, 1, 2]),
    outer=st.integers(1, 4),
    last=st.integers(1, 20),
    pads="symmetric",
    outpad=False,
    batch=st.integers(1, 2),
    layouts=("c",),
    max_products=20000,
)


def sprinkle(a, rng, count):
    """`count` NaN / +Inf / -Inf at random places of a (a copy)."""
    a = a.copy()
    flat = a.reshape(-1)
    flat[rng.integers(0, flat.size, count)] = rng.choice(SPECIALS, count)
    return a


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cfg=SMALL, where=st.sampled_from(["weight", "x", "both"]))
def test_nan_and_inf_follow_the_definition_on_every_isa(cfg, where, every_isa):
    x, w, b, kw = layer_inputs(cfg)
    rng = np.random.default_rng(cfg["seed"] + 1)
    if where in ("weight", "both"):
        w = sprinkle(w, rng, int(rng.integers(1, 3)))
    if where in ("x", "both"):
        x = sprinkle(x, rng, int(rng.integers(1, 3)))
    want = reference.conv_transpose(x, w, b, **kw)
    weights_finite = bool(np.isfinite(w).all())

    def check(y, isa, ran):
        same_specials(y, want)
        if weights_finite:
            # Inf and NaN in x alone keep the vector kernels: they must be right too.
            assert ran == isa, (ran, isa)

    run_everywhere(x, w, b, kw, check)
