"""The per-framework tables: every module that branches by framework covers each convention."""

import pytest

from tconv import _dialects, _explain, _solve


@pytest.mark.parametrize("table", [_explain._STEPS, _solve._STEPS], ids=["explain", "solve"])
def test_every_framework_table_covers_exactly_the_conventions(table):
    assert tuple(table) == _dialects.CONVENTIONS


def test_unknown_convention_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        _dialects.dialect("pytorch")
    assert str(info.value) == (
        "convention must be one of 'torch', 'keras', 'onnx', 'tf_nn', 'jax', got 'pytorch'"
    )


def test_unhashable_convention_is_the_same_value_error():
    with pytest.raises(ValueError, match="convention must be one of"):
        _dialects.dialect(["torch"])


@pytest.mark.parametrize(
    ("conv", "data_format", "first"),
    [
        ("torch", None, True),
        ("onnx", None, True),
        ("keras", None, False),
        ("keras", "channels_first", True),
        ("keras", "channels_last", False),
        ("tf_nn", "NCHW", True),
        ("tf_nn", "NHWC", False),
        ("jax", None, False),
    ],
)
def test_layout_of_a_call(conv, data_format, first):
    assert _dialects.DIALECTS[conv].is_channels_first(data_format) is first
