#include "git_tools.h"

#include "history_state.h"
#include "history_watch.h"
#include "tool_definitions.h"

namespace mcpd {

namespace git {

Tool read_tool_base() {
  Tool tool;
  tool.annotations = ToolAnnotations{.read_only = true, .destructive = false, .idempotent = true, .open_world = false};
  // Status and diff answer from the index and the working tree. A sound key would have to stat every
  // tracked file (as git's own index check does), which costs about as much as the answer itself,
  // so they are not cached.
  tool.cache = CachePolicy::never;
  tool.default_timeout = std::chrono::seconds(60);
  return tool;
}

Tool history_tool_base() {
  Tool tool = read_tool_base();
  tool.cache = CachePolicy::custom;
  tool.cache_key = history_cache_key;
  tool.cache_tag = [](const json& arguments, const std::vector<std::filesystem::path>& roots) {
    return history_watch()->tag(arguments, roots);
  };
  tool.cache_watch = history_watch();
  return tool;
}

Tool write_tool_base() {
  Tool tool;
  tool.annotations = ToolAnnotations{.read_only = false, .destructive = true, .idempotent = false, .open_world = false};
  tool.cache = CachePolicy::never;
  tool.default_timeout = std::chrono::seconds(60);
  return tool;
}

void require_writes(const ToolContext& context) {
  if (!context.allow_writes) throw ToolError("writes are disabled; start mcpd with --allow_writes true");
}

json commit_schema() {
  return {{"type", "object"},
          {"properties",
           {{"id", {{"type", "string"}, {"description", "Full commit id."}}},
            {"parents", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Parent commit ids."}}},
            {"author", {{"type", "string"}, {"description", "Author name."}}},
            {"author_email", {{"type", "string"}}},
            {"date", {{"type", "string"}, {"description", "Author date, ISO 8601 with the author's offset."}}},
            {"summary", {{"type", "string"}, {"description", "The first paragraph of the message, on one line."}}}}},
          {"required", {"id", "parents", "author", "author_email", "date", "summary"}}};
}

}  // namespace git

std::vector<Tool> git_tools() {
  using namespace git;
  return {status_tool(), log_tool(),    diff_tool(),   show_tool(),          blame_tool(),   branches_tool(),
          add_tool(),    reset_tool(),  commit_tool(), create_branch_tool(), checkout_tool()};
}

Family git_family() {
  Family family;
  family.kind = "git";
  family.instructions = "git tools (status, log, diff, show, blame, branches; writes only when enabled)";
  family.make = [](const json&) { return FamilyInstance{git_tools(), nullptr, nullptr}; };
  return family;
}

}  // namespace mcpd
