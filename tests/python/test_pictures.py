"""Pictures: explain draws every spatial dim (text and --svg), and `tconv decoder --svg` draws
the plan; the SVGs are well-formed and hold the cells and sizes of the layer they draw."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

import tconv
from tconv import cli
from tconv._svg import COLORS

NS = "{http://www.w3.org/2000/svg}"


def _pictures(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("Picture (")]


def test_explain_draws_each_dim_once_and_equal_dims_together():
    two = tconv.explain("torch", (5, 6), kernel_size=3, stride=2, padding=(1, 2))
    assert _pictures(two) == [
        "Picture (height; one column per cell of the full result):",
        "Picture (width; one column per cell of the full result):",
    ]
    same = tconv.explain("torch", (7, 7, 7), kernel_size=3, stride=2, padding=1)
    assert _pictures(same) == [
        "Picture (depth, height, width; one column per cell of the full result):"
    ]


def _svg(path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == f"{NS}svg" and float(root.get("width")) > 100
    return root


def _rects(root: ET.Element, color: str) -> int:
    return sum(1 for r in root.iter(f"{NS}rect") if r.get("fill") == color)


def _texts(root: ET.Element) -> list[str]:
    return [t.text or "" for t in root.iter(f"{NS}text")]


def test_explain_svg_has_every_dim_its_crops_and_added_cells(tmp_path, capsys):
    path = tmp_path / "layer.svg"
    args = ["explain", "torch", "--input", "5", "6", "--kernel", "3", "--stride", "2"]
    args += ["--padding", "1", "2", "--output-padding", "1", "0", "--svg", str(path)]
    assert cli.main(args) == 0
    assert "Picture (width" in capsys.readouterr().out
    root = _svg(path)
    texts = _texts(root)
    assert "height: 5 in -> 10 out" in texts and "width: 6 in -> 9 out" in texts
    # crops: 1 + 1 cells in height, 2 + 2 in width; one cell added in height; plus the legend
    assert _rects(root, COLORS["crop"]) == (1 + 1) + (2 + 2) + 1
    assert _rects(root, COLORS["added"]) == 1 + 1
    # input cells: 5 in height and 6 in width, plus the legend's
    assert _rects(root, COLORS["input"]) - 1 == 5 + 6 + 10 + 9  # inputs and outputs


def test_explain_svg_of_a_raising_layer_writes_nothing(tmp_path, capsys):
    path = tmp_path / "x.svg"
    args = ["explain", "torch", "--input", "5", "--kernel", "3", "--stride", "2"]
    assert cli.main([*args, "--output-padding", "2", "--svg", str(path)]) == 1
    assert not path.exists()


def test_decoder_svg_draws_every_skip_and_marks_the_padded_step(tmp_path, capsys):
    path = tmp_path / "unet.svg"
    enc = "4*(conv:k=3,p=1 conv:k=3,p=1 maxpool:k=2)"
    args = ["decoder", "torch", "--input", "161x241", "--encoder", enc, "--up", "k=2,s=2"]
    assert cli.main([*args, "--svg", str(path)]) == 0
    root = _svg(path)
    texts = _texts(root)
    for size in ("161x241", "80x120", "40x60", "20x30"):
        assert f"skip {size}" in texts
    assert "step 4: 80x120 -> 161x241" in texts and "bottom 10x15" in texts
    # one step adds a cell (output_padding=1): its box is the orange one
    assert sum(1 for r in root.iter(f"{NS}rect") if r.get("stroke") == COLORS["tap"]) == 1
    plan = tconv.plan_decoder(
        (161, 241),
        [{"type": "conv", "kernel_size": 3, "padding": 1}] * 2
        + [{"type": "maxpool", "kernel_size": 2}],
    )
    assert plan._repr_svg_() == plan.svg() and plan.svg().startswith("<svg")


def test_svg_to_an_unwritable_path_is_a_usage_error(tmp_path, capsys):
    bad = tmp_path / "missing" / "x.svg"
    with pytest.raises(SystemExit) as info:
        cli.main(
            ["decoder", "torch", "--input", "32", "--encoder", "maxpool:k=2", "--svg", str(bad)]
        )
    assert info.value.code == 2 and "cannot write" in capsys.readouterr().err
