// A compiled tree-sitter query together with its text predicates. The C library matches structure
// only and leaves #eq?, #match? and #any-of? to the caller; Query evaluates them, and keeps the
// #strip! and #select-adjacent! directives that tags queries attach to @doc captures.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <re2/re2.h>
#include <tree_sitter/api.h>

namespace mcpd {

/// Bounds on a query a user writes, checked before tree-sitter sees it: the library's query parser
/// recurses once per nesting level (deep nesting overflows the stack) and its analysis grows with
/// the query's size.
struct QueryLimits {
  std::size_t max_bytes = 64 << 10;
  std::size_t max_depth = 64;
  /// Compile each new query first in a checker process, before compiling it here (see
  /// probe_query_compile). Off only for a caller that accepts a crash of its own process.
  bool isolate_compile = true;
  /// How long the checker may take to compile a query.
  std::uint64_t compile_timeout_ms = 5000;
  /// Bytes of query text remembered as compiled safely, so a repeated query is not checked again.
  std::size_t compile_cache_bytes = 4 << 20;
};

/// Throws ToolError when `source` is over `limits` (its bytes, or its nesting of '(' and '['
/// outside strings and comments), naming the setting.
void check_query_limits(std::string_view source, const QueryLimits& limits);

/// Compiles `source` against `language` first in a checker process (a fork of this process that
/// only compiles the queries it is sent), and throws ToolError when the checker dies of it (twice,
/// so a checker killed from outside is not blamed on the query) or runs past
/// limits.compile_timeout_ms. A query error is left to the compile that follows, which names its
/// position.
///
/// Why: libtree-sitter 0.20.7's query compiler has inputs on which it reads through a null pointer
/// (found by fuzzing code_query, for example a quantified group around an old-style predicate) and
/// inputs it never finishes. check_query_limits refuses the shapes known to do it, with a precise
/// message; this catches the ones not yet known, so a query can never take down the process that
/// would run it (in legacy mode, mcpd itself). A query that compiled in the checker compiles the
/// same way here: the compiler depends on nothing but the language and the text. Queries that
/// passed are remembered by their full text, up to limits.compile_cache_bytes, so a repeated query
/// costs a lookup. Does nothing when limits.isolate_compile is off.
void probe_query_compile(const TSLanguage* language, std::string_view source, const QueryLimits& limits);

/// Immutable once built, so one instance serves many threads; each run uses its own QueryCursor.
class Query {
 public:
  /// Compiles `source` against `language`. Throws ToolError on a query error ("query error at line
  /// 2, column 5 (offset 17): invalid node type 'x'"), a malformed predicate, or an invalid regex.
  Query(const TSLanguage* language, std::string_view source);
  ~Query();
  Query(const Query&) = delete;
  Query& operator=(const Query&) = delete;

  const TSQuery* get() const { return query_; }
  std::string_view capture_name(std::uint32_t id) const;

  /// The id of capture `name` (without @), or -1 if the query has no such capture.
  std::int64_t capture_id(std::string_view name) const;

  /// True when `match` satisfies every text predicate of its pattern. `source` is the parsed text.
  bool accepts(const TSQueryMatch& match, std::string_view source) const;

  /// Predicates and directives this class does not evaluate ("#set!", "#is?", ...), each once.
  const std::vector<std::string>& ignored_predicates() const { return ignored_; }

  /// The #strip! regex for `capture` in `pattern`, or nullptr.
  const RE2* strip_regex(std::uint32_t pattern, std::uint32_t capture) const;

  /// Whether `pattern` asks (#select-adjacent! or #set-adjacent!) to keep only the @doc nodes that
  /// directly precede the definition.
  bool selects_adjacent(std::uint32_t pattern) const;

 private:
  struct Predicate;

  TSQuery* query_ = nullptr;
  std::vector<std::vector<Predicate>> predicates_;  // by pattern index
  std::vector<std::string> ignored_;
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::unique_ptr<RE2>> strip_;
  std::vector<bool> select_adjacent_;
};

}  // namespace mcpd
