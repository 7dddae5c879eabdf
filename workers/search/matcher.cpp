#include "matcher.h"

#include <cstring>
#include <stdexcept>
#include <vector>

#include <re2/re2.h>

namespace mcpd::search {

namespace {

// ripgrep's \W, Unicode-aware (RE2's \W is ASCII only).
constexpr const char* kNonWord = R"([^\pL\p{Nl}\pM\p{Nd}\p{Pc}])";

// Decodes one UTF-8 code point at s[i]; returns 0xFFFD on a bad byte. Advances i.
char32_t decode(std::string_view s, std::size_t& i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  int n = c < 0x80 ? 0 : (c >> 5) == 6 ? 1 : (c >> 4) == 14 ? 2 : (c >> 3) == 30 ? 3 : -1;
  if (n < 0 || i + n >= s.size() + (n == 0 ? 1 : 0)) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = n == 0 ? c : n == 1 ? (c & 0x1F) : n == 2 ? (c & 0x0F) : (c & 0x07);
  for (int k = 1; k <= n; ++k) cp = (cp << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
  i += n + 1;
  return cp;
}

bool is_upper(char32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
  // Latin-1, Latin Extended-A (even code points are capitals), Greek and Cyrillic capitals.
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return true;
  if (cp >= 0x100 && cp <= 0x17F) return cp % 2 == 0;
  if (cp >= 0x391 && cp <= 0x3AB) return true;
  if (cp >= 0x400 && cp <= 0x42F) return true;
  return false;
}

// The offset of the last '(' without its ')', for RE2's "missing )" whose argument is the whole
// pattern.
std::size_t unclosed_paren(std::string_view p) {
  std::vector<std::size_t> open;
  bool in_class = false;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (p[i] == '\\') {
      ++i;
    } else if (in_class) {
      if (p[i] == ']') in_class = false;
    } else if (p[i] == '[') {
      in_class = true;
      if (i + 1 < p.size() && p[i + 1] == ']') ++i;
    } else if (p[i] == '(') {
      open.push_back(i);
    } else if (p[i] == ')' && !open.empty()) {
      open.pop_back();
    }
  }
  return open.empty() ? std::string_view::npos : open.back();
}

}  // namespace

bool has_uppercase_literal(std::string_view pattern, bool fixed_strings) {
  for (std::size_t i = 0; i < pattern.size();) {
    if (!fixed_strings && pattern[i] == '\\' && i + 1 < pattern.size()) {
      char e = pattern[i + 1];
      i += 2;
      if ((e == 'p' || e == 'P') && i < pattern.size() && pattern[i] == '{') {
        auto close = pattern.find('}', i);
        i = close == std::string_view::npos ? pattern.size() : close + 1;
      } else if (e == 'p' || e == 'P') {
        ++i;
      }
      continue;
    }
    if (is_upper(decode(pattern, i))) return true;
  }
  return false;
}

Matcher::Matcher(const PatternSpec& spec) : word_(spec.word), max_mem_(spec.max_regex_memory_bytes) {
  if (spec.pattern.empty()) throw std::invalid_argument("pattern is empty; give a regex or a literal to search for");
  case_insensitive_ = spec.case_mode == CaseMode::insensitive ||
                      (spec.case_mode == CaseMode::smart && !has_uppercase_literal(spec.pattern, spec.fixed_strings));
  std::string body = spec.fixed_strings ? RE2::QuoteMeta(spec.pattern) : spec.pattern;
  if (spec.fixed_strings && !case_insensitive_ && !word_ && spec.pattern.find('\n') == std::string::npos)
    literal_ = spec.pattern;
  // Check the pattern alone first, so that an error's position refers to what the user wrote.
  RE2::Options options;
  options.set_log_errors(false);
  options.set_never_nl(true);
  options.set_case_sensitive(!case_insensitive_);
  options.set_max_mem(max_mem_);
  {
    RE2 alone(body, options);
    if (!alone.ok()) {
      if (alone.error_code() == RE2::ErrorPatternTooLarge)
        throw std::invalid_argument("pattern too large: it needs more than " + std::to_string(max_mem_ >> 20) +
                                    " MiB compiled (search.max_regex_memory_bytes)");
      std::string error = alone.error();
      std::string arg = alone.error_arg();
      auto at = arg.empty() ? std::string::npos : spec.pattern.find(arg);
      if (alone.error_code() == RE2::ErrorMissingParen) at = unclosed_paren(spec.pattern);
      std::string where = at == std::string::npos ? "" : " at position " + std::to_string(at + 1);
      throw std::invalid_argument("invalid regex" + where + ": " + error);
    }
  }
  regex_ = "(?m)" + (word_ ? std::string("(?:^|") + kNonWord + ")(" + body + ")(?:" + kNonWord + "|$)" : body);
  re_ = std::make_unique<RE2>(regex_, options);
  if (!re_->ok()) {
    if (re_->error_code() == RE2::ErrorPatternTooLarge)
      throw std::invalid_argument("pattern too large: it needs more than " + std::to_string(max_mem_ >> 20) +
                                  " MiB compiled (search.max_regex_memory_bytes)");
    throw std::invalid_argument("invalid regex: " + re_->error());
  }
}

Matcher::~Matcher() = default;

bool Matcher::any_match(std::string_view text) const {
  if (!literal_.empty())
    return ::memmem(text.data(), text.size(), literal_.data(), literal_.size()) != nullptr;
  return re_->Match(re2::StringPiece(text.data(), text.size()), 0, text.size(), RE2::UNANCHORED, nullptr, 0);
}

void Matcher::for_each_match(std::string_view text,
                             const std::function<bool(std::size_t, std::size_t)>& on_match) const {
  if (!literal_.empty()) {
    std::size_t pos = 0;
    while (pos + literal_.size() <= text.size()) {
      const void* hit = ::memmem(text.data() + pos, text.size() - pos, literal_.data(), literal_.size());
      if (!hit) return;
      std::size_t at = static_cast<const char*>(hit) - text.data();
      if (!on_match(at, at + literal_.size())) return;
      pos = at + literal_.size();
    }
    return;
  }
  re2::StringPiece input(text.data(), text.size());
  re2::StringPiece groups[2];
  int group = word_ ? 1 : 0;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    if (!re_->Match(input, pos, text.size(), RE2::UNANCHORED, groups, group + 1)) return;
    std::size_t begin = groups[group].data() - text.data();
    std::size_t end = begin + groups[group].size();
    if (!on_match(begin, end)) return;
    pos = end > begin ? end : end + 1;
  }
}

}  // namespace mcpd::search
