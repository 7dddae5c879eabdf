// code_outline: the symbols a file defines, found by the language's tags query (the tags.scm that
// GitHub code navigation uses), each with its kind, range, doc comment and enclosing symbol.
#include <algorithm>
#include <map>
#include <string>
#include <utility>

#include "code_tools.h"
#include "query.h"
#include "source.h"
#include "syntax.h"

namespace mcpd {

namespace {

constexpr std::size_t kMaxNameBytes = 200;
constexpr std::size_t kMaxDocBytes = 2000;
constexpr std::uint64_t kCancelCheckEvery = 1024;  // matches
constexpr std::size_t kEnvelopeBytes = 1024;
constexpr std::string_view kDefinitionPrefix = "definition.";

struct Symbol {
  std::string name;
  std::string kind;
  std::string doc;
  std::string container;
  std::size_t nesting = 0;
  TSPoint start{};
  TSPoint end{};
  std::uint32_t start_byte = 0;
  std::uint32_t end_byte = 0;
  std::uint32_t pattern = 0;
};

std::string_view trim(std::string_view text) {
  auto first = text.find_first_not_of(" \t\r\n");
  if (first == std::string_view::npos) return {};
  auto last = text.find_last_not_of(" \t\r\n");
  return text.substr(first, last - first + 1);
}

// After the query's own #strip!, drops what is left of comment markers ("*/", a leading "*") and
// blank edge lines.
std::string tidy_doc(const std::string& raw) {
  std::vector<std::string_view> lines;
  std::string_view rest = raw;
  while (!rest.empty()) {
    auto newline = rest.find('\n');
    std::string_view line = trim(rest.substr(0, newline));
    if (line.size() >= 2 && line.substr(line.size() - 2) == "*/") line = trim(line.substr(0, line.size() - 2));
    if (line.rfind("/**", 0) == 0) {
      line = trim(line.substr(3));
    } else if (line.rfind("/*", 0) == 0) {
      line = trim(line.substr(2));
    }
    if (line.rfind("*", 0) == 0) line = trim(line.substr(1));
    lines.push_back(line);
    if (newline == std::string_view::npos) break;
    rest.remove_prefix(newline + 1);
  }
  while (!lines.empty() && lines.back().empty()) lines.pop_back();
  std::size_t first = 0;
  while (first < lines.size() && lines[first].empty()) ++first;
  std::string out;
  for (std::size_t i = first; i < lines.size(); ++i) {
    if (i > first) out += '\n';
    out.append(lines[i]);
  }
  return out;
}

std::string doc_text(const Query& query, const TSQueryMatch& match, std::vector<std::pair<TSNode, std::uint32_t>> docs,
                     TSNode definition, std::string_view source) {
  if (docs.empty()) return {};
  std::sort(docs.begin(), docs.end(),
            [](const auto& a, const auto& b) { return ts_node_start_byte(a.first) < ts_node_start_byte(b.first); });
  std::size_t first = 0;
  if (query.selects_adjacent(match.pattern_index)) {
    // Keep only the comments that run up to the definition without a blank line between.
    first = docs.size();
    std::uint32_t next_row = ts_node_start_point(definition).row;
    while (first > 0 && ts_node_end_point(docs[first - 1].first).row + 1 >= next_row) {
      --first;
      next_row = ts_node_start_point(docs[first].first).row;
    }
  }
  std::string joined;
  for (std::size_t i = first; i < docs.size(); ++i) {
    std::string part(node_text(docs[i].first, source));
    if (const RE2* strip = query.strip_regex(match.pattern_index, docs[i].second)) RE2::GlobalReplace(&part, *strip, "");
    if (!joined.empty()) joined += '\n';
    joined += part;
  }
  return json_safe_prefix(tidy_doc(joined), kMaxDocBytes);
}

bool is_comment(TSNode node) { return std::string_view(ts_node_type(node)).find("comment") != std::string_view::npos; }

// The comments right before a definition, as a tags pattern's leading "(comment)* @doc ." would
// capture them. tree-sitter 0.20's query engine drops that leading repetition from some patterns
// (JavaScript's function pattern, whose alternatives include expressions, matches without its
// comments), so patterns that ask for adjacent docs fall back to this when a match has none. When
// the definition starts a line inside a larger statement (export function f, const f = () => ...),
// the comments precede that statement.
std::vector<std::pair<TSNode, std::uint32_t>> preceding_comments(TSNode definition, std::uint32_t doc_capture) {
  TSNode anchor = definition;
  for (int level = 0; level < 3; ++level) {
    TSNode previous = ts_node_prev_named_sibling(anchor);
    if (!ts_node_is_null(previous) && is_comment(previous)) break;
    TSNode parent = ts_node_parent(anchor);
    if (ts_node_is_null(parent) || ts_node_is_null(ts_node_parent(parent)) ||
        ts_node_start_point(parent).row != ts_node_start_point(anchor).row)
      break;
    anchor = parent;
  }
  std::vector<std::pair<TSNode, std::uint32_t>> comments;
  for (TSNode node = ts_node_prev_named_sibling(anchor); !ts_node_is_null(node) && is_comment(node);
       node = ts_node_prev_named_sibling(node))
    comments.emplace_back(node, doc_capture);
  return comments;
}

/// Where the tags query runs: exec roots, each with the byte ranges of it to visit.
struct QueryPlan {
  std::vector<TSNode> roots;
  std::vector<std::vector<std::pair<std::uint32_t, std::uint32_t>>> spans;  // per root
};

/// A node with more children than this is crowded. tree-sitter 0.20's query cursor pays, at every
/// node it visits, a walk over that node's later siblings (ts_tree_cursor_current_status), so the
/// children of a node with 100,000 of them (a generated parse table, a data array) cost minutes:
/// code_outline of a 1.5 MB parser.c ran into its deadline. Below this bound the cost is nothing.
constexpr std::uint32_t kCrowdedChildren = 4096;

/// Plans the query around crowded nodes: their insides are skipped (they hold data, not
/// definitions; a definition enclosing one is still found from the span before it, since tags
/// patterns name a definition's head, not its body), and a crowded root is queried child by child.
QueryPlan plan_query(TSNode root) {
  QueryPlan plan;
  if (ts_node_child_count(root) > kCrowdedChildren) {
    TSTreeCursor top = ts_tree_cursor_new(root);
    if (ts_tree_cursor_goto_first_child(&top)) {
      do plan.roots.push_back(ts_tree_cursor_current_node(&top));
      while (ts_tree_cursor_goto_next_sibling(&top));
    }
    ts_tree_cursor_delete(&top);
  } else {
    plan.roots.push_back(root);
  }
  for (TSNode exec_root : plan.roots) {
    auto& spans = plan.spans.emplace_back();
    std::uint32_t from = ts_node_start_byte(exec_root);
    TSTreeCursor walk = ts_tree_cursor_new(exec_root);
    bool more = true;
    while (more) {
      TSNode node = ts_tree_cursor_current_node(&walk);
      bool crowded = ts_node_child_count(node) > kCrowdedChildren && !ts_node_eq(node, exec_root);
      if (crowded) {
        spans.emplace_back(from, ts_node_start_byte(node));
        from = ts_node_end_byte(node);
      } else if (ts_tree_cursor_goto_first_child(&walk)) {
        continue;
      }
      while (!ts_tree_cursor_goto_next_sibling(&walk))
        if (!ts_tree_cursor_goto_parent(&walk)) {
          more = false;
          break;
        }
    }
    ts_tree_cursor_delete(&walk);
    spans.emplace_back(from, ts_node_end_byte(exec_root));
  }
  return plan;
}

std::vector<Symbol> collect_symbols(const Language& language, TSNode root, std::string_view source,
                                    const ToolContext& context) {
  const Query& query = tags_query(language);
  // One symbol per name node, from the earliest pattern that tags it, as tree-sitter's own tagger
  // decides: Rust's "function in an impl block" pattern precedes the plain function one, so a
  // method is a method, not also a function. The same match found from two spans counts once.
  std::map<std::pair<std::uint32_t, std::uint32_t>, Symbol> by_name;
  std::int64_t doc_capture = query.capture_id("doc");
  TSQueryMatch match;
  std::uint64_t seen = 0;
  QueryPlan plan = plan_query(root);
  for (std::size_t r = 0; r < plan.roots.size(); ++r)
  for (const auto& [span_start, span_end] : plan.spans[r]) {
  if (span_start >= span_end && plan.spans[r].size() > 1) continue;
  QueryCursor cursor;
  if (plan.spans[r].size() > 1) ts_query_cursor_set_byte_range(cursor.get(), span_start, span_end);
  ts_query_cursor_exec(cursor.get(), query.get(), plan.roots[r]);
  while (ts_query_cursor_next_match(cursor.get(), &match)) {
    if (++seen % kCancelCheckEvery == 0) context.check_cancelled();
    if (!query.accepts(match, source)) continue;
    TSNode definition{};
    TSNode name{};
    bool has_definition = false;
    bool has_name = false;
    std::string kind;
    std::vector<std::pair<TSNode, std::uint32_t>> docs;
    for (std::uint16_t i = 0; i < match.capture_count; ++i) {
      const TSQueryCapture& capture = match.captures[i];
      std::string_view capture_name = query.capture_name(capture.index);
      if (capture_name.rfind(kDefinitionPrefix, 0) == 0) {
        definition = capture.node;
        has_definition = true;
        kind = capture_name.substr(kDefinitionPrefix.size());
      } else if (capture_name == "name" && !has_name) {
        name = capture.node;
        has_name = true;
      } else if (capture_name == "doc") {
        docs.emplace_back(capture.node, capture.index);
      }
    }
    if (!has_definition || !has_name) continue;  // references and other captures are not symbols
    if (docs.empty() && doc_capture >= 0 && query.selects_adjacent(match.pattern_index))
      docs = preceding_comments(definition, static_cast<std::uint32_t>(doc_capture));

    Symbol symbol;
    symbol.name = json_safe_prefix(node_text(name, source), kMaxNameBytes);
    symbol.kind = std::move(kind);
    symbol.doc = doc_text(query, match, std::move(docs), definition, source);
    symbol.start = ts_node_start_point(definition);
    symbol.end = ts_node_end_point(definition);
    symbol.start_byte = ts_node_start_byte(definition);
    symbol.end_byte = ts_node_end_byte(definition);
    symbol.pattern = match.pattern_index;

    auto [it, inserted] = by_name.try_emplace({ts_node_start_byte(name), ts_node_end_byte(name)}, symbol);
    Symbol& kept = it->second;
    if (!inserted && (symbol.pattern < kept.pattern ||
                      (symbol.pattern == kept.pattern && symbol.doc.size() > kept.doc.size())))
      kept = std::move(symbol);
  }
  }

  std::vector<Symbol> symbols;
  symbols.reserve(by_name.size());
  for (auto& entry : by_name) symbols.push_back(std::move(entry.second));
  // Outer symbols before the ones they contain.
  std::sort(symbols.begin(), symbols.end(), [](const Symbol& a, const Symbol& b) {
    if (a.start_byte != b.start_byte) return a.start_byte < b.start_byte;
    if (a.end_byte != b.end_byte) return a.end_byte > b.end_byte;
    return a.pattern < b.pattern;
  });
  auto encloses = [](const Symbol& outer, const Symbol& inner) {
    return outer.start_byte <= inner.start_byte && inner.end_byte <= outer.end_byte &&
           (outer.start_byte != inner.start_byte || outer.end_byte != inner.end_byte);
  };
  std::vector<std::size_t> open;  // the chain of symbols enclosing the current one
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    while (!open.empty() && !encloses(symbols[open.back()], symbols[i])) open.pop_back();
    if (!open.empty()) symbols[i].container = symbols[open.back()].name;
    symbols[i].nesting = open.size();
    open.push_back(i);
  }
  return symbols;
}

ToolResult run(const json& arguments, ToolContext& context, const ParserSettings& settings) {
  std::vector<std::string> kinds = strings_argument(arguments, "kinds");
  std::int64_t max_symbols = integer_argument(arguments, "max_symbols", 2000, 1);
  Source source = load_source(arguments, context);
  Tree tree = parse(*source.language, source.text, context, settings);
  std::vector<Symbol> symbols = collect_symbols(*source.language, ts_tree_root_node(tree.get()), source.text, context);

  json list = json::array();
  std::string text;
  bool truncated = false;
  std::size_t budget = context.max_result_bytes > kEnvelopeBytes ? context.max_result_bytes - kEnvelopeBytes : 0;
  std::size_t used = 0;
  for (const Symbol& symbol : symbols) {
    if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), symbol.kind) == kinds.end()) continue;
    if (list.size() == static_cast<std::size_t>(max_symbols)) {
      truncated = true;
      break;
    }
    json entry = {{"name", symbol.name},
                  {"kind", symbol.kind},
                  {"line", symbol.start.row + 1},
                  {"start", position(symbol.start, symbol.start_byte)},
                  {"end", position(symbol.end, symbol.end_byte)}};
    if (!symbol.container.empty()) entry["container"] = symbol.container;
    if (!symbol.doc.empty()) entry["doc"] = symbol.doc;
    std::size_t size = result_cost(entry);
    if (used + size > budget) {
      truncated = true;
      break;
    }
    used += size;
    list.push_back(std::move(entry));
  }

  ToolResult result;
  result.structured = {{"language", source.language->name}, {"symbols", std::move(list)}, {"truncated", truncated}};
  return result;
}

}  // namespace

