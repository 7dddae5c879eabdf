#include "blame.h"

#include <algorithm>
#include <deque>
#include <queue>
#include <unordered_map>

#include "diff_render.h"
#include "repository.h"

namespace mcpd::git {

namespace {

constexpr std::size_t kCancelCheckEvery = 256;  // commits
constexpr std::size_t kProgressEvery = 5000;    // commits

/// A line still looking for its author: its final line number and its number in the suspect's version.
struct Suspect {
  std::uint32_t final_line;  // 0-based in the blamed file
  std::uint32_t line;        // 0-based in the origin's blob
};

/// A version of the file: a path in a commit, with the lines currently blamed on it.
struct Origin {
  git_oid commit{};
  git_time_t time = 0;
  std::string path;
  git_oid blob{};
  std::vector<Suspect> suspects;
};

struct Hunk {
  std::uint32_t new_begin;  // 0-based first line in the new version (for a deletion: the boundary)
  std::uint32_t new_lines;
  std::int64_t growth;      // new_lines - old_lines
};

class BlameWalk {
 public:
  BlameWalk(git_repository* repo, const ToolContext& context) : repo_(repo), context_(context) {}

  std::vector<BlamedLine> run(const git_commit* newest, const std::string& path, const git_oid& blob,
                              std::uint32_t first, std::uint32_t last) {
    std::vector<BlamedLine> result(last - first + 1);
    std::size_t start = origin(*git_commit_id(newest), git_commit_time(newest), path, blob);
    for (std::uint32_t line = first - 1; line < last; ++line) origins_[start].suspects.push_back({line, line});
    enqueue(start);
    std::size_t walked = 0;
    while (!queue_.empty()) {
      std::size_t index = queue_.top().index;
      queue_.pop();
      queued_[index] = false;
      if (++walked % kCancelCheckEvery == 0) context_.check_cancelled();
      if (walked % kProgressEvery == 0)
        context_.report(static_cast<double>(walked), 0, "blame walked " + std::to_string(walked) + " commits");
      std::vector<Suspect> suspects = std::move(origins_[index].suspects);
      origins_[index].suspects.clear();
      if (suspects.empty()) continue;
      std::sort(suspects.begin(), suspects.end(), [](const Suspect& a, const Suspect& b) { return a.line < b.line; });
      suspects = pass_blame(index, std::move(suspects));
      const Origin& guilty = origins_[index];
      for (const Suspect& s : suspects)
        result[s.final_line - (first - 1)] = {guilty.commit, guilty.path, s.line + 1};
    }
    return result;
  }

 private:
  struct Queued {
    git_time_t time;
    std::uint64_t order;
    std::size_t index;
    bool operator<(const Queued& other) const {  // newest first, then first queued
      return time != other.time ? time < other.time : order > other.order;
    }
  };

  std::size_t origin(const git_oid& commit, git_time_t time, const std::string& path, const git_oid& blob) {
    std::string key(reinterpret_cast<const char*>(commit.id), GIT_OID_RAWSZ);
    key += path;
    auto [it, inserted] = by_key_.try_emplace(key, origins_.size());
    if (inserted) {
      origins_.push_back({commit, time, path, blob, {}});
      queued_.push_back(false);
    }
    return it->second;
  }

  void enqueue(std::size_t index) {
    if (queued_[index]) return;
    queued_[index] = true;
    queue_.push({origins_[index].time, order_++, index});
  }

  Commit lookup(const git_oid& id) {
    git_commit* commit = nullptr;
    check(git_commit_lookup(&commit, repo_, &id), "cannot read commit " + oid_string(&id));
    return Commit(commit);
  }

  Tree tree_of(const git_commit* commit) {
    git_tree* tree = nullptr;
    check(git_commit_tree(&tree, commit), "cannot read the tree of commit " + oid_string(git_commit_id(commit)));
    return Tree(tree);
  }

  // The file's version in parent `i` of `commit`: the same path, or the path it was renamed from.
  std::optional<std::size_t> parent_origin(const git_commit* commit, unsigned i, const Origin& child) {
    git_commit* parent_raw = nullptr;
    if (git_commit_parent(&parent_raw, commit, i) < 0) return std::nullopt;  // missing (shallow)
    Commit parent(parent_raw);
    Tree parent_tree = tree_of(parent.get());
    git_tree_entry* entry_raw = nullptr;
    if (git_tree_entry_bypath(&entry_raw, parent_tree.get(), child.path.c_str()) == 0) {
      TreeEntry entry(entry_raw);
      if (git_tree_entry_type(entry.get()) == GIT_OBJECT_BLOB)
        return origin(*git_commit_id(parent.get()), git_commit_time(parent.get()), child.path,
                      *git_tree_entry_id(entry.get()));
    }
    Tree tree = tree_of(commit);
    std::vector<std::string> none;
    StringArray no_paths(none);
    git_diff_options options = diff_options(0, no_paths);
    Diff diff = diff_trees(repo_, parent_tree.get(), tree.get(), options);
    find_renames(diff.get());
    for (std::size_t d = 0; diff && d < git_diff_num_deltas(diff.get()); ++d) {
      const git_diff_delta* delta = git_diff_get_delta(diff.get(), d);
      if ((delta->status == GIT_DELTA_RENAMED || delta->status == GIT_DELTA_COPIED) &&
          child.path == delta->new_file.path)
        return origin(*git_commit_id(parent.get()), git_commit_time(parent.get()), delta->old_file.path,
                      delta->old_file.id);
    }
    return std::nullopt;  // the file was added here
  }

