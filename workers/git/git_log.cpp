// git_log: commits in git log's default order, filtered by paths, author and dates, optionally with
// the files each one changed.
#include <algorithm>
#include <cctype>
#include <cstring>
#include <queue>
#include <unordered_map>

#include "arguments.h"
#include "diff_render.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"

namespace mcpd::git {

namespace {

constexpr std::size_t kCancelCheckEvery = 128;     // commits
constexpr std::size_t kProgressEvery = 2000;       // commits
constexpr std::int64_t kDefaultMaxCount = 50;

struct OidHash {
  std::size_t operator()(const git_oid& oid) const {
    std::size_t h = 0;
    std::memcpy(&h, oid.id, sizeof h);
    return h;
  }
};
struct OidEqual {
  bool operator()(const git_oid& a, const git_oid& b) const { return git_oid_equal(&a, &b) != 0; }
};

/// A walk over history in git log's default order: a queue of commits, newest committer date first
/// (ties in the order they were queued), as git's revision walk keeps it. Commits reachable from an
/// excluded revision (A in A..B) are uninteresting and pass that on to their parents; the walk ends
/// when only uninteresting commits are queued. The caller decides which parents of each commit it
/// gets to follow (git's history simplification for a path filter prunes some).
class HistoryWalk {
 public:
  explicit HistoryWalk(git_repository* repo) : repo_(repo) {}
  HistoryWalk(const HistoryWalk&) = delete;
  HistoryWalk& operator=(const HistoryWalk&) = delete;
  ~HistoryWalk() {
    while (!queue_.empty()) {
      git_commit_free(queue_.top().commit);
      queue_.pop();
    }
  }

  void include(const git_oid& id) { push(id, false); }
  void exclude(const git_oid& id) { push(id, true); }

  /// The next interesting commit, or an empty handle at the end. Its parents are not queued until
  /// follow() is called for it.
  Commit next() {
    while (!queue_.empty() && interesting_queued_ > 0) {
      Commit commit(queue_.top().commit);
      queue_.pop();
      Node& node = nodes_[*git_commit_id(commit.get())];
      node.queued = false;
      node.popped = true;
      if (node.uninteresting) {
        for (unsigned i = 0; i < git_commit_parentcount(commit.get()); ++i)
          push(*git_commit_parent_id(commit.get(), i), true);
        continue;
      }
      --interesting_queued_;
      return commit;
    }
    return Commit();
  }

  /// Queues `commit`'s parents: all of them, or only parent `only` (a merge simplified away).
  void follow(const git_commit* commit, int only = -1) {
    for (unsigned i = 0; i < git_commit_parentcount(commit); ++i)
      if (only < 0 || static_cast<unsigned>(only) == i) push(*git_commit_parent_id(commit, i), false);
  }

  std::size_t seen() const { return nodes_.size(); }

 private:
  struct Node {
    bool uninteresting = false;
    bool queued = false;
    bool popped = false;
  };
  struct Queued {
    git_time_t time;
    std::uint64_t order;
    git_commit* commit;
  };
  struct Later {
    bool operator()(const Queued& a, const Queued& b) const {
      return a.time != b.time ? a.time < b.time : a.order > b.order;
    }
  };

  void push(const git_oid& id, bool uninteresting) {
    auto [it, inserted] = nodes_.try_emplace(id);
    if (!inserted) {
      if (uninteresting) mark_uninteresting(id);
      return;
    }
    git_commit* commit = nullptr;
    if (git_commit_lookup(&commit, repo_, &id) < 0) return;  // a missing parent (shallow clone): history ends
    it->second.uninteresting = uninteresting;
    it->second.queued = true;
    if (!uninteresting) ++interesting_queued_;
    queue_.push({git_commit_time(commit), order_++, commit});
  }

  // A commit met again from an excluded side: it and, if already shown past, its ancestors become
  // uninteresting (a clock skew can make the walk reach a commit before learning it is excluded).
  void mark_uninteresting(const git_oid& start) {
    std::vector<git_oid> pending{start};
    while (!pending.empty()) {
      git_oid id = pending.back();
      pending.pop_back();
      auto it = nodes_.find(id);
      if (it == nodes_.end() || it->second.uninteresting) continue;
      it->second.uninteresting = true;
      if (it->second.queued) {
        --interesting_queued_;
      } else if (it->second.popped) {
        git_commit* raw = nullptr;
        if (git_commit_lookup(&raw, repo_, &id) < 0) continue;
        Commit commit(raw);
        for (unsigned i = 0; i < git_commit_parentcount(raw); ++i) pending.push_back(*git_commit_parent_id(raw, i));
      }
    }
  }

