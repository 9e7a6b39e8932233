"""tconv.shapes: each error path says what the framework says and names the fix.

Shapes and error conditions are checked against the frameworks themselves in
test_shapes_conformance.py; here the words are checked, with hand-derived numbers.
"""

from __future__ import annotations

import pytest

import tconv
from tconv import shapes


def raises(kind, func, *args, **kwargs):
    with pytest.raises(tconv.ShapeError) as info:
        func(*args, **kwargs)
    err = info.value
    assert err.kind == kind
    assert err.fix and err.fix in str(err)
    assert err.framework_message and err.framework_message in str(err)
    return err


def test_exports():
    assert tconv.shapes is shapes
    assert issubclass(tconv.ShapeError, ValueError)
    assert issubclass(tconv.BackendWarning, UserWarning)


# ---- PyTorch ----------------------------------------------------------------------------------


def test_torch_shapes_and_none_batch():
    # (5 - 1) * 2 - 2 + 3 + 1 = 10
    assert shapes.torch((1, 16, 5, 5), 16, 8, 3, stride=2, padding=1, output_padding=1) == (
        1,
        8,
        10,
        10,
    )
    assert shapes.torch((None, 16, 5, 5), 16, 8, 3, stride=2, padding=1) == (None, 8, 9, 9)
    assert shapes.torch((16, 5), 16, 8, 3, dims=1) == (8, 7)  # unbatched
    assert shapes.torch((2, 4, 6, 6), 4, 2, 3, stride=2, output_size=(14, 14)) == (2, 2, 14, 14)


def test_torch_output_padding_names_the_fix():
    err = raises("output_padding", shapes.torch, (1, 4, 6, 6), 4, 8, 3, stride=2, output_padding=2)
    assert "output padding must be smaller than either stride or dilation" in str(err)
    assert "output_padding <= 1" in err.fix


def test_torch_output_size_lists_the_range():
    err = raises("output_size", shapes.torch, (1, 4, 5, 5), 4, 8, 3, stride=2, output_size=(14, 14))
    assert "valid sizes range from [11, 11] to [12, 12]" in str(err)
    assert "14" in err.fix


def test_torch_rank_error_and_dims():
    err = raises("rank", shapes.torch, (2, 100), 4, 8, 3, dims=2)
    assert "Expected 3D (unbatched) or 4D (batched) input to conv_transpose2d" in str(err)
    assert "x.view(2, 4, 5, 5)" in err.fix  # 100 / 4 channels = 25 = 5 * 5
    raises("rank", shapes.torch, (1, 4, 5, 5, 5), 4, 8, (3, 3))


def test_torch_channels_groups_and_empty_output():
    err = raises("channels", shapes.torch, (1, 3, 5, 5), 4, 8, 3)
    assert "expected input[1, 3, 5, 5] to have 4 channels, but got 3" in str(err)
    assert "in_channels=3" in err.fix
    err = raises("groups", shapes.torch, (1, 4, 5, 5), 4, 6, 3, groups=4)
    assert "out_channels must be divisible by groups" in str(err)
    assert "[1, 2]" in err.fix
    err = raises("nonpositive_output", shapes.torch, (1, 4, 5, 5), 4, 8, 3, padding=5)
    assert "Output size is too small" in str(err)
    assert "padding <= 3" in err.fix  # 7 cells uncropped: at most 3 per side


# ---- Keras ------------------------------------------------------------------------------------


def test_keras_shapes_and_none():
    assert shapes.keras((None, 5, 5, 16), 8, 3, strides=2, padding="same") == (None, 10, 10, 8)
    # output_padding=0 with 'same': (5 - 1) * 2 + 3 % 2 + 0 = 9
    assert shapes.keras((None, 5, None, 16), 8, 3, strides=2, padding="same", output_padding=0) == (
        None,
        9,
        None,
        8,
    )
    assert shapes.keras((None, 16, 5), 8, 3, strides=2, data_format="channels_first") == (
        None,
        8,
        11,
    )


def test_keras_rank_error_proposes_a_reshape():
    err = raises("rank", shapes.keras, (None, 100), 8, 3, dims=2)
    assert ("expected min_ndim=4, found ndim=2. Full shape received: (None, 100)") in str(err)
    assert "h*w*c = 100" in err.fix
    assert "keras.layers.Reshape((5, 5, 4))" in err.fix
    err = raises("rank", shapes.keras, (None, 8, 5, 5, 3), 8, (3, 3))
    assert "TimeDistributed" in err.fix


def test_keras_output_padding_and_dilation():
    err = raises(
        "output_padding",
        shapes.keras,
        (None, 5, 5, 3),
        8,
        3,
        strides=2,
        padding="same",
        output_padding=2,
    )
    assert "`output_padding` must be strictly less than `strides`" in str(err)
    assert "[0, 1]" in err.fix
    err = raises("argument", shapes.keras, (None, 5, 5, 3), 8, 3, strides=2, dilation_rate=2)
    assert "strides=1" in err.fix


def test_keras_tensorflow_refusal_warns():
    # kernel 2, stride 1, 'same', output_padding=0: Keras says 4, TensorFlow's SAME accepts 5 only
    with pytest.warns(tconv.BackendWarning, match="JAX and torch backends run it"):
        assert shapes.keras((1, 5, 5, 4), 8, 2, padding="same", output_padding=0) == (1, 4, 4, 8)


# ---- tf.nn ------------------------------------------------------------------------------------


