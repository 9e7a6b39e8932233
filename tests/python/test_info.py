"""`tconv --version`, `tconv info [--json]`, `python -m tconv info` and tconv.show_config():
what a bug report needs, checked against the package metadata, the runtime and numpy."""

from __future__ import annotations

import importlib.metadata
import json
import pathlib
import platform
import re
import subprocess
import sys

import numpy as np
import pytest

import tconv
from tconv import _core, cli

from conftest import ISA_TIER

CMAKE_BUILD_TYPES = {"Release", "Debug", "RelWithDebInfo", "MinSizeRel"}
ROOT = pathlib.Path(__file__).resolve().parents[2]


def run(argv, capsys):
    try:
        status = cli.main(list(argv))
    except SystemExit as exc:
        status = exc.code
    out, err = capsys.readouterr()
    return status, out, err


def expected_version() -> str:
    """The installed distribution's version when this tconv is the installed one, else the
    version pyproject.toml declares (a source-tree run)."""
    try:
        dist = importlib.metadata.distribution("tconv")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None and pathlib.Path(tconv.__file__).is_relative_to(
        pathlib.Path(dist.locate_file("")).resolve()
    ):
        return dist.version
    text = (ROOT / "pyproject.toml").read_text()
    return re.search(r'(?m)^version = "([^"]+)"', text).group(1)


def expected_active_isa(env_cap: str | None) -> str:
    """The best available ISA at or below the TCONV_MAX_ISA tier (no cap set in-process)."""
    cap = ISA_TIER.get((env_cap or "").lower(), 0)
    return next(i for i in tconv.available_isas() if ISA_TIER[i] >= cap)


@pytest.fixture
def restore_isa():
    yield
    tconv.set_max_isa(tconv.available_isas()[0])


def test_version_flag_prints_the_package_version(capsys):
    status, out, _ = run(["--version"], capsys)
    assert status == 0
    assert out == f"tconv {expected_version()}\n"
    assert tconv.__version__ == expected_version()


def test_info_json_describes_this_build_and_runtime(capsys):
    status, out, err = run(["info", "--json"], capsys)
    assert status == 0, err
    cfg = json.loads(out)
    t = cfg["tconv"]
    assert t["version"] == expected_version()
    assert t["build_type"] in CMAKE_BUILD_TYPES
    assert t["compiler"]["id"] in {"GNU", "Clang", "AppleClang", "MSVC", "IntelLLVM"}
    assert re.fullmatch(r"\d+(\.\d+)+", t["compiler"]["version"]), t["compiler"]
    assert pathlib.Path(t["extension"]).resolve() == pathlib.Path(_core.__file__).resolve()
    isa = cfg["isa"]
    assert isa["available"] == tconv.available_isas()
    # Compiled in: best first, ending with portable, and a superset of what this CPU runs.
    assert isa["compiled"][-1] == "portable"
    assert set(isa["available"]) <= set(isa["compiled"])
    order = ["avx512", "avx2", "neon", "portable"]
    assert isa["compiled"] == sorted(isa["compiled"], key=order.index)
    assert isa["active"] == expected_active_isa(isa["TCONV_MAX_ISA"])
    assert cfg["threads"]["num_threads"] == tconv.get_num_threads()
    assert cfg["numpy"] == np.__version__
    assert cfg["python"]["version"] == platform.python_version()
    assert cfg["platform"]["machine"] == platform.machine()


def test_info_reports_the_isa_and_threads_in_use(capsys, restore_isa):
    threads = tconv.get_num_threads()
    tconv.set_max_isa("portable")
    tconv.set_num_threads(3)
    try:
        status, out, _ = run(["info", "--json"], capsys)
    finally:
        tconv.set_num_threads(threads)
    assert status == 0
    cfg = json.loads(out)
    assert cfg["isa"]["active"] == "portable"
    assert cfg["threads"]["num_threads"] == 3


def test_info_shows_threadpoolctl_view_of_the_tconv_pool(capsys):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    status, out, _ = run(["info", "--json"], capsys)
    assert status == 0
    view = json.loads(out)["threadpoolctl"]
    assert view["version"] == threadpoolctl.__version__
    ours = [p for p in view["pools"] if p["user_api"] == "tconv"]
    assert len(ours) == 1 and ours[0]["num_threads"] == tconv.get_num_threads()
    assert ours[0]["version"] == tconv.__version__


def test_info_text_names_each_fact(capsys):
    status, out, err = run(["info"], capsys)
    assert status == 0 and not err
    lines = out.splitlines()
    assert f"tconv:          {expected_version()}" in lines
    assert f"ISAs available: {', '.join(tconv.available_isas())}" in lines
    assert f"ISAs compiled:  {', '.join(_core.compiled_isas())}" in lines
    assert any(line.startswith(f"ISA in use:     {_core.active_isa()}") for line in lines)
    assert f"numpy:          {np.__version__}" in lines
    build = _core.build_info()
    assert f"compiler:       {build['compiler_id']} {build['compiler_version']}" in lines


def test_show_config_matches_the_command_line(capsys):
    assert tconv.show_config() is None
    printed = capsys.readouterr().out
    status, out, _ = run(["info"], capsys)
    assert status == 0 and printed == out
    cfg = tconv.show_config(mode="dicts")
    status, out, _ = run(["info", "--json"], capsys)
    assert json.loads(out) == json.loads(json.dumps(cfg))
    with pytest.raises(ValueError, match="'stdout' or 'dicts'"):
        tconv.show_config(mode="json")


def test_python_m_tconv_info_and_version():
    proc = subprocess.run(
        [sys.executable, "-m", "tconv", "info", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    cfg = json.loads(proc.stdout)
    assert cfg["tconv"]["version"] == expected_version()
    assert cfg["isa"]["available"] == tconv.available_isas()
    proc = subprocess.run(
        [sys.executable, "-m", "tconv", "--version"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0 and proc.stdout == f"tconv {expected_version()}\n"
