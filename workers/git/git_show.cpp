// git_show: a commit with its message and diff, an annotated tag, or what a path holds at a revision
// (a file's content or a directory's entries).
#include "arguments.h"
#include "diff_render.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"

namespace mcpd::git {

namespace {

std::string mode_string(git_filemode_t mode) {
  char text[8];
  std::snprintf(text, sizeof text, "%06o", static_cast<unsigned>(mode));
  return text;
}

/// `text` as one string value of the answer, cut at a line break to what is left of `budget`.
std::string fitted_string(std::string text, OutputBudget& budget) {
  if (budget.take(string_cost(text))) return text;
  text.resize(fitting_prefix(text, budget.remaining().minus(string_cost(""))));
  budget.take_fitted(string_cost(text));
  return text;
}

/// Takes `detail` from `budget` with its `key` set to `text`, cut so that the whole fits.
void take_with_text(json& detail, const char* key, std::string text, OutputBudget& budget) {
  detail[key] = "";
  OutputCost fixed = json_cost(detail);
  if (!fixed.fits_in(budget.remaining()))
    throw ToolError("the object's header fields alone (names, emails) are larger than max_bytes or max_result_bytes allow");
  budget.take_fitted(fixed.minus(string_cost("")));
  detail[key] = fitted_string(std::move(text), budget);
}

void show_blob(const Repository& repo, const git_oid* id, const ToolContext& context, OutputBudget& budget,
               json& out) {
  out["type"] = "blob";
  out["id"] = oid_string(id);
  // The header says the size without inflating the blob: a huge one is described, not loaded.
  git_odb* odb = nullptr;
  check(git_repository_odb(&odb, repo.get()), "cannot open the object database");
  std::size_t header_size = 0;
  git_object_t type{};
  int rc = git_odb_read_header(&header_size, &type, odb, id);
  git_odb_free(odb);
  check(rc, "cannot read blob " + oid_string(id));
  out["size"] = header_size;
  if (header_size > context.max_file_bytes) {
    budget.mark_truncated();  // content over max_file_bytes is left out
    return;
  }
  git_blob* raw = nullptr;
  check(git_blob_lookup(&raw, repo.get(), id), "cannot read blob " + oid_string(id));
  Blob blob(raw);
  auto size = static_cast<std::size_t>(git_blob_rawsize(blob.get()));
  out["binary"] = git_blob_is_binary(blob.get()) == 1;
  if (git_blob_is_binary(blob.get()) == 1) return;  // no text to show; size and id say what it is
  std::string text = valid_utf8(std::string_view(static_cast<const char*>(git_blob_rawcontent(blob.get())), size));
  out["content"] = fitted_string(std::move(text), budget);
}

void show_tree(const git_tree* tree, OutputBudget& budget, json& out) {
  out["type"] = "tree";
  out["id"] = oid_string(git_tree_id(tree));
  json entries = json::array();
  for (std::size_t i = 0; i < git_tree_entrycount(tree); ++i) {
    const git_tree_entry* e = git_tree_entry_byindex(tree, i);
    json entry = {{"name", valid_utf8(git_tree_entry_name(e))},
                  {"type", git_object_type2string(git_tree_entry_type(e))},
                  {"mode", mode_string(git_tree_entry_filemode(e))},
                  {"id", oid_string(git_tree_entry_id(e))}};
    if (!budget.take_element(entry)) break;
    entries.push_back(std::move(entry));
  }
  out["entries"] = std::move(entries);
}

void show_commit(const Repository& repo, const git_commit* commit, const json& arguments, OutputBudget& budget,
                 const ToolContext& context, json& out) {
  json detail = commit_summary(commit);
  const git_signature* committer = git_commit_committer(commit);
  detail["committer"] = valid_utf8(committer->name);
  detail["committer_email"] = valid_utf8(committer->email);
  detail["committer_date"] = iso_time(committer->when.time, committer->when.offset);
  take_with_text(detail, "message", valid_utf8(git_commit_message(commit)), budget);
  out["type"] = "commit";
  out["commit"] = std::move(detail);

  git_tree* tree_raw = nullptr;
  check(git_commit_tree(&tree_raw, commit), "cannot read the commit's tree");
  Tree tree(tree_raw);
  Tree parent_tree;
  out["diff_base"] = nullptr;
  if (git_commit_parentcount(commit) > 0) {
    git_commit* parent = nullptr;
    check(git_commit_parent(&parent, commit, 0), "cannot read the commit's first parent");
    Commit owned(parent);
    git_tree* raw = nullptr;
    check(git_commit_tree(&raw, parent), "cannot read the parent's tree");
    parent_tree.reset(raw);
    out["diff_base"] = oid_string(git_commit_id(parent));
  }
  auto context_lines = static_cast<std::uint32_t>(integer_argument(arguments, "context_lines", 3, 0, 100000));
  std::vector<std::string> pathspecs = repository_pathspecs(repo, strings_argument(arguments, "paths"));
  StringArray specs(pathspecs);
  git_diff_options options = diff_options(context_lines, specs);
  options.id_abbrev = abbrev_length(repo.get());
  Diff diff = diff_trees(repo.get(), parent_tree.get(), tree.get(), options);
  find_renames(diff.get());
  RenderedDiff rendered = render_diff(diff.get(), budget, true, context);
  out["files"] = std::move(rendered.files);
  out["files_changed"] = rendered.files_changed;
  out["additions"] = rendered.additions;
  out["deletions"] = rendered.deletions;
  out["diff"] = std::move(rendered.text);
}

json tag_detail(const git_tag* tag, OutputBudget& budget) {
  json detail = {{"name", valid_utf8(git_tag_name(tag))},
                 {"id", oid_string(git_tag_id(tag))},
                 {"target", oid_string(git_tag_target_id(tag))}};
  if (const git_signature* tagger = git_tag_tagger(tag)) {
    detail["tagger"] = valid_utf8(tagger->name);
    detail["tagger_email"] = valid_utf8(tagger->email);
    detail["date"] = iso_time(tagger->when.time, tagger->when.offset);
  }
  take_with_text(detail, "message", valid_utf8(git_tag_message(tag) != nullptr ? git_tag_message(tag) : ""), budget);
  return detail;
}

void show_object(const Repository& repo, Object object, const json& arguments, OutputBudget& budget,
                 const ToolContext& context, json& out) {
  // An annotated tag (or a chain of them) first says what it is, then shows what it points at.
  while (git_object_type(object.get()) == GIT_OBJECT_TAG) {
    const auto* tag = reinterpret_cast<const git_tag*>(object.get());
    if (!out.contains("tag")) out["tag"] = tag_detail(tag, budget);
    git_object* target = nullptr;
    check(git_tag_target(&target, tag), "cannot read the tag's target");
    object.reset(target);
  }
  switch (git_object_type(object.get())) {
    case GIT_OBJECT_COMMIT:
      show_commit(repo, reinterpret_cast<const git_commit*>(object.get()), arguments, budget, context, out);
      break;
    case GIT_OBJECT_TREE:
      show_tree(reinterpret_cast<const git_tree*>(object.get()), budget, out);
      break;
    case GIT_OBJECT_BLOB:
      show_blob(repo, git_object_id(object.get()), context, budget, out);
      break;
    default:
      throw ToolError("cannot show an object of type " + std::string(git_object_type2string(git_object_type(object.get()))));
  }
}

ToolResult run(const json& arguments, ToolContext& context) {
  Repository repo = open_repository(arguments, context, "git_show", false);
  std::string revision = optional_string(arguments, "revision").value_or("HEAD");
  auto path = optional_string(arguments, "path");
  OutputBudget budget = output_budget(arguments, context);
  json out = {{"revision", revision}};

  if (path) {
    std::string relative = repository_path(repo, *path, "path");
    Commit commit = resolve_commit(repo, revision, "revision");
    out["commit_id"] = oid_string(git_commit_id(commit.get()));
    out["path"] = valid_utf8(relative);
    git_tree* tree_raw = nullptr;
    check(git_commit_tree(&tree_raw, commit.get()), "cannot read the tree of '" + revision + "'");
    Tree tree(tree_raw);
    if (relative.empty()) {
      show_tree(tree.get(), budget, out);
    } else {
      git_tree_entry* entry_raw = nullptr;
      if (git_tree_entry_bypath(&entry_raw, tree.get(), relative.c_str()) < 0)
        throw ToolError("path '" + relative + "' does not exist in '" + revision + "'");
      TreeEntry entry(entry_raw);
      if (git_tree_entry_type(entry.get()) == GIT_OBJECT_COMMIT) {
        out["type"] = "submodule";
        out["id"] = oid_string(git_tree_entry_id(entry.get()));
      } else if (git_tree_entry_type(entry.get()) == GIT_OBJECT_BLOB) {
        show_blob(repo, git_tree_entry_id(entry.get()), context, budget, out);
      } else {
        git_object* object = nullptr;
        check(git_tree_entry_to_object(&object, repo.get(), entry.get()), "cannot read '" + relative + "'");
        show_object(repo, Object(object), arguments, budget, context, out);
      }
    }
  } else {
    show_object(repo, resolve_object(repo, revision, "revision"), arguments, budget, context, out);
  }
  out["truncated"] = budget.truncated();
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

}  // namespace

Tool show_tool() {
  Tool tool = history_tool_base();
  tool.name = "git_show";
  tool.title = "Show a commit, tag or file of a git repository";
  tool.description =
      "Like `git show`. Without `path`: the object `revision` names (default HEAD): a commit with author, "
      "committer, full message, per-file line counts and the unified diff against its first parent (the root "
      "commit against an empty tree); an annotated tag's name, tagger and message, then what it points at; a "
      "directory's entries; or a file's content. With `path`: that file's content (or that directory's entries) "
      "as of `revision`, as `git show REV:path`. Binary files, and files over the server's max_file_bytes, report "
      "size and id only. Long text is cut at max_bytes (`truncated`).";
  tool.input_schema = input_schema(
       {{"repo_path", repo_path_schema()},
        {"revision", revision_schema("What to show: a commit, branch, tag or any revision expression. Default HEAD.")},
        {"path", {{"type", "string"},
                  {"minLength", 1},
                  {"description", "Show this file or directory (relative to repo_path) as of `revision`."}}},
        {"paths", paths_schema("For a commit: limit its diff to these paths (pathspecs relative to repo_path).")},
        {"context_lines", context_lines_schema()},
        {"max_bytes", max_bytes_schema()}},
       {"repo_path"});
  json commit = commit_schema();
  for (const char* key : {"committer", "committer_email", "committer_date", "message"})
    commit["properties"][key] = {{"type", "string"}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"revision", {{"type", "string"}, {"description", "The revision as given."}}},
        {"type", {{"type", "string"}, {"description", "commit, tree, blob or submodule."}}},
        {"tag", {{"type", "object"}, {"description", "The annotated tag the revision named: name, id, target, "
                                                     "tagger, tagger_email, date, message."}}},
        {"commit", commit},
        {"diff_base", {{"type", {"string", "null"}}, {"description", "The parent the diff is against (null for a root commit)."}}},
        {"files", {{"type", "array"}, {"items", file_stats_schema()}}},
        {"files_changed", {{"type", "integer"}}},
        {"additions", {{"type", "integer"}}},
        {"deletions", {{"type", "integer"}}},
        {"diff", {{"type", "string"}, {"description", "The commit's unified diff."}}},
        {"commit_id", {{"type", "string"}, {"description", "With `path`: the commit the path was read from."}}},
        {"path", {{"type", "string"}, {"description", "With `path`: the path relative to the top of the work tree."}}},
        {"id", {{"type", "string"}, {"description", "Blob, tree or submodule commit id."}}},
        {"size", {{"type", "integer"}, {"description", "A blob's size in bytes."}}},
        {"binary", {{"type", "boolean"}, {"description", "True for a binary blob (no content)."}}},
        {"content", {{"type", "string"}, {"description", "A text blob's content."}}},
        {"entries",
         {{"type", "array"},
          {"description", "A tree's entries."},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"name", {{"type", "string"}}},
              {"type", {{"type", "string"}, {"description", "blob, tree or commit (a submodule)."}}},
              {"mode", {{"type", "string"}, {"description", "Octal mode: 100644, 100755, 120000, 040000, 160000."}}},
              {"id", {{"type", "string"}}}}},
            {"required", {"name", "type", "mode", "id"}}}}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_bytes cut the content, diff or entries."}}}}},
      {"required", {"revision", "type", "truncated"}}};
  tool.handler = run;
  return tool;
}

}  // namespace mcpd::git
