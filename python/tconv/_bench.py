"""The benchmark behind ``tconv bench`` and ``python bench/run.py``.

Runs the suite of real layers (bench_suite.json) through tconv (functional and plan), a naive
numpy GEMM + col2im, and every installed peer (torch channels_first / channels_last,
onnxruntime, OpenVINO, TensorFlow, jax), at each requested thread count, each in a fresh
subprocess pinned to that many CPUs so that every library's thread setting takes effect before
it starts. Each peer's output is checked against tconv's before it is timed. Reports medians,
GFLOP/s, % of the FMA peak (measured by a probe in each worker), % of the roofline (the FMA
peak and the copy bandwidth measured in the same worker), tconv's working memory and its ratio
to the best peer, as a table, a JSON file and (with matplotlib) a PNG chart.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

SUITE = Path(__file__).with_name("bench_suite.json")
# Single-thread FMA peaks of the reference machine (PERF.md): the fallback when the probe
# cannot run at all; --peak overrides both.
DEFAULT_PEAK = {"float32": 101.0, "float64": 50.0}
PEERS = ("numpy", "torch", "torch_cl", "ort", "openvino", "tf", "jax")
# Each of the copy probe's two arrays: 8x the 32 MiB L3 of the reference machine, so the copy
# streams from and to memory.
COPY_BYTES = 256 << 20
# Relative error (max |got - want| / max(max |want|, 1)) a peer may show and still be timed.
TOLERANCE = {"float32": 1e-4, "float64": 1e-10}


class Refused(Exception):
    """A peer that cannot compute this layer (or this dtype): shown as '-'."""


# ---- peers --------------------------------------------------------------------------------------
# Each maker returns (run, to_nchw): run() computes the layer in the peer's own layout and
# to_nchw maps its result to tconv's (N, C, *spatial) for the check (None: already there).
# Layout conversions of the inputs happen once, outside the timed call.


def _kw(layer: dict) -> dict:
    return dict(
        stride=layer["stride"],
        padding=layer["padding"],
        output_padding=layer["output_padding"],
        dilation=layer["dilation"],
        groups=layer["groups"],
    )


def _numpy_col2im(x, w, b, layer):
    """GEMM (BLAS) into a column buffer, then col2im: the classic method, groups=1 only."""
    if layer["groups"] != 1:
        raise Refused("groups > 1 is not implemented in the numpy baseline")
    from ._rules import full_length

    rank = layer["dims"]
    k, s, p, d = layer["kernel_size"], layer["stride"], layer["padding"], layer["dilation"]
    out = layer["output_size"]
    n, cin = x.shape[:2]
    cout = w.shape[1]
    full = [full_length(i, kk, st, dd) for i, st, dd, kk in zip(x.shape[2:], s, d, k)]
    wm = w.reshape(cin, -1).T.copy()  # (Cout*K, Cin)

    def f():
        y = np.empty((n, cout, *out), x.dtype)
        big = np.zeros((cout, *[max(fu, o + pp) for fu, o, pp in zip(full, out, p)]), x.dtype)
        for i in range(n):
            col = wm @ x[i].reshape(cin, -1)
            col = col.reshape(cout, *k, *x.shape[2:])
            big[...] = 0
            for tap in np.ndindex(*k):
                sl = tuple(
                    slice(t * dd, t * dd + (ii - 1) * st + 1, st)
                    for t, dd, ii, st in zip(tap, d, x.shape[2:], s)
                )
                big[(slice(None),) + sl] += col[(slice(None),) + tap]
            crop = tuple(slice(pp, pp + o) for pp, o in zip(p, out))
            y[i] = big[(slice(None),) + crop]
            y[i] += b.reshape(-1, *([1] * rank))
        return y

    return f, None


def _torch(x, w, b, layer, channels_last):
    import torch

    rank = layer["dims"]
    if channels_last and rank == 1:
        raise Refused("torch has no channels_last format for 1-D")
    f = getattr(torch.nn.functional, f"conv_transpose{rank}d")
    xt, wt, bt = torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)
    if channels_last:
        fmt = torch.channels_last if rank == 2 else torch.channels_last_3d
        xt, wt = xt.contiguous(memory_format=fmt), wt.contiguous(memory_format=fmt)
    kw = _kw(layer)

    def run():
        with torch.no_grad():
            return f(xt, wt, bt, **kw).numpy()

    return run, None


def _onnx_model(x, w, b, layer) -> bytes:
    """The 1-node ONNX ConvTranspose model that onnxruntime and OpenVINO both run."""
    from onnx import TensorProto, helper, numpy_helper

    node = helper.make_node(
        "ConvTranspose",
        ["x", "w", "b"],
        ["y"],
        strides=layer["stride"],
        pads=list(layer["padding"]) * 2,
        output_padding=layer["output_padding"],
        dilations=layer["dilation"],
        group=layer["groups"],
        kernel_shape=layer["kernel_size"],
    )
    dt = TensorProto.FLOAT if x.dtype == np.float32 else TensorProto.DOUBLE
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", dt, list(x.shape))],
        [helper.make_tensor_value_info("y", dt, None)],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def _ort(x, w, b, layer, threads):
    import onnxruntime as ort

    model = _onnx_model(x, w, b, layer)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
    return (lambda: sess.run(None, {"x": x})[0]), None


def _openvino(x, w, b, layer, threads):
    import openvino as ov

    model = _onnx_model(x, w, b, layer)
    core = ov.Core()
    compiled = core.compile_model(
        core.read_model(model),
        "CPU",
        {
            "INFERENCE_NUM_THREADS": threads,
            "NUM_STREAMS": 1,
            "PERFORMANCE_HINT": "LATENCY",
            # No silent bf16/f16 on CPUs that have it: the check compares at float32 accuracy.
            "INFERENCE_PRECISION_HINT": "f32",
        },
    )
    req = compiled.create_infer_request()

    def run():
        req.infer({0: x}, share_inputs=True)
        return req.get_output_tensor(0).data

    return run, None


def _tf(x, w, b, layer):
    """tf.nn.conv{2,3}d_transpose (1-D runs as 2-D with H = 1) in NHWC, the only layout TF's CPU
    kernels take; depthwise through depthwise_conv2d_backprop_input."""
    import tensorflow as tf

    rank, g = layer["dims"], layer["groups"]
    cin, coutg = w.shape[:2]
    cout = coutg * g
    k, s, p, d = (list(layer[key]) for key in ("kernel_size", "stride", "padding", "dilation"))
    out = list(layer["output_size"])
    n = x.shape[0]
    if rank == 1:  # as 2-D over (1, L)
        x, w = x[:, :, None, :], w[:, :, None, :]
        k, s, p, d, out = [1] + k, [1] + s, [0] + p, [1] + d, [1] + out
        rank = 2
    xt = tf.constant(np.ascontiguousarray(np.moveaxis(x, 1, -1)))
    bt = tf.constant(b)
    out_shape = [n, *out, cout]
    depthwise = g > 1 and g == cin == cout and rank == 2
    if g > 1 and not depthwise:
        raise Refused("TensorFlow has no grouped transposed convolution besides depthwise")
    if rank == 3:
        if any(p):
            raise Refused("TensorFlow's conv3d_transpose has no explicit padding")
        padding: Any = "VALID"
    else:
        padding = [[0, 0], [p[0], p[0]], [p[1], p[1]], [0, 0]]
    strides, dilations = [1, *s, 1], [1, *d, 1]
    # (C_in, C_out/g, *k) -> (*k, C_out, C_in): TF's filter for the transpose;
    # depthwise: (*k, C, 1), the forward depthwise filter with multiplier 1.
    perm = (*range(2, 2 + rank), 1, 0) if not depthwise else (*range(2, 2 + rank), 0, 1)
    wt = tf.constant(np.ascontiguousarray(w.transpose(perm)))

    @tf.function(jit_compile=False)
    def f(xx):
        if depthwise:
            y = tf.nn.depthwise_conv2d_backprop_input(
                out_shape, wt, xx, strides, padding, dilations=dilations
            )
        elif rank == 2:
            y = tf.nn.conv2d_transpose(xx, wt, out_shape, strides, padding, dilations=dilations)
        else:
            y = tf.nn.conv3d_transpose(xx, wt, out_shape, strides, padding, dilations=dilations)
        return tf.nn.bias_add(y, bt)

    def to_nchw(y):
        y = np.moveaxis(y, -1, 1)
        return y[:, :, 0, :] if layer["dims"] == 1 else y

    return (lambda: f(xt).numpy()), to_nchw


def _jax(x, w, b, layer):
    import jax
    from jax import lax

    if x.dtype == np.float64 and not jax.config.read("jax_enable_x64"):
        raise Refused("jax runs float64 only with x64 enabled")
    rank = layer["dims"]
    g = layer["groups"]
    cin, coutg = w.shape[:2]
    k = layer["kernel_size"]
    # (Cin, Cout/g, *k) -> (Cout, Cin/g, *k), flipped: the forward-conv kernel of the adjoint.
    wr = w.reshape(g, cin // g, coutg, *k).swapaxes(1, 2).reshape(g * coutg, cin // g, *k)
    wr = np.ascontiguousarray(wr[(slice(None), slice(None)) + (slice(None, None, -1),) * rank])
    pads = [
        (dd * (kk - 1) - p, dd * (kk - 1) - p + op)
        for kk, dd, p, op in zip(k, layer["dilation"], layer["padding"], layer["output_padding"])
    ]
    sp = "DHW"[-rank:]
    dn = lax.conv_dimension_numbers(x.shape, wr.shape, ("NC" + sp, "OI" + sp, "NC" + sp))
    fn = jax.jit(
        lambda xx, ww, bb: (
            lax.conv_general_dilated(
                xx,
                ww,
                (1,) * rank,
                pads,
                lhs_dilation=layer["stride"],
                rhs_dilation=layer["dilation"],
                dimension_numbers=dn,
                feature_group_count=g,
            )
            + bb.reshape(-1, *([1] * rank))
        )
    )
    xj, wj, bj = (jax.device_put(a) for a in (x, wr, b))
    return (lambda: np.asarray(fn(xj, wj, bj).block_until_ready())), None


def _agrees(got, want: np.ndarray, dtype: str) -> tuple[bool, float]:
    """Whether a peer's output (already in tconv's layout) matches tconv's: same shape and a
    relative error within the dtype's tolerance. Returns (ok, error); error is inf for a
    wrong shape or a non-finite value."""
    got = np.asarray(got)
    if got.shape != want.shape:
        return False, math.inf
    scale = max(float(np.abs(want).max(initial=0.0)), 1.0)
    err = float(np.abs(got.astype(np.float64) - want).max(initial=0.0)) / scale
    if not math.isfinite(err):
        return False, math.inf
    return err <= TOLERANCE[dtype], err


def _measure_peak(dtype: str, threads: int) -> dict:
    """The FMA peak of `threads` threads from the core's probe; the reference machine's
    figure when the probe is not there."""
    from . import _core

    probe = getattr(_core, "_fma_peak", None)
    if probe is None:
        return {
            "gflops": DEFAULT_PEAK[dtype] * threads,
            "source": "assumed (PERF.md's reference machine)",
        }
    r = probe(dtype, threads, 0.05)
    if not (math.isfinite(r["gflops"]) and r["gflops"] > 0):
        return {
            "gflops": DEFAULT_PEAK[dtype] * threads,
            "source": "assumed (PERF.md's reference machine; the probe failed)",
        }
    width = {"avx512": "AVX-512", "avx2": "AVX2"}.get(r.get("chains"), "AVX2")
    src = (
        f"measured (12 {width} FMA chains)"
        if r["fma"]
        else "estimated (portable multiply-add loop, no FMA)"
    )
    return {"gflops": float(r["gflops"]), "source": src}


def _measure_bandwidth(threads: int, nbytes: int = COPY_BYTES, repeats: int = 7) -> dict:
    """The copy bandwidth of `threads` threads, GB/s: bytes read plus bytes written per second
    by np.copyto between two arrays far beyond the last-level cache, each thread copying its
    own contiguous share (np.copyto releases the GIL), the median of `repeats` copies."""
    src = np.ones(nbytes // 8)
    dst = np.zeros_like(src)  # both written once: no page faults inside the timed copies
    edges = [len(src) * i // threads for i in range(threads + 1)]
    shares = [(dst[a:b], src[a:b]) for a, b in itertools.pairwise(edges)]
    gate = threading.Barrier(threads + 1)

    def copy(d: np.ndarray, s: np.ndarray) -> None:
        for _ in range(repeats):
            gate.wait()
            np.copyto(d, s)
            gate.wait()

    workers = [threading.Thread(target=copy, args=share) for share in shares]
    for w in workers:
        w.start()
    times = []
    for _ in range(repeats):
        gate.wait()
        t = time.perf_counter()
        gate.wait()
        times.append(time.perf_counter() - t)
    for w in workers:
        w.join()
    gbps = 2 * src.nbytes / float(np.median(times)) / 1e9
    return {
        "gbps": gbps,
        "source": f"measured (np.copyto, {nbytes >> 20} MiB, {threads} thread(s))",
    }


def roofline(flops: float, nbytes: int, time_s: float, peak: dict, bandwidth: dict) -> dict:
    """The lower bound on a layer's time: the larger of its flops at the FMA peak and its
    compulsory bytes at the copy bandwidth; `pct` is that bound as a % of the time taken."""
    t_fma = flops / (peak["gflops"] * 1e9)
    t_mem = nbytes / (bandwidth["gbps"] * 1e9)
    bound = max(t_fma, t_mem)
    return {
        "t_fma": t_fma,
        "t_mem": t_mem,
        "bound": bound,
        "limiter": "F" if t_fma >= t_mem else "M",
        "pct": 100.0 * bound / time_s,
    }


def add_roofline(run: dict) -> None:
    """Each row's roofline against the faster of tconv's plan columns (NCHW, NHWC), in place;
    none where the run has no bandwidth or the plan was not timed."""
    for row in run["results"]:
        plans = {k: row["times"][k] for k in ("tconv_plan", "tconv_cl") if k in row["times"]}
        if not (run.get("peak") and run.get("bandwidth") and "compulsory_bytes" in row and plans):
            row.pop("roofline", None)
            continue
        column = min(plans, key=lambda k: plans[k])
        row["roofline"] = {
            "column": column,
            **roofline(
                row["flops"], row["compulsory_bytes"], plans[column], run["peak"], run["bandwidth"]
            ),
        }


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


def _interleaved_times(
    fs: dict[str, Callable[[], Any]],
    repeats: int,
    budget: float,
    blocks: int = 8,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Each callable's median call time, timed in alternating blocks (in order, then in reverse)
    within `budget` seconds and `repeats` calls per callable: a shared machine's speed drifts by
    tens of per cent over seconds, and timed one after another, two calls' ratio (a functional
    call against its plan) would carry that drift. Each block starts with an untimed call."""
    samples: dict[str, list[float]] = {name: [] for name in fs}
    per_block = max(1, -(-repeats // blocks))
    names = list(fs)
    for b in range(blocks):
        for name in names if b % 2 == 0 else names[::-1]:
            f = fs[name]
            f()
            start = clock()
            for _ in range(per_block):
                t = clock()
                f()
                samples[name].append(clock() - t)
                if clock() - start > budget / blocks:
                    break
    return {name: float(np.median(v)) for name, v in samples.items()}


def _on_one_thread(f: Callable[[], Any], threads: int) -> Callable[[], Any]:
    """f on one thread of tconv's (then `threads` again)."""
    import tconv

    def call() -> Any:
        tconv.set_num_threads(1)
        try:
            return f()
        finally:
            tconv.set_num_threads(threads)

    return call


def _time_ours(
    row: dict, ours: dict[str, Callable[[], Any]], threads: int, repeats: int, budget: float
) -> None:
    """tconv's own calls side by side, so that their ratios (f/p) hold on a shared machine; on
    several threads those of SCALING_CALLS on one thread too (row "one_thread")."""
    wanted = SCALING_CALLS if threads > 1 else ()
    ones = {n: _on_one_thread(ours[n], threads) for n in wanted if n in ours}
    times = _interleaved_times(
        {**ours, **{n + ON_ONE_THREAD: f for n, f in ones.items()}}, repeats, budget
    )
    row["times"].update({n: times[n] for n in ours})
    if threads > 1:
        row["one_thread"] = {n: times[n + ON_ONE_THREAD] for n in ones}


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


def _note(msg: str) -> None:
    """A line for the person running the bench (the driver prints it above the progress bar)."""
    print(json.dumps({"note": msg}), flush=True)


def _reason(exc: BaseException) -> str:
    """One informative line of a peer's error: TF puts the reason after a traceback of the
    graph's definition, so the last line that is not a frame or a node tag."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    lines = [
        ln
        for ln in lines
        if not ln.startswith(("File ", "[[", "Detected at node")) and not ln.endswith(":")
    ] or lines
    text = lines[-1] if lines else ""
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


@contextmanager
def _quiet_stderr():
    """Silence C-level stderr (TensorFlow's start-up logging, which no setting turns off
    before its logger starts) while importing a peer."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _setup_peers(threads: int, dtype: str, peers: list[str] | None) -> None:
    """Settings that must precede a peer's first use in this process."""
    if peers is None or "tf" in peers:
        try:
            with _quiet_stderr():
                import tensorflow as tf
        except ImportError:
            pass
        else:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(1)
    if peers is None or "jax" in peers:
        try:
            import jax
        except ImportError:
            pass
        else:
            if dtype == "float64":
                jax.config.update("jax_enable_x64", True)


def _layer_inputs(layer: dict, dtype: str):
    rng = np.random.default_rng(0)
    cin, g = layer["in_channels"], layer["groups"]
    x = rng.standard_normal((layer["batch"], cin, *layer["input_size"])).astype(dtype)
    w = rng.standard_normal((cin, layer["out_channels"] // g, *layer["kernel_size"])).astype(dtype)
    w /= math.sqrt(cin // g * np.prod(layer["kernel_size"]))
    b = rng.standard_normal(layer["out_channels"]).astype(dtype)
    return x, w, b


def _memory_fields(mem: dict, output_bytes: int) -> dict:
    return {
        "scratch_bytes": int(mem["scratch_bytes"]),
        "packed_weight_bytes": int(mem["packed_weight_bytes"]),
        "scratch_pct": 100.0 * mem["scratch_bytes"] / output_bytes,
        "packed_weight_pct": 100.0 * mem["packed_weight_bytes"] / output_bytes,
    }


# tconv's own columns: the functional call and the plan on NCHW data, the plan and the
# functional call on NHWC data.
OURS = ("tconv", "tconv_plan", "tconv_cl", "tconv_fcl")
# tconv's calls whose speed-up from threads the tables report: a run on several threads times
# them on one thread too, in the same alternating blocks (row "one_thread").
SCALING_CALLS = ("tconv_plan", "tconv")
ON_ONE_THREAD = "@1"
# The peers' functional calls, which the functional call is compared with (ort and OpenVINO
# run compiled sessions, like a plan).
FUNCTIONAL_PEERS = ("torch", "torch_cl", "tf", "jax")


def _tconv_channels_last(x, w, b, kw, functional=False):
    """The plan (or the functional call) on channels_last data and Keras-ordered weights: the
    layout torch_cl, TF, JAX and OpenVINO are timed in. Its output comes back to NCHW for the
    check."""
    import tconv

    rank = x.ndim - 2
    xc = np.ascontiguousarray(np.moveaxis(x, 1, -1))
    wc = np.ascontiguousarray(w.transpose(*range(2, rank + 2), 1, 0))
    back = lambda got: np.moveaxis(got, -1, 1)  # noqa: E731
    if functional:
        return (lambda: tconv.conv_transpose(xc, wc, b, data_format="channels_last", **kw)), back
    plan = tconv.ConvTranspose(wc, b, data_format="channels_last", **kw)
    from ._api import empty_output

    y = empty_output(plan.output_shape(xc.shape), x.dtype)
    return (lambda: plan(xc, out=y)), back


def run_one(
    threads: int,
    names: list[str] | None,
    dtype: str,
    repeats: int,
    budget: float,
    peers: list[str] | None,
    suite: Path = SUITE,
    probe: bool = True,
    copy_probe: bool = True,
) -> dict:
    import tconv

    from . import _core
    from ._api import empty_output

    tconv.set_num_threads(threads)
    # The probe first, before any peer has started threads of its own.
    peak = _measure_peak(dtype, threads) if probe else None
    bandwidth = _measure_bandwidth(threads) if copy_probe else None
    if peers is None or "torch" in peers or "torch_cl" in peers:
        try:
            import torch
        except ImportError:
            pass
        else:
            torch.set_num_threads(threads)
    _setup_peers(threads, dtype, peers)
    layers = json.loads(Path(suite).read_text())["layers"]
    results = []
    for layer in layers:
        if names and layer["name"] not in names:
            continue
        x, w, b = _layer_inputs(layer, dtype)
        kw = _kw(layer)
        want = tconv.conv_transpose(x, w, b, **kw)
        mem_fn = _core.last_call_memory()
        kernel_fn = _core.last_call_kernel()
        plan = tconv.ConvTranspose(w, b, **kw)
        # out= arrays on a cache line, like the outputs tconv allocates itself (and those every
        # peer allocates): numpy's np.empty starts 16 bytes into one.
        yplan = empty_output(want.shape, want.dtype)
        plan(x, out=yplan)
        mem_plan = _core.last_call_memory()
        kernel_plan = _core.last_call_kernel()
        makers: dict[str, Callable[[], tuple]] = {
            "tconv": lambda: ((lambda: tconv.conv_transpose(x, w, b, **kw)), None),
            "tconv_plan": lambda: ((lambda: plan(x, out=yplan)), None),
            "tconv_cl": lambda: _tconv_channels_last(x, w, b, kw),
            "tconv_fcl": lambda: _tconv_channels_last(x, w, b, kw, functional=True),
            "numpy": lambda: _numpy_col2im(x, w, b, layer),
            "torch": lambda: _torch(x, w, b, layer, False),
            "torch_cl": lambda: _torch(x, w, b, layer, True),
            "ort": lambda: _ort(x, w, b, layer, threads),
            "openvino": lambda: _openvino(x, w, b, layer, threads),
            "tf": lambda: _tf(x, w, b, layer),
            "jax": lambda: _jax(x, w, b, layer),
        }
        row: dict[str, Any] = {
            "layer": layer["name"],
            "flops": layer["flops"],
            "output_bytes": int(want.nbytes),
            # What any implementation must move at least once: read x, w and b, write y.
            "compulsory_bytes": int(x.nbytes + w.nbytes + b.nbytes + want.nbytes),
            "memory": {
                "tconv": _memory_fields(mem_fn, want.nbytes),
                "tconv_plan": _memory_fields(mem_plan, want.nbytes),
            },
            # The driver (and variant) of each of tconv's calls: see tconv._core.drivers().
            "kernel": {"tconv": kernel_fn, "tconv_plan": kernel_plan},
            "times": {},
            "errors": {},
            "refused": {},
        }
        ours: dict[str, Callable[[], Any]] = {}
        for name, make in makers.items():
            if peers is not None and name not in peers and name not in OURS:
                continue
            try:
                f, to_nchw = make()
                got = f()
                if to_nchw is not None:
                    got = to_nchw(np.asarray(got))
            except ImportError:
                continue  # not installed: no column
            except Exception as exc:  # a peer that refuses the layer or the dtype
                row["refused"][name] = _reason(exc)
                _note(f"{layer['name']}: {name} refused the layer: {row['refused'][name]}")
                continue
            ok, err = _agrees(got, want, dtype)
            row["errors"][name] = err
            if not ok:
                row["refused"][name] = f"disagrees with tconv (rel. error {err:.2e})"
                _note(
                    f"{layer['name']}: {name} disagrees with tconv (rel. error {err:.2e}, "
                    f"tolerance {TOLERANCE[dtype]:.0e}): not timed"
                )
                continue
            if name in OURS:
                ours[name] = f
            else:
                row["times"][name] = _median_time(f, repeats, budget)
        _time_ours(row, ours, threads, repeats, budget)
        results.append(row)
        print(json.dumps({"progress": layer["name"]}), flush=True)
    if probe and peak is not None:
        # Once more after the layers, keeping the higher: on a shared machine another process
        # on one of the run's CPUs for the whole first probe halves a two-thread figure.
        again = _measure_peak(dtype, threads)
        if again["gflops"] > peak["gflops"]:
            peak = again
    if bandwidth is not None:
        again = _measure_bandwidth(threads)
        if again["gbps"] > bandwidth["gbps"]:
            bandwidth = again
    return {"threads": threads, "peak": peak, "bandwidth": bandwidth, "results": results}


# ---- the driver ---------------------------------------------------------------------------------


def _bar(done: int, total: int, label: str) -> None:
    width = 30
    fill = int(width * done / max(total, 1))
    sys.stderr.write(f"\r[{'#' * fill}{'.' * (width - fill)}] {done}/{total} {label:<24}")
    sys.stderr.flush()


def _load_suite(path: str | Path) -> list[dict]:
    return json.loads(Path(path).read_text())["layers"]


def _check_args(ap: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Usage errors (exit status 2 with the usage line) for values argparse lets through."""
    try:
        threads = [int(v) for v in args.threads.split(",")]
    except ValueError:
        ap.error(
            f"argument --threads: expected comma-separated integers such as 1,2, got "
            f"{args.threads!r}"
        )
    if not threads or any(not 1 <= t <= 1024 for t in threads):
        ap.error(
            f"argument --threads: each thread count must be in [1, 1024], got {args.threads!r}"
        )
    if not 1 <= args.rounds <= 100:
        ap.error(f"argument --rounds: must be in [1, 100], got {args.rounds}")
    if not 1 <= args.repeats <= 10**6:
        ap.error(f"argument --repeats: must be in [1, 1000000], got {args.repeats}")
    if not (math.isfinite(args.budget) and 0 < args.budget <= 3600):
        ap.error(
            f"argument --budget: seconds per measurement must be in (0, 3600], got {args.budget}"
        )
    if args.peak is not None and not (math.isfinite(args.peak) and args.peak > 0):
        ap.error(f"argument --peak: GFLOP/s must be a positive number, got {args.peak}")
    if args.peers is not None:
        unknown = [p for p in args.peers.split(",") if p not in PEERS]
        if unknown or not args.peers:
            ap.error(
                f"argument --peers: unknown peer(s) {', '.join(unknown) or repr('')}; "
                f"choose from {', '.join(PEERS)} (tconv itself always runs)"
            )
    try:
        layers = _load_suite(args.suite)
        known = [layer["name"] for layer in layers]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        ap.error(
            f"argument --suite: cannot read a suite of layers from {args.suite!r} "
            f"({type(exc).__name__}: {exc}); expected a JSON file like tconv's "
            f"bench_suite.json"
        )
    if args.layers:
        unknown = [n for n in args.layers.split(",") if n not in known]
        if unknown:
            ap.error(
                f"argument --layers: unknown layer(s) {', '.join(unknown)}; the suite has "
                f"{', '.join(known)}"
            )


def merge_rounds(rounds: list[dict]) -> dict:
    """One thread count's rounds as one run: per layer and column the median time over the
    rounds that timed it, the largest error, every refusal; the highest peak and bandwidth;
    the memory figures of the first round (they do not depend on timing)."""
    first = rounds[0]
    if len(rounds) == 1:
        return first
    merged = []
    for i, row in enumerate(first["results"]):
        same = [r["results"][i] for r in rounds]
        assert all(s["layer"] == row["layer"] for s in same)
        names = {n for s in same for n in s["times"]}
        refused: dict[str, str] = {}
        for s in same:
            for n, why in s["refused"].items():
                refused.setdefault(n, why)
        # A peer refused or disagreeing in any round is not timed at all.
        merged.append(
            {
                **row,
                "times": {
                    n: float(np.median([s["times"][n] for s in same if n in s["times"]]))
                    for n in sorted(names - set(refused))
                },
                "errors": {
                    n: max(s["errors"][n] for s in same if n in s["errors"])
                    for n in sorted({n for s in same for n in s["errors"]})
                },
                "refused": refused,
                **_merged_one_thread(same),
            }
        )
    peak = max(
        (r["peak"] for r in rounds if r["peak"] is not None),
        key=lambda p: p["gflops"],
        default=None,
    )
    bandwidth = max(
        (r["bandwidth"] for r in rounds if r.get("bandwidth") is not None),
        key=lambda b: b["gbps"],
        default=None,
    )
    return {
        "threads": first["threads"],
        "peak": peak,
        "bandwidth": bandwidth,
        "results": merged,
        "rounds": len(rounds),
    }


def _merged_one_thread(same: list[dict]) -> dict:
    """The rounds' one-thread times of a layer (see SCALING_CALLS), medians, if they have any."""
    names = {n for s in same for n in s.get("one_thread", {})}
    if not names:
        return {}
    times = {n: [s["one_thread"][n] for s in same if n in s.get("one_thread", {})] for n in names}
    return {"one_thread": {n: float(np.median(v)) for n, v in sorted(times.items())}}


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="tconv bench",
        description="Time the suite of real layers through tconv and every installed peer, "
        "each checked against tconv first; prints a table, writes JSON and a PNG.",
    )
    ap.add_argument("--threads", default="1,2", help="thread counts, comma-separated (1,2)")
    ap.add_argument("--layers", default=None, help="layer names, comma-separated (all)")
    ap.add_argument("--quick", action="store_true", help="only the suite's 'quick' layers")
    ap.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    ap.add_argument(
        "--repeats",
        type=int,
        default=15,
        help="timed calls per measurement (the median is reported)",
    )
    ap.add_argument("--budget", type=float, default=1.5, help="seconds per measurement, at most")
    ap.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="runs of the whole suite per thread count, each in a fresh process; "
        "every time reported is the median over the rounds (a shared machine "
        "can stall one round's measurement of a layer)",
    )
    ap.add_argument(
        "--peers",
        default=None,
        help=f"peers to run, comma-separated, from {','.join(PEERS)} (default: all installed)",
    )
    ap.add_argument(
        "--peak",
        type=float,
        default=None,
        help="FMA peak GFLOP/s of one thread, instead of measuring it (default: "
        "measured in each run by the core's FMA probe)",
    )
    ap.add_argument(
        "--suite",
        default=str(SUITE),
        help="the suite of layers, a JSON file (default: tconv's bench_suite.json)",
    )
    ap.add_argument("--json", default="bench_results.json", help="where to write the results")
    ap.add_argument(
        "--markdown",
        default=None,
        metavar="FILE",
        help="also write the table into a Markdown page: between this dtype's markers if the "
        "page has them (the rest of the page is kept), else appended (docs/benchmarks.md)",
    )
    ap.add_argument(
        "--png", default="bench_results.png", help="where to draw the chart (needs matplotlib)"
    )
    ap.add_argument("--_worker", type=int, default=None, help=argparse.SUPPRESS)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    _check_args(ap, args)
    layers = _load_suite(args.suite)
    names = args.layers.split(",") if args.layers else None
    if args.quick:
        names = [
            la["name"]
            for la in layers
            if la.get("quick") and (not args.layers or la["name"] in args.layers.split(","))
        ]
    peers = args.peers.split(",") if args.peers else None
    if args._worker is not None:
        res = run_one(
            args._worker,
            names,
            args.dtype,
            args.repeats,
            args.budget,
            peers,
            args.suite,
            probe=args.peak is None,
        )
        print("RESULT " + json.dumps(res), flush=True)
        return 0

    import tconv

    build = {
        "version": tconv.__version__,
        "isa": tconv._core.active_isa(),
        "build_type": getattr(tconv._core, "build_type", "Release"),
        "dtype": args.dtype,
    }
    total_layers = len(names) if names is not None else len(layers)
    runs = []
    for t in [int(v) for v in args.threads.split(",")]:
        cmd = _worker_command(args, t, names, peers)
        rounds = []
        for rnd in range(args.rounds):
            label = f"{t} thread(s)" + (
                f", round {rnd + 1}/{args.rounds}" if args.rounds > 1 else ""
            )
            result = _run_worker(cmd, t, label, total_layers, quiet_notes=rnd != 0)
            if result is None:
                print(f"the {t}-thread run failed", file=sys.stderr)
                return 1
            rounds.append(result)
        result = merge_rounds(rounds)
        if args.peak is not None:
            result["peak"] = {"gflops": args.peak * t, "source": "given (--peak)"}
        add_roofline(result)
        runs.append(result)

    report = {
        "build": build,
        "suite": str(args.suite),
        "tolerance": TOLERANCE[args.dtype],
        "runs": runs,
    }
    print(_table(report))
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"\nwrote {args.json}")
    if args.markdown:
        write_markdown(Path(args.markdown), report, _command_line(args))
        print(f"wrote the table into {args.markdown}")
    _chart(report, args.png)
    return 0


def _command_line(args: argparse.Namespace) -> str:
    """The run's arguments as a command, for the Markdown page (output files left out)."""
    parts = ["python bench/run.py", f"--threads {args.threads}", f"--rounds {args.rounds}"]
    if args.dtype != "float32":
        parts.append(f"--dtype {args.dtype}")
    if args.quick:
        parts.append("--quick")
    for name in ("layers", "peers", "peak"):
        if getattr(args, name) is not None:
            parts.append(f"--{name} {getattr(args, name)}")
    return " ".join(parts)


def markdown_markers(dtype: str) -> tuple[str, str]:
    return (
        f"<!-- tconv bench --markdown: {dtype} tables -->",
        f"<!-- end of tconv bench --markdown: {dtype} tables -->",
    )


def write_markdown(path: Path, report: dict, command: str) -> None:
    """The report's table as a fenced block between the dtype's markers in `path`: the text
    between them is replaced, the rest of the page kept; without the markers the block is
    appended (a new page gets a title)."""
    begin, end = markdown_markers(report["build"]["dtype"])
    when = time.strftime("%Y-%m-%d", time.gmtime())
    block = f"{begin}\n`{command}` ({when}):\n\n```\n{_table(report)}\n```\n{end}"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text and text.index(begin) < text.index(end):
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def _worker_command(
    args: argparse.Namespace, t: int, names: list[str] | None, peers: list[str] | None
) -> list[str]:
    """The command line of one worker process: the whole suite at `t` threads."""
    cmd = [
        sys.executable,
        "-m",
        "tconv",
        "bench",
        "--_worker",
        str(t),
        "--dtype",
        args.dtype,
        "--repeats",
        str(args.repeats),
        "--budget",
        str(args.budget),
        "--suite",
        args.suite,
    ]
    if names is not None:
        cmd += ["--layers", ",".join(names)]
    if peers:
        cmd += ["--peers", ",".join(peers)]
    if args.peak is not None:
        cmd += ["--peak", repr(args.peak)]
    return cmd


def _run_worker(
    cmd: list[str], t: int, label: str, total_layers: int, quiet_notes: bool
) -> dict | None:
    """Run one worker at `t` threads, drawing its progress; its result, or None if it failed."""
    env = dict(
        os.environ,
        TCONV_NUM_THREADS=str(t),
        OMP_NUM_THREADS=str(t),
        TF_CPP_MIN_LOG_LEVEL="3",
        XLA_FLAGS=f"--xla_cpu_multi_thread_eigen={'true' if t > 1 else 'false'} "
        f"intra_op_parallelism_threads={t}",
    )
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=_pin_to_cpus(t)
    )
    done, result = 0, None
    _bar(0, total_layers, label)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[7:])
        elif line.startswith("{"):
            msg = json.loads(line)
            if "note" in msg:
                if not quiet_notes:
                    sys.stderr.write("\r" + " " * 70 + "\r  " + msg["note"] + "\n")
            else:
                done += 1
                label = f"{t}T {msg['progress']}"
            _bar(done, total_layers, label)
    proc.wait()
    sys.stderr.write("\n")
    return result


def _fmt_pct(v: float | None, width: int) -> str:
    if v is None:
        return f"{'-':>{width}}"
    return f"{v:>{width}.1f}" if v < 9.95 else f"{v:>{width}.0f}"


def _roof_cell(row: dict) -> str:
    """The row's %roof and limiter (F: the FMA peak, M: memory), 9 characters wide."""
    roof = row.get("roofline")
    if roof is None:
        return f"{'-':>9}"
    return f"{roof['pct']:>6.0f}% {roof['limiter']}"


def _run_header(run: dict, dtype: str) -> str:
    peak = run["peak"]
    head = f"## {run['threads']} thread(s), {dtype}: FMA peak {peak['gflops']:.1f} GFLOP/s, "
    head += peak["source"]
    bw = run.get("bandwidth")
    if bw is not None:
        head += f"; copy bandwidth {bw['gbps']:.1f} GB/s, {bw['source']}"
    return head


def _functional_cells(gf: dict) -> tuple[float | None, tuple[str, float] | None]:
    """The functional call against the plan on NCHW data, and tconv's functional call on the
    faster layout against the fastest functional peer (name, ratio); None where not timed."""
    f_p = gf["tconv"] / gf["tconv_plan"] if "tconv" in gf and "tconv_plan" in gf else None
    mine = [gf[k] for k in ("tconv", "tconv_fcl") if k in gf]
    peers = {k: v for k, v in gf.items() if k in FUNCTIONAL_PEERS}
    if not (mine and peers):
        return f_p, None
    name = max(peers, key=lambda k: peers[k])
    return f_p, (name, max(mine) / peers[name])


def _legend(run: dict) -> str:
    over = f" over {run['rounds']} rounds" if run.get("rounds", 1) > 1 else ""
    return (
        f"GFLOP/s (median{over}); tconv / tconv_fcl = the functional call on NCHW / NHWC data, "
        "tconv_plan / tconv_cl = the plan on NCHW / NHWC data; %peak = tconv plan / FMA peak; "
        "%roof = roofline bound / tconv plan's time, the bound the larger of flops / FMA peak "
        "and compulsory bytes (x, w, b, y once) / copy bandwidth, F or M the side that limits; "
        "mem% = working memory beyond x, w, y as % of the output (functional | plan); pack% = "
        "packed weights, % of the output; x = tconv plan / best peer, the plan on the faster of "
        "NCHW and NHWC data; f/p = functional / plan on NCHW data; fn x = tconv's functional "
        "call on the faster layout / the best functional peer ("
        + ", ".join(FUNCTIONAL_PEERS)
        + "); kernel = the driver and variant that ran the plan (tconv._core.drivers())"
    )


def _row_line(r: dict, cols: list[str], peak: float, ratios: list, fn: list) -> str:
    gf = {k: r["flops"] / v / 1e9 for k, v in r["times"].items()}
    cells = "".join(f"{gf[c]:>11.1f}" if c in gf else f"{'-':>11}" for c in cols)
    others = {k: v for k, v in gf.items() if k not in OURS}
    best = max(others.items(), key=lambda kv: kv[1]) if others else None
    plans = [gf[k] for k in ("tconv_plan", "tconv_cl") if k in gf]
    mine = max(plans) if plans else None
    pct = f"{100 * mine / peak:>6.0f}%" if mine else f"{'-':>7}"
    mem = r.get("memory", {})
    mf = mem.get("tconv", {}).get("scratch_pct")
    mp = mem.get("tconv_plan", {}).get("scratch_pct")
    pk = mem.get("tconv_plan", {}).get("packed_weight_pct")
    memcell = f"{_fmt_pct(mf, 5).strip()}|{_fmt_pct(mp, 5).strip()}"
    if best and mine:
        ratio = mine / best[1]
        ratios.append((r["layer"], ratio))
        tail = f"{ratio:>9.2f}x {best[0]:<10}"
    else:
        tail = f"{'-':>20}"
    f_p, vs = _functional_cells(gf)
    fn.append((r["layer"], f_p, vs))
    tail += f"{f_p:>6.2f}" if f_p is not None else f"{'-':>6}"
    tail += f"{vs[1]:>7.2f}x {vs[0]:<8}" if vs else f"{'-':>17}"
    kernel = r.get("kernel", {}).get("tconv_plan", "-")
    return (
        f"{r['layer']:<20}{cells}{pct}{_roof_cell(r)}{memcell:>12}{_fmt_pct(pk, 7)}{tail}  {kernel}"
    )


def _geomean_line(what: str, pairs: list) -> str:
    geo = math.exp(sum(math.log(v) for _, v in pairs) / len(pairs))
    return f"geomean {what}: {geo:.2f}x over {len(pairs)} layers; " + _below(
        "layers below 1.0x", pairs, 1.0
    )


def _below(what: str, pairs: list, limit: float, of: bool = False) -> str:
    low = [name for name, v in pairs if v < limit]
    count = f"{len(low)} of {len(pairs)}" if of else f"{len(low)}"
    return f"{what}: {count}" + (f" ({', '.join(low)})" if low else "")


def _summary(run: dict, ratios: list, fn: list) -> list[str]:
    lines = []
    if ratios:
        lines.append(_geomean_line("plan / best peer", ratios))
    roofs = [(r["layer"], r["roofline"]["pct"]) for r in run["results"] if "roofline" in r]
    if roofs:
        lines.append(_below("layers below 80% of the roofline", roofs, 80.0, of=True))
    f_ps = [(name, v) for name, v, _ in fn if v is not None]
    if f_ps:
        lines.append(_below("functional / plan (NCHW) below 0.9x", f_ps, 0.9, of=True))
    vss = [(name, vs[1]) for name, _, vs in fn if vs is not None]
    if vss:
        lines.append(_geomean_line("functional / best functional peer", vss))
    return lines


def _scaling(report: dict, min_flops: float = 50e6) -> list[str]:
    """Per run on several threads and per call of SCALING_CALLS, the layers above `min_flops`
    that run less than 1.85x faster than on one thread. Both times come from that run's
    alternating blocks: runs of different thread counts lie minutes apart, and a shared
    machine's speed moves by more than the ratio measured in that time."""
    lines = []
    for run in report["runs"]:
        rows = [r for r in run["results"] if r["flops"] > min_flops and "one_thread" in r]
        if run["threads"] < 2 or not rows:
            continue
        t = run["threads"]
        lines += [
            "",
            f"{t} threads / 1 thread on the layers above {min_flops / 1e6:.0f} MFLOP "
            f"(both timed in the {t}-thread run, in alternating blocks):",
        ]
        for col in SCALING_CALLS:
            pairs = [
                (r["layer"], r["one_thread"][col] / r["times"][col])
                for r in rows
                if col in r["one_thread"] and col in r["times"]
            ]
            low = [f"{name} {v:.2f}x" for name, v in pairs if v < 1.85]
            lines.append(
                f"  {col}: below 1.85x: {len(low)} of {len(pairs)}"
                + (f" ({', '.join(low)})" if low else "")
            )
    return lines


def _table(report: dict) -> str:
    b = report["build"]
    sources = sorted({run["peak"]["source"] for run in report["runs"]})
    lines = [
        f"tconv {b['version']} | build {b['build_type']} | ISA {b['isa']} | {b['dtype']} | "
        f"FMA peak {' / '.join(sources)}"
    ]
    for run in report["runs"]:
        peers = sorted(
            {p for r in run["results"] for p in list(r["times"]) + list(r["refused"])} - set(OURS)
        )
        cols = list(OURS) + peers
        lines += ["", _run_header(run, b["dtype"]), _legend(run)]
        lines.append(
            f"{'layer':<20}"
            + "".join(f"{c:>11}" for c in cols)
            + f"{'%peak':>7}{'%roof':>7}  {'mem% f|p':>12}{'pack%':>7}{'vs best peer':>20}"
            + f"{'f/p':>6}{'fn x':>8}{'':9}  kernel (plan)"
        )
        ratios: list = []
        fn: list = []
        for r in run["results"]:
            lines.append(_row_line(r, cols, run["peak"]["gflops"], ratios, fn))
        lines += _summary(run, ratios, fn)
    lines += _scaling(report)
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
    fig, axes = plt.subplots(len(runs), 1, figsize=(14, 4.5 * len(runs)), squeeze=False)
    for ax, run in zip(axes[:, 0], runs):
        layers = [r["layer"] for r in run["results"]]
        others = sorted({p for r in run["results"] for p in r["times"]} - set(OURS))
        names = ["tconv_plan", "tconv_cl"] + others
        width = 0.8 / max(len(names), 1)
        top = run["peak"]["gflops"]
        for i, name in enumerate(names):
            vals = [
                r["flops"] / r["times"][name] / 1e9 if name in r["times"] else 0
                for r in run["results"]
            ]
            top = max([top, *vals])
            ax.bar(
                np.arange(len(layers)) + i * width,
                vals,
                width,
                label=name,
                color={"tconv_plan": "black", "tconv_cl": "dimgrey"}.get(name),
            )
        ax.axhline(
            run["peak"]["gflops"],
            color="grey",
            linestyle="--",
            linewidth=1,
            label=f"FMA peak ({run['peak']['source'].split(' (')[0]})",
        )
        ax.set_xticks(np.arange(len(layers)) + 0.4 - width / 2)
        ax.set_xticklabels(layers, rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("GFLOP/s")
        ax.set_title(
            f"{run['threads']} thread(s), {report['build']['dtype']}, "
            f"ISA {report['build']['isa']} (0 = refused, disagreed or absent)"
        )
        ax.set_ylim(0, top * 1.3)  # headroom for the legend above the bars and the peak line
        ax.legend(fontsize=7, ncol=len(names) + 1, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
