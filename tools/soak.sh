#!/usr/bin/env bash
# The soak run (tools/soak.py) on a Release build: MCPD_SOAK_MINUTES (default 30) of mixed calls at
# half of measured capacity with chaos; the report goes to bench/soak.md (or the path given).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
report=${1:-$top/bench/soak.md}
build=${MCPD_BENCH_BUILD_DIR:-$top/build-release}
cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build" -j "${MCPD_JOBS:-$(nproc)}" --target mcp-load mcpd mcpd-worker-parser mcpd-worker-testkit \
  mcpd-worker-git mcpd-worker-search mcpd-worker-modbus >&2
mkdir -p "$(dirname "$report")"
exec /usr/bin/python3 "$top/tools/soak.py" "$build/bin" "$top" "$report" --minutes "${MCPD_SOAK_MINUTES:-30}"
