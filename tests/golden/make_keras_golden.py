"""Regenerate keras_transpose.npz: Keras 3 Conv{1,2,3}DTranspose outputs on tiny layers.

The test suite must not need Keras, so the numbers Keras computes are stored here once.
Run it with a Python that has Keras 3 and JAX (the JAX backend runs every layer, including
dilation and even kernels with 'same', which TensorFlow's CPU kernels refuse); --check
recomputes every layer on the TensorFlow backend too and fails on any disagreement where
TensorFlow runs the layer::

    KERAS_BACKEND=jax python tests/golden/make_keras_golden.py --check tensorflow

The file holds, for layer j: j/x, j/kernel (Keras layout (*k, filters, C_in)), j/bias, j/y
(the layer's output), and "configs", a JSON list of the constructor arguments plus the shape
Keras' compute_output_shape reports.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
OUT = HERE / "keras_transpose.npz"


def cases() -> list[dict]:
    """A few dozen layers: every rank, both paddings, output_padding None / set, odd and even
    kernels, strides below, at and above the kernel size, dilation (with stride 1: Keras refuses
    both > 1 together)."""
    c = []

    def add(
        rank,
        size,
        cin,
        filters,
        kernel,
        strides,
        padding,
        output_padding=None,
        dilation=1,
        use_bias=True,
    ):
        c.append(
            dict(
                rank=rank,
                input=list(size),
                cin=cin,
                filters=filters,
                kernel=kernel,
                strides=strides,
                padding=padding,
                output_padding=output_padding,
                dilation_rate=dilation,
                use_bias=use_bias,
            )
        )

    # The three layers behind the "11x11" confusion.
    add(2, (5, 5), 2, 3, 3, 2, "same", (1, 1))
    add(2, (6, 6), 2, 3, 3, 2, "same", (0, 0))
    add(2, (6, 6), 2, 3, 3, 2, "same", None)
    for padding in ("same", "valid"):
        for kernel in (1, 2, 3, 4, 5):
            for stride in (1, 2, 3):
                if kernel in (1, 4) and stride == 3:
                    continue
                add(1, (7,), 2, 3, kernel, stride, padding, None)
                ops = sorted({0, stride - 1})
                add(1, (6,), 3, 2, kernel, stride, padding, ops[-1], use_bias=False)
                if stride > 1:
                    add(1, (5,), 1, 2, kernel, stride, padding, 0)
        add(1, (6,), 2, 2, 3, 1, padding, None, dilation=2)
        add(1, (5,), 2, 2, 2, 1, padding, None, dilation=3)
        add(2, (4, 5), 3, 2, (3, 2), (2, 3), padding, None)
        add(2, (5, 4), 2, 3, (4, 3), (2, 1), padding, (1, 0))
        add(2, (3, 3), 2, 2, (2, 2), 2, padding, (0, 1))
        add(2, (4, 4), 2, 2, 3, 1, padding, None, dilation=(2, 1))
        add(3, (3, 2, 3), 2, 2, (3, 2, 3), (2, 1, 2), padding, None)
        add(3, (2, 3, 2), 1, 2, (2, 3, 1), (1, 2, 3), padding, (0, 1, 2))
    return json.loads(json.dumps(c))  # tuples as lists, exactly as stored


def layer_class(keras, rank):
    return {
        1: keras.layers.Conv1DTranspose,
        2: keras.layers.Conv2DTranspose,
        3: keras.layers.Conv3DTranspose,
    }[rank]


def run(configs: list[dict], arrays: dict | None) -> dict:
    """Each layer's output on this backend (None where the backend refuses the layer)."""
    import keras

    rng = np.random.default_rng(20240611)
    result = {}
    for j, cfg in enumerate(configs):
        if arrays is None:
            x = rng.standard_normal((2, *cfg["input"], cfg["cin"])).astype(np.float32)
            k = [cfg["kernel"]] * cfg["rank"] if isinstance(cfg["kernel"], int) else cfg["kernel"]
            kernel = rng.standard_normal((*k, cfg["filters"], cfg["cin"])).astype(np.float32)
            bias = rng.standard_normal(cfg["filters"]).astype(np.float32)
        else:
            x, kernel, bias = (arrays[f"{j}/{n}"] for n in ("x", "kernel", "bias"))
        args = {
            key: cfg[key]
            for key in (
                "filters",
                "kernel",
                "strides",
                "padding",
                "output_padding",
                "dilation_rate",
                "use_bias",
            )
        }
        args["kernel_size"] = args.pop("kernel")
        layer = layer_class(keras, cfg["rank"])(**args, data_format="channels_last")
        layer.build(x.shape)
        layer.set_weights([kernel, bias] if cfg["use_bias"] else [kernel])
        try:
            y = np.asarray(layer(x))
        except Exception as exc:  # a backend that cannot run this layer
            y = None
            print(
                f"layer {j}: {keras.backend.backend()} refuses it: {type(exc).__name__}",
                file=sys.stderr,
            )
        result[j] = dict(
            x=x, kernel=kernel, bias=bias, y=y, shape=list(layer.compute_output_shape(x.shape))
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", metavar="BACKEND", help="also run every layer on this Keras backend and compare"
    )
    parser.add_argument("--replay", help=argparse.SUPPRESS)  # child process of --check
    args = parser.parse_args()

    if args.replay:
        data = dict(np.load(args.replay))
        configs = json.loads(str(data["configs"]))
        res = run(configs, data)
        np.savez(
            args.replay + ".out.npz",
            **{f"{j}/y": r["y"] for j, r in res.items() if r["y"] is not None},
        )
        return

    os.environ.setdefault("KERAS_BACKEND", "jax")
    configs = cases()
    res = run(configs, None)
    for j, r in res.items():
        if r["y"] is None:
            raise SystemExit(f"layer {j} did not run on {os.environ['KERAS_BACKEND']}")
        if list(r["y"].shape) != r["shape"]:
            raise SystemExit(
                f"layer {j}: output {r['y'].shape} != compute_output_shape {r['shape']}"
            )
        configs[j]["output_shape"] = r["shape"]
    payload = {"configs": np.array(json.dumps(configs))}
    for j, r in res.items():
        for name in ("x", "kernel", "bias", "y"):
            payload[f"{j}/{name}"] = r[name]
    np.savez_compressed(OUT, **payload)
    print(f"wrote {len(configs)} layers to {OUT} ({OUT.stat().st_size} bytes)")

    if args.check:
        env = dict(os.environ, KERAS_BACKEND=args.check)
        subprocess.run([sys.executable, __file__, "--replay", str(OUT)], env=env, check=True)
        other = np.load(str(OUT) + ".out.npz")
        compared = 0
        for j, r in res.items():
            key = f"{j}/y"
            if key not in other.files:
                continue
            diff = np.abs(other[key] - r["y"]).max() if r["y"].size else 0.0
            scale = max(np.abs(r["y"]).max(), 1.0) if r["y"].size else 1.0
            if other[key].shape != r["y"].shape or diff > 1e-4 * scale:
                raise SystemExit(
                    f"layer {j} ({configs[j]}): {args.check} disagrees "
                    f"(shape {other[key].shape}, max diff {diff})"
                )
            compared += 1
        os.remove(str(OUT) + ".out.npz")
        print(f"{args.check} agrees on {compared} of {len(configs)} layers (the others it refuses)")


if __name__ == "__main__":
    main()
