#include "tool_runner.h"

#include <new>

#include "cache_key.h"
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
  std::string body = R"({"content":[{"type":"text","text":)";
  if (tool.output_schema.is_null()) {
    append_json_text(body, result.text);
    body += R"(}],"isError":false})";
    return body;
  }
  std::string structured = dump_json(result.structured);
  body.reserve(2 * structured.size() + 96);
  append_json_string(body, structured);
  body += R"(}],"structuredContent":)";
  body += structured;
  body += R"(,"isError":false})";
  return body;
}

}  // namespace mcpd

namespace mcpd {

namespace {

std::optional<std::string> state_digest(const Tool& tool, const json& arguments,
                                        const std::vector<std::filesystem::path>& roots) {
  if (tool.cache != CachePolicy::custom || !tool.cache_key) return std::nullopt;
  try {
    auto state = tool.cache_key(arguments, roots);
    // 128 bits: the token travels with every lookup, and stands for state nobody can choose freely.
    if (state) return blake2b_hex(*state, 16);
  } catch (const std::exception&) {
    // No key: the call runs and is not cached, and the tool itself reports what is wrong.
  }
  return std::nullopt;
}

}  // namespace

std::optional<CacheVoucher> cache_voucher(const Tool& tool, const json& arguments,
                                          const std::vector<std::filesystem::path>& roots) {
  auto state = state_digest(tool, arguments, roots);
  if (!state) return std::nullopt;
  CacheVoucher voucher{std::move(*state), {}};
  if (tool.cache_tag) {
    try {
      voucher.tag = tool.cache_tag(arguments, roots).value_or("");
    } catch (const std::exception&) {
      voucher.tag.clear();
    }
  }
  return voucher;
}

bool cache_state_current(const Tool& tool, const json& arguments, const std::vector<std::filesystem::path>& roots,
                         const std::string& state) {
  auto now = state_digest(tool, arguments, roots);
  return now && *now == state;
}

}  // namespace mcpd
