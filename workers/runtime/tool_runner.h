// Runs one tool handler and turns every way it can end into a ToolRun. The single place that maps
// handler exceptions to outcomes, shared by the legacy in-process path and the worker runtime, so
// both paths report the same failure the same way.
#pragma once

#include <string>

#include "tool.h"

namespace mcpd {

struct ToolRun {
  enum class Status { ok, tool_error, cancelled, failed };
  Status status = Status::ok;
  ToolResult result;  // when ok
  std::string error;  // otherwise: a message a user can act on
};

ToolRun run_tool(const Tool& tool, const json& arguments, ToolContext& context);

}  // namespace mcpd
