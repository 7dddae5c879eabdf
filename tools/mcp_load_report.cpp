#include "mcp_load_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace mcpd::load {

std::uint64_t ErrorCounts::total() const {
  std::uint64_t n = tool + timeout + lost;
  for (const auto& [code, count] : jsonrpc) n += count;
  return n;
}

namespace {

std::string fmt(const char* format, double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, value);
  return buf;
}

double us(std::int64_t ns) { return static_cast<double>(ns) / 1000.0; }
double round1(double v) { return std::round(v * 10) / 10; }
double round3(double v) { return std::round(v * 1000) / 1000; }

std::string join(const std::vector<std::string>& words) {
  std::string out;
  for (const auto& w : words) {
    if (!out.empty()) out += ' ';
    bool plain = !w.empty() && w.find_first_of(" \t\"'{}$\\*?;&|<>()") == std::string::npos;
    out += plain ? w : "'" + w + "'";
  }
  return out;
}

std::string mib(std::uint64_t bytes) { return fmt("%.1f MiB", static_cast<double>(bytes) / (1024.0 * 1024.0)); }

/// Latency in a unit a person reads at a glance.
std::string human_us(double v) {
  if (v >= 1e6) return fmt("%.2f s", v / 1e6);
  if (v >= 1e3) return fmt("%.2f ms", v / 1e3);
  return fmt("%.0f µs", v);
}

json latency_json(const LatencySummary& l) {
  return {{"count", l.count},        {"min", round1(us(l.min_ns))}, {"p50", round1(us(l.p50_ns))},
          {"p90", round1(us(l.p90_ns))}, {"p95", round1(us(l.p95_ns))}, {"p99", round1(us(l.p99_ns))},
          {"p99_9", round1(us(l.p999_ns))}, {"max", round1(us(l.max_ns))}, {"mean", round1(l.mean_ns / 1000.0)}};
}

double cpu_us_per_call(const RunReport& r) {
  std::uint64_t answered = r.calls - r.errors.lost;
  return answered ? r.server_cpu_s * 1e6 / static_cast<double>(answered) : 0;
}

/// The server's "retried" over all pools, or -1 when unknown.
long long retried(const RunReport& r) {
  if (!r.server_pools.is_object()) return -1;
  long long n = 0;
  for (const auto& [kind, pool] : r.server_pools.items())
    if (pool.contains("retried") && pool["retried"].is_number()) n += pool["retried"].get<long long>();
  return n;
}

std::string loop_description(const RunReport& r) {
  if (r.open_loop) return "open loop at " + fmt("%g", r.rate) + " calls/s";
  return "closed loop, concurrency " + std::to_string(r.concurrency);
}

}  // namespace

