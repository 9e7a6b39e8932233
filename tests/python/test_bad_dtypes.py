"""The dtype rule.

ndarrays (and array-likes with a dtype of their own) must be float32 or float64 and all of one
precision; tconv never converts them silently, except to native byte order (same values).
Python lists and tuples have no dtype: they are read with np.asarray and adopt the dtype of the
ndarray operands, or float64 when there is none.
"""

import numpy as np
import pytest

import tconv
from tconv import reference

from conftest import assert_close, raises

f32, f64 = np.float32, np.float64
rng = np.random.default_rng(5)
X = rng.standard_normal((1, 2, 3, 3)).astype(f32)
W = rng.standard_normal((2, 3, 2, 2)).astype(f32)


@pytest.mark.parametrize(
    "dtype,words",
    [
        (np.int64, ["int64", "integer", "x.astype(np.float32)"]),
        (np.int8, ["int8", "integer"]),
        (np.uint16, ["uint16", "integer"]),
        (np.bool_, ["bool", "booleans"]),
        (np.complex128, ["complex128", "real and imaginary parts"]),
        (np.complex64, ["complex64"]),
        (object, ["object"]),
        (np.float16, ["float16", "compute in float32"]),
        (np.longdouble, ["float128" if np.dtype(np.longdouble).itemsize == 16 else "float"]),
    ],
)
def test_x_of_unsupported_dtype(dtype, words):
    if np.dtype(dtype) == np.dtype(np.float64):
        pytest.skip("long double is double here")
    with raises(TypeError, "x has dtype", "float32 or float64", *words):
        tconv.conv_transpose(X.astype(dtype), W)


@pytest.mark.parametrize("dtype", [np.int32, np.float16, np.complex64, np.bool_])
def test_weight_of_unsupported_dtype(dtype):
    with raises(TypeError, "weight has dtype", "weight.astype(x.dtype)"):
        tconv.conv_transpose(X, W.astype(dtype))


def test_bias_of_unsupported_dtype():
    with raises(TypeError, "bias has dtype int64", "bias.astype(x.dtype)"):
        tconv.conv_transpose(X, W, np.arange(3))


def test_mixed_precision_is_refused():
    with raises(TypeError, "x is float32 but weight is float64", "weight.astype(x.dtype)"):
        tconv.conv_transpose(X, W.astype(f64))


def test_mixed_precision_bias_is_refused():
    with raises(TypeError, "bias is float64", "float32", "bias.astype(x.dtype)"):
        tconv.conv_transpose(X, W, np.zeros(3, f64))


def test_structured_array():
    xs = np.zeros((1, 2, 3, 3), dtype=[("a", f32), ("b", f32)])
    with raises(TypeError, "structured array", "select a field"):
        tconv.conv_transpose(xs, W)


def test_void_array():
    with raises(TypeError, "structured array"):
        tconv.conv_transpose(np.zeros((1, 2, 3, 3), dtype="V4"), W)


def test_masked_array_is_refused():
    xm = np.ma.masked_array(X, mask=X > 0)
    with raises(TypeError, "masked array", "x.filled(0)"):
        tconv.conv_transpose(xm, W)


@pytest.mark.parametrize("order", [">", "<"])
def test_byte_order_is_converted_exactly(order):
    expected = tconv.conv_transpose(X, W, stride=2)
    y = tconv.conv_transpose(X.astype(order + "f4"), W.astype(order + "f4"), stride=2)
    assert y.dtype == np.dtype(f32) and y.dtype.isnative
    np.testing.assert_array_equal(y, expected)


def test_float64_is_computed_in_float64():
    x, w = X.astype(f64), W.astype(f64)
    y = tconv.conv_transpose(x, w, stride=2)
    assert y.dtype == f64
    assert_close(y, reference.conv_transpose(x, w, stride=2))


# ---- lists and other array-likes ------------------------------------------------------------


def test_lists_adopt_the_dtype_of_the_array_operand():
    y = tconv.conv_transpose(X.tolist(), W)
    assert y.dtype == f32
    np.testing.assert_array_equal(y, tconv.conv_transpose(X, W))
    y = tconv.conv_transpose(X, W.tolist(), [0.5, 1.0, 2.0])
    assert y.dtype == f32
    np.testing.assert_array_equal(y, tconv.conv_transpose(X, W, np.array([0.5, 1, 2], f32)))


