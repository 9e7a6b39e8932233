"""doctor's fixes for PyTorch's messages, applied as written and run in PyTorch.

Each test provokes the error in torch itself, asks tconv.doctor, reads the fix's numbers or
code out of its text, applies it and runs the layer again: it must run and give the size the
fix promises. (output_padding and output_size fixes: test_advice_torch.py.)
"""

from __future__ import annotations

import re
import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

FAST = settings(max_examples=10, deadline=None, derandomize=True, database=None)
CLS = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _diagnose(fn, kind: str):
    with pytest.raises((RuntimeError, ValueError, TypeError)) as info:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about initialising empty weights
            fn()
    d = tconv.doctor(str(info.value))
    assert d.recognised and d.kind == kind, str(info.value)
    return d


def _spatial(y) -> tuple:
    return tuple(y.shape[2:])


@FAST
@given(
    st.lists(
        st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 3)),
        min_size=1,
        max_size=2,
    ),
    st.data(),
)
def test_output_too_small_fix_reduces_padding_by_enough(dims, data):
    rank = len(dims)
    inp, ks, ss = [d[0] for d in dims], [d[1] for d in dims], [d[2] for d in dims]
    # padding that leaves at most 0 cells in at least one dimension
    full = [(i - 1) * s + k for i, k, s in zip(inp, ks, ss)]
    ps = [data.draw(st.integers((f + 1) // 2, (f + 1) // 2 + 2)) for f in full]
    x = torch.zeros(1, 1, *inp)
    d = _diagnose(lambda: CLS[rank](1, 1, ks, ss, ps)(x), "negative_output")
    less = eval(re.search(r"reduce padding by (\(?[\d, ]+\)?) ", d.fix).group(1))
    promised = eval(re.search(r"to get (\([\d, ]+\)) cells", d.fix).group(1))
    less = (less,) * rank if isinstance(less, int) else less[-rank:]  # 1-d: shown as 2-d
    p2 = [p - t for p, t in zip(ps, less)]
    assert min(p2) >= 0
    y = CLS[rank](1, 1, ks, ss, p2)(x)
    assert _spatial(y) == promised[-rank:] and min(_spatial(y)) >= 1


@FAST
@given(st.integers(2, 5), st.integers(1, 6), st.integers(1, 2), st.booleans())
def test_channel_mismatch_fixes_run(want, got, rank, channels_last):
    if want == got:
        got += 1
    layer = CLS[rank](want, 3, 3)
    if channels_last:  # the layer's channels on the last axis, 6 on axis 1
        x = torch.zeros(1, *[6] * rank, want)
        got = 6
    else:
        x = torch.zeros(1, got, *[6] * rank)
    d = _diagnose(lambda: layer(x), "channels")
    n = int(re.search(r"use in_channels=(\d+) in the layer", d.fix).group(1))
    assert n == got
    assert _spatial(CLS[rank](n, 3, 3)(x)) == tuple(v + 2 for v in x.shape[2:])
    perm = re.search(r"x\.permute\([\d, ]+\)", d.fix)
    assert bool(perm) == channels_last
    if perm:
        assert _spatial(layer(eval(perm.group(0), {"x": x}))) == (8,) * rank


@FAST
@given(st.integers(1, 300), st.integers(2, 3))
def test_flat_input_reshapes_run(features, rank):
    """(N, features) into a 2-d or 3-d layer (into a 1-d one it is an unbatched input)."""
    x = torch.zeros(2, features)
    d = _diagnose(lambda: CLS[rank](4, 3, 1)(x), "rank")
    views = re.findall(r"x\.view\(N, ([\d, ]+)\)", d.fix)
    assert views
    for v in views:
        shape = tuple(int(t) for t in v.split(","))
        assert len(shape) == rank + 1 and shape[0] * torch.Size(shape[1:]).numel() == features
        y = CLS[rank](shape[0], 3, 1)(x.view(2, *shape))  # c is the layer's in_channels
        assert _spatial(y) == shape[1:]


@pytest.mark.parametrize(
    "rank, shape", [(1, (2, 3, 4, 5)), (2, (2, 3, 4, 5, 5)), (1, (2, 2, 3, 4, 5))]
)
def test_extra_axes_fixes_run(rank, shape):
    x = torch.zeros(shape)
    d = _diagnose(lambda: CLS[rank](4, 3, 1)(x), "rank")
    flat = re.search(r"x\.flatten\(0, (\d+)\)", d.fix).group(0)
    assert _spatial(CLS[rank](4, 3, 1)(eval(flat, {"x": x}))) == shape[-rank:]
    higher = int(re.search(r"use ConvTranspose(\d)d if they are spatial", d.fix).group(1))
    if higher <= 3:  # the extra axes as spatial ones, with the channels where they are
        y = CLS[higher](shape[1], 3, 1)(x)
        assert _spatial(y) == shape[2:]


def test_missing_axes_fixes_run():
    d = _diagnose(lambda: nn.ConvTranspose2d(4, 3, 1)(torch.zeros(5)), "rank")
    assert "x.unsqueeze(0)" not in d.fix and "reshape to (N, C_in, H, W)" in d.fix
    x = torch.zeros(20)  # reshaped as told: (N, C_in, H, W) with the layer's in_channels
    assert _spatial(nn.ConvTranspose2d(4, 3, 1)(x.reshape(1, 4, 1, 5))) == (1, 5)
    x = torch.zeros(5, 5, 5)  # the spatial data alone, into a 3-d layer
    d = _diagnose(lambda: nn.ConvTranspose3d(1, 3, 1)(x), "rank")
    assert "x[None, None]" in d.fix
    assert _spatial(nn.ConvTranspose3d(1, 3, 1)(x[None, None])) == (5, 5, 5)


def test_unbatched_input_read_as_channels_fix_runs():
    x = torch.zeros(1, 4, 5, 5)  # a batched 2-d input into a 3-d layer
    d = _diagnose(lambda: nn.ConvTranspose3d(4, 3, 1)(x), "rank")
    assert "use ConvTranspose2d for 2-D data" in d.fix
    assert _spatial(nn.ConvTranspose2d(4, 3, 1)(x)) == (5, 5)


def test_empty_weight_fixes_run():
    x = torch.zeros(1, 2, 5, 5)
    d = _diagnose(lambda: nn.ConvTranspose2d(0, 3, 3)(x), "channels")
    assert "in_channels equal to the input's channel count (x.shape[1])" in d.fix
    assert _spatial(nn.ConvTranspose2d(x.shape[1], 3, 3)(x)) == (7, 7)
    d = _diagnose(lambda: nn.ConvTranspose2d(2, 0, 3)(x), "channels")
    assert "out_channels >= 1" in d.fix
    assert _spatial(nn.ConvTranspose2d(2, 1, 3)(x)) == (7, 7)
    d = _diagnose(lambda: F.conv_transpose2d(x, torch.zeros(2, 3, 0, 0)), "kernel_size")
    assert "kernel_size >= 1" in d.fix
    assert _spatial(F.conv_transpose2d(x, torch.zeros(2, 3, 1, 1))) == (5, 5)


def test_groups_fix_runs():
    d = _diagnose(lambda: nn.ConvTranspose2d(4, 3, 3, groups=2), "groups")
    assert "groups=1" in d.fix and "groups=in_channels for depthwise" in d.fix
    x = torch.zeros(1, 4, 5, 5)
    assert _spatial(nn.ConvTranspose2d(4, 3, 3, groups=1)(x)) == (7, 7)
    assert _spatial(nn.ConvTranspose2d(4, 8, 3, groups=4)(x)) == (7, 7)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_output_size_length_fix_runs(rank):
    layer = CLS[rank](2, 3, 3, stride=2)
    x = torch.zeros(1, 2, *[4] * rank)
    d = _diagnose(lambda: layer(x, output_size=(10,) * (rank + 1)), "output_size")
    names = re.search(r"output_size=\(([A-Z, ]+)\)", d.fix).group(1).split(", ")
    assert len(names) == rank  # the spatial sizes only
    assert _spatial(layer(x, output_size=(10,) * rank)) == (10,) * rank


@pytest.mark.parametrize("k, s", [(3, 2), (4, 2), (5, 3), (1, 2)])
def test_string_padding_fixes_run(k, s):
    x = torch.zeros(1, 2, 5, 5)
    w = torch.zeros(2, 3, k, k)
    d = _diagnose(lambda: F.conv_transpose2d(x, w, stride=s, padding="valid"), "padding_string")
    assert "padding='valid' is padding=0" in d.fix and "tconv translate" not in d.fix
    # Keras' 'valid' size: input * stride + max(kernel - stride, 0)
    op = max(s - k, 0) if "output_padding=stride - kernel" in d.fix else 0
    y = F.conv_transpose2d(x, w, stride=s, padding=0, output_padding=op)
    assert _spatial(y) == (5 * s + max(k - s, 0),) * 2
    # the example for kernel 3, stride 2: Keras' 'same' size, input * stride
    assert _spatial(nn.ConvTranspose2d(2, 3, 3, 2, padding=1, output_padding=1)(x)) == (10, 10)
    assert _spatial(nn.ConvTranspose2d(2, 3, 3, 2, padding=0)(x)[..., :-1, :-1]) == (10, 10)


def test_string_padding_fix_names_a_command_that_exists():
    from tconv import cli

    d = tconv.doctor("conv_transpose2d(): argument 'padding' must be tuple of ints, not str")
    command = re.search(r"`tconv (\w+) keras", d.fix).group(1)
    assert (
        cli.main(
            [
                command,
                "keras",
                "--input",
                "5",
                "--kernel",
                "3",
                "--strides",
                "2",
                "--padding",
                "same",
            ]
        )
        == 0
    )


def test_negative_padding_and_stride_fixes_run():
    x = torch.zeros(1, 2, 5, 5)
    d = _diagnose(lambda: nn.ConvTranspose2d(2, 3, 3, padding=-1)(x), "negative_padding")
    assert "torch.nn.functional.pad" in d.fix
    # padding=-1 would add a cell on each side: the padding-0 layer padded by one
    y = F.pad(nn.ConvTranspose2d(2, 3, 3)(x), (1, 1, 1, 1))
    assert _spatial(y) == (9, 9)
    d = _diagnose(lambda: nn.ConvTranspose2d(2, 3, 3, stride=0)(x), "stride")
    assert "stride=1 or more" in d.fix
    assert _spatial(nn.ConvTranspose2d(2, 3, 3, stride=1)(x)) == (7, 7)


@pytest.mark.parametrize(
    "cin, rank, args, shape",
    [
        (
            2,
            3,
            dict(
                kernel_size=[2, 3, 5],
                stride=4,
                padding=[6, 12, 10],
                groups=2,
                dilation=[1, 1, 2],
                output_padding=[3, 3, 1],
            ),
            (1, 2, 4, 2, 11),
        ),
        (
            6,
            2,
            dict(kernel_size=1, stride=[3, 4], padding=[10, 12], groups=3, dilation=3),
            (2, 6, 9, 6),
        ),
    ],
)
def test_onednn_refusal_fix_via_tconv_shapes_runs(cin, rank, args, shape):
    """oneDNN's opaque refusal: the fix sends to tconv.shapes.torch, whose own fix (the
    largest padding per dimension) is applied until the layer runs."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # PyTorch takes its oneDNN path with more than one thread
    x = torch.zeros(shape)
    try:
        d = _diagnose(lambda: CLS[rank](cin, cin, **args)(x), "nonpositive_output")
    finally:
        torch.set_num_threads(threads)
    assert "tconv.shapes.torch" in d.fix
    pad = list(args["padding"])
    names = ["depth", "height", "width"][3 - rank :]
    for _ in range(rank + 1):
        try:
            tconv.shapes.torch(shape, cin, cin, **{**args, "padding": pad})
            break
        except tconv.ShapeError as exc:
            m = re.search(r"use padding <= (\d+) in (\w+)", exc.fix)
            pad[names.index(m.group(2))] = int(m.group(1))
    y = CLS[rank](cin, cin, **{**args, "padding": pad})(x)
    assert _spatial(y) == tconv.shapes.torch(shape, cin, cin, **{**args, "padding": pad})[2:]
    assert min(_spatial(y)) >= 1
