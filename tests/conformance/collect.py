"""Measure transposed-convolution output shapes and errors in the real frameworks.

Writes ``golden.json.gz`` (every configuration with the shape or error each framework gave)
and ``error_messages.json`` (the frameworks' own error texts, per framework and kind) next to
this file. tests/python/test_shapes_conformance.py compares tconv.shapes with the golden file,
so the test suite needs none of the frameworks.

Run it with an interpreter that has torch, keras 3, tensorflow, onnx, onnxruntime and jax::

    python tests/conformance/collect.py            # about 3 minutes on 2 cores

Configurations are sampled with a fixed seed. Each framework runs in its own process (so that
TF_ENABLE_ONEDNN_OPTS and KERAS_BACKEND take effect before import); two run at a time.
Each configuration is stored as the keyword arguments of the matching tconv.shapes function.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20240611

# ---- configurations -------------------------------------------------------------------------


def _pick(rng, n, lo, hi):
    v = rng.randint(lo, hi)
    return v if rng.random() < 0.5 else [v] + [rng.randint(lo, hi) for _ in range(n - 1)]


def _dims(v, n):
    return [v] * n if isinstance(v, int) else list(v)


def torch_configs(rng, count):
    out = []
    for _i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 20 if n < 3 else 12) for _ in range(n)]
        groups = rng.choice([1, 1, 1, 2, 3])
        cin = groups * rng.randint(1, 2)
        cout = groups * rng.randint(1, 2)
        ks = _pick(rng, n, 1, 7)
        st = _pick(rng, n, 1, 4)
        dl = _pick(rng, n, 1, 3) if rng.random() < 0.4 else 1
        pd = _pick(rng, n, 0, 4)
        cfg = dict(
            in_channels=cin,
            out_channels=cout,
            kernel_size=ks,
            stride=st,
            padding=pd,
            groups=groups,
            dilation=dl,
            dims=n,
        )
        fam = rng.random()
        lim = [max(s, d) for s, d in zip(_dims(st, n), _dims(dl, n))]
        if fam < 0.25:  # output_padding at and past its limit
            cfg["output_padding"] = [rng.choice([m - 1, m, m + 1]) for m in lim]
        elif fam < 0.35:
            cfg["output_padding"] = [rng.randint(0, m - 1) for m in lim]
        c_in = cin
        if rng.random() < 0.06:
            c_in = cin + 1  # channel mismatch
        if rng.random() < 0.04:
            cfg["groups"] = rng.choice([2, 3, 4])  # not dividing
        if rng.random() < 0.08:
            cfg["padding"] = [rng.randint(3, 12) for _ in range(n)]  # empty outputs
        shape = [rng.choice([1, 2]), c_in, *sp]
        r = rng.random()
        if r < 0.05:
            shape = shape[1:]  # unbatched
        elif r < 0.09:
            shape = [2, rng.randint(1, 200)]  # flat features into an N-d layer
        elif r < 0.11:
            shape = [*shape, 3]  # one axis too many
        if rng.random() < 0.12 and len(shape) == n + 2:
            full = []
            for d in range(n):
                k, s, dd, p = (
                    _dims(cfg["kernel_size"], n)[d],
                    _dims(st, n)[d],
                    _dims(dl, n)[d],
                    _dims(cfg["padding"], n)[d],
                )
                base = (sp[d] - 1) * s - 2 * p + dd * (k - 1) + 1
                full.append(base + rng.randint(-1, s))
            cfg["output_size"] = full if rng.random() < 0.7 else shape[:2] + full
            cfg.pop("output_padding", None)
        cfg["input_shape"] = shape
        out.append(cfg)
    return out + torch_empty_configs(random.Random(f"{SEED}-torch-empty"), count // 10)


def torch_empty_configs(rng, count):
    """Empty tensors (batch 0, 0 input channels, a spatial size of 0) and string padding."""
    out = []
    for i in range(count):
        n = rng.randint(1, 3)
        ks, st, dl = _pick(rng, n, 1, 5), _pick(rng, n, 1, 3), _pick(rng, n, 1, 2)
        lim = [max(s, d) for s, d in zip(_dims(st, n), _dims(dl, n))]
        cin, cout = rng.randint(1, 3), rng.randint(1, 3)
        sp = [rng.randint(1, 8) for _ in range(n)]
        batch = rng.choice([1, 2])
        cfg = dict(
            in_channels=cin,
            out_channels=cout,
            kernel_size=ks,
            stride=st,
            padding=0,
            groups=1,
            dilation=dl,
            dims=n,
        )
        kind = i % 4
        if kind == 0:  # batch 0: output_padding at and past its limit is not checked
            batch = 0
            cfg["output_padding"] = [rng.choice([m - 1, m, m + 1]) for m in lim]
            if rng.random() < 0.3:
                sp[rng.randrange(n)] = 0
        elif kind == 1:  # a layer without input channels
            cfg["in_channels"] = cin = 0
            if rng.random() < 0.3:
                batch = 0
        elif kind == 2:  # a spatial size of 0 with a batch (or without one: unbatched)
            sp[rng.randrange(n)] = 0
            if rng.random() < 0.5:
                cfg["output_padding"] = [rng.choice([0, m]) for m in lim]
        else:  # Keras' padding strings
            cfg["padding"] = rng.choice(["same", "valid"])
        shape = [batch, cin, *sp]
        if kind == 2 and rng.random() < 0.3:
            shape = shape[1:]
        cfg["input_shape"] = shape
        out.append(cfg)
    return out


def keras_configs(rng, count):
    out = []
    for _i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 20 if n < 3 else 12) for _ in range(n)]
        ks = _pick(rng, n, 1, 7)
        st = _pick(rng, n, 1, 4)
        dl = 1
        if rng.random() < 0.25:
            dl = _pick(rng, n, 1, 3)
            if rng.random() < 0.8:
                st = 1
        padding = rng.choice(["same", "valid", "same"])
        cfg = dict(
            filters=rng.randint(1, 3),
            kernel_size=ks,
            strides=st,
            padding=padding,
            dilation_rate=dl,
            dims=n,
        )
        fam = rng.random()
        if fam < 0.2:
            cfg["output_padding"] = [
                rng.choice([s - 1, s, s + 1]) if rng.random() < 0.5 else 0 for s in _dims(st, n)
            ]
        elif fam < 0.5:
            cfg["output_padding"] = [rng.randint(0, s - 1) for s in _dims(st, n)]
        cfg["data_format"] = "channels_first" if rng.random() < 0.15 else "channels_last"
        c = rng.randint(1, 3)
        shape = (
            [rng.choice([None, 1, 2]), *sp, c]
            if cfg["data_format"] == "channels_last"
            else [rng.choice([None, 1, 2]), c, *sp]
        )
        r = rng.random()
        if r < 0.05:
            shape = [None, rng.randint(1, 200)]  # Dense output into ConvNDTranspose
        elif r < 0.07:
            shape = [None, *shape[1:], 2]  # one axis too many
        elif r < 0.10 and len(shape) > 3:
            shape = shape[:-2] + shape[-1:]  # one too few
        cfg["input_shape"] = shape
        out.append(cfg)
    return out + keras_empty_configs(random.Random(f"{SEED}-keras-empty"), count // 20)


def keras_empty_configs(rng, count):
    """padding='same' with output_padding=0: an even kernel on one cell gives 0 cells."""
    out = []
    for _i in range(count):
        n = rng.randint(1, 3)
        ks = [rng.choice([2, 4, 6]) for _ in range(n)]
        st = [rng.randint(1, 4) for _ in range(n)]
        sp = [rng.choice([1, 1, 2, 3]) for _ in range(n)]
        fmt = rng.choice(["channels_last", "channels_last", "channels_first"])
        c = rng.randint(1, 3)
        shape = (
            [rng.choice([None, 1, 2]), *sp, c]
            if fmt == "channels_last"
            else [rng.choice([None, 1, 2]), c, *sp]
        )
        out.append(
            dict(
                filters=rng.randint(1, 3),
                kernel_size=ks,
                strides=st,
                padding="same",
                output_padding=0,
                dilation_rate=1,
                data_format=fmt,
                dims=n,
                input_shape=shape,
            )
        )
    return out


def tf_configs(rng, count):
    out = []
    for _i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 20 if n < 3 else 10) for _ in range(n)]
        ks = [rng.randint(1, 7) for _ in range(n)]
        st = rng.randint(1, 4) if rng.random() < 0.6 else [rng.randint(1, 4) for _ in range(n)]
        dl = None
        if rng.random() < 0.2:
            dl = rng.randint(1, 3)
            st = 1
        r = rng.random()
        if r < 0.4:
            padding = "SAME"
        elif r < 0.8:
            padding = "VALID"
        else:
            padding = (
                [[0, 0]] + [[rng.randint(0, 3), rng.randint(0, 3)] for _ in range(n)] + [[0, 0]]
            )
        cin, cout = rng.randint(1, 3), rng.randint(1, 3)
        std = _dims(st, n)
        dld = _dims(dl or 1, n)
        osp = []
        for d in range(n):
            k = dld[d] * (ks[d] - 1) + 1
            if padding == "SAME":
                lo = (sp[d] - 1) * std[d] + 1
            elif padding == "VALID":
                lo = (sp[d] - 1) * std[d] + k
            else:
                a, b = padding[d + 1]
                lo = (sp[d] - 1) * std[d] + k - a - b
            osp.append(max(0, lo + rng.randint(-1, std[d])))
        batch = rng.choice([1, 2])
        oshape = [batch, *osp, cout]
        fshape = [*ks, cout, cin]
        shape = [batch, *sp, cin]
        e = rng.random()
        if e < 0.04:
            shape[-1] += 1
        elif e < 0.07:
            oshape[-1] += 1
        elif e < 0.09:
            oshape[0] += 1
        cfg = dict(
            input_shape=shape,
            filters_shape=fshape,
            output_shape=oshape,
            strides=st,
            padding=padding,
        )
        if dl is not None:
            cfg["dilations"] = dl
        out.append(cfg)
    return out + tf_argument_configs(random.Random(f"{SEED}-tf-arguments"), count // 20)


def tf_argument_configs(rng, count):
    """output_shape of the wrong length (never 3-5: TensorFlow then runs another rank's op,
    which can abort the process) and padding strings in the wrong case."""
    out = []
    for i in range(count):
        n = rng.randint(1, 2)
        sp = [rng.randint(1, 8) for _ in range(n)]
        ks = [rng.randint(1, 4) for _ in range(n)]
        s = rng.randint(1, 3)
        cin, cout = rng.randint(1, 3), rng.randint(1, 3)
        osp = [(v - 1) * s + 1 for v in sp]  # a size 'SAME' accepts
        cfg = dict(
            input_shape=[1, *sp, cin],
            filters_shape=[*ks, cout, cin],
            strides=s,
            output_shape=[1, *osp, cout],
            padding="SAME",
        )
        if i % 2 == 0:
            cfg["output_shape"] = rng.choice([osp, [1, *osp, cout, 1, 1, 1][:6]])
        else:
            cfg["padding"] = rng.choice(["same", "valid", "Same", "Valid"])
        out.append(cfg)
    return out


def onnx_configs(rng, count):
    out = []
    for i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 20 if n < 3 else 10) for _ in range(n)]
        ks = [rng.randint(1, 7) for _ in range(n)]
        st = [rng.randint(1, 4) for _ in range(n)]
        dl = [rng.randint(1, 3) if rng.random() < 0.3 else 1 for _ in range(n)]
        group = rng.choice([1, 1, 1, 2])
        c = group * rng.randint(1, 2)
        m = rng.randint(1, 2)
        cfg = dict(
            input_shape=[1, c, *sp], weight_shape=[c, m, *ks], strides=st, dilations=dl, group=group
        )
        cfg["auto_pad"] = rng.choice(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"])
        if cfg["auto_pad"] == "NOTSET":
            hi = 3 if rng.random() < 0.85 else 12
            cfg["pads"] = [rng.randint(0, hi) for _ in range(2 * n)]
            if rng.random() < 0.05:
                cfg["pads"][0] = -1
        lim = [max(s, d) for s, d in zip(st, dl)]
        if rng.random() < 0.45:
            cfg["output_padding"] = [rng.choice([0, mm - 1, mm - 1, mm]) for mm in lim]
        if rng.random() < 0.3:
            full = [s * i + (d * (k - 1) + 1) - 1 for s, i, d, k in zip(st, sp, dl, ks)]
            cfg["output_shape"] = [rng.randint(1, f + 2) for f in full]
        e = rng.random()
        if e < 0.04:
            cfg["weight_shape"][0] += 1
        elif e < 0.07:
            cfg["input_shape"] = cfg["input_shape"] + [2]
        elif e < 0.09 and group == 1:
            cfg["group"] = 2 if c % 2 else 3
            if c % cfg["group"] == 0:
                cfg["group"] = c + 1
        out.append(cfg)
    return out + onnx_argument_configs(random.Random(f"{SEED}-onnx-arguments"), count // 9)


ONNX_OPSETS = (11, 13, 17, 22)


def onnx_argument_configs(rng, count):
    """kernel_shape against W (equal, another kernel, another length) and output_shape in
    the full form (N, C, *spatial) beside the spatial one, at every opset with a
    ConvTranspose; X's shape is declared, so that ONNX shape inference runs as the model
    loads (the attributes' length checks live there)."""
    out = []
    for i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 8) for _ in range(n)]
        ks = [rng.randint(1, 5) for _ in range(n)]
        st = [rng.randint(1, 3) for _ in range(n)]
        c, m = rng.randint(1, 3), rng.randint(1, 3)
        cfg = dict(
            input_shape=[1, c, *sp],
            weight_shape=[c, m, *ks],
            strides=st,
            auto_pad="NOTSET",
            group=1,
        )
        kind = i % 4
        if kind == 0:  # kernel_shape equal to W's kernel, or one size off
            kshape = list(ks)
            if rng.random() < 0.6:
                d = rng.randrange(n)
                kshape[d] = kshape[d] + 1 if kshape[d] == 1 or rng.random() < 0.5 else kshape[d] - 1
            cfg["kernel_shape"] = kshape
        elif kind == 1:  # kernel_shape with one value too few or too many
            cfg["kernel_shape"] = (
                ks[:-1] if n > 1 and rng.random() < 0.5 else ks + [rng.randint(1, 5)]
            )
        else:  # output_shape: the full form, or the spatial sizes (reachable or not)
            full = [(v - 1) * s + k + rng.randint(-1, s) for v, s, k in zip(sp, st, ks)]
            full = [max(1, v) for v in full]
            cfg["output_shape"] = [1, m, *full] if kind == 2 else full
            if rng.random() < 0.3:
                cfg["pads"] = [rng.randint(0, 1) for _ in range(2 * n)]
        cfg["setup"] = {"declare_input": True, "opset": ONNX_OPSETS[rng.randrange(4)]}
        out.append(cfg)
    return out


