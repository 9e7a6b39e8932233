"""Rules measured in the frameworks: tconv.shapes raises where they raise, with their words.

Each case runs the framework itself (skipped when it is absent) and tconv.shapes side by side.
"""

from __future__ import annotations

import warnings

import pytest

import tconv

TORCH_CASES = [
    # (input shape, in_channels, out_channels, kernel, stride, padding, output_padding)
    ((0, 3, 5, 5), 3, 8, 3, 2, 0, 3),  # batch 0: output_padding is not checked
    ((0, 3, 5, 5), 3, 8, 3, 1, 0, 5),
    ((0, 3, 0, 5), 3, 8, 3, 2, 0, 2),  # batch 0 and a spatial size of 0
    ((1, 0, 5, 5), 0, 8, 3, 1, 0, 0),  # no input channels
    ((1, 3, 5, 5), 0, 8, 3, 1, 0, 0),
    ((1, 3, 0, 5), 3, 8, 3, 1, 0, 0),  # a spatial size of 0 with a batch
    ((1, 3, 0, 5), 3, 8, 3, 2, 0, 2),
    ((2, 3, 0), 3, 8, 3, 1, 0, 0),
    ((2, 3, 0, 1, 1), 3, 8, 3, 1, 0, 0),
    ((3, 0, 5), 3, 8, 3, 1, 0, 0),  # unbatched
]


@pytest.mark.parametrize("case", TORCH_CASES)
def test_torch_empty_tensor_rules(case):
    torch = pytest.importorskip("torch")
    shape, cin, cout, k, s, p, op = case
    dims = 2 if shape == (3, 0, 5) else len(shape) - 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch warns about initialising empty weights
        layer = getattr(torch.nn, f"ConvTranspose{dims}d")(cin, cout, k, s, p, op)
    try:
        want = tuple(layer(torch.zeros(shape)).shape)
    except RuntimeError as exc:
        with pytest.raises(tconv.ShapeError) as info:
            tconv.shapes.torch(shape, cin, cout, k, s, p, op, dims=dims)
        assert str(exc) in str(info.value)
        return
    assert tconv.shapes.torch(shape, cin, cout, k, s, p, op, dims=dims) == want


@pytest.mark.parametrize("dims", [1, 2, 3])
def test_torch_string_padding_is_torch_type_error(dims):
    torch = pytest.importorskip("torch")
    layer = getattr(torch.nn, f"ConvTranspose{dims}d")(3, 8, 3, padding="same")
    with pytest.raises(TypeError) as exc:
        layer(torch.zeros(1, 3, *[5] * dims))
    with pytest.raises(tconv.ShapeError) as info:
        tconv.shapes.torch((1, 3, *[5] * dims), 3, 8, 3, padding="same", dims=dims)
    assert str(exc.value) in str(info.value)


TF_CASES = [
    dict(output_shape=[10, 10]),
    dict(output_shape=[1, 10, 10, 8, 1, 1]),
    dict(output_shape=[1, 10, 10, 8], padding="same"),
    dict(output_shape=[1, 11, 11, 8], padding="Valid"),
]


@pytest.mark.parametrize("case", TF_CASES)
def test_tf_nn_output_shape_length_and_padding_case(case):
    tf = pytest.importorskip("tensorflow")
    kw = dict(strides=2, padding="SAME")
    kw.update(case)
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError)) as exc:
        tf.nn.conv_transpose(tf.zeros((1, 5, 5, 3)), tf.zeros((3, 3, 8, 3)), **kw)
    with pytest.raises(tconv.ShapeError) as info:
        tconv.shapes.tf_nn((1, 5, 5, 3), (3, 3, 8, 3), **kw)
    # TensorFlow appends the node's definition to the first line
    assert str(exc.value).split(" | ")[0].split("\n")[0].split("\t")[0].strip() in str(info.value)
    diag = tconv.doctor(str(exc.value))
    assert diag.recognised
    if "padding" in case:  # doctor's fix, run
        import re

        kw["padding"] = re.search(r"use padding='(\w+)'", diag.fix).group(1)
        y = tf.nn.conv_transpose(tf.zeros((1, 5, 5, 3)), tf.zeros((3, 3, 8, 3)), **kw)
        assert tuple(y.shape) == tconv.shapes.tf_nn((1, 5, 5, 3), (3, 3, 8, 3), **kw)


