"""Shared helpers of the Python tests: the tolerance table and comparisons, layer strategies,
input layouts, error matching."""

from __future__ import annotations

import math
import os
import re
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# TensorFlow turns its oneDNN kernels on by default only on CPUs with AVX-512 VNNI or BF16,
# AVX-VNNI or AMX; the tests run the code tconv prints for "oneDNN on" with them on, on every
# CPU (the "oneDNN off" rows run in subprocesses with TF_ENABLE_ONEDNN_OPTS=0).
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

# Hypothesis budgets, one place for all of them. "default" keeps `python -m pytest` quick; the
# fixed grids of the test files still reach every kernel, layout and dtype there, and random
# sampling adds breadth. "thorough" (CI's long-run stage) draws six times as many layers.
# Pick one with HYPOTHESIS_PROFILE=thorough or --hypothesis-profile=thorough.
REFERENCE_EXAMPLES = 150  # the budget the counts passed to examples() are written for
_COMMON = dict(
    deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
settings.register_profile("default", max_examples=50, **_COMMON)
settings.register_profile("thorough", max_examples=300, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def examples(n: int) -> int:
    """max_examples for a test that draws fewer (costlier) examples than the rest: n under a
    profile of REFERENCE_EXAMPLES, scaled to the active profile (never below 5)."""
    return max(5, round(n * settings.default.max_examples / REFERENCE_EXAMPLES))


# set_max_isa can only lower the tier TCONV_MAX_ISA sets at start-up (CI runs the suite once
# per cap), so a test that asserts which kernels ran loops over these.
ISA_TIER = {"avx512": 0, "avx2": 1, "neon": 1, "portable": 2, "baseline": 2, "generic": 2}


def reachable_isas() -> list[str]:
    """tconv.available_isas() at or below the TCONV_MAX_ISA tier, best first."""
    import tconv

    cap = ISA_TIER.get(os.environ.get("TCONV_MAX_ISA", "").lower(), 0)
    return [i for i in tconv.available_isas() if ISA_TIER[i] >= cap]


@pytest.fixture
def threads_restored() -> Any:
    """Restores tconv's thread count after a test that sets it."""
    import tconv

    before = tconv.get_num_threads()
    yield
    tconv.set_num_threads(before)


# The one tolerance table: a relative error bound per dtype, read by the three comparisons
# below (2-norm, max-norm, element-wise). A transposed convolution sums at most
# C_in/groups * prod(kernel) products per cell; with the sizes used in the tests the rounding
# of float32 stays near 1e-6 relative, float64 near 1e-15.
RTOL = {np.dtype(np.float32): 1e-5, np.dtype(np.float64): 1e-12}


def _rtol(dtype: Any, actual: np.ndarray) -> float:
    return RTOL[np.dtype(dtype if dtype is not None else actual.dtype)]


def assert_close(actual: Any, desired: Any, dtype: Any = None, msg: str = "") -> None:
    """Element-wise |actual - desired| <= rtol * (1 + |desired|), rtol from the table for
    `dtype` (default: actual's dtype); for values of order one."""
    actual = np.asarray(actual)
    rtol = _rtol(dtype, actual)
    np.testing.assert_allclose(actual, desired, rtol=rtol, atol=rtol, err_msg=msg)


def assert_close_in_max_norm(actual: Any, desired: Any, dtype: Any = None, msg: str = "") -> None:
    """max |actual - desired| <= rtol * max(1, max |desired|): errors measured against the
    largest value, as a sum's rounding is (rtol from the table, default: actual's dtype)."""
    actual, desired = np.asarray(actual), np.asarray(desired)
    assert actual.shape == desired.shape, f"shape {actual.shape} != {desired.shape} {msg}"
    rtol = _rtol(dtype, actual)
    diff = np.abs(actual.astype(np.float64) - desired.astype(np.float64))
    scale = max(1.0, float(np.abs(desired).max(initial=0.0)))
    err = float(diff.max(initial=0.0)) / scale
    assert err <= rtol, f"max error {err:.3g} of the largest value > {rtol:g} {msg}"


def assert_close_in_norm(
    actual: np.ndarray,
    desired: np.ndarray,
    dtype: Any = None,
    rtol: float | None = None,
    msg: str = "",
) -> None:
    """||actual - desired|| <= rtol * ||desired|| (+ a tiny absolute floor for all-zero
    results), after checking shapes; rtol defaults to the per-dtype bound of `dtype` (or of
    `desired`). Modelled on scipy.fft's _assert_close_in_norm."""
    actual = np.asarray(actual)
    desired = np.asarray(desired)
    assert actual.shape == desired.shape, f"shape {actual.shape} != {desired.shape} {msg}"
    dt = np.dtype(dtype) if dtype is not None else desired.dtype
    if rtol is None:
        rtol = RTOL.get(dt, 1e-12)
    if desired.size == 0:
        return
    a = actual.astype(np.float64)
    d = desired.astype(np.float64)
    assert np.all(np.isfinite(a)), f"non-finite values in the result {msg}"
    err = np.linalg.norm((a - d).ravel())
    ref = np.linalg.norm(d.ravel())
    bound = rtol * ref + np.finfo(dt).tiny * math.sqrt(d.size)
    assert err <= bound, (
        f"||actual - desired|| = {err:.3e} > {bound:.3e} (rtol {rtol:g}, ||desired|| = "
        f"{ref:.3e}, max abs diff {np.abs(a - d).max():.3e}) {msg}"
    )


def tap_scatter(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, padding: int) -> Any:
    """Transposed convolution (channels_first, one stride and padding for every dim) in float64,
    one numpy product per kernel tap: for layers too large for tconv.reference's loops."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    k, s = w.shape[2:], stride
    full = [(n - 1) * s + kk for n, kk in zip(x.shape[2:], k)]
    y = np.zeros((x.shape[0], w.shape[1], *full))
    for tap in np.ndindex(*k):
        contrib = np.einsum("nc...,co->no...", x, w[(slice(None), slice(None), *tap)])
        dst = tuple(slice(t, t + (n - 1) * s + 1, s) for t, n in zip(tap, x.shape[2:]))
        y[(slice(None), slice(None), *dst)] += contrib
    crop = tuple(slice(padding, f - padding) for f in full)
    return y[(slice(None), slice(None), *crop)] + b.reshape(1, -1, *([1] * len(k)))


def relayout(a: np.ndarray, how: str) -> np.ndarray:
    """The same values as `a` in an unusual memory layout."""
    if how == "c":
        return np.ascontiguousarray(a)
    if how == "fortran":
        return np.asfortranarray(a)
    if how == "reversed":
        # Negative strides on every axis: reverse a reversed copy.
        idx = (slice(None, None, -1),) * a.ndim
        return np.ascontiguousarray(a[idx])[idx]
    if how == "strided":
        # A view that skips every other element of a larger buffer along every axis.
        big = np.zeros(tuple(2 * s + 1 for s in a.shape), dtype=a.dtype)
        view = big[(slice(1, None, 2),) * a.ndim]
        view[...] = a
        return view
    if how == "transposed":
        # A transposed view of a C-contiguous array whose own shape is the reverse.
        return np.ascontiguousarray(a.T).T
    raise ValueError(how)


LAYOUTS = ("c", "fortran", "reversed", "strided", "transposed")


def torch_weight_to_keras(w: np.ndarray) -> np.ndarray:
    """(C_in, C_out/g, *k) -> (*k, C_out/g, C_in)."""
    return np.moveaxis(w, (0, 1), (-1, -2))


# ---- random layers ------------------------------------------------------------------------------
# One description of a layer for the numeric tests, the dict `layers` draws and `layer_inputs`
# turns into arrays: rank, groups, cin, cout_g, kernel, stride, dilation, size, pads, outpad,
# batch, channels_last, dtype, bias, layout ("c", "strided", "fortran"), seed.


# Defaults of the strategies below (module-level: a strategy is immutable and reusable).
_GROUPS = st.sampled_from([1, 1, 1, 2, 3])
_CIN_G, _COUT_G = st.integers(1, 9), st.integers(1, 4)
_KERNEL, _STRIDE, _DILATION = st.integers(1, 5), st.integers(1, 4), st.sampled_from([1, 1, 2, 3])
_OUTER, _LAST, _BATCH, _BOOL = (
    st.integers(1, 5),
    st.integers(1, 70),
    st.integers(1, 3),
    st.booleans(),
)


def channels(groups: Any = _GROUPS, cin_g: Any = _CIN_G, cout_g: Any = _COUT_G) -> Any:
    """(groups, C_in per group, C_out per group)."""
    return st.tuples(groups, cin_g, cout_g)


# The channel counts the kernels treat apart, each aimed at its own path.
CHANNEL_KINDS = {
    "dense": channels(cin_g=st.integers(1, 8), cout_g=st.integers(5, 12)),
    # 1-4 outputs per group: the position algorithm (vectors over positions).
    "tiny_cout": channels(cin_g=st.integers(1, 9), cout_g=st.integers(1, 4)),
    # Around the channel panel (16 fp32 / 8 fp64) and the 6-row tile.
    "wide": channels(
        cin_g=st.integers(1, 12), cout_g=st.sampled_from([5, 7, 8, 9, 15, 16, 17, 33])
    ),
    "depthwise": st.tuples(st.integers(1, 6), st.just(1), st.just(1)),
}
ANY_CHANNELS = st.one_of(*CHANNEL_KINDS.values())


def _for_rank(v: Any, rank: int) -> Any:
    return v[rank] if isinstance(v, dict) else v


def _geometry(
    rank: int,
    groups: int,
    cin_g: int,
    cout_g: int,
    ks: list,
    ss: list,
    ds: list,
    size: list,
    batch: int,
) -> dict:
    return dict(
        rank=rank,
        groups=groups,
        cin=cin_g * groups,
        cout_g=cout_g,
        kernel=ks,
        stride=ss,
        dilation=ds,
        size=size,
        batch=batch,
    )


@st.composite
def _arrays(draw: Any, channels_last: Any, dtypes: tuple, layouts: tuple) -> dict:
    """The description's keys for the arrays: format, dtype, bias, layout, seed."""
    return dict(
        channels_last=draw(channels_last),
        dtype=draw(st.sampled_from(dtypes)),
        bias=draw(st.booleans()),
        layout=draw(st.sampled_from(layouts)),
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def _shorten_to(max_products: int | None, size: list, per_pixel: int) -> None:
    """Shorten the input's dims, last first, until per_pixel * prod(size) <= max_products."""
    if max_products is None:
        return
    for d in reversed(range(len(size))):
        others = per_pixel * math.prod(size[:d]) * math.prod(size[d + 1 :])
        size[d] = max(1, min(size[d], max_products // others))


@st.composite
def layers(
    draw: Any,
    *,
    channels: Any = ANY_CHANNELS,
    ranks: tuple[int, ...] = (1, 2, 3),
    kernel: Any = _KERNEL,
    last_kernel: Any = None,
    stride: Any = _STRIDE,
    dilation: Any = _DILATION,
    outer: Any = _OUTER,
    last: Any = _LAST,
    geometries: tuple[str, ...] = ("free",),
    pads: str | tuple[str, ...] = "pairs",
    outpad: bool = True,
    batch: Any = _BATCH,
    channels_last: Any = _BOOL,
    layouts: tuple[str, ...] = ("c", "strided", "fortran"),
    dtypes: tuple[Any, ...] = (np.float32, np.float64),
    max_products: int | None = None,
    dims: Any = None,
) -> dict:
    """A random layer in the description layer_inputs reads, whose output is never empty
    (but with padding "same" and an explicit output_padding: the tests filter those).

    channels: a strategy of (groups, C_in/g, C_out/g) (CHANNEL_KINDS, ANY_CHANNELS);
    kernel, stride, dilation: per-dim strategies (last_kernel for the last dim);
    outer, last: the input length of the leading dims and of the last one (long last dims cross
    the vector and row tiles), a strategy or a dict by rank;
    geometries: "free" (independent kernel, stride, dilation), "kernel_is_stride" and
    "one_pixel" (one input position per dim): the last two without dilation or padding;
    pads: "pairs" (asymmetric, each side below the dilated kernel), "crop" (asymmetric,
    anywhere that leaves a cell), "symmetric", "same" or "none", or a tuple to draw from;
    outpad: draw output_padding below max(stride, dilation), else None;
    max_products: bound on the multiply-adds of the layer (the Python reference loop is slow),
    met by shortening the last dim, then the others;
    dims: for per-dim values drawn together, a function of the rank giving a strategy of one
    (kernel, stride, dilation, size, padding) per dim; replaces the per-dim arguments above."""
    rank = draw(st.sampled_from(ranks))
    geometry = draw(st.sampled_from(geometries))
    groups, cin_g, cout_g = draw(channels)
    n = draw(batch)
    if dims is not None:
        ks, ss, ds, size, pad = (list(v) for v in zip(*draw(dims(rank))))
        _shorten_to(max_products, size, n * groups * cin_g * cout_g * math.prod(ks))
        geo = _geometry(rank, groups, cin_g, cout_g, ks, ss, ds, size, n)
        return dict(geo, pads=pad, outpad=None, **draw(_arrays(channels_last, dtypes, layouts)))
    ks = [draw(kernel) for _ in range(rank - 1)]
    ks.append(draw(last_kernel if last_kernel is not None else kernel))
    if geometry == "kernel_is_stride":
        ss, ds = list(ks), [1] * rank
    else:
        ss = [draw(stride) for _ in range(rank)]
        ds = [1] * rank if geometry == "one_pixel" else [draw(dilation) for _ in range(rank)]
    size = [draw(_for_rank(outer, rank)) for _ in range(rank - 1)]
    size.append(draw(_for_rank(last, rank)))
    if geometry == "one_pixel":
        size = [1] * rank
    _shorten_to(max_products, size, n * groups * cin_g * cout_g * math.prod(ks))
    geo = _geometry(rank, groups, cin_g, cout_g, ks, ss, ds, size, n)
    padding: Any = 0
    op = None
    pad_form = draw(st.sampled_from(pads)) if isinstance(pads, tuple) else pads
    if geometry == "free" and outpad and pad_form == "same":
        op = None if draw(st.booleans()) else [draw(st.integers(0, s - 1)) for s in ss]
    elif geometry == "free" and outpad:
        op = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(ss, ds)]
    if geometry == "free" and pad_form == "same":
        # Keras' inference; an explicit output_padding can leave no cell.
        padding = "same"
    elif geometry == "free" and pad_form != "none":
        padding = []
        for j, (k, s, d, i) in enumerate(zip(ks, ss, ds, size)):
            ek = d * (k - 1) + 1
            full = (i - 1) * s + ek
            if pad_form == "symmetric":
                padding.append(draw(st.integers(0, min(ek - 1, (full - 1) // 2))))
            else:  # "pairs" keeps each side within the dilated kernel, "crop" anywhere
                room = full - 1 + (op[j] if op and pad_form == "crop" else 0)
                side = room if pad_form == "crop" else min(ek - 1, room)
                lo = draw(st.integers(0, side))
                padding.append((lo, draw(st.integers(0, min(side, room - lo)))))
    return dict(geo, pads=padding, outpad=op, **draw(_arrays(channels_last, dtypes, layouts)))


@st.composite
def layer_forms(
    draw: Any,
    max_macs: int = 30000,
    ranks: tuple[int, ...] = (1, 2, 3),
    paddings: tuple[str, ...] = ("int", "per_dim", "pairs", "same", "valid"),
    allow_output_size: bool = True,
) -> dict:
    """A random layer (the description of `layers`) whose arguments take every form the API
    accepts: int or per-dim stride and dilation, padding as an int, per dim, (lo, hi) pairs,
    'same' or 'valid' (either case), output_padding explicit or None, and two more keys:
    unbatched (x without its batch axis) and output_size_from_op (ask for the output through
    output_size instead). Some 'same' draws leave no cell: the tests check that both sides refuse
    them. Arrays are C-contiguous: the tests relayout them themselves."""
    rank = draw(st.sampled_from(ranks))
    max_in = {1: 9, 2: 6, 3: 4}[rank]
    kernel = tuple(draw(st.lists(st.integers(1, 5), min_size=rank, max_size=rank)))
    stride = tuple(draw(st.lists(st.integers(1, 4), min_size=rank, max_size=rank)))
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=rank, max_size=rank)))
    size = tuple(draw(st.lists(st.integers(1, max_in), min_size=rank, max_size=rank)))
    spatial_cost = math.prod(size) * math.prod(kernel)
    budget = max(1, max_macs // spatial_cost)
    batch = draw(st.integers(0, min(3, budget)))
    budget = max(1, budget // max(batch, 1))
    groups = draw(st.integers(1, min(3, budget)))
    cin_g = draw(st.integers(1, max(1, min(9 // groups, budget // groups))))
    cout_g = draw(st.integers(1, max(1, min(9 // groups, budget // (groups * cin_g)))))
    unbatched = batch == 1 and draw(st.booleans())

    form = draw(st.sampled_from(paddings))
    full = [(i - 1) * s + d * (k - 1) + 1 for i, s, d, k in zip(size, stride, dilation, kernel)]
    args: dict = dict(
        stride=stride if draw(st.booleans()) or len(set(stride)) > 1 else stride[0],
        dilation=dilation if len(set(dilation)) > 1 or draw(st.booleans()) else dilation[0],
    )
    explicit_op = draw(st.booleans())
    if form in ("same", "valid"):
        args["padding"] = form if draw(st.booleans()) else form.upper()
        op = tuple(draw(st.integers(0, s - 1)) for s in stride)
    else:
        op = tuple(draw(st.integers(0, max(s, d) - 1)) for s, d in zip(stride, dilation))
        # The crop must leave at least one cell: lo + hi <= full - 1 + output_padding.
        room = [f - 1 + (o if explicit_op else 0) for f, o in zip(full, op)]
        if form == "int":
            args["padding"] = draw(st.integers(0, min(r // 2 for r in room)))
        elif form == "per_dim":
            args["padding"] = tuple(draw(st.integers(0, r // 2)) for r in room)
        else:
            pairs = []
            for r in room:
                lo = draw(st.integers(0, r))
                pairs.append((lo, draw(st.integers(0, r - lo))))
            args["padding"] = tuple(pairs)
    args["output_padding"] = op if explicit_op else None
    # Ask for the same output through output_size instead (PyTorch's way).
    via_size = (
        allow_output_size
        and explicit_op
        and all(o < s for o, s in zip(op, stride))
        and draw(st.integers(0, 3)) == 0
    )
    return dict(
        rank=rank,
        groups=groups,
        cin=cin_g * groups,
        cout_g=cout_g,
        kernel=kernel,
        stride=args["stride"],
        dilation=args["dilation"],
        size=size,
        pads=args["padding"],
        outpad=args["output_padding"],
        batch=batch,
        channels_last=draw(st.booleans()),
        dtype=draw(st.sampled_from([np.float32, np.float64])),
        bias=draw(st.booleans()),
        layout="c",
        seed=draw(st.integers(0, 2**31 - 1)),
        unbatched=unbatched,
        output_size_from_op=via_size,
    )


def layer_args(cfg: dict) -> dict:
    """The layer's keyword arguments shared by tconv and PyTorch (no data_format)."""
    return dict(
        stride=cfg["stride"],
        padding=cfg["pads"],
        output_padding=cfg["outpad"],
        dilation=cfg["dilation"],
        groups=cfg["groups"],
    )


def layer_inputs(cfg: dict) -> tuple:
    """x, weight, bias and keyword arguments for a layer description (see `layers`); layout
    "strided" gives x every other element of a larger array, last axis reversed,
    "last_strided" every other element along the last axis only, "fortran" Fortran order; an
    unbatched layer's x has no batch axis."""
    rng = np.random.default_rng(cfg["seed"])
    dt = cfg["dtype"]
    if cfg["channels_last"]:
        xs = (cfg["batch"], *cfg["size"], cfg["cin"])
        ws = (*cfg["kernel"], cfg["cout_g"], cfg["cin"])
    else:
        xs = (cfg["batch"], cfg["cin"], *cfg["size"])
        ws = (cfg["cin"], cfg["cout_g"], *cfg["kernel"])
    x = rng.standard_normal(xs).astype(dt)
    if cfg["layout"] == "strided":
        big = rng.standard_normal(tuple(2 * n for n in xs)).astype(dt)
        x = big[tuple(slice(None, None, 2) for _ in xs)][..., ::-1]
    elif cfg["layout"] == "last_strided":
        big = np.zeros((*xs[:-1], 2 * xs[-1]), dt)
        big[..., ::2] = x
        x = big[..., ::2]
    elif cfg["layout"] == "fortran":
        x = np.asfortranarray(x)
    else:
        assert cfg["layout"] == "c", cfg["layout"]
    w = rng.standard_normal(ws).astype(dt)
    b = rng.standard_normal(cfg["cout_g"] * cfg["groups"]).astype(dt) if cfg["bias"] else None
    if cfg.get("unbatched"):
        x = x[0]
    kw = dict(
        layer_args(cfg), data_format="channels_last" if cfg["channels_last"] else "channels_first"
    )
    return x, w, b, kw


def raises(exc_type: type[BaseException], *words: str) -> Any:
    """pytest.raises that also checks every word (case-insensitive) appears in the message."""
    return _Raises(exc_type, words)


class _Raises:
    def __init__(self, exc_type: type[BaseException], words: tuple[str, ...]) -> None:
        self.ctx = pytest.raises(exc_type)
        self.words = words

    def __enter__(self) -> Any:
        self.info = self.ctx.__enter__()
        return self.info

    def __exit__(self, *exc: Any) -> bool:
        suppress = self.ctx.__exit__(*exc)
        message = str(self.info.value)
        missing = [w for w in self.words if not re.search(re.escape(w), message, re.I)]
        assert not missing, f"message lacks {missing}: {message}"
        return bool(suppress)
