"""The per-dimension normaliser every layer argument goes through (tconv._args.ints_per_dim),
and the callers that word its errors their own way."""

from __future__ import annotations

import re

import numpy as np
import pytest

import tconv
from tconv import _args, _decoder, _port, _solve, shapes

# (value, rank, expected tuple) written out by hand: a scalar fills every dim, a one-entry
# sequence fills every dim, a rank-long sequence is kept in order.
FORMS = [
    (3, 1, (3,)),
    (3, 3, (3, 3, 3)),
    ((2, 5), 2, (2, 5)),
    ([4, 1, 7], 3, (4, 1, 7)),
    ((6,), 2, (6, 6)),
    ([6], 3, (6, 6, 6)),
    (range(1, 3), 2, (1, 2)),
    (np.array([3, 1]), 2, (3, 1)),
    (-1, 2, (-1, -1)),
]


@pytest.mark.parametrize(("value", "rank", "expected"), FORMS)
def test_forms_give_one_int_per_dim(value, rank, expected):
    got = _args.ints_per_dim(value, rank, "stride")
    assert got == expected
    assert all(type(v) is int for v in got)


NUMPY_INTS = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("np_int", NUMPY_INTS, ids=lambda t: t.__name__)
def test_numpy_integers_become_python_ints(np_int):
    assert _args.ints_per_dim(np_int(5), 2, "stride") == (5, 5)
    got = _args.ints_per_dim((np_int(2), np_int(7)), 2, "stride")
    assert got == (2, 7)
    assert all(type(v) is int for v in got)


@pytest.mark.parametrize("per_dim", [True, False])
@pytest.mark.parametrize("begins_ends", [True, False])
@pytest.mark.parametrize("value", [3, (2, 5), [1, 4], (6,), (1, 2, 3, 4)])
def test_python_ints_read_as_numpy_ints_do(value, begins_ends, per_dim):
    # Python ints take a shortcut past the general checks; numpy ints take the general path.
    as_np = np.int64(value) if isinstance(value, int) else [np.int64(v) for v in value]
    flags = dict(per_dim=per_dim, begins_ends=begins_ends, pairs=True, repeat_one=True)

    def outcome(v):
        try:
            return _args.pad_pairs(v, 2, "padding", **flags), _args.ints_per_dim(v, 2, "s")
        except (TypeError, ValueError) as e:
            return type(e).__name__

    assert outcome(value) == outcome(as_np)


@pytest.mark.parametrize(
    "value",
    [True, np.bool_(False), (True, 2), (2, np.bool_(True))],
    ids=["bool", "np_bool", "bool_entry", "np_bool_entry"],
)
def test_bools_are_refused(value):
    with pytest.raises(TypeError, match="bool"):
        _args.ints_per_dim(value, 2, "stride")


@pytest.mark.parametrize("value", [2.0, (2.0, 1), "2", b"2", None, (None, 1), 1 + 0j])
def test_non_integers_are_refused_naming_what_came(value):
    with pytest.raises(TypeError, match=r"stride(\[0\])? must be an int"):
        _args.ints_per_dim(value, 2, "stride")


@pytest.mark.parametrize(
    "value",
    [{1, 2}, {0: 1, 1: 2}, iter([1, 2]), (v for v in (1, 2))],
    ids=["set", "dict", "iterator", "generator"],
)
def test_unordered_containers_are_refused(value):
    with pytest.raises(TypeError, match="dimension order"):
        _args.ints_per_dim(value, 2, "stride")


@pytest.mark.parametrize(("value", "rank"), [((1, 2, 3), 2), ((1, 2), 3), ((), 2), ((1, 2), 1)])
def test_wrong_length_is_a_shape_error(value, rank):
    with pytest.raises(
        tconv.ShapeError, match=re.escape(f"got {tuple(value)!r} with {len(value)} values")
    ):
        _args.ints_per_dim(value, rank, "stride")


def test_length_left_to_the_caller():
    assert _args.ints_per_dim((1, 2, 3), 2, "pads", check_length=False) == (1, 2, 3)
    assert _args.ints_per_dim((4,), 2, "pads", repeat_one=False, check_length=False) == (4,)
    with pytest.raises(tconv.ShapeError):
        _args.ints_per_dim((4,), 2, "pads", repeat_one=False)


