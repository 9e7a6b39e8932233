"""`tconv port`: the code it prints runs and gives the source's numbers; every row of the
`--to all` table (exact, crop, cannot run) is checked by running that backend."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from _port_cases import importorskip, run, to_layout

import tconv
from tconv import reference
from tconv._port_cli import table
from tconv.cli import main

from conftest import assert_close

HERE = Path(__file__).resolve().parent
KERAS_SAME = ["--filters", "8", "--kernel", "4", "4", "--strides", "2", "--padding", "same"]


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _keras_case(seed=0):
    rng = np.random.default_rng(seed)
    kernel = rng.standard_normal((4, 4, 8, 3)).astype(np.float32)
    bias = rng.standard_normal(8).astype(np.float32)
    x = rng.standard_normal((2, 6, 5, 3)).astype(np.float32)
    want = reference.conv_transpose(x, kernel, bias, 2, "same", data_format="channels_last")
    return kernel, bias, x, want


def test_printed_torch_code_gives_the_keras_numbers(capsys, tmp_path):
    importorskip("torch")
    kernel, bias, x, want = _keras_case()
    path = tmp_path / "layer.npz"
    np.savez(path, kernel=kernel, bias=bias)
    code, out, _ = cli(
        capsys, "port", "keras", "--to", "torch", *KERAS_SAME, "--weights", str(path)
    )
    assert code == 0 and "nn.ConvTranspose2d(in_channels=3, out_channels=8" in out
    ns = {"x": to_layout(x, "keras", "torch"), "kernel": kernel, "bias": bias}
    exec(out, ns)
    assert_close(ns["y"], to_layout(want, "keras", "torch"))


def test_table_and_json(capsys):
    code, out, _ = cli(
        capsys, "port", "keras", "--to", "all", *KERAS_SAME, "--input", "1", "6", "5", "3"
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split() == ["backend", "/", "runtime", "the", "keras", "layer"]
    for fw in ("torch", "keras", "onnx", "tf_nn", "jax"):
        assert any(line.startswith(fw) and line.endswith("exact") for line in lines), out
    assert any("onnx.reference" in line for line in lines)
    code, out, _ = cli(
        capsys, "port", "keras", "--to", "all", *KERAS_SAME, "--input", "1", "6", "5", "3", "--json"
    )
    data = json.loads(out)
    assert data["torch"]["port"]["params"]["padding"] == 1
    assert data["jax"]["port"]["params"]["padding"] == "SAME"
    assert set(data["keras"]["backends"]) == {
        "tensorflow, oneDNN on",
        "tensorflow, oneDNN off",
        "jax",
        "torch",
    }


def test_grouped_layer_table_prints_the_block_diagonal_recipe(capsys):
    importorskip("torch")
    argv = ["--in-channels", "4", "--out-channels", "6", "--kernel", "3", "3", "--stride", "2"]
    code, out, _ = cli(capsys, "port", "torch", "--to", "all", *argv, "--groups", "2")
    assert code == 0
    assert "keras" in out and "cannot port: keras has no grouped transposed convolution" in out
    recipe = out.split("nearest recipe: ")[1].split("\n  # then")[0].split("\n", 1)[1]
    rng = np.random.default_rng(1)
    kernel = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    ns = {"np": np, "kernel": kernel}
    exec("\n".join(line[2:] for line in recipe.splitlines()), ns)
    layer = dict(in_channels=4, out_channels=6, kernel_size=(3, 3), stride=2, bias=False)
    x = rng.standard_normal((1, 4, 5, 5)).astype(np.float32)
    grouped = run("torch", dict(layer, groups=2), (kernel, None), x)
    dense = run("torch", layer, (ns["dense"], None), x)
    assert_close(dense, grouped)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["port", "caffe", "--to", "torch"], "invalid choice"),
        (["port", "keras", "--filters", "2", "--kernel", "3"], "--to"),
        (["port", "keras", "--to", "mxnet", "--filters", "2", "--kernel", "3"], "invalid choice"),
    ],
)
def test_bad_usage_exits_2(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_bad_layers_and_files_exit_1(capsys, tmp_path):
    path = tmp_path / "w.npz"
    np.savez(path, weights=np.zeros(3))
    code, _, err = cli(
        capsys, "port", "keras", "--to", "torch", *KERAS_SAME, "--weights", str(path)
    )
    assert code == 1 and "expected an array 'kernel'" in err
    code, _, err = cli(capsys, "port", "keras", "--to", "torch", "--filters", "2", "--kernel", "3")
    assert code == 1 and "spatial rank is unknown" in err
    code, _, err = cli(
        capsys, "port", "keras", "--to", "torch", *KERAS_SAME, "--weights", str(tmp_path / "no.npz")
    )
    assert code == 1 and "cannot read" in err


# ---- every row of the table, run in its backend --------------------------------------------------

# The environments the rows need: (environment variables, rows run there).
ENVIRONMENTS = {
    "onednn_on": ({"TF_ENABLE_ONEDNN_OPTS": "1"}, {"tensorflow, oneDNN on", "CPU, oneDNN on"}),
    "onednn_off": ({"TF_ENABLE_ONEDNN_OPTS": "0"}, {"tensorflow, oneDNN off", "CPU, oneDNN off"}),
    "keras_jax": ({"KERAS_BACKEND": "jax"}, {"jax"}),
    "keras_torch": ({"KERAS_BACKEND": "torch"}, {"torch"}),
}
_RUNNER = """
import pickle, sys
sys.path[:0] = sys.argv[3:]
from _port_cases import run
cases = pickle.load(open(sys.argv[1], "rb"))
out = []
for target, p, x, want in cases:
    try:
        y = p.finish(run(target, p.params, p.weights, x))
        out.append(("ran", float(abs(y - want).max()) if y.shape == want.shape else float("inf")))
    except Exception as exc:
        out.append(("raised", str(exc)[:300]))