json to_json(const RunReport& r) {
  json errors = {{"total", r.errors.total()},
                 {"jsonrpc", json::object()},
                 {"tool_error", r.errors.tool},
                 {"timeout", r.errors.timeout},
                 {"lost", r.errors.lost}};
  for (const auto& [code, count] : r.errors.jsonrpc) errors["jsonrpc"][std::to_string(code)] = count;
  errors["samples"] = r.errors.samples;
  json cache = {{"reported", r.cache_reported}};
  if (r.cache_reported) {
    cache["hits"] = r.cache_hits;
    cache["misses"] = r.cache_misses;
    std::uint64_t n = r.cache_hits + r.cache_misses;
    cache["hit_ratio"] = n ? round3(static_cast<double>(r.cache_hits) / static_cast<double>(n)) : 0.0;
  }
  json chaos = nullptr;
  if (r.chaos_ms) {
    long long n = retried(r);
    chaos = {{"interval_ms", r.chaos_ms},
             {"kills", r.kill_times_s.size()},
             {"failed_calls", r.errors.total() - r.errors.lost},
             {"lost_calls", r.errors.lost},
             {"retried", n < 0 ? json("unknown") : json(n)},
             {"kill_log", json::array()}};
    for (std::size_t i = 0; i < r.kill_times_s.size(); ++i)
      chaos["kill_log"].push_back({{"t_s", round3(r.kill_times_s[i])},
                                   {"pid", i < r.killed_pids.size() ? r.killed_pids[i] : 0},
                                   {"unix_ms", i < r.kill_unix_ms.size() ? r.kill_unix_ms[i] : 0}});
  }
  json series = {{"slice_s", round3(r.series_slice_s)}, {"t_s", json::array()}, {"ok", json::array()},
                 {"errors", json::array()}, {"per_s", json::array()}, {"p50_us", json::array()},
                 {"p99_us", json::array()}};
  for (const auto& p : r.series) {
    series["t_s"].push_back(round3(p.t_s));
    series["ok"].push_back(p.ok);
    series["errors"].push_back(p.errors);
    series["per_s"].push_back(round1(p.width_s > 0 ? static_cast<double>(p.ok + p.errors) / p.width_s : 0));
    series["p50_us"].push_back(round1(p.p50_us));
    series["p99_us"].push_back(round1(p.p99_us));
  }
  return {{"server", r.server},
          {"workload",
           {{"tools", r.workload},
            {"loop", r.open_loop ? "open" : "closed"},
            {"concurrency", r.open_loop ? json(nullptr) : json(r.concurrency)},
            {"rate", r.open_loop ? json(r.rate) : json(nullptr)},
            {"warmup", r.warmup},
            {"timeout_ms", r.timeout_ms}}},
          {"calls", r.calls},
          {"ok", r.ok},
          {"errors", errors},
          {"warmup_failures", r.warmup_failures},
          {"duration_s", round3(r.duration_s)},
          {"throughput_per_s", round1(r.throughput)},
          {"latency_us", latency_json(r.latency)},
          {"cache", cache},
          {"paths", r.paths},
          {"server_resources",
           {{"cpu_s", round3(r.server_cpu_s)},
            {"cpu_us_per_call", round1(cpu_us_per_call(r))},
            {"peak_rss_bytes", r.peak_rss_bytes},
            {"server_vm_hwm_bytes", r.server_vm_hwm_bytes},
            {"peak_processes", r.peak_processes}}},
          {"harness_cpu_s", round3(r.harness_cpu_s)},
          {"chaos", chaos},
          {"server_pools", r.server_pools},
          {"anomalies",
           {{"duplicate_responses", r.duplicate_responses},
            {"unmatched_responses", r.unmatched_responses},
            {"server_requests", r.server_requests},
            {"answered_after_end", r.answered_after_end},
            {"server_exited", r.server_exited}}},
          {"notifications", r.notifications},
          {"server_exit", r.server_exit},
          {"series", series}};
}

