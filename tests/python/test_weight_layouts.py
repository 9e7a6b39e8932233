"""Weights in any memory layout are packed to the same numbers.

The fast path repacks the weights into per-phase panels, reading them along whichever axis is
contiguous: PyTorch's (C_in, C_out/g, *k) order, Keras's (*k, C_out/g, C_in) order, and any view
(transposed, Fortran, reversed, strided). Each layout is compared with the naive scatter of
tconv.reference on the same logical weights, with groups, a channel count that leaves a partial
panel, and weights large enough (over 1 MiB) to be packed on several threads.
"""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import reference

from conftest import assert_close, assert_close_in_norm


def _views(w: np.ndarray):
    """The same logical weights laid out in memory in different ways."""
    yield "c", np.ascontiguousarray(w)
    yield "fortran", np.asfortranarray(w)
    # C_out contiguous: the output-channel axis last in memory.
    perm = [0, *range(2, w.ndim), 1]
    yield "cout_inner", np.ascontiguousarray(w.transpose(perm)).transpose(np.argsort(perm))
    # C_in contiguous.
    perm = [*range(1, w.ndim), 0]
    yield "cin_inner", np.ascontiguousarray(w.transpose(perm)).transpose(np.argsort(perm))
    reversed_ = np.ascontiguousarray(w[::-1, ::-1])[::-1, ::-1]
    yield "negative", reversed_
    big = np.zeros((w.shape[0], w.shape[1] * 2, *w.shape[2:]), w.dtype)
    big[:, ::2] = w
    yield "strided", big[:, ::2]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
@pytest.mark.parametrize(
    "cin,cout_g,groups,kernel,stride,padding",
    [
        (6, 17, 1, (3, 3), 2, 1),  # partial panel, overlapping taps
        (8, 5, 2, (4, 4), 2, 1),  # groups, 5 outputs per group
        (6, 3, 3, (3, 2), (2, 1), 0),  # tiny C_out per group
        (5, 24, 1, (2, 2), 2, 0),  # kernel == stride
        (35, 9, 1, (4, 4), 2, 1),  # input channels packed in runs of 16, the last one partial
    ],
)
def test_layouts_agree_with_reference(
    dtype, data_format, cin, cout_g, groups, kernel, stride, padding
):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((2, cin, 5, 4)).astype(dtype)
    w_torch = rng.standard_normal((cin, cout_g, *kernel)).astype(dtype)
    bias = rng.standard_normal(cout_g * groups).astype(dtype)
    kw = dict(stride=stride, padding=padding, groups=groups, data_format=data_format)
    if data_format == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        logical = np.ascontiguousarray(w_torch.transpose(2, 3, 1, 0))  # (*k, C_out/g, C_in)
    else:
        logical = w_torch
    want = reference.conv_transpose(x, logical, bias, **kw)
    for name, w in _views(logical):
        np.testing.assert_array_equal(w, logical)
        got = tconv.conv_transpose(x, w, bias, **kw)
        assert_close_in_norm(got, want, dtype, msg=name)
        plan = tconv.ConvTranspose(
            w, bias, stride=stride, padding=padding, groups=groups, data_format=data_format
        )
        assert_close_in_norm(plan(x), want, dtype, msg=f"plan, {name}")


@pytest.mark.parametrize("data_format", ["channels_first", "channels_last"])
def test_large_weights_pack_on_threads_identically(data_format):
    """2 MiB of float64 weights: packed on several threads, the result is bit-identical."""
    rng = np.random.default_rng(3)
    cin, cout, k = 256, 40, 5
    x = rng.standard_normal((1, cin, 3, 2))
    w = rng.standard_normal((cin, cout, k, k))
    assert w.nbytes > 1 << 20
    if data_format == "channels_last":
        x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        w = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    kw = dict(stride=2, padding=1, data_format=data_format)
    threads = tconv.get_num_threads()
    try:
        results = []
        for n in (1, 2, 3):
            tconv.set_num_threads(n)
            results.append(tconv.conv_transpose(x, w, **kw))
    finally:
        tconv.set_num_threads(threads)
    for r in results[1:]:
        np.testing.assert_array_equal(r, results[0])
    assert_close(results[0], reference.conv_transpose(x, w, **kw))
