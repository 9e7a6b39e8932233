"""Error messages name the real problem: what was expected, what was received, how to fix it.

Each case pins a message that used to point elsewhere (a float16 remark for a longdouble, a
dtype complaint for a scalar bias, a pybind11 signature dump, a shape the user never passed)."""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import shapes

X = np.ones((1, 3, 5, 5), np.float32)
W = np.ones((3, 2, 3, 3), np.float32)


def _message(exc_type, fn, *args, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        fn(*args, **kwargs)
    return str(info.value)


# ---- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("operand", ["x", "weight", "bias"])
def test_longdouble_is_named_and_float64_suggested(operand):
    if np.dtype(np.longdouble).itemsize <= 8:
        pytest.skip("np.longdouble is float64 on this platform")
    args = {"x": X, "weight": W, "bias": np.ones(2, np.float32)}
    args[operand] = args[operand].astype(np.longdouble)
    msg = _message(TypeError, tconv.conv_transpose, args["x"], args["weight"], args["bias"])
    assert "longdouble" in msg and str(np.dtype(np.longdouble)) in msg
    assert f"{operand}.astype(np.float64)" in msg
    assert "float16" not in msg


def test_float16_message_unchanged():
    msg = _message(TypeError, tconv.conv_transpose, X.astype(np.float16), W)
    assert "float16 has no native kernels" in msg


# ---- scalar operands are shape problems, not precision problems -----------------------------


@pytest.mark.parametrize("bias", [1.0, 2, np.float64(1.5), np.array(0.5), np.float32(1)])
@pytest.mark.parametrize("via", ["function", "plan"])
def test_scalar_bias_is_a_shape_error(bias, via):
    if via == "plan":
        msg = _message(tconv.ShapeError, tconv.ConvTranspose, W, bias)
    else:
        msg = _message(tconv.ShapeError, tconv.conv_transpose, X, W, bias)
    assert "bias must have shape (2,)" in msg and "got shape ()" in msg
    assert "np.full(2, " in msg
    assert "precision" not in msg and "astype" not in msg


def test_scalar_weight_is_a_rank_error():
    msg = _message(tconv.ShapeError, tconv.conv_transpose, X, 1.0)
    assert "weight must have rank >= 3" in msg and "precision" not in msg


def test_boolean_scalar_bias_says_what_it_got():
    msg = _message(TypeError, tconv.conv_transpose, X, W, True)
    assert "bias is bool True" in msg


# ---- numbers numpy cannot hold --------------------------------------------------------------


@pytest.mark.parametrize("operand", ["x", "weight", "bias"])
def test_list_with_an_int_beyond_int64(operand):
    args = {"x": X.tolist(), "weight": W.tolist(), "bias": [0.0, 1.0]}
    args[operand] = [2**70, *args[operand][1:]] if operand == "bias" else args[operand]
    if operand != "bias":
        args[operand][0][0][0][0] = 2**70
    msg = _message(TypeError, tconv.conv_transpose, args["x"], args["weight"], args["bias"])
    where = f"{operand}[0]" if operand == "bias" else f"{operand}[0][0][0][0]"
    assert f"{where} is the integer {2**70}" in msg
    assert "too large for int64" in msg
    assert f"np.asarray({operand}, dtype=np.float64)" in msg
    assert "ragged" not in msg


def test_int_beyond_float64_says_so_without_printing_it():
    w = [[[1.0, 10**5000]]]  # str() of this int would raise in Python >= 3.11
    msg = _message(TypeError, tconv.conv_transpose, [[[1.0]]], w)
    assert "weight[0][0][1]" in msg and "too large for float64" in msg
    assert len(msg) < 400


def test_non_number_entry_is_named():
    msg = _message(TypeError, tconv.conv_transpose, [[[1.0, None]]], np.ones((1, 1, 2)))
    assert "x[0][0][1] is NoneType None, not a number" in msg


def test_ragged_list_still_says_ragged_shape():
    msg = _message(TypeError, tconv.conv_transpose, [[[1.0, 2.0], [1.0]]], np.ones((1, 1, 2)))
    assert "inhomogeneous" in msg


# ---- plans validate in Python before the binding --------------------------------------------

HUGE = [2**62, 2**63 - 1, -(2**63 - 1)]


@pytest.mark.parametrize("value", HUGE)
@pytest.mark.parametrize("arg", ["stride", "padding", "output_padding", "dilation", "groups"])
def test_plan_with_huge_arguments_never_dumps_a_signature(arg, value):
    with pytest.raises((tconv.ShapeError, OverflowError)) as info:
        plan = tconv.ConvTranspose(W, **{arg: value})
        plan(X)  # a plan that is made must fail cleanly on its first input
    msg = str(info.value)
    assert "incompatible function arguments" not in msg and "Sequence[" not in msg


@pytest.mark.parametrize("padding", [2**62, 2**63 - 1, (2**62, 0), ((0, 2**62), (0, 0))])
def test_plan_with_huge_padding_is_a_shape_error(padding):
    msg = _message(tconv.ShapeError, tconv.ConvTranspose, W, padding=padding)
    assert "padding" in msg and "spatial dimension 0" in msg
    # the functional API refuses the same layer with a ShapeError too
    with pytest.raises((tconv.ShapeError, OverflowError)):
        tconv.conv_transpose(X, W, padding=padding)


# ---- results numpy cannot describe ----------------------------------------------------------


@pytest.mark.parametrize("via", ["function", "plan"])
def test_empty_result_too_big_to_describe(via):
    x = np.ones((0, 3, 5, 5), np.float32)
    if via == "plan":
        msg = _message(tconv.ShapeError, tconv.ConvTranspose(W, stride=2**31), x)
    else:
        msg = _message(tconv.ShapeError, tconv.conv_transpose2d, x, W, stride=2**31)
    assert "array is too big" not in msg
    assert "(0, 2, " in msg and "empty" in msg and "stride" in msg


# ---- Keras/PyTorch argument lengths ---------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name", "shown"),
    [
        ({"kernel_size": 3, "strides": ()}, "strides", "()"),
        ({"kernel_size": 3, "dilation_rate": []}, "dilation_rate", "[]"),
        ({"kernel_size": []}, "kernel_size", "[]"),
        ({"kernel_size": ()}, "kernel_size", "()"),
    ],
)
def test_keras_empty_tuples(kwargs, name, shown):
    msg = _message(tconv.ShapeError, shapes.keras, (None, 5, 5, 3), 4, **kwargs)
    assert f"The `{name}` argument must be a tuple of 2 integers. Received {name}={shown}" in msg
    assert "Conv2DTranspose" in msg and "Conv0D" not in msg and "IndexError" not in msg


