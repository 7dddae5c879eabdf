// Test-only tools that produce what real tools cannot on demand: a slow call with progress, a
// call that ignores cancellation, logs on demand, and (inside a worker with test hooks on) faults of
// the worker process itself (test_fault, see worker_runtime.h). Registered only when the
// configuration sets test_tools = true; never in a default server.
#pragma once

#include <vector>

#include "family.h"
#include "tool.h"

namespace mcpd {

/// test_sleep, test_echo and test_fault.
std::vector<Tool> testkit_tools();

/// The testkit family as the coordinator lists it (family.h).
Family testkit_family();

}  // namespace mcpd
