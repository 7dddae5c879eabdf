#include "glob.h"

#include <stdexcept>

#include <re2/re2.h>

namespace mcpd::search {

namespace {

void append_literal(std::string& out, char c) {
  if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '/' || static_cast<unsigned char>(c) >= 0x80))
    out += '\\';
  out += c;
}

/// How a glob is quoted in an error: its start, so that a huge one does not make a huge message.
std::string shown(std::string_view glob) {
  constexpr std::size_t kShown = 100;
  return glob.size() <= kShown ? std::string(glob) : std::string(glob.substr(0, kShown)) + "...";
}

struct Translation {
  std::string_view g;
  std::string& out;
  const GlobLimits& limits;
  // Once a '[' has no closing ']', no later one has either: they are literals without a scan to
  // the end each, which would be quadratic in a line of '['s.
  bool no_class_closes = false;
};

// Translates glob[i..] up to `stop` (a ',' or '}' inside braces, or the end) and returns where it
// stopped. Recursion is bounded by the brace nesting, itself bounded by limits.max_nesting.
std::size_t translate(Translation& t, std::size_t i, unsigned brace_depth) {
  std::string_view g = t.g;
  std::string& out = t.out;
  while (i < g.size()) {
    char c = g[i];
    if (brace_depth > 0 && (c == ',' || c == '}')) return i;
    if (c == '\\' && i + 1 < g.size()) {
      append_literal(out, g[i + 1]);
      i += 2;
    } else if (c == '*') {
      std::size_t run = 1;
      while (i + run < g.size() && g[i + run] == '*') ++run;
      bool at_start = i == 0 || g[i - 1] == '/';
      bool at_end = i + run == g.size();
      bool before_slash = i + run < g.size() && g[i + run] == '/';
      if (run >= 2 && at_start && before_slash) {
        out += "(?:.*/)?";  // "**/": zero or more directories
        i += run + 1;
      } else if (run >= 2 && at_start && at_end) {
        out += ".*";  // "/**" at the end: everything inside
        i += run;
      } else {
        out += "[^/]*";  // gitignore: any other run of asterisks is one asterisk
        i += run;
      }
    } else if (c == '?') {
      out += "[^/]";
      ++i;
    } else if (c == '[') {
      std::size_t j = i + 1;
      std::string cls = "[";
      if (j < g.size() && (g[j] == '!' || g[j] == '^')) {
        cls += '^';
        ++j;
      }
      bool first = true;
      bool closed = false;
      while (!t.no_class_closes && j < g.size()) {
        char d = g[j];
        if (d == ']' && !first) {
          closed = true;
          break;
        }
        if (d == '\\' && j + 1 < g.size()) {
          cls += '\\';
          cls += g[j + 1];
          j += 2;
        } else {
          if (d == '[' || d == ']' || d == '\\' || d == '^') cls += '\\';
          cls += d;
          ++j;
        }
        first = false;
      }
      if (!closed) {  // an unclosed '[' is a literal
        t.no_class_closes = true;
        append_literal(out, '[');
        ++i;
      } else {
        out += cls + "]";
        i = j + 1;
      }
    } else if (c == '{') {
      if (brace_depth + 1 > t.limits.max_nesting)
        throw std::invalid_argument("glob '" + shown(g) + "' nests braces deeper than " +
                                    std::to_string(t.limits.max_nesting) + " (search.max_glob_nesting)");
      out += "(?:";
      ++i;
      while (true) {
        i = translate(t, i, brace_depth + 1);
        if (i >= g.size()) throw std::invalid_argument("unclosed '{' in glob '" + shown(g) + "'");
        if (g[i] == '}') {
          ++i;
          break;
        }
        out += '|';
        ++i;
      }
      out += ")";
    } else {
      append_literal(out, c);
      ++i;
    }
  }
  return i;
}

}  // namespace

std::string glob_to_regex(std::string_view glob, const GlobLimits& limits) {
  if (glob.size() > limits.max_bytes)
    throw std::invalid_argument("glob '" + shown(glob) + "' is " + std::to_string(glob.size()) +
                                " bytes, over search.max_glob_bytes (" + std::to_string(limits.max_bytes) + ")");
  std::string_view g = glob;
  bool anchored = false;
  if (!g.empty() && g.front() == '/') {
    anchored = true;
    g.remove_prefix(1);
  }
  // A slash anywhere but at the end anchors the glob to its base directory.
  if (!anchored && g.find('/') != std::string_view::npos) anchored = true;
  std::string out;
  if (!anchored && !(g.size() >= 2 && g.substr(0, 2) == "**")) out += "(?:.*/)?";
  Translation t{g, out, limits};
  translate(t, 0, 0);
  return out;
}

Glob::Glob(std::string_view glob, bool case_insensitive, const GlobLimits& limits)
    : regex_(glob_to_regex(glob, limits)) {
  RE2::Options options;
  options.set_case_sensitive(!case_insensitive);
  options.set_dot_nl(true);
  options.set_log_errors(false);
  re_ = std::make_unique<RE2>(regex_, options);
  if (!re_->ok()) throw std::invalid_argument("bad glob '" + shown(glob) + "': " + re_->error());
}

Glob::~Glob() = default;
Glob::Glob(Glob&&) noexcept = default;
Glob& Glob::operator=(Glob&&) noexcept = default;

bool Glob::matches(std::string_view relative_path) const {
  return RE2::FullMatch(re2::StringPiece(relative_path.data(), relative_path.size()), *re_);
}

bool has_glob_meta(std::string_view text) { return text.find_first_of("*?[{") != std::string_view::npos; }

}  // namespace mcpd::search
