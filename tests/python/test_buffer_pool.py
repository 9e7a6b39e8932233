"""Buffers of packed and copied weights: a functional call's reuse the buffer the previous call
freed, and large ones are advised as huge pages.

glibc hands large freed blocks back to the system, so a buffer allocated again faults each of
its pages in again (about 2.7 us a page on a KVM guest): a functional call packing 2 MiB of
weights took 60-150 page faults per call. The core keeps up to four freed buffers of 128 KiB or
more (128 MiB in all) for the next buffer of the same size. Values are checked against a
float64 per-tap scatter (conftest.tap_scatter), so a reused buffer's stale contents would show.
Buffers from 4 MiB start on a 2 MiB boundary and are advised as huge pages (as numpy does).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import tconv
from tconv import _core

from conftest import tap_scatter

# DCGAN's 256 -> 128 up-sampling at 16x16, batch 1: the phase driver packs its 2 MiB of weights.
X_SHAPE, C_OUT, K = (1, 256, 16, 16), 128, 4


def inputs(seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(X_SHAPE, dtype=np.float32)
    w = rng.standard_normal((X_SHAPE[1], C_OUT, K, K), dtype=np.float32)
    b = rng.standard_normal(C_OUT, dtype=np.float32)
    return x, w, b


def call(x, w, b):
    return tconv.conv_transpose(x, w, b, stride=2, padding=1)


def check(y, x, w, b):
    np.testing.assert_allclose(y, tap_scatter(x, w, b, 2, 1), rtol=1e-4, atol=1e-3)


def test_the_call_packs_weights_large_enough_to_keep(threads_restored):
    x, w, b = inputs(0)
    tconv.set_num_threads(1)
    call(x, w, b)
    assert _core.last_call_memory()["packed_weight_bytes"] == w.nbytes
    assert _core.last_call_kernel().startswith("phase_channel")
    assert _core.kept_weight_buffers() >= 1


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.skipif(
    sys.platform != "linux" or "ASAN_OPTIONS" in os.environ,
    reason="page-fault counts of glibc's allocator on Linux (ASan's allocator quarantines frees)",
)
def test_repeated_calls_take_no_page_faults(threads, threads_restored):
    import resource

    x, w, b = inputs(1)
    tconv.set_num_threads(threads)
    for _ in range(3):
        call(x, w, b)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        call(x, w, b)
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    # The packed weights are 512 pages a call; fresh buffers faulted 100-128 of them in each
    # time. Smaller buffers (row buffers, the result) may still fault a few, after other tests.
    pages = w.nbytes // 4096
    assert faults < 20 * pages // 10, f"{faults} page faults in 20 calls"


def test_reused_buffers_give_every_call_its_own_values():
    for seed in range(3, 7):
        x, w, b = inputs(seed)
        w[seed % 5] = 0.0  # each call's weights differ in a different input channel
        check(call(x, w, b), x, w, b)


def test_at_most_four_buffers_are_kept():
    w_big = np.ones((512, 256, 4, 4), np.float32)
    x = np.ones((1, 512, 2, 2), np.float32)
    for c_out in (96, 128, 160, 192, 224, 256):  # six sizes of packed weights, each freed
        tconv.conv_transpose(x, w_big[:, :c_out], stride=2, padding=1)
        assert _core.kept_weight_buffers() <= 4
    assert _core.kept_weight_buffers() >= 1


def _huge_pages_advisable():
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


@pytest.mark.skipif(
    not _huge_pages_advisable() or "ASAN_OPTIONS" in os.environ,
    reason="needs Linux transparent huge pages (madvise or always), without ASan's allocator",
)
def test_a_fresh_plan_faults_in_few_pages():
    # In a fresh process, so that no freed block is at hand: building a plan copies its 8 MiB
    # of weights (2048 pages of 4 KiB; they faulted in 2570 times in all before, 11 after).
    code = textwrap.dedent(
        """
        import resource
        import numpy as np
        import tconv
        w = np.ones((512, 256, 4, 4), np.float32)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        tconv.ConvTranspose(w, stride=2, padding=1)
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert int(out.stdout) < 1024