def test_lists_only_compute_in_float64():
    y = tconv.conv_transpose(X.astype(f64).tolist(), W.astype(f64).tolist())
    assert y.dtype == f64
    assert_close(y, reference.conv_transpose(X.astype(f64), W.astype(f64)))


def test_list_of_ints_is_read_as_numbers():
    x = [[[1, 2], [3, 4]]]  # (C_in=1, 2, 2), unbatched
    w = [[[[1, 0], [0, 1]]]]  # (1, 1, 2, 2)
    y = tconv.conv_transpose(x, w)
    assert y.dtype == f64
    np.testing.assert_array_equal(y, [[[1, 2, 0], [3, 5, 2], [0, 3, 4]]])


def test_tuple_of_floats_with_float32_weight():
    y = tconv.conv_transpose(tuple(map(tuple, np.ones((1, 3)))), np.ones((1, 1, 2), f32))
    assert y.dtype == f32
    np.testing.assert_array_equal(y, [[1, 2, 2, 1]])


@pytest.mark.parametrize(
    "value,words",
    [
        ([[[True, False]]], ["list of booleans"]),
        ([[[1j, 2]]], ["complex numbers"]),
        ([[[1, 2], [3]]], ["could not be read", "inhomogeneous"]),
        ([[["a", "b"]]], ["dtype <U1"]),
    ],
)
def test_lists_that_are_not_real_numbers(value, words):
    with raises(TypeError, "x", *words):
        tconv.conv_transpose(value, np.ones((1, 1, 2), f32))


@pytest.mark.parametrize("value", ["abc", b"abc", {1: 2}, {1.0}])
def test_strings_and_mappings(value):
    with raises(TypeError, "x must be a numpy array", type(value).__name__):
        tconv.conv_transpose(value, W)


def test_none():
    with raises(TypeError, "weight must be a numpy array", "None"):
        tconv.conv_transpose(X, None)


def test_array_like_keeps_its_dtype():
    class Wrapper:
        def __init__(self, a):
            self.a = a

        def __array__(self, dtype=None, copy=None):
            return self.a

    np.testing.assert_array_equal(tconv.conv_transpose(Wrapper(X), W), tconv.conv_transpose(X, W))
    with raises(TypeError, "x has dtype int64"):
        tconv.conv_transpose(Wrapper(np.ones((1, 2, 3, 3), np.int64)), W)


def test_array_like_that_refuses_conversion():
    class Broken:
        def __array__(self, dtype=None, copy=None):
            raise RuntimeError("no")

    with raises(TypeError, "x could not be read as a numpy array", "RuntimeError"):
        tconv.conv_transpose(Broken(), W)


def test_memoryview_is_read_with_its_format():
    buf = memoryview(np.ones((1, 4), f32))
    w = np.ones((1, 1, 1), f32)
    y = tconv.conv_transpose(buf, w)
    assert y.dtype == f32 and y.shape == (1, 4)


def test_torch_tensor_is_an_array_like():
    torch = pytest.importorskip("torch")
    y = tconv.conv_transpose(torch.from_numpy(X), torch.from_numpy(W), stride=2)
    np.testing.assert_array_equal(y, tconv.conv_transpose(X, W, stride=2))
    with raises(TypeError, "x has dtype float16"):
        tconv.conv_transpose(torch.from_numpy(X).half(), W)


def test_out_of_another_dtype():
    out = np.empty((1, 3, 4, 4), f64)
    with raises(ValueError, "out has dtype float64", "expected float32", "never converted"):
        tconv.conv_transpose(X, W, out=out)


def test_out_of_non_native_byte_order():
    out = np.empty((1, 3, 4, 4), ">f4")
    with raises(ValueError, "out has dtype >f4", "non-native byte order"):
        tconv.conv_transpose(X, W, out=out)


def test_lists_adopt_the_dtype_of_an_array_bias():
    y = tconv.conv_transpose(X.tolist(), W.tolist(), np.zeros(3, f32))
    assert y.dtype == f32
    np.testing.assert_array_equal(y, tconv.conv_transpose(X, W, np.zeros(3, f32)))
