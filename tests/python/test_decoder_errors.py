"""plan_decoder on bad input: each a TypeError / ValueError / ShapeError naming what was
expected and what was received, never a crash or a long search."""

from __future__ import annotations

import pytest

import tconv

POOL = {"type": "maxpool", "kernel_size": 2}


@pytest.mark.parametrize(
    "args, kwargs, error, words",
    [
        ((0, [POOL]), {}, ValueError, "input_size must be >= 1"),
        (("161", [POOL]), {}, TypeError, "input_size must be an int or a tuple of ints"),
        ((161, POOL), {}, TypeError, "encoder must be a non-empty list of layer dicts"),
        ((161, []), {}, TypeError, "encoder must be a non-empty list"),
        ((161, [{"kernel_size": 2}]), {}, ValueError, "['type'] must be one of"),
        ((161, [{**POOL, "kernel_size": 2.0}]), {}, TypeError, "got float 2.0"),
        ((161, [{**POOL, "stride": 0}]), {}, ValueError, "stride must be >= 1"),
        ((161, [{**POOL, "padding": -1}]), {}, ValueError, "padding must be >= 0"),
        ((161, [{**POOL, "padding": 2}]), {}, tconv.ShapeError, "at most half of kernel size"),
        ((161, [{**POOL, "ceil_mode": "yes"}]), {}, TypeError, "ceil_mode must be True or False"),
        ((161, [{**POOL, "kernel": 2}]), {}, TypeError, "take no argument 'kernel'"),
        (
            (161, [{"type": "conv", "kernel_size": 3}]),
            {},
            ValueError,
            "no encoder layer has a stride > 1",
        ),
        (
            (161, [{"type": "conv", "kernel_size": 3, "stride": 2, "padding": "same"}]),
            {},
            tconv.ShapeError,
            "not supported for strided convolutions",
        ),
        (
            (161, [POOL]),
            {"up": {"kernel_size": 2, "padding": 1}},
            ValueError,
            "solves the up-layer's padding",
        ),
        ((161, [POOL]), {"up": {"stride": 2}}, TypeError, "up needs kernel_size"),
        ((161, [POOL]), {"up": [2, 2]}, TypeError, "up must be a dict"),
        ((161, [POOL]), {"up": {"kernel_size": 0}}, ValueError, "up kernel_size must be >= 1"),
        ((161, [POOL]), {"convention": "pytorch"}, ValueError, "convention must be one of"),
        ((2**62 + 1, [POOL]), {}, ValueError, "beyond 64-bit shape arithmetic"),
        ((2**70, [POOL]), {}, OverflowError, "does not fit in a 64-bit integer"),
        (((161, 241), [{**POOL, "kernel_size": (2, 2, 2)}]), {}, ValueError, "has 3 values"),
        ((3, [POOL] * 3), {}, tconv.ShapeError, "encoder[1] maxpool(kernel_size=2) turns 1 into 0"),
        (
            (161, [{"type": "conv", "kernel_size": 3, "strides": 2, "dilation_rate": 2}]),
            {"convention": "keras"},
            tconv.ShapeError,
            "`strides > 1` not supported in conjunction with `dilation_rate > 1`",
        ),
        (
            (161, [{"type": "maxpool", "pool_size": 2, "padding": 1}]),
            {"convention": "keras"},
            ValueError,
            "'same' or 'valid'",
        ),
    ],
)
def test_bad_input_names_the_problem(args, kwargs, error, words):
    with pytest.raises(error) as info:
        tconv.plan_decoder(*args, **kwargs)
    assert words in str(info.value)


def test_huge_strides_and_many_layers_answer_at_once():
    layers = [{"type": "conv", "kernel_size": 1}] * 500 + [
        {"type": "maxpool", "kernel_size": 1000, "stride": 10**6}
    ]
    plan = tconv.plan_decoder(10**9 + 7, layers)  # the nearest-input search has a budget
    assert plan.sizes[-1] == ((10**9 + 7 - 1000) // 10**6 + 1,)
    assert plan.steps[0].output_size == (10**9 + 7,) and len(plan.nearest_inputs) == 1