def test_tf_nn_accepts_and_rejects_output_shape():
    assert shapes.tf_nn((1, 5, 5, 4), (3, 3, 8, 4), (1, 10, 10, 8), 2) == (1, 10, 10, 8)
    assert shapes.tf_nn((1, 5, 5, 4), (3, 3, 8, 4), (1, 9, 9, 8), 2) == (1, 9, 9, 8)
    err = raises("output_size", shapes.tf_nn, (1, 5, 5, 4), (3, 3, 8, 4), (1, 12, 10, 8), 2)
    assert "Size of out_backprop doesn't match computed: actual = 5, computed = 6" in str(err)
    assert "9..10" in err.fix
    err = raises("channels", shapes.tf_nn, (1, 5, 5, 3), (3, 3, 8, 4), (1, 10, 10, 8), 2)
    assert "(3, 3, 8, 3)" in err.fix


def test_tf_nn_dilation_warns_about_cpu_kernels():
    with pytest.warns(tconv.BackendWarning, match="dilation"):
        assert shapes.tf_nn(
            (1, 5, 5, 4), (3, 3, 8, 4), (1, 9, 9, 8), 1, padding="VALID", dilations=2
        ) == (1, 9, 9, 8)


# ---- ONNX -------------------------------------------------------------------------------------


def test_onnx_auto_pad_and_output_shape():
    assert shapes.onnx(
        (1, 4, 5, 5), (4, 2, 3, 3), strides=[2, 2], auto_pad="SAME_UPPER", group=2
    ) == (1, 4, 10, 10)
    # onnxruntime ignores output_padding with SAME_*: still input * stride
    assert shapes.onnx(
        (1, 1, 3), (1, 1, 3), strides=[2], auto_pad="SAME_UPPER", output_padding=[1]
    ) == (1, 1, 6)
    assert shapes.onnx((1, 1, 3), (1, 1, 3), strides=[2], output_shape=[8]) == (1, 1, 8)
    err = raises("output_size", shapes.onnx, (1, 1, 3), (1, 1, 3), strides=[2], output_shape=[9])
    assert "Expected input size 4 but got 3" in str(err)
    assert "1..8" in err.fix


def test_onnx_errors():
    err = raises(
        "output_padding", shapes.onnx, (1, 1, 3), (1, 1, 3), strides=[2], output_padding=[2]
    )
    assert "must be less than max(stride, dilation) (2)" in str(err)
    err = raises("channels", shapes.onnx, (1, 2, 3), (1, 1, 3))
    assert "(2, 1, 3)" in err.fix
    raises("rank", shapes.onnx, (1, 1, 3, 3), (1, 1, 3))
    err = raises("nonpositive_output", shapes.onnx, (1, 1, 3), (1, 1, 3), pads=[3, 3])
    assert "< 5" in err.fix


# ---- JAX --------------------------------------------------------------------------------------


def test_jax_padding_forms():
    assert shapes.jax((1, 5, 5, 4), (3, 3, 4, 8), (2, 2), "SAME") == (1, 10, 10, 8)
    assert shapes.jax((1, 5, 5, 4), (3, 3, 4, 8), (2, 2), "VALID") == (1, 11, 11, 8)
    # explicit pairs pad the dilated input: (5-1)*2+1 + 1+1 - 3 + 1 = 9, and 9 + 0 - 2 = 7
    assert shapes.jax((1, 5, 5, 4), (3, 3, 4, 8), (2, 2), [(1, 1), (0, 0)]) == (1, 9, 7, 8)
    assert shapes.jax((None, 5, 5, 4), (3, 3, 8, 4), (2, 2), "SAME", transpose_kernel=True) == (
        None,
        10,
        10,
        8,
    )
    assert shapes.jax(
        (1, 4, 5, 5), (8, 4, 3, 3), (2, 2), "VALID", dimension_numbers=("NCHW", "OIHW", "NCHW")
    ) == (1, 8, 11, 11)


def test_jax_errors_name_the_fix():
    err = raises(
        "channels", shapes.jax, (1, 5, 5, 4), (3, 3, 4, 8), (2, 2), "SAME", transpose_kernel=True
    )
    assert "4 // 1 != 8" in str(err)
    assert "transpose_kernel=False" in err.fix
    err = raises("padding", shapes.jax, (1, 5, 5, 4), (3, 3, 4, 8), (2, 2), "same")
    assert "'SAME'" in err.fix
    raises("rank", shapes.jax, (1, 5, 4), (3, 3, 4, 8), (2, 2), "SAME")


@pytest.mark.parametrize(
    "call",
    [
        lambda: tconv.shapes.torch((1, 3, 5, 5), 3, 4, 3, stride=2**70),
        lambda: tconv.shapes.keras((None, 5, 5, 3), 4, 3, strides=2**70),
        lambda: tconv.shapes.onnx((1, 3, 5, 5), (3, 4, 3, 3), strides=[2**70, 1]),
        lambda: tconv.shapes.tf_nn((1, 5, 5, 3), (3, 3, 4, 3), (1, 10, 10, 4), 2**70),
        lambda: tconv.shapes.jax(
            (1, 5, 5, 3),
            (3, 3, 4, 3),
            (2**70, 1),
            "SAME",
            dimension_numbers=("NHWC", "HWOI", "NHWC"),
        ),
    ],
)
def test_ints_beyond_int64_are_refused_by_name(call):
    with pytest.raises(OverflowError, match=r"strides?.*does not fit in a 64-bit integer"):
        call()
