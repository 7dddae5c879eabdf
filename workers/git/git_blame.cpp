// git_blame: for each line of a file as of a revision, the commit that last changed it.
#include <unordered_map>

#include "arguments.h"
#include "blame.h"
#include "output.h"
#include "repository.h"
#include "tool_definitions.h"

namespace mcpd::git {

namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto end = text.find('\n');
    if (end == std::string_view::npos) {
      lines.push_back(text);
      break;
    }
    lines.push_back(text.substr(0, end));
    text.remove_prefix(end + 1);
  }
  return lines;
}

ToolResult run(const json& arguments, ToolContext& context) {
  Repository repo = open_repository(arguments, context, "git_blame", false);
  std::string path = required_string(arguments, "path");
  std::string relative = repository_path(repo, path, "path");
  if (relative.empty()) throw ToolError("`path` must name a file, not the top of the repository");
  std::string revision = optional_string(arguments, "revision").value_or("HEAD");
  auto start_line = optional_integer(arguments, "start_line", 1, std::int64_t{1} << 40);
  auto end_line = optional_integer(arguments, "end_line", 1, std::int64_t{1} << 40);
  OutputBudget budget = output_budget(arguments, context);

  Commit commit = resolve_commit(repo, revision, "revision");
  git_tree* tree_raw = nullptr;
  check(git_commit_tree(&tree_raw, commit.get()), "cannot read the tree of '" + revision + "'");
  Tree tree(tree_raw);
  git_tree_entry* entry_raw = nullptr;
  if (git_tree_entry_bypath(&entry_raw, tree.get(), relative.c_str()) < 0)
    throw ToolError("path '" + relative + "' does not exist in '" + revision + "'");
  TreeEntry entry(entry_raw);
  if (git_tree_entry_type(entry.get()) != GIT_OBJECT_BLOB)
    throw ToolError("'" + relative + "' is a " +
                    (git_tree_entry_type(entry.get()) == GIT_OBJECT_TREE ? std::string("directory") : "submodule") +
                    " in '" + revision + "', not a file");
  git_odb* odb = nullptr;
  check(git_repository_odb(&odb, repo.get()), "cannot open the object database");
  std::size_t size = 0;
  git_object_t type{};
  int rc = git_odb_read_header(&size, &type, odb, git_tree_entry_id(entry.get()));
  git_odb_free(odb);
  check(rc, "cannot read '" + relative + "'");
  if (size > context.max_file_bytes)
    throw ToolError("'" + relative + "' is " + std::to_string(size) + " bytes, over the limit of " +
                    std::to_string(context.max_file_bytes) + " (max_file_bytes)");
  git_blob* blob_raw = nullptr;
  check(git_blob_lookup(&blob_raw, repo.get(), git_tree_entry_id(entry.get())), "cannot read '" + relative + "'");
  Blob blob(blob_raw);
  if (git_blob_is_binary(blob.get()) == 1) throw ToolError("'" + relative + "' is a binary file; blame needs text");
  std::string_view content(static_cast<const char*>(git_blob_rawcontent(blob.get())),
                           static_cast<std::size_t>(git_blob_rawsize(blob.get())));
  std::vector<std::string_view> lines = split_lines(content);
  auto count = static_cast<std::int64_t>(lines.size());

  std::int64_t first = start_line.value_or(1);
  std::int64_t last = end_line.value_or(count);
  if (start_line && *start_line > count)
    throw ToolError("start_line " + std::to_string(*start_line) + " is past the end of '" + relative + "' (" +
                    std::to_string(count) + " lines)");
  if (end_line && *end_line > count)
    throw ToolError("end_line " + std::to_string(*end_line) + " is past the end of '" + relative + "' (" +
                    std::to_string(count) + " lines)");
  if (first > last && count > 0)
    throw ToolError("start_line " + std::to_string(first) + " is after end_line " + std::to_string(last));

  json out = {{"path", valid_utf8(relative)},
              {"revision", revision},
              {"commit_id", oid_string(git_commit_id(commit.get()))},
              {"line_count", count}};
  json out_lines = json::array();
  json commits = json::array();
  if (count > 0) {
    std::vector<BlamedLine> blamed =
        blame_lines(repo.get(), commit.get(), relative, *git_tree_entry_id(entry.get()), static_cast<std::uint32_t>(first),
                    static_cast<std::uint32_t>(last), context);
    std::unordered_map<std::string, bool> listed;
    for (std::size_t i = 0; i < blamed.size(); ++i) {
      const BlamedLine& origin = blamed[i];
      std::string id = oid_string(&origin.commit);
      if (!listed.count(id)) {
        git_commit* c = nullptr;
        check(git_commit_lookup(&c, repo.get(), &origin.commit), "cannot read commit " + id);
        Commit owned(c);
        json summary = commit_summary(c);
        summary.erase("parents");
        if (!budget.take_element(summary)) break;
        commits.push_back(std::move(summary));
        listed[id] = true;
      }
      auto line = first + static_cast<std::int64_t>(i);
      json item = {{"line", line},
                   {"commit", id},
                   {"original_line", origin.line},
                   {"text", valid_utf8(lines[static_cast<std::size_t>(line - 1)])}};
      if (origin.path != relative) item["original_path"] = valid_utf8(origin.path);
      if (!budget.take_element(item)) break;
      out_lines.push_back(std::move(item));
    }
  }
  out["lines"] = std::move(out_lines);
  out["commits"] = std::move(commits);
  out["truncated"] = budget.truncated();
  ToolResult result;
  result.structured = std::move(out);
  return result;
}

}  // namespace

