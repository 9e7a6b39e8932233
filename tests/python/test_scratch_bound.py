"""Working memory stays in proportion to the work, on every layer.

The core's drivers keep their scratch (tap tables, row buffers, pair lists) within 10 % of the
output or 4 MiB, whichever is larger (kScratchShare and kScratchFloorBytes in cpp/src/buffer.hpp);
a driver whose tables would not fit declines the layer. Long kernels on few channels used to
build tap tables of (output length x kernel) entries: gigabytes for a one-channel signal.
An allocation that fails anyway raises a MemoryError naming the buffer, its size and the fix.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tconv
from tconv import _core

from conftest import assert_close_in_norm, channels, layer_inputs, layers

SCRATCH_FLOOR = 4 * 2**20  # kScratchFloorBytes
SCRATCH_SHARE = 0.10  # kScratchShare


def _assert_scratch_bounded(y: np.ndarray) -> None:
    scratch = _core.last_call_memory()["scratch_bytes"]
    limit = max(SCRATCH_SHARE * y.nbytes, SCRATCH_FLOOR)
    assert scratch <= limit, f"{scratch} B of scratch for a {y.nbytes} B output {y.shape}"


@pytest.fixture
def threads_restored():
    t = tconv.get_num_threads()
    yield
    tconv.set_num_threads(t)


def _signal_oracle(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """One channel, no padding: y = x upsampled by `stride` (zeros between), convolved with w."""
    up = np.zeros((len(x) - 1) * stride + 1)
    up[::stride] = x
    return np.convolve(up, w.astype(np.float64))


# (x shape, w shape, stride, data_format): one-channel signals with long kernels, tall
# kernels on a 1-wide last dim, and two-channel depthwise signals.
SIGNALS = [
    ((1, 30000, 1), (1024, 1, 1), 1, "channels_last"),
    ((1, 100000, 1), (256, 1, 1), 8, "channels_last"),
    ((1, 1, 30000, 1), (1, 1, 1024, 1), 1, "channels_first"),
    ((1, 120000, 1), (2000, 1, 1), 1, "channels_last"),
    ((1, 2, 40000, 1), (2, 1, 512, 1), 1, "channels_first"),
    ((1, 1, 30000), (1, 1, 1024), 1, "channels_first"),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("xs, ws, stride, fmt", SIGNALS)
def test_long_kernel_signals_are_right_in_bounded_memory(
    xs, ws, stride, fmt, threads, threads_restored
):
    tconv.set_num_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal(ws).astype(np.float32)
    groups = xs[1] if fmt == "channels_first" and ws[1] == 1 else 1
    y = tconv.conv_transpose(x, w, stride=stride, groups=groups, data_format=fmt)
    _assert_scratch_bounded(y)
    # Each channel is its own one-channel signal: compare it with np.convolve.
    cf = fmt == "channels_first"
    for c in range(xs[1] if cf else xs[-1]):
        xc = (x[0, c] if cf else x[0, ..., c]).ravel()
        wc = (w[c, 0] if cf else w[..., 0, c]).ravel()
        yc = (y[0, c] if cf else y[0, ..., c]).ravel()
        assert_close_in_norm(yc, _signal_oracle(xc, wc, stride), dtype=np.float32)


def _scatter_by_input(x: np.ndarray, w: np.ndarray, dilation: tuple) -> np.ndarray:
    """channels_first, groups 1, stride 1, no padding: each input cell adds its weights, taps
    `dilation` apart, at its own position. Loops over input cells only (the kernels are long)."""
    n, _cin = x.shape[:2]
    k = w.shape[2:]
    out = [i + d * (kk - 1) for i, kk, d in zip(x.shape[2:], k, dilation)]
    y = np.zeros((n, w.shape[1], *out))
    for pos in np.ndindex(*x.shape[2:]):
        taps = tuple(slice(i, i + d * (kk - 1) + 1, d) for i, kk, d in zip(pos, k, dilation))
        y[(slice(None), slice(None), *taps)] += np.einsum(
            "nc,co...->no...",
            x[(slice(None), slice(None), *pos)].astype(np.float64),
            w.astype(np.float64),
        )
    return y


@pytest.mark.parametrize(
    "xs, ws",
    [
        ((2, 1, 70, 1), (1, 1, 70, 100)),  # one input column under a 100-wide kernel
        ((1, 3, 80, 2), (3, 2, 50, 120)),
        ((1, 2, 40, 3), (2, 2, 60, 300)),  # 40 rows, 3 columns: 136 ms before, 5 ms after
    ],
)
def test_a_narrow_input_beside_a_long_one_is_vectorised_along_the_long_one(
    xs, ws, threads_restored
):
    # The last dim's input is what a kernel call loads: with one or two cells there, the
    # drivers made one call per tap of the other dim, each of a few useful lanes.
    tconv.set_num_threads(2)
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    y = tconv.conv_transpose(x, w)
    assert _core.last_call_memory()["dims_reordered"]
    assert _core.last_call_isa() == tconv.available_isas()[0]
    assert _core.last_call_kernel() == ("depthwise" if xs[1] == 1 else "phase_positions")
    _assert_scratch_bounded(y)
    assert_close_in_norm(y, _scatter_by_input(x, w, (1, 1)), dtype=np.float64)


def test_row_buffers_over_the_budget_send_the_layer_to_the_portable_kernel(threads_restored):
    # A 60 x 20 input under a 60 x 400 kernel dilated 4 wide: the phase driver's pair lists
    # would be 60 rows x ~1600 shifts per thread, 3.8 MB on one thread, 7.7 MB on two (beyond
    # the 4 MiB floor for a 1.5 MB output): on two it declines.
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 2, 60, 20)), rng.standard_normal((2, 1, 60, 400))
    want = _scatter_by_input(x, w, (1, 4))
    ran, kernel = {}, {}
    for threads in (1, 2):
        tconv.set_num_threads(threads)
        y = tconv.conv_transpose(x, w, dilation=(1, 4))
        ran[threads] = _core.last_call_isa()
        kernel[threads] = _core.last_call_kernel()
        _assert_scratch_bounded(y)
        assert_close_in_norm(y, want, dtype=np.float64)
    assert ran == {1: tconv.available_isas()[0], 2: "portable"}
    # only the AVX-512 position kernels read their input in place; the AVX2 ones copy its rows
    one = "phase_positions_in_place" if ran[1] == "avx512" else "phase_positions"
    assert kernel == {1: one, 2: "portable"}


@st.composite
def _long_dims(draw, rank):
    """(kernel, stride, dilation, size, padding) per dim: long dims have kernels of 64-600
    taps (and inputs up to 400), short ones kernels up to 5 (1-D: inputs up to 400 too)."""
    dims = []
    for _ in range(rank):
        long_dim = draw(st.booleans())
        k = draw(st.integers(64, 600)) if long_dim else draw(st.integers(1, 5))
        s = draw(st.integers(1, 8))
        i = draw(st.integers(1, 400)) if long_dim or rank == 1 else draw(st.integers(1, 6))
        dims.append((k, s, 1, i, 0))
    return dims


LONG_KERNELS = layers(
    channels=st.one_of(
        channels(st.integers(1, 3), st.just(1), st.integers(1, 2)),  # depthwise
        channels(st.just(1), st.integers(1, 3), st.integers(1, 2)),
    ),
    ranks=(1, 2),
    batch=st.integers(1, 2),
    layouts=("c",),
    dims=lambda rank: _long_dims(rank),
    max_products=50_000_000,
)


@given(LONG_KERNELS, st.integers(1, 2))
def test_scratch_stays_within_a_tenth_of_the_output_or_the_floor(layer, threads):
    x, w, _, kw = layer_inputs(layer)
    t = tconv.get_num_threads()
    tconv.set_num_threads(threads)
    try:
        y = tconv.conv_transpose(x, w, **kw)
    finally:
        tconv.set_num_threads(t)
    _assert_scratch_bounded(y)


def _run_child(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300
    )


def test_long_signal_runs_under_an_address_space_limit():
    # 4 GiB of address space was not enough for the tap tables of this 2000-tap kernel.
    proc = _run_child("""
        import resource, numpy as np, tconv
        resource.setrlimit(resource.RLIMIT_AS, (4 * 2**30, resource.RLIM_INFINITY))
        x = np.ones((1, 120000, 1), np.float32)
        w = np.ones((2000, 1, 1), np.float32)
        y = tconv.conv_transpose1d(x, w, data_format="channels_last")
        print("ok", y.shape, float(y[0, 1000, 0]))
    """)
    assert proc.returncode == 0, proc.stderr
    assert "ok (1, 121999, 1) 1001.0" in proc.stdout, proc.stdout


def test_failed_allocation_names_the_buffer_its_size_and_the_fix():
    # 1 GiB of weights fits; their packed copy does not fit the 0.5 GiB left under the limit.
    # (200 input positions: on up to 128 the functional call reads the weights in place.)
    proc = _run_child("""
        import resource, numpy as np, tconv
        w = np.ones((2**14, 2**14, 1, 1), np.float32)
        x = np.ones((1, 2**14, 1, 200), np.float32)
        with open("/proc/self/status") as f:
            vm = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize")][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm + 2**29, resource.RLIM_INFINITY))
        try:
            tconv.conv_transpose(x, w)
        except MemoryError as e:
            print("MemoryError:", e)
        print("ok", tconv.conv_transpose(x[:, :4], w[:4, :4]).shape)
    """)
    assert proc.returncode == 0, proc.stderr
    assert "ok (1, 4, 1, 200)" in proc.stdout, proc.stdout
    for words in (
        "MemoryError: tconv needed 1.0 GiB for the weights packed for the kernels",
        "address-space limit",
    ):
        assert words in proc.stdout, proc.stdout
