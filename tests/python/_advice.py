"""Shared by the tests that run tconv's printed advice in the real frameworks.

A layer of any convention is described by tconv's Solution: per spatial dim the window
[pad_lo, pad_lo + output) of the full transposed-convolution result (padding 0), where cells
past the full result hold only the bias. `window_numbers` computes that window with tconv's
naive reference; every executed piece of advice must give these numbers.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

import tconv
from tconv import reference


def window_numbers(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, sol) -> np.ndarray:
    """x (N, C_in, *spatial), w (C_in, C_out, *kernel) -> the source layer's output."""
    full = reference.conv_transpose(x, w, None, stride=sol.stride, padding=0, dilation=sol.dilation)
    idx = [slice(None), slice(None)]
    pad = [(0, 0), (0, 0)]
    for j in range(sol.rank):
        lo = sol.crop[j][0]
        end = lo + sol.output_size[j]
        pad.append((0, max(0, end - full.shape[2 + j])))
        idx.append(slice(lo, end))
    y = np.pad(full, pad)[tuple(idx)]
    if b is not None:
        y = y + b.reshape((1, -1) + (1,) * sol.rank)
    return y


@st.composite
def torch_layers(draw, max_rank: int = 3):
    """A valid torch ConvTransposeNd: (input spatial, kernel, stride, padding, op, dilation)."""
    rank = draw(st.integers(1, max_rank))
    inp, ks, ss, ps, ops, ds = [], [], [], [], [], []
    for _ in range(rank):
        k = draw(st.integers(1, 4))
        s = draw(st.integers(1, 3))
        d = draw(st.integers(1, 2))
        span = d * (k - 1)
        i = draw(st.integers(1, 5))
        p = draw(st.integers(0, span))
        op = draw(st.integers(0, max(s, d) - 1))
        if (i - 1) * s - 2 * p + span + op + 1 < 1:
            p = 0
        inp.append(i), ks.append(k), ss.append(s), ps.append(p), ops.append(op), ds.append(d)
    return tuple(inp), tuple(ks), tuple(ss), tuple(ps), tuple(ops), tuple(ds)


def torch_source(layer, cin: int, cout: int):
    """The Solution of a drawn torch layer (its crop window) via tconv.solve."""
    inp, ks, ss, ps, ops, ds = layer
    target = tuple(tconv.shapes.torch((1, cin, *inp), cin, cout, ks, ss, ps, ops, 1, ds)[2:])
    for sol in tconv.solve(
        inp, target, kernel_size=ks, stride=ss, dilation=ds, in_channels=cin, out_channels=cout
    ):
        if sol.params["padding"] == _one(ps) and sol.params["output_padding"] == _one(ops):
            return sol
    raise AssertionError(f"solve does not list the layer {layer}")


def _one(v: tuple) -> int | tuple:
    return v[0] if len(set(v)) == 1 else v


def split_recipe(recipe: str) -> tuple[str, str]:
    """'layer = ...' (built first, so that the test can set its weights) and the rest."""
    first, _, rest = recipe.partition("\n")
    assert first.startswith("layer = "), recipe
    return first, rest


def explain_args(sol) -> dict:
    """A Solution's parameters as tconv.explain takes them for its convention (spatial
    sizes only)."""
    return {
        k: (
            tuple(tuple(p) if isinstance(p, (list, tuple)) else p for p in v)
            if isinstance(v, list)
            else v
        )
        for k, v in sol.params.items()
    }


def explain_elsewhere(text: str, cin: int, cout: int) -> dict[str, str]:
    """The code of each "The same layer elsewhere" line of explain's text, as printed (the
    layer, or the recipe after "instead:"), with the channel placeholders filled in."""
    section = text.split("The same layer elsewhere", 1)[1].splitlines()[1:]
    out: dict[str, list[str]] = {}
    conv = None
    for line in section:
        head = line[:10].strip()
        if line.startswith("  ") and not line.startswith("   ") and head.endswith(":"):
            conv = head[:-1]
            body = line[10:]
            out[conv] = [] if body.startswith("no equivalent layer") else [body]
        elif conv is not None and line.strip().startswith("instead: "):
            out[conv] = [line.strip()[len("instead: ") :]]
        elif (
            conv is not None and line.strip() and not line.strip().startswith("note:") and out[conv]
        ):
            out[conv].append(line.strip())
    return {
        c: "\n".join(v).replace("in_channels", str(cin)).replace("out_channels", str(cout))
        for c, v in out.items()
    }
