// search_text and search_files: their schemas, argument checks and cache key. The engine
// (search_engine.h) does the work.
#include "search_tools.h"

#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <thread>

#include "file_types.h"
#include "ignore.h"
#include "roots.h"
#include "search_engine.h"
#include "tree_watcher.h"

namespace mcpd {

namespace {

using search::SearchEngine;
using search::SearchSettings;

bool flag(const json& args, const char* name) {
  if (!args.contains(name) || args[name].is_null()) return false;
  if (!args[name].is_boolean()) throw ToolError(std::string(name) + ": must be true or false");
  return args[name].get<bool>();
}

std::size_t count(const json& args, const char* name, std::size_t fallback, std::size_t maximum) {
  if (!args.contains(name) || args[name].is_null()) return fallback;
  const json& v = args[name];
  if (!v.is_number_integer() || v.get<std::int64_t>() < 0 || v.get<std::uint64_t>() > maximum)
    throw ToolError(std::string(name) + ": must be an integer from 0 to " + std::to_string(maximum));
  return v.get<std::size_t>();
}

std::vector<std::string> strings(const json& args, const char* name) {
  std::vector<std::string> out;
  if (!args.contains(name) || args[name].is_null()) return out;
  const json& v = args[name];
  if (v.is_string()) return {v.get<std::string>()};
  if (!v.is_array()) throw ToolError(std::string(name) + ": must be an array of strings");
  for (const auto& s : v) {
    if (!s.is_string()) throw ToolError(std::string(name) + ": must be an array of strings");
    out.push_back(s.get<std::string>());
  }
  return out;
}

std::string pattern_of(const json& args) {
  if (!args.contains("pattern") || !args["pattern"].is_string())
    throw ToolError("pattern: required, a string");
  return args["pattern"].get<std::string>();
}

/// The path the call searches as given: `path` (absolute or relative to the first root), or the
/// first root.
std::string target_name(const json& args, const std::vector<std::filesystem::path>& roots) {
  if (roots.empty()) throw ToolError("no roots are configured; start mcpd with --root DIR");
  std::string path = roots.front().string();
  if (args.contains("path") && !args["path"].is_null()) {
    if (!args["path"].is_string()) throw ToolError("path: must be a string");
    path = args["path"].get<std::string>();
  }
  return path;
}

/// The directory or regular file the call searches, opened beneath its root; the engine reads
/// everything through it.
OpenedPath open_target(const json& args, const ToolContext& context, PathKind kind) {
  return open_in_roots(target_name(args, context.roots), context, kind);
}

search::WalkFilter filter_of(const json& args, bool globs, const SearchSettings& settings) {
  search::WalkFilter filter;
  filter.hidden = flag(args, "hidden");
  filter.no_ignore = flag(args, "no_ignore");
  filter.limits = settings.ignore_limits();
  if (globs) {
    filter.include = strings(args, "include");
    filter.exclude = strings(args, "exclude");
    std::size_t n = filter.include.size() + filter.exclude.size();
    if (n > settings.max_globs)
      throw ToolError("include/exclude: " + std::to_string(n) + " globs, over search.max_globs (" +
                      std::to_string(settings.max_globs) + "); use fewer, broader globs");
  }
  // A language named twice adds nothing but cost: each is kept once, in the order given.
  std::vector<std::string> types;
  for (auto& t : strings(args, "type")) {
    if (std::find(types.begin(), types.end(), t) != types.end()) continue;
    if (search::type_globs(t).empty())
      throw ToolError("type: unknown language '" + t.substr(0, 100) + "'; supported: " + search::known_types());
    types.push_back(std::move(t));
  }
  filter.types = std::move(types);
  return filter;
}

json common_properties() {
  return {{"pattern", {{"type", "string"}}},
          {"path",
           {{"type", "string"},
            {"description", "A directory or file inside the roots, absolute or relative to the first root "
                            "(default: the first root)."}}},
          {"hidden", {{"type", "boolean"}, {"description", "Include hidden files and directories (rg --hidden)."}}},
          {"no_ignore",
           {{"type", "boolean"}, {"description", "Do not apply .gitignore/.ignore/.rgignore rules (rg --no-ignore)."}}},
          {"type",
           {{"type", "array"},
            {"items", {{"type", "string"}}},
            {"description", "Only files of these languages (rg --type): " + search::known_types() + "."}}},
          {"max_results", {{"type", "integer"}, {"minimum", 0}}}};
}

json stats_schema() {
  return {{"type", "object"},
          {"description", "Files listed, searched, matched, skipped (binary, unreadable, too large, not a regular "
                          "file), bytes read, index use, elapsed_ms."}};
}

Tool base_tool() {
  Tool tool;
  tool.annotations = ToolAnnotations{.read_only = true, .destructive = false, .idempotent = true, .open_world = false};
  tool.cache = CachePolicy::custom;
  tool.default_timeout = std::chrono::seconds(120);
  return tool;
}

/// The cache key's state, kept where the search runs (the worker, or a legacy thread): key() is
/// called before every search and again before each cached copy is served (tool.h), so it must
/// cost little: TreeWatchers of searched directories give one non-blocking read plus a few stat()s
/// of the ignore files above it. changed() is the CacheWatch that tells the coordinator, without
/// being asked, which watched trees changed, so their cached answers go at once.
///
/// Bounded: at most max_trees watchers (one inotify instance each), the least recently used
/// evicted, and a directory below one already watched uses that watcher (its changes are among the
/// ancestor's). Asynchronous: a watcher is created on a background thread (adding a watch to each
/// directory of a big tree takes long); until it is complete every call for that tree returns no
/// key (the result is not cached), so a key only ever stands for a tree all of whose directories
/// were watched before the search ran, and any change after that moves the watcher's generation.
class CacheKeys : public CacheWatch {
 public:
  explicit CacheKeys(SearchSettings settings)
      : settings_(settings), max_watchers_(std::max<std::uint64_t>(1, settings.max_trees)) {}

