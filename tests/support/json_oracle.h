// nlohmann's own parser as the judge of mcpd's JSON fast paths (check_json_text, parse_json_text),
// for the unit tests and the fuzzers alike.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcpd::oracle {

using json = nlohmann::json;

/// What nlohmann's parser takes, with the checks mcpd adds before it: nesting within `max_depth`
/// and no NUL byte (nlohmann's lexer stops at one).
inline bool nlohmann_takes(std::string_view text, std::size_t max_depth) {
  if (text.find('\0') != std::string_view::npos) return false;
  std::size_t depth = 0, deepest = 0;
  bool in_string = false, escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) escaped = false;
      else if (c == '\\') escaped = true;
      else if (c == '"') in_string = false;
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      deepest = std::max(deepest, ++depth);
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return deepest <= max_depth && json::accept(text.begin(), text.end());
}

/// Equal values of equal types all the way down: json's == calls unsigned 1 and signed 1 equal,
/// and 0.0 and -0.0.
inline bool same_value(const json& a, const json& b) {
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    if (a.size() != b.size()) return false;
    for (auto i = a.begin(), j = b.begin(); i != a.end(); ++i, ++j)
      if (i.key() != j.key() || !same_value(*i, *j)) return false;
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t k = 0; k < a.size(); ++k)
      if (!same_value(a[k], b[k])) return false;
    return true;
  }
  if (a.is_number_float()) {
    double x = a.get<double>(), y = b.get<double>();
    return std::memcmp(&x, &y, sizeof x) == 0;
  }
  return a == b;
}

}  // namespace mcpd::oracle