def jax_configs(rng, count):
    out = []
    for _i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 20 if n < 3 else 12) for _ in range(n)]
        ks = [rng.randint(1, 7) for _ in range(n)]
        st = [rng.randint(1, 4) for _ in range(n)]
        dl = [rng.randint(1, 3) for _ in range(n)] if rng.random() < 0.3 else None
        r = rng.random()
        if r < 0.35:
            padding = "SAME"
        elif r < 0.7:
            padding = "VALID"
        else:
            padding = [[rng.randint(-8, 6), rng.randint(-8, 6)] for _ in range(n)]
        tk = rng.random() < 0.4
        cin, cout = rng.randint(1, 3), rng.randint(1, 3)
        lhs = [1, *sp, cin]
        rhs = [*ks, cout, cin] if tk else [*ks, cin, cout]
        cfg = dict(lhs_shape=lhs, rhs_shape=rhs, strides=st, padding=padding, transpose_kernel=tk)
        if dl is not None:
            cfg["rhs_dilation"] = dl
        if rng.random() < 0.15:
            letters = "HWD"[:n] if n > 1 else "H"
            cfg["dimension_numbers"] = ["NC" + letters, "OI" + letters, "NC" + letters]
            cfg["lhs_shape"] = [1, cin, *sp]
            cfg["rhs_shape"] = [cin, cout, *ks] if tk else [cout, cin, *ks]
        e = rng.random()
        if e < 0.05:
            # a channel mismatch whichever axis the layout reads
            chan = (0, 1) if cfg.get("dimension_numbers") else (-2, -1)
            for ax in chan:
                cfg["rhs_shape"][ax] += 1
        elif e < 0.07:
            cfg["lhs_shape"] = cfg["lhs_shape"] + [1]
        elif e < 0.09:
            cfg["padding"] = rng.choice(["same", "valid"])
        out.append(cfg)
    return out + jax_consistent_configs(random.Random(f"{SEED}-jax-consistent"), count // 5)


def jax_consistent_configs(rng, count):
    """use_consistent_padding=True: pairs are the forward convolution's padding."""
    out = []
    for _i in range(count):
        n = rng.randint(1, 3)
        sp = [rng.randint(1, 12) for _ in range(n)]
        ks = [rng.randint(1, 6) for _ in range(n)]
        st = [rng.randint(1, 3) for _ in range(n)]
        dl = [rng.randint(1, 2) for _ in range(n)] if rng.random() < 0.3 else None
        r = rng.random()
        padding = (
            rng.choice(["SAME", "VALID", "same"])
            if r < 0.25
            else [[rng.randint(-2, 6), rng.randint(-2, 6)] for _ in range(n)]
        )
        cin, cout = rng.randint(1, 3), rng.randint(1, 3)
        tk = rng.random() < 0.3
        cfg = dict(
            lhs_shape=[1, *sp, cin],
            rhs_shape=[*ks, cout, cin] if tk else [*ks, cin, cout],
            strides=st,
            padding=padding,
            transpose_kernel=tk,
            use_consistent_padding=True,
        )
        if dl is not None:
            cfg["rhs_dilation"] = dl
        out.append(cfg)
    return out


# ---- error categories -----------------------------------------------------------------------

KINDS = [
    (
        "rank",
        r"unbatched\) or|min_ndim|expected ndim|tuple index out of range|num_dims does not "
        r"match|input_sizes must be|`output_shape` must be of length|must be \d+-dimensional|^AssertionError|No 4\+ dim",
    ),
    (
        "output_padding",
        r"output padding must be smaller|output_padding. must be strictly less|"
        r"Invalid `output_padding`|must be less than max\(stride, dilation\)|"
        r"may be too large for stride",
    ),
    (
        "output_size",
        r"requested an output size|output_size must have|Size of out_backprop|"
        r"Explicit output_shape is inconsistent|Attribute output_shape has incorrect size",
    ),
    ("onednn_abort", r"could not create a primitive descriptor"),
    ("empty_input", r"Only zero batch or zero channel inputs are supported"),
    (
        "channels",
        r"expected weight to be at least 1|evenly divisible by number of groups|same number of channels|channels, but got|to have \d+ channels|filter number not equal|same out_depth|"
        r"evenly divisible by filter depth|feature dimension size|fully-defined",
    ),
    ("groups", r"divisible by group|groups must be"),
    ("batch", r"same batch size"),
    ("backend_dilation", r"dilation rates larger than 1"),
    ("backend_format", r"only supports NHWC"),
    ("backend_groups", r"grouped convolutions are not supported on CPU"),
    # PyTorch's oneDNN path reports some empty outputs this way (NOTES.md)
    (
        "nonpositive_output",
        r"could not construct a memory descriptor|Output size is too small|output dimension is <= 0|Negative padding is "
        r"larger",
    ),
    (
        "padding",
        r"Expected string for argument 'padding'|must be tuple of ints|Value for attr 'padding'|Invalid padding mode|`padding` argument|String padding|Unknown padding|AutoPadType",
    ),
    (
        "argument",
        r"negative padding|negative output_padding|non-positive stride|dilation should be|"
        r"kernel size should|must be a tuple of|cannot contain|strides > 1. not supported|"
        r"Wrong number of explicit pads|dilations must be positive|batch and depth|"
        r"Invalid value for argument|kernel_shape (num_dims )?is not compatible|"
        r"Attribute kernel_shape has incorrect size",
    ),
]


def classify(exc_type: str, message: str) -> str:
    text = f"{exc_type}: {message}"
    for kind, pattern in KINDS:
        if re.search(pattern, text, flags=re.M):
            return kind
    return "other"


def _err(e: BaseException) -> dict:
    msg = str(e).strip()
    msg = re.sub(r"\x1b\[[0-9;]*m", "", msg)
    return {
        "type": type(e).__name__,
        "kind": classify(type(e).__name__, msg),
        "message": msg[:1500],
    }


# ---- framework runners (each in its own process) --------------------------------------------


def run_torch(cfgs):
    import torch
    import torch.nn as nn

    # PyTorch picks its oneDNN or native kernel partly by thread count (more than one: the
    # usual case); tconv.shapes.torch assumes more than one.
    torch.set_num_threads(2)
    res = []
    for c in cfgs:
        try:
            layer = getattr(nn, f"ConvTranspose{c['dims']}d")(
                c["in_channels"],
                c["out_channels"],
                c["kernel_size"],
                stride=c["stride"],
                padding=c["padding"],
                output_padding=c.get("output_padding", 0),
                groups=c["groups"],
                dilation=c["dilation"],
                bias=False,
            )
            with torch.no_grad():
                y = layer(torch.zeros(c["input_shape"]), output_size=c.get("output_size"))
            res.append({"shape": list(y.shape)})
        except Exception as e:
            res.append({"error": _err(e)})
    return res


def run_keras(cfgs):
    import keras
    import numpy as np

    res = []
    for c in cfgs:
        r = {}
        n = c["dims"]
        try:
            layer = getattr(keras.layers, f"Conv{n}DTranspose")(
                c["filters"],
                c["kernel_size"],
                strides=c["strides"],
                padding=c["padding"],
                output_padding=c.get("output_padding"),
                data_format=c["data_format"],
                dilation_rate=c["dilation_rate"],
            )
            y = layer(keras.KerasTensor(tuple(c["input_shape"])))
            r["shape"] = list(y.shape)
        except Exception as e:
            r["error"] = _err(e)
        if "shape" in r:
            concrete = [1 if v is None else v for v in c["input_shape"]]
            try:
                layer = getattr(keras.layers, f"Conv{n}DTranspose")(
                    c["filters"],
                    c["kernel_size"],
                    strides=c["strides"],
                    padding=c["padding"],
                    output_padding=c.get("output_padding"),
                    data_format=c["data_format"],
                    dilation_rate=c["dilation_rate"],
                )
                y = layer(np.zeros(concrete, "float32"))
                r["run"] = {"shape": list(y.shape)}
            except Exception as e:
                r["run"] = {"error": _err(e)}
        res.append(r)
    return res


def run_tf(cfgs):
    import tensorflow as tf

    res = []
    for c in cfgs:
        try:
            y = tf.nn.conv_transpose(
                tf.zeros(c["input_shape"]),
                tf.zeros(c["filters_shape"]),
                c["output_shape"],
                c["strides"],
                padding=c["padding"],
                dilations=c.get("dilations"),
            )
            res.append({"shape": list(y.shape)})
        except Exception as e:
            res.append({"error": _err(e)})
    return res


def run_onnx(cfgs):
    import numpy as np
    import onnxruntime as ort
    from onnx import TensorProto, helper

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 4
    res = []
    for c in cfgs:
        attrs = {
            k: c[k]
            for k in (
                "strides",
                "pads",
                "dilations",
                "output_padding",
                "output_shape",
                "group",
                "kernel_shape",
            )
            if c.get(k) is not None
        }
        if c["auto_pad"] != "NOTSET":
            attrs["auto_pad"] = c["auto_pad"]
        setup = c.get("setup", {})
        opset = setup.get("opset", 17)
        try:
            declared = c["input_shape"] if setup.get("declare_input") else None
            x = helper.make_tensor_value_info("X", TensorProto.FLOAT, declared)
            yv = helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)
            w = helper.make_tensor(
                "W",
                TensorProto.FLOAT,
                c["weight_shape"],
                np.zeros(c["weight_shape"], np.float32).ravel(),
            )
            node = helper.make_node("ConvTranspose", ["X", "W"], ["Y"], **attrs)
            g = helper.make_graph([node], "g", [x], [yv], [w])
            m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])
            m.ir_version = 10 if opset > 18 else 8
            s = ort.InferenceSession(
                m.SerializeToString(), opts, providers=["CPUExecutionProvider"]
            )
            y = s.run(None, {"X": np.zeros(c["input_shape"], np.float32)})[0]
            res.append({"shape": list(y.shape)})
        except Exception as e:
            res.append({"error": _err(e)})
    return res


