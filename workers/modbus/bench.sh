#!/usr/bin/env bash
# Benchmarks the Modbus poller against a local pymodbus server (tests/support/modbus_server.py) and
# prints a markdown table:
#   (a) scheduling: GROUPS groups of TAGS holding registers at INTERVAL ms for SECONDS, in-process
#       (mcpd-modbus-bench-groups runs the worker's Poller): start lateness p50/p99/max against the
#       k*interval grid, overruns, poll errors;
#   (b) single reads: modbus_read through mcpd (warm worker, one call at a time, via mcp-load) vs
#       mbpoll against the same server in the same run: one mbpoll process per read (how an agent
#       shells out), and mbpoll's own polling loop at its fastest (-l 10, its minimum poll period).
#
#   workers/modbus/bench.sh [--groups N] [--tags N] [--interval-ms N] [--seconds N] [--calls N]
#
# Binaries come from build-release/bin, build-modbus/bin or build/bin (MCPD_BIN_DIR overrides).
# The server is Python: at a few hundred microseconds per request it, not the client, bounds read
# throughput.
set -euo pipefail

groups=10
tags=100
interval=100
seconds=20
calls=2000
while [[ $# -gt 0 ]]; do
  case "$1" in
    --groups) groups="$2"; shift 2 ;;
    --tags) tags="$2"; shift 2 ;;
    --interval-ms) interval="$2"; shift 2 ;;
    --seconds) seconds="$2"; shift 2 ;;
    --calls) calls="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/../.." && pwd)"
source "$src/tools/bench_lib.sh"
bin="$(find_mcpd_bin modbus)"
for b in mcpd mcpd-worker-modbus mcpd-modbus-bench-groups mcp-load; do
  [[ -x "$bin/$b" ]] || { echo "bench.sh: $bin/$b is missing; build it in Release first" >&2; exit 1; }
done
command -v mbpoll > /dev/null || { echo "bench.sh: mbpoll is not installed (apt-get install mbpoll)" >&2; exit 1; }

work="$(mktemp -d)"
server_pid=""
cleanup() {
  # The killed server exits 143; under set -e that status must not become the script's.
  [[ -n "$server_pid" ]] && kill "$server_pid" 2> /dev/null && { wait "$server_pid" 2> /dev/null || true; }
  rm -rf "$work"
}
trap cleanup EXIT

port="$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
/usr/bin/python3 "$src/tests/support/modbus_server.py" "$port" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  (echo > "/dev/tcp/127.0.0.1/$port") 2> /dev/null && break
  sleep 0.1
done

echo "(a) $groups groups x $tags tags at $interval ms for $seconds s ..." >&2
"$bin/mcpd-modbus-bench-groups" 127.0.0.1 "$port" "$groups" "$tags" "$interval" "$seconds" > "$work/groups.jsonl"

echo "(b) $calls modbus_read calls through mcpd ..." >&2
args="{\"host\":\"127.0.0.1\",\"port\":$port,\"table\":\"holding\",\"address\":0,\"count\":10}"
"$bin/mcp-load" --calls "$calls" --warmup 200 --concurrency 1 --tool modbus_read --args "$args" --json --no-progress \
  -- "$bin/mcpd" --root "$work" --cache_enabled false --modbus "{\"db_path\":\"$work/mcpd.sqlite\",\"allowed_hosts\":[\"127.0.0.1\"]}" \
  > "$work/mcpd.json" 2> "$work/mcp-load.txt"

echo "(b) mbpoll: 200 processes, then its own loop for 5 s ..." >&2
/usr/bin/python3 - "$port" "$work" << 'EOF'
import json, statistics, subprocess, sys, time
port, work = sys.argv[1], sys.argv[2]
cmd = ["mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "0", "-c", "10", "-0", "-1", "127.0.0.1"]
times = []
for _ in range(200):
    t = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    times.append((time.perf_counter() - t) * 1000)
loop = subprocess.run(["timeout", "-s", "INT", "5", "mbpoll", "-m", "tcp", "-p", port, "-a", "1", "-r", "0", "-c", "10",
                       "-0", "-l", "10", "127.0.0.1"], capture_output=True, text=True)
polls = loop.stdout.count("[0]:")
json.dump({"process_p50_ms": statistics.median(times), "process_rate": 1000 / statistics.mean(times),
           "loop_rate": polls / 5.0}, open(f"{work}/mbpoll.json", "w"))
EOF

/usr/bin/python3 - "$work" "$groups" "$tags" "$interval" "$seconds" "$calls" << 'EOF'
import json, sys
work, groups, tags, interval, seconds, calls = sys.argv[1:]
lines = [json.loads(l) for l in open(f"{work}/groups.jsonl")]
s = lines[-1]
m = json.load(open(f"{work}/mcpd.json"))
b = json.load(open(f"{work}/mbpoll.json"))

def find(d, *keys):
    for k in keys:
        if isinstance(d, dict) and k in d:
            return d[k]
    return None

lat = find(m, "latency_us", "latency") or {}
p50_us = find(lat, "p50", "p50_us")
p99_us = find(lat, "p99", "p99_us")
rate = find(m, "throughput_per_s", "throughput")
print(f"**Scheduling** ({groups} groups x {tags} tags, {interval} ms, {seconds} s, in-process Poller, "
      f"pymodbus server on loopback): each group is one 100-register request per poll.\n")
print("| polls | errors | overruns | start lateness p50 (worst group) | p99 (worst group) | max | samples written | dropped |")
print("|---:|---:|---:|---:|---:|---:|---:|---:|")
print(f"| {s['polls']} | {s['errors']} | {s['overruns']} | {s['worst_p50_ms']:.3f} ms | {s['worst_p99_ms']:.3f} ms | "
      f"{s['worst_max_ms']:.3f} ms | {s['writer']['written']} | {s['writer']['dropped']} |")
print()
print(f"**Single reads** (10 holding registers, one at a time, same server, same run; {calls} mcpd calls):\n")
print("| client | p50 latency | reads/s | vs mcpd |")
print("|---|---:|---:|---:|")
mcpd_p50 = p50_us / 1000 if p50_us is not None else float("nan")
print(f"| mcpd `modbus_read` (pool, warm worker, mcp-load) | {mcpd_p50:.3f} ms (p99 {p99_us/1000 if p99_us else float('nan'):.3f}) | {rate:.0f} | 1.00x |")
print(f"| `mbpoll -1` (one process per read) | {b['process_p50_ms']:.3f} ms | {b['process_rate']:.0f} | "
      f"{b['process_p50_ms']/mcpd_p50:.1f}x slower |")
print(f"| `mbpoll -l 10` (its own loop, 10 ms minimum period) | - | {b['loop_rate']:.0f} | bounded by its period |")
EOF
