#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine: installs what is missing (Debian packages, pinned
# tree-sitter grammar sources from npm), builds, then runs the step asked for.
#   ./setup.sh demo    set up, build, run the demo (launches mcpd as an MCP client would)
#   ./setup.sh test    set up, build, run the whole test suite with ctest, then each fuzzer for a
#                      short time and its seeds and regressions (CI; MCPD_CI_PASSES picks among
#                      normal, fuzz, asan, tsan)
#   ./setup.sh sanitize  the same suite in an ASan+UBSan build, and the coordinator's and pool's
#                      tests in a TSan build (MCPD_CI_PASSES=normal,fuzz,asan,tsan adds them to test)
#   ./setup.sh build   set up and build only
#   ./setup.sh bench   the benchmarks (tools/bench.sh), then each fuzzer for a long run
#   ./setup.sh soak    30 minutes (MCPD_SOAK_MINUTES) of mixed calls with chaos (tools/soak.sh)
# Idempotent: when everything is present it only checks and runs an incremental build.
set -euo pipefail
cd "$(dirname "$0")"
top=$(pwd)
build_dir=${MCPD_BUILD_DIR:-$top/build}
build_type=${MCPD_BUILD_TYPE:-RelWithDebInfo}
jobs=${MCPD_JOBS:-$(nproc)}

# clang, libclang-rt-14-dev: libFuzzer and the fuzz build (tools/fuzz.sh). ccache: optional, used by
# every build when present (CI reruns on the same machine rebuild little).
# python3-serial-asyncio: only recommended by python3-pymodbus, but its 3.0 server imports it even
# for TCP (the tests' Modbus server).
apt_packages=(
  build-essential cmake pkg-config git ca-certificates nodejs npm
  libboost1.81-dev nlohmann-json3-dev libtree-sitter-dev libgit2-dev libb2-dev libmodbus-dev
  libsqlite3-dev libcpp-httplib-dev doctest-dev libre2-dev libseccomp-dev
  ripgrep python3 python3-pymodbus python3-serial-asyncio mbpoll
  clang libclang-rt-14-dev ccache valgrind
)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

install_packages() {
  local missing=()
  for p in "${apt_packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  # Node may come from elsewhere than Debian's package (a preinstalled toolchain); npm is what we need.
  if command -v npm >/dev/null 2>&1; then
    local keep=()
    for p in "${missing[@]}"; do [[ $p == nodejs || $p == npm ]] || keep+=("$p"); done
    missing=("${keep[@]+"${keep[@]}"}")
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  fi
}

sri_sha512() {  # prints the npm-style "sha512-<base64>" integrity of a file
  node -e 'const c=require("crypto"),f=require("fs");process.stdout.write("sha512-"+c.createHash("sha512").update(f.readFileSync(process.argv[1])).digest("base64"))' "$1"
}

