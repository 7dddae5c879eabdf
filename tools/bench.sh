#!/usr/bin/env bash
# mcpd's benchmark suite. Builds a Release tree in build-release/, runs every benchmark in one go
# with mcp-load, and writes a Markdown results file (bench/results.md, or the path given), which it
# also prints. Figures are medians of alternating rounds measured side by side in this one run, so
# ratios between them hold on the machine at hand even when the absolute numbers do not.
#   tools/bench.sh [RESULTS_FILE]         (./setup.sh bench runs it)
#   MCPD_BENCH_QUICK=1 tools/bench.sh     shorter runs, one round: checks the script, not mcpd
# About 8 minutes on 2 cores (the worker families about half of it), plus the build.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
results=${1:-$top/bench/results.md}
build=${MCPD_BENCH_BUILD_DIR:-$top/build-release}
jobs=${MCPD_JOBS:-$(nproc)}
quick=${MCPD_BENCH_QUICK:-0}

cmake -S "$top" -B "$build" -DCMAKE_BUILD_TYPE=Release >&2
cmake --build "$build" -j "$jobs" --target mcp-load mcpd mcpd-worker-parser mcpd-worker-testkit \
  mcpd-worker-git mcpd-worker-search mcpd-worker-modbus mcpd-modbus-bench-groups >&2

bin=$build/bin
raw=$build/bench  # every JSON report, table and plot of this run, for a closer look
rm -rf "$raw"
mkdir -p "$raw" "$(dirname "$results")"

if [ "$quick" = 1 ]; then rounds=1 dur=1 dur_short=0.5 chaos_dur=2; else rounds=3 dur=3 dur_short=2 chaos_dur=8; fi
trivial='{"language":"c","code":"int x{k};"}'
two_workers='{"parser":{"min_workers":2,"max_workers":2}}'
mcpd=("$bin/mcpd" --root /)
started=$(date +%s)

