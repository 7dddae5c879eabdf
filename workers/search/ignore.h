// The rules of one ignore file (.gitignore, .ignore, .rgignore, .git/info/exclude) or one set of
// -g overrides, in gitignore syntax: '#' comments, '!' negation, a trailing '/' for directories only,
// anchoring by a leading or middle '/', "**". Within one file the last matching rule decides.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "glob.h"


namespace mcpd::search {

/// What a set of rules says about a path.
enum class Verdict { none, ignore, whitelist };

/// Bounds on one ignore file, which a hostile repository writes: bytes read (the rest is not read)
/// and rules kept (later lines are skipped), each glob within `glob`.
struct IgnoreLimits {
  GlobLimits glob;
  std::uint64_t max_file_bytes = 1 << 20;
  std::size_t max_rules = 10000;
};

/// The parsed rules of one ignore file, matched against paths relative to `base` (the file's
/// directory). All rules are compiled into RE2::Sets, so a path costs a scan of its name and one of
/// its path however many rules there are (plus a step per rule that matches), not a regex run per
/// rule.
class IgnoreRules {
 public:
  IgnoreRules();
  /// Parses `text` and compiles; lines that do not compile or are over `limits` are skipped and
  /// counted (skipped()), as git skips bad lines.
  IgnoreRules(std::string base, std::string_view text, const IgnoreLimits& limits = {});
  /// Reads `file` relative to the directory fd `dir_fd` (missing, unreadable, not a regular file
  /// or reached through a symlink: no rules; beyond limits.max_file_bytes: not read, and the file
  /// counts as one skipped line). With AT_FDCWD, `file` is an absolute name outside the roots (the
  /// user's global gitignore) and symlinks are followed.
  static IgnoreRules from_file_at(int dir_fd, const char* file, std::string base, const IgnoreLimits& limits = {});
  ~IgnoreRules();
  IgnoreRules(IgnoreRules&&) noexcept;
  IgnoreRules& operator=(IgnoreRules&&) noexcept;

  /// Adds one rule line of an ignore file; a bad one is skipped and counted. Call compile() after
  /// the last one.
  void add_line(std::string_view line, const IgnoreLimits& limits = {});
  /// Adds one rule the user gave (-g overrides); throws std::invalid_argument naming it when it
  /// does not compile.
  void add_rule(std::string_view line, const GlobLimits& limits = {});
  /// Builds the combined matcher; match() needs it.
  void compile();
  bool empty() const { return rules_.empty(); }
  const std::string& base() const { return base_; }
  /// Lines skipped: bad, over a limit, or the whole rest of a file over its byte limit.
  std::size_t skipped() const { return skipped_; }

  /// The verdict for `relative` (relative to base(), '/'-separated).
  Verdict match(std::string_view relative, bool is_dir) const;

 private:
  struct Rule {
    std::string regex;       // matched against the whole relative path
    std::string name_regex;  // with name_only: matched against the last component instead
    bool name_only = false;
    bool negated = false;
    bool dir_only = false;
  };
  struct Compiled;
  /// Parses one line into `rule`; false for a comment or blank line. Throws std::invalid_argument.
  static bool parse(std::string_view line, const GlobLimits& limits, Rule& rule);
  /// Adds a parsed rule to the set being built; false (with `error`) when RE2 refuses it.
  bool add_parsed(Rule&& rule, std::string* error);

  std::string base_;
  std::vector<Rule> rules_;
  std::size_t skipped_ = 0;
  std::unique_ptr<Compiled> compiled_;  // the set being built until compile(), then the matcher
};

/// The user's global gitignore as rg finds it (ignore crate, gitconfig_excludes_path): core.excludesFile
/// from ~/.gitconfig, else from $XDG_CONFIG_HOME/git/config (default ~/.config/git/config), "~/"
/// expanded; else $XDG_CONFIG_HOME/git/ignore, else ~/.config/git/ignore. Reads HOME and
/// XDG_CONFIG_HOME at each call (each walk calls it once), so a change of either is seen by the next
/// walk. "" when HOME is unset and nothing names a file. A git config over `max_bytes` (or not a
/// regular file) names nothing.
std::string global_gitignore_path(std::uint64_t max_bytes);

/// The state of every ignore rule a walk of `dir` (canonical, absolute) reads from outside `dir`
/// itself, as text that changes whenever one of them may have: the global gitignore's path and
/// stat, and for each parent of `dir` the stat of its .gitignore, .ignore, .rgignore and
/// .git/info/exclude (inode, size, mtime and ctime). A watcher of `dir` sees none of these, so
/// whatever is remembered about a walk (a cached listing, a cached answer) is keyed by this too.
std::string outside_ignore_state(const std::string& dir, std::uint64_t max_bytes);

}  // namespace mcpd::search
