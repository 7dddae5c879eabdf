// The configuration loader (coordinator/config): a config file's JSON text, MCPD_* environment
// values and command-line flags. The input is split at NUL bytes: the first part is the config
// file (given with --config through a memfd), later parts starting with "MCPD_" are environment
// entries, the rest are arguments. As in main, the only exception allowed out of load_config is a
// ConfigError, and a loaded configuration must print (--print-config) and pass to the workers.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config.h"
#include "pool_executor.h"

using namespace mcpd;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> parts;
  for (std::size_t at = 0; at <= input.size();) {
    std::size_t nul = input.find('\0', at);
    if (nul == std::string_view::npos) nul = input.size();
    parts.push_back(input.substr(at, nul - at));
    at = nul + 1;
  }
  static const int file = [] {
    int fd = ::memfd_create("mcpd-fuzz-config", 0);
    require(fd >= 0);
    return fd;
  }();
  std::vector<std::string> args, env;
  if (!parts[0].empty()) {
    require(::ftruncate(file, 0) == 0);
    require(::pwrite(file, parts[0].data(), parts[0].size(), 0) == static_cast<ssize_t>(parts[0].size()));
    args = {"--config", "/proc/self/fd/" + std::to_string(file)};
  }
  for (std::size_t i = 1; i < parts.size(); ++i) {
    // Only the memfd is read as a config file: a path the fuzzer makes up could be a FIFO or
    // /dev/zero, which mcpd would read as its operator asked, forever.
    if (parts[i].substr(0, 11) == "MCPD_CONFIG" || parts[i].substr(0, 8) == "--config") return 0;
    if (parts[i].substr(0, 5) == "MCPD_") env.emplace_back(parts[i]);
    else args.emplace_back(parts[i]);
  }
  Invocation inv;
  try {
    inv = load_config(args, env);
  } catch (const ConfigError& e) {
    require(*e.what() != '\0');
    return 0;
  }
  // What main does with a configuration it accepted.
  config_to_json(inv.config).dump(2);
  for (const char* kind : {"parser", "git", "search", "modbus", "testkit"}) pool::pool_settings(inv.config.workers, kind);
  json worker_config = {{"roots", config_to_json(inv.config)["roots"]},
                        {"settings", inv.config.family_settings}};
  worker_config.dump();
  return 0;
}