def run_jax(cfgs):
    import jax
    import jax.numpy as jnp
    from jax import lax

    res = []
    for c in cfgs:
        try:
            pad = (
                c["padding"] if isinstance(c["padding"], str) else [tuple(p) for p in c["padding"]]
            )
            dn = tuple(c["dimension_numbers"]) if c.get("dimension_numbers") else None
            y = jax.eval_shape(
                lambda a, b: lax.conv_transpose(
                    a,
                    b,
                    c["strides"],
                    pad,
                    rhs_dilation=c.get("rhs_dilation"),
                    dimension_numbers=dn,
                    transpose_kernel=c["transpose_kernel"],
                    use_consistent_padding=c.get("use_consistent_padding", False),
                ),
                jax.ShapeDtypeStruct(tuple(c["lhs_shape"]), jnp.float32),
                jax.ShapeDtypeStruct(tuple(c["rhs_shape"]), jnp.float32),
            )
            res.append({"shape": list(y.shape)})
        except Exception as e:
            res.append({"error": _err(e)})
    return res


RUNNERS = {
    "torch": (run_torch, {}),
    "keras": (run_keras, {"KERAS_BACKEND": "tensorflow"}),
    "keras_jax": (run_keras, {"KERAS_BACKEND": "jax"}),
    "tf_nn": (run_tf, {}),
    "tf_nn_classic": (run_tf, {"TF_ENABLE_ONEDNN_OPTS": "0"}),
    "onnx": (run_onnx, {}),
    "jax": (run_jax, {"JAX_PLATFORMS": "cpu"}),
}
INPUTS = {"keras_jax": "keras", "tf_nn_classic": "tf_nn"}