Tool code_outline_tool(const ParserSettings& settings) {
  Tool tool = parser_tool_base();
  tool.name = "code_outline";
  tool.title = "List the symbols a source file defines";
  tool.description =
      "Lists the definitions in source code (functions, methods, classes, interfaces, types, modules, macros, "
      "constants, ...) using each language's tree-sitter tags query, sorted by position. Each symbol has its "
      "name, kind, 1-based `line`, 0-based start/end ranges, the innermost enclosing symbol (`container`) "
      "and, where the language's query captures it, its doc comment. References are not listed. Languages: " +
      supported_language_list() + ".";
  json properties = source_properties();
  properties["kinds"] = {
      {"type", "array"},
      {"items", {{"type", "string"}}},
      {"description", "Only symbols of these kinds, e.g. [\"function\", \"class\"]. Kinds come from the tags "
                      "query: function, method, class, interface, module, type, macro, constant, key, ..."}};
  properties["max_symbols"] = {{"type", "integer"},
                               {"minimum", 1},
                               {"default", 2000},
                               {"description", "Most symbols to return; `truncated` says when there were more."}};
  tool.input_schema = {{"type", "object"}, {"properties", properties}, {"additionalProperties", false}};

  json symbol = {
      {"type", "object"},
      {"description", "One definition."},
      {"properties",
       {{"name", {{"type", "string"}, {"description", "The symbol's name."}}},
        {"kind", {{"type", "string"}, {"description", "function, method, class, interface, module, type, ..."}}},
        {"line", {{"type", "integer"}, {"description", "1-based line where the definition starts."}}},
        {"start", position_schema("Start of the definition.")},
        {"end", position_schema("End of the definition.")},
        {"container", {{"type", "string"}, {"description", "Name of the innermost enclosing symbol, if any."}}},
        {"doc", {{"type", "string"}, {"description", "The doc comment, without comment markers, if any."}}}}},
      {"required", {"name", "kind", "line", "start", "end"}}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"language", {{"type", "string"}, {"description", "Canonical language name."}}},
        {"symbols", {{"type", "array"}, {"items", symbol}, {"description", "Symbols sorted by start position."}}},
        {"truncated", {{"type", "boolean"}, {"description", "True when max_symbols or the result size limit cut the list."}}}}},
      {"required", {"language", "symbols", "truncated"}}};
  tool.handler = [settings](const json& arguments, ToolContext& context) { return run(arguments, context, settings); };
  return tool;
}

}  // namespace mcpd
