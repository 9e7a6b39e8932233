"""Sets, dicts, dict views and other non-sequence iterables are refused wherever one value per
dimension (or a shape) is taken: their order is not the user's, so the values would land on
the wrong dimensions (stride={2, 1} silently meant (1, 2))."""

from __future__ import annotations

import numpy as np
import pytest

import tconv
from tconv import reference, shapes


class _Bag:
    """An iterable that is not a Sequence (no indexing, no fixed order)."""

    def __init__(self, values):
        self._values = list(values)

    def __iter__(self):
        return iter(self._values)


KINDS = {
    "set": set,
    "frozenset": frozenset,
    "dict": lambda v: dict(enumerate(v)),
    "dict_keys": lambda v: dict.fromkeys(v).keys(),
    "dict_values": lambda v: dict(enumerate(v)).values(),
    "generator": lambda v: (i for i in v),
    "iterator": iter,
    "iterable": _Bag,
}

X2 = np.ones((1, 2, 3, 3))
W2 = np.ones((2, 2, 2, 2))
X1 = np.ones((1, 2, 4))
W1 = np.ones((2, 2, 3))
X3 = np.ones((1, 1, 2, 2, 2))
W3 = np.ones((1, 1, 2, 2, 2))


TORCH_LAYER = {
    "input_shape": (1, 2, 5, 5),
    "in_channels": 2,
    "out_channels": 3,
    "kernel_size": 3,
}
KERAS_LAYER = {"input_shape": (1, 5, 5, 2), "filters": 3, "kernel_size": (3, 3)}


def _plan_call(name):
    def call(v):
        return tconv.ConvTranspose(W2)(X2, **{name: v})

    return call


