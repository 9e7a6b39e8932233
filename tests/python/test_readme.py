"""README's command-line examples print what README shows, and its numpy example runs."""

from __future__ import annotations

import pathlib
import re
import shlex

import pytest

from tconv import cli

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"
if not README.exists():  # an installed wheel's tests, run without the source tree
    pytest.skip("README.md is not beside these tests", allow_module_level=True)
TEXT = README.read_text()


def _cli_examples() -> list[tuple[str, str]]:
    """(command, expected output) for each `$ tconv ...` line of README's plain fenced blocks."""
    blocks, lines, language = [], None, ""
    for line in TEXT.splitlines(keepends=True):
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


CLI_EXAMPLES = _cli_examples()
PY_EXAMPLE = re.search(r"## From numpy\n\n```python\n(.*?)```", TEXT, flags=re.S)


def test_readme_has_the_examples_this_file_checks():
    assert len(CLI_EXAMPLES) >= 3 and PY_EXAMPLE is not None


@pytest.mark.parametrize(
    "command, expected", CLI_EXAMPLES, ids=[c.split()[0] for c, _ in CLI_EXAMPLES]
)
def test_cli_example_prints_what_readme_shows(command, expected, capsys):
    status = cli.main(shlex.split(command))
    assert status in (0, None)
    assert capsys.readouterr().out == expected


def test_numpy_example_gives_the_shape_in_its_comment(capsys):
    code = PY_EXAMPLE.group(1)
    exec(compile(code, "README.md", "exec"), {})
    shown = re.search(r"print\(y\.shape\)\s*# (\(.*\))", code).group(1)
    assert capsys.readouterr().out.strip() == shown
