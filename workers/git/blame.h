// git blame's algorithm over libgit2 objects. libgit2's own git_blame_file diffs the whole tree
// (and looks for renames) at every commit that touched the file and re-reads the config each time,
// which made it slower than spawning git; this follows git's blame.c instead: walk back from the
// newest commit in commit-date order, hand every line to the first parent whose version of the file
// is identical, otherwise diff against each parent and hand over the lines the diff leaves
// unchanged; whatever no parent takes was introduced by the commit. Renames are followed when the
// path is missing in a parent, as git does by default.
#pragma once

#include <git2.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tool.h"

namespace mcpd::git {

/// Where a line of the blamed file came from.
struct BlamedLine {
  git_oid commit{};            // the commit that introduced the line
  std::string path;            // the file's path in that commit
  std::uint32_t line = 0;      // 1-based line number in that commit's version
};

/// Blames lines first..last (1-based, inclusive) of `path` (whose blob in `newest` is `blob`). The
/// result has one entry per line, in order. Checks for cancellation and reports progress while it
/// walks history.
std::vector<BlamedLine> blame_lines(git_repository* repo, const git_commit* newest, const std::string& path,
                                    const git_oid& blob, std::uint32_t first, std::uint32_t last,
                                    const ToolContext& context);

}  // namespace mcpd::git
