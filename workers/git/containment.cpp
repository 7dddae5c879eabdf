#include "containment.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string_view>
#include <utility>

#include "history_state.h"
#include "roots.h"
#include "tool.h"

namespace mcpd::git {

namespace fs = std::filesystem;

namespace {

// libgit2 reads alternates files at depths 0 to 5 and ignores deeper ones; includes deeper than 10
// are an error there.
constexpr int kMaxAlternatesDepth = 5;
constexpr int kMaxIncludeDepth = 10;
// Ref names nest as deep as a path can; this only keeps a hostile tree from exhausting the stack.
constexpr int kMaxRefDepth = 256;
// Remembered checks; beyond, the map starts over (a check costs one walk of the git directory).
constexpr std::size_t kMaxRemembered = 256;

/// What an lstat said about one path the check depended on.
struct Stamp {
  std::string path;
  bool exists = false;
  dev_t device = 0;
  ino_t inode = 0;
  mode_t mode = 0;
  off_t size = 0;
  struct timespec ctime {};

  static Stamp of(const std::string& path) {
    Stamp stamp;
    stamp.path = path;
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) return stamp;
    stamp.exists = true;
    stamp.device = st.st_dev;
    stamp.inode = st.st_ino;
    stamp.mode = st.st_mode;
    stamp.size = st.st_size;
    stamp.ctime = st.st_ctim;
    return stamp;
  }

