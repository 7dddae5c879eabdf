// Test-only tools that produce what real tools cannot on demand: a slow call with progress, a
// call that ignores cancellation. Registered only when the configuration sets test_tools = true;
// never in a default server.
#pragma once

#include <vector>

#include "tool.h"

namespace mcpd {

std::vector<Tool> testkit_tools();

}  // namespace mcpd
