// code_query: runs a tree-sitter query (S-expression patterns with captures and text predicates)
// over a source and returns the captured nodes with their text and ranges.
#include <string>

#include "code_tools.h"
#include "query.h"
#include "source.h"
#include "syntax.h"

namespace mcpd {

namespace {

constexpr std::uint64_t kCancelCheckEvery = 256;  // matches
constexpr std::size_t kEnvelopeBytes = 1024;

ToolResult run(const json& arguments, ToolContext& context, const ParserSettings& settings) {
  std::string query_source = string_argument(arguments, "query", "");
  if (query_source.empty())
    throw ToolError("`query` is required: a tree-sitter query such as (function_definition name: (identifier) @name)");
  check_query_limits(query_source, settings.query);
  std::int64_t max_captures = integer_argument(arguments, "max_captures", 1000, 1);
  std::size_t max_text_bytes = static_cast<std::size_t>(integer_argument(arguments, "max_text_bytes", 200, 0));
  Source source = load_source(arguments, context);
  // Compile before parsing, so a mistyped query fails fast even on a big file; first in a child,
  // where a query that crashes the library's compiler crashes nothing else.
  probe_query_compile(source.language->grammar(), query_source, settings.query);
  Query query(source.language->grammar(), query_source);
  Tree tree = parse(*source.language, source.text, context, settings);

  QueryCursor cursor;
  ts_query_cursor_exec(cursor.get(), query.get(), ts_tree_root_node(tree.get()));
  json captures = json::array();
  std::uint64_t match_count = 0;
  bool truncated = false;
  std::size_t budget = context.max_result_bytes > kEnvelopeBytes ? context.max_result_bytes - kEnvelopeBytes : 0;
  std::size_t used = 0;
  std::uint64_t seen = 0;
  TSQueryMatch match;
  while (!truncated && ts_query_cursor_next_match(cursor.get(), &match)) {
    if (++seen % kCancelCheckEvery == 0) context.check_cancelled();
    if (!query.accepts(match, source.text)) continue;
    std::uint64_t match_index = match_count++;
    for (std::uint16_t i = 0; i < match.capture_count; ++i) {
      if (captures.size() == static_cast<std::size_t>(max_captures)) truncated = true;
      TSNode node = match.captures[i].node;
      std::string_view name = query.capture_name(match.captures[i].index);
      std::string_view node_source = node_text(node, source.text);
      bool cut = false;
      json entry = {{"capture", name},
                    {"node_type", ts_node_type(node)},
                    {"text", json_safe_prefix(node_source, max_text_bytes, &cut)},
                    {"start", position(ts_node_start_point(node), ts_node_start_byte(node))},
                    {"end", position(ts_node_end_point(node), ts_node_end_byte(node))},
                    {"match", match_index},
                    {"pattern", match.pattern_index}};
      if (cut) entry["text_truncated"] = true;
      std::size_t size = result_cost(entry);
      truncated = truncated || used + size > budget;
      if (truncated) {
        if (i == 0) --match_count;  // none of this match's captures made it
        break;
      }
      used += size;
      captures.push_back(std::move(entry));
    }
  }

  ToolResult result;
  result.structured = {{"language", source.language->name},
                       {"match_count", match_count},
                       {"capture_count", captures.size()},
                       {"truncated", truncated},
                       {"captures", std::move(captures)}};
  if (!query.ignored_predicates().empty()) result.structured["ignored_predicates"] = query.ignored_predicates();
  return result;
}

}  // namespace

Tool code_query_tool(const ParserSettings& settings) {
  Tool tool = parser_tool_base();
  tool.name = "code_query";
  tool.title = "Run a tree-sitter query over source";
  tool.description =
      "Runs a tree-sitter query (S-expression patterns with @captures, e.g. "
      "(function_definition name: (identifier) @name)) over source code and returns every captured node "
      "with its capture name, node type, text and 0-based ranges. Predicates #eq?, #not-eq?, #match?, "
      "#not-match? (RE2 syntax), #any-of? and #not-any-of? are evaluated; directives such as #set! and "
      "#strip! are ignored. A malformed query is an error giving its line, column, offset and kind. "
      "Languages: " +
      supported_language_list() + ".";
  json properties = source_properties();
  properties["query"] = {{"type", "string"},
                         {"minLength", 1},
                         {"description", "The tree-sitter query, in the grammar's node and field names."}};
  properties["max_captures"] = {{"type", "integer"},
                                {"minimum", 1},
                                {"default", 1000},
                                {"description", "Most captures to return; `truncated` says when there were more."}};
  properties["max_text_bytes"] = {{"type", "integer"},
                                  {"minimum", 0},
                                  {"default", 200},
                                  {"description", "Most bytes of text per capture; longer text is cut and flagged text_truncated."}};
  tool.input_schema = {
      {"type", "object"}, {"properties", properties}, {"required", {"query"}}, {"additionalProperties", false}};

  json capture = {
      {"type", "object"},
      {"description", "One captured node."},
      {"properties",
       {{"capture", {{"type", "string"}, {"description", "Capture name, without the @."}}},
        {"node_type", {{"type", "string"}, {"description", "The node's type."}}},
        {"text", {{"type", "string"}, {"description", "The node's text, at most max_text_bytes."}}},
        {"text_truncated", {{"type", "boolean"}, {"description", "Present and true when `text` was cut."}}},
        {"start", position_schema("Start of the node.")},
        {"end", position_schema("End of the node.")},
        {"match", {{"type", "integer"}, {"description", "0-based index of the match the capture belongs to."}}},
        {"pattern", {{"type", "integer"}, {"description", "0-based index of the query pattern that matched."}}}}},
      {"required", {"capture", "node_type", "text", "start", "end", "match", "pattern"}}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"language", {{"type", "string"}, {"description", "Canonical language name."}}},
        {"match_count", {{"type", "integer"}, {"description", "Matches that passed their predicates (up to truncation)."}}},
        {"capture_count", {{"type", "integer"}, {"description", "Captures returned."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_captures or the result size limit cut the list."}}},
        {"captures", {{"type", "array"}, {"items", capture}, {"description", "Captures in match order."}}},
        {"ignored_predicates", {{"type", "array"}, {"items", {{"type", "string"}}}, {"description", "Predicates and directives present in the query but not evaluated."}}}}},
      {"required", {"language", "match_count", "capture_count", "truncated", "captures"}}};
  tool.handler = [settings](const json& arguments, ToolContext& context) { return run(arguments, context, settings); };
  return tool;
}

}  // namespace mcpd
