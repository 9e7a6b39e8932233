"""Every piece of advice tconv prints for PyTorch, executed in PyTorch.

Layers, recipes and fixes are run as printed (eval/exec of the code string) and must give the
promised size and, where weights are involved, the numbers of the source layer.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tconv
from tconv import _explain

from _advice import (
    explain_args,
    explain_elsewhere,
    split_recipe,
    torch_layers,
    torch_source,
    window_numbers,
)
from conftest import assert_close_in_norm

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

CIN, COUT = 2, 3
FAST = settings(max_examples=10, deadline=None, derandomize=True, database=None)


def _data(sol, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, CIN, *sol.input_size))
    w = rng.standard_normal((CIN, COUT, *sol.kernel_size))
    b = rng.standard_normal(COUT)
    return x, w, b


def _set(layer, w, b):
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(w))
        if layer.bias is not None:
            layer.bias.copy_(torch.from_numpy(b))


def _run_torch_code(code: str, sol_like, x, w, b):
    """The printed layer (or recipe) with the given weights, on x."""
    ns = {"nn": nn, "torch": torch, "F": F}
    if "\n" in code:
        first, rest = split_recipe(code)
        exec(first, ns)
        layer = ns["layer"].double()
        _set(layer, w, b)
        ns["layer"], ns["x"] = layer, torch.from_numpy(x)
        with torch.no_grad():
            exec(rest, ns)
        return ns["y"].numpy()
    layer = eval(code, ns).double()
    _set(layer, w, b)
    with torch.no_grad():
        return layer(torch.from_numpy(x)).numpy()


@FAST
@given(torch_layers(), st.sampled_from(["keras", "onnx", "tf_nn", "jax", "torch"]))
def test_torch_translations_and_recipes_run(layer, conv):
    """translate() of a layer of any convention: the torch line or recipe gives its numbers."""
    src = torch_source(layer, CIN, COUT)
    if conv != "torch":
        other = tconv.translate(src)[conv]
        if not other.exact:
            return  # that convention cannot hold the window: its own recipe is tested elsewhere
        src = other.solution
    tr = tconv.translate(src)["torch"]
    x, w, b = _data(src)
    code = tr.solution.code() if tr.exact else tr.recipe
    y = _run_torch_code(code, src, x, w, b)
    assert y.shape[2:] == src.output_size
    assert_close_in_norm(y, window_numbers(x, w, b, src))


@FAST
@given(torch_layers(), st.sampled_from(["keras", "onnx", "tf_nn", "jax"]))
def test_torch_recipes_cover_every_dimension(layer, conv):
    """Windows torch cannot hold (from the other conventions' solutions): the recipe is exact."""
    src = torch_source(layer, CIN, COUT)
    target = src.output_size
    for sol in tconv.solve(
        src.input_size,
        target,
        kernel_size=src.kernel_size,
        stride=src.stride,
        dilation=src.dilation,
        convention=conv,
        in_channels=CIN,
        out_channels=COUT,
    )[:6]:
        tr = tconv.translate(sol)["torch"]
        x, w, b = _data(sol)
        code = tr.solution.code() if tr.exact else tr.recipe
        y = _run_torch_code(code, sol, x, w, b)
        assert y.shape[2:] == sol.output_size, code
        assert_close_in_norm(y, window_numbers(x, w, b, sol), msg=code)


@FAST
@given(torch_layers())
def test_solve_code_runs_and_str_is_the_code(layer):
    src = torch_source(layer, CIN, COUT)
    sols = tconv.solve(src.input_size, src.output_size, in_channels=CIN, out_channels=COUT)
    assert sols
    for sol in sols[:5]:
        assert str(sol) == sol.code()
        assert f"({CIN}, {COUT}," in sol.code()  # the channel counts, not placeholders
        x, w, b = _data(sol)
        y = _run_torch_code(str(sol), sol, x, w, b)
        assert y.shape[2:] == src.output_size
        assert_close_in_norm(y, window_numbers(x, w, b, sol))


@FAST
@given(torch_layers())
def test_mirror_code_is_the_adjoint_of_the_forward_conv(layer):
    inp, ks, ss, ps, _, ds = layer
    fwd_in = tuple(max(i * s, d * (k - 1) + 1) for i, k, s, d in zip(inp, ks, ss, ds))
    sol = tconv.mirror(fwd_in, ks, ss, ps, ds, in_channels=COUT, out_channels=CIN)
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.standard_normal((COUT, CIN, *ks)))
    conv = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[len(ks)]
    a = torch.from_numpy(rng.standard_normal((1, CIN, *fwd_in)))
    fa = conv(a, w, stride=ss, padding=ps, dilation=ds)
    assert tuple(fa.shape[2:]) == sol.input_size
    layer_t = eval(str(sol), {"nn": nn}).double()
    with torch.no_grad():
        layer_t.weight.copy_(w)
        layer_t.bias.zero_()
        c = torch.from_numpy(rng.standard_normal(fa.shape))
        tc = layer_t(c)
    assert tuple(tc.shape[2:]) == fwd_in
    # <conv(a), c> == <a, conv_transpose(c)>
    lhs, rhs = float((fa * c).sum()), float((a * tc).sum())
    assert abs(lhs - rhs) <= 1e-9 * max(1.0, abs(lhs))


