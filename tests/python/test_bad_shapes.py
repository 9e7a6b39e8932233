"""Wrong ranks, channels, groups, bias, kernel/stride/dilation, padding, output_padding and
output_size: each gets a ShapeError (a ValueError) that names the argument, what was expected,
what was received and the fix."""

import numpy as np
import pytest

import tconv
from tconv import ShapeError

from conftest import raises

f32 = np.float32
X = np.ones((2, 3, 4, 4), f32)
W = np.ones((3, 2, 3, 3), f32)


# ---- rank ---------------------------------------------------------------------------------


def test_shape_error_is_a_value_error():
    assert issubclass(ShapeError, ValueError)


def test_zero_d_x():
    with raises(ShapeError, "x must have rank 4", "got x of shape ()", "scalar"):
        tconv.conv_transpose(np.array(1.0, f32), W)


def test_zero_d_weight():
    with raises(ShapeError, "weight must have rank >= 3", "got shape ()", "reshape"):
        tconv.conv_transpose(X, np.array(1.0, f32))


@pytest.mark.parametrize("shape", [(3,), (3, 2)])
def test_weight_of_rank_below_three(shape):
    with raises(ShapeError, "weight", "rank >= 3", f"got shape {shape}", "add kernel axes"):
        tconv.conv_transpose(X, np.ones(shape, f32))


def test_x_with_too_many_axes():
    with raises(ShapeError, "x must have rank 4", "(2, 1, 3, 4, 4)", "rank 5", "drop extra axes"):
        tconv.conv_transpose(X[:, None], W)


def test_x_with_too_few_axes():
    with raises(ShapeError, "x must have rank 4", "or 3", "got x of shape (4,)", "missing axes"):
        tconv.conv_transpose(np.ones(4, f32), W)


def test_flat_features_to_2d_layer_suggests_the_reshape():
    # The Keras mistake: Dense output (N, 48) fed to a 2-D layer with 3 input channels.
    with raises(ShapeError, "(8, 48)", "flat (N, features)", "x.reshape(8, 3, 4, 4)"):
        tconv.conv_transpose2d(np.ones((8, 48), f32), W)


def test_flat_features_channels_last_suggests_the_keras_reshape():
    w = np.ones((3, 3, 2, 3), f32)
    with raises(ShapeError, "flat (N, features)", "x.reshape(8, 4, 4, 3)", "Reshape((4, 4, 3))"):
        tconv.conv_transpose2d(np.ones((8, 48), f32), w, data_format="channels_last")


def test_flat_features_to_3d_layer():
    w = np.ones((2, 1, 2, 2, 2), f32)
    with raises(ShapeError, "x.reshape(5, 2, 4, 4, 4)"):
        tconv.conv_transpose3d(np.ones((5, 128), f32), w)


def test_flat_features_that_do_not_split_into_channels():
    with raises(ShapeError, "50 features", "3 channels", "prod(spatial) * 3"):
        tconv.conv_transpose2d(np.ones((8, 50), f32), W)


@pytest.mark.parametrize("fn,rank", [(tconv.conv_transpose1d, 1), (tconv.conv_transpose3d, 3)])
def test_fixed_rank_functions_check_the_weight(fn, rank):
    with raises(
        ShapeError,
        f"conv_transpose{rank}d",
        f"rank {rank + 2}",
        "(3, 2, 3, 3)",
        "use conv_transpose2d",
    ):
        fn(X, W)


# ---- channels and groups ------------------------------------------------------------------


def test_channel_mismatch():
    with raises(ShapeError, "x has 4 input channels", "weight expects 3"):
        tconv.conv_transpose(np.ones((1, 4, 4, 4), f32), W)


def test_channel_mismatch_that_looks_channels_last():
    with raises(ShapeError, "looks channels_last", 'data_format="channels_last"'):
        tconv.conv_transpose(np.ones((1, 5, 5, 3), f32), W)


def test_channel_mismatch_that_looks_channels_first():
    w = np.ones((3, 3, 2, 3), f32)
    with raises(ShapeError, "looks channels_first", 'data_format="channels_first"'):
        tconv.conv_transpose(np.ones((1, 3, 5, 5), f32), w, data_format="channels_last")


def test_groups_not_dividing_channels():
    with raises(ShapeError, "in_channels (3)", "divisible by groups (2)", "divides 3"):
        tconv.conv_transpose(X, W, groups=2)


@pytest.mark.parametrize("groups", [0, -1])
def test_groups_not_positive(groups):
    with raises(ShapeError, "groups must be a positive integer", f"got {groups}", "groups=1"):
        tconv.conv_transpose(X, W, groups=groups)


def test_groups_not_an_int():
    with raises(TypeError, "groups must be an int", "float 1.5"):
        tconv.conv_transpose(X, W, groups=1.5)


# ---- bias ---------------------------------------------------------------------------------


def test_bias_of_wrong_length():
    with raises(
        ShapeError, "bias must have shape (2,)", "one value per output channel", "got shape (3,)"
    ):
        tconv.conv_transpose(X, W, np.ones(3, f32))


def test_bias_of_wrong_length_with_groups():
    x = np.ones((1, 4, 3, 3), f32)
    w = np.ones((4, 2, 3, 3), f32)
    with raises(ShapeError, "bias must have shape (4,)", "groups=2", "got shape (2,)"):
        tconv.conv_transpose(x, w, np.ones(2, f32), groups=2)


def test_bias_of_right_size_but_2d():
    with raises(ShapeError, "bias must have shape (2,)", "got shape (2, 1)", "reshape(-1)"):
        tconv.conv_transpose(X, W, np.ones((2, 1), f32))


