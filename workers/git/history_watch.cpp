#include "history_watch.h"

#include <fcntl.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <string_view>

#include "history_state.h"
#include "roots.h"

namespace mcpd::git {

namespace fs = std::filesystem;

namespace {

constexpr std::uint32_t kMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_MOVED_FROM | IN_MOVED_TO | IN_ATTRIB |
                                IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_DONT_FOLLOW;

/// In a git or common directory, the names whose change can change a history answer.
bool matters(std::string_view name) {
  static constexpr std::array<std::string_view, 8> kNames = {"HEAD",    "packed-refs", "config", "config.worktree",
                                                              "shallow", "refs",        "info",   "commondir"};
  return std::find(kNames.begin(), kNames.end(), name) != kNames.end();
}

}  // namespace

HistoryWatch::~HistoryWatch() {
  if (fd_ >= 0) ::close(fd_);
}

std::shared_ptr<HistoryWatch> history_watch() {
  static auto watch = std::make_shared<HistoryWatch>();
  return watch;
}

std::optional<std::string> HistoryWatch::tag(const json& arguments, const std::vector<fs::path>& roots) {
  auto repo_path = arguments.is_object() ? arguments.find("repo_path") : arguments.end();
  if (!arguments.is_object() || repo_path == arguments.end() || !repo_path->is_string()) return std::nullopt;
  fs::path start;
  try {
    start = resolve_in_roots(repo_path->get<std::string>(), roots);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  auto git_dir = find_git_dir(start, roots);
  if (!git_dir) return std::nullopt;
  auto common = common_git_dir(*git_dir, roots);
  if (!common) return std::nullopt;
  std::string key = git_dir->string();
  std::lock_guard lock(mutex_);
  auto it = repositories_.find(key);
  if (it != repositories_.end()) {
    it->second.last_used = ++tick_;
    return key;
  }
  if (fd_ < 0) fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  if (fd_ < 0) return key;  // no inotify: validation alone keeps the answers right
  while (repositories_.size() >= kMaxWatchedRepositories) {
    auto oldest = repositories_.begin();
    for (auto r = repositories_.begin(); r != repositories_.end(); ++r)
      if (r->second.last_used < oldest->second.last_used) oldest = r;
    forget(oldest);
  }
  Repository repo;
  repo.last_used = ++tick_;
  if (!watch(key, *common, repo)) {
    for (int wd : repo.wds) {
      ::inotify_rm_watch(fd_, wd);
      watches_.erase(wd);
    }
    return key;
  }
  repositories_.emplace(key, std::move(repo));
  return key;
}

bool HistoryWatch::add(const std::string& git_dir, const fs::path& dir, std::uint32_t mask, bool filtered,
                       Repository& repo) {
  int wd = ::inotify_add_watch(fd_, dir.c_str(), mask);
  if (wd < 0) return errno == ENOENT;  // not there (no info/, say): nothing to watch
  repo.wds.push_back(wd);
  watches_[wd] = Watch{git_dir, filtered};
  return true;
}

bool HistoryWatch::watch(const std::string& git_dir, const fs::path& common, Repository& repo) {
  if (!add(git_dir, git_dir, kMask, true, repo)) return false;
  if (common != fs::path(git_dir) && !add(git_dir, common, kMask, true, repo)) return false;
  if (!add(git_dir, common / "info", kMask, false, repo)) return false;
  // Every directory under refs/: a loose ref is written by renaming "<ref>.lock" over it.
  std::size_t budget = kMaxRefDirectories;
  for (const fs::path& top : {common / "refs", fs::path(git_dir) / "refs"}) {
    if (top != common / "refs" && common == fs::path(git_dir)) continue;
    std::error_code ec;
    if (!fs::is_directory(fs::symlink_status(top, ec))) continue;
    if (!add(git_dir, top, kMask, false, repo) || budget-- == 0) return false;
    for (fs::recursive_directory_iterator it(top, fs::directory_options::none, ec), end; !ec && it != end;
         it.increment(ec)) {
      if (!it->is_directory(ec) || it->is_symlink(ec)) continue;
      if (budget-- == 0 || !add(git_dir, it->path(), kMask, false, repo)) return false;
    }
  }
  return true;
}

void HistoryWatch::forget(std::map<std::string, Repository>::iterator it) {
  for (int wd : it->second.wds) {
    ::inotify_rm_watch(fd_, wd);
    watches_.erase(wd);
  }
  changed_.push_back(it->first);  // no longer watched: its answers go
  repositories_.erase(it);
}

std::vector<std::string> HistoryWatch::changed() {
  std::lock_guard lock(mutex_);
  if (fd_ >= 0) {
    alignas(inotify_event) char buffer[16 * 1024];
    std::vector<std::string> touched;
    bool overflow = false;
    for (;;) {
      ssize_t n = ::read(fd_, buffer, sizeof buffer);
      if (n <= 0) break;
      for (char* p = buffer; p < buffer + n;) {
        auto* e = reinterpret_cast<inotify_event*>(p);
        p += sizeof(inotify_event) + e->len;
        if (e->mask & IN_Q_OVERFLOW) {
          overflow = true;
          continue;
        }
        auto w = watches_.find(e->wd);
        if (w == watches_.end()) continue;
        if (e->mask & IN_IGNORED) {
          touched.push_back(w->second.git_dir);  // a watched directory went: watch it all again
          watches_.erase(w);
          continue;
        }
        if (w->second.filtered && e->len && !matters(e->name)) continue;  // the index, objects, logs...
        touched.push_back(w->second.git_dir);
      }
    }
    if (overflow)
      for (const auto& [dir, repo] : repositories_) touched.push_back(dir);
    std::sort(touched.begin(), touched.end());
    touched.erase(std::unique(touched.begin(), touched.end()), touched.end());
    // A changed repository is watched afresh at its next tag (new ref directories, a replaced
    // packed-refs are then covered); its answers go now.
    for (const auto& dir : touched)
      if (auto it = repositories_.find(dir); it != repositories_.end()) forget(it);
      else changed_.push_back(dir);
  }
  std::vector<std::string> out = std::move(changed_);
  changed_.clear();
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::size_t HistoryWatch::watched() const {
  std::lock_guard lock(mutex_);
  return repositories_.size();
}

}  // namespace mcpd::git
