#!/usr/bin/python3
"""mcpd's soak run: a long mixed load at about half of measured capacity, with chaos.

usage: tools/soak.py BIN_DIR SOURCE_DIR REPORT.md [--minutes 30] [--kill-ms 3000]
                     [--hang-every-s 60] [--modbus-restart-s 180]

One mcpd serves parser, git, search and Modbus calls (a real pymodbus server on loopback) while
  - mcp-load SIGKILLs one of mcpd's workers every --kill-ms,
  - about once every --hang-every-s a call hangs (test_sleep far past its deadline),
  - the Modbus server is killed and restarted on the same port every --modbus-restart-s.
It first measures capacity with the same mix (closed loop, no chaos), then runs the open loop at
half of it. The report: calls, failures by class, lost calls (must be 0), mcpd's RSS and open file
descriptors at the start and the end of the run, and zombies (children of mcpd that stayed
unreaped across two samples; must be 0). Exit status 1 when a call was lost or a zombie stayed.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time

SAMPLE_S = 5.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_modbus(source, port):
    proc = subprocess.Popen(["/usr/bin/python3", os.path.join(source, "tests/support/modbus_server.py"),
                             str(port), "127.0.0.1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc
        except OSError:
            if proc.poll() is not None:
                sys.exit("soak: the Modbus server exited at start")
            time.sleep(0.1)  # polling for a port to open: nothing to wait on instead
    proc.kill()
    sys.exit("soak: the Modbus server did not listen within 20 s")


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def proc_state(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def fd_count(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def find_mcpd(load_pid, timeout_s=30):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for c in children(load_pid):
            try:
                with open(f"/proc/{c}/comm") as f:
                    if f.read().strip() == "mcpd":
                        return c
            except OSError:
                pass
        time.sleep(0.1)  # mcp-load starts mcpd in its own time
    return None


def mix(source, port, hang_weight):
    entries = [
        {"tool": "code_parse", "args": {"language": "c", "code": "int f{k}(void) { return {k}; }"}, "weight": 4},
        {"tool": "code_outline", "args": {"path": "workers/runtime/roots.cpp"}, "weight": 2},
        {"tool": "code_query", "args": {"language": "python", "code": "def f{k}(): pass\n",
                                        "query": "(function_definition name: (identifier) @fn)"}, "weight": 2},
        {"tool": "git_log", "args": {"repo_path": ".", "max_count": 5}, "weight": 1},
        {"tool": "search_text", "args": {"pattern": "soak_needle_{k}", "path": "coordinator"}, "weight": 1},
        {"tool": "modbus_read", "args": {"host": "127.0.0.1", "port": port, "unit": 1, "table": "holding",
                                         "address": 0, "count": 10}, "weight": 2},
    ]
    if hang_weight > 0:
        entries.append({"tool": "test_sleep", "args": {"ms": 600000}, "weight": hang_weight})
    return entries


def run_load(bin_dir, args, server, out_json, stderr_path):
    cmd = [os.path.join(bin_dir, "mcp-load"), "--no-progress", "--json"] + args + ["--"] + server
    with open(out_json, "w") as out, open(stderr_path + ".load", "w") as err:
        return subprocess.Popen(cmd, stdout=out, stderr=err)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("source_dir")
    ap.add_argument("report")
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--kill-ms", type=int, default=3000)
    ap.add_argument("--hang-every-s", type=float, default=60)
    ap.add_argument("--modbus-restart-s", type=float, default=180)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="mcpd-soak-")
    port = free_port()
    modbus = start_modbus(a.source_dir, port)
    server = [os.path.join(a.bin_dir, "mcpd"), "--root", a.source_dir, "--test_tools", "true",
              "--tool_timeouts_ms", json.dumps({"test_sleep": 2000}),
              "--modbus", json.dumps({"allowed_hosts": ["127.0.0.1"]}),
              "--workers", json.dumps({"parser": {"min_workers": 2, "max_workers": 4}}),
              "--log_level", "warning"]
    try:
        # Capacity, with the same mix less the hung calls, closed loop at concurrency 8.
        with open(os.path.join(work, "mix_capacity.json"), "w") as f:
            json.dump(mix(a.source_dir, port, 0), f)
        cap_json = os.path.join(work, "capacity.json")
        p = run_load(a.bin_dir, ["--mix", f.name, "--concurrency", "8", "--duration", "10", "--warmup", "200",
                                 "--timeout-ms", "10000"], server, cap_json, os.path.join(work, "capacity"))
        p.wait()
        capacity = json.load(open(cap_json))["throughput_per_s"]
        rate = max(1.0, capacity / 2)
        total_weight = sum(e["weight"] for e in mix(a.source_dir, port, 0))
        # One hung call in every rate * hang_every_s calls.
        hang_weight = total_weight / max(1.0, rate * a.hang_every_s - 1)
        with open(os.path.join(work, "mix_soak.json"), "w") as f:
            json.dump(mix(a.source_dir, port, hang_weight), f)
        soak_json = os.path.join(work, "soak.json")
        duration = a.minutes * 60
        load = run_load(a.bin_dir, ["--mix", f.name, "--rate", f"{rate:.1f}", "--duration", f"{duration:.0f}",
                                    "--chaos-ms", str(a.kill_ms), "--timeout-ms", "15000",
                                    "--server-stderr", os.path.join(work, "mcpd.log")],
                        server, soak_json, os.path.join(work, "soak"))
        mcpd = find_mcpd(load.pid)
        if mcpd is None:
            load.kill()
            sys.exit("soak: mcp-load did not start mcpd")
        started = time.monotonic()
        next_restart = started + a.modbus_restart_s
        first = last = None
        suspects, zombies, restarts, peak_rss = set(), set(), 0, 0
        while load.poll() is None:
            time.sleep(SAMPLE_S)  # the sampling period of the monitor
            now = time.monotonic()
            sample = (rss_kib(mcpd), fd_count(mcpd))
            if sample[0] is None:
                break  # mcpd has exited: mcp-load is reporting
            peak_rss = max(peak_rss, sample[0])
            if first is None and now - started >= 30:
                first = sample  # after warm-up: pools and caches at their working size
            if now - started <= duration - SAMPLE_S:
                last = sample
            z = {c for c in children(mcpd) if proc_state(c) == "Z"}
            zombies |= z & suspects
            suspects = z
            if now >= next_restart and now - started < duration - 10:
                modbus.kill()
                modbus.wait()
                modbus = start_modbus(a.source_dir, port)
                restarts += 1
                next_restart = now + a.modbus_restart_s
        load.wait()
        report = json.load(open(soak_json))
    finally:
        modbus.kill()
        modbus.wait()
    errors = report["errors"]
    lost = errors["lost"]
    verdict = "PASS" if lost == 0 and not zombies else "FAIL"
    lines = [
        f"## Soak: {a.minutes:g} minutes of mixed calls with chaos\n",
        f"**{verdict}**. Capacity of the mix (closed loop, concurrency 8, no chaos): {capacity:.0f} calls/s; "
        f"the soak ran open loop at {rate:.0f} calls/s for {report['duration_s']:.0f} s with a worker SIGKILLed "
        f"every {a.kill_ms} ms ({report['chaos']['kills']} kills), a call hung about every {a.hang_every_s:g} s "
        f"(test_sleep past its 2 s deadline) and the Modbus server restarted every {a.modbus_restart_s:g} s "
        f"({restarts} restarts).\n",
        "| calls | ok | lost | tool errors | timeouts | JSON-RPC errors by code | retried by mcpd |",
        "|---|---|---|---|---|---|---|",
        f"| {report['calls']} | {report['ok']} | **{lost}** | {errors['tool_error']} | {errors['timeout']} | "
        f"{json.dumps(errors['jsonrpc'])} | {report['chaos']['retried']} |\n",
        "| mcpd | at start (after 30 s) | at end | peak |",
        "|---|---|---|---|",
        f"| RSS | {first[0] / 1024:.1f} MiB | {last[0] / 1024:.1f} MiB | {peak_rss / 1024:.1f} MiB |" if first and last
        else "| RSS | ? | ? | ? |",
        f"| open file descriptors | {first[1]} | {last[1]} | |" if first and last else "| open file descriptors | ? | ? | |",
        f"| zombies (unreaped across two {SAMPLE_S:g} s samples) | | **{len(zombies)}** | |\n",
        "Samples of the errors, by kind: `" + json.dumps(errors.get("samples", {}))[:600] + "`\n",
        f"Raw reports and mcpd's log: `{work}`.\n",
    ]
    text = "\n".join(lines)
    with open(a.report, "w") as f:
        f.write(text)
    print(text)
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
