#include "json_text.h"

#include <bit>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace mcpd {

namespace {

/// Length of the well-formed UTF-8 sequence whose lead byte (>= 0x80) is at bytes[0], with `size`
/// bytes available; 0 if it is ill-formed. Table 3-7 of the Unicode standard ("Well-Formed UTF-8
/// Byte Sequences"): the second byte's range depends on the lead byte, which is what excludes
/// overlongs, surrogates and values past U+10FFFF.
std::size_t utf8_sequence(const unsigned char* bytes, std::size_t size) {
  const unsigned char lead = bytes[0];
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
    return 0;  // 0x80..0xC1 (continuation or overlong lead) or 0xF5..0xFF
  }
  if (size < length) return 0;
  if (bytes[1] < second_low || bytes[1] > second_high) return 0;
  for (std::size_t k = 2; k < length; ++k)
    if (bytes[k] < 0x80 || bytes[k] > 0xBF) return 0;
  return length;
}

}  // namespace

std::size_t plain_json_prefix(std::string_view text) {
  // Eight bytes at a time: a byte is plain unless it is below 0x20, '"', '\\' or above 0x7F. Each
  // term sets a byte's high bit when that byte is one of them. A borrow starts only at such a
  // byte and runs upward, so it may mark bytes above the first one but never below it: the
  // lowest marked byte is the first byte that is not plain.
  constexpr std::uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  const char* const begin = text.data();
  const char* p = begin;
  const char* const end = begin + text.size();
  while (end - p >= 8) {
    std::uint64_t word;
    std::memcpy(&word, p, 8);
    if constexpr (std::endian::native == std::endian::big) word = __builtin_bswap64(word);
    const std::uint64_t special =
        ((word - 0x20 * ones) | ((word ^ ('"' * ones)) - ones) | ((word ^ ('\\' * ones)) - ones) | word) & highs;
    if (special) return static_cast<std::size_t>(p - begin) + static_cast<std::size_t>(std::countr_zero(special) / 8);
    p += 8;
  }
  while (p != end) {
    const auto c = static_cast<unsigned char>(*p);
    if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
    ++p;
  }
  return static_cast<std::size_t>(p - begin);
}