# Runs mcp-load; a run that lost calls exits 1, which is a finding for the report, not a reason to stop.
load() {
  local name=$1; shift
  echo "bench: $name" >&2
  local words=(mcp-load) arg
  for arg in "$@"; do
    arg=${arg//$bin\//}
    if [[ $arg =~ ^[A-Za-z0-9_./:=,+-]+$ ]]; then words+=("$arg"); else words+=("'${arg//\'/\'\\\'\'}'"); fi
  done
  echo "${words[*]}" > "$raw/$name.cmd"
  "$bin/mcp-load" --no-progress "$@" > "$raw/$name.json" 2> "$raw/$name.txt" || echo "$?" > "$raw/$name.exit"
}

# (a) pool vs legacy on a trivial call; every call a miss (cache off, and its code varies anyway).
for c in 1 32; do
  load "a_pool_vs_legacy_c$c" --compare --rounds "$rounds" --duration "$dur" --warmup 200 --concurrency "$c" \
    --tool code_parse --args "$trivial" --json --plot "$raw/a_pool_vs_legacy_c$c.svg" \
    -- "${mcpd[@]}" --cache_enabled false --mode legacy \
    --vs "${mcpd[@]}" --cache_enabled false --mode pool --workers "$two_workers"
done

# (b) cache hits (the same arguments every call) vs misses (code varies with k), rounds alternating.
for c in 1 32; do
  for round in $(seq "$rounds"); do
    load "b_cache_hit_c${c}_r$round" --duration "$dur_short" --warmup 50 --concurrency "$c" --tool code_parse \
      --args '{"language":"c","code":"int x;"}' --json -- "${mcpd[@]}" --workers "$two_workers"
    load "b_cache_miss_c${c}_r$round" --duration "$dur_short" --warmup 50 --concurrency "$c" --tool code_parse \
      --args "$trivial" --json -- "${mcpd[@]}" --workers "$two_workers"
  done
done

# (c, e) chaos: a worker SIGKILLed every 250 ms under a mix of the three parser tools (all idempotent);
# mcpd's stderr kept for its "worker ready" lines.
cat > "$raw/chaos_mix.json" <<'EOF'
[{"tool": "code_parse", "args": {"language": "c", "code": "int f{k}(void) { return {k}; }"}, "weight": 3},
 {"tool": "code_outline", "args": {"language": "python", "code": "class C{k}:\n    def m(self):\n        return {k}\n"}, "weight": 1},
 {"tool": "code_query", "args": {"language": "c", "code": "int g{k}(int a) { return a; }", "query": "(function_definition) @f"}, "weight": 1}]
EOF
load c_chaos --mix "$raw/chaos_mix.json" --concurrency 8 --duration "$chaos_dur" --warmup 100 --chaos-ms 250 \
  --timeout-ms 10000 --json --plot "$raw/c_chaos.svg" --server-stderr "$raw/c_chaos.mcpd.log" \
  -- "${mcpd[@]}" --cache_enabled false --workers "$two_workers"

# (d) the parser tools on real files of several sizes, one call at a time, through the pool.
python_dir=$(ls -d /usr/lib/python3.* 2>/dev/null | sort -V | tail -1)
files=(
  "c /usr/include/stdio.h"
  "python $python_dir/argparse.py"
  "cpp /usr/include/doctest/doctest.h"
  "c /usr/include/sqlite3.h"
  "c $top/.deps/grammars/tree-sitter-c/src/parser.c"
  "c $top/.deps/grammars/tree-sitter-cpp/src/parser.c"
)
: > "$raw/d_files.txt"
for entry in "${files[@]}"; do
  read -r language path <<< "$entry"
  [ -f "$path" ] || { echo "bench: skipping missing $path" >&2; continue; }
  size=$(stat -c %s "$path")
  name=$(basename "$path")
  # The grammars' files are all parser.c: name them by their grammar.
  [ "$name" = parser.c ] && name="$(basename "$(dirname "$(dirname "$path")")")_$name"
  name=$(tr '.-' '__' <<< "$name")
  for tool in code_parse code_outline; do
    if [ "$size" -gt 1000000 ]; then
      # Generated parser tables: code_outline takes longer than its 30 s deadline on these (one
      # call shows it); the 17 MB one is parsed only.
      if [ "$tool" = code_outline ] && [ "$size" -gt 8000000 ]; then continue; fi
      if [ "$tool" = code_outline ]; then how=(--calls 1); else how=(--calls 3 --warmup 1); fi
    else
      how=(--duration "$dur_short" --warmup 2)
    fi
    load "d_${tool}_$name" "${how[@]}" --timeout-ms 35000 --tool "$tool" \
      --args "{\"language\":\"$language\",\"path\":\"$path\"}" --json \
      -- "${mcpd[@]}" --cache_enabled false --max_file_bytes 33554432 --workers "$two_workers"
    echo "d_${tool}_$name $tool $language $size $path" >> "$raw/d_files.txt"
  done
done

# (f) the smallest call there is, an echo, on three servers driven by the same client, rounds
# alternating: mcpd's pool, mcpd's legacy path, and the official TypeScript SDK's stdio server
# (tools/sdk_echo, installed by ./setup.sh bench).
echo_pool=("${mcpd[@]}" --test_tools true --cache_enabled false --mode pool --workers '{"testkit":{"min_workers":2,"max_workers":2}}')
echo_legacy=("${mcpd[@]}" --test_tools true --cache_enabled false --mode legacy)
for round in $(seq "$rounds"); do
  load "f_echo_pool_r$round" --duration "$dur" --warmup 500 --concurrency 32 --tool test_echo --args '{"value":"v{k}"}' \
    --json -- "${echo_pool[@]}"
  load "f_echo_legacy_r$round" --duration "$dur" --warmup 500 --concurrency 32 --tool test_echo --args '{"value":"v{k}"}' \
    --json -- "${echo_legacy[@]}"
  if [ -d "$top/tools/sdk_echo/node_modules" ]; then
    load "f_echo_sdk_r$round" --duration "$dur" --warmup 500 --concurrency 32 --tool echo --args '{"value":"v{k}"}' \
      --json -- node "$top/tools/sdk_echo/server.js"
  fi
done

# (g) instructions per call (callgrind, mcpd and its workers), which repeat where times do not.
if command -v valgrind >/dev/null 2>&1; then
  if [ "$quick" = 1 ]; then ipc=(env MCPD_IPC_SMALL=50 MCPD_IPC_LARGE=150); else ipc=(env); fi
  "${ipc[@]}" python3 "$top/tools/instructions_per_call.py" "$bin" "$raw/g_instructions.json" 2> "$raw/g_instructions.txt" ||
    echo "$?" > "$raw/g_instructions.exit"
fi

elapsed=$(( $(date +%s) - started ))
python3 - "$raw" "$results" "$top" "$elapsed" "$rounds" <<'PY'
import glob, json, os, statistics, subprocess, sys
from datetime import datetime, timezone

raw, results, top, elapsed, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])

