// The real mcp-load binary against the real mcpd (and its workers), and against a scripted fake
// server whose every answer is known, so the report's counts can be checked exactly.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "temp_dir.h"

using json = nlohmann::json;

namespace {

std::string bin(const std::string& name) { return std::string(MCPD_BINARY_DIR) + "/bin/" + name; }

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// What a run of mcp-load left behind.
struct Run {
  int exit_code = -1;
  json report;
  std::string table;  // its stderr
};

/// Runs mcp-load with `args` (already split), stdout and stderr to files in `dir`.
Run run_mcp_load(const mcpd::test::TempDir& dir, const std::vector<std::string>& args) {
  std::string command = quote(bin("mcp-load"));
  // Appended piece by piece: GCC 12 warns (-Wrestrict, a false positive) on `" " + std::string`.
  for (const auto& a : args) {
    command += ' ';
    command += quote(a);
  }
  auto out = dir.path / "report.json", err = dir.path / "table.txt";
  command += " > ";
  command += quote(out.string());
  command += " 2> ";
  command += quote(err.string());
  int status = std::system(command.c_str());
  Run run;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  run.table = read_file(err);
  std::string text = read_file(out);
  if (!text.empty()) run.report = json::parse(text);
  INFO("mcp-load stderr:\n" << run.table);
  return run;
}

std::vector<std::string> mcpd_command(std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {bin("mcpd"), "--root", MCPD_SOURCE_DIR};
  argv.insert(argv.end(), extra.begin(), extra.end());
  return argv;
}

std::vector<std::string> with_server(std::vector<std::string> args, const std::vector<std::string>& server) {
  args.push_back("--");
  args.insert(args.end(), server.begin(), server.end());
  return args;
}

/// Checks what every report must satisfy: its counts add up and its percentiles are ordered.
void check_sane(const json& r) {
  const json& e = r["errors"];
  std::uint64_t jsonrpc = 0;
  for (const auto& [code, n] : e["jsonrpc"].items()) jsonrpc += n.get<std::uint64_t>();
  CHECK(e["total"] == jsonrpc + e["tool_error"].get<std::uint64_t>() + e["timeout"].get<std::uint64_t>() +
                          e["lost"].get<std::uint64_t>());
  CHECK(r["ok"].get<std::uint64_t>() + e["total"].get<std::uint64_t>() == r["calls"].get<std::uint64_t>());
  const json& l = r["latency_us"];
  CHECK(l["count"].get<std::uint64_t>() == r["calls"].get<std::uint64_t>() - e["lost"].get<std::uint64_t>());
  double previous = 0;
  for (const char* p : {"min", "p50", "p90", "p95", "p99", "p99_9", "max"}) {
    CAPTURE(p);
    CHECK(l[p].get<double>() >= previous);
    previous = l[p].get<double>();
  }
  CHECK(r["duration_s"].get<double>() > 0);
  CHECK(r["throughput_per_s"].get<double>() > 0);
  std::uint64_t in_series = 0;
  for (const auto& n : r["series"]["ok"]) in_series += n.get<std::uint64_t>();
  for (const auto& n : r["series"]["errors"]) in_series += n.get<std::uint64_t>();
  CHECK(in_series == l["count"].get<std::uint64_t>());
}

}  // namespace

