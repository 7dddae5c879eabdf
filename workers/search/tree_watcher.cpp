#include "tree_watcher.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>

#include "walker.h"

namespace mcpd::search {

namespace {
// No IN_DONT_FOLLOW: each watch is added through /proc/self/fd/N, the magic link to a directory fd
// opened beneath the root, which must be followed to reach that directory (and only it).
constexpr std::uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR;
}

std::unique_ptr<TreeWatcher> TreeWatcher::create(const std::string& root, std::size_t max_dirs, int root_fd) {
  int dir = root_fd >= 0 ? ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0) : ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (dir < 0) return nullptr;
  int fd = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd < 0) {
    ::close(dir);
    return nullptr;
  }
  std::unique_ptr<TreeWatcher> watcher(new TreeWatcher(fd, root, max_dirs, dir));
  if (!watcher->watch_tree(root)) return nullptr;
  return watcher;
}

TreeWatcher::~TreeWatcher() { ::close(fd_); }

bool TreeWatcher::watch_tree(const std::string& dir) {
  std::string rel = dir.size() > root_.size() ? dir.substr(root_ == "/" ? 1 : root_.size() + 1) : ".";
  Fd start(openat_beneath(root_fd_.get(), rel.c_str(), O_PATH | O_DIRECTORY, kResolveBeneath | kResolveNoSymlinks));
  if (!start) return true;  // gone, or swapped for a symlink, meanwhile: nothing of the tree to watch
  std::size_t limit = max_dirs_ + 1 - std::min(max_dirs_, dirs_.size());
  return for_each_directory(start.get(), dir, limit, [&](int fd, const std::string& path) {
    std::string self = "/proc/self/fd/" + std::to_string(fd);
    int wd = ::inotify_add_watch(fd_, self.c_str(), kMask);
    if (wd < 0) {
      if (errno == EACCES) return true;  // unreadable: not searched either
      return healthy_ = false;  // ENOSPC: the watch limit; ENOENT: no /proc
    }
    dirs_[wd] = path;
    return watch_git_info(fd, path);
  }) || (healthy_ = false);
}

bool TreeWatcher::watch_git_info(int dir_fd, const std::string& dir) {
  // The walk skips .git, but a repository's .git/info/exclude is one of its ignore files: watch
  // .git/info like any directory of the tree, and .git itself for info appearing or going.
  Fd git(::openat(dir_fd, ".git", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!git) return true;  // no repository here, or a .git file (a worktree): nothing to watch
  std::string git_path = (dir == "/" ? "" : dir) + "/.git";
  std::string self = "/proc/self/fd/" + std::to_string(git.get());
  int wd = ::inotify_add_watch(fd_, self.c_str(), IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                                                      IN_MOVE_SELF | IN_ONLYDIR);
  if (wd < 0) return errno == EACCES || (healthy_ = false);
  git_dirs_[wd] = git_path;
  Fd info(::openat(git.get(), "info", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
  if (!info) return true;
  self = "/proc/self/fd/" + std::to_string(info.get());
  wd = ::inotify_add_watch(fd_, self.c_str(), kMask);
  if (wd < 0) return errno == EACCES || (healthy_ = false);
  dirs_[wd] = git_path + "/info";
  return true;
}

void TreeWatcher::watch_info(const std::string& info) {
  std::string rel = info.substr(root_ == "/" ? 1 : root_.size() + 1);
  Fd fd(openat_beneath(root_fd_.get(), rel.c_str(), O_RDONLY | O_DIRECTORY, kResolveBeneath | kResolveNoSymlinks));
  if (!fd) return;
  std::string self = "/proc/self/fd/" + std::to_string(fd.get());
  int wd = ::inotify_add_watch(fd_, self.c_str(), kMask);
  if (wd < 0) {
    if (errno != EACCES) healthy_ = false;
    return;
  }
  dirs_[wd] = info;
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
  for (auto it = git_dirs_.begin(); it != git_dirs_.end();) {
    if (it->second.compare(0, below.size(), below) == 0) {
      ::inotify_rm_watch(fd_, it->first);
      it = git_dirs_.erase(it);
    } else {
      ++it;
    }
  }
}

std::size_t TreeWatcher::drain(std::vector<Change>* changes) {
  alignas(inotify_event) char buffer[64 * 1024];
  std::size_t events = 0;
  // Only what was queued when the drain began: a tree changed without pause (a rename loop, a build
  // writing as fast as events are read) would otherwise keep the drain, and the query waiting on
  // it, going for as long as the changes go on. What arrives meanwhile is the next drain's.
  int queued = 0;
  if (::ioctl(fd_, FIONREAD, &queued) != 0) queued = 0;
  std::size_t taken = 0;
  while (taken < static_cast<std::size_t>(queued)) {
    ssize_t n = ::read(fd_, buffer, sizeof buffer);
    if (n <= 0) break;
    taken += static_cast<std::size_t>(n);
    for (char* p = buffer; p < buffer + n;) {
      auto* e = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + e->len;
      if (e->mask & IN_Q_OVERFLOW) {
        ++events;
        healthy_ = false;
        continue;
      }
      if (auto git = git_dirs_.find(e->wd); git != git_dirs_.end()) {
        // Of a .git directory only info matters (the index, objects and refs change all the
        // time and are nobody's ignore rules).
        if (e->mask & IN_IGNORED) {
          git_dirs_.erase(git);
          continue;
        }
        if (!e->len || std::string_view(e->name) != "info") continue;
        ++events;
        std::string info = git->second + "/info";
        if (e->mask & (IN_CREATE | IN_MOVED_TO)) watch_info(info);
        if (changes) changes->push_back({info, true});
        continue;
      }
      ++events;
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
