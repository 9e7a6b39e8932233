"""The command line: missing, malformed and absurd arguments exit with status 2 and a usage
message (1 for a well-formed request that is a shape error), never with a traceback.

Subcommands are discovered from the parser, so each new one is covered as it lands."""

import argparse
import subprocess
import sys

import pytest

from tconv import cli


def subcommands():
    parser = cli.build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return sorted(action.choices)
    raise AssertionError("the parser has no subcommands: the tests below would check nothing")


def run(argv, capsys):
    """(exit status, stdout, stderr) of `tconv argv`, in-process; any exception escaping
    main() is the traceback a user would see."""
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:
        status = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    out, err = capsys.readouterr()
    return status, out, err


COMMANDS = subcommands()
# Subcommands that do real work when given no arguments (never run them here).
RUN_WITHOUT_ARGS = {"demo", "bench", "info"}


def test_the_documented_subcommands_are_discovered():
    assert {"shape", "explain", "doctor", "solve", "mirror", "demo", "info"} <= set(COMMANDS)


def test_no_command_is_a_usage_error(capsys):
    status, _, err = run([], capsys)
    assert status == 2 and "usage:" in err


@pytest.mark.parametrize("argv", [["no-such-command"], ["--no-such-flag"], ["", ""]])
def test_unknown_command_or_flag(argv, capsys):
    status, _, err = run(argv, capsys)
    assert status == 2 and "usage:" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_help(command, capsys):
    status, out, err = run([command, "--help"], capsys)
    assert status == 0 and "usage:" in out + err


@pytest.mark.parametrize("command", COMMANDS)
def test_unknown_option(command, capsys):
    status, _, err = run([command, "--no-such-option"], capsys)
    assert status == 2 and "usage:" in err and "--no-such-option" in err


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - RUN_WITHOUT_ARGS))
def test_missing_arguments(command, capsys):
    status, _, err = run([command], capsys)
    assert status == 2 and "usage:" in err


ABSURD = ["2**70", "1e999", "-5", "nan", "", "(", "1,,2", "x" * 300, "99999999999999999999999"]


@pytest.mark.parametrize("command", sorted(set(COMMANDS) - RUN_WITHOUT_ARGS))
@pytest.mark.parametrize("value", ABSURD)
def test_absurd_positionals(command, value, capsys):
    status, _, err = run([command, value], capsys)
    assert status in (1, 2) and err.strip(), (status, err)
    if status == 2:
        assert "usage:" in err


@pytest.mark.parametrize(
    "argv,words",
    [
        (["bench", "--threads", "-5"], ["--threads", "[1, 1024]"]),
        (["bench", "--threads", "2**70"], ["--threads", "comma-separated integers"]),
        (["bench", "--threads", ""], ["--threads"]),
        (["bench", "--repeats", "0"], ["--repeats"]),
        (["bench", "--repeats", "abc"], ["--repeats", "invalid int value"]),
        (["bench", "--budget", "nan"], ["--budget"]),
        (["bench", "--budget", "1e999"], ["--budget"]),
        (["bench", "--peak", "-1"], ["--peak"]),
        (["bench", "--dtype", "float16"], ["--dtype", "invalid choice"]),
        (["bench", "--layers", "no_such_layer"], ["unknown layer", "no_such_layer"]),
        (["demo", "extra"], ["unrecognized arguments"]),
    ],
)
def test_absurd_options(argv, words, capsys):
    if argv[0] not in COMMANDS:
        pytest.skip(f"no {argv[0]} subcommand")
    status, _, err = run(argv, capsys)
    assert status == 2 and "usage:" in err, err
    for w in words:
        assert w in err, err


def test_python_dash_m_reports_usage_without_traceback():
    proc = subprocess.run(
        [sys.executable, "-m", "tconv", "no-such-command"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "usage:" in proc.stderr and "Traceback" not in proc.stderr
