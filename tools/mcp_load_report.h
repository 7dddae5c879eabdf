// The results of mcp-load: one run's report, a comparison of two servers over alternating rounds,
// and their three renderings (a table for people on stderr, JSON for scripts, an SVG plot).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "mcp_load_stats.h"

namespace mcpd::load {

using json = nlohmann::json;

/// Calls that did not succeed, by kind. Every measured call is exactly one of: ok, a JSON-RPC error
/// (by code), a tool error (result.isError), a timeout (answered, but after timeout_ms), or lost
/// (never answered before the end of the run plus timeout_ms).
struct ErrorCounts {
  std::map<int, std::uint64_t> jsonrpc;
  std::uint64_t tool = 0;
  std::uint64_t timeout = 0;
  std::uint64_t lost = 0;
  /// The first message seen of each kind ("jsonrpc -32001", "tool_error", "timeout"), cut to 300
  /// bytes: what a person needs to tell a deadline from a crash.
  std::map<std::string, std::string> samples;
  std::uint64_t total() const;
};

/// Throughput and latency in one slice of the run, for the time series.
struct SeriesPoint {
  double t_s = 0;      // start of the slice, from the start of the measured phase
  double width_s = 0;  // its length (the last slice of a run may be shorter)
  std::uint64_t ok = 0, errors = 0;
  double p50_us = 0, p99_us = 0;
};

/// Everything one run measured.
struct RunReport {
  // What ran.
  std::vector<std::string> server;
  std::string workload;  // "code_parse" or "mix of ..."
  bool open_loop = false;
  unsigned concurrency = 1;
  double rate = 0;  // open loop: calls per second
  std::uint64_t warmup = 0;
  std::uint64_t timeout_ms = 0;

  // Calls of the measured phase.
  std::uint64_t calls = 0;
  std::uint64_t ok = 0;
  ErrorCounts errors;
  std::uint64_t warmup_failures = 0;
  double duration_s = 0;    // first measured send (intended) to last measured answer
  double throughput = 0;    // answered calls (ok or not) per second of duration
  LatencySummary latency;   // of every answered call, from its intended send time
  std::vector<std::int64_t> latencies_ns;  // sorted; for the plot
  std::vector<SeriesPoint> series;
  double series_slice_s = 0;

  // What the server said about its cache and paths (_meta), when it said anything.
  bool cache_reported = false;
  std::uint64_t cache_hits = 0, cache_misses = 0;
  std::map<std::string, std::uint64_t> paths;

  // Resources of the server and its descendants over the measured phase, from /proc.
  double server_cpu_s = 0;
  std::uint64_t peak_rss_bytes = 0;       // largest sampled sum of resident sets (every 100 ms)
  std::uint64_t server_vm_hwm_bytes = 0;  // the server process's own peak, from the kernel
  std::size_t peak_processes = 0;
  double harness_cpu_s = 0;               // this process (both threads)

  // Chaos.
  std::uint64_t chaos_ms = 0;
  std::vector<double> kill_times_s;  // from the start of the measured phase
  std::vector<pid_t> killed_pids;
  std::vector<std::int64_t> kill_unix_ms;  // wall clock, to match the server's logs
  /// Per worker pool, when the server answers mcpd_status: counters over the run (retried,
  /// restarts, failed...) and spawn_to_ready_ms at the end. Null when the server has no status tool.
  json server_pools;

  // Things a correct server never does, and how the run ended.
  std::uint64_t duplicate_responses = 0;   // a second answer to one id
  std::uint64_t unmatched_responses = 0;   // an answer to an id never sent
  std::uint64_t server_requests = 0;       // requests from the server (answered with -32601)
  std::uint64_t answered_after_end = 0;    // lost calls answered later, during the final status call
  std::uint64_t notifications = 0;
  bool server_exited = false;              // the server closed its stdout during the run
  std::string server_exit;                 // after the run: "exit 0", "signal 9", ...
};

/// One run as JSON (see mcp_load_driver.h for the schema's place in the CLI contract).
json to_json(const RunReport& report);
/// One run as the human table.
std::string to_table(const RunReport& report);

/// The same workload against two servers, rounds alternating A, B, A, B.
struct Comparison {
  std::vector<RunReport> a, b;
};
json to_json(const Comparison& comparison);
std::string to_table(const Comparison& comparison);

/// A self-contained SVG: latency histogram (log scale) and throughput over time, one color per run.
std::string plot_svg(const std::vector<std::pair<std::string, const RunReport*>>& runs, const std::string& title);

}  // namespace mcpd::load
