// A parallel directory walk that lists the files ripgrep would search by default: .gitignore
// (inside a git repository, parents up to the repository's top included, and .git/info/exclude),
// .ignore and .rgignore everywhere, hidden entries skipped, -g overrides and --type filters, the
// .git directory never entered and symlinks never followed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ignore.h"

namespace mcpd::search {

/// Which files a walk keeps; the same fields as the search tools' arguments.
struct WalkFilter {
  bool hidden = false;     // include hidden files and directories
  bool no_ignore = false;  // do not read .gitignore / .ignore / .rgignore / exclude
  std::vector<std::string> include;  // rg -g GLOB
  std::vector<std::string> exclude;  // rg -g !GLOB
  std::vector<std::string> types;    // type names (file_types.h), validated by the caller
  IgnoreLimits limits;  // for ignore files and for `include`/`exclude` (not part of key(): per engine)
  // search.max_file_bytes: the git config naming the global gitignore is read up to it, and no
  // ignore file is read beyond it either (nor beyond limits.max_file_bytes). Not part of key().
  std::uint64_t max_file_bytes = 1024ull << 20;

  /// A string that identifies the filter, for caching listings.
  std::string key() const;
};

/// Counters a walk updates while it runs (read by the caller's thread for progress).
struct WalkCounters {
  std::atomic<std::uint64_t> directories{0};
  std::atomic<std::uint64_t> files{0};
  std::atomic<std::uint64_t> ignore_lines_skipped{0};  // bad or over-limit lines of ignore files
  std::atomic<std::uint64_t> special{0};  // FIFOs, sockets and devices skipped (never opened)
};

/// Lists the files under `dir` (canonical, absolute; open as `dir_fd`, which the walk reads through,
/// opening each subdirectory relative to its parent's fd) that pass `filter`, relative to `dir`,
/// '/'-separated, sorted bytewise. Runs `threads` threads; stops early (returning what it has)
/// when `cancelled` returns true; that is polled between directories. With `limit` > 0 it also
/// stops once more than `limit` files were found, sets `*overflow` and returns an empty list, so
/// that a tree with millions of files never has its whole listing in memory. Throws
/// std::invalid_argument for a bad glob in the filter (a bad line of an ignore file is skipped and
/// counted in counters.ignore_lines_skipped).
std::vector<std::string> walk_files(int dir_fd, const std::string& dir, const WalkFilter& filter, unsigned threads,
                                    WalkCounters& counters, const std::function<bool()>& cancelled,
                                    std::size_t limit = 0, bool* overflow = nullptr);

/// The same walk without a listing: calls `on_file(worker, relative_path)` for each file as it is
/// found, from `threads` threads at once (`worker` is 0 .. threads-1, so the callback can keep
/// per-thread state), in no particular order. Memory stays bounded by the directories pending.
void walk_each(int dir_fd, const std::string& dir, const WalkFilter& filter, unsigned threads,
               WalkCounters& counters, const std::function<bool()>& cancelled,
               const std::function<void(unsigned worker, std::string&& rel)>& on_file);

/// Calls `visit(fd, path)` for every directory under `dir` (open as `dir_fd`; itself included),
/// except .git directories and symlinks, each opened relative to its parent's fd, up to `limit`
/// directories; returns false when there are more or `visit` returned false. Used to set up watches.
bool for_each_directory(int dir_fd, const std::string& dir, std::size_t limit,
                        const std::function<bool(int fd, const std::string& path)>& visit);

}  // namespace mcpd::search