std::optional<std::size_t> find_invalid_utf8(std::string_view text) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t size = text.size();
  std::size_t i = 0;
  while (i < size) {
    if (bytes[i] < 0x80) {
      ++i;
      continue;
    }
    std::size_t length = utf8_sequence(bytes + i, size - i);
    if (length == 0) return i;
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

/// nlohmann's parser behind the checks it lacks: for the texts the fast path refuses, whose
/// messages say what nlohmann found.
JsonText parse_with_nlohmann(std::string_view text, std::size_t max_depth) {
  JsonText out;
  if (nests_deeper_than(text, max_depth)) {
    out.error = "nesting deeper than " + std::to_string(max_depth) + " levels";
    out.too_deep = true;
    return out;
  }
  // nlohmann's lexer takes a NUL byte as the end of its input, so "{}\0anything" would pass; a NUL
  // is never valid JSON text (inside a string it must be escaped).
  if (const void* nul = std::memchr(text.data(), '\0', text.size())) {
    out.error = "syntax error: NUL byte at byte " + std::to_string(static_cast<const char*>(nul) - text.data());
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

/// Moves `p` past JSON's blanks (space, tab, newline, carriage return).
template <typename Byte>
void skip_json_blanks(const Byte*& p, const Byte* end) {
  while (p != end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
}

/// Moves `p` past `word` if the text goes on with it.
template <typename Byte>
bool take_literal(const Byte*& p, const Byte* end, std::string_view word) {
  if (static_cast<std::size_t>(end - p) < word.size() || std::memcmp(p, word.data(), word.size()) != 0) return false;
  p += word.size();
  return true;
}

/// The four hex digits of a "\u" escape at `p`, as a code unit, moving `p` past them; -1 (and `p`
/// unmoved) if they are not there. For both readers below, one on bytes and one on chars.
template <typename Byte>
long hex_unit(const Byte*& p, const Byte* end) {
  if (end - p < 4) return -1;
  long value = 0;
  for (int i = 0; i < 4; ++i) {
    const auto c = static_cast<unsigned char>(p[i]);
    if (c >= '0' && c <= '9') value = value * 16 + (c - '0');
    else if (c >= 'a' && c <= 'f') value = value * 16 + (c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') value = value * 16 + (c - 'A' + 10);
    else return -1;
  }
  p += 4;
  return value;
}

/// RFC 8259's grammar, checked in one pass without building anything: the coordinator's check of
/// the bytes a worker hands it to pass on (a result's raw part). nlohmann's SAX parser would do
/// the same job at about ten times the cost, building a std::string for every token. Iterative,
/// so depth costs memory in `open`, never stack. As strict as nlohmann's parser: UTF-8 checked
/// inside strings, \u escapes of surrogates only in pairs.
class JsonChecker {
 public:
  JsonChecker(std::string_view text, std::size_t max_depth)
      : begin_(reinterpret_cast<const unsigned char*>(text.data())), p_(begin_), end_(begin_ + text.size()),
        max_depth_(max_depth) {}

  std::optional<std::string> run(bool* too_deep) {
    std::string open;  // '{' or '[' per level
    for (;;) {
      // A value.
      skip_blanks();
      if (p_ == end_) return fail("unexpected end of input; expected a value");
      unsigned char c = *p_;
      if (c == '{' || c == '[') {
        if (open.size() >= max_depth_) {
          if (too_deep) *too_deep = true;
          return "nesting deeper than " + std::to_string(max_depth_) + " levels";
        }
        open.push_back(static_cast<char>(c));
        ++p_;
        skip_blanks();
        if (p_ != end_ && *p_ == (c == '{' ? '}' : ']')) {
          open.pop_back();
          ++p_;
        } else if (c == '{') {
          if (auto error = member_name()) return error;
          continue;
        } else {
          continue;
        }
      } else if (c == '"') {
        if (auto error = string()) return error;
      } else if (c == 't') {
        if (!literal("true")) return fail("invalid literal; expected 'true'");
      } else if (c == 'f') {
        if (!literal("false")) return fail("invalid literal; expected 'false'");
      } else if (c == 'n') {
        if (!literal("null")) return fail("invalid literal; expected 'null'");
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (auto error = number()) return error;
      } else {
        return c >= 0x80 ? utf8_error() : fail("unexpected character; expected a value");
      }
      // After a value: a separator, the end of containers, or the end of the text.
      for (;;) {
        skip_blanks();
        if (open.empty()) {
          if (p_ != end_) return fail("unexpected character after the JSON value");
          return std::nullopt;
        }
        if (p_ == end_) return fail("unexpected end of input inside an object or array");
        const char close = open.back() == '{' ? '}' : ']';
        if (*p_ == close) {
          open.pop_back();
          ++p_;
          continue;
        }
        if (*p_ != ',') return fail(open.back() == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
        ++p_;
        if (open.back() == '{') {
          skip_blanks();
          if (auto error = member_name()) return error;
        }
        break;  // the next value
      }
    }
  }

 private:
  std::string fail(const char* what) const {
    return std::string("syntax error at byte ") + std::to_string(p_ - begin_) + ": " + what;
  }
  std::string utf8_error() const { return "invalid UTF-8 at byte " + std::to_string(p_ - begin_); }

  void skip_blanks() { skip_json_blanks(p_, end_); }
  bool literal(std::string_view word) { return take_literal(p_, end_, word); }

  /// A member's name and its colon, leaving p_ at its value.
  std::optional<std::string> member_name() {
    if (p_ == end_ || *p_ != '"') return fail("expected a member name (a string)");
    if (auto error = string()) return error;
    skip_blanks();
    if (p_ == end_ || *p_ != ':') return fail("expected ':' after a member name");
    ++p_;
    return std::nullopt;
  }

  long unit() { return hex_unit(p_, end_); }

  std::optional<std::string> string() {
    ++p_;  // the opening quote
    for (;;) {
      // The common case first: a run of plain ASCII.
      p_ += plain_json_prefix({reinterpret_cast<const char*>(p_), static_cast<std::size_t>(end_ - p_)});
      if (p_ == end_) return fail("unexpected end of input inside a string");
      unsigned char c = *p_;
      if (c == '"') {
        ++p_;
        return std::nullopt;
      }
      if (c < 0x20) return fail("control character in a string; it must be escaped");
      if (c >= 0x80) {
        std::size_t length = utf8_sequence(p_, static_cast<std::size_t>(end_ - p_));
        if (length == 0) return utf8_error();
        p_ += length;
        continue;
      }
      // A backslash.
      ++p_;
      if (p_ == end_) return fail("unexpected end of input inside a string");
      c = *p_++;
      if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' || c == 't') continue;
      if (c != 'u') return fail("invalid escape in a string");
      long first = unit();
      if (first < 0) return fail("\\u must be followed by 4 hex digits");
      if (first >= 0xDC00 && first <= 0xDFFF) return fail("a low surrogate escape without a high one before it");
      if (first >= 0xD800 && first <= 0xDBFF) {
        if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return fail("a high surrogate escape without a low one");
        p_ += 2;
        long second = unit();
        if (second < 0xDC00 || second > 0xDFFF) return fail("a high surrogate escape without a low one");
      }
    }
  }

  std::optional<std::string> number() {
    auto digits = [this] {
      const unsigned char* start = p_;
      while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
      return p_ != start;
    };
    const unsigned char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_) return fail("invalid number; expected a digit");
    if (*p_ == '0') ++p_;
    else if (!digits()) return fail("invalid number; expected a digit");
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      if (!digits()) return fail("invalid number; expected a digit after '.'");
    }
    bool exponent = p_ != end_ && (*p_ == 'e' || *p_ == 'E');
    if (exponent) {
      ++p_;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return fail("invalid number; expected a digit in the exponent");
    }
    // Past a double's range is fine by the grammar, but nlohmann's parser (and so our clients'
    // parsers) refuse it: so do we. Only an exponent or over 308 digits can get there.
    if (exponent || p_ - start > 308) {
      std::string copy(reinterpret_cast<const char*>(start), static_cast<std::size_t>(p_ - start));
      if (std::isinf(std::strtod(copy.c_str(), nullptr))) return fail("number out of range");
    }
    return std::nullopt;
  }

  const unsigned char* const begin_;
  const unsigned char* p_;
  const unsigned char* const end_;
  const std::size_t max_depth_;
};

}  // namespace

std::optional<std::string> check_json_text(std::string_view text, std::size_t max_depth, bool* too_deep) {
  if (too_deep) *too_deep = false;
  return JsonChecker(text, max_depth).run(too_deep);
}

namespace {

/// Builds a value in one pass, checking as it goes exactly what JsonChecker checks; at the first
/// fault it gives up (nullopt), and the caller asks nlohmann's parser what is wrong. It makes what
/// nlohmann's parser makes: an integer without '-' that fits is unsigned, one with '-' signed,
/// anything else a double; a repeated member name keeps the last value. Iterative, as the checker.
class DomBuilder {
 public:
  DomBuilder(std::string_view text, std::size_t max_depth)
      : p_(text.data()), end_(text.data() + text.size()), max_depth_(max_depth) {}

  std::optional<json> run() {
    json root;
    std::vector<json*> open;  // the containers being filled, innermost last
    json* slot = &root;       // where the next value goes
    for (;;) {
      skip_blanks();
      if (p_ == end_) return std::nullopt;
      const char c = *p_;
      if (c == '{' || c == '[') {
        if (open.size() >= max_depth_) return std::nullopt;
        ++p_;
        *slot = c == '{' ? json::object() : json::array();
        open.push_back(slot);
        skip_blanks();
        if (p_ != end_ && *p_ == (c == '{' ? '}' : ']')) {
          ++p_;
          open.pop_back();
        } else {
          slot = next_slot(*open.back());
          if (!slot) return std::nullopt;
          continue;
        }
      } else if (c == '"') {
        auto text = string();
        if (!text) return std::nullopt;
        *slot = std::move(*text);
      } else if (c == 't') {
        if (!literal("true")) return std::nullopt;
        *slot = true;
      } else if (c == 'f') {
        if (!literal("false")) return std::nullopt;
        *slot = false;
      } else if (c == 'n') {
        if (!literal("null")) return std::nullopt;
        *slot = nullptr;
      } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (!number(*slot)) return std::nullopt;
      } else {
        return std::nullopt;
      }
      // After a value: close what ends here, then the next slot of the innermost container.
      for (;;) {
        skip_blanks();
        if (open.empty()) {
          if (p_ != end_) return std::nullopt;
          return root;
        }
        if (p_ == end_) return std::nullopt;
        const bool object = open.back()->is_object();
        if (*p_ == (object ? '}' : ']')) {
          ++p_;
          open.pop_back();
          continue;
        }
        if (*p_ != ',') return std::nullopt;
        ++p_;
        slot = next_slot(*open.back());
        if (!slot) return std::nullopt;
        break;
      }
    }
  }

 private:
  void skip_blanks() { skip_json_blanks(p_, end_); }
  bool literal(std::string_view word) { return take_literal(p_, end_, word); }

  /// A new element of `container`, after reading its member name and colon if it is an object;
  /// nullptr if they are not there.
  json* next_slot(json& container) {
    if (container.is_array()) {
      auto& array = container.get_ref<json::array_t&>();
      array.emplace_back();
      return &array.back();
    }
    skip_blanks();
    if (p_ == end_ || *p_ != '"') return nullptr;
    auto name = string();
    if (!name) return nullptr;
    skip_blanks();
    if (p_ == end_ || *p_ != ':') return nullptr;
    ++p_;
    json& member = container.get_ref<json::object_t&>()[std::move(*name)];
    member = json();  // a repeated name starts over
    return &member;
  }

  long unit() { return hex_unit(p_, end_); }

  static void append_utf8(std::string& out, unsigned long code) {
    if (code < 0x80) {
      out += static_cast<char>(code);
    } else if (code < 0x800) {
      out += static_cast<char>(0xC0 | (code >> 6));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else if (code < 0x10000) {
      out += static_cast<char>(0xE0 | (code >> 12));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (code >> 18));
      out += static_cast<char>(0x80 | ((code >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((code >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (code & 0x3F));
    }
  }

  std::optional<std::string> string() {
    ++p_;  // the opening quote
    std::string out;
    for (;;) {
      const std::size_t plain = plain_json_prefix({p_, static_cast<std::size_t>(end_ - p_)});
      out.append(p_, plain);
      p_ += plain;
      if (p_ == end_) return std::nullopt;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return out;
      }
      if (c < 0x20) return std::nullopt;  // a control character must be escaped
      if (c >= 0x80) {
        const std::size_t length =
            utf8_sequence(reinterpret_cast<const unsigned char*>(p_), static_cast<std::size_t>(end_ - p_));
        if (length == 0) return std::nullopt;
        out.append(p_, length);
        p_ += length;
        continue;
      }
      // A backslash.
      if (end_ - p_ < 2) return std::nullopt;
      const char escape = p_[1];
      p_ += 2;
      switch (escape) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          long code = unit();
          if (code < 0 || (code >= 0xDC00 && code <= 0xDFFF)) return std::nullopt;
          if (code >= 0xD800 && code <= 0xDBFF) {
            if (end_ - p_ < 2 || p_[0] != '\\' || p_[1] != 'u') return std::nullopt;
            p_ += 2;
            long low = unit();
            if (low < 0xDC00 || low > 0xDFFF) return std::nullopt;
            code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
          }
          append_utf8(out, static_cast<unsigned long>(code));
          break;
        }
        default: return std::nullopt;
      }
    }
  }

  bool digits() {
    const char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  /// RFC 8259's number into `slot`, as nlohmann reads it; false if it is not one, or is past a
  /// double's range (which nlohmann's parser refuses).
  bool number(json& slot) {
    const char* start = p_;
    if (*p_ == '-') ++p_;
    if (p_ == end_) return false;
    if (*p_ == '0') ++p_;
    else if (!digits()) return false;
    bool integral = true;
    if (p_ != end_ && *p_ == '.') {
      ++p_;
      integral = false;
      if (!digits()) return false;
    }
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      integral = false;
      if (p_ != end_ && (*p_ == '+' || *p_ == '-')) ++p_;
      if (!digits()) return false;
    }
    if (integral) {
      if (*start == '-') {
        std::int64_t value = 0;
        if (std::from_chars(start, p_, value).ec == std::errc()) {
          slot = value;
          return true;
        }
      } else {
        std::uint64_t value = 0;
        if (std::from_chars(start, p_, value).ec == std::errc()) {
          slot = value;
          return true;
        }
      }
    }
    // A fraction, an exponent, or an integer past 64 bits: a double, as strtod reads it.
    const std::string copy(start, p_);
    const double value = std::strtod(copy.c_str(), nullptr);
    if (std::isinf(value)) return false;
    slot = value;
    return true;
  }

  const char* p_;
  const char* const end_;
  const std::size_t max_depth_;
};

}  // namespace

JsonText parse_json_text(std::string_view text, std::size_t max_depth) {
  // One pass that builds the value and checks the text as JsonChecker does, at a small part of
  // nlohmann's cost. A text it refuses goes through nlohmann's parser, whose message says what
  // is wrong.
  auto value = DomBuilder(text, max_depth).run();
  if (!value) return parse_with_nlohmann(text, max_depth);
  JsonText out;
  out.value = std::move(*value);
  out.ok = true;
  return out;
}

void append_json_string(std::string& out, std::string_view text) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  std::size_t run = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out.append(text.data() + run, i - run);
    run = i + 1;
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        out += "\\u00";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
    }
  }
  out.append(text.data() + run, text.size() - run);
  out += '"';
}