def test_bias_scalar():
    with raises(ShapeError, "bias must have shape (2,)", "got shape ()"):
        tconv.conv_transpose(X, W, np.float32(1.0))


# ---- kernel, stride, dilation -------------------------------------------------------------


def test_kernel_of_size_zero():
    with raises(ShapeError, "kernel size must be at least 1", "got 0", "(3, 2, 0, 3)"):
        tconv.conv_transpose(X, np.ones((3, 2, 0, 3), f32))


@pytest.mark.parametrize(
    "name,value", [("stride", 0), ("stride", -2), ("dilation", 0), ("dilation", -1)]
)
def test_stride_and_dilation_not_positive(name, value):
    with raises(ShapeError, f"{name} must be a positive integer", f"got {value}", f"{name}=1"):
        tconv.conv_transpose(X, W, **{name: value})


def test_stride_per_dim_with_wrong_count():
    with raises(ShapeError, "stride must be an int or a tuple of 2 ints", "3 values", "exactly 2"):
        tconv.conv_transpose(X, W, stride=(1, 2, 3))


def test_stride_float():
    with raises(TypeError, "stride must be an int", "float 2.0", "pass 2"):
        tconv.conv_transpose(X, W, stride=2.0)


def test_stride_none():
    with raises(TypeError, "stride must be an int", "NoneType", "stride=1"):
        tconv.conv_transpose(X, W, stride=None)


def test_stride_string():
    with raises(TypeError, "stride must be an int or a tuple of 2 ints", "str '2'", "stride=2"):
        tconv.conv_transpose(X, W, stride="2")


def test_stride_bool():
    with raises(TypeError, "stride must be an int", "bool True"):
        tconv.conv_transpose(X, W, stride=True)


# ---- padding ------------------------------------------------------------------------------


def test_padding_that_empties_the_output():
    # full length (4-1)*1 + 3 = 6; cropping 3 + 3 leaves nothing.
    with raises(
        ShapeError, "output would have size 0", "uncropped result has 6", "padding of at most 2"
    ):
        tconv.conv_transpose(X, W, padding=3)


def test_asymmetric_padding_that_empties_the_output():
    with raises(ShapeError, "output would have size", "crops 5 + 1"):
        tconv.conv_transpose(X, W, padding=((5, 1), (0, 0)))


def test_negative_padding():
    with raises(ShapeError, "padding must be non-negative", "(-1, -1)", "output_padding"):
        tconv.conv_transpose(X, W, padding=-1)


def test_padding_unknown_string():
    with raises(ValueError, "padding must be 'same', 'valid'", "'full'"):
        tconv.conv_transpose(X, W, padding="full")


def test_onnx_style_pads_get_the_pair_form():
    with raises(ShapeError, "padding must be an int", "4 values", "padding=((1, 3), (2, 4))"):
        tconv.conv_transpose(X, W, padding=(1, 2, 3, 4))


def test_padding_pairs_with_wrong_count():
    with raises(
        ShapeError, "explicit padding must be 2 (lo, hi) pairs", "padding=((1, 1), (1, 1))"
    ):
        tconv.conv_transpose(X, W, padding=((1, 1),))


# ---- output_padding and output_size -------------------------------------------------------


def test_output_padding_not_below_stride_or_dilation():
    with raises(
        ShapeError,
        "output_padding must be smaller than either stride or dilation",
        "output_padding=2",
        "stride=2",
        "use output_padding in [0, 1]",
    ):
        tconv.conv_transpose(X, W, stride=2, output_padding=2)


def test_output_padding_negative():
    with raises(ShapeError, "output_padding", "got output_padding=-1", "[0, 1]"):
        tconv.conv_transpose(X, W, stride=2, output_padding=-1)


def test_output_padding_with_same_padding_follows_keras():
    with raises(ShapeError, "smaller than the stride", 'padding="same"', "output_padding=None"):
        tconv.conv_transpose(X, W, stride=2, padding="same", output_padding=2)


def test_output_size_unreachable_lists_the_reachable_sizes():
    # stride 2: (4-1)*2 + 3 = 9, and output_padding 1 reaches 10.
    with raises(ShapeError, "output size of (20, 20)", "from (9, 9) to (10, 10)"):
        tconv.conv_transpose(X, W, stride=2, output_size=(20, 20))


def test_output_size_below_the_minimum():
    with raises(ShapeError, "output size of (5, 5)", "(9, 9) to (10, 10)"):
        tconv.conv_transpose(X, W, stride=2, output_size=(5, 5))


def test_output_size_with_the_wrong_count():
    with raises(ShapeError, "output_size must give 2 spatial sizes", "(9, 9, 9)"):
        tconv.conv_transpose(X, W, stride=2, output_size=(9, 9, 9))


def test_output_size_and_output_padding_together():
    with raises(ValueError, "either output_size or output_padding", "drop output_padding"):
        tconv.conv_transpose(X, W, stride=2, output_size=(10, 10), output_padding=1)


def test_output_size_string():
    with raises(TypeError, "output_size must be an int or a tuple of ints", "str", "(10, 10)"):
        tconv.conv_transpose(X, W, stride=2, output_size="10")


def test_output_size_reachable_works():
    y = tconv.conv_transpose(X, W, stride=2, output_size=(10, 9))
    assert y.shape == (2, 2, 10, 9)


def test_data_format_misspelt():
    with raises(ValueError, "data_format must be", "'NCHW'", "channels_first"):
        tconv.conv_transpose(X, W, data_format="NCHW")


def test_data_format_not_a_string():
    with raises(ValueError, "data_format must be", "got 1"):
        tconv.conv_transpose(X, W, data_format=1)
