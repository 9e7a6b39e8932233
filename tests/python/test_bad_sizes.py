"""Sizes: empty batches and channel counts give empty (or bias-only) results like the
frameworks; sizes that overflow int64 or exceed the machine's memory are refused before
anything is allocated; Python ints beyond int64 get a clear OverflowError."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tconv
from tconv import ShapeError

from conftest import raises

f32 = np.float32
W = np.ones((3, 2, 3, 3), f32)


# ---- zero-size dimensions ------------------------------------------------------------------


def test_zero_batch_gives_an_empty_result():
    y = tconv.conv_transpose(np.ones((0, 3, 4, 4), f32), W, np.ones(2, f32), stride=2)
    assert y.shape == (0, 2, 9, 9) and y.dtype == f32


def test_zero_batch_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.ones((0, 3, 4, 5), f32)
    expected = torch.nn.functional.conv_transpose2d(
        torch.from_numpy(x), torch.from_numpy(W), stride=(2, 1), padding=1
    )
    y = tconv.conv_transpose(x, W, stride=(2, 1), padding=1)
    assert y.shape == tuple(expected.shape)


def test_zero_batch_with_out():
    out = np.empty((0, 2, 6, 6), f32)
    assert tconv.conv_transpose(np.ones((0, 3, 4, 4), f32), W, out=out) is out


def test_zero_batch_channels_last():
    y = tconv.conv_transpose(
        np.ones((0, 4, 4, 3), f32), np.ones((3, 3, 2, 3), f32), data_format="channels_last"
    )
    assert y.shape == (0, 6, 6, 2)


def test_zero_input_channels_is_an_empty_sum():
    # TensorFlow and JAX return bias (or zeros); PyTorch refuses C_in = 0 with an opaque error.
    y = tconv.conv_transpose(
        np.ones((2, 0, 4, 4), f32), np.ones((0, 2, 3, 3), f32), np.array([1.5, -2.0], f32)
    )
    assert y.shape == (2, 2, 6, 6)
    np.testing.assert_array_equal(y[:, 0], 1.5)
    np.testing.assert_array_equal(y[:, 1], -2.0)
    y = tconv.conv_transpose(np.ones((0, 4, 4), f32), np.ones((0, 2, 3, 3), f32))
    np.testing.assert_array_equal(y, np.zeros((2, 6, 6), f32))


def test_zero_output_channels_is_empty():
    y = tconv.conv_transpose(
        np.ones((1, 3, 4, 4), f32), np.ones((3, 0, 3, 3), f32), np.ones(0, f32)
    )
    assert y.shape == (1, 0, 6, 6)


def test_zero_spatial_size_is_refused():
    with raises(
        ShapeError,
        "x must have at least one element along every spatial dimension",
        "got size 0",
        "(1, 3, 0, 4)",
    ):
        tconv.conv_transpose(np.ones((1, 3, 0, 4), f32), W)


# ---- Python ints beyond int64 --------------------------------------------------------------


@pytest.mark.parametrize("name", ["stride", "dilation", "padding", "output_padding", "groups"])
def test_python_int_beyond_int64(name):
    with raises(OverflowError, f"{name}=1180591620717411303424", "64-bit", "2**63"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, **{name: 2**70})


def test_python_int_beyond_int64_per_dim():
    with raises(OverflowError, "stride[1]=", "64-bit"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, stride=(1, -(2**64)))


def test_output_size_beyond_int64():
    with raises(OverflowError, "output_size[0]=", "64-bit"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, output_size=(2**64, 3))


def test_numpy_unsigned_beyond_int64():
    with raises(OverflowError, "stride=18446744073709551615"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, stride=np.uint64(2**64 - 1))


# ---- int64 overflow of products, checked before allocating ----------------------------------


@pytest.mark.parametrize("stride", [2**62, 2**63 - 1])
def test_output_length_overflowing_int64(stride):
    with raises(OverflowError, "overflows a 64-bit integer", f"stride=({stride}, 1)", "typo"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, stride=(stride, 1))


def test_element_count_overflowing_int64():
    with raises(OverflowError, "number of elements of the output", "overflows"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, stride=2**40)


def test_dilation_overflowing_int64():
    with raises(OverflowError, "overflows", "dilation=(4611686018427387904, 1)"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, dilation=(2**62, 1), output_padding=0)


def test_huge_padding_is_a_shape_error_not_a_wrap_around():
    with pytest.raises((ShapeError, OverflowError), match=r"padding|overflow"):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, padding=2**62)


# ---- results larger than the machine -------------------------------------------------------


def test_result_larger_than_memory_is_a_memory_error_naming_the_size():
    # 1 x 2 x 3145731^2 float32 = 72 TiB.
    with raises(
        MemoryError,
        "(1, 2, 3145731, 3145731)",
        "72.0 TiB",
        "more than this machine",
        "out= a np.memmap",
    ):
        tconv.conv_transpose(np.ones((1, 3, 4, 4), f32), W, stride=2**20)


def test_memory_error_from_a_broadcast_input_suggests_splitting_the_batch():
    x = np.broadcast_to(f32(1), (64, 3, 2**14, 2**14))
    with raises(MemoryError, "split x along its batch axis"):
        tconv.conv_transpose(x, W)


def test_address_space_limit_is_respected():
    # Under `ulimit -v` (RLIMIT_AS) a 4 GiB result is refused by name before allocation, and
    # small calls still work.
    code = textwrap.dedent("""
        import resource, numpy as np, tconv
        resource.setrlimit(resource.RLIMIT_AS, (3 * 2**30, resource.RLIM_INFINITY))
        x = np.ones((1, 1, 2, 2), np.float32)
        w = np.ones((1, 1, 1, 1), np.float32)
        try:
            tconv.conv_transpose(x, w, stride=32767)
        except MemoryError as e:
            print("MemoryError:", e)
        print("ok", tconv.conv_transpose(x, w, stride=3).shape)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "ok (1, 1, 4, 4)" in proc.stdout, proc.stdout
    assert "MemoryError:" in proc.stdout, proc.stdout
    for words in ("(1, 1, 32768, 32768)", "4.0 GiB", "address-space limit"):
        assert words in proc.stdout, proc.stdout
