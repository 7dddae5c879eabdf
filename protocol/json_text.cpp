#include "json_text.h"

#include <cstdint>

namespace mcpd {

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  // Table 3-7 of the Unicode standard ("Well-Formed UTF-8 Byte Sequences"): the second byte's range
  // depends on the lead byte, which is what excludes overlongs, surrogates and values past U+10FFFF.
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    const unsigned char lead = bytes[i];
    if (lead < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = 0;
    unsigned char second_low = 0x80;
    unsigned char second_high = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      length = 2;
    } else if (lead == 0xE0) {
      length = 3;
      second_low = 0xA0;
    } else if ((lead >= 0xE1 && lead <= 0xEC) || lead == 0xEE || lead == 0xEF) {
      length = 3;
    } else if (lead == 0xED) {
      length = 3;
      second_high = 0x9F;
    } else if (lead == 0xF0) {
      length = 4;
      second_low = 0x90;
    } else if (lead >= 0xF1 && lead <= 0xF3) {
      length = 4;
    } else if (lead == 0xF4) {
      length = 4;
      second_high = 0x8F;
    } else {
      return i;  // 0x80..0xC1 (continuation or overlong lead) or 0xF5..0xFF
    }
    if (size - i < length) return i;
    if (bytes[i + 1] < second_low || bytes[i + 1] > second_high) return i;
    for (std::size_t k = 2; k < length; ++k) {
      if (bytes[i + k] < 0x80 || bytes[i + k] > 0xBF) return i;
    }
    i += length;
  }
  return std::nullopt;
}

bool is_valid_utf8(std::string_view text) { return !find_invalid_utf8(text).has_value(); }

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  while (auto bad = find_invalid_utf8(text)) {
    out.append(text.substr(0, *bad)).append("\xEF\xBF\xBD");
    text.remove_prefix(*bad + 1);
  }
  out.append(text);
  return out;
}

namespace {

// Nesting depth of the brackets outside strings. Exact for valid JSON; for invalid JSON any answer
// will do, since the parser rejects it anyway.
bool nests_deeper_than(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  bool in_string = false;
  bool escaped = false;
  for (char c : text) {
    if (in_string) {
      if (escaped) {
        escaped = false;
      } else if (c == '\\') {
        escaped = true;
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return true;
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

// nlohmann prefixes its messages with "[json.exception.parse_error.101] "; users need the rest.
std::string without_exception_tag(std::string_view what) {
  if (!what.empty() && what.front() == '[') {
    auto close = what.find("] ");
    if (close != std::string_view::npos) what.remove_prefix(close + 2);
  }
  return std::string(what);
}

}  // namespace

JsonText parse_json_text(std::string_view text, std::size_t max_depth) {
  JsonText out;
  if (nests_deeper_than(text, max_depth)) {
    out.error = "nesting deeper than " + std::to_string(max_depth) + " levels";
    out.too_deep = true;
    return out;
  }
  try {
    out.value = json::parse(text.begin(), text.end());
    out.ok = true;
  } catch (const json::exception& e) {
    // The parser checks UTF-8 as it reads strings (a byte above 0x7F outside one is a syntax
    // error anyway), so the separate pass runs only to name the offending byte.
    if (auto bad = find_invalid_utf8(text)) out.error = "invalid UTF-8 at byte " + std::to_string(*bad);
    else out.error = without_exception_tag(e.what());
  }
  return out;
}

namespace {

/// A SAX consumer that keeps nothing and refuses to nest deeper than a bound.
struct DepthBoundedCheck {
  std::size_t max_depth, depth = 0;
  bool too_deep = false;
  std::string error;

  bool null() { return true; }
  bool boolean(bool) { return true; }
  bool number_integer(json::number_integer_t) { return true; }
  bool number_unsigned(json::number_unsigned_t) { return true; }
  bool number_float(json::number_float_t, const std::string&) { return true; }
  bool string(std::string&) { return true; }
  bool binary(json::binary_t&) { return true; }
  bool key(std::string&) { return true; }
  bool open() {
    if (++depth <= max_depth) return true;
    too_deep = true;
    return false;
  }
  bool start_object(std::size_t) { return open(); }
  bool start_array(std::size_t) { return open(); }
  bool end_object() { return --depth, true; }
  bool end_array() { return --depth, true; }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) {
    error = without_exception_tag(e.what());
    return false;
  }
};

}  // namespace

std::optional<std::string> check_json_text(std::string_view text, std::size_t max_depth, bool* too_deep) {
  DepthBoundedCheck check{max_depth};
  if (too_deep) *too_deep = false;
  if (json::sax_parse(text.begin(), text.end(), &check)) return std::nullopt;
  if (check.too_deep) {
    if (too_deep) *too_deep = true;
    return "nesting deeper than " + std::to_string(max_depth) + " levels";
  }
  if (auto bad = find_invalid_utf8(text)) return "invalid UTF-8 at byte " + std::to_string(*bad);
  return check.error.empty() ? std::string("not JSON") : check.error;
}

}  // namespace mcpd
