#include "tool_runner.h"

#include <new>

namespace mcpd {

ToolRun run_tool(const Tool& tool, const json& arguments, ToolContext& context) {
  ToolRun run;
  try {
    run.result = tool.handler(arguments, context);
  } catch (const ToolError& e) {
    run.status = ToolRun::Status::tool_error;
    run.error = e.what();
  } catch (const ToolCancelled&) {
    run.status = ToolRun::Status::cancelled;
    run.error = "cancelled";
  } catch (const std::bad_alloc&) {
    run.status = ToolRun::Status::failed;
    run.error = "tool '" + tool.name + "' ran out of memory";
  } catch (const std::exception& e) {
    // A bug in a tool, not the user's fault: say so rather than pretend it was bad input.
    run.status = ToolRun::Status::failed;
    run.error = "internal error in tool '" + tool.name + "': " + e.what();
  }
  return run;
}

}  // namespace mcpd
