#include "settings.h"

#include <cstdlib>
#include <stdexcept>

namespace mcpd::modbus {

namespace {

using nlohmann::json;

[[noreturn]] void bad(const std::string& key, const std::string& must, const json& got) {
  throw std::invalid_argument("modbus." + key + ": must be " + must + ", got " + got.dump());
}

std::int64_t integer(const json& object, const std::string& key, std::int64_t fallback, std::int64_t lo,
                     std::int64_t hi) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  std::string must = "an integer from " + std::to_string(lo) + " to " + std::to_string(hi);
  if (!it->is_number_integer()) bad(key, must, *it);
  std::int64_t v = it->get<std::int64_t>();
  if (v < lo || v > hi) bad(key, must, *it);
  return v;
}

}  // namespace

Settings parse_settings(const json& object) {
  if (object.is_null()) return {};
  if (!object.is_object()) throw std::invalid_argument("modbus: must be a JSON object, got " + object.dump());
  static const char* known[] = {"db_path",           "max_running_groups",         "queue_capacity",
                                "retention_hours",   "prune_interval_ms",          "response_timeout_ms",        "connect_timeout_ms",
                                "reconnect_backoff_initial_ms", "reconnect_backoff_max_ms", "allowed_hosts",
                                "max_concurrent_calls", "max_devices"};
  for (auto it = object.begin(); it != object.end(); ++it) {
    bool ok = false;
    for (const char* k : known) ok = ok || it.key() == k;
    if (!ok) {
      std::string list;
      for (const char* k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw std::invalid_argument("modbus." + it.key() + ": unknown setting; known: " + list);
    }
  }
  Settings s;
  if (auto it = object.find("db_path"); it != object.end()) {
    if (!it->is_string() || it->get_ref<const std::string&>().empty()) bad("db_path", "a non-empty path", *it);
    s.db_path = it->get<std::string>();
  }
  s.max_running_groups = static_cast<int>(integer(object, "max_running_groups", s.max_running_groups, 1, 1000));
  s.queue_capacity = integer(object, "queue_capacity", s.queue_capacity, 100, 100000000);
  if (auto it = object.find("retention_hours"); it != object.end()) {
    if (!it->is_number() || it->get<double>() < 0) bad("retention_hours", "a number >= 0 (0 keeps samples forever)", *it);
    s.retention_hours = it->get<double>();
  }
  s.prune_interval_ms = static_cast<int>(integer(object, "prune_interval_ms", s.prune_interval_ms, 10, 86400000));
  s.response_timeout_ms = static_cast<int>(integer(object, "response_timeout_ms", s.response_timeout_ms, 1, 60000));
  s.connect_timeout_ms = static_cast<int>(integer(object, "connect_timeout_ms", s.connect_timeout_ms, 1, 60000));
  s.reconnect_backoff_initial_ms =
      static_cast<int>(integer(object, "reconnect_backoff_initial_ms", s.reconnect_backoff_initial_ms, 1, 3600000));
  s.reconnect_backoff_max_ms =
      static_cast<int>(integer(object, "reconnect_backoff_max_ms", s.reconnect_backoff_max_ms, 1, 3600000));
  if (s.reconnect_backoff_max_ms < s.reconnect_backoff_initial_ms)
    bad("reconnect_backoff_max_ms", "at least reconnect_backoff_initial_ms (" +
                                        std::to_string(s.reconnect_backoff_initial_ms) + ")",
        object["reconnect_backoff_max_ms"]);
  if (auto it = object.find("allowed_hosts"); it != object.end()) {
    if (!it->is_array()) bad("allowed_hosts", "an array of host names or addresses", *it);
    for (const auto& h : *it) {
      if (!h.is_string() || h.get_ref<const std::string&>().empty())
        bad("allowed_hosts", "an array of non-empty strings", *it);
      s.allowed_hosts.push_back(h.get<std::string>());
    }
    s.allowed = AllowList(s.allowed_hosts);
  }
  s.max_concurrent_calls = static_cast<int>(integer(object, "max_concurrent_calls", s.max_concurrent_calls, 1, 256));
  s.max_devices = static_cast<int>(integer(object, "max_devices", s.max_devices, 1, 65536));
  return s;
}

std::string resolved_db_path(const Settings& settings) {
  if (!settings.db_path.empty()) return settings.db_path;
  const char* state = std::getenv("XDG_STATE_HOME");
  if (state && *state) return std::string(state) + "/mcpd/modbus.sqlite";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : "/tmp") + "/.local/state/mcpd/modbus.sqlite";
}

}  // namespace mcpd::modbus
