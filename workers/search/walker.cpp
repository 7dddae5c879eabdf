#include "walker.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "file_types.h"
#include "ignore.h"
#include "roots.h"
#include "thread_errors.h"

namespace mcpd::search {

namespace {

/// The ignore files of one directory, linked to its parent's: the chain ripgrep walks from the
/// deepest directory up when it decides about a path.
struct IgnoreNode {
  std::shared_ptr<const IgnoreNode> parent;
  std::string dir;  // absolute, no trailing '/' (except "/")
  bool has_git = false;
  bool any_git = false;  // this directory or one above it is a git repository's top
  IgnoreRules rgignore, ignore, gitignore, exclude;

  bool has_rules() const {
    return !rgignore.empty() || !ignore.empty() || !gitignore.empty() || !exclude.empty();
  }
};

/// Reads the ignore files of the directory open as `fd` (named `dir`), through that fd: a name is
/// never resolved from the top again, so a directory swapped for a symlink meanwhile cannot make
/// the walk read another tree's rules. Lines skipped under `limits` are added to `counters`.
std::shared_ptr<const IgnoreNode> make_node(std::shared_ptr<const IgnoreNode> parent, const std::string& dir, int fd,
                                            const IgnoreLimits& limits, WalkCounters& counters) {
  auto node = std::make_shared<IgnoreNode>();
  node->dir = dir;
  node->rgignore = IgnoreRules::from_file_at(fd, ".rgignore", dir, limits);
  node->ignore = IgnoreRules::from_file_at(fd, ".ignore", dir, limits);
  node->gitignore = IgnoreRules::from_file_at(fd, ".gitignore", dir, limits);
  struct stat st;
  node->has_git = ::fstatat(fd, ".git", &st, AT_SYMLINK_NOFOLLOW) == 0;
  if (node->has_git && S_ISDIR(st.st_mode))
    node->exclude = IgnoreRules::from_file_at(fd, ".git/info/exclude", dir, limits);
  std::size_t skipped =
      node->rgignore.skipped() + node->ignore.skipped() + node->gitignore.skipped() + node->exclude.skipped();
  if (skipped) counters.ignore_lines_skipped.fetch_add(skipped, std::memory_order_relaxed);
  node->any_git = node->has_git || (parent && parent->any_git);
  node->parent = std::move(parent);
  return node;
}

std::string_view relative_to(std::string_view path, const std::string& dir) {
  if (dir == "/") return path.substr(1);
  return path.size() > dir.size() ? path.substr(dir.size() + 1) : std::string_view();
}

// ripgrep's precedence: for each kind of ignore file the deepest match wins; then .rgignore over
// .ignore over .gitignore over .git/info/exclude. Git's files count only up to the repository's top.
// The user's global gitignore (core.excludesFile) comes last, inside a repository only.
Verdict ignore_verdict(const IgnoreNode* node, std::string_view path, bool is_dir, const IgnoreRules* global) {
  Verdict custom = Verdict::none, ignore = Verdict::none, gi = Verdict::none, gi_exclude = Verdict::none;
  bool any_git = node->any_git;
  bool saw_git = false;
  for (const IgnoreNode* n = node; n; n = n->parent.get()) {
    if (!n->has_rules()) {
      saw_git = saw_git || n->has_git;
      continue;
    }
    std::string_view rel = relative_to(path, n->dir);
    if (custom == Verdict::none) custom = n->rgignore.match(rel, is_dir);
    if (ignore == Verdict::none) ignore = n->ignore.match(rel, is_dir);
    if (any_git && !saw_git) {
      if (gi == Verdict::none) gi = n->gitignore.match(rel, is_dir);
      if (gi_exclude == Verdict::none) gi_exclude = n->exclude.match(rel, is_dir);
    }
    saw_git = saw_git || n->has_git;
  }
  Verdict gi_global = Verdict::none;
  if (any_git && global && !global->empty()) gi_global = global->match(relative_to(path, global->base()), is_dir);
  for (Verdict v : {custom, ignore, gi, gi_exclude, gi_global})
    if (v != Verdict::none) return v;
  return Verdict::none;
}

/// A directory to read: opened by its name relative to its parent's fd (O_NOFOLLOW), never by its
/// full path, so that a directory component swapped for a symlink cannot lead the walk elsewhere.
struct DirTask {
  std::shared_ptr<const Fd> parent;  // null for the start, which `fd` already holds
  std::shared_ptr<const Fd> fd;      // the start's
  std::string name;
  std::string path;      // absolute
  std::string relative;  // relative to the walk's start, "" for the start
  std::shared_ptr<const IgnoreNode> parent_node;
};

/// The shared state of one walk: a stack of directories to read and the threads reading them.
class Walk {
 public:
  Walk(int dir_fd, const std::string& dir, const WalkFilter& filter, WalkCounters& counters,
       const std::function<bool()>& cancelled)
      : filter_(filter), ignore_limits_(filter.limits), counters_(counters), cancelled_(cancelled) {
    // An ignore file is read up to the smaller of its own bound and search.max_file_bytes.
    ignore_limits_.max_file_bytes = std::min(filter.limits.max_file_bytes, filter.max_file_bytes);
    for (const auto& g : filter.include) overrides_.add_rule(g, filter.limits.glob);
    for (const auto& g : filter.exclude) overrides_.add_rule("!" + g, filter.limits.glob);
    overrides_.compile();
    has_includes_ = !filter.include.empty();
    for (const auto& t : filter.types)
      for (const auto& g : type_globs(t)) type_globs_.emplace_back(g);
    if (!filter.no_ignore) {
      // The start directory's parents' ignore files apply too, as with rg. Each parent is reached
      // by ".." from the start's fd, not by its name.
      std::vector<std::string> chain;
      for (std::string d = dir; !d.empty();) {
        chain.push_back(d);
        if (d == "/") break;
        auto slash = d.rfind('/');
        d = slash == 0 ? "/" : d.substr(0, slash);
      }
      std::vector<Fd> fds;
      fds.emplace_back(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
      while (fds.size() < chain.size() && fds.back())
        fds.emplace_back(openat_beneath(fds.back().get(), "..", O_PATH | O_DIRECTORY, 0));
      std::shared_ptr<const IgnoreNode> node;
      for (std::size_t i = chain.size(); i-- > 0;)
        if (i < fds.size() && fds[i]) node = make_node(node, chain[i], fds[i].get(), ignore_limits_, counters);
      start_node_ = std::move(node);
      // Read at each walk (environment and file), as rg reads it at each run; matched relative to
      // the walk's start, as rg matches it relative to its working directory.
      std::string global = global_gitignore_path(filter.max_file_bytes);
      if (!global.empty()) global_ = IgnoreRules::from_file_at(AT_FDCWD, global.c_str(), dir, ignore_limits_);
      counters.ignore_lines_skipped.fetch_add(global_.skipped(), std::memory_order_relaxed);
    }
    DirTask start;
    start.fd = std::make_shared<const Fd>(::fcntl(dir_fd, F_DUPFD_CLOEXEC, 0));
    start.path = dir;
    stack_.push_back(std::move(start));
    pending_ = 1;
  }

  using Sink = std::function<void(std::string&&)>;

  void stop() { stop_ = true; }
  /// Rethrows the first exception a worker's reading threw, once every worker has returned.
  void rethrow() const { errors_.rethrow(); }

  void run_worker(const Sink& out) {
    while (true) {
      DirTask task;
      {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return !stack_.empty() || pending_ == 0; });
        if (stack_.empty()) return;
        task = std::move(stack_.back());
        stack_.pop_back();
      }
      std::vector<DirTask> subdirs;
      // What a directory's reading throws (out of memory, a callback's error) ends the walk, not
      // the process, and the pending count below stays right so that the other threads finish.
      errors_.run([&] {
        if (!stop_.load(std::memory_order_relaxed) && cancelled_()) stop_ = true;
        if (!stop_.load(std::memory_order_relaxed)) read_directory(task, out, subdirs);
      });
      if (errors_.failed()) {
        stop_ = true;
        subdirs.clear();
      }
      std::lock_guard lock(mutex_);
      pending_ += subdirs.size();
      pending_ -= 1;
      for (auto& s : subdirs) stack_.push_back(std::move(s));
      if (pending_ == 0 || !subdirs.empty()) cv_.notify_all();
    }
  }

