#!/usr/bin/env bash
# One entry point for a fresh Debian 12 machine: installs what is missing (Debian packages, pinned
# tree-sitter grammar sources from npm), builds, then runs the step asked for.
#   ./setup.sh demo    set up, build, run the demo (launches mcpd as an MCP client would)
#   ./setup.sh test    set up, build, run the whole test suite with ctest
#   ./setup.sh build   set up and build only
# Idempotent: when everything is present it only checks and runs an incremental build.
set -euo pipefail
cd "$(dirname "$0")"
top=$(pwd)
build_dir=${MCPD_BUILD_DIR:-$top/build}
build_type=${MCPD_BUILD_TYPE:-RelWithDebInfo}
jobs=${MCPD_JOBS:-$(nproc)}

# python3-serial-asyncio: only recommended by python3-pymodbus, but its 3.0 server imports it even
# for TCP (the tests' Modbus server).
apt_packages=(
  build-essential cmake pkg-config git ca-certificates nodejs npm
  libboost1.81-dev nlohmann-json3-dev libtree-sitter-dev libgit2-dev libb2-dev libmodbus-dev
  libsqlite3-dev libcpp-httplib-dev doctest-dev libre2-dev libseccomp-dev
  ripgrep python3 python3-pymodbus python3-serial-asyncio mbpoll
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

build() {
  if [ ! -f "$build_dir/CMakeCache.txt" ]; then
    cmake -S "$top" -B "$build_dir" -DCMAKE_BUILD_TYPE="$build_type" >&2
  fi
  cmake --build "$build_dir" -j "$jobs" >&2
}

step=${1:-build}
install_packages
fetch_grammars
build
case "$step" in
  build) ;;
  demo) "$build_dir/bin/mcpd-demo" --server "$build_dir/bin/mcpd" --root "$top" ;;
  test) ctest --test-dir "$build_dir" --output-on-failure -j "$jobs" ;;
  bench) "$top/tools/bench.sh" ;;
  *) echo "usage: $0 [build|demo|test|bench]" >&2; exit 2 ;;
esac
