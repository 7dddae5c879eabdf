#include "parser_tools.h"

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

std::vector<Tool> parser_tools() { return {code_parse_tool(), code_outline_tool(), code_query_tool()}; }

}  // namespace mcpd
