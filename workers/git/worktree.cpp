#include "worktree.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <string_view>
#include <thread>

#include "roots.h"

namespace mcpd::git {

namespace {

constexpr std::size_t kMaxStatThreads = 4;
constexpr std::size_t kEntriesPerStatThread = 1000;  // git's preload-index starts a thread per ~500

bool same_time(const git_index_time& recorded, const struct timespec& actual) {
  return recorded.seconds == static_cast<std::int32_t>(actual.tv_sec) &&
         recorded.nanoseconds == static_cast<std::uint32_t>(actual.tv_nsec);
}

bool newer_or_same(const git_index_time& entry, const struct timespec& index) {
  auto seconds = static_cast<std::int64_t>(entry.seconds);
  return seconds > index.tv_sec || (seconds == index.tv_sec && entry.nanoseconds >= index.tv_nsec);
}

std::uint32_t index_mode(mode_t mode) {
  if (S_ISLNK(mode)) return GIT_FILEMODE_LINK;
  if (S_ISREG(mode)) return (mode & 0111) != 0 ? GIT_FILEMODE_BLOB_EXECUTABLE : GIT_FILEMODE_BLOB;
  return 0;
}

bool stat_clean(int workdir_fd, const git_index_entry* entry, const struct timespec& index_mtime) {
  if (GIT_INDEX_ENTRY_STAGE(entry) != 0 || (entry->flags_extended & GIT_INDEX_ENTRY_INTENT_TO_ADD) != 0 ||
      entry->mode == GIT_FILEMODE_COMMIT)
    return false;
  struct stat st {};
  return ::fstatat(workdir_fd, entry->path, &st, AT_SYMLINK_NOFOLLOW) == 0 && index_mode(st.st_mode) == entry->mode &&
         same_time(entry->mtime, st.st_mtim) && same_time(entry->ctime, st.st_ctim) &&
         entry->file_size == static_cast<std::uint32_t>(st.st_size) &&
         entry->ino == static_cast<std::uint32_t>(st.st_ino) && entry->uid == st.st_uid && entry->gid == st.st_gid &&
         !newer_or_same(entry->mtime, index_mtime);
}

/// Finds untracked files the way git's read_directory does for `git status`: directories are read
/// with readdir (file types from d_type, no stat), names the index lists are skipped without
/// further work, and only what is left is checked against the ignore rules.
class UntrackedWalk {
 public:
  UntrackedWalk(const Repository& repo, git_index* index, const ToolContext& context)
      : repo_(repo), context_(context) {
    std::size_t count = git_index_entrycount(index);
    tracked_.reserve(count);
    for (std::size_t i = 0; i < count; ++i) {
      std::string_view path = git_index_get_byindex(index, i)->path;
      if (tracked_.empty() || tracked_.back() != path) tracked_.push_back(path);  // stages of a conflict
    }
    std::sort(tracked_.begin(), tracked_.end());
  }

