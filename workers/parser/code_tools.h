// The definitions (schemas, descriptions, handlers) of the three parser tools, one per source file;
// parser_tools() lists them.
#pragma once

#include "query.h"
#include "tool.h"

namespace mcpd {

Tool code_parse_tool();
Tool code_outline_tool();
Tool code_query_tool(const QueryLimits& limits = {});

/// The fields every parser tool shares: annotations (read-only, idempotent), file-based caching
/// keyed by `path`, and the default timeout.
Tool parser_tool_base();

}  // namespace mcpd
