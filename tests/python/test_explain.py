"""explain: the derivation carries the right numbers, the picture the right cells.

Expected lengths and crop windows are written out here from the frameworks' own definitions
(PyTorch's docs, Keras' deconv_output_length, the ONNX operator text, TensorFlow's SAME padding,
lax.conv_transpose), independently of tconv.
"""

import json
import math
import pathlib
import re

import pytest

import tconv

ROOT = pathlib.Path(__file__).resolve().parents[2]


# ---- the frameworks' formulas, written out -------------------------------------------------------


def torch_len(i, k, s, p, op, d=1):
    return (i - 1) * s - 2 * p + d * (k - 1) + op + 1


def keras_len(i, k, s, padding, op, d=1):
    k = k + (k - 1) * (d - 1)
    if op is None:
        return i * s if padding == "same" else i * s + max(k - s, 0)
    pad = k // 2 if padding == "same" else 0
    return (i - 1) * s + k - 2 * pad + op


def full_len(i, k, s, d=1):
    """Uncropped length: the last input lands at (i-1)*s, its kernel spans d*(k-1)+1."""
    return (i - 1) * s + d * (k - 1) + 1


def tf_same_pads(out, k, s, d=1):
    """TensorFlow's forward SAME padding of a length `out` (before, after)."""
    k = d * (k - 1) + 1
    total = max((math.ceil(out / s) - 1) * s + k - out, 0)
    return total // 2, total - total // 2


# ---- picture parsing -------------------------------------------------------------------------


def picture(text):
    lines = text.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("Picture ("))
    rows = {}
    for line in lines[start + 1 :]:
        if line.startswith("o input cell"):
            break
        rows.setdefault(line[:18].strip(), line[18:])
    return rows


def row(rows, prefix):
    return next(v for k, v in rows.items() if k.startswith(prefix))


def cells(line, ch):
    return [n for n, c in enumerate(line) if c == ch]


# ---- derivations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "i, k, s, p, op, d",
    [
        (5, 3, 2, 1, 1, 1),
        (6, 4, 2, 1, 0, 1),
        (7, 3, 1, 2, 0, 2),
        (4, 5, 3, 0, 2, 1),
        (9, 2, 3, 0, 0, 1),
    ],
)
def test_torch_derivation_and_picture(i, k, s, p, op, d):
    text = tconv.explain(
        "torch",
        (1, 4, i, i),
        in_channels=4,
        out_channels=2,
        kernel_size=k,
        stride=s,
        padding=p,
        output_padding=op,
        dilation=d,
    )
    want = torch_len(i, k, s, p, op, d)
    assert f"->  output (1, 2, {want}, {want})" in text
    assert f"({i} - 1)*{s} - 2*{p} + {d}*({k} - 1) + {op} + 1 = {want}" in text
    full = full_len(i, k, s, d)
    assert (
        f"the full result has {full - (d * (k - 1) + 1)} + {d * (k - 1) + 1} = {full} cells" in text
    )
    rows = picture(text)
    assert len(cells(row(rows, "input"), "o")) == i
    assert len(row(rows, "output ").replace(" ", "")) == want
    out = row(rows, "output ")
    assert out.index(out.strip()[0]) == p  # the output starts after the p cropped cells
    if p:
        crop = cells(row(rows, "crop"), "x")
        assert crop == [*range(p), *range(full - p, full)]
    if op:
        assert cells(row(rows, "output_padding"), "+") == list(range(full - p, full - p + op))
        assert f"output_padding adds {op} cell" in text


@pytest.mark.parametrize(
    "i, k, s, padding, op",
    [
        (6, 3, 2, "same", None),
        (6, 3, 2, "same", 0),
        (5, 3, 2, "same", 1),
        (5, 4, 2, "same", None),
        (5, 5, 2, "same", None),
        (4, 3, 2, "valid", None),
        (4, 2, 3, "valid", 1),
        (3, 5, 1, "same", 0),
    ],
)
def test_keras_derivation_and_crop_side(i, k, s, padding, op):
    text = tconv.explain(
        "keras",
        (None, i, i, 8),
        filters=3,
        kernel_size=k,
        strides=s,
        padding=padding,
        output_padding=op,
    )
    want = keras_len(i, k, s, padding, op)
    assert f"->  output (None, {want}, {want}, 3)" in text
    assert re.search(rf"height, width: .* = {want}\n", text)
    rows = picture(text)
    assert len(row(rows, "output ").replace(" ", "")) == want
    full = full_len(i, k, s)
    if padding == "same" and op is None:
        # Keras on TensorFlow: the transposed layer crops what TF's forward SAME conv of the
        # output pads, so the odd cell is cropped at the end
        lo, hi = tf_same_pads(want, k, s)
        assert lo + hi == full - want
        crop = cells(row(rows, "crop"), "x") if lo + hi else []
        assert crop == [*range(lo), *range(full - hi, full)]
        assert f"output: positions {lo}..{lo + want - 1} = {want} cells" in text


