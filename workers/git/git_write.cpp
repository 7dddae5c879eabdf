// The tools that change a repository: git_add, git_reset (unstage), git_commit, git_create_branch
// and git_checkout. Each refuses unless writes are enabled, never runs twice for one call (not
// idempotent, so the pool does not retry it) and is never cached.
#include <sys/stat.h>

#include <algorithm>

#include "arguments.h"
#include "diff_render.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"

namespace mcpd::git {

namespace {

/// The repository's index, re-read from disk: a pooled repository may hold one that a failed call
/// changed in memory.
Index fresh_index(const Repository& repo) {
  git_index* raw = nullptr;
  check(git_repository_index(&raw, repo.get()), "cannot open the index");
  Index index(raw);
  check(git_index_read(index.get(), 1), "cannot read the index");
  return index;
}

/// Forgets in-memory index changes of a call that failed before writing them.
template <typename F>
auto with_index(git_index* index, F&& body) {
  try {
    return body();
  } catch (...) {
    git_index_read(index, 1);
    throw;
  }
}

Tree head_tree(const Repository& repo) {
  if (head_unborn(repo)) return Tree();
  Commit head = resolve_commit(repo, "HEAD", "HEAD");
  git_tree* tree = nullptr;
  check(git_commit_tree(&tree, head.get()), "cannot read HEAD's tree");
  return Tree(tree);
}

/// A change staged in the index against HEAD; paths as git stores them (bytes, maybe not UTF-8).
struct StagedChange {
  std::string path;
  std::string old_path;  // for a rename
  git_delta_t status;
};

std::vector<StagedChange> staged_changes(const Repository& repo, git_index* index,
                                         const std::vector<std::string>& pathspecs) {
  Tree tree = head_tree(repo);
  StringArray specs(pathspecs);
  git_diff_options options = diff_options(0, specs);
  git_diff* raw = nullptr;
  check(git_diff_tree_to_index(&raw, repo.get(), tree.get(), index, &options), "cannot compare the index with HEAD");
  Diff diff(raw);
  find_renames(diff.get());
  std::vector<StagedChange> out;
  for (std::size_t i = 0; i < git_diff_num_deltas(diff.get()); ++i) {
    const git_diff_delta* delta = git_diff_get_delta(diff.get(), i);
    out.push_back({delta->new_file.path, delta->status == GIT_DELTA_RENAMED ? delta->old_file.path : "", delta->status});
  }
  return out;
}

/// The changes as the answer lists them, as many as fit in the result (staging a whole large tree
/// lists more than a result may hold; the change itself is made either way).
json changes_json(const std::vector<StagedChange>& changes, OutputBudget& budget) {
  json out = json::array();
  for (const auto& change : changes) {
    json entry = {{"path", valid_utf8(change.path)}, {"status", delta_status(change.status)}};
    if (!change.old_path.empty()) entry["old_path"] = valid_utf8(change.old_path);
    if (!budget.take_element(entry)) break;
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<std::string> conflicted_paths(git_index* index) {
  std::vector<std::string> paths;
  git_index_conflict_iterator* raw = nullptr;
  if (git_index_conflict_iterator_new(&raw, index) < 0) return paths;
  const git_index_entry *ancestor = nullptr, *ours = nullptr, *theirs = nullptr;
  while (git_index_conflict_next(&ancestor, &ours, &theirs, raw) == 0) {
    const git_index_entry* any = ours != nullptr ? ours : theirs != nullptr ? theirs : ancestor;
    if (any != nullptr) paths.push_back(valid_utf8(any->path));
  }
  git_index_conflict_iterator_free(raw);
  return paths;
}

std::string joined(const std::vector<std::string>& items, std::size_t most = 20) {
  std::string out;
  for (std::size_t i = 0; i < items.size() && i < most; ++i) out += (i ? ", " : "") + items[i];
  if (items.size() > most) out += ", and " + std::to_string(items.size() - most) + " more";
  return out;
}

void refuse_conflicts(git_index* index, const std::string& action) {
  if (git_index_has_conflicts(index) != 1) return;
  throw ToolError("cannot " + action + ": unresolved conflicts in " + joined(conflicted_paths(index)) +
                  " (fix the files and git_add them first)");
}

json changes_schema(const char* description) {
  return {{"type", "array"},
          {"description", description},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"path", {{"type", "string"}}}, {"status", {{"type", "string"}}}, {"old_path", {{"type", "string"}}}}},
            {"required", {"path", "status"}}}}};
}

