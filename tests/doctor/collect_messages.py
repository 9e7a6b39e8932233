"""Collect the real error messages of transposed-convolution layers from the frameworks.

Run with an interpreter that has torch, tensorflow, keras (3), tf_keras (Keras 2), jax, onnx
and onnxruntime installed:

    python tests/doctor/collect_messages.py tests/doctor/messages.json

Each record is {framework, kind, exception, message, params}: the exception type and its text
exactly as the framework raised it, for the configuration in params. tconv's doctor is tested
against every record (tests/python/test_doctor.py), so the test suite needs no framework.
"""

from __future__ import annotations

import json
import os
import sys
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
warnings.filterwarnings("ignore")

RECORDS: list[dict] = []


def record(framework: str, kind: str, params: dict, fn) -> None:
    try:
        fn()
    except Exception as exc:  # the message is the point
        RECORDS.append(
            {
                "framework": framework,
                "kind": kind,
                "exception": type(exc).__name__,
                "message": str(exc),
                "params": params,
            }
        )
        return
    print(f"no error from {framework} {kind} {params}", file=sys.stderr)


def collect_torch() -> None:
    import torch
    from torch import nn

    version = f"torch {torch.__version__}"

    def layer(rank, cin, cout, k, **kw):
        cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[rank]
        return cls(cin, cout, k, **kw)

    for rank, s, d, op in [
        (2, 2, 1, 2),
        (2, 2, 1, 3),
        (1, 1, 1, 1),
        (3, 2, 3, 3),
        (2, 1, 2, 2),
        (1, 3, 1, 5),
    ]:
        p = {
            "rank": rank,
            "in_channels": 4,
            "out_channels": 2,
            "kernel_size": 3,
            "stride": s,
            "dilation": d,
            "output_padding": op,
            "input": [1, 4] + [5] * rank,
        }
        record(
            version,
            "output_padding",
            p,
            lambda: layer(rank, 4, 2, 3, stride=s, dilation=d, output_padding=op)(
                torch.zeros(p["input"])
            ),
        )
    for rank, shape in [
        (2, [1, 100]),
        (2, [4, 5, 5, 5, 5]),
        (1, [2, 3, 4, 5]),
        (3, [1, 4, 5, 5]),
        (2, [8, 4]),
    ]:
        p = {"rank": rank, "in_channels": 4, "out_channels": 2, "kernel_size": 3, "input": shape}
        record(version, "rank", p, lambda: layer(rank, 4, 2, 3)(torch.zeros(shape)))
    for rank, cin, got in [(2, 8, 3), (1, 16, 4), (3, 2, 5)]:
        p = {
            "rank": rank,
            "in_channels": cin,
            "out_channels": 2,
            "kernel_size": 3,
            "input": [1, got] + [5] * rank,
        }
        record(version, "channels", p, lambda: layer(rank, cin, 2, 3)(torch.zeros(p["input"])))
    for cin, cout, g in [(4, 2, 3), (6, 4, 4)]:
        p = {"rank": 2, "in_channels": cin, "out_channels": cout, "kernel_size": 3, "groups": g}
        record(version, "groups", p, lambda: layer(2, cin, cout, 3, groups=g))
    for rank, size, want, s in [(2, 5, 11, 2), (2, 5, 13, 2), (1, 7, 3, 2), (2, 6, 20, 3)]:
        p = {
            "rank": rank,
            "in_channels": 4,
            "out_channels": 2,
            "kernel_size": 3,
            "stride": s,
            "padding": 1,
            "input": [1, 4] + [size] * rank,
            "output_size": [want] * rank,
        }
        record(
            version,
            "output_size",
            p,
            lambda: layer(rank, 4, 2, 3, stride=s, padding=1)(
                torch.zeros(p["input"]), output_size=p["output_size"]
            ),
        )
    p = {
        "rank": 2,
        "in_channels": 4,
        "out_channels": 2,
        "kernel_size": 3,
        "stride": 2,
        "input": [1, 4, 5, 5],
        "output_size": [10, 10, 10],
    }
    record(
        version,
        "output_size_length",
        p,
        lambda: layer(2, 4, 2, 3, stride=2)(torch.zeros(p["input"]), output_size=p["output_size"]),
    )
    p = {
        "rank": 2,
        "in_channels": 4,
        "out_channels": 2,
        "kernel_size": 3,
        "stride": 2,
        "padding": "same",
        "input": [1, 4, 5, 5],
    }
    record(
        version,
        "padding_string",
        p,
        lambda: layer(2, 4, 2, 3, stride=2, padding="same")(torch.zeros(p["input"])),
    )
    import torch.nn.functional as F

    p = {"rank": 2, "input": [1, 4, 5, 5], "weight": [4, 2, 3, 3], "padding": "same"}
    record(
        version,
        "padding_string",
        p,
        lambda: F.conv_transpose2d(
            torch.zeros(p["input"]), torch.zeros(p["weight"]), padding="same"
        ),
    )
    for rank, size, k, pad in [(2, 2, 3, 3), (1, 1, 1, 2), (2, 3, 2, 4)]:
        p = {
            "rank": rank,
            "in_channels": 4,
            "out_channels": 2,
            "kernel_size": k,
            "padding": pad,
            "input": [1, 4] + [size] * rank,
        }
        record(
            version,
            "negative_output",
            p,
            lambda: layer(rank, 4, 2, k, padding=pad)(torch.zeros(p["input"])),
        )
    p = {
        "rank": 2,
        "in_channels": 4,
        "out_channels": 2,
        "kernel_size": 3,
        "padding": -1,
        "input": [1, 4, 5, 5],
    }
    record(
        version,
        "negative_padding",
        p,
        lambda: layer(2, 4, 2, 3, padding=-1)(torch.zeros(p["input"])),
    )
    p = {"rank": 2, "input": [1, 4, 5, 5], "weight": [4, 2, 3, 3], "stride": 0}
    record(
        version,
        "stride",
        p,
        lambda: F.conv_transpose2d(torch.zeros(p["input"]), torch.zeros(p["weight"]), stride=0),
    )


