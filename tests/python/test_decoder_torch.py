"""plan_decoder against PyTorch: random encoders (ranks 1-3, odd sizes, every pooling form) are
built as torch modules, a tensor is run through them, and the planned decoder -- built from
each step's params -- must give back every skip size so that torch.cat accepts it."""

from __future__ import annotations

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import tconv

from conftest import examples

torch = pytest.importorskip("torch")
nn = torch.nn

CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
MAXPOOL = {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d}
AVGPOOL = {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}
UP = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}


def _stride(spec: dict) -> int:
    """The layer's stride as torch applies it: pools stride by their window by default."""
    return spec.get("stride", 1 if spec["type"] == "conv" else spec["kernel_size"])


def _module(spec: dict, rank: int, channels: int):
    args = {k: v for k, v in spec.items() if k != "type"}
    if spec["type"] == "conv":
        return CONV[rank](channels, channels, **args)
    return (MAXPOOL if spec["type"] == "maxpool" else AVGPOOL)[rank](**args)


@st.composite
def _downsampler(draw):
    kind = draw(st.sampled_from(["maxpool", "avgpool", "conv"]))
    k = draw(st.integers(1, 4))
    spec: dict = {"type": kind, "kernel_size": k}
    stride = draw(st.integers(2, 3))
    if kind != "maxpool" or draw(st.booleans()) or k == 1:  # pools default to stride = kernel_size
        spec["stride"] = stride
    if kind == "conv":
        spec["padding"] = draw(st.integers(0, k))
        spec["dilation"] = draw(st.integers(1, 2))
        return spec
    spec["padding"] = draw(st.integers(0, k // 2))
    spec["ceil_mode"] = draw(st.booleans())
    if kind == "maxpool":
        spec["dilation"] = draw(st.integers(1, 2))
    return spec


@st.composite
def _encoders(draw):
    rank = draw(st.integers(1, 3))
    top = {1: 61, 2: 41, 3: 23}[rank]
    size = tuple(draw(st.integers(9, top).map(lambda v: v | 1)) for _ in range(rank))
    layers = []
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            k = draw(st.sampled_from([1, 3]))
            layers.append({"type": "conv", "kernel_size": k, "padding": draw(st.integers(0, k))})
        layers.append(draw(_downsampler()))
    return size, layers


def _encoder_sizes(size, layers):
    """Run the encoder in torch: the spatial size before every layer and at the bottom, or None
    where torch refuses the encoder."""
    rank = len(size)
    x = torch.zeros((1, 2, *size))
    sizes = [tuple(x.shape[2:])]
    try:
        with torch.no_grad():
            for spec in layers:
                x = _module(spec, rank, 2)(x)
                sizes.append(tuple(x.shape[2:]))
    except RuntimeError:
        return None
    return sizes


def _torch_reaches(cur: int, target: int, k: int, s: int, d: int) -> bool:
    """Whether some ConvTranspose1d of this kernel/stride/dilation (padding 0..d*(k-1),
    output_padding < max(s, d)) maps cur to target, by running them."""
    x = torch.zeros((1, 1, cur))
    for p in range(d * (k - 1) + 1):
        for op in range(max(s, d)):
            try:
                y = nn.ConvTranspose1d(1, 1, k, s, p, op, dilation=d)(x)
            except RuntimeError:
                continue
            if y.shape[-1] == target:
                return True
    return False


def _run_decoder(plan, sizes):
    """Build the planned decoder in torch and concatenate each output with its skip."""
    rank = plan.rank
    with torch.no_grad():
        x = torch.zeros((1, 2, *sizes[-1]))
        for step, skip_index in zip(plan.steps, plan.skips):
            layer = UP[rank](2, 2, **step.params)
            y = layer(x)
            skip = torch.zeros((1, 2, *sizes[skip_index]))
            x = torch.cat([y, skip], dim=1)[:, :2]  # raises on a size mismatch
            assert tuple(y.shape[2:]) == sizes[skip_index] == step.output_size


@settings(max_examples=examples(60))
@given(_encoders(), st.data())
def test_planned_decoder_concatenates_in_torch(case, data):
    size, layers = case
    torch_sizes = _encoder_sizes(size, layers)
    steps = [n for n, spec in enumerate(layers) if _stride(spec) > 1]
    strides = {_stride(layers[n]) for n in steps}
    up = None
    if len(strides) == 1 and data.draw(st.booleans()):
        s = strides.pop()
        up = {"kernel_size": data.draw(st.sampled_from([s, s + 1, 2 * s])), "stride": s}
    try:
        plan = tconv.plan_decoder(size, layers, up=up)
    except tconv.ShapeError as exc:
        if torch_sizes is None:
            event("the framework refuses the encoder")
            assert "encoder[" in str(exc)  # torch refuses the encoder too
            return
        event("a skip is unreachable")
        assert "decoder step" in str(exc)
        # no layer of that kernel and stride reaches some skip: check in torch, per dim
        assert not _every_step_reachable(layers, up, torch_sizes)
        return
    assert torch_sizes is not None, "tconv planned an encoder that torch refuses"
    event("planned")
    assert plan.sizes == tuple(torch_sizes)
    assert list(plan.skips) == steps[::-1]
    _run_decoder(plan, torch_sizes)


def _every_step_reachable(layers, up, sizes) -> bool:
    current = sizes[-1]
    for n in reversed(range(len(layers))):
        spec = layers[n]
        stride = _stride(spec)
        if stride == 1:
            continue
        k = up["kernel_size"] if up else spec["kernel_size"]
        s = up["stride"] if up else stride
        d = 1 if up else spec.get("dilation", 1)
        for j in range(len(current)):
            if not _torch_reaches(current[j], sizes[n][j], k, s, d):
                return False
        current = sizes[n]
    return True


UNET = [
    *[{"type": "conv", "kernel_size": 3, "padding": 1}] * 2
    + [{"type": "maxpool", "kernel_size": 2}]
] * 4


def test_unet_161x241_needs_output_padding_once_and_160_176_need_none():
    plan = tconv.plan_decoder((161, 241), UNET, up={"kernel_size": 2, "stride": 2})
    sizes = _encoder_sizes((161, 241), UNET)
    assert plan.sizes == tuple(sizes)
    assert [s.output_size for s in plan.steps] == [(20, 30), (40, 60), (80, 120), (161, 241)]
    assert [s.params["output_padding"] for s in plan.steps] == [0, 0, 0, 1]
    _run_decoder(plan, sizes)
    assert plan.nearest_inputs == ((160, 176), (240, 256))
    assert not plan.clean


def _clean_in_torch(n: int, layers: list, k: int, s: int) -> bool:
    """Whether one ConvTranspose1d(k, s, padding=p) with no output_padding gives back every
    skip of a 1-d encoder on n cells, for some p: by running torch."""
    sizes = _encoder_sizes((n,), layers)
    if sizes is None:
        return False
    for p in range(k):
        layer = nn.ConvTranspose1d(1, 1, k, s, p)
        ok, cur = True, sizes[-1]
        for idx in reversed(range(len(layers))):
            if _stride(layers[idx]) == 1:
                continue
            if layer(torch.zeros((1, 1, *cur))).shape[-1] != sizes[idx][0]:
                ok = False
                break
            cur = sizes[idx]
        if ok:
            return True
    return False


@pytest.mark.parametrize(
    "n, layers, k, s",
    [
        (161, UNET, 2, 2),
        (100, [{"type": "maxpool", "kernel_size": 2, "ceil_mode": True}] * 3, 2, 2),
        (50, [{"type": "conv", "kernel_size": 3, "stride": 2, "padding": 1}] * 3, 3, 2),
        (37, [{"type": "avgpool", "kernel_size": 3, "stride": 3, "padding": 1}] * 2, 3, 3),
    ],
)
def test_nearest_inputs_are_the_nearest_clean_sizes_in_torch(n, layers, k, s):
    layers_1d = [{**e, "kernel_size": e["kernel_size"]} for e in layers]
    plan = tconv.plan_decoder(n, layers_1d, up={"kernel_size": k, "stride": s})
    ((below, above),) = plan.nearest_inputs
    assert below is not None and above is not None
    assert below <= n <= above
    assert _clean_in_torch(below, layers_1d, k, s) and _clean_in_torch(above, layers_1d, k, s)
    for m in range(below + 1, above):
        assert not _clean_in_torch(m, layers_1d, k, s), m
    clean = tconv.plan_decoder(below, layers_1d, up={"kernel_size": k, "stride": s})
    assert clean.clean and all(step.params["output_padding"] == 0 for step in clean.steps)


def test_unreachable_skip_names_the_step_its_reach_and_the_nearest_working_inputs():
    layers = [{"type": "maxpool", "kernel_size": 2}] * 3
    up = {"kernel_size": 1, "stride": 2}
    with pytest.raises(tconv.ShapeError) as info:
        tconv.plan_decoder(161, layers, up=up)
    text = str(info.value)
    assert "decoder step 3" in text and "map 80 to 161" in text
    # a kernel-1 stride-2 layer turns 80 cells into 159 or 160 (output_padding 0 or 1):
    x = torch.zeros((1, 1, 80))
    got = sorted({nn.ConvTranspose1d(1, 1, 1, 2, output_padding=op)(x).shape[-1] for op in (0, 1)})
    assert got == [159, 160] and "into 159..160, not 161" in text
    # the nearest sizes it names work in torch, and none between them does
    assert "reached: 160 or 168" in text
    for n in range(160, 169):
        works = _every_step_reachable(layers, up, _encoder_sizes((n,), layers))
        assert works == (n in (160, 168)), n
