// Runs one tool handler and turns every way it can end into a ToolRun. The single place that maps
// handler exceptions to outcomes, shared by the legacy in-process path and the worker runtime, so
// both paths report the same failure the same way.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tool.h"

namespace mcpd {

struct ToolRun {
  enum class Status { ok, tool_error, cancelled, failed };
  Status status = Status::ok;
  ToolResult result;  // when ok
  std::string error;  // otherwise: a message a user can act on
};

ToolRun run_tool(const Tool& tool, const json& arguments, ToolContext& context);

/// A successful result as MCP's CallToolResult, serialized once where the tool ran:
/// {"content":[{"type":"text","text":...}],"structuredContent":...,"isError":false}. A tool with an
/// outputSchema gets its structured JSON as the text too (MCP asks for exactly that); others send
/// their text alone. Invalid UTF-8 becomes U+FFFD. The coordinator passes these bytes on, adding
/// only its _meta.
std::string result_body(const Tool& tool, const ToolResult& result);

/// What a cached answer of a CachePolicy::custom tool is vouched for with, computed where the tool
/// runs: `state` is a digest of Tool::cache_key (the same state gives the same digest), `tag` its
/// cache_tag ("" without one).
struct CacheVoucher {
  std::string state;
  std::string tag;
};

/// The voucher for a call of `tool` with `arguments` now, or nullopt when the answer must not be
/// cached (another policy, no key, or a key function that threw).
std::optional<CacheVoucher> cache_voucher(const Tool& tool, const json& arguments,
                                          const std::vector<std::filesystem::path>& roots);

/// Whether `state` (a CacheVoucher::state) is still the state of a call of `tool` with `arguments`.
bool cache_state_current(const Tool& tool, const json& arguments, const std::vector<std::filesystem::path>& roots,
                         const std::string& state);

}  // namespace mcpd
