"""doctor on the concatenation errors of a decoder whose up-sampled tensor misses its skip: the
real messages (tests/doctor/concat_messages.json, collected by running the frameworks, and live
runs where a framework is installed), and the advice they print, run."""

from __future__ import annotations

import json
import pathlib
import re
import shlex

import pytest

import tconv
from tconv import cli

DATA = pathlib.Path(__file__).resolve().parents[1] / "doctor" / "concat_messages.json"
RECORDS = json.loads(DATA.read_text())
FAMILY = {"torch": "PyTorch", "keras": "Keras", "tensorflow": "TensorFlow", "jax": "JAX"}


def test_the_collection_covers_every_framework():
    assert {r["framework"].split()[0] for r in RECORDS} == set(FAMILY)


@pytest.mark.parametrize(
    "rec", RECORDS, ids=[f"{r['framework'].split()[0]}-{i}" for i, r in enumerate(RECORDS)]
)
def test_every_collected_concat_message_is_a_skip_mismatch(rec):
    d = tconv.doctor(rec["message"])
    assert d.recognised and d.kind == "skip_mismatch"
    assert d.framework.startswith(FAMILY[rec["framework"].split()[0]])
    a, b = (tuple(s) for s in rec["params"]["shapes"])
    spatial = [ax for ax in range(len(a)) if a[ax] != b[ax]]
    larger = "x".join(str(max(a[ax], b[ax])) for ax in spatial)
    if d.framework == "PyTorch":  # torch names one size pair, not the shapes
        assert (d.numbers["expected"], d.numbers["got"]) == (a[spatial[0]], b[spatial[0]])
        larger = str(max(a[spatial[0]], b[spatial[0]]))
    else:
        assert list(d.numbers["differ"]) == spatial
    assert "skip" in d.cause and "one cell off" in d.cause
    assert f" {larger} --convention" in d.fix and "tconv decoder" in d.fix


def _commands(fix: str) -> list[list[str]]:
    return [shlex.split(c)[1:] for c in re.findall(r"`(tconv [^`]*)`", fix)]


def test_the_decoder_command_of_the_advice_runs(capsys):
    d = tconv.doctor(RECORDS[0]["message"])
    (solve_cmd, decoder_cmd) = _commands(d.fix)
    decoder_cmd[decoder_cmd.index("<input-size>")] = "161x241"
    assert cli.main(decoder_cmd) == 0
    out = capsys.readouterr().out
    assert "80x120 -> 161x241" in out and "output_padding=1" in out
    assert cli.main(solve_cmd) == 0


def test_torch_cat_mismatch_live_and_the_solved_layer_fixes_it(capsys):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    skip = torch.zeros(1, 4, 21, 31)
    x = nn.MaxPool2d(2)(skip)
    with pytest.raises(RuntimeError) as info:
        torch.cat([nn.ConvTranspose2d(4, 4, 2, stride=2)(x), skip], dim=1)
    d = tconv.doctor(str(info.value))
    assert d.kind == "skip_mismatch" and (d.numbers["expected"], d.numbers["got"]) == (20, 21)
    solve_cmd = _commands(d.fix)[0]
    assert solve_cmd[1:3] == ["10", "21"]
    assert cli.main(solve_cmd) == 0
    code = capsys.readouterr().out.splitlines()[1].strip()
    params = eval(code.replace("nn.ConvTranspose1d(in_channels, out_channels,", "dict("))
    up = nn.ConvTranspose2d(4, 4, **params)
    assert torch.cat([up(x), skip], dim=1).shape == (1, 8, 21, 31)


def test_keras_concatenate_mismatch_live_and_the_solved_layer_fixes_it(capsys):
    keras = pytest.importorskip("keras")
    from keras import layers

    skip = keras.Input((21, 31, 4))
    x = layers.MaxPooling2D()(skip)
    with pytest.raises(ValueError) as info:
        layers.Concatenate()([layers.Conv2DTranspose(4, 2, strides=2)(x), skip])
    d = tconv.doctor(str(info.value))
    assert d.kind == "skip_mismatch" and d.numbers["differ"] == (1, 2)
    solve_cmd = _commands(d.fix)[0]
    assert solve_cmd[1:3] == ["10x15", "21x31"]
    assert cli.main(solve_cmd) == 0
    code = capsys.readouterr().out.splitlines()[1].strip().replace("out_channels", "4")
    up = eval(code, {"layers": layers})
    assert layers.Concatenate()([up(x), skip]).shape == (None, 21, 31, 8)