# (entry point, argument name, the values the container holds, call(value))
ENTRY_POINTS = [
    *(
        (
            f"conv_transpose-{n}",
            n,
            vals,
            lambda v, n=n: tconv.conv_transpose(X2, W2, **{n: v}),
        )
        for n, vals in (
            ("stride", (2, 1)),
            ("padding", (1, 0)),
            ("output_padding", (1, 0)),
            ("dilation", (2, 1)),
            ("output_size", (5, 4)),
        )
    ),
    (
        "conv_transpose1d-stride",
        "stride",
        (2,),
        lambda v: tconv.conv_transpose1d(X1, W1, stride=v),
    ),
    (
        "conv_transpose2d-stride",
        "stride",
        (2, 1),
        lambda v: tconv.conv_transpose2d(X2, W2, stride=v),
    ),
    (
        "conv_transpose3d-dilation",
        "dilation",
        (2, 1, 3),
        lambda v: tconv.conv_transpose3d(X3, W3, dilation=v),
    ),
    *(
        (
            f"reference-{n}",
            n,
            vals,
            lambda v, n=n: reference.conv_transpose(X2, W2, **{n: v}),
        )
        for n, vals in (
            ("stride", (2, 1)),
            ("padding", (1, 0)),
            ("output_size", (5, 4)),
        )
    ),
    (
        "reference_gather-dilation",
        "dilation",
        (2, 1),
        lambda v: reference.conv_transpose_gather(X2, W2, dilation=v),
    ),
    *(
        (
            f"ConvTranspose-{n}",
            n,
            vals,
            lambda v, n=n: tconv.ConvTranspose(W2, **{n: v}),
        )
        for n, vals in (
            ("stride", (2, 1)),
            ("padding", (1, 0)),
            ("output_padding", (1, 0)),
            ("dilation", (2, 1)),
        )
    ),
    ("plan-output_size", "output_size", (5, 4), _plan_call("output_size")),
    (
        "plan.output_shape",
        "x_shape",
        (1, 2, 3, 4),
        lambda v: tconv.ConvTranspose(W2).output_shape(v),
    ),
    *(
        (
            f"shapes.torch-{n}",
            n,
            vals,
            lambda v, n=n: shapes.torch(**{**TORCH_LAYER, n: v}),
        )
        for n, vals in (
            ("input_shape", (1, 2, 5, 6)),
            ("kernel_size", (3, 2)),
            ("stride", (2, 1)),
            ("padding", (1, 0)),
            ("output_padding", (1, 0)),
            ("dilation", (2, 1)),
            ("output_size", (11, 5)),
        )
    ),
    (
        "shapes.torch-inferred-kernel_size",
        "kernel_size",
        (3, 2),
        lambda v: shapes.torch((1, 2, 5, 5), 2, 3, v),
    ),
    *(
        (
            f"shapes.keras-{n}",
            n,
            vals,
            lambda v, n=n: shapes.keras(**{**KERAS_LAYER, n: v}),
        )
        for n, vals in (
            ("input_shape", (1, 5, 6, 2)),
            ("kernel_size", (3, 2)),
            ("strides", (2, 1)),
            ("output_padding", (1, 0)),
            ("dilation_rate", (2, 1)),
        )
    ),
    *(
        (
            f"shapes.onnx-{n}",
            n,
            vals,
            lambda v, n=n: shapes.onnx(
                **{"input_shape": (1, 2, 5, 5), "weight_shape": (2, 3, 3, 3), n: v}
            ),
        )
        for n, vals in (
            ("input_shape", (1, 2, 5, 6)),
            ("weight_shape", (2, 3, 3, 1)),
            ("strides", (2, 1)),
            ("pads", (1, 0, 2, 3)),
            ("dilations", (2, 1)),
            ("output_padding", (1, 0)),
            ("output_shape", (11, 5)),
        )
    ),
    *(
        (
            f"shapes.tf_nn-{n}",
            n,
            vals,
            lambda v, n=n: shapes.tf_nn(
                **{
                    "input_shape": (1, 5, 5, 2),
                    "filters_shape": (3, 3, 4, 2),
                    "output_shape": (1, 10, 10, 4),
                    "strides": 2,
                    n: v,
                }
            ),
        )
        for n, vals in (
            ("input_shape", (1, 5, 6, 2)),
            ("filters_shape", (3, 2, 4, 1)),
            ("output_shape", (1, 10, 9, 4)),
            ("strides", (2, 1)),
            ("dilations", (2, 1)),
        )
    ),
    *(
        (
            f"shapes.jax-{n}",
            n,
            vals,
            lambda v, n=n: shapes.jax(
                **{
                    "lhs_shape": (1, 5, 5, 2),
                    "rhs_shape": (3, 3, 2, 4),
                    "strides": (2, 2),
                    "padding": "SAME",
                    n: v,
                }
            ),
        )
        for n, vals in (
            ("lhs_shape", (1, 5, 6, 2)),
            ("rhs_shape", (3, 2, 4, 1)),
            ("strides", (2, 1)),
            ("rhs_dilation", (2, 1)),
            ("padding", ((1, 1), (0, 2))),
        )
    ),
    *(
        (
            f"solve-{n}",
            n,
            vals,
            lambda v, n=n: tconv.solve(**{"input_size": 5, "target_size": 10, n: v}),
        )
        for n, vals in (
            ("input_size", (5, 6)),
            ("target_size", (10, 11)),
            ("kernel_size", (3, 2)),
            ("stride", (2, 1)),
            ("dilation", (2, 1)),
        )
    ),
    *(
        (
            f"mirror-{n}",
            n,
            vals,
            lambda v, n=n: tconv.mirror(**{"input_size": 28, "kernel_size": 3, n: v}),
        )
        for n, vals in (
            ("input_size", (28, 27)),
            ("kernel_size", (3, 2)),
            ("stride", (2, 1)),
            ("padding", (1, 0)),
            ("dilation", (2, 1)),
        )
    ),
    (
        "mirror-onnx-pads",
        "padding",
        (1, 0, 2, 3),
        lambda v: tconv.mirror((28, 27), 3, 2, v, convention="onnx"),
    ),
    *(
        (
            f"explain-torch-{n}",
            n,
            vals,
            lambda v, n=n: tconv.explain("torch", (5, 5), **{"kernel_size": 3, n: v}),
        )
        for n, vals in (
            ("kernel_size", (3, 2)),
            ("stride", (2, 1)),
            ("padding", (1, 0)),
            ("output_padding", (1, 0)),
            ("dilation", (2, 1)),
        )
    ),
    (
        "explain-input_shape",
        "input_shape",
        (5, 6),
        lambda v: tconv.explain("torch", v, kernel_size=3),
    ),
    (
        "explain-onnx-kernel_shape",
        "kernel_shape",
        (3, 2),
        lambda v: tconv.explain("onnx", (5, 5), kernel_shape=v),
    ),
    (
        "explain-tf_nn-kernel_size",
        "kernel_size",
        (3, 2),
        lambda v: tconv.explain("tf_nn", (5, 5), kernel_size=v, strides=2, output_shape=(10, 10)),
    ),
    (
        "explain-jax-kernel_size",
        "kernel_size",
        (3, 2),
        lambda v: tconv.explain("jax", (5, 5), kernel_size=v, strides=(2, 2), padding="SAME"),
    ),
    (
        "explain-keras-strides",
        "strides",
        (2, 1),
        lambda v: tconv.explain("keras", (5, 5), kernel_size=3, strides=v),
    ),
]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize(
    ("call", "name", "values"),
    [pytest.param(c, n, v, id=i) for i, n, v, c in ENTRY_POINTS],
)
def test_unordered_container_is_a_type_error(call, name, values, kind):
    value = KINDS[kind](values)
    with pytest.raises(TypeError) as info:
        call(value)
    msg = str(info.value)
    assert name in msg, msg
    assert "tuple or list" in msg, msg


