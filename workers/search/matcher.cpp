#include "matcher.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>
#include <vector>

#include <re2/filtered_re2.h>
#include <re2/re2.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

namespace mcpd::search {

namespace {

// The longest RE2 error message passed on.
constexpr std::size_t kMaxErrorBytes = 200;

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

// A rough frequency of each byte in source code (higher: more common), to search for a literal by
// its rarest bytes, as ripgrep ranks bytes. For a folded letter both cases count.
int byte_frequency(unsigned char c, bool fold) {
  auto lower = [](unsigned char l) -> int {
    switch (l) {
      case 'e': return 60;
      case 't': return 55;
      case 'a': case 'i': case 'n': case 'o': case 'r': case 's': return 45;
      case 'l': case 'c': case 'd': case 'u': case 'p': case 'm': case 'h': return 30;
      case 'f': case 'g': case 'b': case 'y': case 'w': case 'v': return 15;
      default: return 6;
    }
  };
  if (c >= 'a' && c <= 'z') return lower(c) + (fold ? 10 : 0);
  if (c >= 'A' && c <= 'Z') return fold ? lower(c | 0x20) + 10 : 10;
  switch (c) {
    case ' ': return 100;
    case '\t': return 40;
    case '_': return 30;
    case '(': case ')': case ';': case ',': case '.': case '*': case '=': case '/': case '-': return 15;
    case '#': case '<': case '>': case ':': case '"': case '&': case '{': case '}': case '[': case ']': return 5;
    case '\r': return 5;
    default: return c >= '0' && c <= '9' ? 10 : c >= 0x80 ? 3 : 1;
  }
}

inline unsigned char ascii_lower(unsigned char c) { return c >= 'A' && c <= 'Z' ? c | 0x20 : c; }

bool verify(const Matcher::Literal& lit, const char* at) {
  if (!lit.fold) return std::memcmp(at, lit.text.data(), lit.text.size()) == 0;
  for (std::size_t j = 0; j < lit.text.size(); ++j)
    if (ascii_lower(static_cast<unsigned char>(at[j])) != static_cast<unsigned char>(lit.text[j])) return false;
  return true;
}

// The first start >= from of `lit` in s[0, n), or npos: the bytes at the two rarest positions are
// compared 16 starts at a time, and the few starts where both agree are verified whole.
std::size_t find_literal(const Matcher::Literal& lit, const char* s, std::size_t n, std::size_t from) {
  const std::size_t m = lit.text.size();
  if (n < m || from > n - m) return std::string_view::npos;
  const std::size_t last = n - m;  // the last possible start
  const std::size_t i1 = lit.rare1, i2 = lit.rare2;
  const auto b1 = static_cast<unsigned char>(lit.text[i1]), b2 = static_cast<unsigned char>(lit.text[i2]);
  // Folded letters are lowercase: (c | 0x20) == b holds exactly for b and its uppercase.
  const unsigned char k1 = lit.fold && b1 >= 'a' && b1 <= 'z' ? 0x20 : 0;
  const unsigned char k2 = lit.fold && b2 >= 'a' && b2 <= 'z' ? 0x20 : 0;
  std::size_t pos = from;
#ifdef __SSE2__
  const __m128i v1 = _mm_set1_epi8(static_cast<char>(b1)), v2 = _mm_set1_epi8(static_cast<char>(b2));
  const __m128i m1 = _mm_set1_epi8(static_cast<char>(k1)), m2 = _mm_set1_epi8(static_cast<char>(k2));
  while (pos + 15 <= last) {  // starts pos..pos+15; the loads end at most at last + i + 15 < n
    __m128i c1 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos + i1));
    __m128i c2 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + pos + i2));
    __m128i eq = _mm_and_si128(_mm_cmpeq_epi8(_mm_or_si128(c1, m1), v1), _mm_cmpeq_epi8(_mm_or_si128(c2, m2), v2));
    unsigned mask = static_cast<unsigned>(_mm_movemask_epi8(eq));
    while (mask) {
      std::size_t at = pos + static_cast<std::size_t>(__builtin_ctz(mask));
      if (verify(lit, s + at)) return at;
      mask &= mask - 1;
    }
    pos += 16;
  }
