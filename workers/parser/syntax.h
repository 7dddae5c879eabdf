// Owning wrappers for tree-sitter's C objects and the small conversions every parser tool needs:
// parsing with cancellation, node text, positions as JSON, and text made safe for JSON.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include <tree_sitter/api.h>

#include "languages.h"
#include "parser_settings.h"
#include "tool.h"

namespace mcpd {

struct TreeDeleter {
  void operator()(TSTree* tree) const { ts_tree_delete(tree); }
};
using Tree = std::unique_ptr<TSTree, TreeDeleter>;

/// A TSTreeCursor that frees itself.
class TreeCursor {
 public:
  explicit TreeCursor(TSNode node) : cursor_(ts_tree_cursor_new(node)) {}
  ~TreeCursor() { ts_tree_cursor_delete(&cursor_); }
  TreeCursor(const TreeCursor&) = delete;
  TreeCursor& operator=(const TreeCursor&) = delete;
  TSTreeCursor* get() { return &cursor_; }

 private:
  TSTreeCursor cursor_;
};

/// A TSQueryCursor that frees itself; one per query run, since a cursor holds the run's state.
class QueryCursor {
 public:
  QueryCursor() : cursor_(ts_query_cursor_new()) {}
  ~QueryCursor() { ts_query_cursor_delete(cursor_); }
  QueryCursor(const QueryCursor&) = delete;
  QueryCursor& operator=(const QueryCursor&) = delete;
  TSQueryCursor* get() const { return cursor_; }

 private:
  TSQueryCursor* cursor_;
};

/// Parses `text` with this thread's parser for `language`, after check_parse_bounds (a source that
/// could crash tree-sitter is refused with a ToolError). Parsing runs in short time slices so a
/// cancelled `context` stops a long parse (throws ToolCancelled) instead of running to the end.
Tree parse(const Language& language, std::string_view text, const ToolContext& context,
           const ParserSettings& settings);

/// The source bytes a node spans.
std::string_view node_text(TSNode node, std::string_view source);

/// {row, column, byte}: row and column 0-based, column in bytes, as tree-sitter counts them.
json position(TSPoint point, std::uint32_t byte);

/// The JSON Schema of a position, for output schemas.
json position_schema(const char* description);

/// What `value`, an element of a list, costs in a tool's result body: its JSON and comma in
/// structuredContent, and those again as a string in the text content, where each quote and
/// backslash is escaped once more.
std::size_t result_cost(const json& value);

/// At most `max_bytes` of `text`, cut on a character boundary, with invalid UTF-8 replaced by
/// U+FFFD so the result can go into JSON (source files need not be valid UTF-8). Sets `*cut` when
/// bytes were dropped.
std::string json_safe_prefix(std::string_view text, std::size_t max_bytes, bool* cut = nullptr);

}  // namespace mcpd
