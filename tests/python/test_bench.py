"""tconv bench: the structure of its results, the checks that keep a wrong peer out of the
table, float64, the FMA and copy probes, the roofline and the argument errors. Tiny layers and no timing assertions:
the figures themselves are for a person to read on a quiet machine."""

from __future__ import annotations

import copy
import itertools
import json
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest

import tconv
from tconv import _bench, _core

# Two tiny layers: an overlapping 2-D stride-2 kernel with output_padding, and a 1-D layer.
TINY = [
    {
        "name": "tiny_2d",
        "dims": 2,
        "batch": 2,
        "in_channels": 6,
        "out_channels": 5,
        "groups": 1,
        "input_size": [5, 4],
        "kernel_size": [3, 3],
        "stride": [2, 2],
        "padding": [1, 1],
        "output_padding": [1, 0],
        "dilation": [1, 1],
        "output_size": [10, 7],
        "quick": True,
    },
    {
        "name": "tiny_1d",
        "dims": 1,
        "batch": 1,
        "in_channels": 4,
        "out_channels": 3,
        "groups": 1,
        "input_size": [9],
        "kernel_size": [4],
        "stride": [2],
        "padding": [1],
        "output_padding": [0],
        "dilation": [1],
        "output_size": [18],
        "quick": True,
    },
    {
        "name": "tiny_dw",
        "dims": 2,
        "batch": 1,
        "in_channels": 4,
        "out_channels": 4,
        "groups": 4,
        "input_size": [6, 6],
        "kernel_size": [4, 4],
        "stride": [2, 2],
        "padding": [1, 1],
        "output_padding": [0, 0],
        "dilation": [1, 1],
        "output_size": [12, 12],
        "quick": False,
    },
]
for _l in TINY:
    _l["flops"] = (
        2
        * _l["batch"]
        * _l["in_channels"]
        * _l["out_channels"]
        // _l["groups"]
        * math.prod(_l["input_size"])
        * math.prod(_l["kernel_size"])
    )


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "tiny_suite.json"
    path.write_text(json.dumps({"about": "tiny layers for the tests", "layers": TINY}))
    return path