  git_repository* repo_;
  std::priority_queue<Queued, std::vector<Queued>, Later> queue_;
  std::unordered_map<git_oid, Node, OidHash, OidEqual> nodes_;
  std::size_t interesting_queued_ = 0;
  std::uint64_t order_ = 0;
};

/// Whether two trees agree on the paths a pathspec selects (git's TREESAME). A null tree is empty.
class PathFilter {
 public:
  PathFilter(git_repository* repo, std::vector<std::string> pathspecs)
      : repo_(repo), specs_(std::move(pathspecs)), array_(specs_) {
    literal_ = std::none_of(specs_.begin(), specs_.end(), [](const std::string& s) { return has_wildcards(s); });
    if (!literal_) {
      git_pathspec* raw = nullptr;
      check(git_pathspec_new(&raw, array_.get()), "invalid paths");
      pathspec_.reset(raw);
    }
  }

  bool empty() const { return specs_.empty(); }
  const StringArray& specs() const { return array_; }

  bool same(git_tree* a, git_tree* b) const {
    if (a != nullptr && b != nullptr && git_oid_equal(git_tree_id(a), git_tree_id(b))) return true;
    if (literal_) {
      for (const auto& spec : specs_)
        if (!same_entry(a, b, spec)) return false;
      return true;
    }
    // changed_paths skips identical subtrees, so this reads only what differs.
    for (const auto& path : changed_paths(repo_, b, a))
      if (git_pathspec_matches_path(pathspec_.get(), 0, path.c_str()) == 1) return false;
    return true;
  }

 private:
  static bool same_entry(git_tree* a, git_tree* b, const std::string& path) {
    TreeEntry ea = lookup(a, path), eb = lookup(b, path);
    if (!ea || !eb) return !ea && !eb;
    return git_tree_entry_filemode(ea.get()) == git_tree_entry_filemode(eb.get()) &&
           git_oid_equal(git_tree_entry_id(ea.get()), git_tree_entry_id(eb.get()));
  }
  static TreeEntry lookup(git_tree* tree, const std::string& path) {
    git_tree_entry* entry = nullptr;
    if (tree == nullptr || git_tree_entry_bypath(&entry, tree, path.c_str()) < 0) return TreeEntry();
    return TreeEntry(entry);
  }

