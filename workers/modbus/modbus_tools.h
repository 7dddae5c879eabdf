// The Modbus tool family: reads and writes over Modbus TCP, polling groups, samples in SQLite.
#pragma once

#include <vector>

#include "tool.h"

namespace mcpd {

/// The Modbus tools, configured by the "modbus" settings object (README, "Modbus settings").
/// Throws std::invalid_argument naming the key when a setting is wrong.
std::vector<Tool> modbus_tools(const json& settings = json::object());

}  // namespace mcpd
