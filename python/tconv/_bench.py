"""The benchmark behind ``tconv bench`` and ``python bench/run.py``.

Runs the suite of real layers (bench_suite.json) through tconv (functional and plan), a naive
numpy GEMM + col2im, and every installed peer (torch channels_first / channels_last,
onnxruntime, jax), at each requested thread count, each in a fresh subprocess so that every
library's thread setting takes effect before it starts. Each peer's output is checked against
tconv's before it is timed. Reports medians, GFLOP/s, % of the FMA peak and tconv's ratio to
the best peer, as a table, a JSON file and (with matplotlib) a PNG chart.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

SUITE = Path(__file__).with_name("bench_suite.json")
# Single-thread FMA peaks of the reference machine (PERF.md), used unless --peak is given.
DEFAULT_PEAK = {"float32": 101.0, "float64": 50.0}


# ---- peers --------------------------------------------------------------------------------------

def _kw(layer: dict) -> dict:
    return dict(stride=layer["stride"], padding=layer["padding"],
                output_padding=layer["output_padding"], dilation=layer["dilation"],
                groups=layer["groups"])


def _numpy_col2im(x, w, b, layer):
    """GEMM (BLAS) into a column buffer, then col2im: the classic method, groups=1 only."""
    if layer["groups"] != 1:
        return None
    rank = layer["dims"]
    k, s, p, d = layer["kernel_size"], layer["stride"], layer["padding"], layer["dilation"]
    out = layer["output_size"]
    n, cin = x.shape[:2]
    cout = w.shape[1]
    full = [(i - 1) * st + dd * (kk - 1) + 1 for i, st, dd, kk in
            zip(x.shape[2:], s, d, k)]
    wm = w.reshape(cin, -1).T.copy()  # (Cout*K, Cin)

    def f():
        y = np.empty((n, cout, *out), x.dtype)
        big = np.zeros((cout, *[max(fu, o + pp) for fu, o, pp in zip(full, out, p)]), x.dtype)
        for i in range(n):
            col = wm @ x[i].reshape(cin, -1)
            col = col.reshape(cout, *k, *x.shape[2:])
            big[...] = 0
            for tap in np.ndindex(*k):
                sl = tuple(slice(t * dd, t * dd + (ii - 1) * st + 1, st)
                           for t, dd, ii, st in zip(tap, d, x.shape[2:], s))
                big[(slice(None), *sl)] += col[(slice(None), *tap)]
            crop = tuple(slice(pp, pp + o) for pp, o in zip(p, out))
            y[i] = big[(slice(None), *crop)]
            y[i] += b.reshape(-1, *([1] * rank))
        return y
    return f


def _torch(x, w, b, layer, channels_last):
    import torch
    rank = layer["dims"]
    if channels_last and rank == 1:
        return None
    f = getattr(torch.nn.functional, f"conv_transpose{rank}d")
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    if channels_last:
        fmt = torch.channels_last if rank == 2 else torch.channels_last_3d
        xt, wt = xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)
    kw = _kw(layer)

    def run():
        with torch.no_grad():
            return f(xt, wt, bt, **kw).numpy()
    return run


def _ort(x, w, b, layer, threads):
    import onnx
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper
    rank = layer["dims"]
    node = helper.make_node(
        "ConvTranspose", ["x", "w", "b"], ["y"], strides=layer["stride"],
        pads=list(layer["padding"]) * 2, output_padding=layer["output_padding"],
        dilations=layer["dilation"], group=layer["groups"], kernel_shape=layer["kernel_size"])
    dt = TensorProto.FLOAT if x.dtype == np.float32 else TensorProto.DOUBLE
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", dt, list(x.shape))],
        [helper.make_tensor_value_info("y", dt, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    del rank
    return lambda: sess.run(None, {"x": x})[0]


def _jax(x, w, b, layer):
    import jax
    from jax import lax
    rank = layer["dims"]
    g = layer["groups"]
    cin, coutg = w.shape[:2]
    k = layer["kernel_size"]
    # (Cin, Cout/g, *k) -> (Cout, Cin/g, *k), flipped: the forward-conv kernel of the adjoint.
    wr = w.reshape(g, cin // g, coutg, *k).swapaxes(1, 2).reshape(g * coutg, cin // g, *k)
    wr = np.ascontiguousarray(wr[(slice(None), slice(None)) + (slice(None, None, -1),) * rank])
    pads = [(dd * (kk - 1) - p, dd * (kk - 1) - p + op) for kk, dd, p, op in
            zip(k, layer["dilation"], layer["padding"], layer["output_padding"])]
    sp = "DHW"[-rank:]
    dn = lax.conv_dimension_numbers(x.shape, wr.shape, ("NC" + sp, "OI" + sp, "NC" + sp))
    fn = jax.jit(lambda xx, ww, bb: lax.conv_general_dilated(
        xx, ww, (1,) * rank, pads, lhs_dilation=layer["stride"], rhs_dilation=layer["dilation"],
        dimension_numbers=dn, feature_group_count=g) + bb.reshape(-1, *([1] * rank)))
    xj, wj, bj = (jax.device_put(a) for a in (x, wr, b))
    return lambda: np.asarray(fn(xj, wj, bj).block_until_ready())


# ---- one thread count, in this process ----------------------------------------------------------

def _median_time(f: Callable[[], Any], repeats: int, budget: float) -> float:
    f()
    times = []
    start = time.perf_counter()
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
        if time.perf_counter() - start > budget and len(times) >= 3:
            break
    return float(np.median(times))


def _pin_to_cpus(threads: int):
    """Confine a worker to `threads` CPUs: some peers (XLA's CPU runtime) ignore every
    thread-count setting, and a '1 thread' figure must mean one core for all of them."""
    if not hasattr(os, "sched_getaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if threads >= len(cpus):
        return None
    chosen = set(cpus[:threads])
    return lambda: os.sched_setaffinity(0, chosen)


def run_one(threads: int, names: list[str] | None, dtype: str, repeats: int, budget: float,
            peers: list[str] | None) -> dict:
    import tconv
    tconv.set_num_threads(threads)
    try:
        import torch
        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    layers = json.loads(SUITE.read_text())["layers"]
    results = []
    for layer in layers:
        if names and layer["name"] not in names:
            continue
        rng = np.random.default_rng(0)
        cin, g = layer["in_channels"], layer["groups"]
        x = rng.standard_normal((layer["batch"], cin, *layer["input_size"])).astype(dtype)
        w = rng.standard_normal((cin, layer["out_channels"] // g, *layer["kernel_size"])).astype(dtype)
        w /= math.sqrt(cin // g * np.prod(layer["kernel_size"]))
        b = rng.standard_normal(layer["out_channels"]).astype(dtype)
        kw = _kw(layer)
        want = tconv.conv_transpose(x, w, b, **kw)
        plan = tconv.ConvTranspose(w, b, **kw)
        yplan = np.empty_like(want)
        runners: dict[str, Callable | None] = {
            "tconv": lambda: tconv.conv_transpose(x, w, b, **kw),
            "tconv_plan": lambda: plan(x, out=yplan),
            "numpy": _numpy_col2im(x, w, b, layer),
        }
        makers = {
            "torch": lambda: _torch(x, w, b, layer, False),
            "torch_cl": lambda: _torch(x, w, b, layer, True),
            "ort": lambda: _ort(x, w, b, layer, threads),
            "jax": lambda: _jax(x, w, b, layer),
        }
        for name, make in makers.items():
            if peers is not None and name not in peers:
                continue
            try:
                runners[name] = make()
            except ImportError:
                continue
            except Exception as exc:  # a peer that refuses the layer
                runners[name] = None
                print(f"  {layer['name']}: {name} refused the layer: {type(exc).__name__}: "
                      f"{str(exc)[:120]}", file=sys.stderr)
        row = {"layer": layer["name"], "flops": layer["flops"], "times": {}, "errors": {}}
        tol = 1e-4 if dtype == "float32" else 1e-10
        scale = float(np.abs(want).max())
        for name, f in runners.items():
            if f is None:
                continue
            try:
                got = np.asarray(f())
            except Exception as exc:
                print(f"  {layer['name']}: {name} failed: {type(exc).__name__}: {exc}",
                      file=sys.stderr)
                continue
            err = float(np.abs(got - want).max()) / max(scale, 1.0)
            row["errors"][name] = err
            if got.shape != want.shape or not err <= tol:
                print(f"  {layer['name']}: {name} disagrees with tconv (rel. error {err:.2e});"
                      f" not timed", file=sys.stderr)
                continue
            row["times"][name] = _median_time(f, repeats, budget)
        results.append(row)
        print(json.dumps({"progress": layer["name"]}), flush=True)
    return {"threads": threads, "results": results}


# ---- the driver ---------------------------------------------------------------------------------

def _bar(done: int, total: int, label: str) -> None:
    width = 30
    fill = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {label:<24}")
    sys.stderr.flush()


def _check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit status 2 with the usage line) for values argparse lets through."""
    import math

    try:
        threads = [int(v) for v in args.threads.split(",")]
    except ValueError:
        ap.error(f"argument --threads: expected comma-separated integers such as 1,2, got "
                 f"{args.threads!r}")
    if not threads or any(not 1 <= t <= 1024 for t in threads):
        ap.error(f"argument --threads: each thread count must be in [1, 1024], got "
                 f"{args.threads!r}")
    if not 1 <= args.repeats <= 10**6:
        ap.error(f"argument --repeats: must be in [1, 1000000], got {args.repeats}")
    if not (math.isfinite(args.budget) and 0 < args.budget <= 3600):
        ap.error(f"argument --budget: seconds per measurement must be in (0, 3600], got "
                 f"{args.budget}")
    if args.peak is not None and not (math.isfinite(args.peak) and args.peak > 0):
        ap.error(f"argument --peak: GFLOP/s must be a positive number, got {args.peak}")
    if args.layers:
        known = [layer["name"] for layer in json.loads(SUITE.read_text())["layers"]]
        unknown = [n for n in args.layers.split(",") if n not in known]
        if unknown:
            ap.error(f"argument --layers: unknown layer(s) {', '.join(unknown)}; the suite has "
                     f"{', '.join(known)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="tconv bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (1,2)")
    ap.add_argument("--layers", default=None, help="layer names, comma-separated (all)")
    ap.add_argument("--quick", action="store_true", help="only the suite's 'quick' layers")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per measurement, at most")
    ap.add_argument("--peers", default=None, help="peers to run, comma-separated (all installed)")
    ap.add_argument("--peak", type=float, default=None,
                    help="FMA peak GFLOP/s of one thread (default: the reference machine's, "
                         "101 fp32 / 50 fp64)")
    ap.add_argument("--json", default="bench_results.json")
    ap.add_argument("--png", default="bench_results.png")
    ap.add_argument("--_worker", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    _check_args(ap, args)
    names = args.layers.split(",") if args.layers else None
    if args.quick:
        names = [l["name"] for l in json.loads(SUITE.read_text())["layers"] if l["quick"]]
    peers = args.peers.split(",") if args.peers else None
    if args._worker is not None:
        res = run_one(args._worker, names, args.dtype, args.repeats, args.budget, peers)
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    import tconv
    build = {"version": tconv.__version__, "isa": tconv._core.active_isa(),
             "build_type": getattr(tconv._core, "build_type", "Release"),
             "dtype": args.dtype}
    peak1 = args.peak or DEFAULT_PEAK[args.dtype]
    peak_src = "given (--peak)" if args.peak else "assumed from PERF.md's reference machine"
    total_layers = len(names) if names else len(json.loads(SUITE.read_text())["layers"])
    runs = []
    for t in [int(v) for v in args.threads.split(",")]:
        env = dict(os.environ, TCONV_NUM_THREADS=str(t), OMP_NUM_THREADS=str(t),
                   XLA_FLAGS=f"--xla_cpu_multi_thread_eigen={'true' if t > 1 else 'false'} "
                             f"intra_op_parallelism_threads={t}")
        cmd = [sys.executable, "-m", "tconv", "bench", "--_worker", str(t), "--dtype", args.dtype,
               "--repeats", str(args.repeats), "--budget", str(args.budget)]
        if names:
            cmd += ["--layers", ",".join(names)]
        if peers:
            cmd += ["--peers", ",".join(peers)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env,
                                preexec_fn=_pin_to_cpus(t))
        done, result = 0, None
        _bar(0, total_layers, f"{t} thread(s)")
        for line in proc.stdout:
            if line.startswith("RESULT "):
                result = json.loads(line[7:])
            elif line.startswith("{"):
                done += 1
                _bar(done, total_layers, f"{t}T {json.loads(line)['progress']}")
        proc.wait()
        sys.stderr.write("\n")
        if result is None:
            print(f"the {t}-thread run failed", file=sys.stderr)
            return 1
        runs.append(result)

    report = {"build": build, "peak_gflops_per_thread": peak1, "peak_source": peak_src,
              "runs": runs}
    print(_table(report))
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.json}")
    _chart(report, args.png)
    return 0


def _table(report: dict) -> str:
    b = report["build"]
    lines = [f"tconv {b['version']} | build {b['build_type']} | ISA {b['isa']} | {b['dtype']} | "
             f"FMA peak {report['peak_gflops_per_thread']:.0f} GFLOP/s per thread "
             f"({report['peak_source']})"]
    ratios_all = {}
    for run in report["runs"]:
        t = run["threads"]
        peak = report["peak_gflops_per_thread"] * t
        peers = sorted({p for r in run["results"] for p in r["times"]} - {"tconv", "tconv_plan"})
        cols = ["tconv", "tconv_plan"] + peers
        lines.append("")
        lines.append(f"## {t} thread(s), ISA {b['isa']}, build {b['build_type']}: GFLOP/s "
                     f"(median), plan % of peak, plan / best peer")
        head = f"{'layer':<20}" + "".join(f"{c:>11}" for c in cols) + f"{'%peak':>7}{'best peer':>18}"
        lines.append(head)
        ratios = []
        for r in run["results"]:
            gf = {k: r["flops"] / v / 1e9 for k, v in r["times"].items()}
            cells = "".join(f"{gf[c]:>11.1f}" if c in gf else f"{'-':>11}" for c in cols)
            others = {k: v for k, v in gf.items() if k not in ("tconv", "tconv_plan")}
            best = max(others.items(), key=lambda kv: kv[1]) if others else None
            mine = gf.get("tconv_plan")
            pct = f"{100 * mine / peak:>6.0f}%" if mine else f"{'-':>7}"
            if best and mine:
                ratio = mine / best[1]
                ratios.append(ratio)
                tail = f"{ratio:>7.2f}x {best[0]:<9}"
            else:
                tail = f"{'-':>18}"
            lines.append(f"{r['layer']:<20}{cells}{pct}{tail}")
        if ratios:
            geo = math.exp(sum(map(math.log, ratios)) / len(ratios))
            lines.append(f"geomean plan / best peer: {geo:.2f}x over {len(ratios)} layers; "
                         f"layers below 1.0x: {sum(r < 1 for r in ratios)}")
        ratios_all[t] = ratios
    return "\n".join(lines)


def _chart(report: dict, path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return
    runs = report["runs"]
    fig, axes = plt.subplots(len(runs), 1, figsize=(12, 4 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        layers = [r["layer"] for r in run["results"]]
        names = sorted({p for r in run["results"] for p in r["times"]})
        width = 0.8 / max(len(names), 1)
        for i, name in enumerate(names):
            vals = [r["flops"] / r["times"][name] / 1e9 if name in r["times"] else 0
                    for r in run["results"]]
            ax.bar(np.arange(len(layers)) + i * width, vals, width, label=name)
        ax.set_xticks(np.arange(len(layers)) + 0.4)
        ax.set_xticklabels(layers, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("GFLOP/s")
        ax.set_title(f"{run['threads']} thread(s), ISA {report['build']['isa']}")
        ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
