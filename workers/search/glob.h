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

/// One compiled glob. Paths given to matches() are relative to the glob's base, '/'-separated,
/// without a leading "./".
class Glob {
 public:
  /// Parses a glob line as gitignore does (no '!' or trailing '/' handling: see IgnoreRule). Throws
  /// std::invalid_argument with a message naming the glob when it cannot be compiled.
  explicit Glob(std::string_view glob, bool case_insensitive = false);
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

/// The RE2 source of a glob (exposed for tests).
std::string glob_to_regex(std::string_view glob);

}  // namespace mcpd::search
