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
#include "thread_errors.h"

namespace mcpd::search {

namespace {

bool exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

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

std::shared_ptr<const IgnoreNode> make_node(std::shared_ptr<const IgnoreNode> parent, const std::string& dir,
                                            const IgnoreLimits& limits, WalkCounters& counters) {
  auto node = std::make_shared<IgnoreNode>();
  std::string prefix = dir == "/" ? "/" : dir + "/";
  node->dir = dir;
  node->rgignore = IgnoreRules::from_file(prefix + ".rgignore", dir, limits);
  node->ignore = IgnoreRules::from_file(prefix + ".ignore", dir, limits);
  node->gitignore = IgnoreRules::from_file(prefix + ".gitignore", dir, limits);
  node->has_git = exists(prefix + ".git");
  struct stat st;
  if (node->has_git && ::stat((prefix + ".git").c_str(), &st) == 0 && S_ISDIR(st.st_mode))
    node->exclude = IgnoreRules::from_file(prefix + ".git/info/exclude", dir, limits);
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

struct DirTask {
  std::string path;      // absolute
  std::string relative;  // relative to the walk's start, "" for the start
  std::shared_ptr<const IgnoreNode> node;
};

/// The shared state of one walk: a stack of directories to read and the threads reading them.
class Walk {
 public:
  Walk(const std::string& dir, const WalkFilter& filter, WalkCounters& counters,
       const std::function<bool()>& cancelled)
      : filter_(filter), counters_(counters), cancelled_(cancelled) {
    for (const auto& g : filter.include) overrides_.add_rule(g, filter.limits.glob);
    for (const auto& g : filter.exclude) overrides_.add_rule("!" + g, filter.limits.glob);
    overrides_.compile();
    has_includes_ = !filter.include.empty();
    for (const auto& t : filter.types)
      for (const auto& g : type_globs(t)) type_globs_.emplace_back(g);
    std::shared_ptr<const IgnoreNode> node;
    if (!filter.no_ignore) {
      // The start directory's parents' ignore files apply too, as with rg.
      std::vector<std::string> chain;
      for (std::string d = dir; !d.empty();) {
        chain.push_back(d);
        if (d == "/") break;
        auto slash = d.rfind('/');
        d = slash == 0 ? "/" : d.substr(0, slash);
      }
      for (auto it = chain.rbegin(); it != chain.rend(); ++it) node = make_node(node, *it, filter.limits, counters);
      // Read at each walk (environment and file), as rg reads it at each run; matched relative to
      // the walk's start, as rg matches it relative to its working directory.
      std::string global = global_gitignore_path();
      if (!global.empty()) global_ = IgnoreRules::from_file(global, dir, filter.limits);
      counters.ignore_lines_skipped.fetch_add(global_.skipped(), std::memory_order_relaxed);
    }
    stack_.push_back(DirTask{dir, "", node});
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
    DIR* d = ::opendir(task.path.c_str());
    if (!d) return;
    counters_.directories.fetch_add(1, std::memory_order_relaxed);
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
        if (::lstat((prefix + std::string(name)).c_str(), &st) != 0) continue;
        type = S_ISDIR(st.st_mode) ? DT_DIR : S_ISREG(st.st_mode) ? DT_REG : DT_LNK;
      }
      if (type != DT_DIR && type != DT_REG) continue;  // symlinks are never followed
      bool is_dir = type == DT_DIR;
      std::string rel = rel_prefix + std::string(name);
      std::string abs = prefix + std::string(name);
      if (!keep(task, abs, rel, name, is_dir)) continue;
      if (is_dir) {
        subdirs.push_back(
            DirTask{abs, rel, filter_.no_ignore ? nullptr : make_node(task.node, abs, filter_.limits, counters_)});
      } else {
        counters_.files.fetch_add(1, std::memory_order_relaxed);
        out(std::move(rel));
      }
    }
    ::closedir(d);
  }

  // The order of ripgrep's decision: overrides (-g) first and final, then ignore files, then types,
  // then hidden (which a whitelisting ignore rule or type lifts).
  bool keep(const DirTask& task, const std::string& abs, const std::string& rel, std::string_view name, bool is_dir) {
    if (!overrides_.empty()) {
      Verdict v = overrides_.match(rel, is_dir);
      // -g GLOB is a whitelist: inverted gitignore semantics.
      if (v == Verdict::ignore) return true;
      if (v == Verdict::whitelist) return false;
      if (has_includes_ && !is_dir) return false;
    }
    bool whitelisted = false;
    if (task.node) {
      Verdict v = ignore_verdict(task.node.get(), abs, is_dir, &global_);
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
  WalkCounters& counters_;
  const std::function<bool()>& cancelled_;
  IgnoreRules overrides_;
  IgnoreRules global_;  // the user's global gitignore
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

std::vector<std::string> walk_files(const std::string& dir, const WalkFilter& filter, unsigned threads,
                                    WalkCounters& counters, const std::function<bool()>& cancelled,
                                    std::size_t limit, bool* overflow) {
  Walk walk(dir, filter, counters, cancelled);
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

void walk_each(const std::string& dir, const WalkFilter& filter, unsigned threads, WalkCounters& counters,
               const std::function<bool()>& cancelled,
               const std::function<void(unsigned worker, std::string&& rel)>& on_file) {
  Walk walk(dir, filter, counters, cancelled);
  threads = std::max(1u, threads);
  auto run = [&](unsigned i) { walk.run_worker([&, i](std::string&& rel) { on_file(i, std::move(rel)); }); };
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back(run, i);
  run(0);
  for (auto& t : pool) t.join();
  walk.rethrow();
}

bool list_directories(const std::string& dir, std::size_t limit, std::vector<std::string>& out) {
  std::vector<std::string> stack{dir};
  while (!stack.empty()) {
    std::string d = std::move(stack.back());
    stack.pop_back();
    if (out.size() >= limit) return false;
    out.push_back(d);
    DIR* h = ::opendir(d.c_str());
    if (!h) continue;
    while (dirent* e = ::readdir(h)) {
      std::string_view name = e->d_name;
      if (name == "." || name == ".." || name == ".git") continue;
      if (e->d_type != DT_DIR && e->d_type != DT_UNKNOWN) continue;
      std::string child = d == "/" ? std::string() : d;
      child.append("/").append(name);
      struct stat st;
      if (e->d_type == DT_UNKNOWN && (::lstat(child.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))) continue;
      stack.push_back(std::move(child));
    }
    ::closedir(h);
  }
  return true;
}

}  // namespace mcpd::search
