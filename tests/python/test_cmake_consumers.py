"""The C++ library as a downstream project sees it.

Builds the repository with CMake (library, example, and the C++ unit tests when GoogleTest is
found), installs it to a temporary prefix, then builds and runs two consumer projects
(find_package after install, add_subdirectory of the source tree) and the same program with a
bare compiler command, and runs ctest. Needs cmake and a C++ compiler; skips cleanly without.
Set TCONV_CMAKE_BUILD_DIR to keep the library build in a fixed directory (CI reuses it).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONSUMERS = ROOT / "tests" / "consumers"

pytestmark = pytest.mark.slow

CMAKE = shutil.which("cmake")
CXX = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
if CMAKE is None or CXX is None:
    pytest.skip("needs cmake and a C++ compiler (pip install cmake)", allow_module_level=True)


# No include path may reach the compiler from the environment: the consumers must build with
# what tconv::tconv and the installed headers give them, and nothing from Python.
_ENV = {
    k: v
    for k, v in os.environ.items()
    if k not in ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH")
}


def _run(args, cwd=None, timeout=600):
    proc = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=_ENV,
    )
    if proc.returncode != 0:
        pytest.fail(
            f"command failed ({proc.returncode}): {shlex.join(str(a) for a in args)}\n"
            f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
        )
    return proc


def _generator_args():
    return ["-G", "Ninja"] if shutil.which("ninja") else []


def _configure(source, build, *defines):
    return _run(
        [
            CMAKE,
            "-S",
            source,
            "-B",
            build,
            *_generator_args(),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_CXX_COMPILER={CXX}",
            "-DCMAKE_EXPORT_COMPILE_COMMANDS=ON",
            *defines,
        ]
    )


def _build(build, *targets):
    args = [CMAKE, "--build", build, "--parallel", "2"]
    for t in targets:
        args += ["--target", t]
    return _run(args)


@pytest.fixture(scope="session")
def cmake_build(tmp_path_factory):
    """The library, example and (when GoogleTest is there) unit tests, built once."""
    fixed = os.environ.get("TCONV_CMAKE_BUILD_DIR")
    base = Path(fixed) if fixed else tmp_path_factory.mktemp("cmake")
    build = base / "build"
    probe = subprocess.run(
        [
            CMAKE,
            "-S",
            ROOT,
            "-B",
            build,
            *_generator_args(),
            "-DCMAKE_BUILD_TYPE=Release",
            f"-DCMAKE_CXX_COMPILER={CXX}",
            "-DTCONV_BUILD_TESTS=ON",
            "-DTCONV_BUILD_EXAMPLES=ON",
        ],
        capture_output=True,
        text=True,
        env=_ENV,
    )
    have_tests = probe.returncode == 0
    if not have_tests:
        if "GTest" not in probe.stdout + probe.stderr:
            pytest.fail(f"cmake configure failed:\n{probe.stdout[-4000:]}\n{probe.stderr[-4000:]}")
        shutil.rmtree(build)
        _configure(ROOT, build, "-DTCONV_BUILD_TESTS=OFF", "-DTCONV_BUILD_EXAMPLES=ON")
    _build(build)
    prefix = base / "prefix"
    _run([CMAKE, "--install", build, "--prefix", prefix])
    return {"base": base, "build": build, "prefix": prefix, "have_tests": have_tests}


def _exe(build: Path, name: str) -> Path:
    for candidate in (build / name, build / "Release" / name):
        if candidate.exists():
            return candidate
    found = list(build.rglob(name))
    assert found, f"{name} was not built under {build}"
    return found[0]


def _assert_no_python_includes(build: Path):
    commands = json.loads((build / "compile_commands.json").read_text())
    consumer = [c for c in commands if c["file"].endswith("consumer.cpp")]
    assert consumer, "consumer.cpp is missing from compile_commands.json"
    for c in consumer:
        args = shlex.split(c.get("command") or shlex.join(c["arguments"]))
        includes = [a for a in args[1:] if a.startswith(("-I", "-isystem"))]
        bad = [a for a in includes if re.search(r"python|pybind11", a, re.IGNORECASE)]
        assert not bad, f"consumer compiled with Python include paths: {bad}"


def test_installed_tree_has_headers_library_and_package_files(cmake_build):
    prefix = cmake_build["prefix"]
    assert (prefix / "include" / "tconv" / "tconv.hpp").is_file()
    libs = list(prefix.glob("lib*/libtconv.a"))
    assert libs, "libtconv.a was not installed"
    assert list(prefix.glob("lib*/cmake/tconv/tconvConfig.cmake"))
    # Public headers include the standard library and each other only.
    for header in (prefix / "include" / "tconv").glob("*.hpp"):
        for inc in re.findall(r'#include\s*[<"]([^>"]+)[>"]', header.read_text()):
            assert inc.startswith("tconv/") or ("/" not in inc and "." not in inc), (header, inc)


def test_example_program_runs(cmake_build):
    proc = _run([_exe(cmake_build["build"], "tconv_example")])
    assert "expected" in proc.stdout


def test_find_package_consumer(cmake_build):
    build = cmake_build["base"] / "find-package"
    _configure(CONSUMERS / "find-package", build, f"-DCMAKE_PREFIX_PATH={cmake_build['prefix']}")
    _build(build)
    _assert_no_python_includes(build)
    proc = _run([_exe(build, "consumer")])
    assert "consumer: ok" in proc.stdout


def test_add_subdirectory_consumer(cmake_build):
    build = cmake_build["base"] / "add-subdirectory"
    # What this checks is the embedding (targets, include paths, no Python): the portable
    # kernel is enough for that, and skips a second multi-minute compile of the vector kernels,
    # which the installed build above already compiles and tests.
    _configure(
        CONSUMERS / "add-subdirectory",
        build,
        f"-DTCONV_SOURCE_DIR={ROOT}",
        "-DTCONV_VECTOR_KERNELS=OFF",
    )
    _build(build, "consumer")
    _assert_no_python_includes(build)
    proc = _run([_exe(build, "consumer")])
    assert "consumer: ok" in proc.stdout


def test_bare_compiler_against_installed_prefix(cmake_build, tmp_path):
    prefix = cmake_build["prefix"]
    lib = next(prefix.glob("lib*/libtconv.a"))
    exe = tmp_path / "bare_consumer"
    _run(
        [
            CXX,
            "-std=c++17",
            "-Wall",
            "-Wextra",
            "-Werror",
            f"-I{prefix / 'include'}",
            CONSUMERS / "consumer.cpp",
            lib,
            "-pthread",
            "-o",
            exe,
        ]
    )
    assert "consumer: ok" in _run([exe]).stdout


def test_ctest_unit_tests(cmake_build):
    if not cmake_build["have_tests"]:
        pytest.skip("GoogleTest not found (apt-get install libgtest-dev): C++ unit tests not built")
    ctest = shutil.which("ctest") or str(Path(CMAKE).with_name("ctest"))
    proc = _run(
        [ctest, "--test-dir", cmake_build["build"], "--output-on-failure", "--parallel", "2"]
    )
    m = re.search(r"100% tests passed(?:, 0 tests failed)? out of (\d+)", proc.stdout)
    assert m, proc.stdout[-2000:]
    assert int(m.group(1)) > 10, m.group(0)
