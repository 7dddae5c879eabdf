#include "ignore.h"

#include <sys/stat.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <vector>

#include "roots.h"

#include <re2/re2.h>
#include <re2/set.h>

namespace mcpd::search {

/// The combined matcher: two RE2::Sets, one of the rules that match a path's last component
/// (globs without a '/', matched against the name alone: each anchored at the name's start, so
/// their DFA stays small however many there are; with a "(?:.*/)?" prefix each, thousands of them
/// make a DFA that is rebuilt at every step), one of the rest, matched against the whole path.
/// The rules' own RE2s are compiled only if a set cannot run (its DFA out of memory), then
/// matched one by one.
struct IgnoreRules::Compiled {
  struct Part {
    std::unique_ptr<RE2::Set> building;  // until compile()
    std::unique_ptr<RE2::Set> set;       // null after compile(): empty, or too large to compile
    std::vector<std::size_t> rule_of;    // set index -> rule index
    bool failed = false;                 // too large: the rules are matched one by one
  };
  Part name, path;
  bool ready = false;
  std::once_flag fallback_once;
  std::vector<std::unique_ptr<RE2>> fallback;
};

namespace {

RE2::Options glob_options() {
  RE2::Options options;
  options.set_dot_nl(true);
  options.set_log_errors(false);
  // Room for the DFA of thousands of rules; past it, the rules are matched one by one.
  options.set_max_mem(64 << 20);
  return options;
}

}  // namespace

IgnoreRules::IgnoreRules() = default;
IgnoreRules::~IgnoreRules() = default;
IgnoreRules::IgnoreRules(IgnoreRules&&) noexcept = default;
IgnoreRules& IgnoreRules::operator=(IgnoreRules&&) noexcept = default;

IgnoreRules::IgnoreRules(std::string base, std::string_view text, const IgnoreLimits& limits) : base_(std::move(base)) {
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    add_line(text.substr(start, end - start), limits);
    start = end + 1;
  }
  compile();
}

namespace {

/// The content of a regular file, "" when it cannot be read: opened without blocking on a FIFO
/// (roots.h open_regular_at), read through the fd, at most `max_bytes`; `over` tells that the file
/// holds more (one byte past the limit is read to know, whatever st_size says).
std::string read_small_file(int dir_fd, const char* file, std::uint64_t max_bytes, bool& over) {
  over = false;
  // In the tree the walk reads through directory fds: nothing below `dir_fd` may be a symlink.
  std::uint64_t resolve = dir_fd == AT_FDCWD ? 0 : kResolveBeneath | kResolveNoSymlinks;
  Fd fd;
  struct stat st;
  int err = 0;
  if (open_regular_at(dir_fd, file, resolve, fd, st, err) != OpenStatus::ok) return "";
  const std::uint64_t want = max_bytes == UINT64_MAX ? max_bytes : max_bytes + 1;
  std::string text;
  while (text.size() < want) {
    std::size_t old = text.size();
    std::size_t chunk = static_cast<std::size_t>(std::min<std::uint64_t>(want - old, 64 << 10));
    text.resize(old + chunk);
    ssize_t n = ::read(fd.get(), text.data() + old, chunk);
    if (n < 0 && errno == EINTR) {
      text.resize(old);
      continue;
    }
    if (n < 0) return "";
    text.resize(old + static_cast<std::size_t>(n));
    if (n == 0) break;
  }
  if (text.size() > max_bytes) {
    over = true;
    text.resize(static_cast<std::size_t>(max_bytes));
  }
  return text;
}

}  // namespace

IgnoreRules IgnoreRules::from_file_at(int dir_fd, const char* file, std::string base, const IgnoreLimits& limits) {
  bool over = false;
  std::string text = read_small_file(dir_fd, file, limits.max_file_bytes, over);
  if (over) {
    // The last line read may be cut: it goes with the rest.
    auto nl = text.rfind('\n');
    text.resize(nl == std::string::npos ? 0 : nl);
  }
  IgnoreRules rules(std::move(base), text, limits);
  if (over) ++rules.skipped_;
  return rules;
}

bool IgnoreRules::parse(std::string_view line, const GlobLimits& limits, Rule& rule) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  // Trailing spaces are dropped unless escaped with a backslash.
  while (!line.empty() && line.back() == ' ' && !(line.size() >= 2 && line[line.size() - 2] == '\\'))
    line.remove_suffix(1);
  if (line.empty() || line.front() == '#') return false;
  rule.negated = false;
  if (line.front() == '!') {
    rule.negated = true;
    line.remove_prefix(1);
  } else if (line.size() >= 2 && line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
    line.remove_prefix(1);
  }
  rule.dir_only = false;
  if (!line.empty() && line.back() == '/') {
    rule.dir_only = true;
    line.remove_suffix(1);
  }
  if (line.empty()) return false;
  rule.regex = glob_to_regex(line, limits);
  // "**/x" is "x" at any depth: a name rule too, when x has no '/'. A leading "**" without a
  // slash ("**x") matches top-level paths only, so it stays a path rule.
  std::string_view name = line;
  while (name.size() >= 3 && name.substr(0, 3) == "**/") name.remove_prefix(3);
  rule.name_only = name.find('/') == std::string_view::npos && !(name.size() >= 2 && name.substr(0, 2) == "**");
  if (rule.name_only)  // anchored by the '/', which adds a byte to the limit
    rule.name_regex = glob_to_regex("/" + std::string(name), GlobLimits{limits.max_bytes + 1, limits.max_nesting});
  return true;
}

