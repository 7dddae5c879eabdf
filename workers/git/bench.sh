#!/usr/bin/env bash
# Benchmarks the git worker's read tools through mcpd (warm worker) against the equivalent git CLI
# commands on one generated repository, in one run, and prints a table of median latencies and
# speedups (git time / mcpd time: above 1 means mcpd is faster).
#
#   workers/git/bench.sh [--commits N] [--files N] [--calls N] [--rounds N] [--keep DIR]
#
# The repository is generated with git fast-import (a few seconds): N files in 60 directories, N
# commits each editing 1-3 files (some of them on 20 side branches merged back), 50 branches and
# 20 tags, then `git gc` so it is packed like a clone (commit-graph included); finally a few files
# are edited, staged and added so that status and diff have something to say.
#
# mcpd runs from build-release/bin if it has the git worker, else build-git/bin, else build/bin
# (override with MCPD_BIN_DIR). Each tool is measured with the project's load harness (mcp-load,
# after warm-up calls, one call at a time) when it exists, else with a small Python MCP client; the
# git side runs each command as a fresh process, the way an agent shells out. mcpd's L1 cache is
# off for the main column (it would answer repeated history calls without running the tool); the
# "cached" column shows what a repeated history call costs with it on.
set -euo pipefail

commits=3000
files=3000
calls=30
rounds=3
keep=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --commits) commits="$2"; shift 2 ;;
    --files) files="$2"; shift 2 ;;
    --calls) calls="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --keep) keep="$2"; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "bench.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

src="$(cd "$(dirname "$0")/../.." && pwd)"
source "$src/tools/bench_lib.sh"
bin="$(find_mcpd_bin git)"
load=""
for candidate in "$bin/mcp-load" "$src"/build*/bin/mcp-load; do
  if [[ -x "$candidate" ]]; then load="$candidate"; break; fi
done

if [[ -n "$keep" ]]; then work="$keep"; mkdir -p "$work"; else work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT; fi
repo="$work/repo"

export GIT_CONFIG_NOSYSTEM=1 HOME="$work/home" GIT_AUTHOR_NAME=Bench GIT_AUTHOR_EMAIL=bench@example.com \
  GIT_COMMITTER_NAME=Bench GIT_COMMITTER_EMAIL=bench@example.com
mkdir -p "$HOME"

if [[ ! -d "$repo/.git" ]]; then
  echo "generating a repository: $commits commits, $files files ..." >&2
  git -c init.defaultBranch=main init -q "$repo"
  python3 - "$commits" "$files" <<'PY' | git -C "$repo" fast-import --quiet
import random, sys
commits, files = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
out = sys.stdout.buffer
paths = [f"dir{i % 60:02d}/module_{i:05d}.c" for i in range(files)]
contents = {}
for i, p in enumerate(paths):
    contents[p] = [f"/* {p} */"] + [f"int f{i}_{j}(int x) {{ return x * {j} + {i}; }}" for j in range(40)]
def blob(lines):
    data = ("\n".join(lines) + "\n").encode()
    return b"data %d\n%s\n" % (len(data), data)
def commit(ref, mark, when, message, parents, changes):
    out.write(b"commit %s\nmark :%d\ncommitter Bench <bench@example.com> %d +0000\n" % (ref.encode(), mark, when))
    msg = message.encode()
    out.write(b"data %d\n%s\n" % (len(msg), msg))
    for i, p in enumerate(parents):
        out.write(b"%s :%d\n" % (b"from" if i == 0 else b"merge", p))
    for p in changes:
        out.write(b"M 100644 inline %s\n" % p.encode())
        out.write(blob(contents[p]))
