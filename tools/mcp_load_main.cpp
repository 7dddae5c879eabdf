// mcp-load: load-tests any stdio MCP server. See usage() in mcp_load_driver.cpp for the command line.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "mcp_load_driver.h"

using namespace mcpd::load;

namespace {

bool write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary);
  out << content;
  return static_cast<bool>(out);
}

/// The round of a side whose throughput is the median: the run a plot of that side shows.
const RunReport& median_round(const std::vector<RunReport>& runs) {
  std::vector<std::size_t> order(runs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](auto x, auto y) { return runs[x].throughput < runs[y].throughput; });
  return runs[order[order.size() / 2]];
}

bool failed(const RunReport& r) { return r.errors.lost > 0 || r.server_exited; }

}  // namespace

int main(int argc, char** argv) {
  Options options;
  Workload workload;
  try {
    bool help = false;
    options = parse_command_line(std::vector<std::string>(argv + 1, argv + argc), &help);
    if (help) {
      std::cout << usage();
      return 0;
    }
    workload = make_workload(options);
  } catch (const UsageError& e) {
    std::cerr << "mcp-load: " << e.what() << "\n(mcp-load --help for usage)\n";
    return 2;
  }

  try {
    if (options.compare) {
      Comparison c = run_compare(options, workload);
      std::cerr << to_table(c);
      if (options.json) std::cout << to_json(c).dump(2) << "\n";
      if (!options.plot_path.empty() &&
          !write_file(options.plot_path, plot_svg({{"A", &median_round(c.a)}, {"B", &median_round(c.b)}},
                                                  "mcp-load --compare: " + workload.describe() + " (median rounds)")))
        std::cerr << "mcp-load: cannot write " << options.plot_path << "\n";
      bool bad = false;
      for (const auto* side : {&c.a, &c.b})
        for (const auto& r : *side) bad = bad || failed(r);
      return bad ? 1 : 0;
    }
    RunReport report = run_load(options, workload, options.server);
    std::cerr << to_table(report);
    if (options.json) std::cout << to_json(report).dump(2) << "\n";
    if (!options.plot_path.empty() &&
        !write_file(options.plot_path, plot_svg({{workload.describe(), &report}}, "mcp-load: " + workload.describe())))
      std::cerr << "mcp-load: cannot write " << options.plot_path << "\n";
    return failed(report) ? 1 : 0;
  } catch (const std::exception& e) {
    std::cerr << "mcp-load: " << e.what() << "\n";
    return 1;
  }
}
