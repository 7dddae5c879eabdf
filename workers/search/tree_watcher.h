// Watches a directory tree with inotify (one watch per directory; of .git only info/, which holds
// the repository's exclude file) so that a caller
// can learn, with one non-blocking read, whether anything under it changed since it last asked.
// The kernel queues an event during the modifying system call, so a change that finished before
// drain() is always seen. Used by the worker's index and by the coordinator's cache key.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "roots.h"

namespace mcpd::search {

class TreeWatcher {
 public:
  /// One changed path: a file, or a directory whose whole content must be assumed changed.
  struct Change {
    std::string path;  // absolute
    bool is_dir;
  };

  /// Watches `root` (open as `root_fd`, or opened by its name when -1) and every directory below
  /// it, each reached through its parent's fd; nullptr when that is impossible (more than
  /// `max_dirs` directories, the inotify watch limit, no inotify, no /proc).
  static std::unique_ptr<TreeWatcher> create(const std::string& root, std::size_t max_dirs, int root_fd = -1);
  ~TreeWatcher();
  TreeWatcher(const TreeWatcher&) = delete;
  TreeWatcher& operator=(const TreeWatcher&) = delete;

  /// Reads every queued event without blocking, adds watches for new directories, appends what
  /// changed to `changes` (may be null) and returns the number of events. After an overflow or a
  /// failed watch, healthy() turns false for good: the caller must stop trusting the watcher.
  std::size_t drain(std::vector<Change>* changes);
  bool healthy() const { return healthy_; }
  /// Counts the drains that saw at least one event.
  std::uint64_t generation() const { return generation_; }
  const std::string& root() const { return root_; }
  std::size_t watched_directories() const { return dirs_.size(); }

 private:
  TreeWatcher(int fd, std::string root, std::size_t max_dirs, int root_fd)
      : fd_(fd), root_(std::move(root)), max_dirs_(max_dirs), root_fd_(root_fd) {}
  bool watch_tree(const std::string& dir);
  bool watch_git_info(int dir_fd, const std::string& dir);
  void watch_info(const std::string& info);
  void unwatch_tree(const std::string& dir);

  int fd_;
  std::string root_;
  std::size_t max_dirs_;
  bool healthy_ = true;
  std::uint64_t generation_ = 0;
  std::unordered_map<int, std::string> dirs_;
  std::unordered_map<int, std::string> git_dirs_;  // .git directories: only "info" in them counts
  Fd root_fd_;  // new directories are opened beneath it, never by their full path
};

}  // namespace mcpd::search
