#include "tree_watcher.h"

#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>

#include "walker.h"

namespace mcpd::search {

namespace {
constexpr std::uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;
}

std::unique_ptr<TreeWatcher> TreeWatcher::create(const std::string& root, std::size_t max_dirs) {
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) return nullptr;
  std::unique_ptr<TreeWatcher> watcher(new TreeWatcher(fd, root, max_dirs));
  if (!watcher->watch_tree(root)) return nullptr;
  return watcher;
}

TreeWatcher::~TreeWatcher() { ::close(fd_); }

bool TreeWatcher::watch_tree(const std::string& dir) {
  std::vector<std::string> dirs;
  if (!list_directories(dir, max_dirs_ + 1 - std::min(max_dirs_, dirs_.size()), dirs)) return healthy_ = false;
  for (const auto& d : dirs) {
    int wd = ::inotify_add_watch(fd_, d.c_str(), kMask);
    if (wd < 0) {
      if (errno == ENOENT || errno == ENOTDIR || errno == EACCES) continue;  // gone or unreadable meanwhile
      return healthy_ = false;  // ENOSPC: the watch limit
    }
    dirs_[wd] = d;
  }
  return true;
}

void TreeWatcher::unwatch_tree(const std::string& dir) {
  std::string below = dir == "/" ? "/" : dir + "/";
  for (auto it = dirs_.begin(); it != dirs_.end();) {
    if (it->second == dir || it->second.compare(0, below.size(), below) == 0) {
      ::inotify_rm_watch(fd_, it->first);  // its IN_IGNORED then finds no entry
      it = dirs_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t TreeWatcher::drain(std::vector<Change>* changes) {
  alignas(inotify_event) char buffer[64 * 1024];
  std::size_t events = 0;
  while (true) {
    ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n <= 0) break;
    for (char* p = buffer; p < buffer + n;) {
      auto* e = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      ++events;
      if (e->mask & IN_Q_OVERFLOW) {
        healthy_ = false;
        continue;
      }
      auto it = dirs_.find(e->wd);
      if (it == dirs_.end()) continue;
      if (e->mask & IN_IGNORED) {
        dirs_.erase(it);
        continue;
      }
      std::string dir = it->second;
      if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF)) {
        if (changes) changes->push_back({dir, true});
        continue;
      }
      std::string path = e->len ? (dir == "/" ? "/" : dir + "/") + e->name : dir;
      bool is_dir = (e->mask & IN_ISDIR) != 0;
      // A directory moved away keeps its watches (the kernel follows the inode), under paths that
      // no longer hold it: drop them. Moved within the tree, IN_MOVED_TO watches it again below.
      // (Deleted directories need nothing: the kernel ends their watches with IN_IGNORED.)
      if (is_dir && (e->mask & IN_MOVED_FROM)) unwatch_tree(path);
      if (is_dir && (e->mask & (IN_CREATE | IN_MOVED_TO)) && std::string_view(e->name) != ".git") watch_tree(path);
      if (changes) changes->push_back({path, is_dir});
    }
  }
  if (events) ++generation_;
  return events;
}

}  // namespace mcpd::search