def test_rank_none_takes_the_sequence_length():
    assert _args.ints_per_dim(4, None, "input_size") == (4,)
    assert _args.ints_per_dim((4, 5, 6), None, "input_size") == (4, 5, 6)
    with pytest.raises(tconv.ShapeError):
        _args.ints_per_dim((), None, "input_size")


def test_beyond_int64_is_an_overflow_error():
    with pytest.raises(
        OverflowError, match=rf"stride\[1\]={2**70} does not fit in a 64-bit integer"
    ):
        _args.ints_per_dim((1, 2**70), 2, "stride")


@pytest.mark.parametrize(
    ("value", "kind"), [(2.5, "type"), ("x", "type"), ((1, 2.5), "item"), ((1, 2, 3), "length")]
)
def test_wording_gets_the_kind_and_the_whole_value(value, kind):
    seen = []

    def wording(k, whole):
        seen.append((k, whole))
        return LookupError("custom")

    with pytest.raises(LookupError, match="custom"):
        _args.ints_per_dim(value, 2, "stride", error=wording)
    assert seen == [(kind, value)]


def test_wording_none_keeps_the_default_message():
    def wording(k, whole):
        return None

    with pytest.raises(TypeError, match=r"stride\[1\] must be an int, got float 2.5"):
        _args.ints_per_dim((1, 2.5), 2, "stride", error=wording)


@pytest.mark.parametrize(
    ("items", "channels_last", "spatial", "outer"),
    [
        ([1, 2, 3, 1], True, [2, 3], [1, 1]),
        ([1, 1, 2, 3], False, [2, 3], [1, 1]),
        ([2, 3], True, [2, 3], []),
        ([5], False, [5], []),
    ],
)
def test_trim_full_shape(items, channels_last, spatial, outer):
    assert _args.trim_full_shape(items, 2, channels_last) == (spatial, outer)


# ---- the callers: their own words, one set of rules ------------------------------------------


def test_solver_takes_numpy_integers_as_conv_transpose_does():
    want = tconv.solve((4, 4), (8, 8), kernel_size=3, stride=2)
    got = tconv.solve(
        np.array([4, 4]), (np.int64(8), np.int32(8)), kernel_size=np.int64(3), stride=2
    )
    assert [s.params for s in got] == [s.params for s in want]
    assert want[0].params == {
        "kernel_size": 3,
        "stride": 2,
        "padding": 1,
        "output_padding": 1,
        "dilation": 1,
    }


def test_solver_words():
    with pytest.raises(
        TypeError, match=r"^stride must be an int or a tuple of ints, got float 2.5$"
    ):
        _solve._per_dim(2.5, 2, "stride")
    with pytest.raises(ValueError, match="stride is empty; give one int"):
        _solve._per_dim((), 2, "stride")
    with pytest.raises(ValueError, match="stride has 1 values but the sizes have 2 dimensions"):
        _solve._per_dim((2,), 2, "stride")
    assert _solve._per_dim(None, 2, "stride", optional=True) is None


def test_solver_refuses_sizes_beyond_int64_clearly():
    with pytest.raises(OverflowError, match=rf"^stride={2**70} does not fit in a 64-bit integer"):
        tconv.solve((4,), (8,), stride=2**70)


def test_port_words_name_the_source_layer():
    assert _port._ints(np.int64(2), 2, "stride", "torch") == (2, 2)
    with pytest.raises(
        TypeError, match=r"^torch layer: stride must be an int or 2 ints, got True$"
    ):
        _port._ints(True, 2, "stride", "torch")
    with pytest.raises(
        ValueError, match=r"^keras layer: strides must be an int or 2 ints for a 2-d layer"
    ):
        _port._ints((1, 2, 3), 2, "strides", "keras")
    with pytest.raises(TypeError, match="no order"):
        _port._ints({1, 2}, 2, "stride", "torch")


def test_shapes_tuple_leaves_the_length_to_the_framework_check():
    assert shapes._tuple((1, 2, 3), 2, "stride") == (1, 2, 3)
    assert shapes._tuple(None, 2, "stride") is None
    with pytest.raises(TypeError, match=r"^stride must be an int or a tuple of 2 ints, got '2'$"):
        shapes._tuple("2", 2, "stride")
    with pytest.raises(tconv.ShapeError, match="stride must have 2 elements"):
        shapes.torch((1, 1, 4, 4), 1, 1, 3, stride=(1, 2, 3))