def versions(name):
    import importlib

    mod = {
        "torch": "torch",
        "keras": "keras",
        "keras_jax": "keras",
        "tf_nn": "tensorflow",
        "tf_nn_classic": "tensorflow",
        "onnx": "onnxruntime",
        "jax": "jax",
    }[name]
    return importlib.import_module(mod).__version__


def worker(name, path_in, path_out):
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import warnings

    warnings.simplefilter("ignore")
    cfgs = json.loads(Path(path_in).read_text())
    t0 = time.perf_counter()
    res = RUNNERS[name][0](cfgs)
    Path(path_out).write_text(
        json.dumps({"results": res, "version": versions(name), "seconds": time.perf_counter() - t0})
    )


# ---- driver ---------------------------------------------------------------------------------

COUNTS = {"torch": 1000, "keras": 800, "tf_nn": 800, "onnx": 900, "jax": 1000}
# Keras on JAX compiles every layer (about 2 s each): it runs on the configurations where the
# backends are most likely to differ only.
KERAS_JAX_SAMPLE = 40


def keras_jax_picks(cfgs):
    """Indices of the Keras configurations also run on the JAX backend: 'same' with an even
    dilated kernel, explicit output_padding or dilation first."""

    def interesting(c):
        n = c["dims"]
        ks, dl = _dims(c["kernel_size"], n), _dims(c["dilation_rate"], n)
        even = any((d * (k - 1) + 1) % 2 == 0 for k, d in zip(ks, dl))
        return len(c["input_shape"]) == n + 2 and (
            (c["padding"] == "same" and (even or c.get("output_padding") is not None))
            or any(d > 1 for d in dl)
        )

    return [i for i, c in enumerate(cfgs) if interesting(c)][:KERAS_JAX_SAMPLE]