def _torch_error(fn) -> str:
    with pytest.raises((RuntimeError, ValueError)) as info:
        fn()
    return str(info.value)


@FAST
@given(torch_layers(max_rank=2), st.data())
def test_doctor_output_padding_fixes_give_the_size_asked_for(layer, data):
    inp, ks, ss, ps, _, ds = layer
    bad = tuple(data.draw(st.integers(max(s, d), max(s, d) + 3)) for s, d in zip(ss, ds))
    wanted = tuple(
        tconv._core.torch_length(i, k, s, d, p, op)
        for i, k, s, d, p, op in zip(inp, ks, ss, ds, ps, bad)
    )
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[len(ks)]
    x = torch.zeros(1, 1, *inp)
    msg = _torch_error(lambda: cls(1, 1, ks, ss, ps, bad, dilation=ds)(x))
    diag = tconv.doctor(msg)
    assert diag.kind == "output_padding" and diag.options
    tried = 0
    rank = len(ks)
    for opt in diag.options:
        # PyTorch runs a 1-d layer as 2-d and reports its dimension as the width
        opt = {k: v[-rank:] for k, v in opt.items()}
        p2 = tuple(p - t for p, t in zip(ps, opt.get("padding_less", (0,) * rank)))
        k2 = tuple(k + e for k, e in zip(ks, opt.get("kernel_size_more", (0,) * rank)))
        if min(p2) < 0:
            continue  # the padding option needs that much padding to give back
        tried += 1
        y = cls(1, 1, k2, ss, p2, opt["output_padding"], dilation=ds)(x)
        assert tuple(y.shape[2:]) == wanted, (msg, diag.fix, opt)
        shown = opt["output_padding"]
        assert (
            f"output_padding={shown[0] if len(set(shown)) == 1 else shown}" in diag.fix or rank == 1
        )
    assert tried


@FAST
@given(torch_layers(max_rank=2), st.data())
def test_doctor_recognises_torch_output_size_error_and_its_layers_reach_it(layer, data):
    inp, ks, ss, ps, _, ds = layer
    lo = [tconv._core.torch_length(i, k, s, d, p, 0) for i, k, s, d, p in zip(inp, ks, ss, ds, ps)]
    want = tuple(v + max(s, d) + data.draw(st.integers(0, 2)) for v, s, d in zip(lo, ss, ds))
    cls = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d}[len(ks)]
    x = torch.zeros(1, 1, *inp)
    msg = _torch_error(lambda: cls(1, 1, ks, ss, ps, dilation=ds)(x, output_size=want))
    diag = tconv.doctor(msg)
    assert diag.recognised and diag.kind == "output_size", msg
    assert diag.numbers["requested"] == want
    codes = re.findall(r"nn\.ConvTranspose\dd\([^;]*\)(?=;|\.$)", diag.fix)
    for code in codes:
        y = eval(code, {"nn": nn, "in_channels": 1, "out_channels": 1})(x)
        assert tuple(y.shape[2:]) == want, code


def test_doctor_output_size_parses_torch_tuple_and_list_spellings():
    layer = nn.ConvTranspose2d(3, 8, 3, stride=2, padding=1)
    x = torch.zeros(1, 3, 80, 120)
    for size in ((161, 241), [161, 241]):
        diag = tconv.doctor(_torch_error(lambda: layer(x, output_size=size)))
        assert diag.kind == "output_size" and diag.numbers["requested"] == (161, 241)
        assert "nn.ConvTranspose2d" in diag.fix and "(80, 120) to (161, 241)" in diag.fix


@pytest.mark.parametrize(
    "conv, args",
    [
        ("keras", dict(kernel_size=3, strides=2, padding="same")),
        ("onnx", dict(kernel_shape=(3, 2), strides=(2, 3), pads=(0, 1, 1, 0))),
        ("jax", dict(kernel_size=(3, 3), strides=(2, 2), padding=((2, 1), (0, 2)))),
    ],
)
def test_explain_same_layer_elsewhere_runs_in_torch(conv, args):
    rep = _explain._report(conv, (4, 5), args)
    torch_text = dict(rep.translations)["torch"]
    sols = tconv.solve(
        (4, 5),
        tuple(d.out for d in rep.dims),
        kernel_size=tuple(d.k for d in rep.dims),
        stride=tuple(d.s for d in rep.dims),
        convention="onnx",
    )
    src = next(s for s in sols if s.crop == tuple((d.lo, d.hi, d.op) for d in rep.dims))
    code = torch_text.split("instead: ", 1)[1] if "instead: " in torch_text else torch_text
    code = "\n".join(line.strip() for line in code.splitlines())
    x, w, b = _data(src)
    ns = {"in_channels": CIN, "out_channels": COUT}
    code = code.replace("in_channels", str(CIN)).replace("out_channels", str(COUT))
    del ns
    y = _run_torch_code(code, src, x, w, b)
    assert y.shape[2:] == src.output_size
    assert_close_in_norm(y, window_numbers(x, w, b, src))