  bool same(const Stamp& other) const {
    return exists == other.exists && device == other.device && inode == other.inode && mode == other.mode &&
           size == other.size && ctime.tv_sec == other.ctime.tv_sec && ctime.tv_nsec == other.ctime.tv_nsec;
  }
};

struct Remembered {
  std::shared_ptr<const std::vector<Stamp>> stamps;
};

std::mutex remembered_mutex;
std::map<std::string, Remembered>& remembered() {
  static auto* map = new std::map<std::string, Remembered>;  // never destroyed, like the repository pool
  return *map;
}

bool inside_roots(const fs::path& path, const std::vector<fs::path>& roots) {
  for (const auto& root : roots)
    if (is_within(path, root)) return true;
  return false;
}

/// The canonical form of `path`, or, for a path that does not exist (yet), its longest existing
/// ancestor resolved and the rest appended: what a later creation would land on.
fs::path resolved(const fs::path& path) {
  std::error_code ec;
  fs::path out = fs::weakly_canonical(path, ec);
  if (ec) return path.lexically_normal();
  return out;
}

std::string trim(std::string_view text) {
  std::size_t begin = 0, end = text.size();
  while (begin < end && (text[begin] == ' ' || text[begin] == '\t' || text[begin] == '\r' || text[begin] == '\n'))
    ++begin;
  while (end > begin && (text[end - 1] == ' ' || text[end - 1] == '\t' || text[end - 1] == '\r' || text[end - 1] == '\n'))
    --end;
  return std::string(text.substr(begin, end - begin));
}

std::string lower(std::string text) {
  for (char& c : text)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return text;
}

/// A file's content, read without following a final symbolic link (the caller checked the path);
/// nullopt when it is missing or not a regular file.
std::optional<std::string> read_regular(const fs::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return std::nullopt;
  }
  std::string out;
  char buffer[16384];
  for (;;) {
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

/// One entry of a git config file that can lead libgit2 to another file.
struct ConfigEntry {
  std::string section;  // lower case; "includeif" for [includeIf "..."]
  std::string key;      // lower case
  std::string value;
};

/// The entries of a git config file, parsed as git does (sections, subsections, quoting,
/// escapes, comments, continued lines) far enough to find every key and its value.
std::vector<ConfigEntry> parse_config(const std::string& text) {
  std::vector<ConfigEntry> out;
  std::string section;
  std::size_t i = 0, n = text.size();
  auto skip_blanks = [&] {
    while (i < n && (text[i] == ' ' || text[i] == '\t' || text[i] == '\r')) ++i;
  };
  auto skip_line = [&] {
    while (i < n && text[i] != '\n') ++i;
    if (i < n) ++i;
  };
  if (text.rfind("\xEF\xBB\xBF", 0) == 0) i = 3;  // a UTF-8 byte order mark, which libgit2 skips too
  while (i < n) {
    skip_blanks();
    if (i >= n) break;
    char c = text[i];
    if (c == '\n') {
      ++i;
      continue;
    }
    if (c == '#' || c == ';') {
      skip_line();
      continue;
    }
    if (c == '[') {
      ++i;
      std::string name;
      while (i < n && text[i] != ']' && text[i] != ' ' && text[i] != '\t' && text[i] != '\n') name += text[i++];
      skip_blanks();
      if (i < n && text[i] == '"') {  // [section "subsection"]: the subsection does not matter here
        ++i;
        while (i < n && text[i] != '"' && text[i] != '\n') i += text[i] == '\\' && i + 1 < n ? 2 : 1;
        if (i < n && text[i] == '"') ++i;
      }
      while (i < n && text[i] != ']' && text[i] != '\n') ++i;
      if (i < n && text[i] == ']') ++i;
      name = lower(name);
      if (auto dot = name.find('.'); dot != std::string::npos) name.resize(dot);  // [section.subsection]
      section = name;
      continue;  // a key may follow on the same line
    }
    std::string key;
    while (i < n && (std::isalnum(static_cast<unsigned char>(text[i])) || text[i] == '-')) key += text[i++];
    if (key.empty()) {
      skip_line();
      continue;
    }
    skip_blanks();
    std::string value;
    if (i < n && text[i] == '=') {
      ++i;
      skip_blanks();
      bool quoted = false;
      std::size_t keep = 0;  // length of value without trailing unquoted blanks
      while (i < n) {
        char v = text[i];
        if (v == '\n') break;  // an unterminated quote ends at the line too
        if (v == '\\' && i + 1 < n) {
          char e = text[i + 1];
          i += 2;
          if (e == '\n') continue;  // a continued line
          if (e == '\r' && i < n && text[i] == '\n') {
            ++i;
            continue;
          }
          value += e == 'n' ? '\n' : e == 't' ? '\t' : e == 'b' ? '\b' : e;
          keep = value.size();
          continue;
        }
        ++i;
        if (v == '"') {
          quoted = !quoted;
          keep = value.size();
          continue;
        }
        if (!quoted && (v == '#' || v == ';')) {
          while (i < n && text[i] != '\n') ++i;
          break;
        }
        value += v;
        if (quoted || (v != ' ' && v != '\t' && v != '\r')) keep = value.size();
      }
      value.resize(keep);
    }
    out.push_back({section, lower(key), value});
    skip_line();
  }
  return out;
}

/// How an error names an entry of a directory the check walks: the parts of a git directory by
/// their role, anything else by name.
std::string entry_description(const std::string& name, const std::string& what) {
  static const std::map<std::string, std::string> known = {
      {"objects", "objects directory"}, {"refs", "refs directory"},       {"packed-refs", "packed-refs file"},
      {"config", "config file"},        {"HEAD", "HEAD file"},            {"index", "index file"},
      {"info", "info directory"},       {"logs", "reflog directory"},     {"worktrees", "worktrees directory"},
      {"commondir", "commondir file"},  {"shallow", "shallow file"},      {"config.worktree", "config file"}};
  if (what == "git directory" || what == "common directory") {
    auto it = known.find(name);
    if (it != known.end()) return it->second;
  }
  return "entry '" + name + "' of the " + what;
}

/// One walk over a git directory, collecting the stamps that later calls compare.
class Checker {
 public:
  Checker(const std::vector<fs::path>& roots, const std::string& repo_path) : roots_(roots), repo_path_(repo_path) {}

  [[noreturn]] void refuse(const std::string& what, const fs::path& path, const std::string& via) const {
    std::string message = "repository '" + repo_path_ + "': its " + what + " '" + path.string() + "'";
    if (!via.empty()) message += " (via " + via + ")";
    throw ToolError(message + " is outside the allowed roots");
  }

  /// `path` resolved, refused when that leaves the roots.
  fs::path inside(const fs::path& path, const std::string& what, const std::string& via) const {
    fs::path real = resolved(path);
    if (!inside_roots(real, roots_)) refuse(what, real, via);
    return real;
  }

  void stamp(const fs::path& path) { stamps_.push_back(Stamp::of(path.string())); }

  /// The whole git directory `dir` (a repository's own, or the common one of a linked worktree).
  void git_directory(const fs::path& dir, const std::string& what) {
    scan(dir, what, 0, {"hooks"});  // libgit2 never runs hooks
    scan(dir / "refs", "refs directory", kMaxRefDepth);
    scan(dir / "logs", "reflog directory", kMaxRefDepth);
    scan(dir / "info", "info directory", 0);
    scan(dir / "worktrees", "worktrees directory", 1);
  }

  /// An objects directory, its alternates and theirs.
  void objects(const fs::path& dir, int depth, const std::string& via) {
    fs::path real = inside(dir, "objects directory", via);
    scan(real, "objects directory", 1);  // the fan-out directories, pack/ and info/
    fs::path alternates = real / "info" / "alternates";
    stamp(alternates);
    if (depth >= kMaxAlternatesDepth) return;  // libgit2 reads no deeper
    std::optional<std::string> text = read_regular(alternates);
    if (!text) return;
    std::string from = "objects/info/alternates of '" + real.string() + "'";
    std::size_t start = 0;
    while (start <= text->size()) {
      std::size_t end = text->find_first_of("\r\n", start);
      if (end == std::string::npos) end = text->size();
      std::string line = text->substr(start, end - start);
      start = end + 1;
      if (line.empty() || line[0] == '#') continue;
      // As libgit2: a relative path is taken from this objects directory only in the repository
      // itself and when it starts with a dot; any other is taken as it stands (from the process's
      // working directory).
      fs::path next = line[0] == '.' && depth == 0 ? real / line : fs::path(line);
      objects(next, depth + 1, from);
    }
  }

  /// A config file and the files it includes; `gitdir` and `top` anchor relative values.
  void config(const fs::path& file, const fs::path& gitdir, const fs::path& top, int depth, const std::string& via) {
    fs::path real = inside(file, "config file", via);
    stamp(real);
    if (real != file) stamp(file);
    struct stat st {};
    if (::stat(real.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) special(real, "config");
    std::optional<std::string> text = read_regular(real);
    if (!text) return;
    std::string where = "'" + real.string() + "'";
    for (const auto& entry : parse_config(*text)) {
      if ((entry.section == "include" || entry.section == "includeif") && entry.key == "path") {
        if (depth + 1 > kMaxIncludeDepth || entry.value.empty()) continue;
        // Every includeIf counts, whatever its condition: which ones apply can change with the branch.
        config(expand(entry.value, real.parent_path()), gitdir, top, depth + 1,
               entry.section + ".path in " + where);
      } else if (entry.section == "core" && entry.key == "worktree" && !entry.value.empty()) {
        inside(expand(entry.value, gitdir), "work tree", "core.worktree in " + where);
      } else if (entry.section == "core" && (entry.key == "excludesfile" || entry.key == "attributesfile") &&
                 !entry.value.empty()) {
        inside(expand(entry.value, top), entry.key == "excludesfile" ? "excludes file" : "attributes file",
               "core." + std::string(entry.key == "excludesfile" ? "excludesFile" : "attributesFile") + " in " + where);
      }
    }
  }

  std::vector<Stamp> take_stamps() { return std::move(stamps_); }

 private:
  /// A path value from a config file: "~/" is the home directory, a relative one is taken from `base`.
  static fs::path expand(const std::string& value, const fs::path& base) {
    if (value == "~" || value.rfind("~/", 0) == 0) {
      const char* home = std::getenv("HOME");
      return fs::path(home != nullptr ? home : "/") / value.substr(value.size() > 1 ? 2 : 1);
    }
    fs::path path(value);
    return path.is_absolute() ? path : base / path;
  }

  /// Checks every symbolic link among the entries of `dir` (which must not itself be a link out of
  /// the roots), descending `depth` levels into subdirectories and into directories links lead to.
  void scan(const fs::path& dir, const std::string& what, int depth, const std::set<std::string>& skip = {}) {
    struct stat st {};
    if (::lstat(dir.c_str(), &st) != 0) {
      stamp(dir);  // missing: its creation is a change
      return;
    }
    fs::path real = dir;
    if (S_ISLNK(st.st_mode)) {
      stamp(dir);
      real = inside(dir, what, "the symbolic link '" + dir.string() + "'");
      if (::stat(real.c_str(), &st) != 0) return;
    }
    if (!S_ISDIR(st.st_mode)) {
      stamp(real);
      return;
    }
    if (!scanned_.insert({st.st_dev, st.st_ino}).second) return;
    stamp(real);
    DIR* handle = ::opendir(real.c_str());
    if (handle == nullptr) return;
    std::vector<std::pair<std::string, bool>> subdirectories;  // name, is a link
    try {
      while (dirent* entry = ::readdir(handle)) {
        std::string name = entry->d_name;
        if (name == "." || name == ".." || skip.count(name) != 0) continue;
        unsigned char type = entry->d_type;
        if (type == DT_UNKNOWN) {
          struct stat child {};
          if (::lstat((real / name).c_str(), &child) != 0) continue;
          type = S_ISLNK(child.st_mode) ? DT_LNK : S_ISDIR(child.st_mode) ? DT_DIR : DT_REG;
        }
        if (type == DT_LNK) {
          fs::path link = real / name;
          stamp(link);
          fs::path target = inside(link, entry_description(name, what), "the symbolic link '" + link.string() + "'");
          std::error_code ec;
          if (depth > 0 && fs::is_directory(target, ec)) subdirectories.emplace_back(name, true);
          if (!ec && fs::exists(target, ec) && !fs::is_directory(target, ec) && !fs::is_regular_file(target, ec))
            if (reads(name, what)) special(real / name, what);
        } else if (type == DT_DIR) {
          if (depth > 0) subdirectories.emplace_back(name, false);
        } else if (type != DT_REG && reads(name, what)) {
          special(real / name, what);
        }
      }
    } catch (...) {
      ::closedir(handle);
      throw;
    }
    ::closedir(handle);
    for (const auto& [name, link] : subdirectories) scan(real / name, what, depth - 1);
  }

  // Whether libgit2 reads the entry `name` of `what`: everything below refs/, objects/ and the
  // like, but at the top of a git directory only the files it knows (git's fsmonitor keeps a
  // socket there, for one).
  static bool reads(const std::string& name, const std::string& what) {
    if (what != "git directory" && what != "common directory") return true;
    return entry_description(name, what).rfind("entry '", 0) != 0;
  }

  // libgit2 would block opening a FIFO (or read a device) where it expects a ref, an object or a
  // config file, holding the call until its deadline.
  [[noreturn]] void special(const fs::path& path, const std::string& what) const {
    throw ToolError("repository '" + repo_path_ + "': '" + path.string() + "' in its " + what +
                    " is not a regular file or directory (a FIFO, socket or device)");
  }

  const std::vector<fs::path>& roots_;
  const std::string& repo_path_;
  std::vector<Stamp> stamps_;
  std::set<std::pair<dev_t, ino_t>> scanned_;
};

/// The common directory of `gitdir` (itself unless a `commondir` file names another), refused
/// when it leaves the roots.
fs::path common_directory(const Checker& checker, const fs::path& gitdir) {
  std::optional<std::string> link = read_regular(gitdir / "commondir");
  if (!link) return gitdir;
  std::string value = trim(*link);
  if (value.empty()) return gitdir;
  fs::path path(value);
  return checker.inside(path.is_absolute() ? path : gitdir / path, "common directory",
                        "'" + (gitdir / "commondir").string() + "'");
}

bool is_file(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool is_dir(const fs::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

/// libgit2's test for a git directory (HEAD, and objects/ and refs/ in the common directory),
/// refusing a common directory outside the roots before looking into it.
bool valid_git_dir(const Checker& checker, const fs::path& dir) {
  if (!is_dir(dir) || !is_file(dir / "HEAD")) return false;
  fs::path common = common_directory(checker, dir);
  return is_dir(common / "objects") && is_dir(common / "refs");
}

std::string remembered_key(const fs::path& gitdir, const std::vector<fs::path>& roots) {
  std::string key = gitdir.string();
  for (const auto& root : roots) key += '\0' + root.string();
  return key;
}

}  // namespace

LocatedRepository locate_repository(const fs::path& start, const std::vector<fs::path>& roots,
                                    const std::string& repo_path) {
  Checker checker(roots, repo_path);
  for (fs::path dir = start;; dir = dir.parent_path()) {
    if (!inside_roots(dir, roots)) break;
    fs::path dot_git = dir / ".git";
    struct stat st {};
    if (::lstat(dot_git.c_str(), &st) == 0) {
      if (S_ISLNK(st.st_mode)) {
        fs::path target = checker.inside(dot_git, "git directory", "the symbolic link '" + dot_git.string() + "'");
        if (valid_git_dir(checker, target)) return {dir, target, false};
      } else if (S_ISDIR(st.st_mode)) {
        if (valid_git_dir(checker, dot_git)) return {dir, resolved(dot_git), false};
      } else if (S_ISREG(st.st_mode)) {
        std::optional<std::string> text = read_regular(dot_git);
        constexpr std::string_view kPrefix = "gitdir:";
        std::string content = text ? trim(*text) : std::string();
        if (content.rfind(kPrefix, 0) != 0)
          throw ToolError("repository '" + repo_path + "': the file '" + dot_git.string() +
                          "' is not a valid .git file (it does not start with \"gitdir:\")");
        fs::path link(trim(std::string_view(content).substr(kPrefix.size())));
        fs::path target = checker.inside(link.is_absolute() ? link : dir / link, "git directory",
                                         "the .git file '" + dot_git.string() + "'");
        if (valid_git_dir(checker, target)) return {dir, target, false};
      }
    }
    if (valid_git_dir(checker, dir)) return {dir, dir, true};
    if (dir == dir.parent_path()) break;
  }
  throw ToolError("'" + repo_path +
                  "' is not in a git repository (searched it and its parent directories up to the allowed roots)");
}

void check_containment(const LocatedRepository& located, const std::vector<fs::path>& roots,
                       const std::string& repo_path) {
  std::string key = remembered_key(located.gitdir, roots);
  std::shared_ptr<const std::vector<Stamp>> previous;
  {
    std::lock_guard lock(remembered_mutex);
    auto it = remembered().find(key);
    if (it != remembered().end()) previous = it->second.stamps;
  }
  if (previous) {
    // Re-stat outside the lock: concurrent calls on other repositories need not wait for these.
    bool unchanged = true;
    for (const auto& stamp : *previous)
      if (!stamp.same(Stamp::of(stamp.path))) {
        unchanged = false;
        break;
      }
    if (unchanged) return;
    std::lock_guard lock(remembered_mutex);
    auto it = remembered().find(key);
    if (it != remembered().end() && it->second.stamps == previous) remembered().erase(it);
  }

  auto started = std::chrono::system_clock::now();
  Checker checker(roots, repo_path);
  if (!located.bare) checker.stamp(located.top / ".git");
  fs::path gitdir = checker.inside(located.gitdir, "git directory", "");
  checker.stamp(gitdir / "commondir");
  fs::path common = common_directory(checker, gitdir);
  checker.git_directory(gitdir, "git directory");
  if (common != gitdir) checker.git_directory(common, "common directory");
  checker.objects(common / "objects", 0, "");
  checker.config(common / "config", gitdir, located.top, 0, "");
  checker.config(gitdir / "config.worktree", gitdir, located.top, 0, "");

  std::vector<Stamp> stamps = checker.take_stamps();
  // A change within the file system's timestamp granularity of the walk could leave the same
  // ctime; such a check is not remembered, so the next call walks again.
  auto racy_after = started - kRacyWindow;
  for (const auto& stamp : stamps) {
    auto ctime = std::chrono::system_clock::time_point(std::chrono::duration_cast<std::chrono::system_clock::duration>(
        std::chrono::seconds(stamp.ctime.tv_sec) + std::chrono::nanoseconds(stamp.ctime.tv_nsec)));
    if (stamp.exists && ctime >= racy_after) return;
  }
  std::lock_guard lock(remembered_mutex);
  if (remembered().size() >= kMaxRemembered) remembered().clear();
  remembered()[key].stamps = std::make_shared<const std::vector<Stamp>>(std::move(stamps));
}

void forget_containment_checks() {
  std::lock_guard lock(remembered_mutex);
  remembered().clear();
}

std::size_t containment_checks_remembered() {
  std::lock_guard lock(remembered_mutex);
  return remembered().size();
}

}  // namespace mcpd::git
