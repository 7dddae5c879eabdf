#!/usr/bin/env python3
"""Instructions per call, counted by callgrind in mcpd and in every worker it starts.

Times on a shared 2-core machine are noisy; instruction counts repeat. Each case runs twice, with
a small and a large number of calls, and the difference divided by the difference in calls is the
cost of one call, with start-up and shutdown cancelled out. Workers are run under callgrind too,
through wrapper executables in a temporary worker_dir (seccomp off, no RLIMIT_AS or RLIMIT_NOFILE:
valgrind needs them).

  tools/instructions_per_call.py BIN_DIR [OUT_JSON]     (tools/bench.sh runs it)
"""
import glob, json, os, re, shutil, subprocess, sys, tempfile

bin_dir = os.path.abspath(sys.argv[1])
out_json = sys.argv[2] if len(sys.argv) > 2 else None
small, large = int(os.environ.get("MCPD_IPC_SMALL", "500")), int(os.environ.get("MCPD_IPC_LARGE", "2500"))
kinds = ["parser", "git", "search", "modbus", "testkit"]
trivial = '{"language":"c","code":"int x{k};"}'
workers = '{"default":{"max_open_files":0,"memory_hard_limit_mb":0},"parser":{"min_workers":2,"max_workers":2},' \
          '"testkit":{"min_workers":2,"max_workers":2}}'
cases = [
    ("code_parse, legacy", "code_parse", trivial, ["--mode", "legacy", "--cache_enabled", "false"]),
    ("code_parse, pool", "code_parse", trivial, ["--mode", "pool", "--cache_enabled", "false"]),
    ("code_parse, cache hit", "code_parse", '{"language":"c","code":"int x;"}', ["--mode", "pool"]),
    ("test_echo, legacy", "test_echo", '{"value":"v{k}"}', ["--mode", "legacy", "--cache_enabled", "false"]),
    ("test_echo, pool", "test_echo", '{"value":"v{k}"}', ["--mode", "pool", "--cache_enabled", "false"]),
]


def totals(path):
    text = subprocess.run(["callgrind_annotate", path], capture_output=True, text=True).stdout
    m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", text)
    return int(m.group(1).replace(",", "")) if m else 0


def run(tool, args, flags, calls, scratch):
    for f in glob.glob(os.path.join(scratch, "out.*")):
        os.remove(f)
    mcpd = os.path.join(scratch, "mcpd")
    cmd = [os.path.join(bin_dir, "mcp-load"), "--no-progress", "--json", "--calls", str(calls), "--concurrency", "8",
           "--timeout-ms", "120000", "--tool", tool, "--args", args, "--", mcpd, "--root", "/", "--test_tools", "true",
           "--worker_seccomp", "false", "--worker_dir", scratch, "--workers", workers] + flags
    report = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)
    if report["calls"] != calls or report["ok"] != calls:
        raise SystemExit(f"{tool} {flags}: not every call succeeded: {report['errors']}")
    coordinator = sum(totals(f) for f in glob.glob(os.path.join(scratch, "out.mcpd.*")))
    workers_total = sum(totals(f) for f in glob.glob(os.path.join(scratch, "out.worker.*")))
    return coordinator, workers_total


def main():
    scratch = tempfile.mkdtemp(prefix="mcpd-ipc-")
    try:
        def wrapper(name, target, out):
            path = os.path.join(scratch, name)
            with open(path, "w") as f:
                f.write(f"#!/bin/sh\nexec valgrind --tool=callgrind --callgrind-out-file={scratch}/{out}.%p "
                        f"{target} \"$@\" 2>/dev/null\n")
            os.chmod(path, 0o755)
        wrapper("mcpd", os.path.join(bin_dir, "mcpd"), "out.mcpd")
        for k in kinds:
            wrapper(f"mcpd-worker-{k}", os.path.join(bin_dir, f"mcpd-worker-{k}"), "out.worker")
        results = []
        for name, tool, args, flags in cases:
            c1, w1 = run(tool, args, flags, small, scratch)
            c2, w2 = run(tool, args, flags, large, scratch)
            per = lambda a, b: (b - a) / (large - small)
            results.append({"case": name, "coordinator": per(c1, c2), "workers": per(w1, w2),
                            "total": per(c1 + w1, c2 + w2)})
            print(f"{name:24s} coordinator {results[-1]['coordinator']:9.0f}  workers {results[-1]['workers']:9.0f}  "
                  f"total {results[-1]['total']:9.0f} instructions/call", file=sys.stderr)
        if out_json:
            with open(out_json, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


main()
