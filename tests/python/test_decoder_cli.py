"""`tconv decoder`: the stage table, the JSON, the exit codes, the layer syntax, and the
decoder code it prints, run in torch."""

from __future__ import annotations

import json

import pytest

import tconv
from tconv import cli

UNET = "4*(conv:k=3,p=1 conv:k=3,p=1 maxpool:k=2)"
UNET_ARGS = ["decoder", "torch", "--input", "161x241", "--encoder", UNET, "--up", "k=2,s=2"]


def test_table_lists_every_stage_and_the_nearest_clean_inputs(capsys):
    assert cli.main(UNET_ARGS) == 0
    out = capsys.readouterr().out
    table = out[out.index("\nstage ") + 1 : out.index("nearest")].splitlines()
    rows = [line.split("  ") for line in table[1:] if line.strip()]
    rows = [[c.strip() for c in r if c.strip()] for r in rows]
    assert rows[0] == [
        "0",
        "2*conv(kernel_size=3, padding=1)",
        "161x241",
        "4",
        "kernel_size=2, stride=2, output_padding=1",
        "161x241",
    ]
    for stage, size in ((1, "80x120"), (2, "40x60"), (3, "20x30")):
        assert rows[stage] == [
            str(stage),
            "maxpool(kernel_size=2) 2*conv(kernel_size=3, padding=1)",
            size,
            str(4 - stage),
            "kernel_size=2, stride=2",
            size,
        ]
    assert rows[4] == ["4", "maxpool(kernel_size=2)", "10x15", "(bottom)"]
    assert "160x240 (below) or 176x256 (above)" in out
    assert out.count("output_padding=1") == 2  # stage 0, in the table and in the code


def test_input_as_separate_sizes_and_json_layers_give_the_same_plan(capsys):
    layers = [
        {"type": "conv", "kernel_size": 3, "padding": 1},
        {"type": "conv", "kernel_size": 3, "padding": 1},
        {"type": "maxpool", "kernel_size": 2},
    ] * 4
    assert cli.main(UNET_ARGS + ["--json"]) == 0
    a = json.loads(capsys.readouterr().out)
    args = ["decoder", "torch", "--input", "161", "241", "--encoder", json.dumps(layers)]
    assert cli.main([*args, "--up", '{"kernel_size": 2, "stride": 2}', "--json"]) == 0
    b = json.loads(capsys.readouterr().out)
    assert a["steps"] == b["steps"] and a["sizes"] == b["sizes"]
    assert [s["output_size"] for s in a["steps"]] == [[20, 30], [40, 60], [80, 120], [161, 241]]
    assert [s["skip_size"] for s in a["steps"]] == [s["output_size"] for s in a["steps"]]
    assert a["nearest_inputs"] == [[160, 176], [240, 256]] and a["clean"] is False
    plan = tconv.plan_decoder((161, 241), layers, up={"kernel_size": 2, "stride": 2})
    assert a == json.loads(json.dumps(plan.as_dict()))


def test_unreachable_skip_exits_1_with_the_explanation(capsys):
    args = ["decoder", "torch", "--input", "161", "--encoder", "3*maxpool:k=2", "--up", "k=1,s=2"]
    assert cli.main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "decoder step 3" in captured.err and "160 or 168" in captured.err
    assert cli.main([*args, "--json"]) == 1
    assert "decoder step 3" in json.loads(capsys.readouterr().out)["error"]["message"]


@pytest.mark.parametrize(
    "encoder, words",
    [
        ("maxpol:k=2", "the type must be one of"),
        ("maxpool:k=two", "cannot read 'two'"),
        ("maxpool:k", "is not ARG=VALUE"),
        ("maxpool:kernel=2", "take no argument 'kernel'"),
        ("3*(maxpool:k=2", "unbalanced repeat"),
        ("1000*(1000*(maxpool:k=2))", "more than 1000 layers"),
    ],
)
def test_bad_layers_are_usage_errors(encoder, words, capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["decoder", "torch", "--input", "32", "--encoder", encoder])
    assert info.value.code == 2
    assert words in capsys.readouterr().err


def test_keras_names_and_short_names_mean_the_same(capsys):
    long = "2*(conv:kernel_size=3,padding=same maxpool:pool_size=2,strides=2)"
    short = "2*(conv:k=3,p=same maxpool:k=2,s=2)"
    outs = []
    for enc in (long, short):
        assert cli.main(["decoder", "keras", "--input", "45x37", "--encoder", enc, "--json"]) == 0
        outs.append(json.loads(capsys.readouterr().out)["steps"])
    assert outs[0] == outs[1] and len(outs[0]) == 2


def test_the_printed_torch_decoder_runs_and_concatenates(capsys):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    assert cli.main(UNET_ARGS) == 0
    out = capsys.readouterr().out
    code = out.split("the decoder as code:\n", 1)[1]
    scope = {"nn": nn, "in_channels": 4, "out_channels": 4}
    exec(code, scope)
    skips = [(20, 30), (40, 60), (80, 120), (161, 241)]
    x = torch.zeros(1, 4, 10, 15)
    for up, size in zip(scope["up"], skips):
        x = torch.cat([up(x), torch.zeros(1, 4, *size)], dim=1)[:, :4]
    assert x.shape == (1, 4, 161, 241)