  git_repository* repo_;
  std::vector<std::string> specs_;
  StringArray array_;
  bool literal_ = true;
  Pathspec pathspec_;  // for wildcard specs
};

Tree tree_of(const git_commit* commit) {
  git_tree* tree = nullptr;
  check(git_commit_tree(&tree, commit), "cannot read the tree of commit " + oid_string(git_commit_id(commit)));
  return Tree(tree);
}

Tree parent_tree(const git_commit* commit, unsigned i) {
  git_commit* parent = nullptr;
  check(git_commit_parent(&parent, commit, i), "cannot read a parent of commit " + oid_string(git_commit_id(commit)));
  Commit owned(parent);
  return tree_of(owned.get());
}

struct Decision {
  bool shown = true;
  int follow = -1;  // -1: every parent
};

// git log's default history simplification for a path filter: a commit is shown when it changes the
// paths; a merge that agrees with one parent on them is not shown, and only that parent is followed.
Decision decide(const git_commit* commit, const PathFilter& filter) {
  if (filter.empty()) return {};
  Tree tree = tree_of(commit);
  unsigned parents = git_commit_parentcount(commit);
  if (parents == 0) return {!filter.same(tree.get(), nullptr), -1};
  for (unsigned i = 0; i < parents; ++i) {
    Tree parent = parent_tree(commit, i);
    if (filter.same(tree.get(), parent.get())) return {false, parents > 1 ? static_cast<int>(i) : -1};
  }
  return {true, -1};
}

std::string lowercase(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

bool author_matches(const git_commit* commit, const std::string& needle) {
  const git_signature* author = git_commit_author(commit);
  std::string who = lowercase(std::string(author->name) + " <" + author->email + ">");
  return who.find(needle) != std::string::npos;
}

json changed_files(const Repository& repo, const git_commit* commit, const PathFilter& filter, OutputBudget budget,
                   const ToolContext& context, bool* truncated) {
  if (git_commit_parentcount(commit) > 1) return json::array();  // as git log --numstat: merges list none
  Tree tree = tree_of(commit);
  Tree parent = git_commit_parentcount(commit) == 1 ? parent_tree(commit, 0) : Tree();
  git_diff_options options = diff_options(0, filter.specs());
  Diff diff = diff_trees(repo.get(), parent.get(), tree.get(), options);
  find_renames(diff.get());
  RenderedDiff rendered = render_diff(diff.get(), budget, false, context);
  if (rendered.truncated) *truncated = true;
  return std::move(rendered.files);
}

// Splits "A..B" into its sides ("" stands for HEAD); "A...B" is refused.
std::pair<std::string, std::string> split_range(const std::string& revision) {
  auto dots = revision.find("..");
  if (dots == std::string::npos) return {"", revision};
  if (revision.compare(dots, 3, "...") == 0)
    throw ToolError("`revision` '" + revision + "': symmetric ranges (A...B) are not supported; use A..B");
  std::string from = revision.substr(0, dots), to = revision.substr(dots + 2);
  return {from.empty() ? "HEAD" : from, to.empty() ? "HEAD" : to};
}

ToolResult run(const json& arguments, ToolContext& context) {
  Repository repo = open_repository(arguments, context, "git_log", false);
  auto revision = optional_string(arguments, "revision");
  std::int64_t max_count = integer_argument(arguments, "max_count", kDefaultMaxCount, 1, 1000000);
  bool include_files = boolean_argument(arguments, "include_files", false);
  auto author = optional_string(arguments, "author");
  std::optional<std::int64_t> since, until;
  if (auto s = optional_string(arguments, "since")) since = parse_iso_date(*s, "since", false);
  if (auto u = optional_string(arguments, "until")) until = parse_iso_date(*u, "until", true);
  std::string needle = author ? lowercase(*author) : "";
  PathFilter filter(repo.get(), repository_pathspecs(repo, strings_argument(arguments, "paths")));
  OutputBudget budget = output_budget(arguments, context);

  ToolResult result;
  json commits = json::array();
  HistoryWalk walk(repo.get());
  if (!revision && head_unborn(repo)) {
    result.structured = {{"commits", std::move(commits)}, {"truncated", false}};
    return result;  // no commits yet: an empty history, not an error
  }
  auto [from, to] = split_range(revision.value_or("HEAD"));
  walk.include(*git_commit_id(resolve_commit(repo, to, "revision").get()));
  if (!from.empty()) walk.exclude(*git_commit_id(resolve_commit(repo, from, "revision").get()));

  std::size_t walked = 0;
  bool files_truncated = false;
  while (Commit commit = walk.next()) {
    if (++walked % kCancelCheckEvery == 0) context.check_cancelled();
    if (walked % kProgressEvery == 0)
      context.report(static_cast<double>(walked), 0, "walked " + std::to_string(walked) + " commits");
    git_time_t time = git_commit_time(commit.get());
    // The queue is in date order, so every commit after this one is older too; git stops here as well.
    if (since && time < *since) break;
    Decision decision = decide(commit.get(), filter);
    walk.follow(commit.get(), decision.follow);
    if (!decision.shown || (until && time > *until)) continue;
    if (author && !author_matches(commit.get(), needle)) continue;

    json entry = commit_summary(commit.get());
    if (include_files) {
      // The list gets what the entry leaves of the budget ("files" and its brackets included), so
      // a commit that changed more files than fit is listed with part of them.
      entry["files"] = json::array();
      OutputBudget files_budget(budget.remaining().minus(json_cost(entry) + OutputCost{1, 2}));
      entry["files"] = changed_files(repo, commit.get(), filter, files_budget, context, &files_truncated);
    }
    if (!budget.take_element(entry)) break;
    commits.push_back(std::move(entry));
    if (static_cast<std::int64_t>(commits.size()) == max_count) break;
  }
  result.structured = {{"commits", std::move(commits)}, {"truncated", budget.truncated() || files_truncated}};
  return result;
}

}  // namespace

Tool log_tool() {
  Tool tool = history_tool_base();
  tool.name = "git_log";
  tool.title = "List commits of a git repository";
  tool.description =
      "Like `git log`: commits reachable from `revision` (default HEAD; `A..B` for those in B but not A), newest "
      "first by commit date, each with id, parents, author, author date and summary. Filters: `paths` (commits "
      "that changed them, with git's default history simplification), `author` (case-insensitive substring of "
      "'Name <email>'), `since`/`until` (ISO 8601, compared with the committer date as git does). With "
      "`include_files`, each commit lists the files it changed with added/deleted line counts, as "
      "`git log --numstat` (merges list none). A repository without commits has an empty history.";
  tool.input_schema = input_schema(
       {{"repo_path", repo_path_schema()},
        {"revision", revision_schema("Where to start: a branch, tag, commit id or expression (HEAD~3, v1.0^{}), or "
                                     "a range A..B. Default HEAD.")},
        {"max_count", {{"type", "integer"}, {"minimum", 1}, {"maximum", 1000000}, {"default", kDefaultMaxCount},
                       {"description", "Most commits to list."}}},
        {"paths", paths_schema("Only commits that changed these paths (pathspecs relative to repo_path).")},
        {"author", {{"type", "string"}, {"minLength", 1},
                    {"description", "Only commits whose author 'Name <email>' contains this, ignoring case."}}},
        {"since", {{"type", "string"}, {"description", "Only commits committed at or after this ISO 8601 date or "
                                                       "date-time (no zone: UTC), e.g. 2024-05-01."}}},
        {"until", {{"type", "string"}, {"description", "Only commits committed at or before this ISO 8601 date "
                                                       "(a date alone includes that whole day) or date-time."}}},
        {"include_files", {{"type", "boolean"}, {"default", false},
                           {"description", "List each commit's changed files with line counts."}}},
        {"max_bytes", max_bytes_schema()}},
       {"repo_path"});
  json commit = commit_schema();
  commit["properties"]["files"] = {{"type", "array"}, {"items", file_stats_schema()},
                                   {"description", "With include_files: the files the commit changed."}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"commits", {{"type", "array"}, {"items", commit}, {"description", "Newest first."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_bytes cut the list."}}}}},
      {"required", {"commits", "truncated"}}};
  tool.handler = run;
  return tool;
}

}  // namespace mcpd::git
