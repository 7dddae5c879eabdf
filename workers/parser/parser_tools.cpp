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

std::vector<Tool> parser_tools(const json& settings) {
  ParserSettings parsed = ParserSettings::from_json(settings);
  return {code_parse_tool(parsed), code_outline_tool(parsed), code_query_tool(parsed)};
}

Family parser_family() {
  Family family;
  family.kind = "parser";
  family.instructions =
      "code tools (tree-sitter parsing, outlines and queries of source files or code given inline)";
  family.make = [](const json& settings) { return FamilyInstance{parser_tools(settings), nullptr, nullptr}; };
  return family;
}

}  // namespace mcpd
