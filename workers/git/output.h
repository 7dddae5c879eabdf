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

/// What a piece of output costs: its bytes in the structured JSON, and its bytes in the whole tool
/// result, which carries that JSON twice: as structuredContent, and serialized into a JSON string
/// as the text content, where every quote and backslash is escaped once more. A diff of short lines
/// or of code full of quotes costs far more than twice its JSON in the result.
struct OutputCost {
  std::uint64_t json = 0;
  std::uint64_t result = 0;
  OutputCost operator+(const OutputCost& other) const { return {json + other.json, result + other.result}; }
  /// What is left of this after `other`, never below zero.
  OutputCost minus(const OutputCost& other) const {
    return {json > other.json ? json - other.json : 0, result > other.result ? result - other.result : 0};
  }
  bool fits_in(const OutputCost& room) const { return json <= room.json && result <= room.result; }
};

/// The cost of `value`.
OutputCost json_cost(const json& value);

/// The cost of `text` as a JSON string value, quotes included.
OutputCost string_cost(std::string_view text);

/// The length of the longest prefix of `text` that ends at a line break (or is all of `text`) and
/// whose JSON string form, quotes aside, fits in `room`.
std::size_t fitting_prefix(std::string_view text, const OutputCost& room);

/// A time with its zone offset in ISO 8601, as `git log --date=iso-strict`: 2024-05-01T12:30:00+02:00.
std::string iso_time(git_time_t seconds, int offset_minutes);

/// The shape every tool gives a commit: id, parents, author, author_email, date (the author date),
/// summary (the message's first paragraph on one line).
json commit_summary(const git_commit* commit);

/// added, deleted, modified, renamed, copied, typechange, untracked, ... for a diff delta.
std::string delta_status(git_delta_t status);

/// The bytes an answer may still use, in the structured JSON (the caller's max_bytes) and in the
/// whole result (the server's max_result_bytes). Each piece of output asks for its cost first; the
/// first refusal marks the answer truncated.
class OutputBudget {
 public:
  explicit OutputBudget(const OutputCost& room) : room_(room), remaining_(room) {}
  /// Takes `cost` if it fits; otherwise marks truncated and returns false.
  bool take(const OutputCost& cost);
  /// Takes the cost of `value` as one element of a list (its separating comma included).
  bool take_element(const json& value);
  /// Takes `cost` without asking: for a piece already cut to fit `remaining()`.
  void take_fitted(const OutputCost& cost) { remaining_ = remaining_.minus(cost); }
  const OutputCost& remaining() const { return remaining_; }
  OutputCost used() const { return room_.minus(remaining_); }
  bool truncated() const { return truncated_; }
  void mark_truncated() { truncated_ = true; }

 private:
  OutputCost room_;
  OutputCost remaining_;
  bool truncated_ = false;
};

}  // namespace mcpd::git