def collect_keras(module_name: str, tf_kernel_errors_only: bool = False) -> None:
    if module_name == "keras":
        import keras
        from keras import layers

        version = f"keras {keras.__version__}"
    else:
        import tf_keras as keras
        from tf_keras import layers

        version = f"tf_keras {keras.__version__}"
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        version += " (TF_ENABLE_ONEDNN_OPTS=0)"
    import numpy as np

    cls = {1: layers.Conv1DTranspose, 2: layers.Conv2DTranspose, 3: layers.Conv3DTranspose}

    def run(rank, shape, *args, **kw):
        lay = cls[rank](*args, **kw)
        if any(v is None for v in shape):
            inp = keras.Input(shape=shape[1:])
            return lay(inp)
        return lay(np.zeros(shape, dtype="float32"))

    for rank, size, k, s, op in [(2, 5, 2, 1, 0), (1, 4, 4, 1, 0)]:
        p = {
            "rank": rank,
            "filters": 3,
            "kernel_size": k,
            "strides": s,
            "padding": "same",
            "output_padding": op,
            "input": [1] + [size] * rank + [4],
        }
        record(
            version,
            "out_backprop",
            p,
            lambda: run(rank, p["input"], 3, k, strides=s, padding="same", output_padding=op),
        )
    if tf_kernel_errors_only:
        return
    for rank, shape in [
        (2, [None, 100]),
        (2, [None, 7, 7]),
        (1, [None, 64]),
        (3, [None, 8, 8, 3]),
        (2, [None, 10, 7, 7, 3]),
        (1, [None, 10, 5, 4]),
    ]:
        p = {"rank": rank, "filters": 3, "kernel_size": 3, "input": shape}
        record(version, "rank", p, lambda: run(rank, shape, 3, 3))
    for rank, s, op in [(2, 2, 2), (2, 1, 1), (1, 3, 4), (3, 2, 2)]:
        p = {
            "rank": rank,
            "filters": 3,
            "kernel_size": 3,
            "strides": s,
            "output_padding": op,
            "padding": "same",
            "input": [1] + [6] * rank + [4],
        }
        record(
            version,
            "output_padding",
            p,
            lambda: run(rank, p["input"], 3, 3, strides=s, padding="same", output_padding=op),
        )
    for rank, s, d in [(1, 2, 2), (2, 2, 2)]:
        p = {
            "rank": rank,
            "filters": 3,
            "kernel_size": 3,
            "strides": s,
            "dilation_rate": d,
            "input": [1] + [6] * rank + [4],
        }
        record(
            version,
            "stride_and_dilation",
            p,
            lambda: run(rank, p["input"], 3, 3, strides=s, dilation_rate=d),
        )
    if module_name == "tf_keras":
        p = {
            "rank": 2,
            "filters": 3,
            "kernel_size": 3,
            "dilation_rate": [1, 2],
            "input": [1, 6, 6, 4],
        }
        record(
            version, "unequal_dilation", p, lambda: run(2, p["input"], 3, 3, dilation_rate=(1, 2))
        )
    lay = cls[2](3, 3)
    lay(np.zeros((1, 5, 5, 8), dtype="float32"))
    p = {
        "rank": 2,
        "filters": 3,
        "kernel_size": 3,
        "built_for": [1, 5, 5, 8],
        "input": [1, 5, 5, 4],
    }
    record(version, "channels", p, lambda: lay(np.zeros((1, 5, 5, 4), dtype="float32")))
    p = {"rank": 2, "filters": 3, "kernel_size": 3, "input": [1, 6, 6, 4], "padding": "full"}
    record(version, "padding_string", p, lambda: run(2, p["input"], 3, 3, padding="full"))
    p = {"rank": 2, "filters": 3, "kernel_size": [3, 3, 3], "input": [1, 6, 6, 4]}
    record(version, "kernel_size", p, lambda: run(2, p["input"], 3, (3, 3, 3)))


