// The Modbus tool family: reads and writes over Modbus TCP, polling groups, samples in SQLite.
#pragma once

#include <memory>
#include <vector>

#include "family.h"
#include "tool.h"

namespace mcpd {

namespace modbus {
class Poller;
}

/// The Modbus tools, configured by the "modbus" settings object (README, "Modbus settings"), over
/// a poller of their own that opens its database only when a group tool is first called (the
/// coordinator builds this list for the schemas alone in pool mode). Throws std::invalid_argument
/// naming the key when a setting is wrong.
std::vector<Tool> modbus_tools(const json& settings = json::object());

/// The Modbus tools over `poller`, which the caller owns and may open eagerly (the worker does, so
/// groups that were running resume at process start).
std::vector<Tool> modbus_tools(std::shared_ptr<modbus::Poller> poller);

/// The modbus family as the coordinator lists it (family.h).
Family modbus_family();

/// A poller for the "modbus" settings object; throws std::invalid_argument naming a bad key.
std::shared_ptr<modbus::Poller> make_modbus_poller(const json& settings);

}  // namespace mcpd
