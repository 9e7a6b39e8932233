"""Compare two builds of the extension bit for bit.

    PYTHONPATH=<package dir of build A> python tools/same_outputs.py dump a.npz
    PYTHONPATH=<package dir of build B> python tools/same_outputs.py dump b.npz
    python tools/same_outputs.py compare a.npz b.npz

`dump` runs a fixed set of layers (the bench suite's, shrunk, and seeded random layers aimed at
the multi-phase tile kernels: 1-4 output channels, strides 2-4, dilation, padding, row lengths
across every tile width and tail) on every ISA this CPU has, in float32 and float64, both data
layouts, through the functional call and a plan, with 1 and 2 threads, and saves each result's
raw bytes. `compare` exits 1 unless both files hold the same results byte for byte.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

SUITE = Path(__file__).resolve().parents[1] / "python" / "tconv" / "bench_suite.json"


def _suite_layers() -> list[dict]:
    layers = []
    for layer in json.loads(SUITE.read_text())["layers"]:
        size = [max(1, min(s, 24)) for s in layer["input_size"]]
        if len(size) == 1:
            size = [max(1, min(layer["input_size"][0], 200))]
        groups = layer["groups"]
        cin = min(layer["in_channels"], 32)
        cout = min(layer["out_channels"], 32)
        if groups > 1:  # depthwise: keep it depthwise
            groups = cin = cout = min(groups, 16)
        layers.append(
            dict(
                batch=min(layer["batch"], 2),
                cin=cin,
                cout=cout,
                groups=groups,
                size=size,
                kernel=layer["kernel_size"],
                stride=layer["stride"],
                padding=layer["padding"],
                dilation=layer["dilation"],
            )
        )
    return layers


def _random_layers(n: int, seed: int, wide: bool = False) -> list[dict]:
    """Small layers; `wide`: many input channels and more than 8 shifts of the last dim (the
    multi-phase kernels read in place, a shift per pass, partners at the row windows' edges)."""
    rng = np.random.default_rng(seed)
    layers = []
    while len(layers) < n:
        rank = int(rng.choice([1, 1, 2] if wide else [1, 2, 2, 2, 3]))
        stride = [int(rng.integers(1, 5)) for _ in range(rank)]
        stride[-1] = int(rng.integers(2, 5))  # the multi-phase kernels: 2-4 phases on the last dim
        kernel = [int(rng.integers(1, 10)) for _ in range(rank)]
        dilation = [int(rng.choice([1, 1, 1, 2, 3])) for _ in range(rank)]
        if wide:
            kernel[-1] = int(rng.integers(9, 40))
            dilation[-1] = int(rng.choice([1, 2, 3]))
        span = [(k - 1) * d + 1 for k, d in zip(kernel, dilation)]
        padding = [int(rng.integers(0, s)) for s in span]
        # The last dim spans 1-6 vectors of 16 (and 8) positions and every tail.
        size = [int(rng.integers(1, 7)) for _ in range(rank - 1)] + [int(rng.integers(1, 110))]
        out = [(i - 1) * s - 2 * p + sp for i, s, p, sp in zip(size, stride, padding, span)]
        if min(out) < 1:
            continue
        cout = int(rng.choice([1, 2, 3, 4, 1, 2, 3, 4, 5, 9, 17]))
        cin = int(rng.integers(1, 12))
        if wide:
            cout, cin = int(rng.integers(1, 5)), int(rng.integers(16, 80))
        layers.append(
            dict(
                batch=int(rng.integers(1, 3)),
                cin=cin,
                cout=cout,
                groups=1,
                size=size,
                kernel=kernel,
                stride=stride,
                padding=padding,
                dilation=dilation,
            )
        )
    return layers


def dump(path: str) -> None:
    import tconv

    results = {}
    layers = _suite_layers() + _random_layers(300, 1234) + _random_layers(80, 99, wide=True)
    for isa in tconv.available_isas():
        tconv.set_max_isa(isa)
        for dtype in (np.float32, np.float64):
            for li, L in enumerate(layers):
                rng = np.random.default_rng(li)
                rank = len(L["size"])
                x = rng.standard_normal((L["batch"], L["cin"], *L["size"])).astype(dtype)
                w = rng.standard_normal((L["cin"], L["cout"] // L["groups"], *L["kernel"]))
                w = w.astype(dtype)
                b = rng.standard_normal(L["cout"]).astype(dtype) if li % 2 else None
                kw = dict(
                    stride=L["stride"],
                    padding=L["padding"],
                    dilation=L["dilation"],
                    groups=L["groups"],
                )
                for threads in (1, 2):
                    tconv.set_num_threads(threads)
                    key = f"{isa}/{np.dtype(dtype).name}/{li}/t{threads}"
                    results[key + "/cf"] = tconv.conv_transpose(x, w, b, **kw)
                    xl = np.ascontiguousarray(np.moveaxis(x, 1, -1))
                    wl = np.ascontiguousarray(np.moveaxis(w, (0, 1), (-1, -2)))
                    results[key + "/cl"] = tconv.conv_transpose(
                        xl, wl, b, **kw, data_format="channels_last"
                    )
                    plan = tconv.ConvTranspose(w, b, **kw)
                    results[key + "/plan"] = plan(x)
                    assert rank == x.ndim - 2
    np.savez(path, **{k: np.frombuffer(v.tobytes(), np.uint8) for k, v in results.items()})
    print(f"{len(results)} results from {len(layers)} layers on {tconv.available_isas()}")


def compare(a: str, b: str) -> int:
    fa, fb = np.load(a), np.load(b)
    keys = sorted(set(fa.files) | set(fb.files))
    bad = [
        k
        for k in keys
        if k not in fa.files or k not in fb.files or not np.array_equal(fa[k], fb[k])
    ]
    print(f"{len(keys)} results compared, {len(bad)} differ")
    for k in bad[:20]:
        print("  differs:", k)
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["dump"] and len(sys.argv) == 3:
        dump(sys.argv[2])
    elif sys.argv[1:2] == ["compare"] and len(sys.argv) == 4:
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    else:
        sys.exit(__doc__)
