// The definitions (schemas, descriptions, handlers) of the three parser tools, one per source file;
// parser_tools() lists them.
#pragma once

#include "parser_settings.h"
#include "tool.h"

namespace mcpd {

Tool code_parse_tool(const ParserSettings& settings);
Tool code_outline_tool(const ParserSettings& settings);
Tool code_query_tool(const ParserSettings& settings);

/// The fields every parser tool shares: annotations (read-only, idempotent), file-based caching
/// keyed by `path`, and the default timeout.
Tool parser_tool_base();

}  // namespace mcpd
