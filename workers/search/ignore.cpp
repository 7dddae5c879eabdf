#include "ignore.h"

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace mcpd::search {

IgnoreRules::IgnoreRules(std::string base, std::string_view text) : base_(std::move(base)) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    add_line(text.substr(start, end - start));
    start = end + 1;
  }
}

IgnoreRules IgnoreRules::from_file(const std::filesystem::path& file, std::string base) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return IgnoreRules(std::move(base), "");
  std::ostringstream text;
  text << in.rdbuf();
  return IgnoreRules(std::move(base), text.str());
}

void IgnoreRules::add_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // Trailing spaces are dropped unless escaped with a backslash.
  while (!line.empty() && line.back() == ' ' && !(line.size() >= 2 && line[line.size() - 2] == '\\'))
    line.remove_suffix(1);
  if (line.empty() || line.front() == '#') return;
  bool negated = false;
  if (line.front() == '!') {
    negated = true;
    line.remove_prefix(1);
  } else if (line.size() >= 2 && line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
    line.remove_prefix(1);
  }
  bool dir_only = false;
  if (!line.empty() && line.back() == '/') {
    dir_only = true;
    line.remove_suffix(1);
  }
  if (line.empty()) return;
  try {
    rules_.push_back(Rule{Glob(line), negated, dir_only});
  } catch (const std::invalid_argument&) {
    // git ignores a line it cannot parse; so do we.
  }
}

Verdict IgnoreRules::match(std::string_view relative, bool is_dir) const {
  for (auto it = rules_.rbegin(); it != rules_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    if (it->glob.matches(relative)) return it->negated ? Verdict::whitelist : Verdict::ignore;
  }
  return Verdict::none;
}

}  // namespace mcpd::search
