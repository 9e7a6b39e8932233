"""Drawn chunked layers shared by the dask tests: a layer, its arrays and a chunking of x."""

from __future__ import annotations

import itertools

from hypothesis import strategies as st

from conftest import layer_forms, layer_inputs


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
    cfg = draw(layer_forms(max_macs=max_macs, allow_output_size=False))
    x, w, b, kw = layer_inputs(cfg)
    c_axis = x.ndim - 1 if cfg["channels_last"] else x.ndim - 1 - cfg["rank"]
    chunks = [draw(partitions(n)) for n in x.shape]
    chunks[c_axis] = (x.shape[c_axis],)
    return dict(x=x, weight=w, bias=b, kwargs=kw, chunks=tuple(chunks))
