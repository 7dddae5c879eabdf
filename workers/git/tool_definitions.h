// The definitions (schemas, descriptions, handlers) of the git tools, one source file per tool (the
// writing ones share git_write.cpp); git_tools() lists them.
#pragma once

#include "tool.h"

namespace mcpd::git {

Tool status_tool();
Tool log_tool();
Tool diff_tool();
Tool show_tool();
Tool blame_tool();
Tool branches_tool();
Tool add_tool();
Tool reset_tool();
Tool commit_tool();
Tool create_branch_tool();
Tool checkout_tool();

/// A read-only tool: read_only, idempotent, not destructive, never cached (status and diff:
/// their answers depend on the working tree).
Tool read_tool_base();

/// A read-only tool whose answer depends only on history: cached under history_cache_key.
Tool history_tool_base();

/// A tool that changes the repository: destructive, not idempotent (never retried), never cached.
Tool write_tool_base();

/// Throws the ToolError every writing tool gives when writes are off.
void require_writes(const ToolContext& context);

/// The JSON Schema of the commit shape output.h's commit_summary() writes.
json commit_schema();

}  // namespace mcpd::git