TF_PADDINGS = [
    1,
    None,
    [1, 2],
    "EXPLICIT",
    [[1, 1], [2, 2]],  # one pair per spatial dim: tf.nn wants one per axis
    [[0, 0], [1, 1], [1, 1], [0, 0], [0, 0]],
    [[0, 0], [1, 1], [1], [0, 0]],
    [[0, 0], [1, 1, 1], [1, 1], [0, 0]],
    [[1, 1], [1, 1], [1, 1], [0, 0]],  # the batch axis
    [[0, 0], [1, 1], [1, 1], [0, 2]],  # the channel axis
    [[0, 0], [-1, 1], [1, 1], [0, 0]],
]


@pytest.mark.parametrize("padding", TF_PADDINGS, ids=repr)
def test_tf_nn_explicit_padding_forms_refused_in_tf_words(padding):
    tf = pytest.importorskip("tensorflow")
    kw = dict(strides=2, padding=padding, output_shape=[1, 9, 9, 8])
    with pytest.raises((TypeError, ValueError, tf.errors.InvalidArgumentError)) as exc:
        tf.nn.conv_transpose(tf.zeros((1, 5, 5, 3)), tf.zeros((3, 3, 8, 3)), **kw)
    with pytest.raises(tconv.ShapeError) as info:
        tconv.shapes.tf_nn((1, 5, 5, 3), (3, 3, 8, 3), **kw)
    said = str(exc.value).split("} ")[-1].split(" [Op:")[0]
    assert said in str(info.value)


def test_tf_nn_explicit_padding_spatial_pairs_taken():
    tf = pytest.importorskip("tensorflow")
    kw = dict(strides=2, padding=[[0, 0], [1, 0], [0, 2], [0, 0]], output_shape=[1, 10, 9, 8])
    y = tf.nn.conv_transpose(tf.zeros((1, 5, 5, 3)), tf.zeros((3, 3, 8, 3)), **kw)
    assert tuple(y.shape) == tconv.shapes.tf_nn((1, 5, 5, 3), (3, 3, 8, 3), **kw)


@pytest.mark.parametrize("lo, hi", [(0, 0), (1, 1), (2, 0), (0, 3), (-1, 2)])
@pytest.mark.parametrize("k, s, d", [(3, 2, 1), (4, 3, 2), (1, 1, 1)])
def test_jax_use_consistent_padding_reads_forward_padding(lo, hi, k, s, d):
    # PyTorch's padding p is the forward convolution's: the same as the pair (p, p)
    if lo == hi and lo >= 0 and (4 - 1) * s - 2 * lo + d * (k - 1) + 1 >= 1:
        assert (
            tconv.shapes.jax(
                (1, 4, 2),
                (k, 2, 3),
                (s,),
                ((lo, hi),),
                rhs_dilation=(d,),
                use_consistent_padding=True,
            )[1]
            == tconv.shapes.torch((1, 2, 4), 2, 3, k, s, lo, 0, 1, d)[2]
        )
    jax = pytest.importorskip("jax")
    try:
        y = jax.eval_shape(
            lambda a, b: jax.lax.conv_transpose(
                a, b, (s,), ((lo, hi),), rhs_dilation=(d,), use_consistent_padding=True
            ),
            jax.ShapeDtypeStruct((1, 4, 2), jax.numpy.float32),
            jax.ShapeDtypeStruct((k, 2, 3), jax.numpy.float32),
        )
    except (ValueError, TypeError):
        with pytest.raises(tconv.ShapeError):
            tconv.shapes.jax(
                (1, 4, 2),
                (k, 2, 3),
                (s,),
                ((lo, hi),),
                rhs_dilation=(d,),
                use_consistent_padding=True,
            )
        return
    assert tconv.shapes.jax(
        (1, 4, 2), (k, 2, 3), (s,), ((lo, hi),), rhs_dilation=(d,), use_consistent_padding=True
    ) == tuple(y.shape)


ONNX_CASES = [
    dict(kernel_shape=[3, 3]),
    dict(kernel_shape=[3, 2]),
    dict(kernel_shape=[3]),
    dict(kernel_shape=[3, 3, 3]),
    dict(output_shape=[1, 8, 10, 10]),
    dict(output_shape=[10, 10]),
]


