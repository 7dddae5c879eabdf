// git_status: what git status shows: the branch and its upstream, staged and unstaged changes,
// untracked and conflicted files.
#include "arguments.h"
#include "diff_render.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"
#include "worktree.h"

namespace mcpd::git {

namespace {

constexpr unsigned kStaged = GIT_STATUS_INDEX_NEW | GIT_STATUS_INDEX_MODIFIED | GIT_STATUS_INDEX_DELETED |
                             GIT_STATUS_INDEX_RENAMED | GIT_STATUS_INDEX_TYPECHANGE;
constexpr unsigned kUnstaged = GIT_STATUS_WT_MODIFIED | GIT_STATUS_WT_DELETED | GIT_STATUS_WT_TYPECHANGE |
                               GIT_STATUS_WT_RENAMED | GIT_STATUS_WT_UNREADABLE;

const char* state_name(int state) {
  switch (state) {
    case GIT_REPOSITORY_STATE_NONE: return "none";
    case GIT_REPOSITORY_STATE_MERGE: return "merge";
    case GIT_REPOSITORY_STATE_REVERT:
    case GIT_REPOSITORY_STATE_REVERT_SEQUENCE: return "revert";
    case GIT_REPOSITORY_STATE_CHERRYPICK:
    case GIT_REPOSITORY_STATE_CHERRYPICK_SEQUENCE: return "cherry-pick";
    case GIT_REPOSITORY_STATE_BISECT: return "bisect";
    case GIT_REPOSITORY_STATE_REBASE:
    case GIT_REPOSITORY_STATE_REBASE_INTERACTIVE:
    case GIT_REPOSITORY_STATE_REBASE_MERGE: return "rebase";
    case GIT_REPOSITORY_STATE_APPLY_MAILBOX:
    case GIT_REPOSITORY_STATE_APPLY_MAILBOX_OR_REBASE: return "am";
  }
  return "unknown";
}

// The porcelain code and git's wording for an unmerged path, from which sides of the conflict exist.
std::pair<const char*, const char*> conflict_kind(bool ancestor, bool ours, bool theirs) {
  if (ours && theirs) return ancestor ? std::pair{"UU", "both modified"} : std::pair{"AA", "both added"};
  if (ours) return ancestor ? std::pair{"UD", "deleted by them"} : std::pair{"AU", "added by us"};
  if (theirs) return ancestor ? std::pair{"DU", "deleted by us"} : std::pair{"UA", "added by them"};
  return {"DD", "both deleted"};
}

json conflict_entry(git_index* index, const std::string& path) {
  const git_index_entry *ancestor = nullptr, *ours = nullptr, *theirs = nullptr;
  git_index_conflict_get(&ancestor, &ours, &theirs, index, path.c_str());
  auto [code, kind] = conflict_kind(ancestor != nullptr, ours != nullptr, theirs != nullptr);
  return {{"path", valid_utf8(path)}, {"code", code}, {"kind", kind}};
}

std::string status_of(unsigned flags, bool staged) {
  if (staged) {
    if (flags & GIT_STATUS_INDEX_NEW) return "added";
    if (flags & GIT_STATUS_INDEX_DELETED) return "deleted";
    if (flags & GIT_STATUS_INDEX_RENAMED) return "renamed";
    if (flags & GIT_STATUS_INDEX_TYPECHANGE) return "typechange";
    return "modified";
  }
  if (flags & GIT_STATUS_WT_DELETED) return "deleted";
  if (flags & GIT_STATUS_WT_RENAMED) return "renamed";
  if (flags & GIT_STATUS_WT_TYPECHANGE) return "typechange";
  if (flags & GIT_STATUS_WT_UNREADABLE) return "unreadable";
  return "modified";
}

void add_branch_info(const Repository& repo, json& out) {
  out["branch"] = nullptr;
  out["head"] = nullptr;
  out["detached"] = git_repository_head_detached(repo.get()) == 1;
  out["unborn"] = head_unborn(repo);
  if (auto branch = head_branch(repo)) out["branch"] = valid_utf8(*branch);
  git_reference* raw = nullptr;
  if (git_repository_head(&raw, repo.get()) < 0) return;  // unborn: no commit, no upstream
  Reference head(raw);
  const git_oid* target = git_reference_target(head.get());
  if (target != nullptr) out["head"] = oid_string(target);
  if (!git_reference_is_branch(head.get()) || target == nullptr) return;
  Reference upstream = upstream_of(repo.get(), head.get());
  if (!upstream) return;  // none configured, or gone
  const char* name = nullptr;
  if (git_branch_name(&name, upstream.get()) == 0) out["upstream"] = valid_utf8(name);
  const git_oid* upstream_target = git_reference_target(upstream.get());
  std::size_t ahead = 0, behind = 0;
  if (upstream_target != nullptr &&
      git_graph_ahead_behind(&ahead, &behind, repo.get(), target, upstream_target) == 0) {
    out["ahead"] = ahead;
    out["behind"] = behind;
  }
}

/// The four lists of an answer, before the byte budget is applied.
struct StatusLists {
  std::vector<json> staged, unstaged, untracked, conflicted;
};

json change_entry(const git_diff_delta* delta) {
  json entry = {{"path", valid_utf8(delta->new_file.path)}, {"status", delta_status(delta->status)}};
  if (delta->status == GIT_DELTA_RENAMED) entry["old_path"] = valid_utf8(delta->old_file.path);
  return entry;
}

// Status computed as git computes it (worktree.h): HEAD against the index, the stat check for
// tracked files, readdir for untracked ones.
StatusLists status_lists(const Repository& repo, const ToolContext& context) {
  StatusLists lists;
  WorkIndex work = work_index(repo);
  git_index* index = work.index.get();

  Tree head;
  if (!head_unborn(repo)) {
    Commit commit = resolve_commit(repo, "HEAD", "HEAD");
    git_tree* tree = nullptr;
    check(git_commit_tree(&tree, commit.get()), "cannot read HEAD's tree");
    head.reset(tree);
  }
  std::vector<std::string> everything;
  StringArray no_paths(everything);
  git_diff_options options = diff_options(0, no_paths);
  git_diff* raw = nullptr;
  check(git_diff_tree_to_index(&raw, repo.get(), head.get(), index, &options), "cannot compare the index with HEAD");
  Diff staged(raw);
  find_renames(staged.get());  // git status pairs staged renames (status.renames)
  for (std::size_t i = 0; i < git_diff_num_deltas(staged.get()); ++i) {
    const git_diff_delta* delta = git_diff_get_delta(staged.get(), i);
    if (delta->status != GIT_DELTA_CONFLICTED) lists.staged.push_back(change_entry(delta));
  }

  git_index_conflict_iterator* conflicts_raw = nullptr;
  check(git_index_conflict_iterator_new(&conflicts_raw, index), "cannot read the index's conflicts");
  const git_index_entry *ancestor = nullptr, *ours = nullptr, *theirs = nullptr;
  while (git_index_conflict_next(&ancestor, &ours, &theirs, conflicts_raw) == 0) {
    const git_index_entry* any = ours != nullptr ? ours : theirs != nullptr ? theirs : ancestor;
    lists.conflicted.push_back(conflict_entry(index, any->path));
  }
  git_index_conflict_iterator_free(conflicts_raw);
  context.check_cancelled();

  std::optional<std::vector<std::string>> candidates = worktree_candidates(repo, work, everything);
  if (!candidates || !candidates->empty()) {
    std::vector<std::string> only = candidates.value_or(std::vector<std::string>{});
    StringArray only_paths(only);
    git_diff_options worktree_options = diff_options(0, only_paths);
    if (candidates) worktree_options.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
    check(git_diff_index_to_workdir(&raw, repo.get(), index, &worktree_options), "cannot compare the work tree");
    Diff unstaged(raw);
    for (std::size_t i = 0; i < git_diff_num_deltas(unstaged.get()); ++i) {
      const git_diff_delta* delta = git_diff_get_delta(unstaged.get(), i);
      if (delta->status != GIT_DELTA_CONFLICTED && delta->status != GIT_DELTA_UNTRACKED &&
          delta->status != GIT_DELTA_IGNORED)
        lists.unstaged.push_back(change_entry(delta));
    }
  }
  context.check_cancelled();

  for (auto& path : untracked_paths(repo, index, context)) lists.untracked.emplace_back(valid_utf8(path));
  return lists;
}

// Status limited to pathspecs, from libgit2's status list, which matches pathspecs against
// untracked directories as git does.
StatusLists status_lists(const Repository& repo, const std::vector<std::string>& pathspecs,
                         const ToolContext& context) {
  StatusLists lists;
  StringArray specs(pathspecs);
  git_status_options options = GIT_STATUS_OPTIONS_INIT;
  options.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
  options.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX |
                  GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
  options.pathspec = *specs.get();
  git_status_list* raw = nullptr;
  check(git_status_list_new(&raw, repo.get(), &options), "cannot compute the status");
  StatusList list(raw);
  context.check_cancelled();
  git_index* index_raw = nullptr;
  check(git_repository_index(&index_raw, repo.get()), "cannot read the index");
  Index index(index_raw);

  std::size_t n = git_status_list_entrycount(list.get());
  for (std::size_t i = 0; i < n; ++i) {
    const git_status_entry* e = git_status_byindex(list.get(), i);
    unsigned flags = e->status;
    if (flags & GIT_STATUS_CONFLICTED) {
      const git_diff_delta* delta = e->index_to_workdir != nullptr ? e->index_to_workdir : e->head_to_index;
      lists.conflicted.push_back(conflict_entry(index.get(), delta->old_file.path));
      continue;
    }
    if ((flags & kStaged) && e->head_to_index != nullptr) {
      json entry = {{"path", valid_utf8(e->head_to_index->new_file.path)}, {"status", status_of(flags, true)}};
      if (flags & GIT_STATUS_INDEX_RENAMED) entry["old_path"] = valid_utf8(e->head_to_index->old_file.path);
      lists.staged.push_back(std::move(entry));
    }
    if ((flags & kUnstaged) && e->index_to_workdir != nullptr)
      lists.unstaged.push_back(
          {{"path", valid_utf8(e->index_to_workdir->new_file.path)}, {"status", status_of(flags, false)}});
    if ((flags & GIT_STATUS_WT_NEW) && e->index_to_workdir != nullptr)
      lists.untracked.emplace_back(valid_utf8(e->index_to_workdir->new_file.path));
  }
  return lists;
}

ToolResult run(const json& arguments, ToolContext& context) {
  Repository repo = open_repository(arguments, context, "git_status", true);
  std::vector<std::string> pathspecs = repository_pathspecs(repo, strings_argument(arguments, "paths"));
  OutputBudget budget = output_budget(arguments, context);
  StatusLists lists = pathspecs.empty() ? status_lists(repo, context) : status_lists(repo, pathspecs, context);

  auto bounded = [&](std::vector<json>& entries) {
    json out = json::array();
    for (auto& entry : entries) {
      if (budget.truncated() || !budget.take_element(entry)) break;
      out.push_back(std::move(entry));
    }
    return out;
  };
  json out = json::object();
  add_branch_info(repo, out);
  out["state"] = state_name(git_repository_state(repo.get()));
  out["counts"] = {{"staged", lists.staged.size()},
                   {"unstaged", lists.unstaged.size()},
                   {"untracked", lists.untracked.size()},
                   {"conflicted", lists.conflicted.size()}};
  out["clean"] = lists.staged.empty() && lists.unstaged.empty() && lists.untracked.empty() && lists.conflicted.empty();
  out["conflicted"] = bounded(lists.conflicted);
  out["staged"] = bounded(lists.staged);
  out["unstaged"] = bounded(lists.unstaged);
  out["untracked"] = bounded(lists.untracked);
  out["truncated"] = budget.truncated();
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

json change_schema(const char* description) {
  return {{"type", "array"},
          {"description", description},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}, {"description", "Path relative to the top of the work tree."}}},
              {"status", {{"type", "string"}, {"description", "added, modified, deleted, renamed or typechange."}}},
              {"old_path", {{"type", "string"}, {"description", "The path before a rename."}}}}},
            {"required", {"path", "status"}}}}};
}

}  // namespace

