#include "tool_runner.h"

#include <new>

#include "json_text.h"

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

std::string result_body(const Tool& tool, const ToolResult& result) {
  constexpr auto replace = json::error_handler_t::replace;
  std::string body = R"({"content":[{"type":"text","text":)";
  if (tool.output_schema.is_null()) {
    body += json(result.text).dump(-1, ' ', false, replace);
    body += R"(}],"isError":false})";
    return body;
  }
  std::string structured = result.structured.dump(-1, ' ', false, replace);
  body.reserve(2 * structured.size() + 96);
  append_json_string(body, structured);
  body += R"(}],"structuredContent":)";
  body += structured;
  body += R"(,"isError":false})";
  return body;
}

}  // namespace mcpd
