#include "parser_settings.h"

#include <array>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace mcpd {

namespace {

// Above these the check no longer keeps the parse stack below tree-sitter 0.20's 65,536 children.
constexpr std::uint64_t kMaxNestingDepthLimit = 4096;
constexpr std::uint64_t kMaxRunTokensLimit = 50000;

enum class Family { json, c_like, python, bash };

bool is_word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' || c >= 0x80;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }

/// One pass over a source, tracking what the parse stack could hold. It errs on the side of
/// counting: a closer that does not match the innermost opener closes nothing, and quoting it
/// cannot tell apart (JavaScript template literals, Bash heredocs) is read as code.
class BoundsScanner {
 public:
  BoundsScanner(const Language& language, std::string_view text, const ParserSettings& settings)
      : text_(text), settings_(settings), name_(language.name) {
    if (name_ == "json") {
      family_ = Family::json;
    } else if (name_ == "python") {
      family_ = Family::python;
    } else if (name_ == "bash") {
      family_ = Family::bash;
    } else {
      family_ = Family::c_like;
    }
  }

  void run() {
    while (i_ < text_.size()) step();
  }

 private:
  std::string_view text_;
  const ParserSettings& settings_;
  std::string_view name_;
  Family family_ = Family::c_like;
  std::size_t i_ = 0;
  std::uint64_t line_ = 1;
  std::vector<char> open_;  // the expected closer of each open level ('f' fi, 'e' esac, 'd' done)
  std::uint64_t run_ = 0, run_line_ = 1;
  std::uint64_t comments_ = 0, comments_line_ = 1;
  std::size_t word_start_ = std::string_view::npos, word_end_ = std::string_view::npos;  // the last word
  char last_ = '\n';  // the last code byte: 'w' for a word or a string
  std::map<std::string, std::size_t> missing_;  // for raw strings and comments
  // By skip_string's key: the earliest start from which that kind of string is known to have no end.
  // A handful of keys ever occur, so a short list beats a 2048-entry table filled on every call.
  std::vector<std::pair<std::size_t, std::size_t>> missing_strings_;
  std::size_t missing_from(std::size_t key) const {
    for (const auto& [k, at] : missing_strings_)
      if (k == key) return at;
    return std::string_view::npos;
  }
  void set_missing_from(std::size_t key, std::size_t at) {
    for (auto& [k, v] : missing_strings_)
      if (k == key) {
        v = at;
        return;
      }
    missing_strings_.emplace_back(key, at);
  }
  std::vector<std::uint64_t> else_chain_;  // by bracket depth: `else` in a row at that level  // closer -> the earliest start it is missing after

  char at(std::size_t k) const { return k < text_.size() ? text_[k] : '\0'; }
  bool rust() const { return name_ == "rust"; }
  bool cpp_or_c() const { return name_ == "c" || name_ == "cpp"; }
  bool js() const { return name_ == "javascript" || name_ == "typescript" || name_ == "tsx"; }

  std::string where(std::uint64_t line) const { return "line " + std::to_string(line); }

  void unit() {
    if (run_ == 0) run_line_ = line_;
    if (++run_ > settings_.max_run_tokens)
      throw ToolError("the source has more than " + std::to_string(settings_.max_run_tokens) +
                      " tokens in a row without a separator (from " + where(run_line_) + " to " + where(line_) +
                      "), more than the parser accepts (parser.max_run_tokens = " +
                      std::to_string(settings_.max_run_tokens) +
                      "): tree-sitter 0.20 corrupts its memory when one node gets 65,536 children");
  }
  void code_unit(char kind = 'w') {
    unit();
    comments_ = 0;
    last_ = kind;
  }
  void comment() {
    unit();
    if (comments_ == 0) comments_line_ = line_;
    if (++comments_ > settings_.max_run_tokens)
      throw ToolError("the source has more than " + std::to_string(settings_.max_run_tokens) +
                      " comments in a row (from " + where(comments_line_) + " to " + where(line_) +
                      "), more than the parser accepts (parser.max_run_tokens = " +
                      std::to_string(settings_.max_run_tokens) +
                      "): tree-sitter 0.20 corrupts its memory when one node gets 65,536 children");
  }
  void separator() { run_ = 0; }
  void open(char closer, std::string_view what) {
    open_.push_back(closer);
    if (else_chain_.size() > open_.size()) else_chain_[open_.size()] = 0;
    if (open_.size() > settings_.max_nesting_depth)
      throw ToolError("the source nests " + std::string(what) + " more than " +
                      std::to_string(settings_.max_nesting_depth) + " levels deep (at " + where(line_) +
                      "), more than the parser accepts (parser.max_nesting_depth = " +
                      std::to_string(settings_.max_nesting_depth) +
                      "): tree-sitter 0.20 corrupts its memory on an unfinished parse that deep");
  }
  void close(char closer) {
    if (!open_.empty() && open_.back() == closer) open_.pop_back();
  }
  void newline() {
    ++line_;
    // A statement ends at the end of its line in Python (outside brackets) and Bash, unless the
    // line is continued with a backslash.
    bool continued = (i_ >= 1 && text_[i_ - 1] == '\\') || (i_ >= 2 && text_[i_ - 1] == '\r' && text_[i_ - 2] == '\\');
    if (continued) return;
    if (family_ == Family::bash || (family_ == Family::python && open_.empty())) separator();
    // Go ends a statement at a newline after a word, a literal or a closing bracket.
    if (name_ == "go" && (last_ == 'w' || last_ == ')' || last_ == ']' || last_ == '}')) separator();
  }

