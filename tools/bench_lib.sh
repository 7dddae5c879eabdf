# Shared by the worker families' bench.sh scripts (source it).

# find_mcpd_bin KIND prints the directory holding mcpd and mcpd-worker-KIND: $MCPD_BIN_DIR when
# set, else the first of build-release, build-KIND and build under the source tree that has both.
find_mcpd_bin() {
  local kind=$1 src dir
  if [[ -n "${MCPD_BIN_DIR:-}" ]]; then echo "$MCPD_BIN_DIR"; return 0; fi
  src="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  for dir in build-release "build-$kind" build; do
    if [[ -x "$src/$dir/bin/mcpd" && -x "$src/$dir/bin/mcpd-worker-$kind" ]]; then echo "$src/$dir/bin"; return 0; fi
  done
  echo "bench.sh: no mcpd with mcpd-worker-$kind under build-release, build-$kind or build" >&2
  return 1
}
