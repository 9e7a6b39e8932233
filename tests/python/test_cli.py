"""The command line, in-process (main([...]) with capsys) and once through `python -m tconv`.

Expected shapes are the frameworks' formulas written out, as in test_explain.py."""

import json
import subprocess
import sys

import pytest

from tconv import cli


def run(argv, capsys, stdin=None, monkeypatch=None):
    if stdin is not None:
        import io

        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


TORCH = [
    "shape",
    "torch",
    "--input",
    "1",
    "16",
    "5",
    "5",
    "--in-channels",
    "16",
    "--out-channels",
    "8",
    "--kernel",
    "3",
    "--stride",
    "2",
    "--padding",
    "1",
    "--output-padding",
    "1",
]
KERAS = [
    "shape",
    "keras",
    "--input",
    "None",
    "5",
    "5",
    "16",
    "--filters",
    "3",
    "--kernel",
    "3",
    "--strides",
    "2",
    "--padding",
    "same",
    "--output-padding",
    "1",
]


# ---- shape ---------------------------------------------------------------------------------


def test_shape_torch(capsys):
    status, out, err = run(TORCH, capsys)
    want = (5 - 1) * 2 - 2 * 1 + (3 - 1) + 1 + 1
    assert status == 0 and f"output (1, 8, {want}, {want})" in out and not err


