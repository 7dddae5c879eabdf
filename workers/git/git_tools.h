// The git tool family over libgit2: git_status, git_log, git_diff, git_show, git_blame and
// git_branches read; git_add, git_reset, git_commit, git_create_branch and git_checkout write (and
// refuse unless ToolContext::allow_writes). The coordinator runs these handlers in-process; a git
// worker runs the same, keeping repositories open between calls.
#pragma once

#include <vector>

#include "family.h"
#include "tool.h"

namespace mcpd {

/// The git tools, ready to register.
std::vector<Tool> git_tools();

/// The git family as the coordinator lists it (family.h).
Family git_family();

}  // namespace mcpd
