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
};

/// Throws ToolError when `source` is over `limits` (its bytes, or its nesting of '(' and '['
/// outside strings and comments), naming the setting.
void check_query_limits(std::string_view source, const QueryLimits& limits);

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
