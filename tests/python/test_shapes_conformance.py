"""tconv.shapes against shapes and errors measured in the frameworks themselves.

The golden file is written by tests/conformance/collect.py (torch, Keras 3 on TensorFlow and
JAX, tf.nn with and without oneDNN, onnxruntime, jax); no framework is needed here.
"""

from __future__ import annotations

import gzip
import json
import warnings
from pathlib import Path

import pytest

import tconv
from tconv import shapes

GOLDEN = Path(__file__).resolve().parents[1] / "conformance" / "golden.json.gz"
FUNCS = {
    "torch": shapes.torch,
    "keras": shapes.keras,
    "tf_nn": shapes.tf_nn,
    "onnx": shapes.onnx,
    "jax": shapes.jax,
}
# TensorFlow CPU kernels without oneDNN refuse these although the oneDNN build runs them:
# tconv returns the shape with a BackendWarning.
TF_BACKEND_LIMITS = {"backend_dilation", "backend_format", "backend_groups"}


@pytest.fixture(scope="module")
def golden():
    with gzip.open(GOLDEN, "rt") as f:
        return json.load(f)


def expectation(framework, entry):
    """("shape", shape, warns) or ("error", kind, None) for one measured configuration."""
    if framework == "tf_nn":
        classic = entry["classic"]
        if "error" in classic:
            if classic["error"]["kind"] in TF_BACKEND_LIMITS:
                if "shape" in entry:
                    return "shape", tuple(entry["shape"]), True
                # Both CPU builds refuse: the oneDNN build checks in its own order (and
                # reports a wrong output size only as "could not create a primitive
                # descriptor"), so the measurement says "raises" without saying why.
                return "error", None, None
            return "error", classic["error"]["kind"], None
        return "shape", tuple(classic["shape"]), False
    if "error" in entry:
        return "error", entry["error"]["kind"], None
    warns = framework == "keras" and "error" in entry.get("run", {})
    return "shape", tuple(entry["shape"]), warns


def observe(framework, params):
    """What tconv.shapes does: ("shape", shape, warned) or ("error", kind, None)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            got = FUNCS[framework](**params)
        except tconv.ShapeError as e:
            return "error", e.kind, None
    warned = any(issubclass(w.category, tconv.BackendWarning) for w in caught)
    return "shape", tuple(got), warned


@pytest.mark.parametrize("framework", sorted(FUNCS))
def test_agrees_with_framework(golden, framework):
    entries = golden["frameworks"][framework]
    assert len(entries) >= 300
    mismatches = []
    for entry in entries:
        want = expectation(framework, entry)
        got = observe(framework, entry["params"])
        if want != got and not (want[:2] == ("error", None) and got[0] == "error"):
            mismatches.append(
                (
                    entry["params"],
                    want,
                    got,
                    entry.get("error") or entry.get("classic", {}).get("error") or entry.get("run"),
                )
            )
    report = "\n".join(
        f"{p}\n   framework: {w}\n   tconv:     {g}\n   {e}" for p, w, g, e in mismatches[:15]
    )
    assert not mismatches, f"{len(mismatches)} of {len(entries)} disagree:\n{report}"


def test_golden_covers_every_error_kind(golden):
    kinds = {
        fw: {expectation(fw, e)[1] for e in entries if expectation(fw, e)[0] == "error"}
        for fw, entries in golden["frameworks"].items()
    }
    assert {
        "rank",
        "channels",
        "groups",
        "output_padding",
        "output_size",
        "nonpositive_output",
    } <= kinds["torch"]
    assert {"rank", "output_padding"} <= kinds["keras"]
    assert {"output_size", "channels"} <= kinds["tf_nn"]
    assert {"rank", "channels", "output_padding", "output_size", "nonpositive_output"} <= kinds[
        "onnx"
    ]
    assert {"rank", "channels", "nonpositive_output", "padding"} <= kinds["jax"]
    # Keras layers that TensorFlow refuses at run time are part of the sample
    assert any("error" in e.get("run", {}) for e in golden["frameworks"]["keras"])
