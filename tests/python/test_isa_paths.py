"""Every instruction-set path and thread count gives the numbers of the portable kernel.

The portable kernel (an output-stationary gather, a different derivation from the phase-GEMM
kernels) is the oracle here; the phase kernels are compared to it on configurations drawn to hit
every algorithm: one GEMM (kernel == stride), phases without taps, tiny C_out, depthwise and
grouped layers, stride > kernel, dilation, asymmetric padding, output_padding, both data
formats, non-contiguous inputs, both dtypes, and sizes around the micro-kernel tiles.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tconv

from conftest import (
    assert_close_in_max_norm,
    channels,
    examples,
    layer_inputs,
    layers,
    reachable_isas,
)

ISAS = tconv.available_isas()


@pytest.fixture
def isa_cap():
    """Restores the process-wide ISA cap and thread count after a test."""
    threads = tconv.get_num_threads()
    yield
    tconv.set_max_isa(ISAS[0])
    tconv.set_num_threads(threads)


def run(isa, threads, *args, **kwargs):
    tconv.set_max_isa(isa)
    tconv.set_num_threads(threads)
    return tconv.conv_transpose(*args, **kwargs)


@settings(
    max_examples=examples(60),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cfg=layers())
def test_every_isa_and_thread_count_matches_portable(cfg, isa_cap):
    x, w, b, kw = layer_inputs(cfg)
    want = run("portable", 1, x, w, b, **kw)
    for isa in ISAS:
        first = None
        for threads in (1, 2, 3):
            got = run(isa, threads, x, w, b, **kw)
            assert got.shape == want.shape
            assert_close_in_max_norm(got, want, cfg["dtype"])
            if first is None:
                first = got
            else:
                # Disjoint outputs per thread: bit-identical for every thread count.
                assert np.array_equal(got.view(np.uint8), first.view(np.uint8))


SUITE_LIKE = [
    # (x shape, weight shape, kwargs): one per algorithm, at sizes with real work per thread.
    ((2, 64, 9, 11), (64, 40, 4, 4), dict(stride=2, padding=1)),  # phase GEMM
    ((1, 48, 13, 10), (48, 32, 2, 2), dict(stride=2)),  # kernel == stride
    ((1, 32, 17, 19), (32, 3, 4, 4), dict(stride=2, padding=1)),  # tiny C_out
    ((1, 24, 20, 21), (24, 1, 9, 9), dict(stride=3, padding=4, output_padding=2)),
    ((1, 40, 23, 18), (1, 1, 4, 4), None),  # depthwise (below)
    ((1, 32, 12, 12), (32, 24, 3, 3), dict(stride=2, padding=2, dilation=2, output_padding=1)),
    ((1, 64, 50), (64, 32, 16), dict(stride=8, padding=4)),  # 1-D, long kernel
    ((1, 16, 6, 7, 5), (16, 24, 2, 2, 2), dict(stride=2)),  # 3-D
    ((2, 16, 8, 9), (16, 20, 2, 2), dict(stride=3, padding=0)),  # stride > kernel
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(SUITE_LIKE)))
def test_suite_like_layers(case, dtype, isa_cap):
    xs, ws, kw = SUITE_LIKE[case]
    if kw is None:
        ws = (xs[1], 1, 4, 4)
        kw = dict(stride=2, padding=1, groups=xs[1])
    rng = np.random.default_rng(case)
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(ws[1] * kw.get("groups", 1)).astype(dtype)
    want = run("portable", 1, x, w, b, **kw)
    for isa in ISAS:
        outs = [run(isa, t, x, w, b, **kw) for t in (1, 2, 3)]
        assert_close_in_max_norm(outs[0], want, dtype)
        for o in outs[1:]:
            assert np.array_equal(o, outs[0])


def test_portable_path_can_be_forced(isa_cap):
    tconv.set_max_isa("portable")
    assert tconv._core.active_isa() == "portable"
    tconv.set_max_isa(ISAS[0])
    assert tconv._core.active_isa() == reachable_isas()[0]  # TCONV_MAX_ISA still caps it


def test_matches_torch_when_installed(isa_cap):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 32, 9, 10)).astype(np.float32)
    w = rng.standard_normal((32, 20, 3, 3)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    with torch.no_grad():
        want = torch.nn.functional.conv_transpose2d(
            torch.from_numpy(x),
            torch.from_numpy(w),
            torch.from_numpy(b),
            stride=2,
            padding=1,
            output_padding=1,
        ).numpy()
    for isa in ISAS:
        assert_close_in_max_norm(
            run(isa, 2, x, w, b, stride=2, padding=1, output_padding=1), want, np.float32
        )


@pytest.mark.filterwarnings("ignore:This process.*multi-threaded:DeprecationWarning")
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_forked_child_computes_after_parent_used_the_pool(isa_cap):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 32, 12, 12)).astype(np.float32)
    w = rng.standard_normal((32, 24, 4, 4)).astype(np.float32)
    tconv.set_num_threads(2)
    want = tconv.conv_transpose(x, w, stride=2, padding=1)  # starts the pool's workers
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: must not hang on the parent's (absent) workers
        ok = False
        try:
            tconv.set_num_threads(2)
            got = tconv.conv_transpose(x, w, stride=2, padding=1)
            ok = bool(np.array_equal(got, want))
        finally:
            os.write(wfd, b"1" if ok else b"0")
            os._exit(0)
    os.close(wfd)
    result = os.read(r, 1)
    os.close(r)
    os.waitpid(pid, 0)
    assert result == b"1"
    assert np.array_equal(tconv.conv_transpose(x, w, stride=2, padding=1), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels_last", [False, True])
def test_strided_weights_through_the_core_call(dtype, channels_last, isa_cap):
    # Fortran-ordered and reversed weight views reach the core call as they are, on every ISA.
    rng = np.random.default_rng(7)
    if channels_last:
        x = rng.standard_normal((5, 7, 6, 24)).astype(dtype)
        w = np.asfortranarray(rng.standard_normal((4, 4, 20, 24)).astype(dtype))
    else:
        x = rng.standard_normal((5, 24, 7, 6)).astype(dtype)
        w = rng.standard_normal((24, 20, 4, 4)).astype(dtype)[:, ::-1]
    b = rng.standard_normal(20).astype(dtype)
    kw = dict(
        stride=2, padding=1, data_format="channels_last" if channels_last else "channels_first"
    )
    want = run("portable", 1, x, w, b, **kw)
    g = tconv.ConvTranspose(w, b, **kw)._resolve(x.shape, None)[0]
    for isa in ISAS:
        tconv.set_max_isa(isa)
        whole = np.empty_like(want)
        tconv._core.conv_transpose(g, x, w, b, whole)
        assert_close_in_max_norm(whole, want, dtype)


# No padding or dilation, and per dim either kernel == stride or a single input position:
# the one-GEMM (pixel shuffle) path, next to its neighbours (tiny C_out, layouts).
UNPADDED = layers(
    channels=channels(
        groups=st.sampled_from([1, 1, 2]),
        cin_g=st.integers(1, 10),
        cout_g=st.sampled_from([1, 3, 5, 8, 16, 17, 40]),
    ),
    kernel=st.integers(1, 4),
    outer=st.integers(1, 14),
    last=st.integers(1, 14),
    geometries=("kernel_is_stride", "one_pixel"),
    batch=st.integers(1, 8),
    layouts=("c", "c", "strided", "fortran"),
)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(cfg=UNPADDED)
def test_kernel_equal_stride_and_one_pixel_inputs_match_portable(cfg, isa_cap):
    x, w, b, kw = layer_inputs(cfg)
    want = run("portable", 1, x, w, b, **kw)
    for isa in ISAS:
        outs = [run(isa, t, x, w, b, **kw) for t in (1, 2, 3)]
        assert_close_in_max_norm(outs[0], want, cfg["dtype"])
        for o in outs[1:]:
            assert np.array_equal(o.view(np.uint8), outs[0].view(np.uint8))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kernel_equal_stride_on_an_input_beyond_the_caches_matches_portable(dtype, isa_cap):
    """channels_last, kernel == stride, an input over 2 MiB: the GEMM reads it in place and
    fetches its rows ahead on the first tap; the numbers are those of the portable kernel."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 43, 41, 320)).astype(dtype)  # odd sizes: partial tiles
    assert x.nbytes > 2 << 20
    w = rng.standard_normal((2, 2, 40, 320)).astype(dtype)
    b = rng.standard_normal(40).astype(dtype)
    kw = dict(stride=2, data_format="channels_last")
    want = run("portable", 1, x, w, b, **kw)
    for isa in ISAS:
        outs = [run(isa, t, x, w, b, **kw) for t in (1, 2)]
        assert_close_in_max_norm(outs[0], want, dtype)
        assert np.array_equal(outs[1], outs[0])