@pytest.mark.parametrize("case", ONNX_CASES)
def test_onnx_kernel_shape_and_output_shape(case):
    np = pytest.importorskip("numpy")
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 3, 5, 5])  # declared shape
    y = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
    w = helper.make_tensor("W", TensorProto.FLOAT, [3, 8, 3, 3], np.zeros(216, np.float32))
    node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], strides=[2, 2], **case)
    model = helper.make_model(
        helper.make_graph([node], "g", [x], [y], [w]), opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    try:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        want = tuple(sess.run(None, {"X": np.zeros((1, 3, 5, 5), np.float32)})[0].shape)
    except Exception as exc:
        with pytest.raises(tconv.ShapeError) as info:
            tconv.shapes.onnx((1, 3, 5, 5), (3, 8, 3, 3), strides=[2, 2], **case)
        said = str(info.value).splitlines()[0].split("would raise: ")[1]
        assert said in str(exc)
        return
    assert tconv.shapes.onnx((1, 3, 5, 5), (3, 8, 3, 3), strides=[2, 2], **case) == want


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_torch_padding_mode(mode):
    torch = pytest.importorskip("torch")
    try:
        want = tuple(
            torch.nn.ConvTranspose2d(3, 4, 3, padding_mode=mode)(torch.zeros(1, 3, 5, 5)).shape
        )
    except ValueError as exc:
        with pytest.raises(tconv.ShapeError) as info:
            tconv.shapes.torch((1, 3, 5, 5), 3, 4, 3, padding_mode=mode)
        assert str(exc) in str(info.value)
        return
    assert tconv.shapes.torch((1, 3, 5, 5), 3, 4, 3, padding_mode=mode) == want


def test_keras_data_format_none_is_keras_default():
    assert tconv.shapes.keras((None, 5, 5, 3), 4, 3, data_format=None) == (None, 7, 7, 4)
    keras = pytest.importorskip("keras")
    assert keras.config.image_data_format() == "channels_last"
    layer = keras.layers.Conv2DTranspose(4, 3, data_format=None)
    assert tuple(layer.compute_output_shape((None, 5, 5, 3))) == (None, 7, 7, 4)


def test_jax_conv_general_dilated_with_lhs_dilation_is_shapes_jax():
    """lax.conv_general_dilated(lhs, rhs, window_strides=1, padding=pairs,
    lhs_dilation=strides, rhs_dilation) -- the transposed convolution written as a forward
    one, as lax.conv_transpose calls it -- has the shape tconv.shapes.jax gives for the same
    pairs, and raises where it raises."""
    jax = pytest.importorskip("jax")
    from hypothesis import given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, derandomize=True, database=None)
    @given(
        st.lists(
            st.tuples(
                st.integers(1, 6),
                st.integers(1, 4),
                st.integers(1, 3),
                st.integers(1, 2),
                st.integers(-4, 4),
                st.integers(-4, 4),
            ),
            min_size=1,
            max_size=3,
        )
    )
    def check(dims):
        n = len(dims)
        lhs = (1, *[d[0] for d in dims], 2)
        rhs = (*[d[1] for d in dims], 2, 3)
        strides = tuple(d[2] for d in dims)
        dil = tuple(d[3] for d in dims)
        pads = tuple((d[4], d[5]) for d in dims)
        try:
            got = jax.eval_shape(
                lambda a, b: jax.lax.conv_general_dilated(
                    a,
                    b,
                    (1,) * n,
                    pads,
                    lhs_dilation=strides,
                    rhs_dilation=dil,
                    dimension_numbers=shapes_dn[n],
                ),
                jax.ShapeDtypeStruct(lhs, jax.numpy.float32),
                jax.ShapeDtypeStruct(rhs, jax.numpy.float32),
            ).shape
        except (ValueError, TypeError):
            with pytest.raises(tconv.ShapeError):
                tconv.shapes.jax(lhs, rhs, strides, pads, rhs_dilation=dil)
            return
        assert tconv.shapes.jax(lhs, rhs, strides, pads, rhs_dilation=dil) == tuple(got)

    shapes_dn = {
        1: ("NHC", "HIO", "NHC"),
        2: ("NHWC", "HWIO", "NHWC"),
        3: ("NHWDC", "HWDIO", "NHWDC"),
    }
    check()
