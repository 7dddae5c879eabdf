// The rules of one ignore file (.gitignore, .ignore, .rgignore, .git/info/exclude) or one set of
// -g overrides, in gitignore syntax: '#' comments, '!' negation, a trailing '/' for directories only,
// anchoring by a leading or middle '/', "**". Within one file the last matching rule decides.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "glob.h"

namespace mcpd::search {

/// What a set of rules says about a path.
enum class Verdict { none, ignore, whitelist };

/// The parsed rules of one ignore file, matched against paths relative to `base` (the file's
/// directory).
class IgnoreRules {
 public:
  IgnoreRules() = default;
  /// Parses `text`; lines that do not compile are skipped, as git does with bad lines.
  IgnoreRules(std::string base, std::string_view text);
  /// Reads `file` (missing or unreadable: no rules).
  static IgnoreRules from_file(const std::filesystem::path& file, std::string base);

  /// Adds one rule line (used for -g overrides too).
  void add_line(std::string_view line);
  bool empty() const { return rules_.empty(); }
  const std::string& base() const { return base_; }

  /// The verdict for `relative` (relative to base(), '/'-separated).
  Verdict match(std::string_view relative, bool is_dir) const;

 private:
  struct Rule {
    Glob glob;
    bool negated;
    bool dir_only;
  };
  std::string base_;
  std::vector<Rule> rules_;
};

}  // namespace mcpd::search