  // The word that ends right before i_, if any.
  std::string_view word_before() const {
    if (word_end_ != i_ || word_start_ == std::string_view::npos) return {};
    return text_.substr(word_start_, word_end_ - word_start_);
  }

  void skip_line_comment() {
    comment();
    while (i_ < text_.size() && text_[i_] != '\n') ++i_;
  }
  void skip_block_comment() {
    std::size_t end = find_unless_known_missing("*/", i_ + 2);
    if (end == std::string_view::npos) return unterminated();
    comment();
    consume_to(end + 2, false);
  }
  /// A quoted string from i_ (the opening quote) up to `quote` repeated `length` times. With
  /// `escapes`, a backslash escapes the next byte; with `one_line`, an unescaped newline ends it
  /// (the parser ends it there too, with an error); with `code_inside`, brackets inside count
  /// (Bash "$(...)", Python f-strings).
  void skip_string(char quote, std::size_t length, bool escapes, bool one_line, bool code_inside) {
    std::size_t key = static_cast<unsigned char>(quote) << 3 | (length == 3) << 2 | escapes << 1 | one_line;
    std::size_t end = std::string_view::npos;
    if (i_ < missing_from(key)) {
      for (std::size_t k = i_ + length; k < text_.size(); ++k) {
        char c = text_[k];
        if (escapes && c == '\\') {
          ++k;
        } else if (c == '\n' && one_line) {
          end = k;  // the newline itself is left for step()
          break;
        } else if (c == quote && (length == 1 || (at(k + 1) == quote && at(k + 2) == quote))) {
          end = k + length;
          break;
        }
      }
    }
    if (end == std::string_view::npos) {
      set_missing_from(key, i_);
      return unterminated();
    }
    code_unit();
    consume_to(end, code_inside);
  }
  /// A raw string that ends at `terminator` (Rust r#"..."#, C++ R"x(...)x", Go `...`).
  void skip_raw(std::size_t open_length, std::string_view terminator) {
    std::size_t end = find_unless_known_missing(terminator, i_ + open_length);
    if (end == std::string_view::npos) return unterminated();
    code_unit();
    consume_to(end + terminator.size(), false);
  }
  /// An opener without its closer: the parser does not see a string or comment there either, so
  /// what follows is read as code, starting right after the opener's first byte.
  void unterminated() {
    code_unit(text_[i_]);
    ++i_;
  }
  /// text_.find(what, from), remembering a miss: a later search for the same thing misses too,
  /// which keeps a source full of unterminated openers linear.
  std::size_t find_unless_known_missing(std::string_view what, std::size_t from) {
    std::string key(what);
    auto known = missing_.find(key);
    if (known != missing_.end() && from >= known->second) return std::string_view::npos;
    std::size_t end = text_.find(what, from);
    if (end == std::string_view::npos) missing_[key] = from;
    return end;
  }
  /// Moves i_ to `end` across a string or comment, counting its lines (and its brackets).
  void consume_to(std::size_t end, bool count_brackets) {
    for (; i_ < end && i_ < text_.size(); ++i_) {
      if (text_[i_] == '\n') ++line_;
      if (count_brackets) bracket(text_[i_]);
    }
  }

  void bracket(char c) {
    switch (c) {
      case '(':
        open(')', "brackets");
        break;
      case '[':
        open(']', "brackets");
        break;
      case '{':
        open('}', "brackets");
        break;
      case ')':
      case ']':
      case '}':
        close(c);
        break;
      default:
        break;
    }
  }

