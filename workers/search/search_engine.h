// The long-lived state of the search worker and the searches that use it. One SearchEngine per
// tool family instance; per searched directory it keeps a Tree: the file listings (per filter),
// an inotify TreeWatcher, and a TrigramIndex built in the background after the first query, so the
// first search costs what an exhaustive one costs and later ones read only candidate files.
//
// Memory stays bounded on any tree: the listings a tree keeps hold at most max_listed_files paths
// together, and a walk that finds more is not kept at all: the search then runs while the walk
// goes ("streamed": each file searched as it is found, only the matches with the smallest paths
// kept, no index), with the same results. The index holds at most max_indexed_files files and
// about max_index_bytes; files beyond are searched every time, and stats.index says how much of
// the tree it covers (indexed_files of files_listed, full).
//
// Deviation from rg (documented in the README): a file with a NUL byte anywhere is binary and is
// skipped whole (counted in stats.binary_skipped). rg reads a file in buffers of about 64 KiB and
// quits at the first buffer holding a NUL, so for a NUL found after the first buffer it still
// reports the matches of the buffers before it (with a "binary file" warning); those matches are
// not returned here. For a NUL within the first 64 KiB both return nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "matcher.h"
#include "roots.h"
#include "tool.h"
#include "walker.h"

namespace mcpd::search {

/// Every knob of the search family, with its default and unit (config key "search").
struct SearchSettings {
  unsigned threads = 0;  // 0: std::thread::hardware_concurrency()
  bool index = true;     // build the trigram index at all
  std::uint64_t max_indexed_files = 500000;
  std::uint64_t max_index_bytes = 1024ull << 20;
  std::uint64_t max_watched_dirs = 100000;
  std::uint64_t max_file_bytes = 1024ull << 20;  // larger files are skipped and counted
  std::int64_t max_regex_memory_bytes = 64 << 20;
  std::uint64_t max_trees = 8;  // directories with their own listing and index, least recent evicted
  std::uint64_t max_listed_files = 1000000;  // paths kept in listings per tree; a larger walk is streamed
  std::uint64_t progress_interval_ms = 250;  // how often a running search reports progress
  std::uint64_t max_pattern_bytes = 256 << 10;  // search_text's pattern; RE2 compiles it in linear time
  std::uint64_t max_globs = 1024;                // include + exclude globs of one call
  std::uint64_t max_glob_bytes = 4096;           // one glob (argument or ignore-file line)
  std::uint64_t max_glob_nesting = 8;            // brace nesting of one glob
  std::uint64_t max_ignore_file_bytes = 1 << 20; // read of one ignore file; the rest is skipped
  std::uint64_t max_ignore_rules = 10000;        // rules of one ignore file; later lines are skipped

  /// Test hooks, never set from JSON: run before each file is searched, or indexed, on the thread
  /// doing it, so that a test can make such a thread throw as only a fault (an allocation
  /// failure) would.
  std::function<void(const std::string& path)> before_search_file, before_index_file;

  /// The bounds a walk applies to globs and ignore files.
  IgnoreLimits ignore_limits() const;

  /// Reads the settings object; throws std::invalid_argument naming the key ("search.threads: ...").
  static SearchSettings from_json(const json& settings);
};

enum class OutputMode { matches, files, count };

/// One search_text call, its arguments validated.
struct TextQuery {
  PatternSpec pattern;
  WalkFilter filter;
  std::size_t context_before = 0, context_after = 0;
  std::size_t max_results = 1000;
  std::size_t max_per_file = 0;  // matching lines per file, 0: no limit
  std::size_t max_line_bytes = 2000;
  OutputMode output = OutputMode::matches;
  // The answer's size bound (the context's max_result_bytes): matches and their context lines are
  // kept only up to about this much, so that context lines times matches cannot grow the worker
  // beyond what the answer could hold anyway. 0: no bound.
  std::size_t max_result_bytes = 0;
};

/// One search_files call.
struct FilesQuery {
  std::string pattern;
  WalkFilter filter;
  std::size_t max_results = 1000;
};

struct Tree;

class SearchEngine {
 public:
  explicit SearchEngine(SearchSettings settings);
  ~SearchEngine();

  /// Searches `target` (opened beneath the roots; a directory or a regular file), reading every file
  /// through its fd. Throws ToolError, ToolCancelled.
  json search_text(const OpenedPath& target, const TextQuery& query, ToolContext& context);
  json search_files(const OpenedPath& dir, const FilesQuery& query, ToolContext& context);

  /// Blocks until the background indexer of `dir` is idle (tests and benchmarks); false if none.
  bool wait_for_index(const std::string& dir);

  const SearchSettings& settings() const { return settings_; }

 private:
  std::shared_ptr<Tree> tree_for(const OpenedPath& dir);
  /// The listing for `filter`, reusing the tree's cached one while its watcher saw no change;
  /// nullptr when the tree has more than max_listed_files such files (then the caller streams).
  /// With `walk_missing`, a listing that is neither cached nor known to overflow is not walked:
  /// *walk_missing is set and nullptr returned (the caller walks and searches at once). `special`
  /// gets the FIFOs, sockets and devices the walk skipped.
  std::shared_ptr<const std::vector<std::string>> listing(Tree& tree, const WalkFilter& filter, ToolContext& context,
                                                          bool& reused, bool* walk_missing = nullptr,
                                                          std::uint64_t* special = nullptr);
  /// Searches while walking. With `tree` (a listing was missing) it also collects the listing, up
  /// to max_listed_files, and on completion caches it and queues its files for the indexer exactly
  /// as a listed search would, so the first query on a tree overlaps its walk with its reads as rg
  /// does instead of waiting for a full listing.
  json stream_text(Tree& tree, const Matcher& matcher, const TextQuery& query, ToolContext& context,
                   std::chrono::steady_clock::time_point started, bool collect_listing);
  json stream_files(Tree& tree, const FilesQuery& query, ToolContext& context,
                    std::chrono::steady_clock::time_point started);

  SearchSettings settings_;
  unsigned threads_;
  std::mutex trees_mutex_;
  std::map<std::string, std::shared_ptr<Tree>> trees_;
  std::uint64_t tick_ = 0;
};

}  // namespace mcpd::search
