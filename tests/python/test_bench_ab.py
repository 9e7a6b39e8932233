"""bench/ab.py, the tool that times one build against another: its arguments, the order of its
worker processes, its arithmetic on synthetic times, and one real comparison whose builds
differ in the ISA they may use (which the table must show per process)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import tconv
from tconv import _core

AB = Path(__file__).resolve().parents[2] / "bench" / "ab.py"
spec = importlib.util.spec_from_file_location("bench_ab", AB)
assert spec is not None and spec.loader is not None
ab = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = ab  # dataclasses look their module up there
spec.loader.exec_module(ab)


def test_a_build_is_a_name_a_directory_and_its_environment():
    b = ab.parse_build("off=/tmp/x+TCONV_MAX_ISA=avx2+A=1=2")
    assert (b.name, b.path, b.env) == ("off", "/tmp/x", {"TCONV_MAX_ISA": "avx2", "A": "1=2"})
    assert ab.parse_build("new=python").env == {}


@pytest.mark.parametrize("text", ["python", "=python", "new=", "new=python+NOVALUE", "a=b+=1"])
def test_a_malformed_build_says_what_a_build_is(text):
    with pytest.raises(ValueError, match=r"NAME=DIR|VAR=VALUE"):
        ab.parse_build(text)


def test_the_builds_processes_alternate():
    assert ab.slot_order(2, 2) == [0, 1, 0, 1]
    assert ab.slot_order(3, 1) == [0, 1, 2]


def test_the_rounds_common_pace_divides_out():
    # The machine's speed moves each round by the same factor in every process; build 1 takes
    # 0.9x build 0's time, and the second process of build 0 sits 10 % slow throughout.
    pace = [1.0, 1.7, 0.8, 1.3, 2.1]
    ref = [p * 2.0 for p in pace]
    slots = [
        [p * 2.0 for p in pace],
        [p * 1.8 for p in pace],
        [p * 2.2 for p in pace],
        [p * 1.8 for p in pace],
    ]
    s = ab.summarize(ref, slots, [0, 1, 0, 1])
    assert s["slots"] == pytest.approx([1.0, 0.9, 1.1, 0.9])
    assert s["builds"][0] == pytest.approx((1.05, 1.0, 1.1))
    assert s["builds"][1] == pytest.approx((0.9, 0.9, 0.9))


def test_a_slot_short_of_rounds_is_refused():
    with pytest.raises(ValueError, match="one time per round"):
        ab.summarize([1.0, 1.0], [[1.0]], [0])


def test_a_comparison_runs_each_build_with_its_own_environment():
    if _core.active_isa() == "portable":
        pytest.skip("needs a SIMD ISA to differ from the portable one")
    path = str(Path(tconv.__file__).resolve().parents[1])
    out = subprocess.run(
        [
            sys.executable,
            str(AB),
            "--build",
            f"simd={path}",
            "--build",
            f"portable={path}+TCONV_MAX_ISA=portable",
            "--layers",
            "centernet_dw_64",
            "--rounds",
            "2",
            "--processes",
            "2",
            "--block",
            "0.001",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout.splitlines()
    rows = [line.split() for line in out if line.startswith("  ") and "GFLOP/s" in line]
    assert [r[0] for r in rows] == ["simd", "portable", "simd", "portable"]
    assert {r[1] for r in rows if r[0] == "simd"} == {_core.active_isa()}
    assert {r[1] for r in rows if r[0] == "portable"} == {"portable"}
    summary = [line.split() for line in out if "time / reference" in line]
    assert [r[0] for r in summary] == ["simd", "portable"]