  /// The searched path, resolved: the tag of its answers (tool.h).
  static std::optional<std::string> target_of(const json& args, const std::vector<std::filesystem::path>& roots) {
    try {
      // Only stat()ed for the key, never opened: the search itself opens its target beneath the roots.
      return resolve_in_roots(target_name(args, roots), roots).string();
    } catch (const std::exception&) {
      return std::nullopt;  // the call will fail; do not cache the failure
    }
  }

  std::vector<std::string> changed() override {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out = std::move(dropped_);
    dropped_.clear();
    for (auto& [root, e] : entries_) {
      if (e.build || !e.watcher) continue;
      e.watcher->drain(nullptr);
      std::uint64_t generation = e.watcher->healthy() ? e.watcher->generation() : ~std::uint64_t{0};
      if (generation != e.reported) {
        e.reported = generation;
        out.push_back(root);
      }
    }
    return out;
  }

  std::optional<std::string> key(const json& args, const std::vector<std::filesystem::path>& roots) {
    auto resolved = target_of(args, roots);
    if (!resolved) return std::nullopt;
    std::string target = std::move(*resolved);
    struct stat st;
    if (::stat(target.c_str(), &st) != 0) return std::nullopt;
    std::string key = target;
    if (!S_ISDIR(st.st_mode)) {
      // One file: its identity and stat. A change within one timestamp tick is possible but the
      // file's size usually tells it too.
      return key + "#" + std::to_string(st.st_ino) + ":" + std::to_string(st.st_size) + ":" +
             std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec);
    }
    std::lock_guard lock(mutex_);
    Entry* entry = usable_watcher(target);
    if (!entry) return std::nullopt;
    key += "#" + std::to_string(entry->id) + ":" + std::to_string(entry->watcher->generation());
    // The ignore rules read from outside the watched tree: the global gitignore, the ignore files
    // above it and its repository's exclude file.
    key += "|" + search::outside_ignore_state(target, settings_.max_file_bytes);
    return key;
  }

 private:
  /// What a background creation hands over.
  struct Build {
    std::mutex mutex;
    bool done = false;
    std::unique_ptr<search::TreeWatcher> watcher;
  };
  struct Entry {
    std::shared_ptr<Build> build;  // while being created
    std::unique_ptr<search::TreeWatcher> watcher;  // once created (null: creation failed)
    std::uint64_t id = 0;
    std::uint64_t last_used = 0;
    std::uint64_t reported = 0;  // the generation changed() last reported
    std::chrono::steady_clock::time_point failed_at{};
  };
  static constexpr auto kRetryFailed = std::chrono::seconds(10);
  static constexpr int kMaxBuilding = 2;