@FAST
@given(torch_layers(), st.sampled_from(["keras", "onnx", "tf_nn", "jax", "jax consistent"]))
def test_explain_torch_line_runs_for_every_source(layer, source):
    """explain's "The same layer elsewhere" torch line, parsed from its printed text, for
    layers of every other convention (JAX's with use_consistent_padding too): the explained
    layer's size and numbers."""
    src = torch_source(layer, CIN, COUT)
    sols = tconv.solve(
        src.input_size,
        src.output_size,
        kernel_size=src.kernel_size,
        stride=src.stride,
        dilation=src.dilation,
        convention=source.split()[0],
        use_consistent_padding=source.endswith("consistent"),
    )
    for sol in sols[:3]:
        text = tconv.explain(sol.convention, sol.input_size, **explain_args(sol))
        code = explain_elsewhere(text, CIN, COUT)["torch"]
        x, w, b = _data(sol)
        y = _run_torch_code(code, sol, x, w, b)
        assert y.shape[2:] == sol.output_size, code
        assert_close_in_norm(y, window_numbers(x, w, b, sol), msg=code)


def test_shape_cli_prints_output_size_as_a_forward_argument(capsys):
    from tconv import cli

    assert (
        cli.main(
            [
                "shape",
                "torch",
                "--input",
                "1",
                "3",
                "80",
                "120",
                "--in-channels",
                "3",
                "--out-channels",
                "8",
                "--kernel-size",
                "3",
                "--stride",
                "2",
                "--padding",
                "1",
                "--output-size",
                "160",
                "240",
            ]
        )
        == 0
    )
    line = capsys.readouterr().out.splitlines()[0]
    y = eval(line, {"nn": nn, "x": torch.zeros(1, 3, 80, 120)})
    assert tuple(y.shape) == (1, 8, 160, 240)


@pytest.mark.parametrize(
    "conv, shape, args",
    [
        ("onnx", (1, 3, 5, 5), dict(weight_shape=(3, 8, 3, 3), strides=(2, 2), pads=(1, 1, 0, 0))),
        ("keras", (1, 5, 5, 3), dict(filters=8, kernel_size=3, strides=2, padding="same")),
        ("jax", (1, 5, 5, 3), dict(rhs_shape=(3, 3, 3, 8), strides=(2, 2), padding="SAME")),
        (
            "tf_nn",
            (1, 5, 5, 3),
            dict(
                filters_shape=(3, 3, 8, 3), output_shape=(1, 10, 10, 8), strides=2, padding="SAME"
            ),
        ),
    ],
)
def test_explain_prints_the_channel_counts_given(conv, shape, args):
    rep = _explain._report(conv, shape, args)
    text = dict(rep.translations)["torch"]
    assert "in_channels" not in text and "out_channels" not in text
    code = text.split("instead: ", 1)[-1]
    code = "\n".join(line.strip() for line in code.splitlines())
    ns = {"nn": nn, "x": torch.zeros(1, 3, 5, 5)}
    if "\n" in code:
        exec(code, ns)
        y = ns["y"]
    else:
        y = eval(code, ns)(ns["x"])
    assert tuple(y.shape) == (1, 8, *(d.out for d in rep.dims))


def test_torch_recipe_for_a_window_past_the_full_result_is_a_layer_and_a_crop():
    """ONNX pads=[1, 0] with output_padding=1 ends one cell past the full result: torch's
    output_padding reaches that cell, so the recipe is a layer plus a crop (with its bias)."""
    src = next(
        s
        for s in tconv.solve(
            3, 6, kernel_size=2, stride=2, convention="onnx", in_channels=CIN, out_channels=COUT
        )
        if s.params["pads"] == [1, 0] and s.params["output_padding"] == [1]
    )
    tr = tconv.translate(src)["torch"]
    assert not tr.exact and "adds 1 past the end of the full result" in tr.reason
    assert tr.recipe == (
        "layer = nn.ConvTranspose1d(2, 3, kernel_size=2, stride=2, output_padding=1)\n"
        "y = layer(x)[..., 1:]"
    )
    x, w, b = _data(src)
    y = _run_torch_code(tr.recipe, src, x, w, b)
    assert_close_in_norm(y, window_numbers(x, w, b, src))