void append_json_text(std::string& out, std::string_view text) {
  const std::size_t plain = plain_json_prefix(text);
  if (plain == text.size()) {
    out += '"';
    out += text;
    out += '"';
    return;
  }
  // Invalid UTF-8 is rare (a quoted binary file): nlohmann's replace handler has the last word on
  // how it is mended, so such a string goes through it.
  if (find_invalid_utf8(text.substr(plain))) {
    out += json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
    return;
  }
  append_json_string(out, text);
}

void append_json(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, member] : value.get_ref<const json::object_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json_text(out, key);
        out += ':';
        append_json(out, member);
      }
      out += '}';
      return;
    }
    case json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& element : value.get_ref<const json::array_t&>()) {
        if (!first) out += ',';
        first = false;
        append_json(out, element);
      }
      out += ']';
      return;
    }
    case json::value_t::string: append_json_text(out, value.get_ref<const std::string&>()); return;
    case json::value_t::boolean: out += value.get<bool>() ? "true" : "false"; return;
    case json::value_t::null: out += "null"; return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: {
      char digits[24];
      auto end = value.is_number_unsigned()
                     ? std::to_chars(digits, digits + sizeof digits, value.get<std::uint64_t>()).ptr
                     : std::to_chars(digits, digits + sizeof digits, value.get<std::int64_t>()).ptr;
      out.append(digits, end);
      return;
    }
    default:
      // Floating point (nlohmann's shortest round-trip form, "1.0" for integral values), binary
      // and discarded values: rare on the hot paths, so nlohmann writes them.
      out += value.dump(-1, ' ', false, json::error_handler_t::replace);
      return;
  }
}

std::string dump_json(const json& value) {
  std::string out;
  append_json(out, value);
  return out;
}

}  // namespace mcpd
