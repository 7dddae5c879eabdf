// The Modbus family's settings: config key "modbus", every knob with its default and unit here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "allow_list.h"

namespace mcpd::modbus {

/// What the "modbus" config object may set. Defaults live here and nowhere else.
struct Settings {
  std::string db_path;  // empty: $XDG_STATE_HOME/mcpd/modbus.sqlite, else ~/.local/state/mcpd/modbus.sqlite
  int max_running_groups = 10;
  std::int64_t queue_capacity = 100000;  // samples waiting for the SQLite writer
  double retention_hours = 168;          // samples older than this are pruned; 0 keeps them forever
  int prune_interval_ms = 60000;         // how often the writer prunes samples past retention_hours
  int response_timeout_ms = 1000;  // a request sent and its whole answer received, however slowly it comes
  int connect_timeout_ms = 1000;   // the name lookup and every connection attempt together
  int reconnect_backoff_initial_ms = 100;
  int reconnect_backoff_max_ms = 10000;
  std::vector<std::string> allowed_hosts;  // as configured; empty: no host may be reached
  AllowList allowed;                       // allowed_hosts, parsed
  int max_concurrent_calls = 16;           // calls the Modbus worker runs at once (devices never wait for each other)
  int max_devices = 256;                   // devices (host:port) kept at once, each with its connection
};

/// Reads and checks the settings object. Throws std::invalid_argument naming the key
/// ("modbus.max_running_groups: must be an integer from 1 to 1000, got 0").
Settings parse_settings(const nlohmann::json& object);

/// db_path with the default filled in.
std::string resolved_db_path(const Settings& settings);

}  // namespace mcpd::modbus
