"""tconv.conv_transpose against torch.nn.functional.conv_transpose{1,2,3}d (channels_first)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import reference

from conftest import assert_close_in_norm, examples, layer_args, layer_forms, layer_inputs

torch = pytest.importorskip("torch")
F = torch.nn.functional
TORCH_FN = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TORCH_MODULE = {
    1: torch.nn.ConvTranspose1d,
    2: torch.nn.ConvTranspose2d,
    3: torch.nn.ConvTranspose3d,
}


def arrays(cfg: dict, dtype: type, seed: int):
    """x (batched), w and a bias of a layer, channels_first (PyTorch's layout)."""
    cfg = dict(cfg, channels_last=False, unbatched=False, batch=max(cfg["batch"], 1))
    x, w, b, _ = layer_inputs(dict(cfg, dtype=dtype, seed=seed, bias=True))
    return x, w, b


@settings(max_examples=examples(60))  # PyTorch's per-call overhead dominates tiny layers
@given(
    cfg=layer_forms(paddings=("int", "per_dim"), allow_output_size=False),
    dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
    with_bias=st.booleans(),
)
def test_matches_torch_functional(cfg, dtype, seed, with_bias):
    x, w, b = arrays(cfg, dtype, seed)
    args = layer_args(cfg)
    if args["output_padding"] is None:
        args["output_padding"] = 0
    bias = b if with_bias else None
    want = TORCH_FN[cfg["rank"]](
        torch.from_numpy(x),
        torch.from_numpy(w),
        None if bias is None else torch.from_numpy(bias),
        **args,
    ).numpy()
    got = tconv.conv_transpose(x, w, bias, **args)
    assert got.dtype == want.dtype
    assert_close_in_norm(got, want, dtype, msg=str(cfg))


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_matches_torch_grid(rank):
    # Groups, dilation and output_padding together, on every rank, in float64.
    rng = np.random.default_rng(rank)
    for groups, stride, dilation, padding, op in [
        (1, 2, 1, 1, 1),
        (2, 3, 2, 2, 1),
        (3, 1, 3, 0, 2),
        (4, 2, 2, 3, 0),
    ]:
        c_in, c_out_g = 4 * groups if groups != 3 else 6, 2
        x = rng.standard_normal((2, c_in, *[4 + d for d in range(rank)]))
        w = rng.standard_normal((c_in, c_out_g, *[2 + d for d in range(rank)]))
        b = rng.standard_normal(c_out_g * groups)
        kw = dict(
            stride=stride, padding=padding, output_padding=op, dilation=dilation, groups=groups
        )
        want = TORCH_FN[rank](
            torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b), **kw
        ).numpy()
        assert_close_in_norm(tconv.conv_transpose(x, w, b, **kw), want)
        assert_close_in_norm(reference.conv_transpose(x, w, b, **kw), want)


@pytest.mark.parametrize("rank", [1, 2, 3])
@settings(max_examples=examples(60))  # PyTorch's per-call overhead dominates tiny layers
@given(data=st.data())
def test_output_size_matches_module(rank, data):
    # nn.ConvTranspose{N}d.forward(x, output_size=...) picks output_padding itself.
    cfg = data.draw(
        layer_forms(
            ranks=(rank,), paddings=("int", "per_dim"), allow_output_size=False, max_macs=5000
        )
    )
    x, w, b = arrays(cfg, np.float64, data.draw(st.integers(0, 2**32 - 1)))
    args = {k: v for k, v in layer_args(cfg).items() if k != "output_padding"}
    module = TORCH_MODULE[rank](
        cfg["cin"], cfg["cout_g"] * args["groups"], cfg["kernel"], **args
    ).double()
    with torch.no_grad():
        module.weight.copy_(torch.from_numpy(w))
        module.bias.copy_(torch.from_numpy(b))
    full = [
        (i - 1) * s + d * (k - 1) + 1 - 2 * p
        for i, s, d, k, p in zip(
            cfg["size"], module.stride, module.dilation, module.kernel_size, module.padding
        )
    ]
    wanted = [
        data.draw(st.integers(max(f, 1), f + s - 1))
        for f, s in zip(full, module.stride)
        if f + s - 1 >= 1
    ]
    if len(wanted) != rank:
        return  # no reachable size in some dimension
    with torch.no_grad():
        want = module(torch.from_numpy(x), output_size=wanted).numpy()
    assert_close_in_norm(reference.conv_transpose(x, w, b, **args, output_size=wanted), want)
    got = tconv.conv_transpose(x, w, b, **args, output_size=wanted)
    assert_close_in_norm(got, want)
    # A full shape works too (PyTorch uses its spatial part).
    got_full = tconv.conv_transpose(x, w, b, **args, output_size=list(want.shape))
    assert_close_in_norm(got_full, want)


def test_output_size_unreachable_raises_like_torch():
    x = np.random.default_rng(0).standard_normal((1, 2, 5, 5))
    module = torch.nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1).double()
    w = module.weight.detach().numpy()
    with pytest.raises(ValueError, match="valid sizes"):
        module(torch.from_numpy(x), output_size=[11, 11])
    with pytest.raises(tconv.ShapeError):
        tconv.conv_transpose(x, w, stride=2, padding=1, output_size=(11, 11))
    with pytest.raises(tconv.ShapeError):
        reference.conv_transpose(x, w, stride=2, padding=1, output_size=(11, 11))
    for size in (9, 10):
        want = module(torch.from_numpy(x), output_size=[size, size]).detach().numpy()
        got = tconv.conv_transpose(
            x, w, module.bias.detach().numpy(), stride=2, padding=1, output_size=(size, size)
        )
        assert_close_in_norm(got, want)
