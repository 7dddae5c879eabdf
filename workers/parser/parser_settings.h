// The parser family's own settings (config key "parser") and the check every source passes before
// tree-sitter sees it.
//
// Why the check exists: libtree-sitter 0.20.7 keeps a node's child count in 16 bits. A node that
// gets 65,536 or more children (the ERROR node that wraps an unfinished parse stack, or a node that
// takes in a long run of comments) records the count modulo 65,536, computes the address of its
// children from that wrong count, and frees a pointer into the middle of an allocation when the tree
// is deleted: the process aborts or segfaults. 65,535 unclosed `[`, 70,000 comment lines, 70,000 `!`
// in a row all do it. The library cannot be told to stop there, so the source is measured first and
// refused, with a message naming the setting, when it could drive the parser past that point.
#pragma once

#include <cstdint>
#include <string_view>

#include "languages.h"
#include "query.h"
#include "tool.h"

namespace mcpd {

struct ParserSettings {
  /// Brackets ((, [, {, and Bash's if/case/for/while/until blocks) open at once. Each open level
  /// holds a few entries of the parse stack, so this keeps an unfinished stack far below 65,536.
  std::uint64_t max_nesting_depth = 1024;
  /// Tokens (comments included) between two separators (; , { } and, in Python and Bash, the end of
  /// a statement's line), and comments in a row: the longest stretch the parser may have to hold
  /// without reducing, or fold into one node.
  std::uint64_t max_run_tokens = 50000;
  /// Bounds on code_query's query text (max_query_bytes, max_query_depth).
  QueryLimits query;

  /// Reads the settings object; throws std::invalid_argument naming the key ("parser.max_run_tokens: ...").
  static ParserSettings from_json(const json& settings);
};

/// Throws ToolError when `text` nests deeper than settings.max_nesting_depth or has a run longer
/// than settings.max_run_tokens, saying which, where (1-based line) and which setting bounds it.
/// One pass over the bytes with a small lexer per language (comments and strings are skipped, so
/// brackets inside them do not count); it errs towards counting too much, never too little.
void check_parse_bounds(const Language& language, std::string_view text, const ParserSettings& settings);

}  // namespace mcpd
