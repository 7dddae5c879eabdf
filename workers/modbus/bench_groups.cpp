// mcpd-modbus-bench-groups: the poller's scheduling under load, in-process (the same Poller the
// worker runs). Creates GROUPS groups of TAGS contiguous holding registers at INTERVAL ms against
// a Modbus TCP server, runs them for SECONDS, and prints one JSON line per group plus a summary:
// start lateness p50/p99/max, overruns, polls, errors, poll duration.
//
//   mcpd-modbus-bench-groups HOST PORT [GROUPS=10] [TAGS=100] [INTERVAL_MS=100] [SECONDS=20]
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "modbus_tools.h"
#include "poller.h"

int main(int argc, char** argv) {
  using namespace mcpd;
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s HOST PORT [GROUPS] [TAGS] [INTERVAL_MS] [SECONDS]\n", argv[0]);
    return 2;
  }
  std::string host = argv[1];
  int port = std::stoi(argv[2]);
  int groups = argc > 3 ? std::stoi(argv[3]) : 10;
  int tags = argc > 4 ? std::stoi(argv[4]) : 100;
  int interval = argc > 5 ? std::stoi(argv[5]) : 100;
  int seconds = argc > 6 ? std::stoi(argv[6]) : 20;

  auto dir = std::filesystem::temp_directory_path() / ("mcpd-modbus-bench-" + std::to_string(::getpid()));
  auto poller = make_modbus_poller(
      {{"db_path", (dir / "bench.sqlite").string()}, {"max_running_groups", groups}, {"allowed_hosts", {host}}});
  for (int g = 0; g < groups; ++g) {
    json tag_list = json::array();
    for (int t = 0; t < tags; ++t) tag_list.push_back({{"name", "t" + std::to_string(t)}, {"address", g * tags + t}});
    std::string name = "g" + std::to_string(g);
    poller->create_group({{"name", name}, {"host", host}, {"port", port}, {"tags", tag_list}, {"interval_ms", interval}});
    poller->start_group(name);
  }
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
  json status = poller->status(std::nullopt);
  poller->shutdown();
  std::filesystem::remove_all(dir);

  double worst_p50 = 0, worst_p99 = 0, worst_max = 0;
  std::int64_t overruns = 0, polls = 0, errors = 0;
  double max_duration = 0;
  for (const auto& g : status["groups"]) {
    std::cout << g.dump() << "\n";
    worst_p50 = std::max(worst_p50, g["jitter"].value("p50_ms", 0.0));
    worst_p99 = std::max(worst_p99, g["jitter"].value("p99_ms", 0.0));
    worst_max = std::max(worst_max, g["jitter"].value("max_ms", 0.0));
    overruns += g["overruns"].get<std::int64_t>();
    polls += g["polls"].get<std::int64_t>();
    errors += g["error_count"].get<std::int64_t>();
    max_duration = std::max(max_duration, g.value("last_poll_duration_ms", 0.0));
  }
  json summary = {{"groups", groups},        {"tags_per_group", tags},    {"interval_ms", interval},
                  {"seconds", seconds},      {"polls", polls},            {"errors", errors},
                  {"overruns", overruns},    {"worst_p50_ms", worst_p50}, {"worst_p99_ms", worst_p99},
                  {"worst_max_ms", worst_max}, {"writer", status["writer"]}};
  std::cout << summary.dump() << "\n";
  return 0;
}
