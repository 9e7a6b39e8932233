"""ISA names across architectures: 'neon' is known everywhere, available only on AArch64, a
cap at either 256-bit-tier vector ISA leaves the vector kernels of the CPU at hand, and
'avx512' sits one tier above them."""

from __future__ import annotations

import platform

import numpy as np
import pytest

import tconv
from tconv import _core, reference

from conftest import assert_close, reachable_isas

ISAS = tconv.available_isas()


@pytest.fixture
def restore_cap():
    yield
    tconv.set_max_isa(ISAS[0])


def test_neon_listed_exactly_on_aarch64():
    on_arm = platform.machine().lower() in ("aarch64", "arm64")
    assert ("neon" in ISAS) == on_arm
    assert ISAS[-1] == "portable"
    if on_arm:
        assert ISAS == ["neon", "portable"]


BEST_BELOW_AVX512 = next(i for i in ISAS if i != "avx512")
REACHABLE_BELOW_AVX512 = next(i for i in reachable_isas() if i != "avx512")


@pytest.mark.parametrize("name", ["avx2", "neon", "NEON"])
def test_vector_caps_keep_the_best_isa(restore_cap, name):
    tconv.set_max_isa("portable")
    assert _core.active_isa() == "portable"
    tconv.set_max_isa(name)
    assert _core.active_isa() == REACHABLE_BELOW_AVX512


@pytest.mark.parametrize("name", ["avx512", "AVX512"])
def test_avx512_cap_allows_the_best_isa(restore_cap, name):
    tconv.set_max_isa("portable")
    tconv.set_max_isa(name)
    assert _core.active_isa() == reachable_isas()[0]


def test_avx512_listed_only_above_avx2():
    if "avx512" in ISAS:
        assert ISAS[:2] == ["avx512", "avx2"]


def test_env_cap_at_avx2_skips_avx512():
    import os
    import subprocess
    import sys

    env = dict(os.environ, TCONV_MAX_ISA="avx2")
    out = subprocess.run(
        [sys.executable, "-c", "from tconv import _core; print(_core.active_isa())"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == BEST_BELOW_AVX512


def test_unknown_name_lists_neon(restore_cap):
    with pytest.raises(ValueError, match="'neon'"):
        tconv.set_max_isa("sve9")


def test_neon_cap_computes_the_reference(restore_cap):
    tconv.set_max_isa("neon")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9)).astype(np.float32)
    w = rng.standard_normal((3, 5, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    got = tconv.conv_transpose(x, w, b, stride=2, padding=1)
    want = reference.conv_transpose(x, w, b, stride=2, padding=1)
    assert_close(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("cout", [2, 20])  # the position-vector and the channel-vector kernels
def test_the_capped_isa_is_the_one_that_ran(restore_cap, dtype, cout):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 3, 11)).astype(dtype)
    w = rng.standard_normal((3, cout, 4)).astype(dtype)
    for isa in reachable_isas():
        tconv.set_max_isa(isa)
        tconv.conv_transpose(x, w, stride=2)
        assert _core.last_call_isa() == isa