@pytest.mark.parametrize(
    ("value", "channels_last", "expected"),
    [
        (2, True, [2, 2]),
        ((3,), True, [3, 3]),
        ((1, 2, 3, 1), True, [2, 3]),
        ((1, 1, 2, 3), False, [2, 3]),
    ],
)
def test_tf_strides_forms(value, channels_last, expected):
    assert shapes._tf_list(value, 2, channels_last, "strides") == expected
    assert _port._tf_per_dim(value, 2, not channels_last, "strides") == tuple(expected)


def test_tf_strides_on_the_batch_axis_are_refused():
    with pytest.raises(tconv.ShapeError, match="batch and depth dimensions"):
        shapes._tf_list((2, 2, 2, 1), 2, True, "strides")
    with pytest.raises(tconv.ShapeError, match="should be of length 1, 2 or 4 but was 3"):
        shapes._tf_list((1, 2, 2), 2, True, "strides")


# ---- mirror's numeric forward padding: the same integer rules as every other argument -------

MIRROR = {"kernel_size": 3, "stride": 2, "dilation": 1}


@pytest.mark.parametrize(
    ("convention", "padding", "pads"),
    [
        ("torch", np.int64(1), [(1, 1), (1, 1)]),
        ("torch", (np.int64(1), 2), [(1, 1), (2, 2)]),
        ("onnx", (1, 2, 0, 1), [(1, 0), (2, 1)]),
        ("onnx", ((1, np.int32(0)), (2, 1)), [(1, 0), (2, 1)]),
        ("jax", ((1, 2), (0, 1)), [(1, 2), (0, 1)]),
    ],
)
def test_mirror_reads_numeric_padding(convention, padding, pads):
    assert _solve._pad_pairs(convention, padding, 2) == pads
    sol = tconv.mirror((8, 8), padding=padding, convention=convention, **MIRROR)
    # the forward convolution's output: (8 + lo + hi - 3) // 2 + 1 per dim
    assert sol.input_size == tuple((8 + lo + hi - 3) // 2 + 1 for lo, hi in pads)


@pytest.mark.parametrize(
    ("convention", "padding", "error", "message"),
    [
        ("torch", 1.0, TypeError, r"^padding must be an int or a tuple of 2 ints, got float 1.0"),
        ("torch", True, TypeError, r"^padding must be an int, got bool True"),
        ("onnx", ((1, 2.0), (0, 1)), TypeError, r"^padding\[0\]\[1\] must be an int, got float"),
        ("torch", (1,), ValueError, r"^padding has 1 values for 2 dimensions$"),
        ("jax", (1, 2), ValueError, r"^padding must be 2 \(lo, hi\) pairs, got \(1, 2\)$"),
        ("onnx", ((1, 2), 1), ValueError, r"^padding must be 2 \(lo, hi\) pairs"),
        ("torch", ((1, 2), (0, 1)), ValueError, "PyTorch's Conv padding is one int per dimension"),
    ],
)
def test_mirror_refuses_bad_padding_clearly(convention, padding, error, message):
    with pytest.raises(error, match=message):
        tconv.mirror((8, 8), padding=padding, convention=convention, **MIRROR)


# ---- pad_pairs: the numeric padding forms, each taken only where the framework takes it ------


@pytest.mark.parametrize(
    ("value", "flags", "expected"),
    [
        (2, {}, [(2, 2), (2, 2)]),
        (np.int64(2), {}, [(2, 2), (2, 2)]),
        ((1, 3), {"per_dim": True}, [(1, 1), (3, 3)]),
        ((1, 3, 0, 2), {"begins_ends": True}, [(1, 0), (3, 2)]),
        (((1, 0), [3, np.int16(2)]), {"pairs": True}, [(1, 0), (3, 2)]),
    ],
)
def test_pad_pairs_forms(value, flags, expected):
    kw = {"per_dim": False, "begins_ends": False, "pairs": False, **flags}
    got = _args.pad_pairs(value, 2, "padding", **kw)
    assert got == expected
    assert all(type(v) is int for pair in got for v in pair)


@pytest.mark.parametrize(
    ("value", "flags", "kind"),
    [
        ((1, 3), {"pairs": True}, "form"),  # ints where only pairs are taken
        (((1, 0), (3, 2)), {"per_dim": True}, "form"),  # pairs where only ints are taken
        ((1, 3, 0), {"per_dim": True}, "length"),
        (((1, 0), 3), {"pairs": True}, "pairs"),
        (((1, 0, 1), (3, 2)), {"pairs": True}, "pairs"),
    ],
)
def test_pad_pairs_words_each_refusal(value, flags, kind):
    kw = {"per_dim": False, "begins_ends": False, "pairs": False, **flags}
    with pytest.raises(tconv.ShapeError if kind == "length" else ValueError):
        _args.pad_pairs(value, 2, "padding", **kw)
    seen = []
    with pytest.raises(LookupError):
        _args.pad_pairs(
            value, 2, "padding", error=lambda k, w: seen.append(k) or LookupError(), **kw
        )
    assert seen == [kind]


@pytest.mark.parametrize(
    ("convention", "padding", "pads"),
    [
        ("torch", np.int64(1), ((1, 1), (1, 1))),
        ("onnx", (1, 2, 0, 1), ((1, 0), (2, 1))),
        ("jax", ((1, 2), (np.int64(0), 1)), ((1, 2), (0, 1))),
    ],
)
def test_decoder_reads_numeric_padding(convention, padding, pads):
    got = _decoder._pads(convention, "conv", padding, 2, (1, 1))
    assert got == tuple(("EXPLICIT", lo, hi) for lo, hi in pads)


@pytest.mark.parametrize(
    ("convention", "padding", "error", "message"),
    [
        ("torch", 1.0, TypeError, r"^padding must be an int or a tuple of 2 ints, got float 1.0"),
        ("torch", ((1, 2), (0, 1)), ValueError, r"^conv padding must be an int or 2 ints, got"),
        ("onnx", (1, 2), ValueError, r"^conv padding must be 4 ints \(begins then ends\), got"),
        ("jax", (1, 2), ValueError, r"^conv padding must be 'SAME', 'VALID' or 2 \(lo, hi\) pairs"),
        ("jax", ((1, 2, 3), (0, 1)), ValueError, r"^padding must be 2 \(lo, hi\) pairs, got"),
        ("jax", ((1, 2.0), (0, 1)), TypeError, r"^padding\[0\]\[1\] must be an int, got float"),
        ("onnx", (1, -1, 0, 0), ValueError, r"^conv padding must be >= 0"),
    ],
)
def test_decoder_refuses_bad_padding_clearly(convention, padding, error, message):
    with pytest.raises(error, match=message):
        _decoder._pads(convention, "conv", padding, 2, (1, 1))


# ---- conv_transpose's padding: every form, one reading ----------------------------------------


@pytest.mark.parametrize(
    ("padding", "lo", "hi"),
    [
        (1, (1, 1), (1, 1)),
        ((2,), (2, 2), (2, 2)),
        ((1, np.int64(3)), (1, 3), (1, 3)),
        (((0, 1), (np.uint8(2), 3)), (0, 2), (1, 3)),
        (np.array([[1, 2], [0, 0]]), (1, 0), (2, 0)),
    ],
)
def test_parse_padding_forms(padding, lo, hi):
    assert _args.parse_padding(padding, 2) == ("explicit", lo, hi)


@pytest.mark.parametrize(
    ("padding", "error", "message"),
    [
        (1.5, TypeError, r"^padding must be an int, a tuple of 2 ints or 2 \(lo, hi\) pairs, got"),
        ((1, 2, 3, 4), tconv.ShapeError, r"padding=\(\(1, 3\), \(2, 4\)\) for ONNX-style pads"),
        (((1, 2), 1), tconv.ShapeError, r"^explicit padding must be 2 \(lo, hi\) pairs"),
        (((1, 2.5), (0, 0)), TypeError, r"^padding\[0\]\[1\] must be an int, got float 2.5"),
        ("full", ValueError, r"^padding must be 'same', 'valid', an int"),
    ],
)
def test_parse_padding_refusals(padding, error, message):
    with pytest.raises(error, match=message):
        _args.parse_padding(padding, 2)