Tool status_tool() {
  Tool tool = read_tool_base();
  tool.name = "git_status";
  tool.title = "Show the working tree status of a git repository";
  tool.description =
      "Like `git status`: the current branch (or detached HEAD), its upstream and how far ahead/behind it is, "
      "changes staged in the index, unstaged changes in the work tree, untracked files (an untracked directory "
      "is listed once, as `dir/`) and conflicted files with git's porcelain code (UU, AA, DU, ...). Paths are "
      "relative to the top of the work tree. Ignored files are not listed.";
  tool.input_schema = input_schema(
       {{"repo_path", repo_path_schema()},
        {"paths", paths_schema("Only report these paths (pathspecs, relative to repo_path; a directory covers "
                               "everything below it; * and ? are wildcards).")},
        {"max_bytes", max_bytes_schema()}},
       {"repo_path"});
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"branch", {{"type", {"string", "null"}}, {"description", "The branch HEAD points at; null when detached."}}},
        {"head", {{"type", {"string", "null"}}, {"description", "The commit HEAD is at; null before the first commit."}}},
        {"detached", {{"type", "boolean"}}},
        {"unborn", {{"type", "boolean"}, {"description", "True when the branch has no commits yet."}}},
        {"upstream", {{"type", "string"}, {"description", "The branch's upstream, e.g. origin/main, if configured."}}},
        {"ahead", {{"type", "integer"}, {"description", "Commits on the branch that its upstream lacks."}}},
        {"behind", {{"type", "integer"}, {"description", "Commits on the upstream that the branch lacks."}}},
        {"state", {{"type", "string"}, {"description", "An operation in progress: none, merge, rebase, cherry-pick, revert, bisect, am."}}},
        {"staged", change_schema("Changes in the index, relative to HEAD.")},
        {"unstaged", change_schema("Changes in the work tree, relative to the index.")},
        {"untracked", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Untracked paths; a directory ends with /."}}},
        {"conflicted",
         {{"type", "array"},
          {"description", "Unmerged paths."},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}}},
              {"code", {{"type", "string"}, {"description", "git status --porcelain code: UU, AA, DD, AU, UA, DU or UD."}}},
              {"kind", {{"type", "string"}, {"description", "git's wording: both modified, deleted by them, ..."}}}}},
            {"required", {"path", "code", "kind"}}}}}},
        {"counts",
         {{"type", "object"},
          {"description", "How many entries each list has, including any left out by truncation."},
          {"properties",
           {{"staged", {{"type", "integer"}}},
            {"unstaged", {{"type", "integer"}}},
            {"untracked", {{"type", "integer"}}},
            {"conflicted", {{"type", "integer"}}}}}}},
        {"clean", {{"type", "boolean"}, {"description", "True when nothing is staged, unstaged, untracked or conflicted."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_bytes cut the lists."}}}}},
      {"required", {"branch", "head", "detached", "unborn", "state", "staged", "unstaged", "untracked", "conflicted",
                    "counts", "clean", "truncated"}}};
  tool.handler = run;
  return tool;
}

}  // namespace mcpd::git
