// Counters and latency samples per tool and per path, read by the status tool. Owned by the event
// loop thread; no locks.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// Keeps the most recent `capacity` latencies (a ring) and answers percentiles over them, so a
/// long-running server reports the present, not its whole history, in bounded memory.
class LatencyWindow {
 public:
  explicit LatencyWindow(std::size_t capacity = 4096) : capacity_(capacity) {}
  void add(double micros);
  /// Nearest-rank percentile (q in 0..100) of the samples held; 0 when empty.
  double percentile(double q) const;
  std::uint64_t count() const { return total_; }

 private:
  std::size_t capacity_;
  std::size_t next_ = 0;
  std::uint64_t total_ = 0;
  std::vector<double> samples_;
};

/// Outcome counts and latencies of one tool on one path ("legacy", "pool", "cache").
struct PathStats {
  std::uint64_t calls = 0, ok = 0, tool_errors = 0, failed = 0, timeouts = 0, cancelled = 0;
  LatencyWindow latency_us;
  json to_json() const;
};

class Metrics {
 public:
  PathStats& of(const std::string& tool, const std::string& path) { return stats_[tool][path]; }
  json to_json() const;

 private:
  std::map<std::string, std::map<std::string, PathStats>> stats_;
};

}  // namespace mcpd
