"""plan_decoder for JAX, tf.nn and ONNX (each skipped without its framework): the encoder runs
in the framework (lax.conv_general_dilated / lax.reduce_window, tf.nn.convolution /
max_pool / avg_pool, onnxruntime Conv / MaxPool / AveragePool), and every planned step, run
with its params (lax.conv_transpose, tf.nn.conv_transpose, ONNX ConvTranspose), gives back
the skip it meets."""

from __future__ import annotations

import numpy as np
import pytest

import tconv

C = 2


def _dims(rank: int) -> tuple[str, str, str]:
    sp = "DHW"[3 - rank :]
    return f"N{sp}C", f"{sp}IO", f"N{sp}C"


JAX_CASES = [
    ((33,), "2*(conv:k=3,p=SAME maxpool:k=2,s=2)", None),
    ((21, 19), "conv:k=3,p=VALID maxpool:k=3,s=2,p=SAME avgpool:k=2,s=2", None),
    ((13, 11, 9), "maxpool:k=2,s=2 conv:k=3,s=2,p=1:1x0:1x1:0", None),
    ((45, 37), "3*(conv:k=3,p=SAME maxpool:k=2,s=2)", "k=2,s=2"),
    ((17,), "conv:k=3,s=2,p=SAME,d=1 maxpool:k=3,s=3,p=1:1", None),
]


@pytest.mark.parametrize("size, encoder, up", JAX_CASES)
def test_jax_plan_gives_back_every_skip(size, encoder, up):
    jax = pytest.importorskip("jax")
    from jax import lax

    jnp = jax.numpy
    from tconv._decoder import parse_layers, parse_up

    specs = parse_layers(encoder, "jax")
    rank = len(size)
    dn = _dims(rank)
    x = jnp.zeros((1, *size, C))
    sizes = [tuple(size)]
    for spec in specs:
        k = spec.get("kernel_size", spec.get("window_dimensions"))
        k = (k,) * rank if isinstance(k, int) else k
        s = spec.get("window_strides", 1)
        s = (s,) * rank if isinstance(s, int) else s
        pad = spec.get("padding", "VALID")
        if spec["type"] == "conv":
            d = spec.get("rhs_dilation", 1)
            x = lax.conv_general_dilated(
                x,
                jnp.zeros((*k, C, C)),
                s,
                pad if isinstance(pad, str) else list(pad),
                rhs_dilation=(d,) * rank,
                dimension_numbers=dn,
            )
        else:
            pads = pad if isinstance(pad, str) else [(0, 0), *pad, (0, 0)]
            op, init = (lax.max, -jnp.inf) if spec["type"] == "maxpool" else (lax.add, 0.0)
            x = lax.reduce_window(x, init, op, (1, *k, 1), (1, *s, 1), pads)
        sizes.append(tuple(x.shape[1:-1]))
    plan = tconv.plan_decoder(size, specs, up=parse_up(up, "jax") if up else None, convention="jax")
    assert plan.sizes == tuple(sizes)
    y = jnp.zeros((1, *sizes[-1], C))
    for step, n in zip(plan.steps, plan.skips):
        p = step.params
        w = jnp.zeros((*p["kernel_size"], C, C))
        y = lax.conv_transpose(
            y,
            w,
            p["strides"],
            p["padding"],
            rhs_dilation=p["rhs_dilation"],
            dimension_numbers=dn,
            use_consistent_padding=p["use_consistent_padding"],
        )
        assert tuple(y.shape[1:-1]) == sizes[n]
        y = jnp.concatenate([y, jnp.zeros((1, *sizes[n], C))], axis=-1)[..., :C]


TF_CASES = [
    ((33,), "2*(conv:k=3,p=SAME maxpool:k=2,s=2)", None),
    ((21, 19), "conv:k=3,p=VALID maxpool:k=3,s=2,p=SAME avgpool:k=2,s=2", None),
    ((13, 11, 9), "maxpool:k=2,s=2 conv:k=3,s=2,p=SAME", None),
    ((45, 37), "3*(conv:k=3,p=SAME maxpool:k=2,s=2)", "k=2,s=2"),
]


