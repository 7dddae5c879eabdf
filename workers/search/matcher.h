// The compiled pattern of one search_text call: an RE2 that matches line by line as ripgrep does
// (a match never crosses a newline, ^ and $ match at line boundaries, \r is part of the line), and
// the code that finds every match in a file's bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace re2 {
class RE2;
}

namespace mcpd::search {

enum class CaseMode { sensitive, insensitive, smart };

struct PatternSpec {
  std::string pattern;
  bool fixed_strings = false;
  CaseMode case_mode = CaseMode::sensitive;
  bool word = false;
  std::int64_t max_regex_memory_bytes = 64 << 20;
};

/// A pattern compiled for line-oriented search. Thread-safe (RE2 is).
class Matcher {
 public:
  /// Throws std::invalid_argument with a message a user can act on: the empty pattern, a syntax
  /// error (with its position), a pattern too large for the memory bound.
  explicit Matcher(const PatternSpec& spec);
  ~Matcher();

  /// Calls `on_match(begin, end)` for each match in `text`, in order, until it returns false.
  void for_each_match(std::string_view text, const std::function<bool(std::size_t, std::size_t)>& on_match) const;
  /// Whether `text` has a match at all (the fast path: one DFA scan, no positions).
  bool any_match(std::string_view text) const;

  /// The full RE2 source actually run (flags and word wrapping included), for FilteredRE2.
  const std::string& regex() const { return regex_; }
  bool case_insensitive() const { return case_insensitive_; }
  std::int64_t max_memory() const { return max_mem_; }

 private:
  std::string regex_;
  bool case_insensitive_ = false;
  bool word_ = false;
  std::int64_t max_mem_;
  std::string literal_;  // non-empty: a case-sensitive literal searched with memmem
  std::unique_ptr<re2::RE2> re_;

 public:
  /// One literal of the inner-literal prefilter (ripgrep's "inner literal" optimisation): every
  /// match of the regex contains one of the prefilter's literals, so only the lines holding one are
  /// run through RE2. Folded literals are ASCII lowercase and found in any ASCII case.
  struct Literal {
    std::string text;
    bool fold = false;
    std::size_t rare1 = 0, rare2 = 0;  // the two rarest positions, compared first
  };
  /// The prefilter's literals (empty: every match is searched with RE2 over the whole text).
  const std::vector<Literal>& prefilter() const { return prefilter_; }

  /// Larger regexes get no prefilter (RE2's analysis of them is quadratic in a literal's length).
  static constexpr std::size_t kMaxPrefilterRegexBytes = 8192;
  /// The most atoms tried as the required one (each trial walks the whole prefilter tree).
  static constexpr std::size_t kMaxPrefilterTrials = 32;

 private:
  void build_prefilter(bool may_fold);
  /// Calls on_line(line_start, line_end) for each line holding a prefilter literal, in order,
  /// until it returns false.
  template <typename OnLine>
  void for_each_candidate_line(std::string_view text, OnLine&& on_line) const;
  std::vector<Literal> prefilter_;
};

/// ripgrep's smart case: insensitive unless the pattern has an uppercase letter outside escapes.
bool has_uppercase_literal(std::string_view pattern, bool fixed_strings);

}  // namespace mcpd::search
