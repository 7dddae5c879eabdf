#include "metrics.h"

#include <algorithm>
#include <cmath>

namespace mcpd {

void LatencyWindow::add(double micros) {
  if (samples_.size() < capacity_) {
    samples_.push_back(micros);
  } else {
    samples_[next_] = micros;
    next_ = (next_ + 1) % capacity_;
  }
  ++total_;
}

double LatencyWindow::percentile(double q) const {
  if (samples_.empty()) return 0;
  std::vector<double> sorted = samples_;
  std::sort(sorted.begin(), sorted.end());
  auto rank = static_cast<std::size_t>(std::ceil(q / 100.0 * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

json PathStats::to_json() const {
  return {{"calls", calls},
          {"ok", ok},
          {"tool_errors", tool_errors},
          {"failed", failed},
          {"timeouts", timeouts},
          {"cancelled", cancelled},
          {"latency_ms",
           {{"p50", latency_us.percentile(50) / 1000.0},
            {"p95", latency_us.percentile(95) / 1000.0},
            {"p99", latency_us.percentile(99) / 1000.0}}}};
}

json Metrics::to_json() const {
  json out = json::object();
  for (const auto& [tool, paths] : stats_)
    for (const auto& [path, stats] : paths) out[tool][path] = stats.to_json();
  return out;
}

}  // namespace mcpd
