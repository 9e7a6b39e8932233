"""The adjoint identity <conv(x), y> == <x, conv_transpose(y)>, with the forward convolution
written out here independently (cross-correlation with PyTorch's conventions)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import reference

from conftest import RTOL, assert_close, examples, torch_weight_to_keras

F64_TOL = RTOL[np.dtype(np.float64)]  # the identity holds to float64 rounding


def naive_conv(x: np.ndarray, w: np.ndarray, stride, dilation, pads, groups: int) -> np.ndarray:
    """y[n, co, o] = sum_{ci in co's group, k} x[n, ci, o*stride + k*dilation - lo] * w[co, ci, k]
    with x (N, C_in, *in), w (C_out, C_in/groups, *k) and pads one (lo, hi) per dimension."""
    n, _c_in = x.shape[:2]
    c_out, c_in_g = w.shape[:2]
    c_out_g = c_out // groups
    size, kernel = x.shape[2:], w.shape[2:]
    out = [
        (i + lo + hi - (d * (k - 1) + 1)) // s + 1
        for i, k, s, d, (lo, hi) in zip(size, kernel, stride, dilation, pads)
    ]
    y = np.zeros((n, c_out, *out))
    for o in itertools.product(*(range(v) for v in out)):
        for k in itertools.product(*(range(v) for v in kernel)):
            i = [
                oo * s + kk * d - lo for oo, kk, s, d, (lo, _) in zip(o, k, stride, dilation, pads)
            ]
            if not all(0 <= ii < sz for ii, sz in zip(i, size)):
                continue  # reads the zero padding
            for g in range(groups):
                xs = x[(slice(None), slice(g * c_in_g, (g + 1) * c_in_g), *i)]  # (N, C_in_g)
                ws = w[
                    (slice(g * c_out_g, (g + 1) * c_out_g), slice(None), *k)
                ]  # (C_out_g, C_in_g)
                y[(slice(None), slice(g * c_out_g, (g + 1) * c_out_g), *o)] += xs @ ws.T
    return y


@st.composite
def adjoint_configs(draw):
    rank = draw(st.integers(1, 3))
    kernel = [draw(st.integers(1, 4)) for _ in range(rank)]
    stride = [draw(st.integers(1, 4)) for _ in range(rank)]
    dilation = [draw(st.integers(1, 3)) for _ in range(rank)]
    pads, size = [], []
    for k, d in zip(kernel, dilation):
        k_eff = d * (k - 1) + 1
        lo, hi = draw(st.integers(0, k_eff - 1)), draw(st.integers(0, k_eff - 1))
        pads.append((lo, hi))
        size.append(draw(st.integers(max(1, k_eff - lo - hi), k_eff + {1: 8, 2: 4, 3: 2}[rank])))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 3))
    c_out = groups * draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    return dict(
        rank=rank,
        kernel=kernel,
        stride=stride,
        dilation=dilation,
        pads=pads,
        size=size,
        groups=groups,
        c_in=c_in,
        c_out=c_out,
        batch=batch,
    )


@given(
    cfg=adjoint_configs(),
    seed=st.integers(0, 2**32 - 1),
    data_format=st.sampled_from(["channels_first", "channels_last"]),
)
def test_adjoint_identity(cfg, seed, data_format):
    rng = np.random.default_rng(seed)
    groups = cfg["groups"]
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // groups, *cfg["kernel"]))
    fwd = naive_conv(x, w, cfg["stride"], cfg["dilation"], cfg["pads"], groups)
    y = rng.standard_normal(fwd.shape)
    # The transposed layer with the same weight, stride, dilation and crops maps fwd's shape
    # back onto x's once output_padding restores the cells the forward floor division dropped.
    op = [
        i - ((o - 1) * s + d * (k - 1) + 1 - lo - hi)
        for i, o, s, d, k, (lo, hi) in zip(
            cfg["size"], fwd.shape[2:], cfg["stride"], cfg["dilation"], cfg["kernel"], cfg["pads"]
        )
    ]
    kw = dict(
        stride=cfg["stride"],
        padding=cfg["pads"],
        output_padding=op,
        dilation=cfg["dilation"],
        groups=groups,
    )
    if data_format == "channels_first":
        back = tconv.conv_transpose(y, w, **kw)
    else:
        back = np.moveaxis(
            tconv.conv_transpose(
                np.moveaxis(y, 1, -1), torch_weight_to_keras(w), **kw, data_format="channels_last"
            ),
            -1,
            1,
        )
    assert back.shape == x.shape
    lhs = float(np.vdot(fwd, y))
    rhs = float(np.vdot(x, back))
    scale = np.linalg.norm(fwd) * np.linalg.norm(y) + np.linalg.norm(x) * np.linalg.norm(back)
    assert math.isclose(lhs, rhs, rel_tol=0, abs_tol=F64_TOL * max(scale, 1.0)), (lhs, rhs, cfg)
    ref_back = reference.conv_transpose(y, w, **kw)
    assert math.isclose(
        float(np.vdot(x, ref_back)), lhs, rel_tol=0, abs_tol=F64_TOL * max(scale, 1.0)
    )


def test_adjoint_catches_a_wrong_operator():
    # The identity is sharp: a kernel flip (convolution instead of correlation) breaks it.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((1, 2, 7))
    w = rng.standard_normal((3, 2, 3))
    fwd = naive_conv(x, w, [2], [1], [(1, 1)], 1)
    y = rng.standard_normal(fwd.shape)
    good = tconv.conv_transpose(y, w, stride=2, padding=1, output_padding=0)
    flipped = tconv.conv_transpose(y, w[..., ::-1], stride=2, padding=1, output_padding=0)
    assert math.isclose(np.vdot(fwd, y), np.vdot(x, good), rel_tol=F64_TOL)
    assert not math.isclose(np.vdot(fwd, y), np.vdot(x, flipped), rel_tol=1e-3)


@settings(max_examples=examples(60))  # PyTorch's per-call overhead dominates tiny layers
@given(cfg=adjoint_configs(), seed=st.integers(0, 2**32 - 1))
def test_naive_conv_is_torch_conv(cfg, seed):
    # The forward operator of the identity is itself checked against PyTorch's convolution.
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cfg["batch"], cfg["c_in"], *cfg["size"]))
    w = rng.standard_normal((cfg["c_out"], cfg["c_in"] // cfg["groups"], *cfg["kernel"]))
    pad = [p for lo_hi in reversed(cfg["pads"]) for p in lo_hi]  # F.pad order: last dim first
    xt = torch.nn.functional.pad(torch.from_numpy(x), pad)
    conv = {
        1: torch.nn.functional.conv1d,
        2: torch.nn.functional.conv2d,
        3: torch.nn.functional.conv3d,
    }[cfg["rank"]]
    want = conv(
        xt,
        torch.from_numpy(w),
        stride=cfg["stride"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
    ).numpy()
    got = naive_conv(x, w, cfg["stride"], cfg["dilation"], cfg["pads"], cfg["groups"])
    assert got.shape == want.shape
    assert_close(got, want)