json count_schema() {
  return {{"type", "integer"}, {"description", "How many changes there are, including any left out of the list."}};
}

json truncated_schema() {
  return {{"type", "boolean"},
          {"description", "True when the list was cut to fit the server's max_result_bytes (the change was made in full)."}};
}

// ---------------------------------------------------------------------------------------------- add

// A pathspec must name something, as git add insists ("pathspec 'x' did not match any files"), and an
// ignored file is not added by naming it.
void check_add_pathspec(const Repository& repo, git_index* index, const std::string& spec) {
  if (has_wildcards(spec)) {
    std::vector<std::string> one{spec};
    StringArray array(one);
    git_pathspec* raw = nullptr;
    check(git_pathspec_new(&raw, array.get()), "invalid pathspec '" + spec + "'");
    Pathspec pathspec(raw);
    bool found = git_pathspec_match_index(nullptr, index, GIT_PATHSPEC_NO_MATCH_ERROR, pathspec.get()) == 0 ||
                 git_pathspec_match_workdir(nullptr, repo.get(), GIT_PATHSPEC_NO_MATCH_ERROR, pathspec.get()) == 0;
    git_error_clear();
    if (!found) throw ToolError("pathspec '" + spec + "' did not match any files");
    return;
  }
  struct stat st {};
  bool on_disk = ::lstat((repo.workdir() / spec).c_str(), &st) == 0;
  std::size_t position = 0;
  bool in_index = git_index_find(&position, index, spec.c_str()) == 0 ||
                  git_index_find_prefix(&position, index, (spec + "/").c_str()) == 0;
  if (!on_disk && !in_index) throw ToolError("pathspec '" + spec + "' did not match any files");
  int ignored = 0;
  if (on_disk && !in_index && !S_ISDIR(st.st_mode) &&
      git_ignore_path_is_ignored(&ignored, repo.get(), spec.c_str()) == 0 && ignored == 1)
    throw ToolError("'" + spec + "' is ignored by a .gitignore rule; it was not added");
}

ToolResult add(const json& arguments, ToolContext& context) {
  require_writes(context);
  Repository repo = open_repository(arguments, context, "git_add", true);
  std::vector<std::string> paths = strings_argument(arguments, "paths");
  if (paths.empty()) throw ToolError("`paths` must name at least one path (\".\" for everything under repo_path)");
  std::vector<std::string> pathspecs = repository_pathspecs(repo, paths);
  Index index = fresh_index(repo);
  return with_index(index.get(), [&] {
    for (const auto& spec : pathspecs) check_add_pathspec(repo, index.get(), spec);
    StringArray specs(pathspecs);
    // add_all adds new and modified files; update_all stages deletions of tracked ones, so together
    // they do what `git add <paths>` does.
    check(git_index_add_all(index.get(), specs.get(), GIT_INDEX_ADD_DEFAULT, nullptr, nullptr), "cannot add");
    check(git_index_update_all(index.get(), specs.get(), nullptr, nullptr), "cannot stage deletions");
    check(git_index_write(index.get()), "cannot write the index");
    ToolResult result;
    OutputBudget budget = output_budget(json::object(), context);
    std::vector<StagedChange> staged = staged_changes(repo, index.get(), pathspecs);
    result.structured = {{"staged", changes_json(staged, budget)}, {"count", staged.size()},
                         {"truncated", budget.truncated()}};
    return result;
  });
}

