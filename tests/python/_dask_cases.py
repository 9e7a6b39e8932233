"""Drawn chunked layers shared by the dask tests: a layer, its arrays and a chunking of x."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import strategies as st

from conftest import layer_configs


@st.composite
def partitions(draw, n: int) -> tuple[int, ...]:
    """Chunk sizes summing to n: one chunk, all chunks of 1 (smaller than most halos), or
    random cuts."""
    if n <= 1:
        return (n,)
    kind = draw(st.sampled_from(["one", "ones", "cuts", "cuts"]))
    if kind == "one":
        return (n,)
    if kind == "ones":
        return (1,) * n
    cuts = draw(st.sets(st.integers(1, n - 1), min_size=1, max_size=n - 1))
    edges = [0, *sorted(cuts), n]
    return tuple(b - a for a, b in itertools.pairwise(edges))


@st.composite
def chunked_layers(draw, max_macs: int = 4000) -> dict:
    """x, weight, bias, the keyword arguments of the call and chunks for x (the channel axis
    in one chunk): ranks 1-3, every padding form, output_padding, dilation, groups, both data
    formats and dtypes, batched or not."""
    cfg = draw(layer_configs(max_macs=max_macs, allow_output_size=False))
    channels_last = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    spatial, c_in, groups = cfg["size"], cfg["c_in"], cfg["args"]["groups"]
    xs = (*spatial, c_in) if channels_last else (c_in, *spatial)
    if not cfg["unbatched"]:
        xs = (cfg["batch"], *xs)
    ws = (
        (*cfg["kernel"], cfg["c_out_g"], c_in)
        if channels_last
        else (c_in, cfg["c_out_g"], *cfg["kernel"])
    )
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal(ws).astype(dtype)
    b = rng.standard_normal(cfg["c_out_g"] * groups).astype(dtype) if draw(st.booleans()) else None
    c_axis = x.ndim - 1 if channels_last else x.ndim - 1 - cfg["rank"]
    chunks = [draw(partitions(n)) for n in x.shape]
    chunks[c_axis] = (x.shape[c_axis],)
    kw = dict(cfg["args"], data_format="channels_last" if channels_last else "channels_first")
    return dict(x=x, weight=w, bias=b, kwargs=kw, chunks=tuple(chunks))
