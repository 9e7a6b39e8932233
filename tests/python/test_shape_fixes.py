"""The fixes tconv.shapes raises with, applied as written, resolve the error (no framework
needed: tconv.shapes agrees with the frameworks on the golden file; the fixed layers run in
the frameworks themselves in test_shape_fixes_frameworks.py).

Every configuration of tests/conformance/golden.json.gz that tconv.shapes refuses is fixed as
its ShapeError says ("use padding <= 4 in height", "use kernel_shape=[3, 3]", ...) until that
kind of error is gone; a fix whose text no rule reads must be one of the prose ones below.
"""

from __future__ import annotations

import gzip
import json
import re
import warnings
from pathlib import Path

import pytest
from _shape_fixes import apply

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
# Fixes that are advice in words (no argument value to apply), by their opening words.
PROSE = re.compile(
    r"(in \w+(?: \d+)?: )?-?\d+ cannot be reached with kernel|check the layer before this one|"
    r"the input has 0 channels too|give the input shape|reshape X to rank|reshape lhs to rank|"
    r"add the missing axes|compute the padding with tconv\.solve|"
    r"the input has one axis too many|use ConvTranspose\dd for|fold the extra|"
    r"pass output_shape with \d+ values$|reshape the flat features .* = \d+$"
)


def _shape(fw, params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tconv.BackendWarning)
        return FUNCS[fw](**params)


def fixed_layers(golden, fw):
    """(original params, error kind, [fixed params...]) per refused configuration whose fix a
    rule reads; and the fixes no rule reads."""
    done, unread = [], []
    for entry in golden["frameworks"][fw]:
        try:
            _shape(fw, entry["params"])
            continue
        except tconv.ShapeError as exc:
            kind = exc.kind
            sets = apply(fw, entry["params"], exc)
            if sets is None:
                unread.append(exc.fix)
                continue
        final = []
        for params in sets:
            for _ in range(4):  # one dimension per round
                try:
                    _shape(fw, params)
                    break
                except tconv.ShapeError as exc:
                    again = apply(fw, params, exc) if exc.kind == kind else None
                    if not again:
                        break
                    params = again[0]
            final.append(params)
        done.append((entry["params"], kind, final))
    return done, unread


@pytest.fixture(scope="module")
def golden():
    with gzip.open(GOLDEN, "rt") as f:
        return json.load(f)


@pytest.mark.parametrize("fw", sorted(FUNCS))
def test_shape_fixes_resolve_the_error(golden, fw):
    done, unread = fixed_layers(golden, fw)
    assert done, "no fix applied"
    still = []
    for params, kind, final in done:
        for p in final:
            try:
                _shape(fw, p)
            except tconv.ShapeError as exc:
                if exc.kind == kind:
                    still.append((params, p, str(exc).splitlines()[0]))
    assert not still, f"{len(still)} fixes leave the error: {still[:3]}"
    prose = [f for f in unread if not PROSE.match(f)]
    assert not prose, f"fixes that no rule applies and that are not prose: {prose[:5]}"