#endif
  for (; pos <= last; ++pos)
    if ((static_cast<unsigned char>(s[pos + i1]) | k1) == b1 && (static_cast<unsigned char>(s[pos + i2]) | k2) == b2 &&
        verify(lit, s + pos))
      return pos;
  return std::string_view::npos;
}

Matcher::Literal make_literal(std::string text, bool fold) {
  Matcher::Literal lit;
  lit.text = std::move(text);
  lit.fold = fold;
  std::size_t best = 0, second = 0;
  int fbest = 1 << 20, fsecond = 1 << 20;
  for (std::size_t j = 0; j < lit.text.size(); ++j) {
    int f = byte_frequency(static_cast<unsigned char>(lit.text[j]), fold);
    if (f < fbest) {
      second = best, fsecond = fbest;
      best = j, fbest = f;
    } else if (f < fsecond) {
      second = j, fsecond = f;
    }
  }
  if (lit.text.size() == 1) second = best;
  lit.rare1 = std::min(best, second);
  lit.rare2 = std::max(best, second);
  return lit;
}

// How many candidate starts a literal lets through, roughly (lower is better).
long literal_cost(const Matcher::Literal& lit) {
  long f1 = byte_frequency(static_cast<unsigned char>(lit.text[lit.rare1]), lit.fold);
  long f2 = lit.rare1 == lit.rare2 ? 100 : byte_frequency(static_cast<unsigned char>(lit.text[lit.rare2]), lit.fold);
  return f1 * f2 * 16 - static_cast<long>(std::min<std::size_t>(lit.text.size(), 15));
}

// Whether the user's pattern could match an ASCII letter of an atom with a non-ASCII character
// (U+212A KELVIN SIGN folds to k, U+017F LONG S to s): case-insensitive matching, an inline (?i),
// or non-ASCII characters and escapes that could name them.
bool may_fold_to_ascii(std::string_view body, bool case_insensitive) {
  if (case_insensitive) return true;
  for (std::size_t i = 0; i < body.size(); ++i) {
    auto c = static_cast<unsigned char>(body[i]);
    if (c >= 0x80) return true;
    if (c == '\\' && i + 1 < body.size()) {
      char e = body[i + 1];
      if (e == 'x' || e == 'p' || e == 'P') return true;
      ++i;
    } else if (c == '(' && i + 1 < body.size() && body[i + 1] == '?') {
      for (std::size_t j = i + 2; j < body.size() && (std::isalpha(static_cast<unsigned char>(body[j])) || body[j] == '-'); ++j)
        if (body[j] == 'i') return true;
    }
  }
  return false;
}

}  // namespace