def test_keras_none_and_zero_are_named_as_different_rules():
    # the classic article's second case: output_padding=(0, 0) on 6x6 gives 11x11, None 12x12
    text = tconv.explain(
        "keras",
        (None, 6, 6, 16),
        filters=3,
        kernel_size=3,
        strides=2,
        padding="same",
        output_padding=(0, 0),
    )
    assert "output (None, 11, 11, 3)" in text
    assert "(6 - 1)*2 + 3 - 2*(3 // 2) + 0 = 11" in text
    assert "with output_padding=None instead it would be 12" in text
    # the translation: crop 1 on both sides is PyTorch's padding=1
    assert "nn.ConvTranspose2d(16, 3, kernel_size=3, stride=2, padding=1)" in text


def test_onnx_explicit_and_same():
    i, k, s, b, e, op = 5, 4, 2, 1, 2, 1
    text = tconv.explain(
        "onnx", (1, 3, i), weight_shape=(3, 2, k), strides=[s], pads=[b, e], output_padding=[op]
    )
    want = s * (i - 1) + op + ((k - 1) * 1 + 1) - b - e
    assert f"output (1, 2, {want})" in text
    assert f"{s}*({i} - 1) + {op} + (({k} - 1)*1 + 1) - {b} - {e} = {want}" in text
    rows = picture(text)
    assert cells(row(rows, "crop"), "x") == [0, *range(full_len(i, k, s) - e, full_len(i, k, s))]
    # SAME_LOWER: output = input * stride, odd crop cell at the start
    text = tconv.explain("onnx", (7,), kernel_shape=4, strides=2, auto_pad="SAME_LOWER")
    total = full_len(7, 4, 2) - 14
    lo = total - total // 2
    assert "output (14,)" in text and f"pads (begin, end) = ({lo}, {total - lo})" in text


def test_tf_nn_accepted_and_refused_sizes():
    text = tconv.explain(
        "tf_nn", (5, 5), kernel_size=3, strides=2, output_shape=(9, 10), padding="SAME"
    )
    assert "ceil(9 / 2) = 5 == 5" in text and "ceil(10 / 2) = 5 == 5" in text
    assert "output (9, 10)" in text
    lo, hi = tf_same_pads(9, 3, 2)
    assert f"crop {lo} + {hi}" in text  # height is drawn: 9 of 11 cells
    bad = tconv.explain(
        "tf_nn", (5, 5), kernel_size=3, strides=2, output_shape=(11, 10), padding="SAME"
    )
    assert "Size of out_backprop doesn't match computed" in bad
    assert "fix: use an output size in 9..10" in bad


def test_jax_padding_and_dilation():
    i, k, s, d = 5, 3, 3, 2
    b, a = -1, 4
    text = tconv.explain(
        "jax", (i,), kernel_size=k, strides=(s,), padding=((b, a),), rhs_dilation=(d,)
    )
    spread = (i - 1) * s + 1
    keff = d * (k - 1) + 1
    want = spread + b + a - keff + 1
    assert f"output ({want},)" in text
    assert f"{spread} + {b} + {a} - {keff} + 1 = {want}" in text
    rows = picture(text)
    assert row(rows, "kernel of x[0]").rstrip() == "#-#-#"
    # lax 'SAME': output = input * stride
    same = tconv.explain("jax", (None, 6, 4), rhs_shape=(4, 4, 2), strides=(2,), padding="SAME")
    assert "output (None, 12, 2)" in same


def test_kernel_shorter_than_stride_shows_the_holes():
    text = tconv.explain("torch", (4,), kernel_size=2, stride=3)
    rows = picture(text)
    reach = row(rows, "inputs reaching")
    # cells 2, 5, 8 get no input: the kernel (2) is shorter than the stride (3)
    assert cells(reach, "0") == [2, 5, 8]
    assert "1 of every 3 cells" in text


def test_long_dims_are_elided_and_fit_100_columns():
    text = tconv.explain("torch", (300,), kernel_size=4, stride=2, padding=1)
    want = torch_len(300, 4, 2, 1, 0)
    assert f"output ({want},)" in text
    pic = text[text.index("Picture (") : text.index("The same layer")]
    assert all(len(line) <= 100 for line in pic.splitlines())
    assert "~~~" in pic
    # the cropped cells at both ends stay visible
    rows = picture(text)
    crop = row(rows, "crop")
    assert crop.startswith("x ") and crop.rstrip().endswith(" x")


