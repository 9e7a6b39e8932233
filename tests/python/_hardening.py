"""Helpers shared by the hardening tests: a literal scatter oracle and error matching."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest


def literal_scatter(x, w, bias=None, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """channels_first transposed convolution written as the scatter loop of its definition.

    x (N, C_in, *in) batched, w (C_in, C_out/groups, *k); int or per-dim stride, padding (one
    symmetric crop per dim), output_padding and dilation. Accumulates in float64.
    """
    rank = w.ndim - 2

    def tup(v):
        return tuple(v) if isinstance(v, (tuple, list)) else (v,) * rank

    s, p, op, d = tup(stride), tup(padding), tup(output_padding), tup(dilation)
    n, c_in = x.shape[:2]
    cout_g = w.shape[1]
    cin_g = c_in // groups
    ins, ks = x.shape[2:], w.shape[2:]
    full = [(i - 1) * s_ + d_ * (k - 1) + 1 + o for i, k, s_, d_, o in zip(ins, ks, s, d, op)]
    y = np.zeros((n, cout_g * groups, *full), dtype=np.float64)
    with np.errstate(all="ignore"):  # inf * 0 and inf - inf are meant to give NaN here
        _scatter(x, w, y, groups, cin_g, cout_g, ins, ks, s, d)
    crop = tuple(slice(p_, f - p_) for p_, f in zip(p, full))
    y = y[(slice(None), slice(None), *crop)]
    if bias is not None:
        with np.errstate(all="ignore"):
            y = y + np.asarray(bias, np.float64).reshape((1, -1) + (1,) * rank)
    return y


def _scatter(x, w, y, groups, cin_g, cout_g, ins, ks, s, d):
    for g in range(groups):
        for ci in range(cin_g):
            for co in range(cout_g):
                for ipos in itertools.product(*(range(i) for i in ins)):
                    for kpos in itertools.product(*(range(k) for k in ks)):
                        opos = tuple(i * s_ + k * d_ for i, k, s_, d_ in zip(ipos, kpos, s, d))
                        y[(slice(None), g * cout_g + co, *opos)] += x[
                            (slice(None), g * cin_g + ci, *ipos)
                        ].astype(np.float64) * np.float64(w[(g * cin_g + ci, co, *kpos)])


def raises(exc_type, *words):
    """pytest.raises that also checks every word (case-insensitive) appears in the message."""
    return _Raises(exc_type, words)


class _Raises:
    def __init__(self, exc_type, words):
        self.ctx = pytest.raises(exc_type)
        self.words = words

    def __enter__(self):
        self.info = self.ctx.__enter__()
        return self.info

    def __exit__(self, *exc):
        suppress = self.ctx.__exit__(*exc)
        message = str(self.info.value)
        missing = [w for w in self.words if not re.search(re.escape(w), message, re.I)]
        assert not missing, f"message lacks {missing}: {message}"
        return suppress
