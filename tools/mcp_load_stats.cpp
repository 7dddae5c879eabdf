#include "mcp_load_stats.h"

#include <algorithm>
#include <cmath>

namespace mcpd::load {

std::int64_t nearest_rank(const std::vector<std::int64_t>& sorted, double p) {
  const std::uint64_t n = sorted.size();
  if (p <= 0) return sorted.front();
  if (p >= 100) return sorted.back();
  // Parts per hundred million of the whole: p = 99.9 -> 99'900'000. n * that fits in 64 bits for
  // any run that fits in memory (n < 1.8e11).
  const auto share = static_cast<std::uint64_t>(std::llround(p * 1e6));
  std::uint64_t rank = (n * share + 100'000'000 - 1) / 100'000'000;  // ceil(p/100 * n)
  rank = std::clamp<std::uint64_t>(rank, 1, n);
  return sorted[rank - 1];
}

LatencySummary summarize(std::vector<std::int64_t>& samples) {
  LatencySummary s;
  if (samples.empty()) return s;
  std::sort(samples.begin(), samples.end());
  s.count = samples.size();
  s.min_ns = samples.front();
  s.max_ns = samples.back();
  s.p50_ns = nearest_rank(samples, 50);
  s.p90_ns = nearest_rank(samples, 90);
  s.p95_ns = nearest_rank(samples, 95);
  s.p99_ns = nearest_rank(samples, 99);
  s.p999_ns = nearest_rank(samples, 99.9);
  long double sum = 0;
  for (auto v : samples) sum += v;
  s.mean_ns = static_cast<double>(sum / samples.size());
  return s;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

}  // namespace mcpd::load