  std::vector<std::string> run() {
    OpenDir top(::open(repo_.workdir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (top.get() != nullptr) walk(top, "");
    std::sort(found_.begin(), found_.end());
    return std::move(found_);
  }

 private:
  struct Entry {
    std::string name;
    bool directory;
  };

  /// A directory being read, opened by its descriptor. Each one below the top is opened by name
  /// from its parent's descriptor, never by a path: a directory swapped for a symbolic link after
  /// its parent was listed is not followed (O_NOFOLLOW), so the walk never leaves the work tree.
  class OpenDir {
   public:
    explicit OpenDir(int fd) : dir_(fd >= 0 ? ::fdopendir(fd) : nullptr) {
      if (dir_ == nullptr && fd >= 0) ::close(fd);
    }
    ~OpenDir() {
      if (dir_ != nullptr) ::closedir(dir_);
    }
    OpenDir(const OpenDir&) = delete;
    OpenDir& operator=(const OpenDir&) = delete;
    DIR* get() const { return dir_; }
    int fd() const { return ::dirfd(dir_); }
    /// The subdirectory `name` (one component), or an OpenDir whose get() is nullptr.
    OpenDir* open_child(const std::string& name, std::unique_ptr<OpenDir>& holder) const {
      holder = std::make_unique<OpenDir>(::openat(fd(), name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
      return holder.get();
    }

   private:
    DIR* dir_;
  };

  std::vector<Entry> read(const OpenDir& handle, const std::string& dir) {
    std::vector<Entry> entries;
    if (handle.get() == nullptr) return entries;  // unreadable: git skips it too
    std::string full = repo_.workdir().string() + "/" + dir;
    while (dirent* e = ::readdir(handle.get())) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name == ".git") continue;
      bool directory = e->d_type == DT_DIR;
      bool link = e->d_type == DT_LNK;
      if (e->d_type == DT_UNKNOWN) {
        struct stat st {};
        bool found = ::fstatat(handle.fd(), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0;
        directory = found && S_ISDIR(st.st_mode);
        link = found && S_ISLNK(st.st_mode);
      }
      if (link && (name == ".gitignore" || name == ".gitattributes")) check_rules_link(full + std::string(name));
      entries.push_back({std::string(name), directory});
    }
    return entries;
  }

  // libgit2 reads the ignore and attribute files of every directory it checks paths in, following
  // a symbolic link (git itself no longer does): one that leads outside the roots is refused.
  void check_rules_link(const std::string& path) const {
    std::error_code ec;
    std::filesystem::path target = std::filesystem::canonical(path, ec);
    if (ec) return;  // dangling: nothing is read
    for (const auto& root : context_.roots)
      if (is_within(target, root)) return;
    throw ToolError("'" + path + "' is a symbolic link to '" + target.string() + "', outside the allowed roots");
  }

  bool is_tracked(std::string_view path) const { return std::binary_search(tracked_.begin(), tracked_.end(), path); }

  // Whether some tracked path starts with `prefix` ("dir/").
  bool holds_tracked(std::string_view prefix) const {
    auto it = std::lower_bound(tracked_.begin(), tracked_.end(), prefix);
    return it != tracked_.end() && it->substr(0, prefix.size()) == prefix;
  }

  bool ignored(const std::string& path) const {
    int ignored = 0;
    return git_ignore_path_is_ignored(&ignored, repo_.get(), path.c_str()) == 0 && ignored == 1;
  }

  void walk(const OpenDir& handle, const std::string& dir) {
    context_.check_cancelled();
    for (const Entry& entry : read(handle, dir)) {
      std::string path = dir + entry.name;
      if (is_tracked(path)) continue;  // a tracked file, or a submodule
      std::unique_ptr<OpenDir> child;
      if (!entry.directory) {
        if (!ignored(path)) found_.push_back(path);
      } else if (holds_tracked(path + "/")) {
        walk(*handle.open_child(entry.name, child), path + "/");
      } else if (!ignored(path + "/") && holds_untracked(*handle.open_child(entry.name, child), path + "/")) {
        found_.push_back(path + "/");
      }
    }
  }

  // Whether a directory without tracked files holds anything git status would show it for.
  bool holds_untracked(const OpenDir& handle, const std::string& dir) {
    if (handle.get() == nullptr) return false;
    struct stat st {};
    if (::fstatat(handle.fd(), ".git", &st, AT_SYMLINK_NOFOLLOW) == 0) return true;  // a nested repository
    for (const Entry& entry : read(handle, dir)) {
      std::string path = dir + entry.name;
      if (!entry.directory) {
        if (!ignored(path)) return true;
      } else if (!ignored(path + "/")) {
        std::unique_ptr<OpenDir> child;
        if (holds_untracked(*handle.open_child(entry.name, child), path + "/")) return true;
      }
    }
    return false;
  }

  const Repository& repo_;
  const ToolContext& context_;
  std::vector<std::string_view> tracked_;
  std::vector<std::string> found_;
};

}  // namespace

WorkIndex work_index(const Repository& repo) {
  WorkIndex work;
  struct stat st {};
  if (::stat((repo.gitdir() + "index").c_str(), &st) == 0) work.written = st.st_mtim;
  git_index* raw = nullptr;
  check(git_repository_index(&raw, repo.get()), "cannot read the index");
  work.index.reset(raw);
  check(git_index_read(work.index.get(), 0), "cannot read the index");
  return work;
}

std::optional<std::vector<std::string>> worktree_candidates(const Repository& repo, const WorkIndex& work,
                                                            const std::vector<std::string>& pathspecs) {
  if (!work.written) return std::nullopt;
  git_index* index = work.index.get();
  Pathspec filter;
  if (!pathspecs.empty()) {
    StringArray specs(pathspecs);
    git_pathspec* raw = nullptr;
    check(git_pathspec_new(&raw, specs.get()), "invalid paths");
    filter.reset(raw);
  }
  std::vector<const git_index_entry*> entries;
  std::size_t count = git_index_entrycount(index);
  entries.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const git_index_entry* entry = git_index_get_byindex(index, i);
    if (!filter || git_pathspec_matches_path(filter.get(), 0, entry->path) == 1) entries.push_back(entry);
  }
  int workdir_fd = ::open(repo.workdir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (workdir_fd < 0) return std::nullopt;
  std::vector<char> dirty(entries.size(), 0);
  auto check_range = [&](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) dirty[i] = !stat_clean(workdir_fd, entries[i], *work.written);
  };
  std::size_t threads = std::min<std::size_t>({kMaxStatThreads, std::max(1u, std::thread::hardware_concurrency()),
                                               entries.size() / kEntriesPerStatThread});
  if (threads <= 1) {
    check_range(0, entries.size());
  } else {
    std::vector<std::thread> workers;
    std::size_t chunk = (entries.size() + threads - 1) / threads;
    for (std::size_t t = 1; t < threads; ++t)
      workers.emplace_back(check_range, t * chunk, std::min(entries.size(), (t + 1) * chunk));
    check_range(0, std::min(entries.size(), chunk));
    for (auto& worker : workers) worker.join();
  }
  ::close(workdir_fd);
  std::vector<std::string> candidates;
  for (std::size_t i = 0; i < entries.size(); ++i)
    if (dirty[i] && (candidates.empty() || candidates.back() != entries[i]->path)) candidates.emplace_back(entries[i]->path);
  if (candidates.size() > entries.size() / 2 + 64) return std::nullopt;
  return candidates;
}

std::vector<std::string> untracked_paths(const Repository& repo, git_index* index, const ToolContext& context) {
  return UntrackedWalk(repo, index, context).run();
}

}  // namespace mcpd::git
