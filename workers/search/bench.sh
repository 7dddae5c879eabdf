#!/usr/bin/env bash
# Benchmarks search_text through mcpd against ripgrep on one large tree (default /usr/include), in
# one run, alternating the sides, and prints a markdown table of medians and ratios
# (ratio = rg ms / mcpd ms: above 1 means mcpd is faster).
#
#   workers/search/bench.sh [--tree DIR] [--rounds N] [--warm-calls N]
#
# cold: the first search_text call of a fresh mcpd (its worker started, no index yet) against one
#       `rg` run; the page cache is warm for both (an untimed rg runs first). Fresh mcpd each round.
# warm: after the index is built (the bench polls stats.index.pending_files), each pattern is
#       searched by mcpd (L1 cache off, so the tool really runs) and by rg as a fresh process with
#       its output in a pipe, as an agent shells out. Same flags on both sides.
# mcpd is driven through the real stdio protocol by a small Python MCP client. mcpd runs from
# build-release/bin if it has the search worker, else build-search/bin, else build/bin
# (MCPD_BIN_DIR overrides).
set -euo pipefail

tree=/usr/include
rounds=5
warm_calls=5
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tree) tree="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --warm-calls) warm_calls="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/../.." && pwd)"
source "$src/tools/bench_lib.sh"
bin="$(find_mcpd_bin search)"
echo "mcpd: $bin  tree: $tree" >&2

PYTHONPATH="$src/tools" python3 - "$bin" "$tree" "$rounds" "$warm_calls" <<'PY'
import json, os, statistics, subprocess, sys, time
from mcp_stdio import McpStdioClient

bin_dir, tree, rounds, warm_calls = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
mcpd = os.path.join(bin_dir, "mcpd")

# name | search_text arguments | rg flags (same meaning)
cold_case = ("literal", {"pattern": "PTHREAD_MUTEX_INITIALIZER", "fixed_strings": True},
             ["-F", "PTHREAD_MUTEX_INITIALIZER"])
warm_cases = [
    ("literal", {"pattern": "PTHREAD_MUTEX_INITIALIZER", "fixed_strings": True}, ["-F", "PTHREAD_MUTEX_INITIALIZER"]),
    ("identifier regex", {"pattern": r"\bstd::make_shared<\w+>"}, [r"\bstd::make_shared<\w+>"]),
    ("case-insensitive", {"pattern": "deprecated_attribute", "case": "insensitive"}, ["-i", "deprecated_attribute"]),
    ("word", {"pattern": "sockaddr_in6", "word": True}, ["-w", "sockaddr_in6"]),
    ("alternation", {"pattern": "EPOLLEXCLUSIVE|IN_Q_OVERFLOW|MAP_HUGETLB"}, ["EPOLLEXCLUSIVE|IN_Q_OVERFLOW|MAP_HUGETLB"]),
    ("regex with class", {"pattern": r"define\s+BOOST_ASIO_HAS_[A-Z_]+ 1"}, [r"define\s+BOOST_ASIO_HAS_[A-Z_]+ 1"]),
    ("files with matches", {"pattern": "constexpr_if", "output": "files"}, ["-l", "constexpr_if"]),
    # Patterns the index cannot narrow (no 3-byte literal, or one in most files): counts per file.
    ("unselective regex, counts", {"pattern": r"\w+_t\b", "output": "count"}, ["-c", r"\w+_t\b"]),
    ("common word, counts", {"pattern": "return", "fixed_strings": True, "output": "count"}, ["-c", "-F", "return"]),
]

class Client(McpStdioClient):
    def __init__(self):
        super().__init__([mcpd, "--root", tree, "--cache_enabled", "false"])
    def search(self, args):
        args = dict(args, max_results=100000)
        start = time.perf_counter()
        result = self.request("tools/call", {"name": "search_text", "arguments": args})
        return (time.perf_counter() - start) * 1000, result["structuredContent"]

def rg(flags):
    start = time.perf_counter()
    plain = "-l" in flags or "-c" in flags
    out = subprocess.run(["rg", "--no-config", "--no-heading" if plain else "--json"] + flags + ["."],
                         cwd=tree, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    return (time.perf_counter() - start) * 1000, out

def count(structured):
    return len(structured.get("matches", structured.get("files", structured.get("counts", []))))

def rg_count(flags, out):
    lines = out.decode(errors="replace").splitlines()
    if "-l" in flags or "-c" in flags:
        return len(lines)  # files
    return sum(len(json.loads(l)["data"]["submatches"]) for l in lines if '"type":"match"' in l)

rg(cold_case[2])  # warm the page cache
cold_m, cold_r = [], []
for r in range(rounds):
    t_rg, _ = rg(cold_case[2])
    client = Client()
    client.request("tools/list", {})  # the worker is started by now or on the first call, as for an agent
    t_m, _ = client.search(cold_case[1])
    client.close()
    cold_m.append(t_m)
    cold_r.append(t_rg)
    print(f"  cold round {r + 1}: mcpd {t_m:.0f} ms, rg {t_rg:.0f} ms", file=sys.stderr)

client = Client()
t0 = time.perf_counter()
client.search(cold_case[1])
while True:
    _, s = client.search({"pattern": "index_probe_zzqq", "fixed_strings": True})
    if s["stats"]["index"]["pending_files"] == 0 and s["stats"]["index"]["indexed_files"] > 0:
        break
    time.sleep(0.2)
index_s = time.perf_counter() - t0
stats = s["stats"]
rows = []
for name, args, flags in warm_cases:
    ms, rs, counts = [], [], None
    for _ in range(rounds):
        for _ in range(warm_calls):
            t_m, structured = client.search(args)
            t_r, out = rg(flags)
            ms.append(t_m)
            rs.append(t_r)
            counts = (count(structured), rg_count(flags, out), structured["stats"]["files_searched"])
    rows.append((name, args, flags, statistics.median(ms), statistics.median(rs), counts))
    print(f"  {name}: mcpd {rows[-1][3]:.1f} ms, rg {rows[-1][4]:.1f} ms, matches {counts}", file=sys.stderr)
client.close()

files = stats["files_listed"]
print(f"\nTree: {tree}, {files} files searched by default rules; index built in {index_s:.1f} s "
      f"({stats['index']['indexed_files']} files). Medians of {rounds} rounds (cold) and "
      f"{rounds}x{warm_calls} calls (warm); ratio = rg / mcpd.\n")
print("| query | rg flags | matches (mcpd / rg) | files read by mcpd | mcpd ms | rg ms | ratio |")
print("|---|---|---:|---:|---:|---:|---:|")
cm, cr = statistics.median(cold_m), statistics.median(cold_r)
print(f"| cold: {cold_case[0]} (first query, fresh mcpd) | `{' '.join(cold_case[2])}` | | {files} | {cm:.0f} | {cr:.0f} | {cr / cm:.2f}x |")
for name, args, flags, m, r, (nm, nr, searched) in rows:
    print(f"| warm: {name} | `{' '.join(flags)}` | {nm} / {nr} | {searched} | {m:.1f} | {r:.1f} | {r / m:.1f}x |")
PY