  /// Takes over a finished background creation; true when `e` has a healthy, drained watcher.
  bool ready(Entry& e) {
    if (e.build) {
      // Held here until the lock is released: resetting e.build under its own mutex could free
      // the mutex before it is unlocked.
      std::shared_ptr<Build> build = e.build;
      std::lock_guard lock(build->mutex);
      if (!build->done) return false;
      e.watcher = std::move(build->watcher);
      e.build.reset();
      if (!e.watcher) e.failed_at = std::chrono::steady_clock::now();
    }
    if (!e.watcher) return false;
    e.watcher->drain(nullptr);
    return e.watcher->healthy();
  }

  /// The entry whose complete watcher covers `target` (its own, or an ancestor's whose watches
  /// reach it: no .git on the way down), else nullptr after starting a creation for `target` if
  /// none is under way.
  Entry* usable_watcher(const std::string& target) {
    ++tick_;
    std::string dir = target;
    bool via_git = false;
    while (true) {
      auto it = entries_.find(dir);
      if (it != entries_.end() && !via_git && ready(it->second)) {
        it->second.last_used = tick_;
        return &it->second;
      }
      if (dir == "/" || dir.empty()) break;
      std::size_t slash = dir.rfind('/');
      if (dir.compare(slash + 1, std::string::npos, ".git") == 0) via_git = true;
      dir = slash == 0 ? "/" : dir.substr(0, slash);
    }
    auto it = entries_.find(target);
    if (it != entries_.end()) {
      Entry& e = it->second;
      e.last_used = tick_;
      if (e.build) return nullptr;  // still being created
      if (!e.watcher && std::chrono::steady_clock::now() - e.failed_at < kRetryFailed) return nullptr;
      if (dropped_.size() < 1024) dropped_.push_back(it->first);  // more: left to validation
      entries_.erase(it);  // unhealthy (an overflow, a failed watch) or failed long enough ago: again
    }
    if (*building_ >= kMaxBuilding) return nullptr;  // try again on a later call
    while (entries_.size() >= max_watchers_) {
      auto oldest = entries_.begin();
      for (auto e = entries_.begin(); e != entries_.end(); ++e)
        if (e->second.last_used < oldest->second.last_used) oldest = e;
      if (dropped_.size() < 1024) dropped_.push_back(oldest->first);
      entries_.erase(oldest);  // a creation under way still ends; its watcher is then dropped
    }
    Entry& e = entries_[target];
    e.id = ++next_id_;
    e.last_used = tick_;
    e.build = std::make_shared<Build>();
    ++*building_;
    std::thread([build = e.build, building = building_, target, max_dirs = settings_.max_watched_dirs] {
      std::unique_ptr<search::TreeWatcher> watcher;
      // What escapes a thread ends the process. A failure is a watcher
      // that could not be created (retried later), as when inotify refuses.
      try {
        watcher = search::TreeWatcher::create(target, max_dirs);
      } catch (const std::exception&) {
        watcher.reset();
      }
      {
        std::lock_guard lock(build->mutex);
        build->watcher = std::move(watcher);
        build->done = true;
      }
      --*building;
    }).detach();
    return nullptr;
  }

