// code_parse: the syntax tree of a source, as an S-expression or as JSON nodes, bounded in depth,
// node count and bytes, with the syntax errors (ERROR and MISSING nodes) listed apart.
#include <algorithm>
#include <cstring>
#include <optional>
#include <string>

#include "code_tools.h"
#include "source.h"
#include "syntax.h"

namespace mcpd {

namespace {

constexpr std::size_t kMaxErrors = 100;
constexpr std::size_t kMaxErrorTextBytes = 80;
constexpr std::uint64_t kCancelCheckEvery = 4096;  // nodes
constexpr std::size_t kEnvelopeBytes = 1024;       // the result's fields other than tree and errors

bool is_error_node(TSNode node) { return std::strcmp(ts_node_type(node), "ERROR") == 0; }

std::size_t digits(std::uint32_t n) { return std::to_string(n).size(); }

std::string quoted(std::string_view token) {
  std::string out = "\"";
  for (char c : token) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out + "\"";
}

struct ParseOptions {
  std::int64_t max_depth = 64;
  std::int64_t max_nodes = 20000;
  bool named_only = true;
  std::size_t max_tree_bytes = 0;
};

/// Writes the tree as tree-sitter prints it: (type field: (child) ...), with anonymous tokens
/// quoted when they are shown, "(MISSING x)" for a missing node, and "..." where a limit cut it.
class SexpWriter {
 public:
  void open(TSNode node, const char* field, bool children_cut) {
    if (depth_++ > 0) out_ += ' ';
    if (field != nullptr) out_.append(field).append(": ");
    bool named = ts_node_is_named(node);
    const char* type = ts_node_type(node);
    if (ts_node_is_missing(node)) {
      out_.append("(MISSING ").append(named ? std::string(type) : quoted(type));
      closers_.push_back(")");
    } else if (!named) {
      out_ += quoted(type);
      closers_.push_back("");
    } else {
      out_.append("(").append(type);
      if (children_cut) out_ += " ...";
      closers_.push_back(")");
    }
  }
  void close() {
    --depth_;
    out_ += closers_.back();
    closers_.pop_back();
  }
  void cut() { out_ += " ..."; }
  /// What the S-expression costs in the result: it is a JSON string in structuredContent, and that
  /// JSON is a string again in the text content, so a byte costs 2 and a quote or backslash (escaped
  /// once, then its escape escaped) 6. Trees of punctuation (named_only false) are mostly quotes.
  std::size_t bytes() {
    for (; scanned_ < out_.size(); ++scanned_)
      if (out_[scanned_] == '"' || out_[scanned_] == '\\') escaped_ += 4;
    return 2 * out_.size() + escaped_;
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
  std::size_t scanned_ = 0;  // out_ bytes counted into escaped_
  std::size_t escaped_ = 0;
  std::vector<std::string> closers_;
  int depth_ = 0;
};

/// Builds {type, named, field?, start, end, children} nodes.
class JsonWriter {
 public:
  void open(TSNode node, const char* field, bool children_cut) {
    json n = {{"type", ts_node_type(node)},
              {"named", ts_node_is_named(node)},
              {"start", position(ts_node_start_point(node), ts_node_start_byte(node))},
              {"end", position(ts_node_end_point(node), ts_node_end_byte(node))},
              {"children", json::array()}};
    if (field != nullptr) n["field"] = field;
    if (ts_node_is_missing(node)) n["missing"] = true;
    if (children_cut) n["truncated"] = true;
    bytes_ += estimate(node, field, children_cut);
    if (stack_.empty()) {
      root_ = std::move(n);
      stack_.push_back(&root_);
    } else {
      // The parent's children array grows only while this child is not on the stack, so the
      // pointers held by the stack stay valid.
      json& children = (*stack_.back())["children"];
      children.push_back(std::move(n));
      stack_.push_back(&children.back());
    }
  }
  void close() { stack_.pop_back(); }
  void cut() {
    if (!stack_.empty()) (*stack_.back())["truncated"] = true;
  }
  std::size_t bytes() { return bytes_; }
  json take() { return std::move(root_); }

 private:
  // What one node without its children costs in the result: its JSON (108 bytes and 24 quotes
  // besides its type and numbers, its comma included) in structuredContent, and that JSON again as
  // a string in the text content, where each quote is escaped.
  static std::size_t estimate(TSNode node, const char* field, bool children_cut) {
    TSPoint s = ts_node_start_point(node);
    TSPoint e = ts_node_end_point(node);
    std::size_t n = 108 + std::strlen(ts_node_type(node)) + digits(s.row) + digits(s.column) +
                    digits(ts_node_start_byte(node)) + digits(e.row) + digits(e.column) + digits(ts_node_end_byte(node));
    std::size_t quotes = 24;
    if (field != nullptr) {
      n += 11 + std::strlen(field);
      quotes += 4;
    }
    if (ts_node_is_missing(node)) n += 15, quotes += 2;  // ,"missing":true
    if (children_cut) n += 17, quotes += 2;              // ,"truncated":true
    return 2 * n + quotes;
  }