t = 1600000000
commit("refs/heads/main", 1, t, "Initial import", [], paths)
main_tip, mark, branch_tip, side_files = 1, 1, None, set()
hot = paths[:20]  # files edited often, so blame and path-limited logs have history to walk
for n in range(2, commits + 1):
    mark += 1
    t += 600
    changed = rng.sample(paths, rng.randint(1, 3))
    if rng.random() < 0.3:
        changed[0] = rng.choice(hot)
    for p in changed:
        lines = contents[p]
        j = rng.randrange(1, len(lines))
        lines[j] = f"int g{n}_{j}(int x) {{ return x - {n}; }}"
        if rng.random() < 0.3:
            lines.insert(j, f"/* note {n} */")
    side = n % 150
    if side == 1:                 # start a side branch
        commit("refs/heads/side", mark, t, f"Side change {n}", [main_tip], changed)
        branch_tip, side_files = mark, set(changed)
    elif side < 6 and branch_tip:  # more work on it
        commit("refs/heads/side", mark, t, f"Side change {n}", [branch_tip], changed)
        branch_tip = mark
        side_files.update(changed)
    elif side == 6 and branch_tip:  # merge it back, keeping both sides' edits
        commit("refs/heads/main", mark, t, f"Merge side work {n}", [main_tip, branch_tip],
               sorted(set(changed) | side_files))
        main_tip, branch_tip = mark, None
    else:
        commit("refs/heads/main", mark, t, f"Change {n}: edit {', '.join(changed)}", [main_tip], changed)
        main_tip = mark
    if n % 60 == 0:
        out.write(b"reset refs/heads/branch-%04d\nfrom :%d\n\n" % (n, main_tip))
    if n % 150 == 0:
        out.write(b"reset refs/tags/v%d\nfrom :%d\n\n" % (n // 150, main_tip))
PY
  git -C "$repo" reset -q --hard main
  git -C "$repo" gc -q
  # A dirty work tree: edits, staged edits, untracked files.
  mapfile -t tracked < <(git -C "$repo" ls-files)
  for i in 3 17 101 2048; do
    f="${tracked[$((i % ${#tracked[@]}))]}"
    printf 'int extra_%d(void) { return %d; }\n' "$i" "$i" >> "$repo/$f"
  done
  git -C "$repo" add "${tracked[3]}"
  printf 'new\n' > "$repo/untracked.txt"
  git -C "$repo" status >/dev/null  # refresh the index once, as any git user's shell would
  sleep 3                               # past the history cache key's racy window
fi

blame_file="$(git -C "$repo" log --format= --name-only -n 400 | grep . | sort | uniq -c | sort -rn | head -1 | awk '{print $2}')"
log_path="$(dirname "$blame_file")"
show_file="$(git -C "$repo" ls-files | sed -n "$(( files / 6 + 1 ))p")"

# name | tool arguments (JSON, repo_path added) | equivalent git command (run in the repository)
cases=(
  "git_status|{}|git status --porcelain=v1 -z --branch"
  "git_log|{\"max_count\": 50}|git log -n 50 --format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%s"
  "git_log paths|{\"max_count\": 20, \"paths\": [\"$log_path\"]}|git log -n 20 --format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%s -- $log_path"
  "git_log files|{\"max_count\": 20, \"include_files\": true}|git log -n 20 --numstat --format=%H%x00%P%x00%an%x00%ae%x00%aI%x00%s"
  "git_diff|{}|git diff --numstat -p"
  "git_diff staged|{\"staged\": true}|git diff --cached --numstat -p"
  "git_diff revs|{\"from\": \"HEAD~20\", \"to\": \"HEAD\"}|git diff --numstat -p HEAD~20 HEAD"
  "git_show|{}|git show --format=fuller --numstat -p HEAD"
  "git_show path|{\"path\": \"$show_file\"}|git show HEAD:$show_file"
  "git_blame|{\"path\": \"$blame_file\"}|git blame --porcelain HEAD -- $blame_file"
  "git_branches|{}|git branch -a -vv"
)

echo "mcpd: $bin  (harness: ${load:-python client})  repo: $repo" >&2
PYTHONPATH="$src/tools" python3 - "$bin" "$load" "$repo" "$calls" "$rounds" "${cases[@]}" <<'PY'
import json, os, statistics, subprocess, sys, time
from mcp_stdio import McpStdioClient

bin_dir, load, repo, calls, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
cases = [c.split("|", 2) for c in sys.argv[6:]]
mcpd = os.path.join(bin_dir, "mcpd")
warmup = 5

def mcpd_args(cache):
    return [mcpd, "--root", repo, "--cache_enabled", "true" if cache else "false"]

def via_load(tool, args, cache):
    cmd = [load, "--tool", tool, "--args", json.dumps(args), "--calls", str(calls), "--warmup", str(warmup),
           "--json", "--no-progress", "--"] + mcpd_args(cache)
    report = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    if report["ok"] != report["calls"]:
        raise SystemExit(f"{tool}: {report['errors']}")
    return report["latency_us"]["p50"] / 1000.0

def via_client(tool, args, cache):
    client = McpStdioClient(mcpd_args(cache))  # mcp-load is not built
    for _ in range(warmup):
        client.request("tools/call", {"name": tool, "arguments": args})
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        client.request("tools/call", {"name": tool, "arguments": args})
        times.append((time.perf_counter() - start) * 1000)
    client.close()
    return statistics.median(times)

def git_time(command):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        subprocess.run(command, shell=True, cwd=repo, check=True, stdout=subprocess.DEVNULL)
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)

measure = via_load if load else via_client
rows = []
for name, args_text, command in cases:
    tool = name.split()[0]
    args = json.loads(args_text)
    args["repo_path"] = repo
    history = tool in ("git_log", "git_show", "git_blame", "git_branches") or "from" in args
    m, g, c = [], [], []
    for _ in range(rounds):  # alternate the sides so drift hits both
        m.append(measure(tool, args, False))
        g.append(git_time(command))
        if history:
            c.append(measure(tool, args, True))
    rows.append((name, statistics.median(m), statistics.median(g), statistics.median(c) if c else None, command))
    print(f"  {name}: mcpd {rows[-1][1]:.2f} ms, git {rows[-1][2]:.2f} ms", file=sys.stderr)

commits = subprocess.run(["git", "rev-list", "--count", "--all"], cwd=repo, capture_output=True, text=True).stdout.strip()
tracked = len(subprocess.run(["git", "ls-files"], cwd=repo, capture_output=True, text=True).stdout.splitlines())
print(f"\nRepository: {commits} commits, {tracked} files. Median latency of {calls} calls x {rounds} rounds "
      f"(median of round medians). speedup = git / mcpd.\n")
print("| tool | git command | mcpd ms | git ms | speedup | mcpd cached ms |")
print("|---|---|---:|---:|---:|---:|")
for name, m, g, c, command in rows:
    short = command if len(command) < 60 else command[:57] + "..."
    cached = f"{c:.2f}" if c is not None else "not cached"
    print(f"| {name} | `{short}` | {m:.2f} | {g:.2f} | {g / m:.1f}x | {cached} |")
PY