  SearchSettings settings_;
  std::uint64_t max_watchers_;
  std::mutex mutex_;
  std::map<std::string, Entry> entries_;
  std::shared_ptr<std::atomic<int>> building_ = std::make_shared<std::atomic<int>>(0);
  std::uint64_t next_id_ = 0;
  std::uint64_t tick_ = 0;
  std::vector<std::string> dropped_;  // trees no longer watched, for changed()
};

Tool search_text_tool(std::shared_ptr<SearchEngine> engine, std::shared_ptr<CacheKeys> keys) {
  Tool tool = base_tool();
  tool.name = "search_text";
  tool.title = "Search file contents";
  tool.description =
      "Search the contents of the files under a directory for a regex (RE2 syntax) or a literal, like ripgrep: "
      ".gitignore/.ignore rules and hidden files are honoured, binary files skipped. Matches never span lines. "
      "Results are sorted by path, then offset. Repeated searches of a tree use an index and are fast.";
  json props = common_properties();
  props["pattern"]["description"] = "The regex (RE2 syntax), or with fixed_strings the literal text.";
  props["fixed_strings"] = {{"type", "boolean"}, {"description", "Treat pattern as a literal (rg -F)."}};
  props["case"] = {{"type", "string"},
                   {"enum", {"sensitive", "insensitive", "smart"}},
                   {"description", "Case matching; smart: insensitive unless the pattern has an uppercase letter."}};
  props["word"] = {{"type", "boolean"}, {"description", "Only whole-word matches (rg -w)."}};
  props["include"] = {{"type", "array"},
                      {"items", {{"type", "string"}}},
                      {"description", "Only files matching these globs (rg -g GLOB; gitignore syntax)."}};
  props["exclude"] = {{"type", "array"},
                      {"items", {{"type", "string"}}},
                      {"description", "Skip files and directories matching these globs (rg -g !GLOB)."}};
  props["context_before"] = {{"type", "integer"},
                             {"minimum", 0},
                             {"maximum", 100},
                             {"description", "Lines before each match, in `before` (rg -B)."}};
  props["context_after"] = {{"type", "integer"},
                            {"minimum", 0},
                            {"maximum", 100},
                            {"description", "Lines after each match, in `after` (rg -A)."}};
  props["max_results"]["description"] = "Cap on matches (or files, for output files/count); default 1000.";
  props["max_per_file"] = {{"type", "integer"}, {"minimum", 0}, {"description", "Matching lines per file (rg -m)."}};
  props["max_line_bytes"] = {{"type", "integer"}, {"minimum", 16}, {"description", "Longer lines are cut in text (default 2000)."}};
  props["output"] = {{"type", "string"},
                     {"enum", {"matches", "files", "count"}},
                     {"description", "matches (default), files with matches (rg -l), or counts per file (rg -c)."}};
  tool.input_schema = {{"type", "object"}, {"properties", props}, {"required", {"pattern"}}, {"additionalProperties", false}};
  json match = {{"type", "object"},
                {"properties",
                 {{"path", {{"type", "string"}}},
                  {"line", {{"type", "integer"}}},
                  {"column", {{"type", "integer"}}},
                  {"text", {{"type", "string"}}},
                  {"byte_offset", {{"type", "integer"}}},
                  {"byte_end", {{"type", "integer"}}},
                  {"text_truncated", {{"type", "boolean"}}},
                  {"before", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                  {"after", {{"type", "array"}, {"items", {{"type", "string"}}}}}}},
                {"required", {"path", "line", "column", "text", "byte_offset", "byte_end"}}};
  json count_item = {{"type", "object"},
                     {"properties",
                      {{"path", {{"type", "string"}}}, {"lines", {{"type", "integer"}}}, {"matches", {{"type", "integer"}}}}}};
  json counts = {{"type", "array"}, {"items", count_item}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"root", {{"type", "string"}, {"description", "The searched directory; paths are relative to it."}}},
        {"matches", {{"type", "array"}, {"items", match}}},
        {"files", {{"type", "array"}, {"items", {{"type", "string"}}}}},
        {"counts", counts},
        {"truncated", {{"type", "boolean"}}},
        {"message", {{"type", "string"}}},
        {"stats", stats_schema()}}},
      {"required", {"root", "truncated", "stats"}}};
  tool.cache_key = [keys](const json& args, const std::vector<std::filesystem::path>& roots) {
    return keys->key(args, roots);
  };
  tool.cache_tag = CacheKeys::target_of;
  tool.cache_watch = keys;
  tool.handler = [engine](const json& args, ToolContext& context) {
    search::TextQuery query;
    query.pattern.pattern = pattern_of(args);
    query.pattern.fixed_strings = flag(args, "fixed_strings");
    query.pattern.word = flag(args, "word");
    query.pattern.max_regex_memory_bytes = engine->settings().max_regex_memory_bytes;
    if (args.contains("case") && !args["case"].is_null()) {
      std::string mode = args["case"].is_string() ? args["case"].get<std::string>() : "";
      if (mode == "sensitive") query.pattern.case_mode = search::CaseMode::sensitive;
      else if (mode == "insensitive") query.pattern.case_mode = search::CaseMode::insensitive;
      else if (mode == "smart") query.pattern.case_mode = search::CaseMode::smart;
      else throw ToolError("case: must be \"sensitive\", \"insensitive\" or \"smart\"");
    }
    if (args.contains("output") && !args["output"].is_null()) {
      std::string mode = args["output"].is_string() ? args["output"].get<std::string>() : "";
      if (mode == "matches") query.output = search::OutputMode::matches;
      else if (mode == "files") query.output = search::OutputMode::files;
      else if (mode == "count") query.output = search::OutputMode::count;
      else throw ToolError("output: must be \"matches\", \"files\" or \"count\"");
    }
    query.filter = filter_of(args, true, engine->settings());
    query.context_before = count(args, "context_before", 0, 100);
    query.context_after = count(args, "context_after", 0, 100);
    query.max_results = count(args, "max_results", 1000, 1000000);
    query.max_per_file = count(args, "max_per_file", 0, 1000000);
    query.max_line_bytes = std::max<std::size_t>(16, count(args, "max_line_bytes", 2000, 1 << 24));
    query.max_result_bytes = static_cast<std::size_t>(context.max_result_bytes);
    OpenedPath target = open_target(args, context, PathKind::file_or_directory);
    ToolResult result;
    result.structured = engine->search_text(target, query, context);
    return result;
  };
  return tool;
}

