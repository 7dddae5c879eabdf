// Turns a libgit2 diff into the answer shape git_diff, git_show and git_log share: per-file stats
// (like git diff --numstat) for every file, and the unified text (like git diff) while the byte cap
// lasts.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "output.h"
#include "repository.h"

namespace mcpd::git {

/// Diff options for the tools: `context_lines`, the pathspecs (already relative to the top of the
/// work tree), typechanges reported as such. `paths` must outlive the options.
git_diff_options diff_options(std::uint32_t context_lines, const StringArray& paths);

/// The paths of files (blobs, symlinks, submodules) that differ between two trees (either may be
/// null: empty), sorted. Subtrees with the same id are skipped without being read, as git's
/// diff-tree does.
std::vector<std::string> changed_paths(git_repository* repo, const git_tree* old_tree, const git_tree* new_tree);

/// git_diff_tree_to_tree for what changed: libgit2's tree iterators visit every entry of both trees
/// even under identical subtrees (milliseconds per diff on a 20,000-file tree), so this finds the
/// changed paths first (changed_paths), keeps those `options.pathspec` selects, and asks libgit2
/// about those alone. Null when nothing differs.
Diff diff_trees(git_repository* repo, const git_tree* old_tree, const git_tree* new_tree,
                const git_diff_options& options);

/// How many hex digits git shows for object ids in "index" lines: core.abbrev when it is a number,
/// else git's automatic length, from the number of packed objects (7 for small repositories, one
/// more for every fourfold growth beyond 2^14 objects). 0 leaves libgit2's default (core.abbrev).
std::uint16_t abbrev_length(git_repository* repo);

/// Pairs deletions and additions into renames, as git diff does by default (diff.renames). A null
/// diff is left alone.
void find_renames(git_diff* diff);

/// A rendered diff. Stats and counts cover every file even when the lists or the text were cut.
struct RenderedDiff {
  json files = json::array();  // {path, old_path?, status, additions, deletions} or {..., binary: true}
  std::uint64_t files_changed = 0;
  std::uint64_t additions = 0;
  std::uint64_t deletions = 0;
  std::string text;  // unified diff, as git diff prints it
  bool truncated = false;
};

/// Renders `diff` (null: no changes) within what is left of `budget`, and takes from it what the
/// rendering used (marking it truncated when something was cut). The file list gets what it needs
/// first and the text the rest; without `with_text` only the stats are computed. Checks for
/// cancellation at every file and reports progress on long diffs.
RenderedDiff render_diff(git_diff* diff, OutputBudget& budget, bool with_text, const ToolContext& context);

/// The JSON Schema of one entry of RenderedDiff::files.
json file_stats_schema();

}  // namespace mcpd::git
