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
  if (auto bad = find_invalid_utf8(text)) {
    out.error = "invalid UTF-8 at byte " + std::to_string(*bad);
    return out;
  }
  if (nests_deeper_than(text, max_depth)) {
    out.error = "nesting deeper than " + std::to_string(max_depth) + " levels";
    out.too_deep = true;
    return out;
  }
  try {
    out.value = json::parse(text.begin(), text.end());
    out.ok = true;
  } catch (const json::exception& e) {
    out.error = without_exception_tag(e.what());
  }
  return out;
}

}  // namespace mcpd
