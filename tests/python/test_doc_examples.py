"""The command-line examples of README and docs/ print what the page shows, and README's numpy
example runs."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

from tconv import cli

ROOT = pathlib.Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
if not README.exists():  # an installed wheel's tests, run without the source tree
    pytest.skip("README.md is not beside these tests", allow_module_level=True)
TEXT = README.read_text()
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def _cli_examples(page: pathlib.Path) -> list[tuple[str, str]]:
    """(command, expected output) for each `$ tconv ...` line of the page's plain fenced blocks."""
    blocks, lines, language = [], None, ""
    for line in page.read_text().splitlines(keepends=True):
        if line.startswith("```"):
            if lines is None:
                lines, language = [], line[3:].strip()
            else:
                if not language:
                    blocks.append("".join(lines))
                lines = None
        elif lines is not None:
            lines.append(line)
    examples = []
    for block in blocks:
        for chunk in re.split(r"^\$ tconv ", block, flags=re.M)[1:]:
            command, _, output = chunk.partition("\n")
            examples.append((command, output))
    return examples


CLI_EXAMPLES = [(p.relative_to(ROOT).as_posix(), *e) for p in PAGES for e in _cli_examples(p)]
PY_EXAMPLE = re.search(r"## From numpy\n\n```python\n(.*?)```", TEXT, flags=re.S)


def test_the_pages_have_the_examples_this_file_checks():
    pages = {page for page, _, _ in CLI_EXAMPLES}
    assert {"README.md", "docs/shapes.md", "docs/decoder.md", "docs/port.md"} <= pages
    assert PY_EXAMPLE is not None


@pytest.mark.parametrize(
    "page, command, expected",
    CLI_EXAMPLES,
    ids=[f"{p}:{c.split()[0]}" for p, c, _ in CLI_EXAMPLES],
)
def test_cli_example_prints_what_the_page_shows(page, command, expected, capsys):
    # An example of a refusal shows its explanation, which goes to stderr with exit status 1.
    status = cli.main(shlex.split(command))
    captured = capsys.readouterr()
    assert status in (0, None, 1)
    assert (captured.out if status in (0, None) else captured.err) == expected


def test_numpy_example_gives_the_shape_in_its_comment(capsys):
    code = PY_EXAMPLE.group(1)
    exec(compile(code, "README.md", "exec"), {})
    shown = re.search(r"print\(y\.shape\)\s*# (\(.*\))", code).group(1)
    assert capsys.readouterr().out.strip() == shown