  json root_;
  std::vector<json*> stack_;
  std::size_t bytes_ = 0;
};

struct WalkCounts {
  std::uint64_t node_count = 0;   // nodes written
  std::uint64_t total_nodes = 0;  // nodes that would be written without limits
  bool truncated = false;
};

/// Visits every node once with a TSTreeCursor (no recursion, so a deeply nested file cannot
/// overflow the stack), writing those within the limits and counting all of them.
template <typename Writer>
WalkCounts walk(TSNode root, const ParseOptions& options, const ToolContext& context, Writer& writer) {
  WalkCounts counts;
  TreeCursor cursor(root);
  std::vector<bool> written;  // by cursor level: was that node written (and so must be closed)?
  std::int64_t depth = 0;     // written ancestors of the current node
  std::uint64_t visited = 0;
  bool stopped = false;  // the node or byte limit was reached: write nothing more

  auto visit = [&] {
    if (++visited % kCancelCheckEvery == 0) context.check_cancelled();
    TSNode node = ts_tree_cursor_current_node(cursor.get());
    bool visible = !options.named_only || ts_node_is_named(node) || ts_node_is_missing(node);
    bool write = false;
    if (visible) {
      ++counts.total_nodes;
      if (stopped || depth >= options.max_depth) {
        // Too deep: the parent was written with "..." already.
      } else if (counts.node_count >= static_cast<std::uint64_t>(options.max_nodes) ||
                 writer.bytes() > options.max_tree_bytes) {
        stopped = true;
        counts.truncated = true;
        writer.cut();
      } else {
        std::uint32_t children = options.named_only ? ts_node_named_child_count(node) : ts_node_child_count(node);
        bool children_cut = depth + 1 >= options.max_depth && children > 0;
        counts.truncated = counts.truncated || children_cut;
        writer.open(node, ts_tree_cursor_current_field_name(cursor.get()), children_cut);
        ++counts.node_count;
        ++depth;
        write = true;
      }
    }
    written.push_back(write);
  };
  auto leave = [&] {
    if (written.back()) {
      writer.close();
      --depth;
    }
    written.pop_back();
  };

  visit();
  for (;;) {
    if (ts_tree_cursor_goto_first_child(cursor.get())) {
      visit();
      continue;
    }
    for (;;) {
      leave();
      if (ts_tree_cursor_goto_next_sibling(cursor.get())) {
        visit();
        break;
      }
      if (!ts_tree_cursor_goto_parent(cursor.get())) return counts;
    }
  }
}

/// The ERROR and MISSING nodes, in document order, descending only into subtrees that have one.
json syntax_errors(TSNode root, std::string_view text, bool& capped) {
  json errors = json::array();
  capped = false;
  if (!ts_node_has_error(root)) return errors;
  TreeCursor cursor(root);
  for (;;) {
    TSNode node = ts_tree_cursor_current_node(cursor.get());
    bool descend = false;
    if (ts_node_has_error(node)) {
      bool error = is_error_node(node);
      if (error || ts_node_is_missing(node)) {
        if (errors.size() == kMaxErrors) {
          capped = true;
          return errors;
        }
        errors.push_back({{"type", error ? "ERROR" : "MISSING"},
                          {"node_type", ts_node_type(node)},
                          {"start", position(ts_node_start_point(node), ts_node_start_byte(node))},
                          {"end", position(ts_node_end_point(node), ts_node_end_byte(node))},
                          {"text", json_safe_prefix(node_text(node, text), kMaxErrorTextBytes)}});
      } else {
        descend = true;  // an ancestor of an error: the error itself is further down
      }
    }
    if (descend && ts_tree_cursor_goto_first_child(cursor.get())) continue;
    while (!ts_tree_cursor_goto_next_sibling(cursor.get()))
      if (!ts_tree_cursor_goto_parent(cursor.get())) return errors;
  }
}

ToolResult run(const json& arguments, ToolContext& context, const ParserSettings& settings) {
  std::string format = string_argument(arguments, "format", "sexp");
  if (format != "sexp" && format != "json") throw ToolError("`format` must be \"sexp\" or \"json\", not '" + format + "'");
  ParseOptions options;
  options.max_depth = integer_argument(arguments, "max_depth", 64, 1);
  options.max_nodes = integer_argument(arguments, "max_nodes", 20000, 1);
  options.named_only = boolean_argument(arguments, "named_only", true);
  Source source = load_source(arguments, context);

  Tree tree = parse(*source.language, source.text, context, settings);
  TSNode root = ts_tree_root_node(tree.get());
  bool errors_truncated = false;
  json errors = syntax_errors(root, source.text, errors_truncated);

  // Keep the whole result within max_result_bytes: the writers count what the tree costs in both
  // places it appears, structuredContent and the text content that repeats it as JSON.
  std::size_t fixed = 3 * errors.dump().size() + kEnvelopeBytes;
  std::size_t room = context.max_result_bytes > fixed ? context.max_result_bytes - fixed : 0;
  options.max_tree_bytes = room;
  // As JSON, each level of the tree is two levels of the result (a node, its children array) under
  // the result object; deeper than the result may nest, the coordinator would refuse the answer.
  std::optional<std::int64_t> depth_limit;
  if (format == "json") {
    auto fits = static_cast<std::int64_t>(std::max<std::uint64_t>(context.max_result_depth, 3) - 1) / 2;
    if (options.max_depth > fits) {
      options.max_depth = fits;
      depth_limit = fits;
    }
  }

  json structured = {{"language", source.language->name},
                     {"root_type", ts_node_type(root)},
                     {"has_errors", ts_node_has_error(root)},
                     {"errors", std::move(errors)},
                     {"errors_truncated", errors_truncated}};
  ToolResult result;
  WalkCounts counts;
  if (format == "sexp") {
    SexpWriter writer;
    counts = walk(root, options, context, writer);
    structured["tree"] = writer.take();
  } else {
    JsonWriter writer;
    counts = walk(root, options, context, writer);
    structured["tree"] = writer.take();
  }
  structured["node_count"] = counts.node_count;
  structured["total_nodes"] = counts.total_nodes;
  structured["truncated"] = counts.truncated;
  if (depth_limit) structured["max_depth_used"] = *depth_limit;
  result.structured = std::move(structured);
  return result;
}

}  // namespace

Tool code_parse_tool(const ParserSettings& settings) {
  Tool tool = parser_tool_base();
  tool.name = "code_parse";
  tool.title = "Parse source into a syntax tree";
  tool.description =
      "Parses source code with tree-sitter and returns its concrete syntax tree, either as an S-expression "
      "with field names (format \"sexp\", the default, e.g. (function_definition name: (identifier) ...)) or "
      "as JSON nodes with types, fields and 0-based row/column/byte ranges (format \"json\"). Syntax errors "
      "are listed separately as ERROR and MISSING nodes with their positions. Output is bounded by "
      "max_depth and max_nodes; `truncated` says when a limit cut it. Languages: " +
      supported_language_list() + ".";
  json properties = source_properties();
  properties["format"] = {{"type", "string"},
                          {"enum", {"sexp", "json"}},
                          {"default", "sexp"},
                          {"description", "\"sexp\" for an S-expression string, \"json\" for nested node objects."}};
  properties["max_depth"] = {{"type", "integer"},
                             {"minimum", 1},
                             {"default", 64},
                             {"description", "Deepest level of the tree to return (the root is level 1). As JSON nodes the tree "
                                            "goes at most as deep as a result may nest; `max_depth_used` then says how deep."}};
  properties["max_nodes"] = {{"type", "integer"},
                             {"minimum", 1},
                             {"default", 20000},
                             {"description", "Most nodes to return; the rest of the tree is cut."}};
  properties["named_only"] = {
      {"type", "boolean"},
      {"default", true},
      {"description", "Return only named nodes (true, as tree-sitter prints trees) or also anonymous tokens "
                      "such as punctuation and keywords (false)."}};
  tool.input_schema = {{"type", "object"}, {"properties", properties}, {"additionalProperties", false}};

  json error = {
      {"type", "object"},
      {"description", "A syntax error."},
      {"properties",
       {{"type", {{"type", "string"}, {"enum", {"ERROR", "MISSING"}}, {"description", "ERROR: text that does not fit the grammar; MISSING: a token the parser inserted to recover."}}},
        {"node_type", {{"type", "string"}, {"description", "\"ERROR\", or the type of the missing node (e.g. \";\")."}}},
        {"start", position_schema("Where the error starts.")},
        {"end", position_schema("Where the error ends.")},
        {"text", {{"type", "string"}, {"description", "The erroneous text, at most 80 bytes."}}}}}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"language", {{"type", "string"}, {"description", "Canonical language name."}}},
        {"root_type", {{"type", "string"}, {"description", "Type of the root node, e.g. \"program\"."}}},
        {"node_count", {{"type", "integer"}, {"description", "Nodes included in `tree`."}}},
        {"total_nodes", {{"type", "integer"}, {"description", "Nodes the tree has (named ones when named_only)."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_depth, max_nodes or the result size limit cut the tree."}}},
        {"max_depth_used", {{"type", "integer"}, {"description", "Present when format json could not nest max_depth levels within the depth a result may have: the max_depth used instead."}}},
        {"has_errors", {{"type", "boolean"}, {"description", "True when the source has syntax errors."}}},
        {"errors", {{"type", "array"}, {"items", error}, {"description", "Syntax errors in document order, at most 100."}}},
        {"errors_truncated", {{"type", "boolean"}, {"description", "True when there were more than 100 errors."}}},
        {"tree", {{"type", {"string", "object"}}, {"description", "The S-expression string (format sexp) or the root node object {type, named, field?, start, end, children} (format json)."}}}}},
      {"required", {"language", "root_type", "node_count", "truncated", "has_errors", "errors", "tree"}}};
  tool.handler = [settings](const json& arguments, ToolContext& context) { return run(arguments, context, settings); };
  return tool;
}

}  // namespace mcpd