def subset(name, cfgs):
    if name == "keras_jax":
        return [cfgs[i] for i in keras_jax_picks(cfgs)]
    return cfgs


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--io", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--scale", type=float, default=1.0, help="multiply the sample sizes")
    ap.add_argument(
        "--reclassify",
        action="store_true",
        help="only re-derive the error kinds of an existing golden file",
    )
    a = ap.parse_args()
    if a.reclassify:
        path = Path(a.out) / "golden.json.gz"
        with gzip.open(path, "rt") as f:
            golden = json.load(f)

        def walk(obj):
            if isinstance(obj, dict):
                if "type" in obj and "message" in obj and "kind" in obj:
                    obj["kind"] = classify(obj["type"], obj["message"])
                for v in obj.values():
                    walk(v)
            elif isinstance(obj, list):
                for v in obj:
                    walk(v)

        walk(golden)
        with gzip.open(path, "wt") as f:
            json.dump(golden, f, separators=(",", ":"), sort_keys=True)
        msgs = json.loads((Path(a.out) / "error_messages.json").read_text())
        for m in msgs:
            m["kind"] = classify(m["type"], m["message"])
        (Path(a.out) / "error_messages.json").write_text(json.dumps(msgs, indent=1) + "\n")
        return
    if a.worker:
        worker(a.worker, *a.io)
        return
    t0 = time.perf_counter()
    gens = {
        "torch": torch_configs,
        "keras": keras_configs,
        "tf_nn": tf_configs,
        "onnx": onnx_configs,
        "jax": jax_configs,
    }
    configs = {}
    for name, gen in gens.items():
        configs[name] = gen(random.Random(f"{SEED}-{name}"), int(COUNTS[name] * a.scale))
    tmp = Path(tempfile.mkdtemp(prefix="tconv-conformance-"))
    procs, pending, outputs = [], list(RUNNERS), {}
    # the slowest (TensorFlow-based) first
    pending.sort(key=lambda k: 0 if k.startswith(("keras", "tf")) else 1)
    while pending or procs:
        while pending and len(procs) < a.jobs:
            name = pending.pop(0)
            src = tmp / f"{name}.in.json"
            src.write_text(json.dumps(subset(name, configs[INPUTS.get(name, name)])))
            dst = tmp / f"{name}.out.json"
            env = dict(os.environ, **RUNNERS[name][1])
            p = subprocess.Popen(
                [sys.executable, __file__, "--worker", name, "--io", str(src), str(dst)],
                env=env,
                stderr=subprocess.DEVNULL,
            )
            procs.append((name, p, dst))
        time.sleep(0.2)
        for item in list(procs):
            name, p, dst = item
            if p.poll() is not None:
                procs.remove(item)
                if p.returncode != 0:
                    sys.exit(f"{name} worker failed with status {p.returncode}")
                outputs[name] = json.loads(dst.read_text())
                print(
                    f"{name}: {len(subset(name, configs[INPUTS.get(name, name)]))} configurations in "
                    f"{outputs[name]['seconds']:.1f} s",
                    flush=True,
                )
    keras_jax_index = {i: j for j, i in enumerate(keras_jax_picks(configs["keras"]))}
    golden = {"seed": SEED, "versions": {}, "frameworks": {}}
    for name in gens:
        entries = []
        for i, cfg in enumerate(configs[name]):
            # "setup": how the framework was run (not an argument of tconv.shapes)
            params = {k: v for k, v in cfg.items() if k != "setup"}
            e = {"params": params, **outputs[name]["results"][i]}
            if "setup" in cfg:
                e["setup"] = cfg["setup"]
            if name == "keras" and i in keras_jax_index:
                alt = outputs["keras_jax"]["results"][keras_jax_index[i]]
                e["jax_backend_run"] = alt.get("run")
            if name == "tf_nn":
                e["classic"] = outputs["tf_nn_classic"]["results"][i]
            entries.append(e)
        golden["frameworks"][name] = entries
    for name in RUNNERS:
        golden["versions"][name] = outputs[name]["version"]
    out = Path(a.out)
    with gzip.open(out / "golden.json.gz", "wt") as f:
        json.dump(golden, f, separators=(",", ":"), sort_keys=True)
    messages, seen = [], {}
    fw_name = {"tf_nn": "tensorflow", "onnx": "onnxruntime"}

    def note(framework, err, params, extra=None):
        key = (framework, err["kind"], re.sub(r"-?\d+", "#", err["message"]))
        if seen.get(key, 0) >= 2:
            return
        seen[key] = seen.get(key, 0) + 1
        m = {
            "framework": framework,
            "kind": err["kind"],
            "type": err["type"],
            "message": err["message"],
            "params": params,
        }
        if extra:
            m.update(extra)
        messages.append(m)

    for name, entries in golden["frameworks"].items():
        for e in entries:
            if "error" in e:
                note(fw_name.get(name, name), e["error"], e["params"])
            if "error" in e.get("run", {}):
                note("keras", e["run"]["error"], e["params"], {"backend": "tensorflow"})
            if "error" in (e.get("jax_backend_run") or {}):
                note("keras", e["jax_backend_run"]["error"], e["params"], {"backend": "jax"})
            if "error" in e.get("classic", {}):
                note(
                    "tensorflow",
                    e["classic"]["error"],
                    e["params"],
                    {"note": "TF_ENABLE_ONEDNN_OPTS=0"},
                )
    (out / "error_messages.json").write_text(json.dumps(messages, indent=1) + "\n")
    print(
        f"wrote {sum(len(v) for v in golden['frameworks'].values())} configurations, "
        f"{len(messages)} messages in {time.perf_counter() - t0:.0f} s"
    )


if __name__ == "__main__":
    main()