bool IgnoreRules::add_parsed(Rule&& rule, std::string* error) {
  // Parsed into a set as it is added (a parse, not a compile: cheap), so that a bad rule is
  // refused by itself rather than failing the whole set.
  if (!compiled_ || compiled_->ready) {
    // A rule added after compile() (not done today) rebuilds the sets from the start.
    auto fresh = std::make_unique<Compiled>();
    auto old_rules = std::move(rules_);
    rules_.clear();
    compiled_ = std::move(fresh);
    for (auto& r : old_rules) add_parsed(std::move(r), nullptr);
  }
  auto& part = rule.name_only ? compiled_->name : compiled_->path;
  if (!part.building) part.building = std::make_unique<RE2::Set>(glob_options(), RE2::ANCHOR_BOTH);
  if (part.building->Add(rule.name_only ? rule.name_regex : rule.regex, error) < 0) return false;
  part.rule_of.push_back(rules_.size());
  rules_.push_back(std::move(rule));
  return true;
}

void IgnoreRules::add_line(std::string_view line, const IgnoreLimits& limits) {
  Rule rule;
  try {
    if (!parse(line, limits.glob, rule)) return;
  } catch (const std::invalid_argument&) {
    ++skipped_;  // git ignores a line it cannot parse; so do we, counting it
    return;
  }
  if (rules_.size() >= limits.max_rules || !add_parsed(std::move(rule), nullptr)) ++skipped_;
}

void IgnoreRules::add_rule(std::string_view line, const GlobLimits& limits) {
  Rule rule;
  if (!parse(line, limits, rule)) return;
  std::string error;
  if (!add_parsed(std::move(rule), &error))
    throw std::invalid_argument("bad glob '" + std::string(line.substr(0, 100)) + "': " + error);
}

void IgnoreRules::compile() {
  if (!compiled_) compiled_ = std::make_unique<Compiled>();
  if (compiled_->ready) return;
  for (auto* part : {&compiled_->name, &compiled_->path}) {
    if (part->building && part->building->Compile()) part->set = std::move(part->building);
    else if (part->building) part->failed = true;
    part->building.reset();
  }
  compiled_->ready = true;
}

Verdict IgnoreRules::match(std::string_view relative, bool is_dir) const {
  if (rules_.empty()) return Verdict::none;
  if (!compiled_ || !compiled_->ready) throw std::logic_error("IgnoreRules::match before compile()");
  std::string_view name = relative;
  if (auto slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  // The last matching rule decides: the highest rule index either set reports.
  std::size_t last = 0;  // rule index + 1; 0: none
  bool ran = true;
  std::vector<int> hits;
  for (const auto* part : {&compiled_->name, &compiled_->path}) {
    if (part->failed) ran = false;
    if (!part->set) continue;
    std::string_view text = part == &compiled_->name ? name : relative;
    RE2::Set::ErrorInfo error{};
    hits.clear();
    if (!part->set->Match(re2::StringPiece(text.data(), text.size()), &hits, &error) &&
        error.kind != RE2::Set::kNoError) {
      ran = false;
      break;
    }
    for (int i : hits) {
      std::size_t rule = part->rule_of[static_cast<std::size_t>(i)];
      if (rule + 1 > last && (!rules_[rule].dir_only || is_dir)) last = rule + 1;
    }
  }
  if (ran) return last == 0 ? Verdict::none : rules_[last - 1].negated ? Verdict::whitelist : Verdict::ignore;
  std::call_once(compiled_->fallback_once, [&] {
    for (const auto& rule : rules_) {
      const std::string& regex = rule.name_only ? rule.name_regex : rule.regex;
      compiled_->fallback.push_back(std::make_unique<RE2>(regex, glob_options()));
    }
  });
  for (std::size_t i = rules_.size(); i-- > 0;) {
    if (rules_[i].dir_only && !is_dir) continue;
    const RE2& re = *compiled_->fallback[i];
    std::string_view text = rules_[i].name_only ? name : relative;
    if (re.ok() && RE2::FullMatch(re2::StringPiece(text.data(), text.size()), re))
      return rules_[i].negated ? Verdict::whitelist : Verdict::ignore;
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
  bool over = false;
  std::string text = read_small_file(AT_FDCWD, config.c_str(), max_bytes, over);
  if (over) return "";  // a git config that large is not one
  std::istringstream in(text);
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

namespace {

void append_stat(std::string& out, const std::string& file) {
  struct stat st;
  if (::stat(file.c_str(), &st) != 0) return;
  out += "|" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) +
         "." + std::to_string(st.st_mtim.tv_nsec) + ":" + std::to_string(st.st_ctim.tv_nsec);
}

}  // namespace

std::string outside_ignore_state(const std::string& dir, std::uint64_t max_bytes) {
  // The global gitignore is looked up again each time, as each walk does, so an edit of it or of
  // the git config naming it is seen.
  std::string global = global_gitignore_path(max_bytes);
  std::string out = "g:" + global;
  if (!global.empty()) append_stat(out, global);
  // rg reads its parents' ignore files, and the exclude file of the repository it is in.
  std::string parent = dir;
  while (parent.size() > 1) {
    parent = parent.substr(0, parent.rfind('/'));
    if (parent.empty()) parent = "/";
    for (const char* name : {"/.gitignore", "/.ignore", "/.rgignore", "/.git/info/exclude"})
      append_stat(out, (parent == "/" ? "" : parent) + name);
  }
  return out;
}

}  // namespace mcpd::search