def test_shape_keras_json(capsys):
    status, out, _ = run(KERAS + ["--json"], capsys)
    doc = json.loads(out)
    want = (5 - 1) * 2 + 3 - 2 * (3 // 2) + 1
    assert status == 0 and doc["output_shape"] == [None, want, want, 3]


@pytest.mark.parametrize(
    "argv, want",
    [
        (
            [
                "shape",
                "onnx",
                "--input",
                "1",
                "3",
                "5",
                "--weight",
                "3",
                "2",
                "4",
                "--strides",
                "2",
                "--pads",
                "1",
                "2",
            ],
            "(1, 2, 9)",
        ),  # 2*(5-1) + 4 - 1 - 2
        (
            [
                "shape",
                "jax",
                "--input",
                "5",
                "5",
                "--kernel",
                "3",
                "--strides",
                "2",
                "--padding",
                "1,2",
                "0,1",
            ],
            "(10, 8)",
        ),  # 9 + 1 + 2 - 3 + 1, 9 + 0 + 1 - 3 + 1
        (
            [
                "shape",
                "tf_nn",
                "--input",
                "5",
                "--kernel",
                "3",
                "--strides",
                "2",
                "--output-shape",
                "10",
            ],
            "(10,)",
        ),  # ceil(10 / 2) == 5
        (
            [
                "shape",
                "keras",
                "--input",
                "6",
                "6",
                "--kernel",
                "3",
                "--strides",
                "2",
                "--padding",
                "same",
                "--output-padding",
                "0",
            ],
            "(11, 11)",
        ),  # (6-1)*2 + 3 - 2 + 0
    ],
)
def test_shape_other_frameworks(argv, want, capsys):
    status, out, _ = run(argv, capsys)
    assert status == 0 and f"output {want}" in out


def test_shape_jax_one_rhs_dilation_for_every_dim(capsys):
    argv = ["shape", "jax", "--input", "8", "8", "--kernel", "3", "3", "--strides", "2", "1"]
    argv += ["--rhs-dilation", "2", "--padding", "1,1", "0,2"]
    status, out, err = run(argv, capsys)
    assert status == 0, err
    assert "rhs_dilation=(2, 2)" in out
    # dilated kernel 5: (8-1)*2 + 1 + 1+1 - 5 + 1 = 13 and (8-1)*1 + 1 + 0+2 - 5 + 1 = 6
    assert "output (13, 6)" in out


def test_shape_error_exit_1_with_explanation_on_stderr(capsys):
    argv = KERAS[:-1] + ["2"]
    status, out, err = run(argv, capsys)
    assert status == 1 and not out
    assert "strictly less than `strides`" in err and "fix: use output_padding in [0, 1]" in err
    status, out, err = run(argv + ["--json"], capsys)
    assert status == 1 and json.loads(out)["error"]["kind"] == "output_padding" and err


def test_shape_rank_error_names_the_reshape(capsys):
    status, _, err = run(
        [
            "shape",
            "keras",
            "--input",
            "None",
            "100",
            "--filters",
            "3",
            "--kernel",
            "3",
            "--strides",
            "2",
            "--padding",
            "same",
            "--dims",
            "2",
        ],
        capsys,
    )
    assert status == 1 and "Reshape((5, 5, 4))" in err


@pytest.mark.parametrize(
    "argv, words",
    [
        (
            ["shape", "torch", "--input", "5", "--kernel", "3", "--stride", "abc"],
            ["--stride", "invalid int value"],
        ),
        (["shape", "torch", "--input", "5", "--kernel", "-3"], ["kernel_size must be >= 1"]),
        (["shape", "torch", "--input", "5", "--kernel", "0"], ["kernel_size must be >= 1"]),
        (
            ["shape", "torch", "--input", "5", "--kernel", "3", "--stride", "2**70"],
            ["invalid int value"],
        ),
        (
            ["shape", "torch", "--input", "5", "--kernel", "3", "--stride", str(2**70)],
            ["out of range"],
        ),
        (["shape", "caffe", "--input", "5"], ["invalid choice"]),
        (["shape", "torch", "--kernel", "3"], ["--input"]),
        (["shape", "torch", "--input", "5"], ["--kernel"]),
        (["shape"], ["framework"]),
        (["shape", "keras", "--input", "5", "--kernel", "3", "--padding", "full"], ["--padding"]),
        (["shape", "tf_nn", "--input", "5", "--kernel", "3", "--strides", "2"], ["--output-shape"]),
        (
            ["shape", "jax", "--input", "5", "--kernel", "3", "--strides", "2", "--padding", "1,x"],
            ["lo,hi"],
        ),
        (
            ["shape", "torch", "--input", "5", "--kernel", "3", "--padding", "-1"],
            ["padding must be >= 0"],
        ),
    ],
)
def test_shape_bad_usage_exit_2(argv, words, capsys):
    status, _, err = run(argv, capsys)
    assert status == 2 and "usage:" in err and "Traceback" not in err
    for w in words:
        assert w in err, err


# ---- solve -----------------------------------------------------------------------------------


def keras_len(i, k, s, padding, op):
    if op is None:
        return i * s if padding == "same" else i * s + max(k - s, 0)
    return (i - 1) * s + k - 2 * (k // 2 if padding == "same" else 0) + op


def test_solve_lists_layers_that_reach_the_target(capsys):
    status, out, _ = run(["solve", "5", "11", "--convention", "keras", "--stride", "2"], capsys)
    assert status == 0 and "layers.Conv1DTranspose(" in out
    status, out, _ = run(
        ["solve", "5", "11", "--convention", "keras", "--stride", "2", "--json"], capsys
    )
    doc = json.loads(out)
    assert doc["count"] >= 1
    for sol in doc["solutions"]:
        p = sol["params"]
        assert keras_len(5, p["kernel_size"], 2, p["padding"], p["output_padding"]) == 11


def test_solve_2d_sizes_and_nothing_found(capsys):
    status, out, _ = run(["solve", "5x5", "10x10", "--kernel", "3", "--stride", "2"], capsys)
    assert status == 0 and "nn.ConvTranspose2d(" in out
    status, out, err = run(["solve", "5", "40", "--kernel", "3", "--stride", "2"], capsys)
    assert status == 1 and not out and "no torch layer maps 5 to 40" in err and "stride" in err


@pytest.mark.parametrize(
    "argv",
    [
        ["solve", "5"],
        ["solve", "5", "abc"],
        ["solve", "0", "5"],
        ["solve", "5", "11", "--convention", "caffe"],
        ["solve", "5", "11", "--stride", "2**70"],
        ["solve", "5", "11", "--kernel", "-1"],
        ["solve", "5x5", "11", "--kernel", "3x3x3"],
    ],
)
def test_solve_bad_usage(argv, capsys):
    status, _, err = run(argv, capsys)
    assert status == 2 and "usage:" in err


# ---- mirror ----------------------------------------------------------------------------------


def test_mirror_restores_the_size(capsys):
    status, out, _ = run(
        ["mirror", "28", "--kernel", "3", "--stride", "2", "--padding", "1", "--json"], capsys
    )
    doc = json.loads(out)
    fwd = (28 + 2 * 1 - 3) // 2 + 1
    p = doc["params"]
    assert status == 0 and doc["forward_output"] == [fwd]
    assert (fwd - 1) * 2 - 2 * p["padding"] + (3 - 1) + p["output_padding"] + 1 == 28
    status, out, _ = run(
        ["mirror", "28", "--kernel", "3", "--stride", "2", "--padding", "1"], capsys
    )
    assert status == 0 and "padding=1, output_padding=1" in out
    status, out, _ = run(
        [
            "mirror",
            "7",
            "--kernel",
            "4",
            "--stride",
            "2",
            "--padding",
            "same",
            "--convention",
            "keras",
        ],
        capsys,
    )
    assert status == 0 and "padding='same'" in out


def test_mirror_errors(capsys):
    status, _, err = run(["mirror", "2", "--kernel", "7"], capsys)
    assert status == 1 and "no output" in err
    for argv in (
        ["mirror", "28"],
        ["mirror", "28", "--kernel", "3", "--padding", "wide"],
        ["mirror", "28", "--kernel", "3", "--stride", "0"],
        ["mirror", "28", "--kernel", "3", "--padding", "same"],
    ):
        status, _, err = run(argv, capsys)
        assert status == 2 and "usage:" in err, argv


# ---- explain -------------------------------------------------------------------------------


def test_explain(capsys):
    status, out, _ = run(
        [
            "explain",
            "keras",
            "--input",
            "5",
            "--kernel",
            "3",
            "--strides",
            "2",
            "--padding",
            "same",
            "--output-padding",
            "1",
        ],
        capsys,
    )
    assert status == 0
    assert "(5 - 1)*2 + 3 - 2*(3 // 2) + 1 = 10" in out and "Picture (length" in out
    status, out, _ = run(
        ["explain", "torch", "--input", "5", "--kernel", "3", "--stride", "2", "--json"], capsys
    )
    doc = json.loads(out)
    assert doc["dims"][0]["output"] == (5 - 1) * 2 + 3 and "Picture" in doc["text"]


def test_explain_error_and_usage(capsys):
    status, out, err = run(
        [
            "explain",
            "tf_nn",
            "--input",
            "5",
            "--kernel",
            "3",
            "--strides",
            "2",
            "--output-shape",
            "12",
        ],
        capsys,
    )
    assert status == 1 and not out and "fix: use an output size in 9..10" in err
    status, _, err = run(["explain", "torch", "--input", "5"], capsys)
    assert status == 2 and "usage:" in err
    status, _, err = run(["explain", "onnx", "--input", "5"], capsys)
    assert status == 2 and "needs weight_shape" in err


# ---- doctor --------------------------------------------------------------------------------

RANK = (
    'Input 0 of layer "conv2d_transpose" is incompatible with the layer: expected '
    "min_ndim=4, found ndim=2. Full shape received: (None, 100)"
)


def test_doctor(capsys, monkeypatch):
    status, out, _ = run(["doctor", RANK], capsys)
    assert status == 0 and "Reshape((5, 5, 4))" in out
    status, out, _ = run(
        ["doctor", "-"], capsys, stdin="Traceback ...\nValueError: " + RANK, monkeypatch=monkeypatch
    )
    assert status == 0 and "rank" in out
    status, out, _ = run(["doctor", "--json", RANK], capsys)
    assert status == 0 and json.loads(out)["numbers"]["found_ndim"] == 2
    status, out, err = run(["doctor", "something", "else"], capsys)
    assert status == 1 and not out and "not recognised" in err
    status, _, err = run(["doctor", ""], capsys)
    assert status == 2 and "empty" in err


# ---- through a real process -------------------------------------------------------------------


def test_python_dash_m():
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tconv",
            "explain",
            "torch",
            "--input",
            "5",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "output (9,)" in proc.stdout
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tconv",
            "shape",
            "torch",
            "--input",
            "1",
            "3",
            "5",
            "--in-channels",
            "4",
            "--out-channels",
            "2",
            "--kernel",
            "3",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "use in_channels=3" in proc.stderr


def test_solve_and_mirror_jax_use_consistent_padding(capsys):
    status, out, _ = run(
        [
            "solve",
            "5",
            "10",
            "--convention",
            "jax",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--use-consistent-padding",
            "--limit",
            "0",
        ],
        capsys,
    )
    # PyTorch's padding=1, output_padding=1 is the forward padding (1, 1 - 1)
    assert status == 0 and "padding=((1, 0),), use_consistent_padding=True)" in out
    status, out, _ = run(
        [
            "mirror",
            "10",
            "--kernel",
            "3",
            "--stride",
            "2",
            "--padding",
            "1,1",
            "--convention",
            "jax",
            "--use-consistent-padding",
        ],
        capsys,
    )
    assert status == 0 and "padding=((1, 0),), use_consistent_padding=True)" in out
    status, _, err = run(["solve", "5", "10", "--use-consistent-padding"], capsys)
    assert status == 2 and "argument of JAX's lax.conv_transpose" in err
