// The rules of one ignore file (.gitignore, .ignore, .rgignore, .git/info/exclude) or one set of
// -g overrides, in gitignore syntax: '#' comments, '!' negation, a trailing '/' for directories only,
// anchoring by a leading or middle '/', "**". Within one file the last matching rule decides.
#pragma once

#include <cstdint>
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
  /// Reads `file` relative to the directory fd `dir_fd` (missing, unreadable, not a regular file,
  /// reached through a symlink, or over `max_bytes`: no rules). With AT_FDCWD, `file` is an
  /// absolute name outside the roots (the user's global gitignore) and symlinks are followed.
  static IgnoreRules from_file_at(int dir_fd, const char* file, std::string base, std::uint64_t max_bytes);

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

/// The user's global gitignore as rg finds it (ignore crate, gitconfig_excludes_path): core.excludesFile
/// from ~/.gitconfig, else from $XDG_CONFIG_HOME/git/config (default ~/.config/git/config), "~/"
/// expanded; else $XDG_CONFIG_HOME/git/ignore, else ~/.config/git/ignore. Reads HOME and
/// XDG_CONFIG_HOME at each call (each walk calls it once), so a change of either is seen by the next
/// walk. "" when HOME is unset and nothing names a file. A git config over `max_bytes` (or not a
/// regular file) names nothing.
std::string global_gitignore_path(std::uint64_t max_bytes);

}  // namespace mcpd::search
