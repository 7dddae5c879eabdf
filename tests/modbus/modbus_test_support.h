// Helpers of the Modbus tests: a poller with its tools over a temporary database, and calls by
// tool name the way a runner makes them (schema checks are the coordinator's job, not done here).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "modbus_server.h"
#include "modbus_tools.h"
#include "poller.h"
#include "temp_dir.h"

namespace mcpd::test {

/// The Modbus tools over one poller whose database lives in `dir`.
struct ModbusKit {
  std::shared_ptr<modbus::Poller> poller;
  std::map<std::string, Tool> tools;

  explicit ModbusKit(const std::filesystem::path& db, json settings = json::object()) {
    settings["db_path"] = db.string();
    if (!settings.contains("response_timeout_ms")) settings["response_timeout_ms"] = 500;
    if (!settings.contains("connect_timeout_ms")) settings["connect_timeout_ms"] = 500;
    if (!settings.contains("reconnect_backoff_max_ms")) settings["reconnect_backoff_max_ms"] = 400;
    poller = make_modbus_poller(settings);
    for (auto& tool : modbus_tools(poller)) tools[tool.name] = tool;
  }

  /// The tool's structured result; a ToolError propagates.
  json call(const std::string& name, const json& arguments, bool allow_writes = false) {
    ToolContext context;
    context.allow_writes = allow_writes;
    REQUIRE(tools.count(name));
    return tools.at(name).handler(arguments, context).structured;
  }

  /// The ToolError message of a call that must fail ("" when it did not).
  std::string error(const std::string& name, const json& arguments, bool allow_writes = false) {
    try {
      call(name, arguments, allow_writes);
    } catch (const ToolError& e) {
      return e.what();
    }
    return "";
  }
};

/// Polls until `predicate` holds or `timeout` passes.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace mcpd::test