def test_torch_empty_kernel_size():
    msg = _message(tconv.ShapeError, shapes.torch, (1, 3, 5, 5), 3, 4, ())
    assert "kernel_size must have 2 elements" in msg and "ConvTranspose0d" not in msg


@pytest.mark.parametrize("fn", [shapes.torch, shapes.keras])
def test_dims_below_one(fn):
    args = ((1, 3, 5, 5), 3, 4, 3) if fn is shapes.torch else ((1, 5, 5, 3), 4, 3)
    msg = _message(ValueError, fn, *args, dims=0)
    assert "dims" in msg and "from 1 to" in msg


# ---- ranks ----------------------------------------------------------------------------------


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_one_dimensional_x_for_a_2d_layer(data_format):
    w = W if data_format == "channels_first" else np.moveaxis(W, (0, 1), (-1, -2))
    msg = _message(
        tconv.ShapeError,
        tconv.conv_transpose,
        np.ones(6, np.float32),
        w,
        data_format=data_format,
    )
    assert "0-D weight" not in msg
    assert "no channel axis" in msg
    want = "x.reshape(3, 2, 1)" if data_format == "channels_first" else "x.reshape(2, 1, 3)"
    assert want in msg


def test_one_dimensional_x_that_does_not_split_into_channels():
    msg = _message(tconv.ShapeError, tconv.conv_transpose, np.ones(4, np.float32), W)
    assert "4 values do not split into 3 channels" in msg


def test_flat_features_suggestion_is_bounded():
    # A huge, prime-free feature count must not send the reshape suggestion into a long search.
    x = np.empty((0, 3 * 2**40), np.float32)
    msg = _message(tconv.ShapeError, tconv.conv_transpose, x, np.ones((3, 2, 3, 3, 3), "f4"))
    assert "x.reshape(0, 3, " in msg


# ---- scalar-only arguments ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "args", "kwargs", "name"),
    [
        (tconv.conv_transpose, (X, W), {"groups": (3,)}, "groups"),
        (tconv.ConvTranspose, (W,), {"groups": (3,)}, "groups"),
        (shapes.torch, ((1, 3, 5, 5), 3, 6, 3), {"groups": (3,)}, "groups"),
        (shapes.torch, ((1, 3, 5, 5), (3,), 6, 3), {}, "in_channels"),
        (shapes.keras, ((1, 5, 5, 3), (4,), 3), {}, "filters"),
        (shapes.onnx, ((1, 3, 5, 5), (3, 2, 3, 3)), {"group": [1]}, "group"),
    ],
)
def test_one_value_arguments_given_a_tuple(fn, args, kwargs, name):
    msg = _message(TypeError, fn, *args, **kwargs)
    assert f"{name} must be an int, got" in msg
    assert "tuple of ints" not in msg
    assert "one value for the whole layer" in msg and f"pass {name}=" in msg


@pytest.mark.parametrize(("value", "hint"), [("2", "pass groups=2 (an int"), ("a", None)])
def test_one_value_arguments_given_a_string(value, hint):
    msg = _message(TypeError, tconv.conv_transpose, X, W, groups=value)
    assert f"groups must be an int, got str {value!r}" in msg
    assert "one value for the whole layer" not in msg and "pass groups='" not in msg
    assert (hint in msg) if hint else ("pass groups=" not in msg)


def test_per_dim_arguments_still_offer_tuples():
    msg = _message(TypeError, tconv.conv_transpose, X, W, stride=2.5)
    assert "stride must be an int or a tuple of 2 ints" in msg


# ---- unbatched inputs are quoted as given ---------------------------------------------------


@pytest.mark.parametrize("via", ["function", "plan"])
def test_unbatched_wrong_channels_quotes_the_given_shape(via):
    x = np.ones((4, 5, 5), np.float32)
    if via == "plan":
        msg = _message(tconv.ShapeError, tconv.ConvTranspose(W), x)
    else:
        msg = _message(tconv.ShapeError, tconv.conv_transpose, x, W)
    assert "x has 4 input channels but the weight expects 3" in msg
    assert "x shape (4, 5, 5) is (C_in, *spatial), unbatched" in msg
    assert "(1, 4, 5, 5)" not in msg


def test_unbatched_channels_last_and_empty_axis():
    w = np.moveaxis(W, (0, 1), (-1, -2))
    msg = _message(
        tconv.ShapeError,
        tconv.conv_transpose,
        np.ones((5, 5, 4), "f4"),
        w,
        data_format="channels_last",
    )
    assert "x shape (5, 5, 4) is (*spatial, C_in), unbatched" in msg and "(1, 5, 5, 4)" not in msg
    msg = _message(tconv.ShapeError, tconv.conv_transpose, np.ones((3, 0, 5), "f4"), W)
    assert "(x shape (3, 0, 5), unbatched)" in msg and "(1, 3, 0, 5)" not in msg