def collect_tf_nn() -> None:
    import tensorflow as tf

    version = f"tensorflow {tf.__version__}"
    if os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        version += " (TF_ENABLE_ONEDNN_OPTS=0)"
    z = tf.zeros
    cases = [  # input NHWC, filters (kh, kw, out, in), output_shape, stride, padding
        ([1, 5, 5, 4], [3, 3, 2, 4], [1, 11, 11, 2], 2, "SAME"),
        ([1, 5, 5, 4], [3, 3, 2, 4], [1, 8, 8, 2], 2, "SAME"),
        ([1, 18, 18, 4], [4, 4, 2, 4], [1, 32, 32, 2], 2, "VALID"),
        ([1, 6, 6, 4], [3, 3, 2, 4], [1, 6, 12, 2], 2, "SAME"),
        ([1, 5, 5, 4], [3, 3, 2, 4], [1, 14, 14, 2], 3, "VALID"),
    ]
    for x, f, o, s, pad in cases:
        p = {"rank": 2, "input": x, "filters": f, "output_shape": o, "strides": s, "padding": pad}
        record(
            version,
            "out_backprop",
            p,
            lambda: tf.nn.conv2d_transpose(z(x), z(f), o, s, padding=pad),
        )
    p = {
        "rank": 1,
        "input": [1, 5, 4],
        "filters": [3, 2, 4],
        "output_shape": [1, 12, 2],
        "strides": 2,
        "padding": "SAME",
    }
    record(
        version,
        "out_backprop",
        p,
        lambda: tf.nn.conv1d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 2, padding="SAME"
        ),
    )
    p = {
        "rank": 3,
        "input": [1, 4, 4, 4, 4],
        "filters": [3, 3, 3, 2, 4],
        "output_shape": [1, 9, 9, 9, 2],
        "strides": 2,
        "padding": "SAME",
    }
    record(
        version,
        "out_backprop",
        p,
        lambda: tf.nn.conv3d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 2, padding="SAME"
        ),
    )
    p = {
        "rank": 2,
        "input": [1, 5, 5, 3],
        "filters": [3, 3, 2, 4],
        "output_shape": [1, 10, 10, 2],
        "strides": 2,
        "padding": "SAME",
    }
    record(
        version,
        "channels",
        p,
        lambda: tf.nn.conv2d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 2, padding="SAME"
        ),
    )
    p = {
        "rank": 2,
        "input": [1, 5, 5, 4],
        "filters": [3, 3, 2, 4],
        "output_shape": [1, 10, 10, 3],
        "strides": 2,
        "padding": "SAME",
    }
    record(
        version,
        "channels",
        p,
        lambda: tf.nn.conv2d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 2, padding="SAME"
        ),
    )
    # A rank-2 input, or an output_shape of the wrong length, aborts the whole process in
    # TF 2.21's oneDNN kernel (a failed CHECK, no Python exception): nothing to collect.
    p = {
        "rank": 2,
        "input": [1, 5, 5, 4],
        "filters": [3, 3, 4],
        "output_shape": [1, 10, 10, 2],
        "strides": 2,
        "padding": "SAME",
    }
    record(
        version,
        "rank",
        p,
        lambda: tf.nn.conv2d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 2, padding="SAME"
        ),
    )
    p = {
        "rank": 2,
        "input": [1, 5, 5, 4],
        "filters": [3, 3, 2, 4],
        "output_shape": [1, 9, 9, 2],
        "strides": 1,
        "padding": "SAME",
        "dilations": 2,
    }
    record(
        version,
        "dilation_cpu",
        p,
        lambda: tf.nn.conv2d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 1, padding="SAME", dilations=2
        ),
    )
    p = {
        "rank": 2,
        "input": [1, 4, 5, 5],
        "filters": [3, 3, 2, 4],
        "output_shape": [1, 2, 10, 10],
        "strides": 2,
        "padding": "SAME",
        "data_format": "NCHW",
    }
    record(
        version,
        "data_format_cpu",
        p,
        lambda: tf.nn.conv2d_transpose(
            z(p["input"]), z(p["filters"]), p["output_shape"], 2, padding="SAME", data_format="NCHW"
        ),
    )
    p = {
        "rank": 3,
        "input": [1, 4, 5, 5, 5],
        "filters": [3, 3, 3, 2, 4],
        "output_shape": [1, 2, 10, 10, 10],
        "strides": 2,
        "padding": "SAME",
        "data_format": "NCDHW",
    }
    record(
        version,
        "data_format_cpu",
        p,
        lambda: tf.nn.conv3d_transpose(
            z(p["input"]),
            z(p["filters"]),
            p["output_shape"],
            2,
            padding="SAME",
            data_format="NCDHW",
        ),
    )


