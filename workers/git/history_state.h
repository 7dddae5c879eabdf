// The cache key for answers about history (git_log, git_show, git_blame, git_branches, and git_diff
// between two commits). Such an answer depends on the arguments and on which commits the names in
// them point at: HEAD, the refs, and the config (upstreams). Objects never change, so the key is
// the state of those names, read with stat() and small file reads only and never through libgit2,
// because it runs before every call and again before each cached answer is served (in the git
// worker, or on a legacy thread; never on the coordinator's event loop):
//
//   - the git directory's path and inode;
//   - HEAD's content, and the content of the loose ref it points at (a new commit on the current
//     branch changes it);
//   - packed-refs, config, config.worktree, shallow and info/grafts: mtime (ns), size, inode;
//   - every directory under refs/ (recursively): mtime (ns) and inode. This is the proxy for the
//     loose refs themselves: git writes a ref by creating "<ref>.lock" and renaming it over the ref,
//     and both change the mtime of the directory holding it, so the directories are as good as a
//     stat of every loose ref, at the cost of one per directory rather than one per ref.
//
// File times have a coarse granularity (a kernel tick, or a second on some file systems), so two
// updates in quick succession may leave the same mtime. Like git's racy-index rule, a key is only
// given when everything it stats is older than `kRacyWindow` (2 s); otherwise the call is not
// cached. Any later change then gets a newer mtime, and a key once given can never describe a newer
// state. No key either (nullopt: run the call, don't cache) when repo_path is outside the roots or
// in no repository (the tool says why), when a revision reads the reflog ("@{") or the index (":path"),
// or when refs/ holds more than kMaxRefDirectories directories. Nor when anything it would look at
// is a symbolic link, or lies outside the roots (a .git file, a commondir): the key never reads
// outside the roots, and the tool itself refuses such a repository or checks where the links lead.
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "tool.h"

namespace mcpd::git {

constexpr std::chrono::seconds kRacyWindow{2};
constexpr std::size_t kMaxRefDirectories = 512;

/// The state of the repository `arguments.repo_path` names, as described above, or nullopt.
/// `now` is the wall clock the racy check compares file times with.
std::optional<std::string> history_state(const json& arguments, const std::vector<std::filesystem::path>& roots,
                                         std::chrono::system_clock::time_point now);

/// history_state at the current time: Tool::cache_key for the history tools.
std::optional<std::string> history_cache_key(const json& arguments, const std::vector<std::filesystem::path>& roots);

/// Where git finds a repository from `start` (a canonical directory), with stat() and small reads:
/// start/.git (a directory, or a file saying "gitdir: ..."), then start itself as a bare repository,
/// then the same for each parent, never above `roots`. Returns the git directory, or nullopt (also
/// when a .git link or file or a commondir leads outside the roots, which is never looked into).
std::optional<std::filesystem::path> find_git_dir(const std::filesystem::path& start,
                                                  const std::vector<std::filesystem::path>& roots);

/// The common directory of a git directory: itself, or where its commondir file leads when that
/// stays inside the roots (nullopt otherwise).
std::optional<std::filesystem::path> common_git_dir(const std::filesystem::path& git_dir,
                                                    const std::vector<std::filesystem::path>& roots);

}  // namespace mcpd::git