def load(name):
    try:
        with open(os.path.join(raw, name + ".json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

def cmd(name):
    with open(os.path.join(raw, name + ".cmd")) as f:
        return f.read().strip()

def exit_note(name):
    p = os.path.join(raw, name + ".exit")
    return f" (mcp-load exited {open(p).read().strip()})" if os.path.exists(p) else ""

med = statistics.median
out = []
w = out.append

def sh(*args):
    try:
        return subprocess.run(args, capture_output=True, text=True, cwd=top).stdout.strip()
    except OSError:
        return ""

cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown CPU")
commit = sh("git", "rev-parse", "--short", "HEAD") or "unknown"
dirty = " (with uncommitted changes)" if sh("git", "status", "--porcelain", "--untracked-files=no") else ""
w("# mcpd benchmark results\n")
w(f"{datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit {commit}{dirty}; {os.cpu_count()} CPUs ({cpu}); "
  f"Release build; the whole suite took {elapsed} s. Produced by `tools/bench.sh` (or `./setup.sh bench`).\n")
w("Latencies are from mcp-load: exact nearest-rank percentiles over every measured call, in µs, measured "
  "from the moment a call was written (closed loop). Where rounds are given, each figure is the median "
  f"of {rounds} rounds run alternately (A, B, A, B, ...) in this one run. The machine runs the harness, "
  "mcpd and its workers on the same cores: ratios are the figures to carry to another machine.\n")

# (a)
w("## Pool vs legacy: a trivial `code_parse`, every call a cache miss\n")
w("A = `--mode legacy` (in-process, legacy_threads 2), B = `--mode pool` with 2 parser workers; cache off.\n")
w("| concurrency | legacy p50 µs | pool p50 µs | pool extra cost per call at p50 | legacy p99 µs | pool p99 µs | legacy calls/s | pool calls/s | pool/legacy throughput | server CPU µs/call legacy / pool | lost |")
w("|---|---|---|---|---|---|---|---|---|---|---|")
for c in (1, 32):
    name = f"a_pool_vs_legacy_c{c}"
    r = load(name)
    if not r:
        w(f"| {c} | run failed{exit_note(name)} |||||||||| ")
        continue
    a, b = r["a"]["median"], r["b"]["median"]
    lost = r["a"]["totals"]["lost"] + r["b"]["totals"]["lost"]
    w(f"| {c} | {a['latency_us']['p50']:.0f} | {b['latency_us']['p50']:.0f} | **{r['diff_b_minus_a']['p50_us']:+.0f} µs** | "
      f"{a['latency_us']['p99']:.0f} | {b['latency_us']['p99']:.0f} | {a['throughput_per_s']:.0f} | {b['throughput_per_s']:.0f} | "
      f"**{r['ratio_b_over_a']['throughput_per_s']:.2f}** | {a['cpu_us_per_call']:.0f} / {b['cpu_us_per_call']:.0f} | {lost} |")
w("")
for c in (1, 32):
    w(f"- concurrency {c}: `{cmd(f'a_pool_vs_legacy_c{c}')}`")
w("")

# (b)
w("## Cache hits vs misses (pool, 2 workers, cache on)\n")
w("Hits: the same arguments on every call; misses: the code varies with the call number.\n")
w("| concurrency | hit p50 µs | miss p50 µs | miss/hit p50 | hit calls/s | miss calls/s | hit/miss throughput | server CPU µs/call hit / miss | hit ratio seen (hits run / misses run) |")
w("|---|---|---|---|---|---|---|---|---|")
for c in (1, 32):
    hit = [load(f"b_cache_hit_c{c}_r{i}") for i in range(1, rounds + 1)]
    miss = [load(f"b_cache_miss_c{c}_r{i}") for i in range(1, rounds + 1)]
    hit, miss = [x for x in hit if x], [x for x in miss if x]
    if not hit or not miss:
        w(f"| {c} | run failed ||||||||")
        continue
    hp50 = med([x["latency_us"]["p50"] for x in hit]); mp50 = med([x["latency_us"]["p50"] for x in miss])
    ht = med([x["throughput_per_s"] for x in hit]); mt = med([x["throughput_per_s"] for x in miss])
    hr = med([x["cache"].get("hit_ratio", 0) for x in hit]); mr = med([x["cache"].get("hit_ratio", 0) for x in miss])
    hc = med([x["server_resources"]["cpu_us_per_call"] for x in hit]); mc = med([x["server_resources"]["cpu_us_per_call"] for x in miss])
    w(f"| {c} | {hp50:.0f} | {mp50:.0f} | {mp50 / hp50:.2f} | {ht:.0f} | {mt:.0f} | **{ht / mt:.2f}** | {hc:.0f} / {mc:.0f} | {hr:.3f} / {mr:.3f} |")
w("")
for c in (1, 32):
    w(f"- concurrency {c}, hits: `{cmd(f'b_cache_hit_c{c}_r1')}`; misses: the same with `--args '{{\"language\":\"c\",\"code\":\"int x{{k}};\"}}'`")
w("")

# (f)
w("## The smallest call: an echo on mcpd's pool, mcpd's legacy path and the official TypeScript SDK\n")
w("Closed loop at concurrency 32, the same client (mcp-load) for each; medians of the rounds. mcpd runs "
  "`test_echo` (cache off; the pool with 2 testkit workers), the SDK its own stdio server with one `echo` tool "
  "(`tools/sdk_echo`, the SDK pinned by its lock file).\n")
w("| server | calls/s | p50 µs | p99 µs | server CPU µs/call | throughput vs the SDK |")
w("|---|---|---|---|---|---|")
echo = {}
for side in ("pool", "legacy", "sdk"):
    runs = [x for x in (load(f"f_echo_{side}_r{i}") for i in range(1, rounds + 1)) if x]
    if runs:
        echo[side] = {"t": med([x["throughput_per_s"] for x in runs]), "p50": med([x["latency_us"]["p50"] for x in runs]),
                      "p99": med([x["latency_us"]["p99"] for x in runs]),
                      "cpu": med([x["server_resources"]["cpu_us_per_call"] for x in runs])}
for side, label in (("pool", "mcpd, pool"), ("legacy", "mcpd, legacy"), ("sdk", "TypeScript SDK")):
    if side not in echo:
        w(f"| {label} | not run (see the raw reports) |||||")
        continue
    e = echo[side]
    vs = f"**{e['t'] / echo['sdk']['t']:.2f}x**" if "sdk" in echo else "-"
    w(f"| {label} | {e['t']:.0f} | {e['p50']:.0f} | {e['p99']:.0f} | {e['cpu']:.1f} | {vs} |")
if "pool" in echo and "legacy" in echo:
    w(f"\nPool vs legacy on the echo: throughput **{echo['pool']['t'] / echo['legacy']['t']:.2f}x**, server CPU per call "
      f"**{echo['pool']['cpu'] / echo['legacy']['cpu']:.2f}x**.")
w("")
for side in ("pool", "legacy", "sdk"):
    if os.path.exists(os.path.join(raw, f"f_echo_{side}_r1.cmd")):
        w(f"- {side}: `{cmd(f'f_echo_{side}_r1')}`")
w("")

# (g)
w("## Instructions per call (callgrind)\n")
try:
    ipc = json.load(open(os.path.join(raw, "g_instructions.json")))
except (OSError, ValueError):
    ipc = None
if not ipc:
    w("Not measured (valgrind missing, or the run failed: see g_instructions.txt).\n")
else:
    w("Counted in mcpd and in each worker it starts (workers under callgrind through wrappers, seccomp off), "
      "once with few and once with many calls: the difference per call, so start-up cancels out. Concurrency 8, "
      "cache off unless a hit. `tools/instructions_per_call.py`.\n")
    w("| case | coordinator | workers | total |")
    w("|---|---|---|---|")
    for r in ipc:
        w(f"| {r['case']} | {r['coordinator']:,.0f} | {r['workers']:,.0f} | **{r['total']:,.0f}** |")
    w("")

# (c, e)
w("## Chaos: a parser worker SIGKILLed every 250 ms under load\n")
r = load("c_chaos")
if not r:
    w(f"The chaos run failed{exit_note('c_chaos')}.\n")
else:
    ch = r["chaos"]
    failed = ch["failed_calls"]
    rate = failed / r["calls"] if r["calls"] else 0
    pool = (r.get("server_pools") or {}).get("parser", {})
    verdict = "PASS" if ch["lost_calls"] == 0 and failed == 0 else "FAIL"
    w(f"**{verdict}**: {r['calls']} calls (a mix of code_parse, code_outline, code_query; all idempotent) at concurrency 8 "
      f"for {r['duration_s']:.1f} s, {ch['kills']} workers killed: **lost {ch['lost_calls']}**, failed {failed} "
      f"(idempotent failure rate {rate:.4%}), retried by mcpd {ch['retried']}, restarts {pool.get('restarts', '?')}; "
      f"errors by kind {json.dumps(r['errors'])}.\n")
    l = r["latency_us"]
    w(f"Latency under chaos: p50 {l['p50']:.0f} µs, p99 {l['p99']:.0f} µs, p99.9 {l['p99_9']:.0f} µs, max {l['max']:.0f} µs; "
      f"{r['throughput_per_s']:.0f} calls/s.\n")
    # (e) SIGKILL -> replacement ready, from the kill times mcp-load logged and mcpd's "worker ready" lines.
    def ts_ms(ts):
        return datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp() * 1000
    ready, spawn = [], []
    try:
        for line in open(os.path.join(raw, "c_chaos.mcpd.log")):
            try:
                e = json.loads(line)
            except ValueError:
                continue
            if e.get("msg") == "worker ready":
                ready.append(ts_ms(e["ts"]))
                spawn.append(e.get("ms", 0))
    except OSError:
        pass
    ready.sort()
    gaps = []
    for k in ch.get("kill_log", []):
        after = [t for t in ready if t >= k["unix_ms"] - 1]
        if after:
            gaps.append(after[0] - k["unix_ms"])
    w("### Time from SIGKILL of a worker to a replacement ready\n")
    if gaps:
        gaps.sort()
        p99 = gaps[max(0, -(-99 * len(gaps) // 100) - 1)]
        w(f"- SIGKILL to the next \"worker ready\" (mcp-load's kill time vs mcpd's log timestamp, ms resolution): "
          f"median {med(gaps):.0f} ms, p99 {p99:.0f} ms, max {gaps[-1]:.0f} ms over {len(gaps)} kills.")
    if spawn:
        w(f"- spawn to hello (the \"ms\" of mcpd's \"worker ready\" lines): median {med(spawn):.1f} ms, max {max(spawn):.1f} ms "
          f"over {len(spawn)} spawns.")
    s2r = pool.get("spawn_to_ready_ms")
    if s2r:
        w(f"- mcpd_status `executor.pools.parser.spawn_to_ready_ms`: p50 {s2r['p50']:.1f} ms, p99 {s2r['p99']:.1f} ms.")
    l2r = pool.get("loss_to_ready_ms")
    if l2r:
        w(f"- mcpd_status `executor.pools.parser.loss_to_ready_ms` (death noticed to replacement's hello): "
          f"p50 {l2r['p50']:.1f} ms, p99 {l2r['p99']:.1f} ms over {l2r.get('count', '?')} losses.")
    w("")
w(f"- `{cmd('c_chaos')}` (mix: `{open(os.path.join(raw, 'chaos_mix.json')).read().strip()}`)\n")

# (d)
w("## Parser tools on real files (pool, one call at a time, cache off)\n")
w("MB/s = file size / p50 latency of the call, which includes reading the file, parsing, building "
  "and sending the (size-limited) result. MB = 10^6 bytes.\n")
w("| file | language | size | tool | calls | p50 | MB/s | result |")
w("|---|---|---|---|---|---|---|---|")
for line in open(os.path.join(raw, "d_files.txt")):
    name, tool, language, size, path = line.split(maxsplit=4)
    size = int(size); path = path.strip()
    r = load(name)
    short = path.replace(top + "/", "")
    human = f"{size / 1e6:.2f} MB" if size >= 1e6 else f"{size / 1e3:.0f} kB"
    if not r:
        w(f"| {short} | {language} | {human} | {tool} | | | | run failed{exit_note(name)} |")
        continue
    e = r["errors"]
    if r["ok"] == 0:
        what = "timeout (its 30 s deadline)" if e["timeout"] or e["jsonrpc"] or e["tool_error"] else "failed"
        w(f"| {short} | {language} | {human} | {tool} | {r['calls']} | {r['latency_us']['p50'] / 1e3:.0f} ms | - | **{what}**: {json.dumps(e)} |")
        continue
    p50 = r["latency_us"]["p50"]
    mbs = size / (p50 / 1e6) / 1e6
    p50s = f"{p50 / 1e3:.1f} ms" if p50 >= 1000 else f"{p50:.0f} µs"
    note = "ok" if e["total"] == 0 else json.dumps(e)
    w(f"| {short} | {language} | {human} | {tool} | {r['calls']} | {p50s} | {mbs:.1f} | {note} |")
w("")
w("- e.g. `" + cmd(sorted(l.split()[0] for l in open(os.path.join(raw, 'd_files.txt')))[0]) + "`\n")
w(f"Raw JSON reports, tables and SVG plots of this run: `{raw}`.\n")

text = "\n".join(out) + "\n"
with open(results, "w") as f:
    f.write(text)
PY

# Each worker family's own benchmark against the tool it competes with, in the same run.
for family in git search modbus; do
  echo "running workers/$family/bench.sh ..." >&2
  { printf '\n## %s worker (workers/%s/bench.sh)\n\n' "$family" "$family"
    MCPD_BIN_DIR="$bin" "$top/workers/$family/bench.sh" || echo "(the $family benchmark failed; see stderr)"
  } >> "$results"
done
cat "$results"