  void bash_word(std::string_view word) {
    // A block keyword counts only where a command starts, so `echo done` closes nothing.
    std::size_t k = word_start_;
    while (k > 0 && is_space(text_[k - 1])) --k;
    char before = k == 0 ? '\n' : text_[k - 1];
    bool command_position = before == '\n' || before == ';' || before == '&' || before == '|' || before == '(' ||
                            before == '{' || before == '!';
    if (!command_position) {
      // `then`, `do` and `else` start commands too.
      std::size_t end = k;
      while (k > 0 && is_word_byte(static_cast<unsigned char>(text_[k - 1]))) --k;
      std::string_view previous = text_.substr(k, end - k);
      command_position = previous == "then" || previous == "do" || previous == "else" || previous == "elif";
    }
    if (!command_position) return;
    if (word == "if") open('f', "if blocks");
    if (word == "case") open('e', "case blocks");
    if (word == "for" || word == "while" || word == "until" || word == "select") open('d', "loops");
    if (word == "fi") close('f');
    if (word == "esac") close('e');
    if (word == "done") close('d');
  }

  /// `if (a) {} else if (b) {} else ...`: each `else` nests the rest of the chain one level deeper,
  /// and the parser holds the whole chain until its end. A statement that starts after a `;` or `}`
  /// at the same level ends the chain.
  void else_word(std::string_view word, char before) {
    std::size_t level = open_.size();
    if (else_chain_.size() <= level) else_chain_.resize(level + 1, 0);
    if (word == "else") {
      if (++else_chain_[level] > settings_.max_nesting_depth)
        throw ToolError("the source chains more than " + std::to_string(settings_.max_nesting_depth) +
                        " `else` branches (at " + where(line_) +
                        "), more than the parser accepts (parser.max_nesting_depth = " +
                        std::to_string(settings_.max_nesting_depth) +
                        "): tree-sitter 0.20 corrupts its memory on an unfinished parse that deep");
    } else if (before == ';' || before == '}') {
      else_chain_[level] = 0;
    }
  }

  void step() {
    char c = text_[i_];
    auto uc = static_cast<unsigned char>(c);
    if (c == '\n') {
      newline();
      ++i_;
      return;
    }
    if (is_space(c)) {
      ++i_;
      return;
    }
    if (is_word_byte(uc)) {
      std::size_t start = i_;
      while (i_ < text_.size() && is_word_byte(static_cast<unsigned char>(text_[i_]))) {
        // C++14 digit separators (1'000'000) are parts of a number.
        ++i_;
        if (cpp_or_c() && at(i_) == '\'' && is_word_byte(static_cast<unsigned char>(at(i_ + 1))) &&
            text_[start] >= '0' && text_[start] <= '9')
          ++i_;
      }
      word_start_ = start;
      word_end_ = i_;
      char before = last_;
      code_unit();
      std::string_view word = text_.substr(start, i_ - start);
      if (family_ == Family::bash) bash_word(word);
      if (family_ == Family::c_like) else_word(word, before);
      return;
    }
    std::string_view word = word_before();
    switch (family_) {
      case Family::json:
        if (c == '"') return skip_string('"', 1, true, true, false);
        if (c == '/' && at(i_ + 1) == '/') return skip_line_comment();
        if (c == '/' && at(i_ + 1) == '*') return skip_block_comment();
        break;
      case Family::c_like:
        if (c == '/' && at(i_ + 1) == '/') return skip_line_comment();
        if (c == '/' && at(i_ + 1) == '*') return skip_block_comment();
        if (c == '"') {
          if (cpp_or_c() && !word.empty() && word.back() == 'R') {
            // R"delimiter( ... )delimiter", the delimiter at most 16 bytes.
            std::size_t paren = text_.substr(i_ + 1, 17).find('(');
            if (paren != std::string_view::npos) {
              paren += i_ + 1;
              std::string terminator = ")" + std::string(text_.substr(i_ + 1, paren - i_ - 1)) + "\"";
              return skip_raw(paren - i_ + 1, terminator);
            }
          }
          if (rust() && (word == "r" || word == "br" || word == "cr")) return skip_raw(1, "\"");
          return skip_string('"', 1, true, !rust(), false);
        }
        if (rust() && c == '#' && (word == "r" || word == "br" || word == "cr")) {
          std::size_t hashes = 0;
          while (at(i_ + hashes) == '#') ++hashes;
          if (at(i_ + hashes) == '"') return skip_raw(hashes + 1, "\"" + std::string(hashes, '#'));
        }
        if (c == '\'') {
          if (js()) return skip_string('\'', 1, true, true, false);
          if (rust()) {
            // A char literal ('x', '\n', '\u{..}', a multibyte character); otherwise a lifetime.
            std::size_t close = at(i_ + 1) == '\\' ? text_.find('\'', i_ + 3) : text_.find('\'', i_ + 1);
            bool literal = close != std::string_view::npos && close > i_ + 1 && close - i_ <= 12 &&
                           text_.substr(i_, close - i_).find('\n') == std::string_view::npos &&
                           (at(i_ + 1) == '\\' || close - i_ <= 5);
            if (literal) {
              code_unit();
              i_ = close + 1;
              return;
            }
            break;
          }
          return skip_string('\'', 1, true, true, false);
        }
        if (c == '`' && name_ == "go") return skip_raw(1, "`");
        break;
      case Family::python:
        if (c == '#') return skip_line_comment();
        if (c == '"' || c == '\'') {
          bool formatted = word.find_first_of("fF") != std::string_view::npos && word.size() <= 3;
          bool triple = at(i_ + 1) == c && at(i_ + 2) == c;
          return skip_string(c, triple ? 3 : 1, true, !triple, formatted);
        }
        break;
      case Family::bash: {
        bool word_start = i_ == 0 || is_space(text_[i_ - 1]) || text_[i_ - 1] == '\n' ||
                          std::string_view(";&|()<>").find(text_[i_ - 1]) != std::string_view::npos;
        if (c == '#' && word_start) return skip_line_comment();
        if (c == '\\') {
          // An escaped byte is a word byte; an escaped newline continues the line.
          code_unit();
          if (at(i_ + 1) == '\n') ++line_;
          i_ += 2;
          return;
        }
        if (c == '\'') return skip_string('\'', 1, i_ > 0 && text_[i_ - 1] == '$', false, false);
        if (c == '"') return skip_string('"', 1, true, false, true);
        break;
      }
    }
    code_unit(c);
    if (c == ';' || c == ',') {
      separator();
    } else {
      bracket(c);
      if (c == '{' || c == '}') separator();
    }
    ++i_;
  }
};

}  // namespace