@pytest.mark.parametrize("size, encoder, up", TF_CASES)
def test_tf_nn_plan_gives_back_every_skip(size, encoder, up):
    tf = pytest.importorskip("tensorflow")
    from tconv._decoder import parse_layers, parse_up

    specs = parse_layers(encoder, "tf_nn")
    rank = len(size)
    x = tf.zeros((1, *size, C))
    sizes = [tuple(size)]
    for spec in specs:
        s = spec.get("strides", 1)
        pad = spec.get("padding", "VALID")
        if spec["type"] == "conv":
            k = spec["kernel_size"]
            x = tf.nn.convolution(x, tf.zeros((*(k,) * rank, C, C)), strides=s, padding=pad)
        else:
            fn = tf.nn.max_pool if spec["type"] == "maxpool" else tf.nn.avg_pool
            x = fn(x, spec["ksize"], s, pad)
        sizes.append(tuple(x.shape[1:-1]))
    plan = tconv.plan_decoder(
        size, specs, up=parse_up(up, "tf_nn") if up else None, convention="tf_nn"
    )
    assert plan.sizes == tuple(sizes)
    y = tf.zeros((1, *sizes[-1], C))
    for step, n in zip(plan.steps, plan.skips):
        p = step.params
        y = tf.nn.conv_transpose(
            y,
            tf.zeros((*p["kernel_size"], C, C)),
            [1, *p["output_shape"], C],
            p["strides"],
            p["padding"],
            dilations=p["dilations"],
        )
        assert tuple(y.shape[1:-1]) == sizes[n]
        y = tf.concat([y, tf.zeros((1, *sizes[n], C))], axis=-1)[..., :C]


ONNX_CASES = [
    ((33,), "2*(conv:k=3,p=1x1 maxpool:k=2,s=2)", None),
    ((21, 19), "maxpool:k=3,s=2,p=1x1x1x1,ceil_mode=true avgpool:k=2,s=2,ceil_mode=true", None),
    ((13, 11, 9), "avgpool:k=2,s=2 conv:k=3,s=2,p=1x0x1x0x1x1", None),
    ((45, 37), "3*(conv:k=3,p=1x1x1x1 maxpool:k=2,s=2)", "k=2,s=2"),
    ((17,), "maxpool:k=3,s=2,d=2,p=1x1", None),
]


def _onnx_run(nodes, inits, x, outputs):
    import onnxruntime as ort
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x0", TensorProto.FLOAT, list(x.shape))],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        [numpy_helper.from_array(v, k) for k, v in inits.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    options = ort.SessionOptions()
    options.log_severity_level = 4  # its shape inference disagrees with its kernels on ceil_mode
    sess = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return sess.run(outputs, {"x0": x})


@pytest.mark.parametrize("size, encoder, up", ONNX_CASES)
def test_onnx_plan_gives_back_every_skip(size, encoder, up):
    pytest.importorskip("onnxruntime")
    from onnx import helper

    from tconv._decoder import parse_layers, parse_up

    specs = parse_layers(encoder, "onnx")
    rank = len(size)
    nodes, inits = [], {}
    for n, spec in enumerate(specs):
        attrs = {k: ([v] * rank if isinstance(v, int) else list(v)) for k, v in spec.items()}
        attrs.pop("type")
        attrs.pop("ceil_mode", None)
        if "ceil_mode" in spec:
            attrs["ceil_mode"] = int(spec["ceil_mode"])
        if "pads" in attrs and len(attrs["pads"]) == rank:
            attrs["pads"] = attrs["pads"] * 2
        op = {"conv": "Conv", "maxpool": "MaxPool", "avgpool": "AveragePool"}[spec["type"]]
        ins = [f"x{n}"]
        if op == "Conv":
            inits[f"w{n}"] = np.zeros((C, C, *attrs["kernel_shape"]), np.float32)
            ins.append(f"w{n}")
        nodes.append(helper.make_node(op, ins, [f"x{n + 1}"], **attrs))
    outs = [f"x{n + 1}" for n in range(len(specs))]
    got = _onnx_run(nodes, inits, np.zeros((1, C, *size), np.float32), outs)
    sizes = [tuple(size)] + [tuple(o.shape[2:]) for o in got]
    plan = tconv.plan_decoder(
        size, specs, up=parse_up(up, "onnx") if up else None, convention="onnx"
    )
    assert plan.sizes == tuple(sizes)
    for step, n in zip(plan.steps, plan.skips):
        p = step.params
        node = helper.make_node("ConvTranspose", ["x0", "w"], ["y"], **p)
        w = np.zeros((C, C, *p["kernel_shape"]), np.float32)
        (y,) = _onnx_run([node], {"w": w}, np.zeros((1, C, *step.input_size), np.float32), ["y"])
        assert tuple(y.shape[2:]) == sizes[n]
