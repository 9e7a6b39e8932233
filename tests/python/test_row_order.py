"""The order in which the phase driver runs the output rows of three-dimensional layers.

With three or more dims, the output rows o = s * q + r of the dim before the last outer one (z
in a 3-D layer) read the same input rows for every phase r of one q. The driver runs those rows
side by side along the last outer dim, (q, y, r) rather than (z, y), so that its row cache still
holds their input rows: each input row is copied once where the kernel equals the stride (a 3-D
U-Net up-conv copied every input row twice in z order). The order must reach every output row
exactly once, also where the last q has fewer phases than the stride; these layers are compared
with the naive scatter of tconv.reference, and one and two threads must agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import _core, reference

from conftest import assert_close_in_norm, reachable_isas

CASES = [
    # (batch, C_in, C_out, input, kernel, stride, padding, output_padding)
    (1, 32, 24, (6, 5, 7), (2, 2, 2), 2, 0, 0),  # kernel == stride: one fill per input row
    (2, 24, 20, (5, 4, 6), (3, 3, 3), 2, 1, 1),  # k > s: phases with two taps, op in z
    (1, 20, 28, (4, 3, 5), (3, 2, 3), (3, 2, 2), (1, 0, 1), (2, 1, 1)),  # z-stride 3, a last
    # q with fewer phases than the stride (the output's z is not a multiple of 3)
    (1, 16, 24, (3, 6, 4), (4, 4, 2), (2, 3, 2), (1, 1, 0), (1, 0, 0)),
]

PHASE = reachable_isas()[0] != "portable"


def _arrays(case):
    n, cin, cout, size, k = case[:5]
    rng = np.random.default_rng(sum(size) + cin)
    return tuple(
        rng.standard_normal(shape).astype(np.float32).astype(np.float64)
        for shape in ((n, cin, *size), (cin, cout, *k), (cout,))
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES)
def test_three_dim_rows_match_the_reference_on_any_thread_count(case, dtype, threads_restored):
    x, w, b = _arrays(case)
    kw = dict(stride=case[5], padding=case[6], output_padding=case[7])
    want = reference.conv_transpose(x, w, b, **kw)
    got = {}
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        got[threads] = tconv.conv_transpose(x.astype(dtype), w.astype(dtype), b.astype(dtype), **kw)
        if PHASE:
            assert _core.last_call_kernel().startswith("phase_channel")
        assert_close_in_norm(got[threads], want, dtype)
    np.testing.assert_array_equal(got[1], got[2])


@pytest.mark.parametrize("threads", [1, 2])
def test_three_dim_unet_up_conv_copies_each_input_row_once(threads, threads_restored):
    """A 3-D U-Net up-conv (64 -> 32 channels, kernel 2 = stride 2, 16^3 float32 input): four
    output rows read each input row, two of them a plane apart in z."""
    if not PHASE:
        pytest.skip("the portable kernel copies no input rows")
    tconv.set_num_threads(threads)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 64, 16, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, 32, 2, 2, 2)).astype(np.float32)
    tconv.conv_transpose(x, w, stride=2)
    assert _core.last_call_kernel().startswith("phase_channel")
    copied = _core.last_call_memory()["input_copy_bytes"]
    assert x.nbytes <= copied <= 1.1 * x.nbytes, copied / x.nbytes