std::string to_table(const RunReport& r) {
  std::ostringstream o;
  const auto& l = r.latency;
  o << "mcp-load: " << r.workload << ", " << loop_description(r) << ", " << r.calls << " calls after "
    << r.warmup << " warm-up\n";
  o << "  server     " << join(r.server) << "\n";
  o << "  calls      " << r.calls << " in " << fmt("%.3f", r.duration_s) << " s = " << fmt("%.1f", r.throughput)
    << " calls/s; ok " << r.ok << "\n";
  o << "  latency    min " << human_us(us(l.min_ns)) << "  p50 " << human_us(us(l.p50_ns)) << "  p90 "
    << human_us(us(l.p90_ns)) << "  p95 " << human_us(us(l.p95_ns)) << "  p99 " << human_us(us(l.p99_ns))
    << "  p99.9 " << human_us(us(l.p999_ns)) << "  max " << human_us(us(l.max_ns)) << "\n";
  o << "  errors     " << r.errors.total() << ": jsonrpc";
  if (r.errors.jsonrpc.empty()) o << " 0";
  for (const auto& [code, count] : r.errors.jsonrpc) o << " " << code << "x" << count;
  o << ", tool " << r.errors.tool << ", timeout " << r.errors.timeout << ", lost " << r.errors.lost;
  if (r.warmup_failures) o << " (and " << r.warmup_failures << " in the warm-up)";
  o << "\n";
  for (const auto& [kind, message] : r.errors.samples) o << "             first " << kind << ": " << message << "\n";
  o << "  cache      ";
  if (r.cache_reported) {
    std::uint64_t n = r.cache_hits + r.cache_misses;
    o << fmt("%.1f%%", n ? 100.0 * static_cast<double>(r.cache_hits) / static_cast<double>(n) : 0.0) << " hits ("
      << r.cache_hits << " hits, " << r.cache_misses << " misses)";
    for (const auto& [path, count] : r.paths) o << "; " << path << " " << count;
    o << "\n";
  } else {
    o << "not reported\n";
  }
  o << "  server     cpu " << fmt("%.3f", r.server_cpu_s) << " s (" << fmt("%.1f", cpu_us_per_call(r))
    << " µs/call), peak rss " << mib(r.peak_rss_bytes) << " in " << r.peak_processes << " processes, VmHWM "
    << mib(r.server_vm_hwm_bytes) << "\n";
  o << "  harness    cpu " << fmt("%.3f", r.harness_cpu_s) << " s\n";
  if (r.chaos_ms) {
    long long n = retried(r);
    o << "  chaos      " << r.kill_times_s.size() << " SIGKILLs every " << r.chaos_ms << " ms; failed "
      << r.errors.total() - r.errors.lost << ", lost " << r.errors.lost << ", server retried "
      << (n < 0 ? std::string("unknown") : std::to_string(n)) << "\n";
  }
  if (r.duplicate_responses || r.unmatched_responses || r.server_requests || r.server_exited)
    o << "  anomalies  duplicate answers " << r.duplicate_responses << ", unmatched answers "
      << r.unmatched_responses << ", server requests " << r.server_requests
      << (r.server_exited ? ", server exited during the run" : "") << "\n";
  if (!r.server_exit.empty() && r.server_exit != "exit 0") o << "  exit       " << r.server_exit << "\n";
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// Comparison

namespace {

struct Medians {
  double throughput = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, cpu_s = 0, cpu_per_call = 0, peak_rss = 0,
         error_rate = 0;
  std::uint64_t calls = 0, errors = 0, lost = 0;
};

Medians medians(const std::vector<RunReport>& runs) {
  std::vector<double> t, p50, p90, p99, p999, cpu, cpc, rss, er;
  Medians m;
  for (const auto& r : runs) {
    t.push_back(r.throughput);
    p50.push_back(us(r.latency.p50_ns));
    p90.push_back(us(r.latency.p90_ns));
    p99.push_back(us(r.latency.p99_ns));
    p999.push_back(us(r.latency.p999_ns));
    cpu.push_back(r.server_cpu_s);
    cpc.push_back(cpu_us_per_call(r));
    rss.push_back(static_cast<double>(r.peak_rss_bytes));
    er.push_back(r.calls ? static_cast<double>(r.errors.total()) / static_cast<double>(r.calls) : 0);
    m.calls += r.calls;
    m.errors += r.errors.total();
    m.lost += r.errors.lost;
  }
  m.throughput = median(t);
  m.p50 = median(p50);
  m.p90 = median(p90);
  m.p99 = median(p99);
  m.p999 = median(p999);
  m.cpu_s = median(cpu);
  m.cpu_per_call = median(cpc);
  m.peak_rss = median(rss);
  m.error_rate = median(er);
  return m;
}

json side_json(const std::vector<RunReport>& runs) {
  Medians m = medians(runs);
  json out = {{"server", runs.empty() ? json::array() : json(runs[0].server)},
              {"median",
               {{"throughput_per_s", round1(m.throughput)},
                {"latency_us", {{"p50", round1(m.p50)}, {"p90", round1(m.p90)}, {"p99", round1(m.p99)}, {"p99_9", round1(m.p999)}}},
                {"cpu_s", round3(m.cpu_s)},
                {"cpu_us_per_call", round1(m.cpu_per_call)},
                {"peak_rss_bytes", static_cast<std::uint64_t>(m.peak_rss)},
                {"error_rate", m.error_rate}}},
              {"totals", {{"calls", m.calls}, {"errors", m.errors}, {"lost", m.lost}}},
              {"runs", json::array()}};
  for (const auto& r : runs) out["runs"].push_back(to_json(r));
  return out;
}

double ratio(double b, double a) { return a > 0 ? std::round(b / a * 1000) / 1000 : 0; }

}  // namespace

json to_json(const Comparison& c) {
  Medians a = medians(c.a), b = medians(c.b);
  return {{"rounds", c.a.size()},
          {"a", side_json(c.a)},
          {"b", side_json(c.b)},
          {"ratio_b_over_a",
           {{"throughput_per_s", ratio(b.throughput, a.throughput)},
            {"p50_us", ratio(b.p50, a.p50)},
            {"p90_us", ratio(b.p90, a.p90)},
            {"p99_us", ratio(b.p99, a.p99)},
            {"p99_9_us", ratio(b.p999, a.p999)},
            {"cpu_us_per_call", ratio(b.cpu_per_call, a.cpu_per_call)},
            {"peak_rss_bytes", ratio(b.peak_rss, a.peak_rss)}}},
          {"diff_b_minus_a",
           {{"p50_us", round1(b.p50 - a.p50)},
            {"p99_us", round1(b.p99 - a.p99)},
            {"cpu_us_per_call", round1(b.cpu_per_call - a.cpu_per_call)}}}};
}

std::string to_table(const Comparison& c) {
  Medians a = medians(c.a), b = medians(c.b);
  std::ostringstream o;
  o << "mcp-load --compare: " << c.a.size() << " rounds, alternating A, B; medians of the rounds\n";
  if (!c.a.empty()) o << "  A  " << join(c.a[0].server) << "\n";
  if (!c.b.empty()) o << "  B  " << join(c.b[0].server) << "\n";
  char line[256];
  std::snprintf(line, sizeof line, "  %-18s %14s %14s %9s\n", "", "A", "B", "B/A");
  o << line;
  auto row = [&](const char* name, double va, double vb, const char* format) {
    std::snprintf(line, sizeof line, "  %-18s %14s %14s %9s\n", name, fmt(format, va).c_str(), fmt(format, vb).c_str(),
                  fmt("%.3f", ratio(vb, va)).c_str());
    o << line;
  };
  row("throughput /s", a.throughput, b.throughput, "%.1f");
  row("p50 µs", a.p50, b.p50, "%.1f");
  row("p90 µs", a.p90, b.p90, "%.1f");
  row("p99 µs", a.p99, b.p99, "%.1f");
  row("p99.9 µs", a.p999, b.p999, "%.1f");
  row("server cpu µs/call", a.cpu_per_call, b.cpu_per_call, "%.1f");
  row("peak rss MiB", a.peak_rss / 1048576.0, b.peak_rss / 1048576.0, "%.1f");
  std::snprintf(line, sizeof line, "  %-18s %14llu %14llu\n", "errors (all rounds)",
                static_cast<unsigned long long>(a.errors), static_cast<unsigned long long>(b.errors));
  o << line;
  std::snprintf(line, sizeof line, "  %-18s %14llu %14llu\n", "lost (all rounds)", static_cast<unsigned long long>(a.lost),
                static_cast<unsigned long long>(b.lost));
  o << line;
  o << "  p50 B - A: " << fmt("%.1f", b.p50 - a.p50) << " µs\n";
  return o.str();
}

// ---------------------------------------------------------------------------------------------
// SVG

namespace {

std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

const char* kColors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2"};

std::string num(double v) { return fmt("%.1f", v); }

/// A tick label for a latency in µs on the log axis.
std::string tick_label(double v) {
  if (v >= 1e6) return fmt("%g s", v / 1e6);
  if (v >= 1e3) return fmt("%g ms", v / 1e3);
  return fmt("%g µs", v);
}

}  // namespace

std::string plot_svg(const std::vector<std::pair<std::string, const RunReport*>>& runs, const std::string& title) {
  const double W = 960, left = 70, right = 40, plot_w = W - left - right;
  const double h_top = 60, h_height = 240;   // histogram panel
  const double t_top = 410, t_height = 200;  // time series panel
  const double l_top = 670, l_height = 200;  // latency-over-time panel
  const double H = 910;
  std::ostringstream o;
  o << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H << "\" viewBox=\"0 0 " << W
    << " " << H << "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  o << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  o << "<text x=\"" << left << "\" y=\"24\" font-size=\"16\" font-weight=\"bold\">" << xml_escape(title) << "</text>\n";

  // Latency histogram: 60 bins equal in log space across every run's range.
  double lo = 1e18, hi = 0;
  for (const auto& [label, r] : runs)
    if (!r->latencies_ns.empty()) {
      lo = std::min(lo, std::max(1.0, us(r->latencies_ns.front())));
      hi = std::max(hi, us(r->latencies_ns.back()));
    }
  if (hi <= 0) lo = 1, hi = 10;
  double dlo = std::floor(std::log10(lo)), dhi = std::max(dlo + 1, std::ceil(std::log10(hi)));
  const int bins = 60;
  auto x_of = [&](double v_us) { return left + (std::log10(std::max(v_us, 1e-3)) - dlo) / (dhi - dlo) * plot_w; };
  std::vector<std::vector<double>> shares;
  double max_share = 0;
  for (const auto& [label, r] : runs) {
    std::vector<double> counts(bins, 0);
    for (auto ns : r->latencies_ns) {
      double pos = (std::log10(std::max(us(ns), 1e-3)) - dlo) / (dhi - dlo) * bins;
      counts[static_cast<std::size_t>(std::clamp(pos, 0.0, bins - 1.0))] += 1;
    }
    for (auto& c : counts) {
      c = r->latencies_ns.empty() ? 0 : 100.0 * c / static_cast<double>(r->latencies_ns.size());
      max_share = std::max(max_share, c);
    }
    shares.push_back(std::move(counts));
  }
  if (max_share <= 0) max_share = 1;
  o << "<text x=\"" << left << "\" y=\"" << h_top - 10 << "\" font-weight=\"bold\">Latency (from intended send time), % of calls per bin, log scale</text>\n";
  o << "<rect x=\"" << left << "\" y=\"" << h_top << "\" width=\"" << plot_w << "\" height=\"" << h_height
    << "\" fill=\"none\" stroke=\"#999\"/>\n";
  for (double d = dlo; d <= dhi; d += 1) {
    for (double m : {1.0, 2.0, 5.0}) {
      double v = m * std::pow(10.0, d);
      double x = x_of(v);
      if (x > left + plot_w + 0.5) break;
      o << "<line x1=\"" << num(x) << "\" y1=\"" << h_top << "\" x2=\"" << num(x) << "\" y2=\"" << h_top + h_height
        << "\" stroke=\"" << (m == 1 ? "#ddd" : "#f0f0f0") << "\"/>\n";
      o << "<text x=\"" << num(x) << "\" y=\"" << h_top + h_height + 16 << "\" text-anchor=\"middle\" fill=\"#555\">"
        << xml_escape(tick_label(v)) << "</text>\n";
    }
  }
  for (int i = 0; i <= 4; ++i) {
    double share = max_share * i / 4, y = h_top + h_height - h_height * i / 4;
    o << "<text x=\"" << left - 6 << "\" y=\"" << num(y + 4) << "\" text-anchor=\"end\" fill=\"#555\">"
      << fmt("%.1f%%", share) << "</text>\n";
  }
  for (std::size_t s = 0; s < runs.size(); ++s) {
    const char* color = kColors[s % std::size(kColors)];
    std::ostringstream points;
    points << num(left) << "," << num(h_top + h_height);
    for (int b = 0; b < bins; ++b) {
      double y = h_top + h_height - shares[s][static_cast<std::size_t>(b)] / max_share * h_height;
      points << " " << num(left + plot_w * b / bins) << "," << num(y) << " " << num(left + plot_w * (b + 1) / bins) << ","
             << num(y);
    }
    points << " " << num(left + plot_w) << "," << num(h_top + h_height);
    o << "<polygon points=\"" << points.str() << "\" fill=\"" << color << "\" fill-opacity=\"0.25\" stroke=\"" << color
      << "\" stroke-width=\"1.5\"/>\n";
    const RunReport& r = *runs[s].second;
    for (auto [name, ns] : {std::pair{"p50", r.latency.p50_ns}, {"p99", r.latency.p99_ns}}) {
      if (!r.latency.count) break;
      double x = x_of(us(ns));
      o << "<line x1=\"" << num(x) << "\" y1=\"" << h_top << "\" x2=\"" << num(x) << "\" y2=\"" << h_top + h_height
        << "\" stroke=\"" << color << "\" stroke-dasharray=\"4,3\"/>\n";
      o << "<text x=\"" << num(x + 3) << "\" y=\"" << h_top + 14 + 14 * static_cast<double>(s) << "\" fill=\"" << color
        << "\">" << name << "</text>\n";
    }
    double ly = h_top + h_height + 40 + 16 * static_cast<double>(s);
    o << "<rect x=\"" << left << "\" y=\"" << ly - 10 << "\" width=\"12\" height=\"12\" fill=\"" << color << "\"/>\n";
    o << "<text x=\"" << left + 18 << "\" y=\"" << ly << "\">"
      << xml_escape((runs[s].first.size() > 24 ? runs[s].first.substr(0, 21) + "..." : runs[s].first) + ": " +
                    std::to_string(r.calls) + " calls, " + fmt("%.1f", r.throughput) +
                    " calls/s, p50 " + human_us(us(r.latency.p50_ns)) + ", p99 " + human_us(us(r.latency.p99_ns)) +
                    ", p99.9 " + human_us(us(r.latency.p999_ns)) + ", max " + human_us(us(r.latency.max_ns)) +
                    ", errors " + std::to_string(r.errors.total()) + ", lost " + std::to_string(r.errors.lost))
      << "</text>\n";
  }

  // Two panels over time: throughput, then latency (p50 solid, p99 dashed) per slice.
  double t_max = 0;
  for (const auto& [label, r] : runs) t_max = std::max(t_max, r->duration_s);
  if (t_max <= 0) t_max = 1;
  auto tx = [&](double t) { return left + t / t_max * plot_w; };
  struct Line {
    double (*value)(const SeriesPoint&);
    const char* dash;  // "" for solid
  };
  auto panel = [&](double top, double height, const std::string& heading, const char* y_format,
                   const std::vector<Line>& lines) {
    double y_max = 0;
    for (const auto& [label, r] : runs)
      for (const auto& p : r->series)
        for (const auto& line : lines) y_max = std::max(y_max, line.value(p));
    if (y_max <= 0) y_max = 1;
    auto ty = [&](double v) { return top + height - v / y_max * height; };
    o << "<text x=\"" << left << "\" y=\"" << top - 10 << "\" font-weight=\"bold\">" << xml_escape(heading) << "</text>\n";
    o << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << plot_w << "\" height=\"" << height
      << "\" fill=\"none\" stroke=\"#999\"/>\n";
    for (int i = 0; i <= 4; ++i) {
      double v = y_max * i / 4;
      o << "<text x=\"" << left - 6 << "\" y=\"" << num(ty(v) + 4) << "\" text-anchor=\"end\" fill=\"#555\">"
        << xml_escape(fmt(y_format, v)) << "</text>\n";
      double t = t_max * i / 4;
      o << "<text x=\"" << num(tx(t)) << "\" y=\"" << top + height + 16 << "\" text-anchor=\"middle\" fill=\"#555\">"
        << fmt("%.2g s", t) << "</text>\n";
    }
    for (std::size_t s = 0; s < runs.size(); ++s) {
      const char* color = kColors[s % std::size(kColors)];
      const RunReport& r = *runs[s].second;
      for (const auto& line : lines) {
        std::ostringstream points;
        bool any = false;
        for (const auto& p : r.series) {
          double mid = std::min(p.t_s + p.width_s / 2, t_max);
          points << num(tx(mid)) << "," << num(ty(line.value(p))) << " ";
          any = any || line.value(p) > 0;
        }
        if (!any && *line.dash) continue;  // an all-zero dashed line (no errors) is noise
        o << "<polyline points=\"" << points.str() << "\" fill=\"none\" stroke=\"" << color << "\" stroke-width=\""
          << (*line.dash ? "1.2" : "2") << "\"" << (*line.dash ? std::string(" stroke-dasharray=\"") + line.dash + "\"" : "")
          << "/>\n";
      }
      for (double k : r.kill_times_s)
        o << "<line x1=\"" << num(tx(k)) << "\" y1=\"" << top + height - 10 << "\" x2=\"" << num(tx(k)) << "\" y2=\""
          << top + height << "\" stroke=\"#d62728\" stroke-width=\"1.5\"/>\n";
    }
  };
  auto per_s = [](const SeriesPoint& p) { return p.width_s > 0 ? static_cast<double>(p.ok + p.errors) / p.width_s : 0; };
  auto errors_per_s = [](const SeriesPoint& p) { return p.width_s > 0 ? static_cast<double>(p.errors) / p.width_s : 0; };
  auto p50 = [](const SeriesPoint& p) { return p.p50_us; };
  auto p99 = [](const SeriesPoint& p) { return p.p99_us; };
  panel(t_top, t_height, "Throughput over time, answered calls/s (dashed: errors/s; red ticks: SIGKILLs)", "%.0f",
        {{per_s, ""}, {errors_per_s, "5,3"}});
  panel(l_top, l_height, "Latency over time, µs (solid: p50, dashed: p99 of the calls answered in each slice)", "%.0f",
        {{p50, ""}, {p99, "5,3"}});
  o << "</svg>\n";
  return o.str();
}

}  // namespace mcpd::load