Tool search_files_tool(std::shared_ptr<SearchEngine> engine, std::shared_ptr<CacheKeys> keys) {
  Tool tool = base_tool();
  tool.name = "search_files";
  tool.title = "Find files by name";
  tool.description =
      "Find files under a directory by glob (if the pattern has * ? [ or {; gitignore syntax: without a '/' it "
      "matches the file name at any depth) or else by a case-insensitive fragment of the file name. The same "
      "ignore rules as search_text (rg --files). Sorted by path.";
  json props = common_properties();
  props["pattern"]["description"] = "A glob such as \"*.cpp\" or \"src/**/test_*.py\", or a name fragment.";
  props["max_results"]["description"] = "Cap on files returned; default 1000.";
  tool.input_schema = {{"type", "object"}, {"properties", props}, {"required", {"pattern"}}, {"additionalProperties", false}};
  tool.output_schema = {{"type", "object"},
                        {"properties",
                         {{"root", {{"type", "string"}}},
                          {"files", {{"type", "array"}, {"items", {{"type", "string"}}}}},
                          {"truncated", {{"type", "boolean"}}},
                          {"message", {{"type", "string"}}},
                          {"stats", stats_schema()}}},
                        {"required", {"root", "files", "truncated", "stats"}}};
  tool.cache_key = [keys](const json& args, const std::vector<std::filesystem::path>& roots) {
    return keys->key(args, roots);
  };
  tool.cache_tag = CacheKeys::target_of;
  tool.cache_watch = keys;
  tool.handler = [engine](const json& args, ToolContext& context) {
    search::FilesQuery query;
    query.pattern = pattern_of(args);
    query.filter = filter_of(args, false, engine->settings());
    query.max_results = count(args, "max_results", 1000, 10000000);
    ToolResult result;
    result.structured = engine->search_files(open_target(args, context, PathKind::directory), query, context);
    return result;
  };
  return tool;
}

}  // namespace

std::vector<Tool> search_tools(const json& settings) {
  SearchSettings parsed = SearchSettings::from_json(settings);
  // Constructing the engine starts nothing: threads and watchers appear on the first call, so the
  // coordinator, which builds these tools only for their definitions and cache keys, stays idle.
  auto engine = std::make_shared<SearchEngine>(parsed);
  auto keys = std::make_shared<CacheKeys>(parsed);
  return {search_text_tool(engine, keys), search_files_tool(engine, keys)};
}

Family search_family() {
  Family family;
  family.kind = "search";
  family.instructions =
      "search tools (text by regex or literal, and files by name, under a directory, with gitignore rules)";
  family.singleton = true;  // the trigram index and its watchers live in the one worker
  family.make = [](const json& settings) { return FamilyInstance{search_tools(settings), nullptr, nullptr}; };
  return family;
}

}  // namespace mcpd
