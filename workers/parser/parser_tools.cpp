#include "parser_tools.h"

#include <set>
#include <stdexcept>

#include "code_tools.h"

namespace mcpd {

Tool parser_tool_base() {
  Tool tool;
  tool.annotations = ToolAnnotations{.read_only = true, .destructive = false, .idempotent = true, .open_world = false};
  tool.cache = CachePolicy::files;
  tool.path_arguments = {"path"};
  tool.default_timeout = std::chrono::seconds(30);
  return tool;
}

namespace {

QueryLimits query_limits_of(const json& settings) {
  QueryLimits limits;
  if (settings.is_null()) return limits;
  if (!settings.is_object()) throw std::invalid_argument("parser: must be an object");
  static const std::set<std::string> known = {"max_query_bytes", "max_query_depth"};
  for (const auto& [key, value] : settings.items())
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw std::invalid_argument("parser." + key + ": unknown setting; known: " + list);
    }
  auto bounded = [&](const char* key, std::uint64_t minimum, std::uint64_t maximum, std::size_t& field) {
    if (!settings.contains(key)) return;
    const json& v = settings[key];
    if (!v.is_number_integer() || v.get<std::int64_t>() < static_cast<std::int64_t>(minimum) ||
        v.get<std::uint64_t>() > maximum)
      throw std::invalid_argument(std::string("parser.") + key + ": must be an integer from " +
                                  std::to_string(minimum) + " to " + std::to_string(maximum));
    field = static_cast<std::size_t>(v.get<std::uint64_t>());
  };
  bounded("max_query_bytes", 1, 64ull << 20, limits.max_bytes);
  // tree-sitter's query parser recurses once per level: well below what a thread's stack holds.
  bounded("max_query_depth", 1, 4096, limits.max_depth);
  return limits;
}

}  // namespace

std::vector<Tool> parser_tools(const json& settings) {
  return {code_parse_tool(), code_outline_tool(), code_query_tool(query_limits_of(settings))};
}

}  // namespace mcpd