TEST_CASE("a one-second closed-loop run against mcpd gives a sane report with no lost calls") {
  mcpd::test::TempDir dir;
  auto plot = dir.path / "plot.svg";
  Run run = run_mcp_load(dir, with_server({"--tool", "code_parse", "--args", R"({"language":"c","code":"int x{k};"})",
                                           "--concurrency", "4", "--duration", "1", "--warmup", "20", "--json",
                                           "--plot", plot.string()},
                                          mcpd_command()));
  REQUIRE(run.exit_code == 0);
  const json& r = run.report;
  check_sane(r);
  CHECK(r["calls"].get<std::uint64_t>() > 50);
  CHECK(r["errors"]["total"] == 0);
  CHECK(r["errors"]["lost"] == 0);
  CHECK(r["anomalies"]["duplicate_responses"] == 0);
  CHECK(r["anomalies"]["unmatched_responses"] == 0);
  // Every call has its own code, so every call is a cache miss, answered by the pool.
  CHECK(r["cache"]["reported"] == true);
  CHECK(r["cache"]["hits"] == 0);
  CHECK(r["cache"]["misses"] == r["calls"]);
  CHECK(r["paths"]["pool"] == r["calls"]);
  CHECK(r["server_resources"]["cpu_s"].get<double>() > 0);
  CHECK(r["server_resources"]["peak_rss_bytes"].get<std::uint64_t>() > 0);
  CHECK(r["server_resources"]["peak_processes"].get<std::uint64_t>() >= 2);  // mcpd and a worker
  CHECK(r["server_pools"]["parser"]["completed"].get<std::uint64_t>() >= r["calls"].get<std::uint64_t>());
  CHECK(r["server_exit"] == "exit 0");
  CHECK(run.table.find("p99.9") != std::string::npos);
  std::string svg = read_file(plot);
  CHECK(svg.rfind("<svg", 0) == 0);
  CHECK(svg.find("</svg>") != std::string::npos);
}

TEST_CASE("repeating the same arguments is served from mcpd's cache and reported as hits") {
  mcpd::test::TempDir dir;
  Run run = run_mcp_load(dir, with_server({"--tool", "code_parse", "--args", R"({"language":"c","code":"int x;"})",
                                           "--calls", "200", "--warmup", "1", "--json"},
                                          mcpd_command()));
  REQUIRE(run.exit_code == 0);
  check_sane(run.report);
  CHECK(run.report["cache"]["hit_ratio"].get<double>() == doctest::Approx(1.0));
}

TEST_CASE("an open-loop run sends exactly rate x duration calls on schedule") {
  mcpd::test::TempDir dir;
  Run run = run_mcp_load(dir, with_server({"--tool", "code_parse", "--args", R"({"language":"c","code":"int x{k};"})",
                                           "--rate", "400", "--duration", "1", "--json"},
                                          mcpd_command()));
  REQUIRE(run.exit_code == 0);
  check_sane(run.report);
  CHECK(run.report["calls"] == 400);
  CHECK(run.report["workload"]["loop"] == "open");
  CHECK(run.report["errors"]["lost"] == 0);
}

TEST_CASE("chaos: SIGKILLing mcpd's workers during the run loses no call") {
  mcpd::test::TempDir dir;
  Run run = run_mcp_load(
      dir, with_server({"--tool", "code_parse", "--args", R"({"language":"c","code":"int x{k};"})", "--concurrency",
                        "8", "--duration", "1.5", "--chaos-ms", "150", "--timeout-ms", "10000", "--json"},
                       mcpd_command({"--cache_enabled", "false", "--workers", R"({"parser":{"min_workers":2}})"})));
  REQUIRE(run.exit_code == 0);
  const json& r = run.report;
  check_sane(r);
  CHECK(r["errors"]["lost"] == 0);
  CHECK(r["chaos"]["lost_calls"] == 0);
  CHECK(r["chaos"]["kills"].get<std::uint64_t>() >= 3);
  REQUIRE(r["chaos"]["retried"].is_number());
  // code_parse is idempotent: a call on a killed worker is retried, not failed.
  CHECK(r["chaos"]["failed_calls"] == 0);
  CHECK(r["server_pools"]["parser"]["restarts"].get<std::uint64_t>() >= 1);
}

