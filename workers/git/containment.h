// Keeps a repository's git directories inside the roots. Checking the work tree is not enough:
// libgit2 follows a `.git` file's "gitdir:", a linked worktree's `commondir`, the alternates of
// every objects directory (nested ones too), `include.path` and `includeIf` in config files,
// `core.worktree`, and any symbolic link among the entries of the git directory, so each of these
// can make the tools read, and with writes on, write, a repository the user never allowed.
//
// Before a repository is opened, everything libgit2 will read or write for it is checked: the
// directories must resolve inside the roots, and every symbolic link in them must point inside the
// roots. The check is done once and remembered with the identity and change time (ctime) of every
// directory and file it looked at; a later call only re-stats those (ctime cannot be set back by a
// client, unlike mtime), and walks again when any of them changed.
//
// What is left is the window between the check and libgit2's own opens within one call: libgit2
// opens files by name, so a link swapped in during that window is followed. Closing it would need
// the kernel's help (a restricted view of the file system for the process).
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

namespace mcpd::git {

/// Where a repository was found from a directory, before libgit2 opened it.
struct LocatedRepository {
  std::filesystem::path top;     // the directory to open (the one holding `.git`, or the bare repository)
  std::filesystem::path gitdir;  // canonical
  bool bare = false;             // found as a bare repository (no `.git` entry)
};

/// Finds the repository from `start` (canonical, inside `roots`) the way libgit2 does: start/.git
/// (a directory, or a file saying "gitdir: ..."), then start itself as a bare repository, then the
/// same for each parent, never above the roots. Refuses (ToolError naming `repo_path` and the
/// directory) a `.git` link or file, or a `commondir`, that leads outside the roots. Throws the
/// `not_found` error when there is no repository.
LocatedRepository locate_repository(const std::filesystem::path& start, const std::vector<std::filesystem::path>& roots,
                                    const std::string& repo_path);

/// Checks the git directory `located.gitdir` as described above, or trusts a previous check when
/// nothing it looked at has changed since. ToolError "repository 'X': its <what> '<path>' (via
/// <how>) is outside the allowed roots" otherwise. Thread-safe.
void check_containment(const LocatedRepository& located, const std::vector<std::filesystem::path>& roots,
                       const std::string& repo_path);

/// Forgets every remembered check (tests).
void forget_containment_checks();

/// Remembered checks at the moment.
std::size_t containment_checks_remembered();

}  // namespace mcpd::git
