// How the git tools write their answers: valid UTF-8 whatever the repository holds, dates in
// ISO 8601, commits in one shape everywhere, and a byte budget that keeps an answer under its cap
// and remembers that it cut something.
#pragma once

#include <git2.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "tool.h"

namespace mcpd::git {

/// `text` with every invalid UTF-8 sequence replaced by U+FFFD, so it can go into JSON (paths,
/// messages and file contents in a repository are bytes, not necessarily UTF-8).
std::string valid_utf8(std::string_view text);

/// The size `text` takes as a JSON string (quotes and escapes included).
std::size_t json_string_size(std::string_view text);

/// The length of the longest prefix of `text` that ends at a line break (or is all of `text`) and
/// whose JSON string form, quotes aside, fits in `json_bytes`.
std::size_t fitting_prefix(std::string_view text, std::uint64_t json_bytes);

/// A time with its zone offset in ISO 8601, as `git log --date=iso-strict`: 2024-05-01T12:30:00+02:00.
std::string iso_time(git_time_t seconds, int offset_minutes);

/// The shape every tool gives a commit: id, parents, author, author_email, date (the author date),
/// summary (the message's first paragraph on one line).
json commit_summary(const git_commit* commit);

/// added, deleted, modified, renamed, copied, typechange, untracked, ... for a diff delta.
std::string delta_status(git_delta_t status);

/// The bytes an answer may still use. Each piece of output asks for its size first; the first
/// refusal marks the answer truncated.
class OutputBudget {
 public:
  explicit OutputBudget(std::uint64_t cap_bytes) : remaining_(cap_bytes) {}
  /// Takes `bytes` if they fit; otherwise marks truncated and returns false.
  bool take(std::uint64_t bytes);
  std::uint64_t remaining() const { return remaining_; }
  bool truncated() const { return truncated_; }
  void mark_truncated() { truncated_ = true; }

 private:
  std::uint64_t remaining_;
  bool truncated_ = false;
};

}  // namespace mcpd::git
