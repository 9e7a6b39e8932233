"""tconv.ConvTranspose: the plan refuses bad layers when it is made and bad inputs when it is
called, with the functional API's messages; a refused out= is left untouched."""

import numpy as np
import pytest

import tconv
from tconv import ShapeError

from conftest import raises

f32, f64 = np.float32, np.float64
W = np.ones((3, 2, 3, 3), f32)
X = np.ones((1, 3, 4, 4), f32)
Plan = tconv.ConvTranspose


# ---- making the plan ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "weight,exc,words",
    [
        (np.array(1.0, f32), ShapeError, ["weight must have rank >= 3", "got shape ()"]),
        (np.ones((3, 2), f32), ShapeError, ["weight must have rank >= 3", "(3, 2)"]),
        (W.astype(np.int64), TypeError, ["weight has dtype int64", "np.float32"]),
        (W.astype(np.float16), TypeError, ["weight has dtype float16"]),
        (W.astype(bool), TypeError, ["weight has dtype bool"]),
        (np.ones((3, 2, 0, 3), f32), ShapeError, ["kernel size must be at least 1", "got 0"]),
        (None, TypeError, ["weight must be a numpy array", "None"]),
    ],
)
def test_bad_weight(weight, exc, words):
    with raises(exc, *words):
        Plan(weight)


@pytest.mark.parametrize(
    "kw,exc,words",
    [
        (dict(bias=np.ones(3, f32)), ShapeError, ["bias must have shape (2,)", "got shape (3,)"]),
        (dict(bias=np.ones(2, f64)), TypeError, ["bias is float64", "bias.astype"]),
        (dict(bias=np.ones(2, np.int32)), TypeError, ["bias has dtype int32"]),
        (dict(stride=0), ShapeError, ["stride must be a positive integer", "got 0", "stride=1"]),
        (dict(dilation=-1), ShapeError, ["dilation must be a positive integer", "got -1"]),
        (dict(stride=2**70), OverflowError, ["stride=1180591620717411303424", "64-bit"]),
        (dict(stride=1.5), TypeError, ["stride must be an int", "float 1.5"]),
        (dict(padding=-1), ShapeError, ["padding must be non-negative"]),
        (dict(padding="full"), ValueError, ["padding must be 'same', 'valid'", "'full'"]),
        (
            dict(stride=2, output_padding=2),
            ShapeError,
            ["output_padding must be smaller", "[0, 1]"],
        ),
        (dict(groups=2), ShapeError, ["divisible by groups (2)"]),
        (dict(groups=0), ShapeError, ["groups must be a positive integer"]),
        (dict(data_format="NHWC"), ValueError, ["data_format must be", "channels_last"]),
    ],
)
def test_bad_layer_arguments(kw, exc, words):
    with raises(exc, *words):
        Plan(W, **kw)


def test_plan_accepts_lists_like_the_function():
    plan = Plan(W.tolist(), [0.5, 1.0])
    assert plan.dtype == f64
    y = plan(X.astype(f64).tolist())
    np.testing.assert_array_equal(
        y, tconv.conv_transpose(X.astype(f64), W.astype(f64), np.array([0.5, 1.0]))
    )


# ---- calling it -------------------------------------------------------------------------------

PLAN = Plan(W, np.zeros(2, f32), stride=2)


@pytest.mark.parametrize(
    "x,exc,words",
    [
        (
            X.astype(f64),
            TypeError,
            ["x is float64", "plan's weights are float32", "x.astype(np.float32)"],
        ),
        (X.astype(np.int32), TypeError, ["x has dtype int32"]),
        (np.ones((8, 48), f32), ShapeError, ["flat (N, features)", "x.reshape(8, 3, 4, 4)"]),
        (np.array(1.0, f32), ShapeError, ["x must have rank 4", "scalar"]),
        (np.ones((1, 4, 4, 4), f32), ShapeError, ["x has 4 input channels", "expects 3"]),
        (np.ones((1, 3, 0, 4), f32), ShapeError, ["at least one element", "got size 0"]),
        (None, TypeError, ["x must be a numpy array", "None"]),
        ("abc", TypeError, ["x must be a numpy array", "str"]),
    ],
)
def test_bad_input(x, exc, words):
    with raises(exc, *words):
        PLAN(x)


def test_read_only_byte_swapped_strided_input_works():
    x = np.asfortranarray(X.astype(">f4"))[:, ::-1]
    x.flags.writeable = False
    np.testing.assert_array_equal(
        PLAN(x), tconv.conv_transpose(np.array(x, f32), W, np.zeros(2, f32), stride=2)
    )


def test_zero_batch():
    assert PLAN(np.ones((0, 3, 4, 4), f32)).shape == (0, 2, 9, 9)


@pytest.mark.parametrize(
    "out,words",
    [
        (np.full((1, 2, 9, 8), 7.0, f32), ["out has shape (1, 2, 9, 8)", "expected (1, 2, 9, 9)"]),
        (np.full((1, 2, 9, 9), 7.0, f64), ["out has dtype float64", "expected float32"]),
        (np.full((1, 2, 9, 9), 7.0, f32, order="F"), ["C-contiguous", "Fortran"]),
    ],
)
def test_bad_out_is_untouched(out, words):
    before = out.copy()
    with raises(ValueError, *words):
        PLAN(X, out=out)
    np.testing.assert_array_equal(out, before)


def test_read_only_out():
    out = np.full((1, 2, 9, 9), 7.0, f32)
    out.flags.writeable = False
    with raises(ValueError, "out is read-only"):
        PLAN(X, out=out)


def test_out_aliasing_x():
    plan = Plan(np.ones((3, 3, 1, 1), f32))
    x = X.copy()
    with raises(ValueError, "out shares memory with x"):
        plan(x, out=x)
    np.testing.assert_array_equal(x, X)


def test_output_size_unreachable():
    with raises(ShapeError, "output size of (30, 30)", "(9, 9) to (10, 10)"):
        PLAN(X, output_size=(30, 30))


def test_output_size_on_a_plan_with_output_padding():
    with raises(ValueError, "explicit output_padding", "without output_padding"):
        Plan(W, stride=2, output_padding=1)(X, output_size=(10, 10))


def test_result_too_large_for_memory():
    plan = Plan(np.ones((1, 1, 1, 1), f32), stride=2**20)
    with raises(MemoryError, "(1, 1, 3145729, 3145729)", "36.0 TiB"):
        plan(np.ones((1, 1, 4, 4), f32))


@pytest.mark.parametrize(
    "shape,exc,words",
    [
        ("abc", TypeError, ["x_shape must be an int or a tuple", "str"]),
        ((1, 3, 4.0, 4), TypeError, ["x_shape[2] must be an int", "pass 4"]),
        ((1, 3, 2**70, 4), OverflowError, ["x_shape[2]=", "64-bit"]),
        ((1, 3, 2**40, 2**40), OverflowError, ["overflows a 64-bit integer"]),
        ((1, 3, -1, 4), ShapeError, ["negative size", "(1, 3, -1, 4)"]),
        ((8, 48), ShapeError, ["flat (N, features)", "x.reshape(8, 3, 4, 4)"]),
    ],
)
def test_bad_output_shape_queries(shape, exc, words):
    with raises(exc, *words):
        PLAN.output_shape(shape)


def test_output_shape_of_an_absurd_rank_allocates_nothing():
    # A rank error is reported from the shape alone (no array of that shape is made).
    with raises(ShapeError, "x must have rank 4", "rank 5"):
        PLAN.output_shape((10**9,) * 5)
