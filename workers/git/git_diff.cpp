// git_diff: the work tree against the index (as git diff), the index against HEAD (--cached), or any
// revision against the work tree, the index or another revision; per-file stats and unified text.
#include <algorithm>

#include "arguments.h"
#include "diff_render.h"
#include "history_state.h"
#include "history_watch.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"
#include "worktree.h"

namespace mcpd::git {

namespace {

Tree commit_tree(const Repository& repo, const std::string& spec, const char* argument) {
  Commit commit = resolve_commit(repo, spec, argument);
  git_tree* tree = nullptr;
  check(git_commit_tree(&tree, commit.get()), "cannot read the tree of '" + spec + "'");
  return Tree(tree);
}

// HEAD's tree, or none (an empty tree) before the first commit.
Tree head_tree(const Repository& repo) {
  if (head_unborn(repo)) return Tree();
  return commit_tree(repo, "HEAD", "HEAD");
}

std::string side_name(const git_tree* tree) {
  return tree != nullptr ? oid_string(git_tree_id(tree)) : std::string("empty tree");
}

ToolResult run(const json& arguments, ToolContext& context) {
  auto from = optional_string(arguments, "from");
  auto to = optional_string(arguments, "to");
  bool staged = boolean_argument(arguments, "staged", false);
  if (to && !from) throw ToolError("`to` needs `from`: give both to compare two revisions");
  if (to && staged) throw ToolError("`staged` compares with the index, so it cannot be combined with `to`");
  auto context_lines = static_cast<std::uint32_t>(integer_argument(arguments, "context_lines", 3, 0, 100000));

  Repository repo = open_repository(arguments, context, "git_diff", !(from && to));
  std::vector<std::string> pathspecs = repository_pathspecs(repo, strings_argument(arguments, "paths"));
  StringArray specs(pathspecs);
  git_diff_options options = diff_options(context_lines, specs);
  options.id_abbrev = abbrev_length(repo.get());
  OutputBudget budget = output_budget(arguments, context);

  git_diff* raw = nullptr;
  std::string from_name, to_name;
  Tree old_tree, new_tree;
  if (from && to) {
    old_tree = commit_tree(repo, *from, "from");
    new_tree = commit_tree(repo, *to, "to");
    raw = diff_trees(repo.get(), old_tree.get(), new_tree.get(), options).release();
    from_name = *from;
    to_name = *to;
  } else if (staged) {
    old_tree = from ? commit_tree(repo, *from, "from") : head_tree(repo);
    check(git_diff_tree_to_index(&raw, repo.get(), old_tree.get(), nullptr, &options), "cannot diff against the index");
    from_name = from.value_or("HEAD");
    to_name = "index";
  } else {
    // Against the work tree: only paths that differ between the old side and the index, or whose
    // file fails the stat check, can appear, so the diff is asked about those alone.
    WorkIndex work = work_index(repo);
    git_index* index = work.index.get();
    if (from) old_tree = commit_tree(repo, *from, "from");
    std::optional<std::vector<std::string>> only = worktree_candidates(repo, work, pathspecs);
    if (only && from) {
      git_diff* staged_raw = nullptr;
      check(git_diff_tree_to_index(&staged_raw, repo.get(), old_tree.get(), index, &options),
            "cannot diff against the index");
      Diff staged_diff(staged_raw);
      for (std::size_t i = 0; i < git_diff_num_deltas(staged_diff.get()); ++i) {
        const git_diff_delta* delta = git_diff_get_delta(staged_diff.get(), i);
        only->emplace_back(delta->old_file.path);
        only->emplace_back(delta->new_file.path);
      }
    }
    std::vector<std::string> only_list = only.value_or(std::vector<std::string>{});
    std::sort(only_list.begin(), only_list.end());
    only_list.erase(std::unique(only_list.begin(), only_list.end()), only_list.end());
    StringArray only_paths(only_list);  // points into only_list
    if (only) {
      options.pathspec = *only_paths.get();
      options.flags |= GIT_DIFF_DISABLE_PATHSPEC_MATCH;
    }
    if (!only || !only->empty()) {
      if (from)
        check(git_diff_tree_to_workdir_with_index(&raw, repo.get(), old_tree.get(), &options),
              "cannot diff against the work tree");
      else
        check(git_diff_index_to_workdir(&raw, repo.get(), index, &options), "cannot diff the work tree");
    }
    from_name = from.value_or("index");
    to_name = "worktree";
  }
  Diff diff(raw);
  RenderedDiff rendered;
  if (diff) {
    find_renames(diff.get());
    rendered = render_diff(diff.get(), budget, true, context);
  }

  json out = {{"from", from_name},
              {"to", to_name},
              {"files", std::move(rendered.files)},
              {"files_changed", rendered.files_changed},
              {"additions", rendered.additions},
              {"deletions", rendered.deletions},
              {"diff", std::move(rendered.text)},
              {"truncated", rendered.truncated}};
  if (old_tree) out["from_tree"] = side_name(old_tree.get());
  if (new_tree) out["to_tree"] = side_name(new_tree.get());
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

// Only a diff between two revisions depends on history alone; the others read the index and the
// work tree (see read_tool_base).
std::optional<std::string> diff_cache_key(const json& arguments, const std::vector<std::filesystem::path>& roots) {
  if (!arguments.is_object() || !arguments.contains("from") || !arguments.contains("to")) return std::nullopt;
  return history_cache_key(arguments, roots);
}

}  // namespace

Tool diff_tool() {
  Tool tool = read_tool_base();
  tool.cache = CachePolicy::custom;
  tool.cache_key = diff_cache_key;
  tool.cache_tag = [](const json& arguments, const std::vector<std::filesystem::path>& roots) {
    return history_watch()->tag(arguments, roots);
  };
  tool.cache_watch = history_watch();
  tool.name = "git_diff";
  tool.title = "Show changes in a git repository as a diff";
  tool.description =
      "Like `git diff`. With no `from`/`to`: unstaged changes (work tree against the index). With `staged`: "
      "staged changes (index against HEAD, or against `from`), as `git diff --cached`. With `from` only: the work "
      "tree against that revision. With `from` and `to`: between two revisions. Returns the unified diff text and "
      "per-file added/deleted line counts (as `git diff --numstat`; binary files have none) plus totals. Renames "
      "are detected. Untracked files are not included. The text is cut at a line boundary when it exceeds "
      "max_bytes (`truncated`); the counts always cover every file.";
  tool.input_schema = input_schema(
       {{"repo_path", repo_path_schema()},
        {"staged", {{"type", "boolean"}, {"default", false},
                    {"description", "Compare the index (staged changes) instead of the work tree."}}},
        {"from", revision_schema("The old side: a revision (branch, tag, commit id, HEAD~2, ...).")},
        {"to", revision_schema("The new side: a revision; needs `from`.")},
        {"paths", paths_schema("Only these paths (pathspecs relative to repo_path).")},
        {"context_lines", context_lines_schema()},
        {"max_bytes", max_bytes_schema()}},
       {"repo_path"});
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"from", {{"type", "string"}, {"description", "The old side: a revision as given, HEAD, or \"index\"."}}},
        {"to", {{"type", "string"}, {"description", "The new side: a revision as given, \"index\" or \"worktree\"."}}},
        {"from_tree", {{"type", "string"}, {"description", "Tree id of the old side, when it is a revision."}}},
        {"to_tree", {{"type", "string"}, {"description", "Tree id of the new side, when it is a revision."}}},
        {"files", {{"type", "array"}, {"items", file_stats_schema()}}},
        {"files_changed", {{"type", "integer"}}},
        {"additions", {{"type", "integer"}, {"description", "Lines added in all files."}}},
        {"deletions", {{"type", "integer"}, {"description", "Lines deleted in all files."}}},
        {"diff", {{"type", "string"}, {"description", "The unified diff, as git diff prints it."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_bytes cut the text or the file list."}}}}},
      {"required", {"from", "to", "files", "files_changed", "additions", "deletions", "diff", "truncated"}}};
  tool.handler = run;
  return tool;
}

}  // namespace mcpd::git
