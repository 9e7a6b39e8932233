"""Memory layout: any strides read correctly; `out` is exact or refused, and never partly
written when the call fails."""

import numpy as np
import pytest

import tconv
from tconv import reference

from conftest import assert_close, raises

f32, f64 = np.float32, np.float64
rng = np.random.default_rng(7)
X = rng.standard_normal((2, 3, 4, 5)).astype(f64)
W = rng.standard_normal((3, 2, 3, 2)).astype(f64)
B = rng.standard_normal(2)
KW = dict(stride=(2, 1), padding=(1, 0), output_padding=(1, 0), dilation=(1, 2))
EXPECTED = reference.conv_transpose(X, W, B, **KW)


def check(x, w, b=B):
    y = tconv.conv_transpose(x, w, b, **KW)
    assert y.flags.c_contiguous and y.dtype == x.dtype
    assert_close(y, EXPECTED.astype(x.dtype))


def test_fortran_order():
    check(np.asfortranarray(X), np.asfortranarray(W))


def test_negative_strides():
    x = X[::-1, ::-1, ::-1, ::-1].copy()[::-1, ::-1, ::-1, ::-1]
    w = W[:, ::-1].copy()[:, ::-1]
    assert x.strides[0] < 0 and w.strides[1] < 0
    check(x, w, B[::-1].copy()[::-1])


def test_strided_views():
    big = np.zeros((4, 6, 8, 10))
    big[::2, ::2, ::2, ::2] = X
    check(big[::2, ::2, ::2, ::2], W)


def test_transposed_view():
    check(np.ascontiguousarray(X.transpose(3, 2, 1, 0)).transpose(3, 2, 1, 0), W)


def test_broadcast_zero_stride_views():
    x = np.broadcast_to(X[:1], X.shape)
    w = np.broadcast_to(W[:, :1], W.shape)
    assert 0 in x.strides and 0 in w.strides
    y = tconv.conv_transpose(x, w, B, **KW)
    assert_close(y, reference.conv_transpose(np.array(x), np.array(w), B, **KW))


