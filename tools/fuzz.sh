#!/usr/bin/env bash
# Builds the libFuzzer targets of tests/fuzz in build-fuzz/ (clang for C++; the C grammar tables
# keep gcc, so their objects are the normal build's), fuzzes each for a bounded time starting from
# its seed corpus and regressions, then replays seeds and regressions through ctest. A crash, a
# sanitizer report, a leak, an input slower than 10 s or over 2 GiB fails the run; the input that
# did it is kept under build-fuzz/fuzz-artifacts/<target>/ (copy it to tests/fuzz/regressions/).
#   tools/fuzz.sh [SECONDS_PER_TARGET]   ./setup.sh test runs 15 s each, ./setup.sh bench 300 s
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
seconds=${1:-15}
build=${MCPD_FUZZ_BUILD_DIR:-$top/build-fuzz}
jobs=${MCPD_JOBS:-$(nproc)}
launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
extra=()
[ -n "${MCPD_GRAMMARS_DIR:-}" ] && extra+=(-DMCPD_GRAMMARS_DIR="$MCPD_GRAMMARS_DIR")

if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMCPD_FUZZ=ON \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=gcc "${launcher[@]}" "${extra[@]}" >&2
fi
cmake --build "$build" -j "$jobs" --target fuzzers >&2

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$top/tools/sanitizer/lsan.supp}
failed=()
for fuzzer in "$build"/bin/fuzz_*; do
  name=$(basename "$fuzzer")
  work=$build/fuzz-corpus/$name artifacts=$build/fuzz-artifacts/$name
  mkdir -p "$work" "$artifacts"
  dirs=("$work" "$top/tests/fuzz/corpus/$name")
  [ -d "$top/tests/fuzz/regressions/$name" ] && dirs+=("$top/tests/fuzz/regressions/$name")
  dict=()
  [ -f "$top/tests/fuzz/$name.dict" ] && dict=(-dict="$top/tests/fuzz/$name.dict")
  # The leak lsan.supp allows is inside libtree-sitter, built without frame pointers: only the slow
  # unwinder sees ts_query_new on that stack.
  options=$ASAN_OPTIONS
  [[ $name == fuzz_query || $name == fuzz_mcp_server ]] && options+=:fast_unwind_on_malloc=0
  started=$(date +%s)
  # With MCPD_FUZZ_SEED (CI), a run starts from the repository's inputs alone with a fixed seed and
  # a fixed count, so it walks the same mutations every time: CI fails for a change, never for the
  # luck of the draw, and a failure is reproduced by running the same command. Without it (the long runs of
  # ./setup.sh bench), the seed is random and the corpus grows across runs.
  seed=() limit=(-max_total_time="$seconds")
  if [ -n "${MCPD_FUZZ_SEED:-}" ]; then
    # A fixed number of inputs (tests/fuzz/ci_runs), not a time: a time cuts the walk at a point that
    # depends on the machine's speed, so a faster machine went further and met what a slower one
    # never had. The time stays as a cap, four times the budget, for a machine far slower than CI's.
    runs=$(awk -v t="$name" '$1 == t { print $2 }' "$top/tests/fuzz/ci_runs")
    [ -n "$runs" ] || { echo "fuzz: $name has no count in tests/fuzz/ci_runs" >&2; exit 2; }
    seed=(-seed="$MCPD_FUZZ_SEED")
    limit=(-runs="$runs" -max_total_time=$(( seconds * 4 )))
    rm -rf "$work"; mkdir -p "$work"
  fi
  # New inputs go to the first directory (under build-fuzz/), so the seeds in the repository stay small.
  if ASAN_OPTIONS=$options "$fuzzer" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       "${seed[@]}" "${dict[@]}" -artifact_prefix="$artifacts/" "${dirs[@]}" > "$build/$name.log" 2>&1; then
    echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: *[0-9]*' "$build/$name.log" | grep -o '[0-9]*$') runs in $(( $(date +%s) - started )) s)" >&2
  else
    echo "fuzz: $name FAILED; log: $build/$name.log, inputs: $artifacts/" >&2
    grep -E '^(==[0-9]+==ERROR|SUMMARY|.*runtime error)' "$build/$name.log" | head -5 >&2 || true
    failed+=("$name")
  fi
done
ctest --test-dir "$build" -L fuzz --output-on-failure -j "$jobs" >&2 || failed+=(replay)
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}" >&2
  exit 1
fi
