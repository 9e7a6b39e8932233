#!/usr/bin/env bash
# The NEON kernels on AArch64, without AArch64 hardware: cross-compiles the core and the cross-ISA
# check (tests/cpp/cross_isa_check.cpp) with g++-aarch64-linux-gnu at -O2, warnings as errors,
# and runs the check under qemu-aarch64 (neon against portable against a scatter loop).
#
#   bash tests/cross/run_aarch64.sh [configurations]      (default 400)
#
# With TCONV_CROSS_SANITIZE=1 it then builds both again with ASan + UBSan (-O1) and runs half as
# many layers under them (any report fails the run; the instrumented kernels take minutes to
# compile, so CI runs the plain build only). Warnings are errors in the first build only:
# the instrumentation makes GCC's maybe-uninitialized analysis see through std::optional wrongly.
#
# Needs: apt-get install g++-aarch64-linux-gnu qemu-user cmake. CROSS_DIR sets the build dir.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${CROSS_DIR:-$ROOT/build/cross-aarch64}"
CONFIGS="${1:-400}"
SYSROOT=/usr/aarch64-linux-gnu

for tool in aarch64-linux-gnu-g++ qemu-aarch64 cmake; do
  if ! command -v "$tool" >/dev/null; then
    echo "run_aarch64.sh: $tool not found; install g++-aarch64-linux-gnu, qemu-user and cmake" >&2
    exit 2
  fi
done

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$ROOT/tests/cross" -B "$BUILD" "${generator[@]}" \
  -DCMAKE_TOOLCHAIN_FILE="$ROOT/tests/cross/aarch64-linux-gnu.cmake" \
  -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="-O2 -Werror" >/dev/null
cmake --build "$BUILD" --parallel 2

# The NEON kernels must be in the binary, and be what ran (the check counts calls per ISA).
symbols="$(aarch64-linux-gnu-nm -C "$BUILD/cross_isa_check")"
if ! grep -q 'tconv::kernels::neon::kernels_f32' <<<"$symbols"; then
  echo "run_aarch64.sh: the NEON kernels were not compiled in" >&2
  exit 1
fi
env -u TCONV_MAX_ISA qemu-aarch64 -L "$SYSROOT" "$BUILD/cross_isa_check" "$CONFIGS"

if [ "${TCONV_CROSS_SANITIZE:-0}" = 1 ]; then
  cmake -S "$ROOT/tests/cross" -B "$BUILD-sanitize" "${generator[@]}" \
    -DCMAKE_TOOLCHAIN_FILE="$ROOT/tests/cross/aarch64-linux-gnu.cmake" \
    -DCMAKE_BUILD_TYPE= -DCMAKE_CXX_FLAGS="-O1 -Wno-maybe-uninitialized" -DTCONV_SANITIZE=ON \
    >/dev/null
  cmake --build "$BUILD-sanitize" --parallel 2
  env -u TCONV_MAX_ISA ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    qemu-aarch64 -L "$SYSROOT" "$BUILD-sanitize/cross_isa_check" "$((CONFIGS / 2))"
fi
