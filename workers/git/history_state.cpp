#include "history_state.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "roots.h"

namespace mcpd::git {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kMaxSmallFile = 4096;

/// Reads a small file (HEAD, a loose ref, a gitdir link); nullopt when missing, too large, or not a
/// regular file. A final symbolic link is not followed: the key must not read outside the roots, and
/// git writes none of these as links.
std::optional<std::string> read_small(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  std::string text;
  if (::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= static_cast<off_t>(kMaxSmallFile)) {
    text.resize(kMaxSmallFile + 1);
    ssize_t n = ::read(fd, text.data(), text.size());
    text.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
  } else {
    text.resize(kMaxSmallFile + 1);
  }
  ::close(fd);
  if (text.size() > kMaxSmallFile) return std::nullopt;
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  return text;
}

bool is_dir(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool inside_roots(const fs::path& path, const std::vector<fs::path>& roots) {
  for (const auto& root : roots)
    if (is_within(path, root)) return true;
  return false;
}

/// `path` resolved, when that stays inside the roots.
std::optional<fs::path> contained(const fs::path& path, const std::vector<fs::path>& roots) {
  std::error_code ec;
  fs::path real = fs::canonical(path, ec);
  if (ec || !inside_roots(real, roots)) return std::nullopt;
  return real;
}

/// The common directory of `dir`: itself, or where its commondir file points when that is inside
/// the roots (nullopt otherwise).
std::optional<fs::path> common_dir(const fs::path& dir, const std::vector<fs::path>& roots) {
  auto link = read_small(dir / "commondir");
  if (!link) return dir;
  fs::path target(*link);
  return contained(target.is_absolute() ? target : dir / target, roots);
}

/// libgit2's test for a git directory: HEAD, and objects/ and refs/ in the common directory; false
/// for one that leads outside the roots, which is never looked into.
bool valid_git_dir(const fs::path& dir, const std::vector<fs::path>& roots) {
  if (!inside_roots(dir, roots) || !is_file(dir / "HEAD")) return false;
  auto common = common_dir(dir, roots);
  return common && is_dir(*common / "objects") && is_dir(*common / "refs");
}

/// Collects the stat fields a key needs and remembers whether anything was touched too recently.
class StateWriter {
 public:
  explicit StateWriter(std::chrono::system_clock::time_point now)
      : racy_after_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>((now - kRacyWindow).time_since_epoch())
                           .count()) {}

  void file(const std::string& label, const fs::path& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      out_ << label << "=none\n";
      return;
    }
    if (S_ISLNK(st.st_mode)) linked_ = true;
    out_ << label << "=" << mtime_ns(st) << ":" << st.st_size << ":" << st.st_ino << "\n";
  }

  /// Every directory under `dir` (itself included); false when there are too many.
  bool tree(const std::string& label, const fs::path& dir, std::size_t* budget) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) {
      out_ << label << "=none\n";
      return true;
    }
    if (!S_ISDIR(st.st_mode)) {
      linked_ = linked_ || S_ISLNK(st.st_mode);
      out_ << label << "=none\n";
      return true;
    }
    if (*budget == 0) return false;
    --*budget;
    out_ << label << "=" << mtime_ns(st) << ":" << st.st_ino << "\n";
    DIR* handle = ::opendir(dir.c_str());
    if (handle == nullptr) return false;
    std::unique_ptr<DIR, int (*)(DIR*)> closer(handle, ::closedir);
    std::vector<std::string> children;
    while (dirent* entry = ::readdir(handle)) {
      std::string name = entry->d_name;
      if (name == "." || name == "..") continue;
      unsigned char type = entry->d_type;
      if (type == DT_UNKNOWN) {
        struct stat child {};
        if (::lstat((dir / name).c_str(), &child) != 0) continue;
        type = S_ISLNK(child.st_mode) ? DT_LNK : S_ISDIR(child.st_mode) ? DT_DIR : DT_REG;
      }
      if (type == DT_LNK) linked_ = true;  // a link may lead anywhere: not followed, and no key
      if (type == DT_DIR) children.push_back(std::move(name));
    }
    closer.reset();
    std::sort(children.begin(), children.end());  // readdir order is not stable across rewrites
    for (const auto& child : children)
      if (!tree(label + "/" + child, dir / child, budget)) return false;
    return true;
  }

  void text(const std::string& label, const std::string& value) { out_ << label << "=" << value << "\n"; }

  bool racy() const { return racy_; }
  /// True when something the key depends on is a symbolic link: the tool itself decides whether it
  /// stays inside the roots, and such a state is not cached.
  bool linked() const { return linked_; }
  std::string str() const { return out_.str(); }

 private:
  long long mtime_ns(const struct stat& st) {
    long long ns = static_cast<long long>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
    if (ns >= racy_after_ns_) racy_ = true;
    return ns;
  }

  long long racy_after_ns_;
  bool racy_ = false;
  bool linked_ = false;
  std::ostringstream out_;
};

