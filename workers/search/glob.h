// Globs in gitignore syntax (as ripgrep's -g, .gitignore and .ignore files read them), compiled to
// one RE2 each: `*` and `?` stop at '/', `**` crosses directories, [...] classes, {a,b} alternation
// and backslash escapes. A glob without a '/' (other than a trailing one) matches the last path
// component at any depth; one with a leading or middle '/' is anchored to its base directory.
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace re2 {
class RE2;
}

namespace mcpd::search {

/// Bounds on one glob, so that a hostile ignore file or argument costs little: its length (which
/// also bounds its alternatives, each at least a byte) and how deep its braces nest (the
/// translation recurses once per level).
struct GlobLimits {
  std::size_t max_bytes = 4096;
  unsigned max_nesting = 8;
};

/// One compiled glob. Paths given to matches() are relative to the glob's base, '/'-separated,
/// without a leading "./".
class Glob {
 public:
  /// Parses a glob line as gitignore does (no '!' or trailing '/' handling: see IgnoreRule). Throws
  /// std::invalid_argument with a message naming the glob when it cannot be compiled or is over
  /// `limits`.
  explicit Glob(std::string_view glob, bool case_insensitive = false, const GlobLimits& limits = {});
  ~Glob();
  Glob(Glob&&) noexcept;
  Glob& operator=(Glob&&) noexcept;

  bool matches(std::string_view relative_path) const;
  const std::string& regex() const { return regex_; }

 private:
  std::string regex_;
  std::unique_ptr<re2::RE2> re_;
};

/// Whether `text` has a glob metacharacter (* ? [ {).
bool has_glob_meta(std::string_view text);

/// The RE2 source of a glob (exposed for tests). Throws std::invalid_argument as Glob does.
std::string glob_to_regex(std::string_view glob, const GlobLimits& limits = {});

}  // namespace mcpd::search