def test_translation_refusal_is_explained():
    # PyTorch's padding=1, output_padding=1 crops the start; Keras' 'same' crops the end
    text = tconv.explain("torch", (5,), kernel_size=3, stride=2, padding=1, output_padding=1)
    assert re.search(r"keras: +no equivalent layer", text)
    assert re.search(r"onnx: +.*pads=\[1, 0\]", text)


# ---- errors and backend notes ------------------------------------------------------------------


def test_errors_quote_the_framework_and_name_the_fix():
    op = tconv.explain(
        "keras",
        (None, 5, 5, 3),
        filters=2,
        kernel_size=3,
        strides=2,
        padding="same",
        output_padding=2,
    )
    assert "`output_padding` must be strictly less than `strides`" in op
    assert "fix: use output_padding in [0, 1]" in op
    rank = tconv.explain(
        "keras", (None, 100), filters=3, kernel_size=3, strides=2, padding="same", dims=2
    )
    assert "expected min_ndim=4, found ndim=2" in rank and "Reshape((5, 5, 4))" in rank
    small = tconv.explain(
        "torch", (1, 1, 2), in_channels=1, out_channels=1, kernel_size=2, padding=2
    )
    assert "Output size is too small" in small and "fix: use padding <= 1" in small
    ch = tconv.explain("torch", (1, 3, 5, 5), in_channels=4, out_channels=2, kernel_size=3)
    assert "fix: use in_channels=3" in ch


def test_backend_refusal_is_said():
    # Keras reports 14 (output_padding=0, kernel 4, stride 3, 'same'), TF's kernels refuse it
    text = tconv.explain("keras", (5,), kernel_size=4, strides=3, padding="same", output_padding=0)
    assert "Note: Keras reports" in text and "refuses to run it" in text
    assert "The JAX and torch backends run it" in text


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="convention must be one of"):
        tconv.explain("caffe", (5,), kernel_size=3)
    with pytest.raises(TypeError, match="unknown argument"):
        tconv.explain("torch", (5,), kernel_size=3, strides=2)
    with pytest.raises(TypeError, match="needs kernel_size"):
        tconv.explain("keras", (5,), strides=2)
    with pytest.raises(TypeError, match="needs output_shape"):
        tconv.explain("tf_nn", (5,), kernel_size=3, strides=2)
    # dims out of range, with an input too short for any channel axis
    for convention in ("torch", "keras"):
        for dims in (-1, 0):
            with pytest.raises(ValueError, match=f"from 1 to 62; got dims={dims}"):
                tconv.explain(convention, (), dims=dims, kernel_size=0)
    with pytest.raises(TypeError, match="dims must be an int"):
        tconv.explain("torch", (5,), dims=1.5, kernel_size=3)


# ---- doctor against the conformance run's messages (when that data is present) -------------------

CONFORMANCE = ROOT / "tests" / "conformance" / "error_messages.json"


@pytest.mark.skipif(
    not CONFORMANCE.exists(), reason="tests/conformance/error_messages.json is not in this checkout"
)
def test_doctor_recognises_the_conformance_messages():
    records = json.loads(CONFORMANCE.read_text())
    # JAX raises some rank errors as a bare AssertionError with no text: nothing to recognise
    records = [r for r in records if r["message"].strip()]
    assert len(records) > 100
    missed = [r["message"][:120] for r in records if not tconv.doctor(r["message"]).recognised]
    assert not missed, f"{len(missed)} of {len(records)} not recognised, e.g. {missed[:3]}"
    for r in records:
        d = tconv.doctor(r["message"])
        assert len(d.fix) > 20, r["message"]


def test_jax_negative_pads_that_remove_a_whole_dim_are_explained():
    # JAX 0.10 gives (1, 2, 0, 0, 1) for this layer: pads (-3, 0) and (6, -6) leave nothing.
    layer = dict(
        rhs_shape=[6, 1, 6, 1, 3],
        strides=[2, 1, 1],
        transpose_kernel=True,
        padding=[[5, 1], [-3, 0], [6, -6]],
    )
    assert tconv.shapes.jax([1, 1, 3, 2, 3], **layer) == (1, 2, 0, 0, 1)
    text = tconv.explain("jax", [1, 1, 3, 2, 3], **layer)
    assert "output (1, 2, 0, 0, 1)" in text
    assert "cropping 3 + 0 leaves none: 0 cells" in text


def test_jax_rhs_dilation_of_the_wrong_length_is_refused_as_jax_does():
    # JAX 0.10: TypeError "Wrong number of explicit pads for convolution: expected 3, got 2."
    with pytest.raises(tconv.ShapeError, match="expected 3, got 2"):
        tconv.shapes.jax(
            [1, 5, 4, 8, 1],
            rhs_shape=[5, 5, 6, 1, 1],
            strides=[3, 2, 1],
            padding="SAME",
            rhs_dilation=(2, 2),
        )
