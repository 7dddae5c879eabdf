// Watches the repositories whose history answers are cached, so that a change of HEAD, a ref, the
// packed refs or the config drops those answers at once (CacheWatch, tool.h) rather than at their
// next lookup. Validation before each hit (history_cache_key, run again) stays the exact check;
// this only makes stale entries go early, so a watch it cannot add costs memory, never freshness.
//
// One inotify instance for the process, created on first use. Per repository: its git directory
// and common directory (events on the names history_state reads: HEAD, packed-refs, config,
// config.worktree, shallow, and refs/ or info/ appearing), every directory under refs/, and info/
// (grafts). At most kMaxWatchedRepositories repositories, the least recently used dropped (and
// reported as changed); a repository with more than kMaxRefDirectories ref directories is not
// watched (history_state gives it no key either).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tool.h"

namespace mcpd::git {

class HistoryWatch : public CacheWatch {
 public:
  static constexpr std::size_t kMaxWatchedRepositories = 64;

  HistoryWatch() = default;
  ~HistoryWatch() override;
  HistoryWatch(const HistoryWatch&) = delete;
  HistoryWatch& operator=(const HistoryWatch&) = delete;

  /// The tag of a history answer about `arguments.repo_path`: its git directory, now watched; or
  /// nullopt when there is no repository there (the answer is then validated by its key alone).
  std::optional<std::string> tag(const json& arguments, const std::vector<std::filesystem::path>& roots);

  std::vector<std::string> changed() override;

  /// Repositories watched now (for tests).
  std::size_t watched() const;

 private:
  struct Repository {
    std::vector<int> wds;
    std::uint64_t last_used = 0;
  };
  bool watch(const std::string& git_dir, const std::filesystem::path& common, Repository& repo);
  bool add(const std::string& git_dir, const std::filesystem::path& dir, std::uint32_t mask, bool filtered,
           Repository& repo);
  void forget(std::map<std::string, Repository>::iterator it);

  mutable std::mutex mutex_;
  int fd_ = -1;
  std::map<std::string, Repository> repositories_;  // by git directory
  struct Watch {
    std::string git_dir;
    bool filtered;  // a git or common directory: only the names history_state reads count
  };
  std::unordered_map<int, Watch> watches_;
  std::vector<std::string> changed_;
  std::uint64_t tick_ = 0;
};

/// The process's one HistoryWatch, shared by the history tools.
std::shared_ptr<HistoryWatch> history_watch();

}  // namespace mcpd::git