# (entry point, call(padding)) for the explicit (lo, hi) pair forms
PAIR_ENTRY_POINTS = [
    ("conv_transpose", lambda p: tconv.conv_transpose(X2, W2, padding=p)),
    ("reference", lambda p: reference.conv_transpose(X2, W2, padding=p)),
    ("ConvTranspose", lambda p: tconv.ConvTranspose(W2, padding=p)),
    ("shapes.jax", lambda p: shapes.jax((1, 5, 5, 2), (3, 3, 2, 4), (2, 2), p)),
    (
        "shapes.tf_nn",
        lambda p: shapes.tf_nn((1, 5, 5, 2), (3, 3, 4, 2), (1, 10, 10, 4), 2, p),
    ),
    ("mirror-jax", lambda p: tconv.mirror((28, 28), 3, 2, p, convention="jax")),
    ("mirror-onnx", lambda p: tconv.mirror((28, 28), 3, 2, p, convention="onnx")),
]


@pytest.mark.parametrize("kind", ["set", "dict", "dict_values", "generator"])
@pytest.mark.parametrize(("call",), [pytest.param(c, id=i) for i, c in PAIR_ENTRY_POINTS])
def test_unordered_padding_pair_is_a_type_error(call, kind):
    pair = KINDS[kind]((1, 2))
    with pytest.raises(TypeError) as info:
        call(((0, 0), pair))
    assert "padding" in str(info.value) and "tuple or list" in str(info.value)


@pytest.mark.parametrize(
    ("value", "want"),
    [
        ((2, 1), (1, 2, 6, 4)),
        ([2, 1], (1, 2, 6, 4)),
        (range(2, 0, -1), (1, 2, 6, 4)),
        (np.array([2, 1]), (1, 2, 6, 4)),
        (np.int64(2), (1, 2, 6, 6)),
        (np.array(2), (1, 2, 6, 6)),
    ],
)
def test_ordered_forms_still_work(value, want):
    # Sequences, arrays and integer scalars keep their meaning.
    assert tconv.conv_transpose(X2, W2, stride=value).shape == want
    assert reference.conv_transpose(X2, W2, stride=value).shape == want
    assert shapes.torch((1, 2, 3, 3), 2, 2, 2, stride=value) == want


def test_cli_padding_text_with_braces_is_a_usage_error(capsys):
    # argv holds strings, so no set can reach the functions; a set's spelling is refused.
    from tconv.cli import main

    with pytest.raises(SystemExit) as info:
        main(["mirror", "28", "--kernel", "3", "--padding", "{1,2}"])
    assert info.value.code == 2
    assert "padding" in capsys.readouterr().err
