// The work tree against the index, checked the way git checks it rather than the way libgit2's
// iterators do: libgit2 reads every directory and stats every entry of the work tree to answer
// "what changed", while git stats only the files the index lists (on several threads for a large
// index) and reads directories only to find untracked files. That difference made libgit2-based
// status and diff slower than spawning git on a few thousand files.
#pragma once

#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "repository.h"

namespace mcpd::git {

/// The index as loaded for one call, and when its file was written (nullopt: no index file yet).
struct WorkIndex {
  Index index;
  std::optional<struct timespec> written;
};

/// The repository's index, re-read if it changed on disk. The file's time is taken before the read:
/// should the index change in between, the time is older than the entries, which only makes more
/// of them racy (re-checked by content), never fewer.
WorkIndex work_index(const Repository& repo);

/// The tracked paths (under `pathspecs`, if any) whose work-tree file may differ from the index, by
/// git's stat check: a file whose mtime, ctime, size, inode, mode, uid and gid are as the index
/// recorded them, and that was last modified before the index was written (not "racily clean"),
/// has the content the index says. Everything else (a changed stat, a missing file, a conflict, a
/// submodule, an intent-to-add entry) is a candidate for libgit2 to compare by content. nullopt
/// when so many files are candidates that a list would not help (then diff everything).
std::optional<std::vector<std::string>> worktree_candidates(const Repository& repo, const WorkIndex& work,
                                                            const std::vector<std::string>& pathspecs);

/// The untracked paths as `git status` lists them by default, sorted: files that are neither
/// tracked nor ignored, and a directory without tracked files once, as "dir/", when it holds any
/// untracked file (or is a nested repository). Ignored directories are not entered. Checks for
/// cancellation between directories.
std::vector<std::string> untracked_paths(const Repository& repo, git_index* index, const ToolContext& context);

}  // namespace mcpd::git