/// True when a revision argument reads something besides HEAD and the refs: the reflog (HEAD@{1},
/// @{-1}) or the index (":path", ":0:path").
bool reads_more_than_refs(const json& arguments) {
  for (const char* name : {"revision", "from", "to", "contains"}) {
    auto it = arguments.find(name);
    if (it == arguments.end() || !it->is_string()) continue;
    const std::string& spec = it->get_ref<const std::string&>();
    if (spec.find("@{") != std::string::npos || (!spec.empty() && spec.front() == ':')) return true;
  }
  return false;
}

}  // namespace

std::optional<fs::path> common_git_dir(const fs::path& git_dir, const std::vector<fs::path>& roots) {
  return common_dir(git_dir, roots);
}

std::optional<fs::path> find_git_dir(const fs::path& start, const std::vector<fs::path>& roots) {
  for (fs::path dir = start;; dir = dir.parent_path()) {
    if (!inside_roots(dir, roots)) return std::nullopt;
    fs::path dot_git = dir / ".git";
    struct stat st {};
    if (::lstat(dot_git.c_str(), &st) == 0) {
      // A .git link or file that leads out of the roots gives no key; the tool refuses the call.
      if (S_ISLNK(st.st_mode)) {
        auto target = contained(dot_git, roots);
        if (!target) return std::nullopt;
        if (valid_git_dir(*target, roots)) return *target;
      } else if (S_ISDIR(st.st_mode)) {
        if (valid_git_dir(dot_git, roots)) return dot_git;
      } else if (S_ISREG(st.st_mode)) {
        auto link = read_small(dot_git);
        constexpr std::string_view kPrefix = "gitdir: ";
        if (link && link->rfind(kPrefix, 0) == 0) {
          fs::path path(link->substr(kPrefix.size()));
          auto target = contained(path.is_absolute() ? path : dir / path, roots);
          if (!target) return std::nullopt;
          if (valid_git_dir(*target, roots)) return *target;
        }
      }
    }
    if (valid_git_dir(dir, roots)) return dir;
    if (dir == dir.parent_path()) return std::nullopt;
  }
}

std::optional<std::string> history_state(const json& arguments, const std::vector<fs::path>& roots,
                                         std::chrono::system_clock::time_point now) {
  if (!arguments.is_object() || reads_more_than_refs(arguments)) return std::nullopt;
  auto repo_path = arguments.find("repo_path");
  if (repo_path == arguments.end() || !repo_path->is_string()) return std::nullopt;
  fs::path start;
  try {
    start = resolve_in_roots(repo_path->get<std::string>(), roots);
  } catch (const std::exception&) {
    return std::nullopt;  // the call itself reports the bad path
  }
  auto git_dir = find_git_dir(start, roots);
  if (!git_dir) return std::nullopt;
  auto common_or_none = common_dir(*git_dir, roots);
  if (!common_or_none) return std::nullopt;
  fs::path common = *common_or_none;

  StateWriter state(now);
  struct stat st {};
  if (::stat(git_dir->c_str(), &st) != 0) return std::nullopt;
  state.text("gitdir", git_dir->string() + ":" + std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino));
  auto head = read_small(*git_dir / "HEAD");
  if (!head) return std::nullopt;
  state.text("HEAD", *head);
  state.file("HEAD.stat", *git_dir / "HEAD");
  constexpr std::string_view kSymbolic = "ref: ";
  if (head->rfind(kSymbolic, 0) == 0) {
    std::string ref = head->substr(kSymbolic.size());
    // Not a ref name libgit2 would follow; and the key must not read where ".." leads.
    if (ref.rfind("refs/", 0) != 0 || ref.find("..") != std::string::npos) return std::nullopt;
    // Per-worktree refs live in the worktree's git directory, shared ones in the common one.
    fs::path loose = (ref.rfind("refs/heads/", 0) == 0 ? common : *git_dir) / ref;
    state.text("HEAD.ref", read_small(loose).value_or("packed"));
    state.file("HEAD.ref.stat", loose);
  }
  state.file("packed-refs", common / "packed-refs");
  state.file("config", common / "config");
  state.file("config.worktree", *git_dir / "config.worktree");
  state.file("shallow", common / "shallow");
  state.file("grafts", common / "info" / "grafts");
  std::size_t budget = kMaxRefDirectories;
  if (!state.tree("refs", common / "refs", &budget)) return std::nullopt;
  if (common != *git_dir && !state.tree("worktree-refs", *git_dir / "refs", &budget)) return std::nullopt;
  if (state.racy() || state.linked()) return std::nullopt;
  return "git-history-v1\n" + state.str();
}

std::optional<std::string> history_cache_key(const json& arguments, const std::vector<fs::path>& roots) {
  return history_state(arguments, roots, std::chrono::system_clock::now());
}

}  // namespace mcpd::git