// -------------------------------------------------------------------------------------------- reset

ToolResult reset(const json& arguments, ToolContext& context) {
  require_writes(context);
  Repository repo = open_repository(arguments, context, "git_reset", true);
  std::vector<std::string> pathspecs = repository_pathspecs(repo, strings_argument(arguments, "paths"));
  Index index = fresh_index(repo);
  std::vector<StagedChange> unstaged = staged_changes(repo, index.get(), pathspecs);
  // libgit2 wants at least one pathspec; without paths, the staged paths themselves are the ones to reset.
  std::vector<std::string> targets = pathspecs;
  if (targets.empty()) {
    for (const auto& change : unstaged) {
      targets.push_back(change.path);
      if (!change.old_path.empty()) targets.push_back(change.old_path);
    }
  }
  if (!targets.empty()) {
    Object target;
    if (!head_unborn(repo)) target = resolve_object(repo, "HEAD", "HEAD");
    StringArray specs(targets);
    check(git_reset_default(repo.get(), target.get(), specs.get()), "cannot unstage");
  }
  ToolResult result;
  OutputBudget budget = output_budget(json::object(), context);
  result.structured = {{"unstaged", changes_json(unstaged, budget)}, {"count", unstaged.size()},
                       {"truncated", budget.truncated()}};
  return result;
}

// ------------------------------------------------------------------------------------------- commit

