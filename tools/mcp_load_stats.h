// Latency statistics of mcp-load: exact percentiles over every sample (no histogram buckets, so
// no bucket error), with the nearest-rank definition, and the median used to combine rounds.
#pragma once

#include <cstdint>
#include <vector>

namespace mcpd::load {

/// The nearest-rank percentile of ascending, non-empty `sorted`: the smallest sample such that at
/// least p% of all samples are <= it, i.e. sorted[ceil(p/100 * n) - 1]. p <= 0 gives the minimum
/// and p >= 100 the maximum. p is resolved to a millionth of a percent, so p99.9 of 1000 samples
/// is sample 999 exactly (floating point would round 999.0000001 up to 1000).
std::int64_t nearest_rank(const std::vector<std::int64_t>& sorted, double p);

/// Summary of one run's latencies, in nanoseconds.
struct LatencySummary {
  std::uint64_t count = 0;
  std::int64_t min_ns = 0, p50_ns = 0, p90_ns = 0, p95_ns = 0, p99_ns = 0, p999_ns = 0, max_ns = 0;
  double mean_ns = 0;
};

/// Sorts `samples` in place and summarizes them; all zero when there are none.
LatencySummary summarize(std::vector<std::int64_t>& samples);

/// The median of `values` (the mean of the two middle ones for an even count); 0 when empty.
double median(std::vector<double> values);

}  // namespace mcpd::load
