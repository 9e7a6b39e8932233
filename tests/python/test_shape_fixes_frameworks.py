"""The layers fixed as tconv.shapes' fixes say (test_shape_fixes.py), run in the frameworks.

For a sample of the golden file's refused configurations per framework, the fixed arguments
are run by tests/conformance/collect.py's own workers (one process per framework, TensorFlow
without oneDNN as the golden file's tf.nn): the framework must no longer raise the error the
fix addressed, and must do what tconv.shapes says of the fixed layer.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_shape_fixes import GOLDEN, fixed_layers
from test_shapes_conformance import expectation, observe

COLLECT = Path(__file__).resolve().parents[1] / "conformance" / "collect.py"
SAMPLE = 60  # fixed layers per framework
WORKER = {
    "torch": ("torch", "torch"),
    "keras": ("keras", "keras"),
    "tf_nn": ("tf_nn_classic", "tensorflow"),
    "onnx": ("onnx", "onnxruntime"),
    "jax": ("jax", "jax"),
}


def _run_worker(name: str, cfgs: list, tmp: Path) -> list:
    src, dst = tmp / f"{name}.in.json", tmp / f"{name}.out.json"
    src.write_text(json.dumps(cfgs))
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", JAX_PLATFORMS="cpu")
    env.update(
        {
            "tf_nn_classic": {"TF_ENABLE_ONEDNN_OPTS": "0"},
            "keras": {"KERAS_BACKEND": "tensorflow"},
        }.get(name, {})
    )
    res = subprocess.run(
        [sys.executable, str(COLLECT), "--worker", name, "--io", str(src), str(dst)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(dst.read_text())["results"]


@pytest.mark.parametrize("fw", sorted(WORKER))
def test_fixed_layers_run_in_the_framework(fw, tmp_path):
    name, module = WORKER[fw]
    pytest.importorskip(module)
    with gzip.open(GOLDEN, "rt") as f:
        golden = json.load(f)
    done, _ = fixed_layers(golden, fw)
    cases = [(kind, p) for _, kind, final in done for p in final]
    step = max(1, len(cases) // SAMPLE)  # spread over the file: every kind of fix
    cases = cases[::step][:SAMPLE]
    results = _run_worker(name, [p for _, p in cases], tmp_path)
    bad = []
    for (kind, params), res in zip(cases, results):
        entry = {"params": params, **res}
        if fw == "tf_nn":
            entry = {"params": params, "classic": res}
        want = expectation(fw, entry)
        got = observe(fw, params)
        if want[:2] == ("error", kind) or (want != got and want[:2] != ("error", None)):
            bad.append((params, kind, want, got, res.get("error", {}).get("message", "")[:200]))
    assert not bad, f"{len(bad)} of {len(cases)} fixed layers: {bad[:4]}"