Tool blame_tool() {
  Tool tool = history_tool_base();
  tool.name = "git_blame";
  tool.title = "Show which commit last changed each line of a file";
  tool.description =
      "Like `git blame REV -- path` on the committed file: for each line (or the lines start_line..end_line) "
      "of `path` as of `revision` (default HEAD), the commit that last changed it and the line's number and path "
      "in that commit (renames are followed). Each commit's author, date and summary are listed once in "
      "`commits`. Uncommitted changes in the work tree are not blamed.";
  tool.input_schema = input_schema(
       {{"repo_path", repo_path_schema()},
        {"path", {{"type", "string"}, {"minLength", 1}, {"description", "The file to blame, relative to repo_path."}}},
        {"revision", revision_schema("Blame the file as of this commit. Default HEAD.")},
        {"start_line", {{"type", "integer"}, {"minimum", 1}, {"description", "First line to blame (1-based)."}}},
        {"end_line", {{"type", "integer"}, {"minimum", 1}, {"description", "Last line to blame (inclusive)."}}},
        {"max_bytes", max_bytes_schema()}},
       {"repo_path", "path"});
  json commit = commit_schema();
  commit["properties"].erase("parents");
  commit["required"] = {"id", "author", "author_email", "date", "summary"};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"path", {{"type", "string"}, {"description", "The file, relative to the top of the work tree."}}},
        {"revision", {{"type", "string"}}},
        {"commit_id", {{"type", "string"}, {"description", "The commit `revision` resolved to."}}},
        {"line_count", {{"type", "integer"}, {"description", "Lines in the file at that commit."}}},
        {"lines",
         {{"type", "array"},
          {"items",
           {{"type", "object"},
            {"properties",
             {{"line", {{"type", "integer"}, {"description", "1-based line number in the file at `revision`."}}},
              {"commit", {{"type", "string"}, {"description", "The commit that last changed the line."}}},
              {"original_line", {{"type", "integer"}, {"description", "The line's number in that commit."}}},
              {"original_path", {{"type", "string"}, {"description", "The file's path in that commit, when it differs."}}},
              {"text", {{"type", "string"}}}}},
            {"required", {"line", "commit", "original_line", "text"}}}}}},
        {"commits", {{"type", "array"}, {"items", commit}, {"description", "Each commit named in `lines`, once."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_bytes cut the lines."}}}}},
      {"required", {"path", "revision", "commit_id", "line_count", "lines", "commits", "truncated"}}};
  tool.handler = run;
  return tool;
}

}  // namespace mcpd::git
