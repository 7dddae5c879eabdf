// git_branches: local and remote-tracking branches, the current one, each branch's upstream and how
// far ahead/behind it is, optionally only the branches that contain a commit.
#include <algorithm>

#include "arguments.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"

namespace mcpd::git {

namespace {

constexpr std::size_t kCancelCheckEvery = 64;  // branches

std::string short_name(std::string refname) {
  for (std::string_view prefix : {"refs/heads/", "refs/remotes/"})
    if (refname.rfind(prefix, 0) == 0) return refname.substr(prefix.size());
  return refname;
}

ToolResult run(const json& arguments, ToolContext& context) {
  Repository repo = open_repository(arguments, context, "git_branches", false);
  OutputBudget budget = output_budget(arguments, context);
  std::optional<git_oid> contains;
  if (auto spec = optional_string(arguments, "contains"))
    contains = *git_commit_id(resolve_commit(repo, *spec, "contains").get());

  json out = {{"current", nullptr}, {"detached", git_repository_head_detached(repo.get()) == 1}, {"head", nullptr}};
  auto current = head_branch(repo);
  if (current) out["current"] = valid_utf8(*current);
  git_oid head_id{};
  if (git_reference_name_to_id(&head_id, repo.get(), "HEAD") == 0) out["head"] = oid_string(&head_id);

  git_branch_iterator* iterator_raw = nullptr;
  check(git_branch_iterator_new(&iterator_raw, repo.get(), GIT_BRANCH_ALL), "cannot list branches");
  BranchIterator iterator(iterator_raw);
  std::vector<json> local, remote;
  git_reference* raw = nullptr;
  git_branch_t type{};
  std::size_t seen = 0;
  while (git_branch_next(&raw, &type, iterator.get()) == 0) {
    Reference ref(raw);
    if (++seen % kCancelCheckEvery == 0) context.check_cancelled();
    const char* name = nullptr;
    if (git_branch_name(&name, ref.get()) < 0) continue;
    json entry = {{"name", valid_utf8(name)}};
    if (git_reference_type(ref.get()) == GIT_REFERENCE_SYMBOLIC)  // origin/HEAD -> origin/main
      entry["target"] = valid_utf8(short_name(git_reference_symbolic_target(ref.get())));
    git_reference* resolved_raw = nullptr;
    if (git_reference_resolve(&resolved_raw, ref.get()) < 0) continue;  // dangling symbolic ref
    Reference resolved(resolved_raw);
    const git_oid* tip = git_reference_target(resolved.get());
    if (tip == nullptr) continue;
    if (contains && !git_oid_equal(tip, &*contains) && git_graph_descendant_of(repo.get(), tip, &*contains) != 1)
      continue;
    entry["commit"] = oid_string(tip);
    git_commit* commit_raw = nullptr;
    if (git_commit_lookup(&commit_raw, repo.get(), tip) == 0) {
      Commit commit(commit_raw);
      json summary = commit_summary(commit.get());
      entry["summary"] = summary["summary"];
      entry["date"] = summary["date"];
    }
    if (type == GIT_BRANCH_LOCAL) {
      entry["current"] = git_branch_is_head(ref.get()) == 1;
      if (Reference upstream = upstream_of(repo.get(), ref.get())) {
        const char* upstream_name = nullptr;
        if (git_branch_name(&upstream_name, upstream.get()) == 0) entry["upstream"] = valid_utf8(upstream_name);
        const git_oid* upstream_tip = git_reference_target(upstream.get());
        std::size_t ahead = 0, behind = 0;
        if (upstream_tip != nullptr && git_graph_ahead_behind(&ahead, &behind, repo.get(), tip, upstream_tip) == 0) {
          entry["ahead"] = ahead;
          entry["behind"] = behind;
        }
      }
      local.push_back(std::move(entry));
    } else {
      remote.push_back(std::move(entry));
    }
  }
  auto by_name = [](const json& a, const json& b) { return a["name"] < b["name"]; };
  std::sort(local.begin(), local.end(), by_name);
  std::sort(remote.begin(), remote.end(), by_name);
  json local_list = json::array(), remote_list = json::array();
  auto keep = [&](std::vector<json>& from, json& into) {
    for (auto& entry : from) {
      if (!budget.take_element(entry)) break;
      into.push_back(std::move(entry));
    }
  };
  keep(local, local_list);
  keep(remote, remote_list);
  out["local"] = std::move(local_list);
  out["remote"] = std::move(remote_list);
  out["truncated"] = budget.truncated();
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

json branch_schema(bool local) {
  json properties = {
      {"name", {{"type", "string"}, {"description", local ? "Branch name." : "Remote-tracking branch, e.g. origin/main."}}},
      {"commit", {{"type", "string"}, {"description", "The commit the branch points at."}}},
      {"summary", {{"type", "string"}, {"description", "That commit's summary."}}},
      {"date", {{"type", "string"}, {"description", "That commit's author date (ISO 8601)."}}}};
  if (local) {
    properties["current"] = {{"type", "boolean"}, {"description", "True for the branch HEAD points at."}};
    properties["upstream"] = {{"type", "string"}, {"description", "The configured upstream, e.g. origin/main."}};
    properties["ahead"] = {{"type", "integer"}, {"description", "Commits on the branch that its upstream lacks."}};
    properties["behind"] = {{"type", "integer"}, {"description", "Commits on the upstream that the branch lacks."}};
  } else {
    properties["target"] = {{"type", "string"}, {"description", "For a symbolic ref such as origin/HEAD: the branch it names."}};
  }
  return {{"type", "object"}, {"properties", properties}, {"required", {"name", "commit"}}};
}

}  // namespace

Tool branches_tool() {
  Tool tool = history_tool_base();
  tool.name = "git_branches";
  tool.title = "List the branches of a git repository";
  tool.description =
      "Like `git branch -a -vv`: local branches (with the current one marked, each one's upstream and how far "
      "ahead/behind it is) and remote-tracking branches, each with its commit and that commit's summary and date, "
      "sorted by name. With `contains`, only branches whose history includes that commit (`git branch --contains`).";
  tool.input_schema = input_schema(
       {{"repo_path", repo_path_schema()},
        {"contains", revision_schema("Only branches that contain this commit (a revision).")},
        {"max_bytes", max_bytes_schema()}},
       {"repo_path"});
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"current", {{"type", {"string", "null"}}, {"description", "The branch HEAD points at (also before its first commit); null when detached."}}},
        {"detached", {{"type", "boolean"}}},
        {"head", {{"type", {"string", "null"}}, {"description", "The commit HEAD is at; null before the first commit."}}},
        {"local", {{"type", "array"}, {"items", branch_schema(true)}}},
        {"remote", {{"type", "array"}, {"items", branch_schema(false)}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_bytes cut the lists."}}}}},
      {"required", {"current", "detached", "head", "local", "remote", "truncated"}}};
  tool.handler = run;
  return tool;
}

}  // namespace mcpd::git
