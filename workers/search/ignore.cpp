#include "ignore.h"

#include <fcntl.h>

#include <cstdlib>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "roots.h"

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

namespace {

/// The content of a regular file, "" when it cannot be read: opened without blocking on a FIFO
/// (roots.h open_regular_at), read through the fd, at most `max_bytes`.
std::string read_small_file(int dir_fd, const char* file, std::uint64_t max_bytes) {
  // In the tree the walk reads through directory fds: nothing below `dir_fd` may be a symlink.
  std::uint64_t resolve = dir_fd == AT_FDCWD ? 0 : kResolveBeneath | kResolveNoSymlinks;
  Fd fd;
  struct stat st;
  int err = 0;
  if (open_regular_at(dir_fd, file, resolve, fd, st, err) != OpenStatus::ok) return "";
  std::vector<char> buffer;
  std::size_t size = 0;
  if (read_bounded(fd.get(), st, max_bytes, false, buffer, size) != ReadStatus::ok) return "";
  return std::string(buffer.data(), size);
}

}  // namespace

IgnoreRules IgnoreRules::from_file_at(int dir_fd, const char* file, std::string base, std::uint64_t max_bytes) {
  return IgnoreRules(std::move(base), read_small_file(dir_fd, file, max_bytes));
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

namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return std::string(s);
}

/// core.excludesFile in one git config file (the last one given wins, as in git), "" if none.
std::string excludes_file_in(const std::string& config, const std::string& home, std::uint64_t max_bytes) {
  std::istringstream in(read_small_file(AT_FDCWD, config.c_str(), max_bytes));
  std::string line, section, found;
  while (std::getline(in, line)) {
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t[0] == '[') {
      auto close = t.find(']');
      section = trim(t.substr(1, close == std::string::npos ? std::string::npos : close - 1));
      for (auto& c : section) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      t = close == std::string::npos ? "" : trim(t.substr(close + 1));
      if (t.empty()) continue;
    }
    if (section != "core") continue;
    auto eq = t.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(t.substr(0, eq));
    for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (key != "excludesfile") continue;
    std::string value = trim(t.substr(eq + 1));
    if (auto hash = value.find_first_of("#;"); hash != std::string::npos && value.front() != '"') value = trim(value.substr(0, hash));
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') value = value.substr(1, value.size() - 2);
    if (value.rfind("~/", 0) == 0) value = home.empty() ? "" : home + value.substr(1);
    found = value;
  }
  return found;
}

}  // namespace

std::string global_gitignore_path(std::uint64_t max_bytes) {
  std::string home = env("HOME"), xdg = env("XDG_CONFIG_HOME");
  if (!home.empty()) {
    if (auto p = excludes_file_in(home + "/.gitconfig", home, max_bytes); !p.empty()) return p;
  }
  std::string xdg_dir = !xdg.empty() ? xdg : home.empty() ? "" : home + "/.config";
  if (xdg_dir.empty()) return "";
  if (auto p = excludes_file_in(xdg_dir + "/git/config", home, max_bytes); !p.empty()) return p;
  return xdg_dir + "/git/ignore";
}

}  // namespace mcpd::search