void Matcher::build_prefilter(bool may_fold) {
  // RE2's prefilter analysis copies a literal run's growing string once per character, quadratic
  // in the run's length: past this size a pattern is run through RE2 alone, whose cost is linear.
  if (regex_.size() > kMaxPrefilterRegexBytes) return;
  RE2::Options options;
  options.set_log_errors(false);
  options.set_never_nl(true);
  options.set_case_sensitive(!case_insensitive_);
  options.set_max_mem(max_mem_);
  re2::FilteredRE2 filter(1);
  int id = 0;
  if (filter.Add(regex_, options, &id) != RE2::NoError) return;
  std::vector<std::string> atoms;
  filter.Compile(&atoms);
  if (atoms.empty()) return;
  // Whether the regex could match a text holding every atom but the `absent` ones.
  auto passes = [&](const std::vector<bool>& absent) {
    std::vector<int> present, out;
    for (std::size_t i = 0; i < atoms.size(); ++i)
      if (!absent[i]) present.push_back(static_cast<int>(i));
    filter.AllPotentials(present, &out);
    return !out.empty();
  };
  // Atoms are lowercase: found folded. Only ASCII ones (a non-ASCII atom is a Unicode lowercasing).
  std::vector<Literal> lits(atoms.size());
  std::vector<bool> usable(atoms.size(), false);
  for (std::size_t i = 0; i < atoms.size(); ++i) {
    const auto& a = atoms[i];
    bool ok = !a.empty() && a.find('\n') == std::string::npos;
    for (unsigned char c : a) ok = ok && c < 0x80;
    if (!ok) continue;
    lits[i] = make_literal(a, true);
    // A single common byte finds nearly every position: worse than RE2 alone.
    usable[i] = a.size() >= 2 || byte_frequency(static_cast<unsigned char>(a[0]), true) <= 5;
  }
  std::vector<bool> absent(atoms.size(), false);
  if (!passes(absent)) return;  // cannot match at all: leave it to RE2
  // Each passes() walks the whole prefilter tree: only the cheapest few atoms are tried, so that
  // a pattern with thousands of atoms costs a bounded number of walks, not one per atom.
  std::vector<std::size_t> tried;
  for (std::size_t i = 0; i < atoms.size(); ++i)
    if (usable[i]) tried.push_back(i);
  std::stable_sort(tried.begin(), tried.end(),
                   [&](std::size_t a, std::size_t b) { return literal_cost(lits[a]) < literal_cost(lits[b]); });
  const bool all_tried = tried.size() <= kMaxPrefilterTrials;
  if (!all_tried) tried.resize(kMaxPrefilterTrials);
  std::vector<std::size_t> chosen;
  // One atom every match needs: the cheapest.
  for (std::size_t i : tried) {
    absent[i] = true;
    bool required = !passes(absent);
    absent[i] = false;
    if (required) {
      chosen = {i};
      break;
    }
  }
  if (chosen.empty()) {
    // Else a small set of atoms of which every match needs one: all usable ones, then drop the
    // costliest while the rest still cover every match.
    if (!all_tried) return;
    std::vector<std::size_t> set = tried;
    for (std::size_t i : set) absent[i] = true;
    if (set.empty() || passes(absent)) return;
    std::sort(set.begin(), set.end(),
              [&](std::size_t a, std::size_t b) { return literal_cost(lits[a]) > literal_cost(lits[b]); });
    for (std::size_t i : set) {
      absent[i] = false;
      if (passes(absent)) absent[i] = true;  // still needed
    }
    for (std::size_t i : set)
      if (absent[i]) chosen.push_back(i);
    if (chosen.empty() || chosen.size() > 8) return;
  }
  bool has_k = false, has_s = false;
  for (std::size_t i : chosen) {
    prefilter_.push_back(lits[i]);
    has_k = has_k || lits[i].text.find('k') != std::string::npos;
    has_s = has_s || lits[i].text.find('s') != std::string::npos;
  }
  if (may_fold) {
    // A match may hold the non-ASCII character in place of the atom's letter: its lines are
    // candidates too.
    if (has_k) prefilter_.push_back(make_literal("\xE2\x84\xAA", false));
    if (has_s) prefilter_.push_back(make_literal("\xC5\xBF", false));
  }
}

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
  RE2::Options options;
  options.set_log_errors(false);
  options.set_never_nl(true);
  options.set_case_sensitive(!case_insensitive_);
  options.set_max_mem(max_mem_);
  regex_ = "(?m)" + (word_ ? std::string("(?:^|") + kNonWord + ")(" + body + ")(?:" + kNonWord + "|$)" : body);
  // Without word wrapping the regex compiles exactly when the pattern does (a flag prefix balances
  // nothing): it is compiled once, and the pattern alone only to explain a failure. Wrapped, the
  // pattern is checked alone first, so that "a)|(b" cannot pass by closing the wrapper's groups.
  if (!word_) re_ = std::make_unique<RE2>(regex_, options);
  if (word_ || !re_->ok()) {
    // Alone, so that an error's position refers to what the user wrote.
    RE2 alone(body, options);
    if (!alone.ok()) {
      if (alone.error_code() == RE2::ErrorPatternTooLarge)
        throw std::invalid_argument("pattern too large: it needs more than " + std::to_string(max_mem_ >> 20) +
                                    " MiB compiled (search.max_regex_memory_bytes)");
      std::string error = alone.error();
      // RE2 quotes the rest of the pattern in some errors ("missing ]: [..."): a long pattern's
      // error is cut, its position says where.
      if (error.size() > kMaxErrorBytes) error = error.substr(0, kMaxErrorBytes) + "...";
      std::string arg = alone.error_arg();
      auto at = arg.empty() ? std::string::npos : spec.pattern.find(arg);
      if (alone.error_code() == RE2::ErrorMissingParen) at = unclosed_paren(spec.pattern);
      std::string where = at == std::string::npos ? "" : " at position " + std::to_string(at + 1);
      throw std::invalid_argument("invalid regex" + where + ": " + error);
    }
  }
  if (word_) re_ = std::make_unique<RE2>(regex_, options);
  if (!re_->ok()) {
    if (re_->error_code() == RE2::ErrorPatternTooLarge)
      throw std::invalid_argument("pattern too large: it needs more than " + std::to_string(max_mem_ >> 20) +
                                  " MiB compiled (search.max_regex_memory_bytes)");
    throw std::invalid_argument("invalid regex: " + re_->error().substr(0, kMaxErrorBytes));
  }
  if (literal_.empty()) build_prefilter(may_fold_to_ascii(body, case_insensitive_));
}

