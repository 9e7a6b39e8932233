#!/usr/bin/env bash
# Build the fuzz target with clang (libFuzzer + ASan + UBSan) and run it for a bounded time.
#
#   bash tests/fuzz/run.sh [seconds]        (default 60; FUZZ_DIR = build dir)
#
# Needs clang with its runtime (Debian: clang-14 libclang-rt-14-dev). A crash leaves the
# reproducer in $FUZZ_DIR/artifacts/ and exits non-zero.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SECONDS_TO_RUN="${1:-60}"
BUILD="${FUZZ_DIR:-$ROOT/build/fuzz}"
CLANGXX="${CLANGXX:-$(command -v clang++-14 || command -v clang++ || true)}"
if [ -z "$CLANGXX" ]; then
  echo "fuzz: no clang++ found (apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi

generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$ROOT/tests/fuzz" -B "$BUILD" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_COMPILER="$CLANGXX" >/dev/null
cmake --build "$BUILD" --parallel 2 --target fuzz_shape

mkdir -p "$BUILD/corpus" "$BUILD/artifacts"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
# Inputs that once failed run first, every time.
"$BUILD/fuzz_shape" -timeout=10 "$ROOT"/tests/fuzz/regressions/*
status=0
"$BUILD/fuzz_shape" -max_total_time="$SECONDS_TO_RUN" -timeout=10 -rss_limit_mb=2048 \
  -max_len=512 -print_final_stats=1 -artifact_prefix="$BUILD/artifacts/" "$BUILD/corpus" \
  >"$BUILD/fuzz.log" 2>&1 || status=$?
# Progress lines are many; keep the rest (start-up, reports, final stats).
grep -v -E '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)' "$BUILD/fuzz.log" || true
if [ "$status" -ne 0 ]; then
  echo "fuzz: the fuzzer stopped with status $status; reproducers in $BUILD/artifacts/" >&2
  ls -l "$BUILD/artifacts/" >&2 || true
  exit "$status"
fi
echo "fuzz: no crash in ${SECONDS_TO_RUN} s"