  std::vector<Hunk> diff_blobs(const git_oid& old_id, const git_oid& new_id) {
    git_blob *old_raw = nullptr, *new_raw = nullptr;
    check(git_blob_lookup(&old_raw, repo_, &old_id), "cannot read blob " + oid_string(&old_id));
    Blob old_blob(old_raw);
    check(git_blob_lookup(&new_raw, repo_, &new_id), "cannot read blob " + oid_string(&new_id));
    Blob new_blob(new_raw);
    git_diff_options options = GIT_DIFF_OPTIONS_INIT;
    options.context_lines = 0;
    options.interhunk_lines = 0;
    options.flags = GIT_DIFF_FORCE_TEXT | GIT_DIFF_INDENT_HEURISTIC;  // as git blame's xdiff call
    std::vector<Hunk> hunks;
    auto on_hunk = [](const git_diff_delta*, const git_diff_hunk* hunk, void* payload) {
      std::uint32_t begin = hunk->new_lines > 0 ? static_cast<std::uint32_t>(hunk->new_start - 1)
                                                : static_cast<std::uint32_t>(hunk->new_start);
      static_cast<std::vector<Hunk>*>(payload)->push_back(
          {begin, static_cast<std::uint32_t>(hunk->new_lines),
           static_cast<std::int64_t>(hunk->new_lines) - static_cast<std::int64_t>(hunk->old_lines)});
      return 0;
    };
    // No paths: attributes and diff drivers play no part, as in git blame.
    check(git_diff_blobs(old_blob.get(), nullptr, new_blob.get(), nullptr, &options, nullptr, nullptr, on_hunk,
                         nullptr, &hunks),
          "cannot diff two versions of the file");
    return hunks;
  }

  // Hands `parent` the suspects its version has unchanged; returns the rest.
  std::vector<Suspect> pass_to_parent(const Origin& child, std::vector<Suspect> suspects, std::size_t parent) {
    std::vector<Hunk> hunks = diff_blobs(origins_[parent].blob, child.blob);
    std::vector<Suspect> kept;
    std::size_t h = 0;
    std::int64_t shift = 0;
    bool passed = false;
    for (const Suspect& s : suspects) {
      while (h < hunks.size() && hunks[h].new_begin + hunks[h].new_lines <= s.line) shift += hunks[h++].growth;
      if (h < hunks.size() && hunks[h].new_lines > 0 && hunks[h].new_begin <= s.line) {
        kept.push_back(s);
      } else {
        origins_[parent].suspects.push_back({s.final_line, static_cast<std::uint32_t>(s.line - shift)});
        passed = true;
      }
    }
    if (passed) enqueue(parent);
    return kept;
  }

  std::vector<Suspect> pass_blame(std::size_t index, std::vector<Suspect> suspects) {
    Commit commit = lookup(origins_[index].commit);
    unsigned parents = git_commit_parentcount(commit.get());
    std::vector<std::optional<std::size_t>> scapegoats(parents);
    for (unsigned i = 0; i < parents; ++i) {
      std::optional<std::size_t> parent = parent_origin(commit.get(), i, origins_[index]);
      if (!parent) continue;
      if (git_oid_equal(&origins_[*parent].blob, &origins_[index].blob)) {  // unchanged: all of it passes
        auto& target = origins_[*parent].suspects;
        target.insert(target.end(), suspects.begin(), suspects.end());
        enqueue(*parent);
        return {};
      }
      bool same_as_earlier = false;
      for (unsigned j = 0; j < i; ++j)
        same_as_earlier = same_as_earlier ||
                          (scapegoats[j] && git_oid_equal(&origins_[*scapegoats[j]].blob, &origins_[*parent].blob));
      if (!same_as_earlier) scapegoats[i] = parent;
    }
    for (unsigned i = 0; i < parents && !suspects.empty(); ++i)
      if (scapegoats[i]) suspects = pass_to_parent(origins_[index], std::move(suspects), *scapegoats[i]);
    return suspects;
  }

  git_repository* repo_;
  const ToolContext& context_;
  std::deque<Origin> origins_;
  std::vector<bool> queued_;
  std::unordered_map<std::string, std::size_t> by_key_;
  std::priority_queue<Queued> queue_;
  std::uint64_t order_ = 0;
};

}  // namespace

std::vector<BlamedLine> blame_lines(git_repository* repo, const git_commit* newest, const std::string& path,
                                    const git_oid& blob, std::uint32_t first, std::uint32_t last,
                                    const ToolContext& context) {
  BlameWalk walk(repo, context);
  return walk.run(newest, path, blob, first, last);
}

}  // namespace mcpd::git
