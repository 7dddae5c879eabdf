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

namespace {

/// Appends `text` (well-formed UTF-8, as nlohmann's dump with the replace handler writes it) as a
/// JSON string, escaping what JSON requires and nothing else, as nlohmann does: runs of plain bytes
/// are copied whole instead of going through a json value and its serializer byte by byte.
void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}

}  // namespace

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