TEST_CASE("against a server that drops, fails and refuses calls, each is counted exactly") {
  mcpd::test::TempDir dir;
  // A minimal MCP server: no _meta, no mcpd_status. Call k: k % 10 == 3 is never answered, 5 gets a
  // JSON-RPC error, 7 a tool error, 8 is answered twice; the rest succeed.
  auto script = dir.write("fake_server.py", R"PY(
import json, sys
def send(m):
    sys.stdout.write(json.dumps(m) + "\n"); sys.stdout.flush()
for line in sys.stdin:
    m = json.loads(line)
    if "id" not in m:
        continue
    i, method = m["id"], m.get("method")
    if method == "initialize":
        send({"jsonrpc": "2.0", "id": i, "result": {"protocolVersion": m["params"]["protocolVersion"],
              "capabilities": {"tools": {}}, "serverInfo": {"name": "fake", "version": "0"}}})
    elif method == "tools/list":
        send({"jsonrpc": "2.0", "id": i, "result": {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}})
    elif method == "tools/call":
        r = i % 10
        if r == 3:
            continue
        if r == 5:
            send({"jsonrpc": "2.0", "id": i, "error": {"code": -32050, "message": "no"}})
            continue
        result = {"content": [{"type": "text", "text": json.dumps(m["params"]["arguments"])}], "isError": r == 7}
        send({"jsonrpc": "2.0", "id": i, "result": result})
        if r == 8:
            send({"jsonrpc": "2.0", "id": i, "result": result})
    else:
        send({"jsonrpc": "2.0", "id": i, "error": {"code": -32601, "message": "no such method"}})
)PY");
  Run run = run_mcp_load(dir, with_server({"--tool", "echo", "--args", R"({"n":{k}})", "--calls", "100",
                                           "--concurrency", "5", "--timeout-ms", "300", "--json"},
                                          {"python3", script.string()}));
  CHECK(run.exit_code == 1);  // calls were lost
  const json& r = run.report;
  check_sane(r);
  CHECK(r["calls"] == 100);
  CHECK(r["ok"] == 70);
  CHECK(r["errors"]["lost"] == 10);
  CHECK(r["errors"]["jsonrpc"]["-32050"] == 10);
  CHECK(r["errors"]["tool_error"] == 10);
  CHECK(r["errors"]["timeout"] == 0);
  CHECK(r["anomalies"]["duplicate_responses"] == 10);
  CHECK(r["errors"]["samples"]["jsonrpc -32050"] == "no");
  CHECK(r["errors"]["samples"]["tool_error"] == R"({"n": 7})");  // the fake echoes call 7's arguments
  CHECK(r["cache"]["reported"] == false);
  CHECK(r["server_pools"].is_null());
  CHECK(run.table.find("not reported") != std::string::npos);
}

TEST_CASE("a tool the server does not offer is refused before any load, naming what it offers") {
  mcpd::test::TempDir dir;
  Run run = run_mcp_load(dir, with_server({"--tool", "no_such_tool", "--calls", "5"}, mcpd_command()));
  CHECK(run.exit_code == 1);
  CHECK(run.table.find("does not offer tool 'no_such_tool'") != std::string::npos);
  CHECK(run.table.find("code_parse") != std::string::npos);
}

TEST_CASE("--compare alternates two servers and reports medians and ratios") {
  mcpd::test::TempDir dir;
  std::vector<std::string> args = {"--compare", "--rounds", "2", "--tool", "code_parse", "--args",
                                   R"({"language":"c","code":"int x{k};"})", "--calls", "100", "--json", "--"};
  for (const auto& a : mcpd_command({"--mode", "legacy", "--cache_enabled", "false"})) args.push_back(a);
  args.push_back("--vs");
  for (const auto& a : mcpd_command({"--mode", "pool", "--cache_enabled", "false"})) args.push_back(a);
  Run run = run_mcp_load(dir, args);
  REQUIRE(run.exit_code == 0);
  const json& c = run.report;
  CHECK(c["rounds"] == 2);
  CHECK(c["a"]["runs"].size() == 2);
  CHECK(c["b"]["runs"].size() == 2);
  for (const auto* side : {"a", "b"})
    for (const auto& r : c[side]["runs"]) check_sane(r);
  CHECK(c["a"]["runs"][0]["paths"]["legacy"] == 100);
  CHECK(c["b"]["runs"][0]["paths"]["pool"] == 100);
  CHECK(c["ratio_b_over_a"]["throughput_per_s"].get<double>() > 0);
  CHECK(c["a"]["totals"]["lost"] == 0);
}