def unaligned(a):
    raw = bytearray(a.nbytes + 1)
    u = np.frombuffer(raw, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    u[...] = a
    assert u.ctypes.data % a.dtype.itemsize != 0 and not u.flags.aligned
    return u


def test_unaligned_inputs():
    check(unaligned(X), unaligned(W), unaligned(B))


def test_unaligned_float32():
    x, w = X.astype(f32), W.astype(f32)
    y = tconv.conv_transpose(unaligned(x), unaligned(w), **KW)
    np.testing.assert_array_equal(y, tconv.conv_transpose(x, w, **KW))


def test_read_only_inputs_work():
    x, w, b = X.copy(), W.copy(), B.copy()
    for a in (x, w, b):
        a.flags.writeable = False
    check(x, w, b)


def test_read_only_buffer_input():
    x = np.frombuffer(X.tobytes(), dtype=f64).reshape(X.shape)
    assert not x.flags.writeable
    check(x, W)


def test_unbatched_input_and_out():
    out = np.empty(EXPECTED.shape[1:])
    y = tconv.conv_transpose(X[0], W, B, out=out, **KW)
    assert y is out
    assert_close(out, EXPECTED[0])


def test_out_is_filled_and_returned():
    out = np.full(EXPECTED.shape, np.nan)
    assert tconv.conv_transpose(X, W, B, out=out, **KW) is out
    assert_close(out, EXPECTED)


# ---- out that must be refused, untouched ---------------------------------------------------


def sentinel(shape=EXPECTED.shape, dtype=f64, order="C"):
    return np.full(shape, 7.0, dtype=dtype, order=order)


def refuse(out, exc, *words, **kw):
    before = np.array(out, copy=True)
    with raises(exc, *words):
        tconv.conv_transpose(
            kw.pop("x", X), kw.pop("w", W), kw.pop("b", B), out=out, **{**KW, **kw}
        )
    np.testing.assert_array_equal(out, before)


def test_read_only_out():
    out = sentinel()
    out.flags.writeable = False
    refuse(out, ValueError, "out is read-only", "writeable")


def test_broadcast_out():
    out = np.broadcast_to(np.float64(7.0), EXPECTED.shape)
    refuse(out, ValueError, "out is read-only")


def test_out_of_wrong_shape():
    assert EXPECTED.shape == (2, 2, 8, 7)
    refuse(
        sentinel((2, 2, 8, 3)),
        ValueError,
        "out has shape (2, 2, 8, 3)",
        "expected (2, 2, 8, 7)",
        "np.empty((2, 2, 8, 7)",
    )


def test_out_with_batch_axis_for_unbatched_x():
    out = sentinel()[:1]
    before = out.copy()
    with raises(ValueError, "out has shape (1, 2, 8, 7)", "expected (2, 8, 7)"):
        tconv.conv_transpose(X[0], W, B, out=out, **KW)
    np.testing.assert_array_equal(out, before)


def test_out_of_wrong_dtype():
    refuse(sentinel(dtype=f32), ValueError, "out has dtype float32", "expected float64")


def test_fortran_out():
    refuse(sentinel(order="F"), ValueError, "C-contiguous", "Fortran-ordered")


def test_strided_out():
    big = np.full(EXPECTED.shape[:-1] + (14,), 7.0)
    refuse(big[..., ::2], ValueError, "C-contiguous", "non-contiguous")


def test_unaligned_out():
    refuse(unaligned(sentinel()), ValueError, "out is not aligned", "freshly allocated")


def test_out_not_an_array():
    with raises(TypeError, "out must be a numpy array", "list"):
        tconv.conv_transpose(X, W, B, out=EXPECTED.tolist(), **KW)


def test_out_aliasing_x():
    # A 1x1 kernel with stride 1 keeps the shape, so out=x is shape- and dtype-correct.
    x = X.copy()
    before = x.copy()
    with raises(ValueError, "out shares memory with x", "separate output array"):
        tconv.conv_transpose(x, np.ones((3, 3, 1, 1)), out=x)
    np.testing.assert_array_equal(x, before)


def test_out_overlapping_a_view_of_x():
    buf = np.zeros((2, 3, 4, 5))
    x = buf[:, :, ::-1]
    with raises(ValueError, "shares memory with x"):
        tconv.conv_transpose(x, np.ones((3, 3, 1, 1)), out=buf)


def test_out_aliasing_weight():
    w = np.zeros((3, 2, 3, 3))
    out = w.reshape(-1)[: 2 * 3 * 3].reshape(2, 3, 3)
    x = np.ones((3, 1, 1))
    with raises(ValueError, "out shares memory with weight"):
        tconv.conv_transpose(x, w, out=out)


def test_out_aliasing_bias():
    storage = np.zeros(2 * 2 * 8 * 7 + 2)
    out = storage[2:].reshape(EXPECTED.shape)
    bias = storage[2:4]
    with raises(ValueError, "out shares memory with bias"):
        tconv.conv_transpose(X, W, bias, out=out, **KW)


def test_out_aliasing_the_original_of_a_byte_swapped_x():
    storage = np.zeros(EXPECTED.size, dtype=">f8")
    x = storage[: X.size].reshape(X.shape)
    out = storage.view(np.uint8)  # wrong dtype already, but still an alias of x
    with pytest.raises(ValueError):
        tconv.conv_transpose(x, W, out=out)


@pytest.mark.parametrize(
    "bad",
    [
        dict(stride=0),
        dict(padding=9),
        dict(b=np.ones(5)),
        dict(w=W.astype(f32)),
        dict(output_padding=(5, 0)),
        dict(output_size=(99, 99), output_padding=None),
    ],
)
def test_no_partial_write_on_any_error(bad):
    out = sentinel()
    before = out.copy()
    kw = {**KW, **{k: v for k, v in bad.items() if k not in ("b", "w")}}
    with pytest.raises((TypeError, ValueError)):
        tconv.conv_transpose(X, bad.get("w", W), bad.get("b", B), out=out, **kw)
    np.testing.assert_array_equal(out, before)