ToolResult commit(const json& arguments, ToolContext& context) {
  require_writes(context);
  Repository repo = open_repository(arguments, context, "git_commit", true);
  std::string message = required_string(arguments, "message");
  Buffer pretty;
  // As git commit -m: strip trailing spaces and blank lines at either end, end with a newline.
  check(git_message_prettify(&pretty.buf, message.c_str(), 0, '#'), "cannot format the message");
  if (pretty.view().empty()) throw ToolError("the commit message is empty");

  Index index = fresh_index(repo);
  refuse_conflicts(index.get(), "commit");
  git_signature* signature_raw = nullptr;
  if (git_signature_default(&signature_raw, repo.get()) < 0)
    throw ToolError("no author identity: set user.name and user.email in the repository's git config "
                    "(git config user.name \"Your Name\"; git config user.email you@example.com)");
  Signature signature(signature_raw);

  std::vector<Commit> parents;
  if (!head_unborn(repo)) parents.push_back(resolve_commit(repo, "HEAD", "HEAD"));
  bool merging = git_repository_state(repo.get()) == GIT_REPOSITORY_STATE_MERGE;
  if (merging) {
    struct Payload {
      const Repository* repo;
      std::vector<Commit>* parents;
    } payload{&repo, &parents};
    check(git_repository_mergehead_foreach(
              repo.get(),
              [](const git_oid* id, void* p) {
                auto* payload = static_cast<Payload*>(p);
                git_commit* c = nullptr;
                if (git_commit_lookup(&c, payload->repo->get(), id) < 0) return -1;
                payload->parents->emplace_back(c);
                return 0;
              },
              &payload),
          "cannot read MERGE_HEAD");
  }

  git_oid tree_id{};
  check(git_index_write_tree(&tree_id, index.get()), "cannot write the index as a tree");
  if (parents.empty() && git_index_entrycount(index.get()) == 0)
    throw ToolError("nothing to commit: the index is empty (stage files with git_add first)");
  if (parents.size() == 1 && git_oid_equal(&tree_id, git_commit_tree_id(parents[0].get())))
    throw ToolError("nothing to commit: the index matches HEAD (stage changes with git_add first)");

  git_tree* tree_raw = nullptr;
  check(git_tree_lookup(&tree_raw, repo.get(), &tree_id), "cannot read the new tree");
  Tree tree(tree_raw);
  std::vector<const git_commit*> parent_pointers;
  for (const auto& parent : parents) parent_pointers.push_back(parent.get());
  git_oid id{};
  check(git_commit_create(&id, repo.get(), "HEAD", signature.get(), signature.get(), nullptr,
                          std::string(pretty.view()).c_str(), tree.get(), parent_pointers.size(),
                          parent_pointers.data()),
        "cannot create the commit");
  if (merging) check(git_repository_state_cleanup(repo.get()), "cannot clear the merge state");

  git_commit* created_raw = nullptr;
  check(git_commit_lookup(&created_raw, repo.get(), &id), "cannot read the new commit");
  Commit created(created_raw);
  json out = commit_summary(created.get());
  out["branch"] = nullptr;
  if (auto branch = head_branch(repo)) out["branch"] = valid_utf8(*branch);
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

// ------------------------------------------------------------------------------------ create branch

ToolResult create_branch(const json& arguments, ToolContext& context) {
  require_writes(context);
  Repository repo = open_repository(arguments, context, "git_create_branch", false);
  std::string name = required_string(arguments, "name");
  std::string revision = optional_string(arguments, "revision").value_or("HEAD");
  int valid = 0;
  if (git_branch_name_is_valid(&valid, name.c_str()) < 0 || !valid)
    throw ToolError("'" + name + "' is not a valid branch name");
  git_reference* existing = nullptr;
  if (git_branch_lookup(&existing, repo.get(), name.c_str(), GIT_BRANCH_LOCAL) == 0) {
    Reference ref(existing);
    const git_oid* at = git_reference_target(ref.get());
    throw ToolError("branch '" + name + "' already exists" + (at ? " (at " + oid_string(at) + ")" : std::string()));
  }
  Commit commit = resolve_commit(repo, revision, "revision");
  git_reference* created = nullptr;
  check(git_branch_create(&created, repo.get(), name.c_str(), commit.get(), 0), "cannot create branch '" + name + "'");
  Reference ref(created);
  ToolResult result;
  result.structured = {{"name", valid_utf8(name)},
                       {"commit", oid_string(git_commit_id(commit.get()))},
                       {"summary", commit_summary(commit.get())["summary"]}};
  return result;
}

// ----------------------------------------------------------------------------------------- checkout

std::string remote_hint(const Repository& repo, const std::string& name) {
  git_branch_iterator* raw = nullptr;
  if (git_branch_iterator_new(&raw, repo.get(), GIT_BRANCH_REMOTE) < 0) return "";
  BranchIterator iterator(raw);
  git_reference* ref_raw = nullptr;
  git_branch_t type{};
  while (git_branch_next(&ref_raw, &type, iterator.get()) == 0) {
    Reference ref(ref_raw);
    const char* remote_name = nullptr;
    if (git_branch_name(&remote_name, ref.get()) < 0) continue;
    std::string candidate = remote_name;
    auto slash = candidate.find('/');
    if (slash != std::string::npos && candidate.substr(slash + 1) == name)
      return "; remote branch '" + candidate + "' exists: create a local branch from it with git_create_branch "
             "(name '" + name + "', revision '" + candidate + "'), then check that out";
  }
  return "";
}

ToolResult checkout(const json& arguments, ToolContext& context) {
  require_writes(context);
  auto name = optional_string(arguments, "name");
  auto revision = optional_string(arguments, "revision");
  if (name.has_value() == revision.has_value())
    throw ToolError("give either `name` (a local branch to switch to) or `revision` (a commit to detach HEAD at)");
  Repository repo = open_repository(arguments, context, "git_checkout", true);
  Index index = fresh_index(repo);
  refuse_conflicts(index.get(), "check out");

  json out = {{"previous_branch", nullptr}, {"previous_head", nullptr}};
  if (auto branch = head_branch(repo); branch && git_repository_head_detached(repo.get()) != 1)
    out["previous_branch"] = valid_utf8(*branch);
  git_oid previous{};
  if (git_reference_name_to_id(&previous, repo.get(), "HEAD") == 0) out["previous_head"] = oid_string(&previous);

  Commit target;
  std::string refname;
  if (name) {
    git_reference* raw = nullptr;
    if (git_branch_lookup(&raw, repo.get(), name->c_str(), GIT_BRANCH_LOCAL) < 0)
      throw ToolError("no local branch '" + *name + "'" + remote_hint(repo, *name));
    Reference branch(raw);
    refname = git_reference_name(branch.get());
    target = resolve_commit(repo, refname, "name");
  } else {
    target = resolve_commit(repo, *revision, "revision");
  }

  std::vector<std::string> blocked;
  git_checkout_options options = GIT_CHECKOUT_OPTIONS_INIT;
  options.checkout_strategy = GIT_CHECKOUT_SAFE;
  options.notify_flags = GIT_CHECKOUT_NOTIFY_CONFLICT;
  options.notify_cb = [](git_checkout_notify_t, const char* path, const git_diff_file*, const git_diff_file*,
                         const git_diff_file*, void* payload) {
    static_cast<std::vector<std::string>*>(payload)->push_back(valid_utf8(path));
    return 0;
  };
  options.notify_payload = &blocked;
  int rc = git_checkout_tree(repo.get(), reinterpret_cast<const git_object*>(target.get()), &options);
  std::string what = name ? "branch '" + *name + "'" : "'" + *revision + "'";
  if (rc == GIT_ECONFLICT || !blocked.empty())
    throw ToolError("checkout of " + what + " is blocked: it would overwrite local changes to " + joined(blocked) +
                    " (commit them, or discard them, first)");
  check(rc, "cannot check out " + what);
  if (name) {
    check(git_repository_set_head(repo.get(), refname.c_str()), "cannot point HEAD at " + what);
  } else {
    check(git_repository_set_head_detached(repo.get(), git_commit_id(target.get())), "cannot detach HEAD");
  }
  out["branch"] = name ? json(valid_utf8(*name)) : json(nullptr);
  out["head"] = oid_string(git_commit_id(target.get()));
  out["detached"] = !name.has_value();
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

}  // namespace

Tool add_tool() {
  Tool tool = write_tool_base();
  tool.name = "git_add";
  tool.title = "Stage files in a git repository";
  tool.description =
      "Like `git add <paths>`: stages new, modified and deleted files under the paths (a directory covers "
      "everything below it; \".\" is everything under repo_path), including marking conflicted files resolved. "
      "Ignored files are skipped, and naming one is an error, as is a path that matches nothing. Returns the "
      "staged changes under the paths. Needs writes enabled (--allow_writes true).";
  tool.input_schema = input_schema(
      {{"repo_path", repo_path_schema()},
       {"paths", {{"type", "array"}, {"minItems", 1}, {"items", {{"type", "string"}, {"minLength", 1}}},
                  {"description", "Paths or pathspecs to stage, relative to repo_path."}}}},
      {"repo_path", "paths"});
  tool.output_schema = {{"type", "object"},
                        {"properties", {{"staged", changes_schema("Staged changes (index against HEAD) under the paths.")},
                                        {"count", count_schema()},
                                        {"truncated", truncated_schema()}}},
                        {"required", {"staged", "count", "truncated"}}};
  tool.handler = add;
  return tool;
}

Tool reset_tool() {
  Tool tool = write_tool_base();
  tool.name = "git_reset";
  tool.title = "Unstage files in a git repository";
  tool.description =
      "Like `git reset -- <paths>` (or `git reset` without paths): makes the index match HEAD again for the "
      "paths, so their staged changes become unstaged. The work tree is never touched. Returns the changes "
      "that were unstaged. Needs writes enabled (--allow_writes true).";
  tool.input_schema = input_schema(
      {{"repo_path", repo_path_schema()},
       {"paths", paths_schema("Paths to unstage, relative to repo_path. Default: everything.")}},
      {"repo_path"});
  tool.output_schema = {{"type", "object"},
                        {"properties", {{"unstaged", changes_schema("The staged changes that were undone.")},
                                        {"count", count_schema()},
                                        {"truncated", truncated_schema()}}},
                        {"required", {"unstaged", "count", "truncated"}}};
  tool.handler = reset;
  return tool;
}

Tool commit_tool() {
  Tool tool = write_tool_base();
  tool.name = "git_commit";
  tool.title = "Commit the staged changes of a git repository";
  tool.description =
      "Like `git commit -m <message>`: records the index as a new commit on the current branch (or detached "
      "HEAD), with author and committer from the repository's git config (user.name, user.email). Concludes a "
      "merge in progress. Refuses when nothing is staged or conflicts are unresolved. Hooks are not run. Needs "
      "writes enabled (--allow_writes true).";
  tool.input_schema = input_schema(
      {{"repo_path", repo_path_schema()},
       {"message", {{"type", "string"}, {"minLength", 1}, {"description", "The commit message."}}}},
      {"repo_path", "message"});
  json output = commit_schema();
  output["properties"]["branch"] = {{"type", {"string", "null"}}, {"description", "The branch that moved; null when detached."}};
  output["required"].push_back("branch");
  tool.output_schema = output;
  tool.handler = commit;
  return tool;
}

Tool create_branch_tool() {
  Tool tool = write_tool_base();
  tool.name = "git_create_branch";
  tool.title = "Create a branch in a git repository";
  tool.description =
      "Like `git branch <name> [<revision>]`: creates a local branch at `revision` (default HEAD) without "
      "switching to it (use git_checkout). Refuses an existing or invalid name. Needs writes enabled "
      "(--allow_writes true).";
  tool.input_schema = input_schema(
      {{"repo_path", repo_path_schema()},
       {"name", {{"type", "string"}, {"minLength", 1}, {"description", "The new branch's name, e.g. feature/x."}}},
       {"revision", revision_schema("Where the branch starts. Default HEAD.")}},
      {"repo_path", "name"});
  tool.output_schema = {{"type", "object"},
                        {"properties",
                         {{"name", {{"type", "string"}}},
                          {"commit", {{"type", "string"}, {"description", "The commit the branch points at."}}},
                          {"summary", {{"type", "string"}}}}},
                        {"required", {"name", "commit", "summary"}}};
  tool.handler = create_branch;
  return tool;
}

Tool checkout_tool() {
  Tool tool = write_tool_base();
  tool.name = "git_checkout";
  tool.title = "Switch branches or detach HEAD in a git repository";
  tool.description =
      "Like `git checkout <branch>` (`name`) or `git checkout --detach <commit>` (`revision`): updates the index "
      "and work tree to the target and points HEAD at it. Safe: local changes that the switch would overwrite "
      "(and untracked files in the way) block it with an error naming the files; other local changes are kept. "
      "Needs writes enabled (--allow_writes true).";
  tool.input_schema = input_schema(
      {{"repo_path", repo_path_schema()},
       {"name", {{"type", "string"}, {"minLength", 1}, {"description", "A local branch to switch to."}}},
       {"revision", revision_schema("A commit to detach HEAD at (instead of `name`).")}},
      {"repo_path"});
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"branch", {{"type", {"string", "null"}}, {"description", "The branch now checked out; null when detached."}}},
        {"head", {{"type", "string"}, {"description", "The commit HEAD is now at."}}},
        {"detached", {{"type", "boolean"}}},
        {"previous_branch", {{"type", {"string", "null"}}}},
        {"previous_head", {{"type", {"string", "null"}}}}}},
      {"required", {"branch", "head", "detached", "previous_branch", "previous_head"}}};
  tool.handler = checkout;
  return tool;
}

}  // namespace mcpd::git
