// The search tool family: search_text and search_files over code trees inside the roots.
#pragma once

#include <vector>

#include "family.h"
#include "tool.h"

namespace mcpd {

/// The search tools, configured by the "search" settings object (README, "Search settings").
/// Throws std::invalid_argument naming the key when a setting is wrong.
std::vector<Tool> search_tools(const json& settings = json::object());

/// The search family as the coordinator lists it (family.h).
Family search_family();

}  // namespace mcpd