pickle.dump(out, open(sys.argv[2], "wb"))
"""


def _layers():
    """Layers whose tables hold every kind of row: exact, crop, cannot run."""
    rng = np.random.default_rng(21)

    def torch_layer(**kw):
        layer = dict(in_channels=2, out_channels=3, bias=True, **kw)
        k = layer["kernel_size"]
        kernel = rng.standard_normal((2, 3 // kw.get("groups", 1), *k)).astype(np.float32)
        x = rng.standard_normal((1, 2, *[4] * len(k))).astype(np.float32)
        return "torch", layer, (kernel, rng.standard_normal(3).astype(np.float32)), x

    return [
        torch_layer(kernel_size=(3, 3), stride=2, padding=1, output_padding=1),
        torch_layer(kernel_size=(3, 2), stride=1, padding=(2, 1), dilation=2),
        torch_layer(kernel_size=(4,), stride=3, padding=2),
    ]


def _cases():
    """Per environment, the ports to run there: (row, target, port, x, want, claim)."""
    per_env: dict[str, list] = {env: [] for env in ENVIRONMENTS}
    for source, layer, weights, x in _layers():
        want = run(source, layer, weights, x)
        ports = tconv.port(layer, weights, source=source, target="all", input_shape=x.shape)
        for fw, backend, status in table(ports):
            for env, (_, rows) in ENVIRONMENTS.items():
                if fw in ("keras", "tf_nn") and backend in rows:
                    p = ports[fw]
                    case = (fw, p, to_layout(x, source, fw), to_layout(want, source, fw))
                    per_env[env].append((f"{layer} {fw} {backend}: {status}", case, status))
    return per_env


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_table_rows_are_true_in_their_backend(env, tmp_path):
    importorskip("torch", "keras", "tf_nn")
    if env == "keras_jax":
        importorskip("jax")
    cases = _cases()[env]
    assert cases
    src, dst = tmp_path / "cases.pkl", tmp_path / "out.pkl"
    src.write_bytes(pickle.dumps([c for _, c, _ in cases]))
    variables = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", **ENVIRONMENTS[env][0])
    paths = [str(HERE), str(Path(tconv.__file__).parent.parent)]
    subprocess.run(
        [sys.executable, "-c", _RUNNER, str(src), str(dst), *paths],
        env=variables,
        check=True,
        timeout=600,
        capture_output=True,
    )
    results = pickle.loads(dst.read_bytes())
    kinds = set()
    for (label, _, status), (what, detail) in zip(cases, results):
        if status.startswith("cannot run"):
            assert what == "raised", f"{label}: claimed to be refused, but it ran"
        else:
            assert what == "ran", f"{label}: claimed to run, but it raised {detail}"
            assert detail < 1e-4, f"{label}: max difference {detail}"
        kinds.add(status.split(":")[0].split(" [")[0])
    if env == "onednn_off":
        assert "cannot run" in kinds  # dilation on TensorFlow's plain CPU kernels