ParserSettings ParserSettings::from_json(const json& settings) {
  ParserSettings s;
  if (settings.is_null()) return s;
  if (!settings.is_object()) throw std::invalid_argument("parser: must be an object");
  static const std::set<std::string> known = {"isolate_query_compile", "max_nesting_depth", "max_query_bytes",
                                              "max_query_depth", "max_run_tokens", "query_compile_cache_bytes",
                                              "query_compile_timeout_ms"};
  for (const auto& [key, value] : settings.items())
    if (!known.count(key))
      throw std::invalid_argument("parser." + key +
                                  ": unknown setting; known: isolate_query_compile, max_nesting_depth, max_query_bytes, "
                                  "max_query_depth, max_run_tokens, query_compile_cache_bytes, query_compile_timeout_ms");
  auto unsigned_key = [&](const char* key, std::uint64_t minimum, std::uint64_t maximum, std::uint64_t& field) {
    if (!settings.contains(key)) return;
    const json& v = settings[key];
    if (!v.is_number_integer() || v.get<std::int64_t>() < static_cast<std::int64_t>(minimum) ||
        v.get<std::uint64_t>() > maximum)
      throw std::invalid_argument(std::string("parser.") + key + ": must be an integer from " +
                                  std::to_string(minimum) + " to " + std::to_string(maximum));
    field = v.get<std::uint64_t>();
  };
  unsigned_key("max_nesting_depth", 1, kMaxNestingDepthLimit, s.max_nesting_depth);
  unsigned_key("max_run_tokens", 1, kMaxRunTokensLimit, s.max_run_tokens);
  std::uint64_t query_bytes = s.query.max_bytes, query_depth = s.query.max_depth;
  unsigned_key("max_query_bytes", 1, 64ull << 20, query_bytes);
  // tree-sitter's query parser recurses once per level: well below what a thread's stack holds.
  unsigned_key("max_query_depth", 1, 4096, query_depth);
  s.query.max_bytes = static_cast<std::size_t>(query_bytes);
  s.query.max_depth = static_cast<std::size_t>(query_depth);
  if (settings.contains("isolate_query_compile")) {
    if (!settings["isolate_query_compile"].is_boolean())
      throw std::invalid_argument("parser.isolate_query_compile: must be true or false");
    s.query.isolate_compile = settings["isolate_query_compile"].get<bool>();
  }
  unsigned_key("query_compile_timeout_ms", 1, 600000, s.query.compile_timeout_ms);
  std::uint64_t cache_bytes = s.query.compile_cache_bytes;
  unsigned_key("query_compile_cache_bytes", 0, 1ull << 30, cache_bytes);
  s.query.compile_cache_bytes = static_cast<std::size_t>(cache_bytes);
  return s;
}

void check_parse_bounds(const Language& language, std::string_view text, const ParserSettings& settings) {
  BoundsScanner(language, text, settings).run();
}

}  // namespace mcpd
