"""The layer arithmetic in tconv._rules against independent derivations: the reference scatter
for lengths, the core's own validation (and the reference's) for the output_padding bound."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import _core, _rules, reference

small = st.integers(1, 6)


@settings(max_examples=60, deadline=None)
@given(i=small, k=small, s=small, d=small)
def test_full_length_is_the_reference_scatter_length(i, k, s, d):
    y = reference.conv_transpose(np.ones((1, 1, i)), np.ones((1, 1, k)), stride=s, dilation=d)
    assert _rules.full_length(i, k, s, d) == y.shape[-1]


def _core_accepts(s, d, op):
    try:
        _core.resolve_geometry(
            [1, 1, 3], [1, 1, 2], 1, [s], [d], [0], [0], [op], "explicit", 1, False
        )
    except tconv.ShapeError as exc:
        assert "output_padding" in str(exc)
        return False
    return True


@settings(max_examples=60, deadline=None)
@given(s=small, d=small)
def test_output_padding_limit_is_where_the_core_and_reference_refuse(s, d):
    limit = _rules.output_padding_limit(s, d)
    assert _core_accepts(s, d, limit - 1)
    assert not _core_accepts(s, d, limit)
    x, w = np.ones((1, 1, 3)), np.ones((1, 1, 2))
    reference.conv_transpose(x, w, stride=s, dilation=d, output_padding=limit - 1)
    with pytest.raises(ValueError, match="output_padding"):
        reference.conv_transpose(x, w, stride=s, dilation=d, output_padding=limit)