def collect_onnx() -> None:
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    version = f"onnxruntime {ort.__version__}"

    def run(x_shape, w_shape, **attrs):
        node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
        graph = helper.make_graph(
            [node],
            "g",
            [
                helper.make_tensor_value_info("X", TensorProto.FLOAT, None),
                helper.make_tensor_value_info("W", TensorProto.FLOAT, None),
            ],
            [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        sess.run(None, {"X": np.zeros(x_shape, np.float32), "W": np.zeros(w_shape, np.float32)})

    cases = [
        ("channels", [1, 3, 5, 5], [4, 2, 3, 3], {}),
        ("rank", [1, 100], [4, 2, 3, 3], {}),
        ("rank", [1, 4, 5, 5], [4, 2, 3], {}),
        ("negative_output", [1, 4, 2, 2], [4, 2, 3, 3], {"pads": [3, 3, 3, 3]}),
        (
            "output_padding",
            [1, 4, 5, 5],
            [4, 2, 3, 3],
            {"strides": [2, 2], "output_padding": [2, 2]},
        ),
        ("output_shape", [1, 4, 5, 5], [4, 2, 3, 3], {"strides": [2, 2], "output_shape": [20, 20]}),
        ("groups", [1, 4, 5, 5], [4, 2, 3, 3], {"group": 3}),
        ("attribute_length", [1, 4, 5, 5], [4, 2, 3, 3], {"strides": [2, 2, 2]}),
        ("attribute_length", [1, 4, 5, 5], [4, 2, 3, 3], {"pads": [1, 1]}),
        ("kernel_shape", [1, 4, 5, 5], [4, 2, 3, 3], {"kernel_shape": [2, 2]}),
    ]
    for kind, xs, ws, attrs in cases:
        p = {"input": xs, "weight": ws, **attrs}
        record(version, kind, p, lambda: run(xs, ws, **attrs))


def collect_jax() -> None:
    import jax
    import jax.numpy as jnp
    from jax import lax

    version = f"jax {jax.__version__}"
    cases = [
        # (a rank-3 lhs with a rank-4 rhs raises an AssertionError without a message)
        ("rank", [1, 5, 5, 4], [3, 3, 4, 2], (2,), "SAME", {}),
        ("channels", [1, 5, 5, 3], [3, 3, 4, 2], (2, 2), "SAME", {}),
        ("padding", [1, 5, 5, 4], [3, 3, 4, 2], (2, 2), "FULL", {}),
        ("padding", [1, 5, 5, 4], [3, 3, 4, 2], (2, 2), [(1, 1)], {}),
        ("negative_output", [1, 2, 2, 4], [3, 3, 4, 2], (1, 1), [(-4, -4), (-4, -4)], {}),
        ("channels", [1, 5, 5, 4], [3, 3, 2, 4], (2, 2), "SAME", {"transpose_kernel": True}),
    ]
    for kind, xs, ws, s, pad, kw in cases:
        p = {
            "lhs": xs,
            "rhs": ws,
            "strides": list(s),
            "padding": pad if isinstance(pad, str) else [list(t) for t in pad],
            **kw,
        }
        record(
            version, kind, p, lambda: lax.conv_transpose(jnp.zeros(xs), jnp.zeros(ws), s, pad, **kw)
        )


def collect_concat() -> None:
    """A decoder whose up-sampled tensor misses its skip by one cell, in each framework's
    concatenation (kind "skip_mismatch"; params: the two shapes and the axis)."""
    import importlib

    pairs = [((1, 8, 20, 30), (1, 8, 21, 30)), ((1, 8, 160, 240), (1, 8, 161, 241))]
    import torch

    for a, b in pairs + [((1, 8, 20), (1, 8, 21))]:
        record(
            f"torch {torch.__version__}",
            "skip_mismatch",
            {"shapes": [a, b], "axis": 1},
            lambda: torch.cat([torch.zeros(a), torch.zeros(b)], dim=1),
        )
    last = [(a[:1] + a[2:] + a[1:2], b[:1] + b[2:] + b[1:2]) for a, b in pairs]
    for name in ("keras", "tf_keras"):
        try:
            keras = importlib.import_module(name)
        except ImportError:
            continue
        for a, b in last:
            record(
                f"{name} {keras.__version__}",
                "skip_mismatch",
                {"shapes": [a, b], "axis": -1},
                lambda: keras.layers.Concatenate()(
                    [keras.Input(a[1:], batch_size=None), keras.Input(b[1:])]
                ),
            )
    import tensorflow as tf

    for a, b in last:
        record(
            f"tensorflow {tf.__version__}",
            "skip_mismatch",
            {"shapes": [a, b], "axis": -1},
            lambda: tf.concat([tf.zeros(a), tf.zeros(b)], axis=-1),
        )
    import jax
    import jax.numpy as jnp

    for a, b in last:
        record(
            f"jax {jax.__version__}",
            "skip_mismatch",
            {"shapes": [a, b], "axis": -1},
            lambda: jnp.concatenate([jnp.zeros(a), jnp.zeros(b)], axis=-1),
        )


def main(path: str) -> None:
    if path == "--concat":  # the skip mismatches only: tests/doctor/concat_messages.json
        collect_concat()
        out = sys.argv[2] if len(sys.argv) > 2 else "concat_messages.json"
        with open(out, "w") as f:
            json.dump(RECORDS, f, indent=1)
            f.write("\n")
        return
    if path == "--tf-nn-only":
        collect_tf_nn()
        collect_keras("keras", tf_kernel_errors_only=True)
        collect_keras("tf_keras", tf_kernel_errors_only=True)
        json.dump(RECORDS, sys.stdout)
        return
    # TensorFlow words its errors differently without oneDNN (its other CPU kernels); users
    # meet both, and the switch only works before TensorFlow is imported.
    import subprocess

    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="0")
    out = subprocess.run(
        [sys.executable, __file__, "--tf-nn-only"],
        env=env,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    RECORDS.extend(json.loads(out))
    collect_torch()
    collect_keras("keras")
    collect_keras("tf_keras")
    collect_tf_nn()
    collect_onnx()
    collect_jax()
    with open(path, "w") as f:
        json.dump(RECORDS, f, indent=1)
        f.write("\n")
    print(f"{len(RECORDS)} messages written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "messages.json")
