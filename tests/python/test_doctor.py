"""doctor: every real framework message in tests/doctor/messages.json is recognised."""

import json
import pathlib

import pytest

import tconv

DATA = pathlib.Path(__file__).resolve().parents[1] / "doctor" / "messages.json"
RECORDS = json.loads(DATA.read_text())

# The collected kind is what the collection script provoked; the oneDNN kernels of TensorFlow
# report several causes with one opaque message, which doctor must call by that name.
SAME_KIND = {"output_size_length": "output_size", "unequal_dilation": "dilation"}
FAMILY = {
    "torch": "PyTorch",
    "keras": "Keras 3",
    "tf_keras": "Keras 2",
    "tensorflow": "TensorFlow",
    "onnxruntime": "ONNX Runtime",
    "jax": "JAX",
}


@pytest.mark.parametrize(
    "rec",
    RECORDS,
    ids=[f"{r['framework'].split()[0]}-{r['kind']}-{i}" for i, r in enumerate(RECORDS)],
)
def test_every_collected_message_is_recognised(rec):
    d = tconv.doctor(rec["message"])
    assert d.recognised
    fam = FAMILY[rec["framework"].split()[0]]
    if fam == "TensorFlow" or "onednn" in d.kind:
        assert "TensorFlow" in d.framework or fam in d.framework
    elif fam.startswith("Keras") and d.framework == "Keras":
        # the same text in both versions: doctor must not guess
        others = [r for r in RECORDS if r["message"] == rec["message"]]
        assert {r["framework"].split()[0] for r in others} == {"keras", "tf_keras"}
    else:
        assert d.framework.startswith(fam)
    if "could not create a primitive descriptor" in rec["message"]:
        assert d.kind == "onednn_refused" and "TF_ENABLE_ONEDNN_OPTS=0" in d.fix
    elif rec["kind"] == "rank" and rec["framework"].startswith("jax"):
        assert d.kind == "padding"  # JAX reports a rank mismatch as the pads' count
    else:
        assert d.kind == SAME_KIND.get(rec["kind"], rec["kind"])
    assert len(d.fix) > 20 and d.cause
    assert str(d).startswith(d.framework)


def test_numbers_and_fixes():
    d = tconv.doctor(
        'Input 0 of layer "conv2d_transpose" is incompatible with the layer: '
        "expected min_ndim=4, found ndim=2. Full shape received: (None, 100)"
    )
    assert d.framework == "Keras 2 (tf.keras)" and d.kind == "rank"
    assert d.numbers["found_ndim"] == 2 and d.numbers["shape"] == (None, 100)
    assert "Reshape((5, 5, 4))" in d.fix and "h*w*c = 100" in d.fix
    tf = tconv.doctor(
        "Conv2DCustomBackpropInput: Size of out_backprop doesn't match computed: "
        "actual = 18, computed = 15 spatial_dim: 1 input: 32 filter: 4 output: "
        "18 stride: 2 dilation: 1"
    )
    assert tf.numbers["requested_output"] == 32 and tf.numbers["actual"] == 18
    assert "35..36 with padding='SAME'" in tf.fix
    pt = tconv.doctor(
        "requested an output size of [11, 11], but valid sizes range from [9, 9] "
        "to [10, 10] (for an input of torch.Size([5, 5]))"
    )
    assert "nn.ConvTranspose2d" in pt.fix and "map (5, 5) to (11, 11)" in pt.fix
    op = tconv.doctor(
        "output padding must be smaller than either stride or dilation, but got "
        "output_padding_height: 2 output_padding_width: 2 stride_height: 2 "
        "stride_width: 2 dilation_height: 1 dilation_width: 1"
    )
    assert op.numbers["output_padding"] == (2, 2)
    assert "padding=padding - 1 with output_padding=0" in op.fix
    assert op.options[0] == {"padding_less": (1, 1), "output_padding": (0, 0)}
    ort = tconv.doctor(
        "Explicit output_shape is inconsistent with input spatial dimensions "
        "and convolution parameters. Expected input size 9 but got 5 "
        "(output_size=20, kernel=3, stride=2, dilation=1, output_padding=0)."
    )
    assert ort.numbers["expected_input"] == 9 and "for an input of 5" in ort.fix


def test_unrecognised_is_honest():
    d = tconv.doctor("CUDA out of memory. Tried to allocate 2.00 GiB")
    assert not d.recognised and d.framework is None
    assert str(d).startswith("not recognised") and "CUDA out of memory" in d.cause
    assert not tconv.doctor("").recognised
    with pytest.raises(TypeError, match=r"pass str\(exc\)"):
        tconv.doctor(ValueError("x"))