def _bench_cli(args, cwd):
    proc = subprocess.run(
        [sys.executable, "-m", "tconv", "bench", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _output_bytes(layer, itemsize):
    return layer["batch"] * layer["out_channels"] * math.prod(layer["output_size"]) * itemsize


def _compulsory_bytes(layer, itemsize):
    """x, w, b and y, each once, counted from the layer's description."""
    x = layer["batch"] * layer["in_channels"] * math.prod(layer["input_size"])
    w = layer["in_channels"] * layer["out_channels"] // layer["groups"]
    w *= math.prod(layer["kernel_size"])
    return (x + w + layer["out_channels"]) * itemsize + _output_bytes(layer, itemsize)


def _check_roofline(run, layers, itemsize, peak_gflops):
    """Every row's roofline recomputed from the JSON's raw figures: flops, bytes, the faster
    plan time, the run's FMA peak and copy bandwidth."""
    bw = run["bandwidth"]
    assert bw["source"].startswith("measured (np.copyto")
    assert math.isfinite(bw["gbps"]) and bw["gbps"] > 0
    for r, layer in zip(run["results"], layers):
        assert r["compulsory_bytes"] == _compulsory_bytes(layer, itemsize)
        roof = r["roofline"]
        plans = {k: r["times"][k] for k in ("tconv_plan", "tconv_cl")}
        assert roof["column"] == min(plans, key=plans.__getitem__)
        t_fma = r["flops"] / (peak_gflops * 1e9)
        t_mem = r["compulsory_bytes"] / (bw["gbps"] * 1e9)
        assert roof["t_fma"] == pytest.approx(t_fma) and roof["t_mem"] == pytest.approx(t_mem)
        assert roof["bound"] >= roof["t_fma"] and roof["bound"] >= roof["t_mem"]
        assert roof["bound"] == pytest.approx(max(t_fma, t_mem))
        assert roof["limiter"] == ("F" if t_fma >= t_mem else "M")
        assert roof["pct"] == pytest.approx(100 * max(t_fma, t_mem) / min(plans.values()))


# ---- end to end -------------------------------------------------------------------------------


def test_quick_run_writes_table_json_and_memory_fields(suite, tmp_path):
    proc = _bench_cli(
        [
            "--suite",
            str(suite),
            "--quick",
            "--threads",
            "1",
            "--peers",
            "numpy",
            "--repeats",
            "2",
            "--budget",
            "0.05",
            "--json",
            "r.json",
            "--png",
            "r.png",
        ],
        tmp_path,
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["build"]["dtype"] == "float32"
    (run,) = report["runs"]
    assert run["threads"] == 1
    assert run["peak"]["gflops"] > 0 and math.isfinite(run["peak"]["gflops"])
    want_src = "measured" if "avx2" in tconv.available_isas() else "estimated"
    assert run["peak"]["source"].startswith(want_src)
    # --quick: the quick layers only, in suite order.
    assert [r["layer"] for r in run["results"]] == ["tiny_2d", "tiny_1d"]
    _check_roofline(run, TINY, 4, run["peak"]["gflops"])
    for r, layer in zip(run["results"], TINY):
        assert r["output_bytes"] == _output_bytes(layer, 4)
        assert set(r["times"]) == {"tconv", "tconv_plan", "tconv_cl", "tconv_fcl", "numpy"}
        assert all(t > 0 for t in r["times"].values())
        assert r["errors"]["numpy"] <= _bench.TOLERANCE["float32"]
        for call in ("tconv", "tconv_plan"):
            assert r["kernel"][call].split("_")[0] in {"depthwise", "phase", "portable"}
            mem = r["memory"][call]
            assert isinstance(mem["scratch_bytes"], int) and mem["scratch_bytes"] >= 0
            assert isinstance(mem["packed_weight_bytes"], int) and mem["packed_weight_bytes"] >= 0
            assert mem["scratch_pct"] == pytest.approx(
                100 * mem["scratch_bytes"] / r["output_bytes"]
            )
            assert mem["packed_weight_pct"] == pytest.approx(
                100 * mem["packed_weight_bytes"] / r["output_bytes"]
            )
    out = proc.stdout
    assert "kernel (plan)" in out and run["results"][0]["kernel"]["tconv_plan"] in out
    assert "mem% f|p" in out and "pack%" in out and "tiny_2d" in out and "tiny_1d" in out
    assert "%roof" in out and f"copy bandwidth {run['bandwidth']['gbps']:.1f} GB/s" in out
    for r in run["results"]:
        row = next(ln for ln in out.splitlines() if ln.startswith(r["layer"] + " ")).split()
        roof = r["roofline"]
        assert (f"{roof['pct']:.0f}%", roof["limiter"]) in itertools.pairwise(row)
    assert "tiny_dw" not in out
    assert "geomean plan / best peer" in out
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert "matplotlib is not installed: no chart" in out
    else:
        assert (tmp_path / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_float64_runs_with_a_given_peak_on_two_thread_counts(suite, tmp_path):
    proc = _bench_cli(
        [
            "--suite",
            str(suite),
            "--layers",
            "tiny_2d,tiny_dw",
            "--dtype",
            "float64",
            "--threads",
            "1,2",
            "--peers",
            "numpy",
            "--peak",
            "7.5",
            "--repeats",
            "2",
            "--budget",
            "0.05",
            "--json",
            "r.json",
            "--png",
            "r.png",
        ],
        tmp_path,
    )
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["build"]["dtype"] == "float64"
    assert [run["threads"] for run in report["runs"]] == [1, 2]
    layers = [TINY[0], TINY[2]]
    for run in report["runs"]:
        assert run["peak"] == {"gflops": 7.5 * run["threads"], "source": "given (--peak)"}
        # The given peak is the FMA side of the roofline; the bandwidth is still measured.
        _check_roofline(run, layers, 8, 7.5 * run["threads"])
        r2d, rdw = run["results"]
        assert r2d["output_bytes"] == _output_bytes(TINY[0], 8)
        assert r2d["errors"]["numpy"] <= 1e-10
        # numpy's baseline has no groups: recorded as refused, not timed, not dropped.
        assert "numpy" not in rdw["times"] and "numpy" in rdw["refused"]
        assert {"tconv", "tconv_plan"} <= set(rdw["times"])
        # The two-thread run times the plan and the functional call on one thread too.
        for r in run["results"]:
            if run["threads"] == 1:
                assert "one_thread" not in r
            else:
                assert set(r["one_thread"]) == {"tconv", "tconv_plan"}
                assert all(t > 0 for t in r["one_thread"].values())
    assert "float64" in proc.stdout and "given (--peak)" in proc.stdout


# ---- the check in front of every peer -----------------------------------------------------------


def test_tconv_calls_are_timed_in_alternating_blocks():
    calls = []
    fs = {"fn": lambda: calls.append("f"), "plan": lambda: calls.append("p")}
    _bench._interleaved_times(fs, repeats=4, budget=10.0, blocks=4)
    # Per block one untimed call and repeats / blocks timed ones; the order reverses each block.
    assert "".join(calls) == "ffppppffffppppff"


def test_interleaved_ratio_holds_while_the_machine_slows_down():
    # A machine 3 % slower after every call; the plan costs half the functional call.
    clock, speed = [0.0], [1.0]

    def costs(seconds):
        def f():
            clock[0] += seconds * speed[0]
            speed[0] *= 1.03

        return f

    fs = {"fn": costs(2e-3), "plan": costs(1e-3)}
    times = _bench._interleaved_times(fs, repeats=32, budget=100.0, clock=lambda: clock[0])
    assert 1.8 < times["fn"] / times["plan"] < 2.2
    # Timed one after the other, the drift would have made the functional call look faster.
    clock[0], speed[0] = 0.0, 1.0
    alone = {
        name: _bench._interleaved_times({name: f}, 32, 100.0, clock=lambda: clock[0])[name]
        for name, f in fs.items()
    }
    assert alone["fn"] / alone["plan"] < 1.0


def test_agrees_rejects_wrong_outputs():
    rng = np.random.default_rng(3)
    want = rng.standard_normal((2, 3, 8, 8))
    ok, err = _bench._agrees(want.astype(np.float32), want, "float32")
    assert ok and err < 1e-6
    # A layout left unconverted, a transposed image, one wrong value, a NaN: all rejected.
    assert not _bench._agrees(np.moveaxis(want, 1, -1), want, "float32")[0]
    assert not _bench._agrees(want.swapaxes(2, 3), want, "float32")[0]
    bad = want.copy()
    bad[1, 2, 3, 4] += 0.01
    assert not _bench._agrees(bad, want, "float32")[0]
    bad[1, 2, 3, 4] = np.nan
    assert _bench._agrees(bad, want, "float32") == (False, math.inf)
    # float32 accuracy is not float64 accuracy.
    assert not _bench._agrees(want.astype(np.float32).astype(np.float64), want, "float64")[0]


def test_a_peer_with_a_wrong_output_or_an_error_is_not_timed(suite, monkeypatch, capsys):
    def wrong(x, w, b, layer):
        return (lambda: np.zeros((x.shape[0], w.shape[1], *layer["output_size"]), x.dtype)), None

    monkeypatch.setattr(_bench, "_numpy_col2im", wrong)
    threads = tconv.get_num_threads()
    try:
        res = _bench.run_one(1, ["tiny_2d"], "float32", 2, 0.05, ["numpy"], suite, probe=False)
    finally:
        tconv.set_num_threads(threads)
    (row,) = res["results"]
    assert "numpy" not in row["times"] and "disagrees" in row["refused"]["numpy"]
    assert row["errors"]["numpy"] > _bench.TOLERANCE["float32"]

    def refuses(x, w, b, layer):
        raise RuntimeError('first line\n  File "x.py", line 1\nthe real reason\n\t[[{{node}}]]')

    monkeypatch.setattr(_bench, "_numpy_col2im", refuses)
    try:
        res = _bench.run_one(1, ["tiny_1d"], "float32", 2, 0.05, ["numpy"], suite, probe=False)
    finally:
        tconv.set_num_threads(threads)
    (row,) = res["results"]
    assert "numpy" not in row["times"]
    assert row["refused"]["numpy"] == "RuntimeError: the real reason"
    assert (
        "tiny_1d: numpy refused the layer: RuntimeError: the real reason" in capsys.readouterr().out
    )


def _peer_agrees(maker, layer_name, dtype="float32", **kw):
    layer = next(la for la in TINY if la["name"] == layer_name)
    x, w, b = _bench._layer_inputs(layer, dtype)
    want = tconv.conv_transpose(x, w, b, **_bench._kw(layer))
    run, to_nchw = maker(x, w, b, layer, **kw)
    got = run()
    got = got if to_nchw is None else to_nchw(np.asarray(got))
    ok, err = _bench._agrees(got, want, dtype)
    assert ok, f"{maker.__name__} on {layer_name}: rel. error {err}"


@pytest.mark.parametrize("name", ["tiny_2d", "tiny_1d", "tiny_dw"])
def test_tensorflow_peer_in_nhwc_matches_after_conversion(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("tensorflow")
        _peer_agrees(_bench._tf, name)


@pytest.mark.parametrize("name", ["tiny_2d", "tiny_dw"])
def test_openvino_peer_matches(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pytest.importorskip("openvino")
        pytest.importorskip("onnx")
        _peer_agrees(_bench._openvino, name, threads=1)


# ---- the FMA probe -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fma_probe_gives_a_plausible_peak(dtype):
    r = _core._fma_peak(dtype, 1, 0.01)
    assert r["fma"] == ("avx2" in tconv.available_isas())
    assert r["chains"] == (
        "avx512" if "avx512" in tconv.available_isas() else "avx2" if r["fma"] else "portable"
    )
    # Two ports x 32 float32 flops (512-bit FMAs) at 8 GHz is 512 GFLOP/s per core, beyond any
    # CPU; below 0.1 the probe measured nothing real.
    bound = 512.0 if dtype == "float32" else 256.0
    assert 0.1 < r["gflops"] < bound
    two = _core._fma_peak(dtype, 2, 0.01)
    assert 0.1 < two["gflops"] < 2 * bound


@pytest.mark.parametrize(
    "args",
    [("float16", 1, 0.01), ("float32", 0, 0.01), ("float32", 1, 0.0), ("float32", 1, float("nan"))],
)
def test_fma_probe_rejects_bad_arguments(args):
    with pytest.raises(ValueError, match="_fma_peak"):
        _core._fma_peak(*args)


# ---- the table and the chart ----------------------------------------------------------------------


def _report():
    # Layer a: plan 100 GFLOP/s, best peer (numpy) 50 -> 2x; layer b: plan 25, numpy 50, tf
    # refused -> 0.5x. Geomean sqrt(2 * 0.5) = 1.
    mem = {
        "scratch_bytes": 10,
        "packed_weight_bytes": 30,
        "scratch_pct": 2.5,
        "packed_weight_pct": 7.5,
    }
    rows = [
        {
            "layer": "a",
            "flops": 1e9,
            "output_bytes": 400,
            "times": {"tconv": 0.01, "tconv_plan": 0.01, "numpy": 0.02},
            "errors": {},
            "refused": {},
            "memory": {"tconv": mem, "tconv_plan": mem},
        },
        {
            "layer": "b",
            "flops": 1e9,
            "output_bytes": 400,
            "times": {"tconv": 0.04, "tconv_plan": 0.04, "numpy": 0.02},
            "errors": {},
            "refused": {"tf": "Refused: no"},
            "memory": {"tconv": mem, "tconv_plan": mem},
        },
    ]
    return {
        "build": {"version": "0", "isa": "avx2", "build_type": "Release", "dtype": "float32"},
        "runs": [
            {"threads": 2, "peak": {"gflops": 200.0, "source": "given (--peak)"}, "results": rows}
        ],
    }


def test_table_reports_peak_share_ratio_geomean_and_refusals():
    text = _bench._table(_report())
    lines = text.splitlines()
    a = next(ln for ln in lines if ln.startswith("a "))
    b = next(ln for ln in lines if ln.startswith("b "))
    # No NHWC runs (tconv_cl, tconv_fcl): '-'.
    assert a.split()[:6] == ["a", "100.0", "100.0", "-", "-", "50.0"]
    assert "50%" in a.split() and "2.00x" in a.split()
    assert b.split()[:7] == ["b", "25.0", "25.0", "-", "-", "50.0", "-"]  # tf refused: '-'
    assert "12%" in b.split() and "0.50x" in b.split()
    assert "2.5|2.5" in a.split() and "7.5" in a.split()
    assert "geomean plan / best peer: 1.00x over 2 layers; layers below 1.0x: 1 (b)" in text
    assert "FMA peak 200.0 GFLOP/s, given (--peak)" in text


def test_table_takes_the_faster_layout_of_the_plan():
    # The plan on NHWC data (tconv_cl, 100 GFLOP/s) beats it on NCHW (25): the ratio to the
    # best peer (numpy, 50) is 2x, and %peak follows the faster layout too.
    report = _report()
    row = report["runs"][0]["results"][1]
    row["times"]["tconv_cl"] = 0.01
    text = _bench._table(report)
    b = next(ln for ln in text.splitlines() if ln.startswith("b "))
    assert b.split()[:6] == ["b", "25.0", "25.0", "100.0", "-", "50.0"]
    assert "50%" in b.split() and "2.00x" in b.split()
    assert "geomean plan / best peer: 2.00x over 2 layers; layers below 1.0x: 0" in text


def test_table_compares_the_functional_call_with_the_plan_and_functional_peers():
    # Layer a: functional NCHW 0.0125 s (80 GFLOP/s) against its plan's 100: f/p 0.80; on NHWC
    # data the functional call takes 0.008 s (125), against torch_cl's 100 (numpy is no
    # functional peer): 1.25x. Layer b: functional 25 = plan 25 (f/p 1.00), torch 50: 0.50x.
    report = _report()
    a, b = report["runs"][0]["results"]
    a["times"].update(tconv=0.0125, tconv_fcl=0.008, torch_cl=0.01, torch=0.02)
    b["times"].update(torch=0.02)
    text = _bench._table(report)
    la = next(ln for ln in text.splitlines() if ln.startswith("a ")).split()
    lb = next(ln for ln in text.splitlines() if ln.startswith("b ")).split()
    assert la[la.index("0.80") + 1 : la.index("0.80") + 3] == ["1.25x", "torch_cl"]
    assert lb[lb.index("1.00") + 1 : lb.index("1.00") + 3] == ["0.50x", "torch"]
    assert "functional / plan (NCHW) below 0.9x: 1 of 2 (a)" in text
    geo = math.sqrt(1.25 * 0.5)
    assert f"geomean functional / best functional peer: {geo:.2f}x over 2 layers; " in text
    assert "layers below 1.0x: 1 (b)" in text.split("functional peer:")[1]


def test_scaling_lists_the_layers_two_threads_run_below_1_85x_faster():
    # The two-thread run's one-thread times: layer a (1 GFLOP) 2.0x faster on two threads for
    # the plan, 1.6x for the functional call; layer b 1.5x for both; a 10 MFLOP layer c (0.5x)
    # is below the 50 MFLOP floor and not listed. The one-thread run's times (10x slower
    # throughout) play no part: runs of different thread counts lie minutes apart.
    report = _report()
    two = report["runs"][0]
    two["results"].append({**copy.deepcopy(two["results"][0]), "layer": "c", "flops": 1e7})
    one = copy.deepcopy(two)
    one["threads"] = 1
    for r in one["results"]:
        r["times"] = {n: 10 * t for n, t in r["times"].items()}
    for r, (plan, func) in zip(two["results"], ((2.0, 1.6), (1.5, 1.5), (0.5, 0.5))):
        r["one_thread"] = {
            "tconv_plan": r["times"]["tconv_plan"] * plan,
            "tconv": r["times"]["tconv"] * func,
        }
    report["runs"].insert(0, one)
    text = _bench._table(report)
    assert (
        "2 threads / 1 thread on the layers above 50 MFLOP (both timed in the 2-thread run" in text
    )
    assert "  tconv_plan: below 1.85x: 1 of 2 (b 1.50x)" in text
    assert "  tconv: below 1.85x: 2 of 2 (a 1.60x, b 1.50x)" in text
    # Without one-thread times in the run (a one-thread run alone): no scaling lines.
    del report["runs"][1]
    assert "thread on the layers above" not in _bench._table(report)


def test_one_thread_calls_run_on_one_thread_and_restore_the_count(threads_restored):
    seen = []
    call = _bench._on_one_thread(lambda: seen.append(tconv.get_num_threads()) or 7, 3)
    tconv.set_num_threads(3)
    assert call() == 7 and seen == [1]
    assert tconv.get_num_threads() == 3

    def fails():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _bench._on_one_thread(fails, 3)()
    assert tconv.get_num_threads() == 3


def test_roofline_column_names_the_limit_and_the_share():
    # Peak 200 GFLOP/s and 20 GB/s. Layer a: 1 GFLOP takes 5 ms at the peak, its 5e7 bytes
    # 2.5 ms at the bandwidth: FMA-bound, 5 ms of the plan's 10 ms = 50 %. Layer b: its 7e8
    # bytes take 35 ms, more than its 5 ms of flops: memory-bound, 35 of the NHWC plan's 37.5
    # ms (faster than its NCHW 40 ms) = 93 %.
    report = _report()
    run = report["runs"][0]
    run["bandwidth"] = {"gbps": 20.0, "source": "given"}
    a, b = run["results"]
    a["compulsory_bytes"], b["compulsory_bytes"] = 50_000_000, 700_000_000
    b["times"]["tconv_cl"] = 0.0375
    _bench.add_roofline(run)
    assert a["roofline"]["limiter"] == "F" and b["roofline"]["limiter"] == "M"
    assert a["roofline"]["column"] == "tconv_plan" and b["roofline"]["column"] == "tconv_cl"
    assert a["roofline"]["t_fma"] == pytest.approx(5e-3)
    assert a["roofline"]["t_mem"] == pytest.approx(2.5e-3)
    assert b["roofline"]["bound"] == pytest.approx(35e-3)
    assert a["roofline"]["pct"] == pytest.approx(50.0)
    assert b["roofline"]["pct"] == pytest.approx(100 * 35 / 37.5)
    text = _bench._table(report)
    la = next(ln for ln in text.splitlines() if ln.startswith("a ")).split()
    lb = next(ln for ln in text.splitlines() if ln.startswith("b ")).split()
    assert la[la.index("50%") + 1 : la.index("50%") + 3] == ["50%", "F"]  # %peak, %roof
    assert lb[lb.index("93%") + 1] == "M"
    assert "copy bandwidth 20.0 GB/s, given" in text
    assert "layers below 80% of the roofline: 1 of 2 (a)" in text
    # A given peak changes the FMA side only.
    run["peak"] = {"gflops": 50.0, "source": "given (--peak)"}
    _bench.add_roofline(run)
    assert a["roofline"]["t_fma"] == pytest.approx(20e-3) and a["roofline"]["pct"] == pytest.approx(
        200.0
    )
    assert b["roofline"]["t_mem"] == pytest.approx(35e-3) and b["roofline"]["limiter"] == "M"


def test_table_without_a_bandwidth_shows_no_roofline():
    report = _report()
    _bench.add_roofline(report["runs"][0])
    assert all("roofline" not in r for r in report["runs"][0]["results"])
    text = _bench._table(report)
    a = next(ln for ln in text.splitlines() if ln.startswith("a ")).split()
    assert a[a.index("50%") + 1] == "-"
    assert "GB/s" not in text and "of the roofline" not in text


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_copy_probe_splits_the_buffer_among_its_threads(threads, monkeypatch):
    sizes = []
    copyto = np.copyto

    def counting(dst, src):
        sizes.append(src.nbytes)
        copyto(dst, src)

    monkeypatch.setattr(_bench.np, "copyto", counting)
    r = _bench._measure_bandwidth(threads, nbytes=3 << 20, repeats=2)
    # Each repeat copies the whole buffer once, in `threads` shares of (nearly) equal size.
    assert len(sizes) == 2 * threads and sum(sizes) == 2 * (3 << 20)
    assert max(sizes) - min(sizes) <= 8
    assert math.isfinite(r["gbps"]) and r["gbps"] > 0
    assert r["source"] == f"measured (np.copyto, 3 MiB, {threads} thread(s))"


def test_chart_is_skipped_cleanly_without_matplotlib(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    _bench._chart(_report(), str(tmp_path / "c.png"))
    assert capsys.readouterr().out == "matplotlib is not installed: no chart\n"
    assert not (tmp_path / "c.png").exists()


# ---- rounds ------------------------------------------------------------------------------------


def _round(times, errors, refused, peak, gbps=20.0):
    return {
        "threads": 2,
        "peak": {"gflops": peak, "source": "measured"},
        "bandwidth": {"gbps": gbps, "source": "measured"},
        "results": [
            {
                "layer": "a",
                "flops": 10,
                "output_bytes": 4,
                "memory": {"tconv": {"scratch_bytes": 7}},
                "times": times,
                "errors": errors,
                "refused": refused,
            }
        ],
    }


def test_rounds_merge_to_medians_largest_errors_refusals_and_best_peak():
    rounds = [
        _round({"tconv_plan": 1.0, "ort": 4.0, "tf": 1.0}, {"ort": 1e-7, "tf": 0.0}, {}, 200.0),
        _round({"tconv_plan": 9.0, "ort": 2.0}, {"ort": 3e-7}, {"tf": "disagrees"}, 230.0, 19.0),
        _round(
            {"tconv_plan": 2.0, "ort": 3.0, "tf": 1.0}, {"ort": 2e-7, "tf": 0.0}, {}, 220.0, 24.0
        ),
    ]
    for r, t in zip(rounds, (1.0, 5.0, 3.0)):
        r["results"][0]["one_thread"] = {"tconv_plan": t}
    del rounds[1]["results"][0]["one_thread"]  # a round without: the others' median
    run = _bench.merge_rounds(rounds)
    (row,) = run["results"]
    assert row["one_thread"] == {"tconv_plan": 2.0}
    # A stalled round (9.0) does not move the median.
    assert row["times"] == {"tconv_plan": 2.0, "ort": 3.0}
    assert row["errors"]["ort"] == 3e-7
    # Refused in one round: not timed at all.
    assert row["refused"] == {"tf": "disagrees"} and "tf" not in row["times"]
    assert row["memory"] == {"tconv": {"scratch_bytes": 7}}
    assert run["peak"]["gflops"] == 230.0 and run["rounds"] == 3
    # The best bandwidth of any round, which need not be the round of the best peak.
    assert run["bandwidth"]["gbps"] == 24.0
    assert _bench.merge_rounds(rounds[:1]) is rounds[0]


def test_two_rounds_from_the_command_line(suite, tmp_path):
    proc = _bench_cli(
        [
            "--suite",
            str(suite),
            "--quick",
            "--threads",
            "1",
            "--peers",
            "numpy",
            "--repeats",
            "2",
            "--budget",
            "0.05",
            "--rounds",
            "2",
            "--json",
            "r.json",
            "--png",
            "r.png",
        ],
        tmp_path,
    )
    (run,) = json.loads((tmp_path / "r.json").read_text())["runs"]
    assert run["rounds"] == 2
    assert [r["layer"] for r in run["results"]] == ["tiny_2d", "tiny_1d"]
    assert all(t > 0 for r in run["results"] for t in r["times"].values())
    assert "median over 2 rounds" in proc.stdout


# ---- argument errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--peers", "numpy,caffe"], ["--peers", "caffe", "openvino"]),
        (["--peers", ""], ["--peers"]),
        (["--suite", "/no/such/suite.json"], ["--suite", "cannot read"]),
        (["--threads", "1,x"], ["--threads"]),
        (["--dtype", "int8"], ["--dtype"]),
        (["--rounds", "0"], ["--rounds", "[1, 100]"]),
    ],
)
def test_argument_errors_exit_2(argv, words, capsys):
    with pytest.raises(SystemExit) as exc:
        _bench.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "usage: tconv bench" in err
    for w in words:
        assert w in err


def test_markdown_puts_the_table_between_its_markers_and_keeps_the_page(suite, tmp_path):
    page = tmp_path / "benchmarks.md"
    page.write_text("# Benchmarks\n\nHow it is measured.\n\n## Tables\n\nclosing words\n")
    args = ["--suite", str(suite), "--layers", "tiny_1d", "--threads", "1", "--peers", "numpy"]
    args += ["--repeats", "2", "--budget", "0.05", "--peak", "50", "--png", "r.png"]
    for run in range(2):
        proc = _bench_cli([*args, "--json", f"r{run}.json", "--markdown", str(page)], tmp_path)
        text = page.read_text()
        begin = "<!-- tconv bench --markdown: float32 tables -->"
        end = "<!-- end of tconv bench --markdown: float32 tables -->"
        # The second run replaces the first run's block instead of adding another.
        assert text.count(begin) == 1 and text.count(end) == 1
        assert text.startswith("# Benchmarks\n\nHow it is measured.\n") and "closing words" in text
        block = text[text.index(begin) : text.index(end)]
        assert (
            "`python bench/run.py --threads 1 --rounds 1 --layers tiny_1d --peers numpy " in block
        )
        table = proc.stdout[: proc.stdout.index("\nwrote ")].strip()
        assert table.splitlines()[-1] in block and "tiny_1d" in block
        assert f"```\n{table}\n```" in block