 private:
  void read_directory(const DirTask& task, const Sink& out, std::vector<DirTask>& subdirs) {
    // The start: a fresh open of "." of its fd, so that this walk reads from the first entry.
    int raw = task.parent ? ::openat(task.parent->get(), task.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                          : ::openat(task.fd->get(), ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (raw < 0) return;
    auto self = std::make_shared<const Fd>(raw);
    // readdir gets a duplicate; `self` stays open for the subdirectories' openat and fstatat.
    int listing = ::fcntl(raw, F_DUPFD_CLOEXEC, 0);
    DIR* d = listing < 0 ? nullptr : ::fdopendir(listing);
    if (!d) {
      if (listing >= 0) ::close(listing);
      return;
    }
    // Closed however the reading ends: an ignore file over its bounds and the sink both throw.
    std::unique_ptr<DIR, int (*)(DIR*)> closer(d, ::closedir);
    counters_.directories.fetch_add(1, std::memory_order_relaxed);
    const IgnoreNode* node = nullptr;
    std::shared_ptr<const IgnoreNode> own;
    if (!task.parent) {
      node = start_node_.get();
      own = start_node_;
    } else if (!filter_.no_ignore) {
      own = make_node(task.parent_node, task.path, raw, ignore_limits_, counters_);
      node = own.get();
    }
    std::string prefix = task.path == "/" ? "/" : task.path + "/";
    std::string rel_prefix = task.relative.empty() ? "" : task.relative + "/";
    std::size_t entries = 0;
    while (dirent* e = ::readdir(d)) {
      // A directory can hold millions of entries: poll the stop and the cancel within it too.
      if (++entries % 256 == 0 && (stop_.load(std::memory_order_relaxed) || cancelled_())) {
        stop_ = true;
        break;
      }
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name == ".git") continue;
      unsigned char type = e->d_type;
      if (type == DT_UNKNOWN) {
        struct stat st;
        if (::fstatat(raw, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : S_ISLNK(st.st_mode) ? DT_LNK : DT_FIFO;
      }
      // Symlinks are never followed; FIFOs, sockets and devices are never read (a FIFO's open
      // would block).
      if (type != DT_DIR && type != DT_REG) {
        if (type != DT_LNK) counters_.special.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      bool is_dir = type == DT_DIR;
      std::string rel = rel_prefix + std::string(name);
      std::string abs = prefix + std::string(name);
      if (!keep(node, abs, rel, name, is_dir)) continue;
      if (is_dir) {
        DirTask sub;
        sub.parent = self;
        sub.name = std::string(name);
        sub.path = std::move(abs);
        sub.relative = std::move(rel);
        sub.parent_node = own;
        subdirs.push_back(std::move(sub));
      } else {
        counters_.files.fetch_add(1, std::memory_order_relaxed);
        out(std::move(rel));
      }
    }
  }

  // The order of ripgrep's decision: overrides (-g) first and final, then ignore files, then types,
  // then hidden (which a whitelisting ignore rule or type lifts).
  bool keep(const IgnoreNode* node, const std::string& abs, const std::string& rel, std::string_view name, bool is_dir) {
    if (!overrides_.empty()) {
      Verdict v = overrides_.match(rel, is_dir);
      // -g GLOB is a whitelist: inverted gitignore semantics.
      if (v == Verdict::ignore) return true;
      if (v == Verdict::whitelist) return false;
      if (has_includes_ && !is_dir) return false;
    }
    bool whitelisted = false;
    if (node) {
      Verdict v = ignore_verdict(node, abs, is_dir, &global_);
      if (v == Verdict::ignore) return false;
      whitelisted = v == Verdict::whitelist;
    }
    if (!type_globs_.empty() && !is_dir) {
      bool any = false;
      for (const auto& g : type_globs_)
        if (g.matches(name)) {
          any = true;
          break;
        }
      if (!any) return false;
      whitelisted = true;
    }
    if (!whitelisted && !filter_.hidden && !name.empty() && name.front() == '.') return false;
    return true;
  }

  const WalkFilter& filter_;
  IgnoreLimits ignore_limits_;  // filter_.limits, bytes bounded by filter_.max_file_bytes too
  WalkCounters& counters_;
  const std::function<bool()>& cancelled_;
  IgnoreRules overrides_;
  IgnoreRules global_;  // the user's global gitignore
  std::shared_ptr<const IgnoreNode> start_node_;  // the start's rules, linked to its parents' 
  bool has_includes_ = false;
  std::vector<Glob> type_globs_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<DirTask> stack_;
  std::size_t pending_ = 0;
  std::atomic<bool> stop_{false};
  FirstError errors_;
};

}  // namespace

std::string WalkFilter::key() const {
  std::string k = std::string(hidden ? "h" : "-") + (no_ignore ? "n" : "-");
  for (const auto* list : {&include, &exclude, &types}) {
    k += '\x1f';
    for (const auto& s : *list) k += s + '\x1e';
  }
  return k;
}

std::vector<std::string> walk_files(int dir_fd, const std::string& dir, const WalkFilter& filter, unsigned threads,
                                    WalkCounters& counters, const std::function<bool()>& cancelled,
                                    std::size_t limit, bool* overflow) {
  Walk walk(dir_fd, dir, filter, counters, cancelled);
  threads = std::max(1u, threads);
  std::vector<std::vector<std::string>> outs(threads);
  std::atomic<std::size_t> found{0};
  std::atomic<bool> over{false};
  auto run = [&](unsigned i) {
    walk.run_worker([&, i](std::string&& rel) {
      if (over.load(std::memory_order_relaxed)) return;
      if (limit && found.fetch_add(1, std::memory_order_relaxed) >= limit) {
        over = true;
        walk.stop();
        return;
      }
      outs[i].push_back(std::move(rel));
    });
  };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(run, i);
  run(0);
  for (auto& t : pool) t.join();
  walk.rethrow();
  if (overflow) *overflow = over;
  if (over) return {};
  std::vector<std::string> files;
  std::size_t total = 0;
  for (auto& o : outs) total += o.size();
  files.reserve(total);
  for (auto& o : outs) std::move(o.begin(), o.end(), std::back_inserter(files));
  std::sort(files.begin(), files.end());
  return files;
}

void walk_each(int dir_fd, const std::string& dir, const WalkFilter& filter, unsigned threads,
               WalkCounters& counters, const std::function<bool()>& cancelled,
               const std::function<void(unsigned worker, std::string&& rel)>& on_file) {
  Walk walk(dir_fd, dir, filter, counters, cancelled);
  threads = std::max(1u, threads);
  auto run = [&](unsigned i) { walk.run_worker([&, i](std::string&& rel) { on_file(i, std::move(rel)); }); };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(run, i);
  run(0);
  for (auto& t : pool) t.join();
  walk.rethrow();
}

bool for_each_directory(int dir_fd, const std::string& dir, std::size_t limit,
                        const std::function<bool(int fd, const std::string& path)>& visit) {
  // Each directory is opened relative to its parent's fd (O_NOFOLLOW), never by its full path.
  struct Pending {
    std::shared_ptr<const Fd> parent;  // null for the start
    std::string name, path;
  };
  std::vector<Pending> stack{{nullptr, ".", dir}};
  std::size_t visited = 0;
  while (!stack.empty()) {
    Pending d = std::move(stack.back());
    stack.pop_back();
    if (visited >= limit) return false;
    int raw = ::openat(d.parent ? d.parent->get() : dir_fd, d.name.c_str(),
                       O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (raw < 0) continue;  // gone, or swapped for a symlink, meanwhile
    auto self = std::make_shared<const Fd>(raw);
    ++visited;
    if (!visit(raw, d.path)) return false;
    int listing = ::fcntl(raw, F_DUPFD_CLOEXEC, 0);
    DIR* h = listing < 0 ? nullptr : ::fdopendir(listing);
    if (!h) {
      if (listing >= 0) ::close(listing);
      continue;
    }
    std::unique_ptr<DIR, int (*)(DIR*)> closer(h, ::closedir);
    while (dirent* e = ::readdir(h)) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name == ".git") continue;
      if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
      struct stat st;
      if (e->d_type == DT_UNKNOWN && (::fstatat(raw, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode)))
        continue;
      std::string child = d.path == "/" ? std::string() : d.path;
      child.append("/").append(name);
      stack.push_back({self, std::string(name), std::move(child)});
    }
  }
  return true;
}

}  // namespace mcpd::search