Matcher::~Matcher() = default;

bool Matcher::any_match(std::string_view text) const {
  if (!literal_.empty())
    return ::memmem(text.data(), text.size(), literal_.data(), literal_.size()) != nullptr;
  re2::StringPiece input(text.data(), text.size());
  if (prefilter_.empty()) return re_->Match(input, 0, text.size(), RE2::UNANCHORED, nullptr, 0);
  bool found = false;
  for_each_candidate_line(text, [&](std::size_t line_start, std::size_t line_end) {
    found = re_->Match(input, line_start, line_end, RE2::UNANCHORED, nullptr, 0);
    return !found;
  });
  return found;
}

template <typename OnLine>
void Matcher::for_each_candidate_line(std::string_view text, OnLine&& on_line) const {
  const char* base = text.data();
  const std::size_t n = text.size();
  std::size_t next_single = 0;
  std::vector<std::size_t> next;  // per literal: its next start at or after the resume point
  const bool single = prefilter_.size() == 1;
  if (!single) next.assign(prefilter_.size(), 0);
  std::size_t pos = 0;  // a line start: everything before is done
  bool first = true;
  while (pos <= n) {
    std::size_t hit = std::string_view::npos;
    if (single) {
      if (first || next_single < pos) next_single = find_literal(prefilter_[0], base, n, pos);
      hit = next_single;
    } else {
      for (std::size_t i = 0; i < next.size(); ++i) {
        if (next[i] == std::string_view::npos) continue;
        if (first || next[i] < pos) next[i] = find_literal(prefilter_[i], base, n, pos);
        hit = std::min(hit, next[i]);
      }
    }
    first = false;
    if (hit == std::string_view::npos) return;
    const void* nl = hit > pos ? ::memrchr(base + pos, '\n', hit - pos) : nullptr;
    std::size_t line_start = nl ? static_cast<const char*>(nl) - base + 1 : pos;
    const void* eol = std::memchr(base + hit, '\n', n - hit);
    std::size_t line_end = eol ? static_cast<const char*>(eol) - base : n;
    if (!on_line(line_start, line_end)) return;
    pos = line_end + 1;
  }
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
  if (!prefilter_.empty()) {
    // Only the lines holding a literal: RE2 runs on each such line (the whole text stays its
    // context, for ^, $ and \b), matches never crossing a newline.
    for_each_candidate_line(text, [&](std::size_t line_start, std::size_t line_end) {
      std::size_t pos = line_start;
      while (pos <= line_end) {
        if (!re_->Match(input, pos, line_end, RE2::UNANCHORED, groups, group + 1)) return true;
        std::size_t begin = groups[group].data() - text.data();
        std::size_t end = begin + groups[group].size();
        if (!on_match(begin, end)) return false;
        pos = end > begin ? end : end + 1;
        // A further match holds a literal starting at or after pos: without one, the line is done.
        bool more = false;
        for (const auto& lit : prefilter_)
          if ((more = find_literal(lit, text.data(), line_end, pos) != std::string_view::npos)) break;
        if (!more) return true;
      }
      return true;
    });
    return;
  }
  // As rg (Rust's regex iterator): an empty match right where the previous match ended is not a
  // match ("xx" holds one match of x*, not two).
  std::size_t pos = 0;
  std::size_t previous_end = std::string_view::npos;
  while (pos <= text.size()) {
    if (!re_->Match(input, pos, text.size(), RE2::UNANCHORED, groups, group + 1)) return;
    std::size_t begin = groups[group].data() - text.data();
    std::size_t end = begin + groups[group].size();
    if (begin == end && begin == previous_end) {
      pos = begin + 1;
      continue;
    }
    if (!on_match(begin, end)) return;
    previous_end = end;
    pos = end > begin ? end : end + 1;
  }
}

}  // namespace mcpd::search
