"""Time one build of tconv against another, layer by layer: ``python bench/ab.py --help``.

A change of a few per cent cannot be read off two bench runs: the machine's speed moves between
them, and two processes of one build differ by up to 10 % (where their memory lands). So each
build runs in several persistent worker processes at once, called in turn within every round
(in order, then in reverse), each call a block of repeats. A first process of the first build
sets the pace: its times are each round's reference and take no part in the comparison. Every
other process's time is divided by the reference's of the same round; the medians of those
ratios, per process and averaged per build, are what the table shows. Two processes of one
build give the spread that sits in any single comparison.

A build is a directory holding a ``tconv`` package (an installed tree, or ``python/`` of a
checkout with its extension copied in), put first on PYTHONPATH, with environment variables
of its own if given: ``--build new=/tmp/new`` or ``--build off=python+TCONV_THREADS=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field

# Runs in each worker: builds the layer's call once, then times `reps` calls per line read.
WORKER = r"""
import json, sys, time
import tconv
from tconv import _bench, _core
name, call, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
layers = {l["name"]: l for l in _bench._load_suite(_bench.SUITE)}
layer = layers[name]
tconv.set_num_threads(threads)
x, w, b = _bench._layer_inputs(layer, "float32")
kw = _bench._kw(layer)
if call == "plan":
    plan = tconv.ConvTranspose(w, b, **kw)
    f = lambda: plan(x)
elif call == "fn":
    f = lambda: tconv.conv_transpose(x, w, b, **kw)
else:  # channels_last data and Keras-ordered weights, as the bench's tconv_cl / tconv_fcl
    f = _bench._tconv_channels_last(x, w, b, kw, functional=call == "fn_cl")[0]
f()
f()
kernel = _core.last_call_isa() + " " + _core.last_call_kernel()
print(json.dumps({"kernel": kernel, "flops": layer["flops"]}), flush=True)
for line in sys.stdin:
    reps = int(line)
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    print((time.perf_counter() - t0) / reps, flush=True)
"""


@dataclass
class Build:
    name: str
    path: str
    env: dict[str, str] = field(default_factory=dict)


def parse_build(text: str) -> Build:
    """``NAME=DIR[+VAR=VALUE...]`` as a Build."""
    name, sep, rest = text.partition("=")
    if not sep or not name or not rest:
        raise ValueError(f"a build is NAME=DIR[+VAR=VALUE...], got {text!r}")
    path, *pairs = rest.split("+")
    env = {}
    for pair in pairs:
        var, sep, value = pair.partition("=")
        if not sep or not var:
            raise ValueError(f"an environment setting is VAR=VALUE, got {pair!r} in {text!r}")
        env[var] = value
    return Build(name, path, env)


def slot_order(builds: int, processes: int) -> list[int]:
    """The build of each slot after the reference: processes of the builds interleaved."""
    return [b for _ in range(processes) for b in range(builds)]


def summarize(ref: list[float], slots: list[list[float]], owner: list[int]) -> dict:
    """Per slot the median of its round-by-round ratio to the reference's time, and per build
    (owner[slot]) the mean of its slots' medians and their range."""
    if any(len(t) != len(ref) for t in slots):
        raise ValueError("every slot needs one time per round")
    per_slot = [statistics.median(t / r for t, r in zip(times, ref)) for times in slots]
    builds: dict[int, list[float]] = {}
    for slot, b in enumerate(owner):
        builds.setdefault(b, []).append(per_slot[slot])
    return {
        "slots": per_slot,
        "builds": {b: (statistics.fmean(v), min(v), max(v)) for b, v in builds.items()},
    }


class Worker:
    def __init__(self, build: Build, layer: str, call: str, threads: int):
        env = dict(os.environ, **build.env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [build.path, env.get("PYTHONPATH")]))
        args = [sys.executable, "-c", WORKER, layer, call, str(threads)]
        self.proc = subprocess.Popen(
            args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line:
            self.close()
            raise RuntimeError(f"build {build.name!r} ({build.path}) did not start {layer}")
        self.info = json.loads(line)

    def time(self, reps: int) -> float:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(f"{reps}\n")
        self.proc.stdin.flush()
        return float(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait()


def compare(builds: list[Build], layer: str, args: argparse.Namespace) -> list[str]:
    owner = slot_order(len(builds), args.processes)
    workers = [Worker(builds[0], layer, args.call, args.threads)]
    try:
        workers += [Worker(builds[b], layer, args.call, args.threads) for b in owner]
        reps = max(1, round(args.block / workers[0].time(1)))
        times: list[list[float]] = [[] for _ in workers]
        for r in range(args.rounds):
            order = range(len(workers)) if r % 2 == 0 else reversed(range(len(workers)))
            for i in order:
                times[i].append(workers[i].time(reps))
    finally:
        for w in workers:
            w.close()
    s = summarize(times[0], times[1:], owner)
    ref = statistics.median(times[0])
    lines = [f"{layer} ({args.call}, {args.threads} thread(s), {args.rounds} rounds x {reps})"]
    lines.append(f"  {'reference':12s} {workers[0].info['kernel']:30s} {ref * 1e3:9.3f} ms")
    for slot, b in enumerate(owner):
        w = workers[slot + 1]
        ms = statistics.median(times[slot + 1]) * 1e3
        gf = w.info["flops"] / ms / 1e6
        lines.append(
            f"  {builds[b].name:12s} {w.info['kernel']:30s} {ms:9.3f} ms {gf:7.1f} GFLOP/s"
            f"  x{s['slots'][slot]:.3f}"
        )
    base = s["builds"][0][0]
    for b, (mean, lo, hi) in s["builds"].items():
        lines.append(
            f"  {builds[b].name:12s} time / reference {mean:.3f} ({lo:.3f}-{hi:.3f})"
            f"  / {builds[0].name} {mean / base:.3f}"
        )
    return lines


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="append", required=True, help="NAME=DIR[+VAR=VALUE...]")
    ap.add_argument("--layers", required=True, help="suite layer names, comma-separated")
    ap.add_argument(
        "--call",
        choices=["fn", "plan", "fn_cl", "plan_cl"],
        default="fn",
        help="the functional call or the plan, on NCHW (PyTorch) or NHWC (Keras) operands",
    )
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=24)
    ap.add_argument("--processes", type=int, default=2, help="worker processes per build")
    ap.add_argument("--block", type=float, default=0.2, help="seconds per timed block")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = _parser()
    args = ap.parse_args(argv)
    try:
        builds = [parse_build(b) for b in args.build]
    except ValueError as e:
        ap.error(str(e))
    if args.threads < 1 or args.rounds < 1 or args.processes < 1 or args.block <= 0:
        ap.error("--threads, --rounds and --processes must be at least 1, --block above 0")
    for layer in args.layers.split(","):
        print("\n".join(compare(builds, layer, args)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
