#include "output.h"

#include <cstdio>
#include <ctime>

#include "repository.h"

namespace mcpd::git {

std::string valid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    unsigned char c = s[i];
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++i;
      continue;
    }
    std::size_t length = 0;
    std::uint32_t min = 0;
    if ((c & 0xE0) == 0xC0) {
      length = 2;
      min = 0x80;
    } else if ((c & 0xF0) == 0xE0) {
      length = 3;
      min = 0x800;
    } else if ((c & 0xF8) == 0xF0) {
      length = 4;
      min = 0x10000;
    }
    bool ok = length != 0 && i + length <= n;
    std::uint32_t code = length == 2 ? (c & 0x1F) : length == 3 ? (c & 0x0F) : (c & 0x07);
    for (std::size_t k = 1; ok && k < length; ++k) {
      if ((s[i + k] & 0xC0) != 0x80) ok = false;
      code = (code << 6) | (s[i + k] & 0x3F);
    }
    ok = ok && code >= min && code <= 0x10FFFF && !(code >= 0xD800 && code <= 0xDFFF);
    if (ok) {
      out.append(text.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

std::size_t json_string_size(std::string_view text) {
  std::size_t size = 2;
  for (unsigned char c : text) {
    if (c == '"' || c == '\\' || c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f') size += 2;
    else if (c < 0x20) size += 6;
    else size += 1;
  }
  return size;
}

namespace {

// The cost of one character of a string value: its JSON escape in the structured content, and that
// escape once more inside the text content's string.
OutputCost char_cost(unsigned char c) {
  if (c == '"' || c == '\\') return {2, 6};                                         // \"  then \\\"
  if (c == '\n' || c == '\t' || c == '\r' || c == '\b' || c == '\f') return {2, 5};   // \n  then \\n
  if (c < 0x20) return {6, 13};                                                    // \u0001 then \\u0001
  return {1, 2};
}

}  // namespace

OutputCost json_cost(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::uint64_t escaped = 0;
  for (char c : text)
    if (c == '"' || c == '\\') ++escaped;
  return {text.size(), 2 * text.size() + escaped};
}

OutputCost string_cost(std::string_view text) {
  OutputCost cost{2, 6};  // the quotes
  for (unsigned char c : text) cost = cost + char_cost(c);
  return cost;
}

std::size_t fitting_prefix(std::string_view text, const OutputCost& room) {
  OutputCost used;
  std::size_t last_line_end = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    used = used + char_cost(static_cast<unsigned char>(text[i]));
    if (!used.fits_in(room)) return last_line_end;
    if (text[i] == '\n') last_line_end = i + 1;
  }
  return text.size();
}

std::string iso_time(git_time_t seconds, int offset_minutes) {
  std::time_t local = static_cast<std::time_t>(seconds + static_cast<git_time_t>(offset_minutes) * 60);
  std::tm tm{};
  gmtime_r(&local, &tm);
  char sign = offset_minutes < 0 ? '-' : '+';
  int offset = offset_minutes < 0 ? -offset_minutes : offset_minutes;
  char text[64];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, sign, offset / 60, offset % 60);
  return text;
}

json commit_summary(const git_commit* commit) {
  const git_signature* author = git_commit_author(commit);
  json parents = json::array();
  for (unsigned i = 0; i < git_commit_parentcount(commit); ++i) parents.push_back(oid_string(git_commit_parent_id(commit, i)));
  const char* summary = git_commit_summary(const_cast<git_commit*>(commit));
  return {{"id", oid_string(git_commit_id(commit))},
          {"parents", std::move(parents)},
          {"author", valid_utf8(author->name)},
          {"author_email", valid_utf8(author->email)},
          {"date", iso_time(author->when.time, author->when.offset)},
          {"summary", valid_utf8(summary != nullptr ? summary : "")}};
}

std::string delta_status(git_delta_t status) {
  switch (status) {
    case GIT_DELTA_ADDED: return "added";
    case GIT_DELTA_DELETED: return "deleted";
    case GIT_DELTA_MODIFIED: return "modified";
    case GIT_DELTA_RENAMED: return "renamed";
    case GIT_DELTA_COPIED: return "copied";
    case GIT_DELTA_TYPECHANGE: return "typechange";
    case GIT_DELTA_UNTRACKED: return "untracked";
    case GIT_DELTA_IGNORED: return "ignored";
    case GIT_DELTA_UNREADABLE: return "unreadable";
    case GIT_DELTA_CONFLICTED: return "conflicted";
    case GIT_DELTA_UNMODIFIED: return "unmodified";
  }
  return "unknown";
}

bool OutputBudget::take(const OutputCost& cost) {
  if (truncated_ || !cost.fits_in(remaining_)) {
    truncated_ = true;
    return false;
  }
  remaining_ = remaining_.minus(cost);
  return true;
}

bool OutputBudget::take_element(const json& value) { return take(json_cost(value) + OutputCost{1, 2}); }

}  // namespace mcpd::git