fetch_grammars() {
  local dest=$top/.deps/grammars
  mkdir -p "$dest"
  while read -r name version integrity; do
    [[ -z $name || $name == \#* ]] && continue
    local dir=$dest/$name
    if [ -f "$dir/.version" ] && [ "$(cat "$dir/.version")" = "$version $integrity" ]; then continue; fi
    echo "setup: fetching $name@$version from npm" >&2
    local tmp; tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$name@$version" >/dev/null)
    local tarball=("$tmp"/*.tgz)
    local got; got=$(sri_sha512 "${tarball[0]}")
    if [ "$got" != "$integrity" ]; then
      echo "setup: integrity mismatch for $name@$version: expected $integrity, got $got" >&2
      rm -rf "$tmp"; exit 1
    fi
    rm -rf "$dir"; mkdir -p "$dir"
    tar xzf "${tarball[0]}" -C "$dir" --strip-components=1
    grep -rqs "define LANGUAGE_VERSION 14" "$dir" --include=parser.c || {
      echo "setup: $name@$version is not tree-sitter ABI 14" >&2; exit 1; }
    echo "$version $integrity" > "$dir/.version"
    rm -rf "$tmp"
  done < "$top/workers/parser/grammars.lock"
}

launcher=()
if command -v ccache >/dev/null 2>&1; then
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi

configure() {  # configure DIR [CMAKE_ARGS...], once
  local dir=$1; shift
  if [ ! -f "$dir/CMakeCache.txt" ]; then
    cmake -S "$top" -B "$dir" -DCMAKE_BUILD_TYPE="$build_type" "${launcher[@]}" "$@" >&2
  fi
}

build() {
  configure "$build_dir"
  cmake --build "$build_dir" -j "$jobs" >&2
}

# Seconds since the step began, for the timing lines CI prints.
timed() {
  local name=$1 started; shift
  started=$(date +%s)
  local rc=0
  "$@" || rc=$?
  echo "setup: $name took $(( $(date +%s) - started )) s$([ $rc = 0 ] || echo ", FAILED")" >&2
  timings+=("$name $(( $(date +%s) - started ))s$([ $rc = 0 ] || echo " FAILED")")
  return $rc
}

# The test binaries the TSan pass runs: the coordinator (event loop, executors, pool, cache) is
# where threads meet; the tool families are covered by the ASan pass.
tsan_tests=(mcpd_integration_tests pool_integration_tests pool_policy_tests cache_tests worker_runtime_tests
            load_tests search_mcpd_tests)

# A sanitizer build and its tests, compiled by clang (the C grammar tables keep gcc, so ccache
# reuses the normal build's objects for them). The ASan+UBSan build is the fuzz build: the fuzz
# targets need every library instrumented that way anyway, so one build serves the whole suite and
# the fuzzers. Sanitizer output of every process (the test binaries, mcpd and the workers they
# spawn) goes to files under sanitizer-logs/: a report in a worker the pool quietly restarted would
# otherwise pass unseen, so any file there fails the pass. Suppressions are in tools/sanitizer/.
sanitizer_pass() {  # sanitizer_pass address|thread
  local kind=$1 dir
  local clang=(-DCMAKE_CXX_COMPILER=clang++ -DCMAKE_C_COMPILER=gcc)
  [ -n "${MCPD_GRAMMARS_DIR:-}" ] && clang+=(-DMCPD_GRAMMARS_DIR="$MCPD_GRAMMARS_DIR")
  case "$kind" in
    address) dir=${MCPD_FUZZ_BUILD_DIR:-$top/build-fuzz}; configure "$dir" -DMCPD_FUZZ=ON "${clang[@]}" ;;
    thread) dir=$top/build-tsan; configure "$dir" -DMCPD_SANITIZE=thread "${clang[@]}" ;;
  esac
  local targets=() regex=()
  if [ "$kind" = thread ]; then
    targets=(mcpd mcpd-worker-parser mcpd-worker-git mcpd-worker-search mcpd-worker-modbus mcpd-worker-testkit
             mcp-load "${tsan_tests[@]}")
    regex=(-R "^($(IFS='|'; echo "${tsan_tests[*]}"))\$")
  fi
  cmake --build "$dir" -j "$jobs" ${targets[@]+--target "${targets[@]}"} >&2
  local logs=$dir/sanitizer-logs
  rm -rf "$logs"; mkdir -p "$logs"
  local supp=$top/tools/sanitizer
  local rc=0
  ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1" \
  UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp" \
  LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
  TSAN_OPTIONS="log_path=$logs/tsan:halt_on_error=0:second_deadlock_stack=1:suppressions=$supp/tsan.supp" \
    ctest --test-dir "$dir" --output-on-failure -j "$jobs" ${regex[@]+"${regex[@]}"} >&2 || rc=$?
  if compgen -G "$logs/*" >/dev/null; then
    echo "setup: $kind sanitizer reports (in $logs):" >&2
    for f in "$logs"/*; do echo "--- $f" >&2; head -60 "$f" >&2; done
    rc=1
  fi
  return $rc
}

fuzz_pass() { "$top/tools/fuzz.sh" "$@"; }

run_tests() {
  local passes=${MCPD_CI_PASSES:-normal,asan,tsan,fuzz} rc=0
  timings=()
  [[ ,$passes, == *,normal,* ]] && { timed "normal suite" ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" || rc=1; }
  [[ ,$passes, == *,asan,* ]] && { timed "asan+ubsan build and suite" sanitizer_pass address || rc=1; }
  [[ ,$passes, == *,tsan,* ]] && { timed "tsan build and tests" sanitizer_pass thread || rc=1; }
  [[ ,$passes, == *,fuzz,* ]] && { timed "fuzz build and runs" env MCPD_FUZZ_SEED="${MCPD_FUZZ_SEED:-1}" \
    "$top/tools/fuzz.sh" "${MCPD_FUZZ_SECONDS:-15}" || rc=1; }
  printf 'setup: %s\n' "${timings[@]}" >&2
  return $rc
}

step=${1:-build}
install_packages
fetch_grammars
build
case "$step" in
  build) ;;
  demo) "$build_dir/bin/mcpd-demo" --server "$build_dir/bin/mcpd" --root "$top" ;;
  test) run_tests ;;
  sanitize) MCPD_CI_PASSES=asan,tsan run_tests ;;
  soak) "$top/tools/soak.sh" ;;
  bench)
    # The peer the pool is measured against: the official TypeScript SDK's echo server, pinned by
    # tools/sdk_echo/package-lock.json; installed once.
    if ! cmp -s "$top/tools/sdk_echo/package-lock.json" "$top/tools/sdk_echo/node_modules/.package-lock.json.installed" 2>/dev/null; then
      (cd "$top/tools/sdk_echo" && npm ci --no-audit --no-fund --loglevel=error >&2 &&
        cp package-lock.json node_modules/.package-lock.json.installed)
    fi
    "$top/tools/bench.sh"; fuzz_pass "${MCPD_FUZZ_SECONDS:-300}" ;;
  *) echo "usage: $0 [build|demo|test|sanitize|bench|soak]" >&2; exit 2 ;;
esac
