#include "search_engine.h"

#include "ignore.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <set>
#include <stdexcept>
#include <thread>

#include "glob.h"
#include "json_text.h"
#include "roots.h"
#include "thread_errors.h"
#include "tree_watcher.h"
#include "trigram_index.h"

namespace mcpd::search {

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t mtime_ns(const struct stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

enum class FileRead { ok, unreadable, too_large, not_regular, binary };

/// Reads the regular file open as `fd` into `buffer` (grown, never shrunk), bounded by
/// `max_bytes` whatever fstat says, stopping at the first chunk holding a NUL (binary).
FileRead read_opened(int fd, const struct stat& st, std::vector<char>& buffer, std::size_t& size,
                     std::uint64_t max_bytes, std::uint64_t& bytes_read) {
  switch (read_bounded(fd, st, max_bytes, true, buffer, size, &bytes_read)) {
    case ReadStatus::ok: return FileRead::ok;
    case ReadStatus::too_large: return FileRead::too_large;
    case ReadStatus::binary: return FileRead::binary;
    case ReadStatus::error: break;
  }
  return FileRead::unreadable;
}

/// Opens `rel` beneath the tree's directory fd and reads it as read_opened does. No component may
/// be a symlink (the walker follows none, so one found there was swapped in after the walk), and a
/// FIFO or socket swapped in is refused without blocking (roots.h RegularOpen::nonblocking: the
/// walker listed a regular file here, and this is the read of every searched file).
FileRead read_file(int dir_fd, const std::string& rel, std::vector<char>& buffer, std::size_t& size,
                   std::uint64_t max_bytes, std::uint64_t& bytes_read, struct stat* st_out = nullptr) {
  Fd fd;
  struct stat st;
  int err = 0;
  switch (open_regular_at(dir_fd, rel.c_str(), kResolveBeneath | kResolveNoSymlinks, fd, st, err,
                          RegularOpen::nonblocking)) {
    case OpenStatus::ok: break;
    case OpenStatus::not_regular: return FileRead::not_regular;
    default: return FileRead::unreadable;
  }
  if (st_out) *st_out = st;
  return read_opened(fd.get(), st, buffer, size, max_bytes, bytes_read);
}

/// The stat of `rel` beneath `dir_fd` with no symlink on the way, as read_file would find it.
bool stat_beneath(int dir_fd, const std::string& rel, struct stat& st) {
  Fd fd(openat_beneath(dir_fd, rel.c_str(), O_PATH, kResolveBeneath | kResolveNoSymlinks));
  return fd && ::fstat(fd.get(), &st) == 0;
}

/// Runs `work` on its own thread and, while it runs, calls `report` every `interval_ms` from this
/// one (progress callbacks must come from the handler's thread).
void run_reporting(const std::function<void()>& work, const std::function<void()>& report, std::uint64_t interval_ms) {
  auto done = std::async(std::launch::async, work);
  while (done.wait_for(std::chrono::milliseconds(interval_ms)) != std::future_status::ready) report();
  done.get();
}

/// Says, once per walk, that ignore-file lines were skipped (bad globs, over a limit), so that a
/// hostile repository's ignore files are visible rather than silently half-applied.
void log_skipped(const WalkCounters& counters, const std::string& dir, const ToolContext& context) {
  std::uint64_t skipped = counters.ignore_lines_skipped.load();
  if (skipped && context.log)
    context.log("warning", "skipped " + std::to_string(skipped) + " ignore-file line(s) under '" + dir +
                               "': bad globs or over search.max_glob_bytes, max_glob_nesting, "
                               "max_ignore_rules or max_ignore_file_bytes");
}

std::string join(const std::string& dir, const std::string& rel) {
  return dir == "/" ? "/" + rel : dir + "/" + rel;
}

std::string relative(const std::string& path, const std::string& root) {
  if (path.size() <= root.size()) return "";
  return root == "/" ? path.substr(1) : path.substr(root.size() + 1);
}

struct MatchRecord {
  std::uint64_t line = 0, column = 0, begin = 0, end = 0;
  std::string text;
  bool text_cut = false;
  std::vector<std::string> before, after;
};

enum class FileStatus : std::uint8_t { pending, pruned, searched, binary, unreadable, too_large, special };

struct FileResult {
  FileStatus status = FileStatus::pending;
  std::uint64_t bytes_read = 0;
  bool stale = false;  // stat mode: pruned by an index entry whose stat no longer holds
  std::vector<MatchRecord> matches;
  std::uint64_t lines = 0, count = 0;  // matching lines, matches
  std::uint64_t bytes = 0;  // what the matches hold (texts and context lines), as the answer counts them
};

std::string line_text(std::string_view line, std::size_t max_bytes, bool& cut) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  cut = line.size() > max_bytes;
  if (cut) line = line.substr(0, max_bytes);
  return replace_invalid_utf8(line);
}

/// Searches one file's bytes, filling `out`. `limit` bounds the units (matches, or 1 for files
/// mode) kept, to stop early on a file with millions of matches.
void search_content(std::string_view text, const Matcher& matcher, const TextQuery& query, std::size_t limit,
                    FileResult& out) {
  if (query.output == OutputMode::files) {
    if (matcher.any_match(text)) {
      out.lines = out.count = 1;
    }
    return;
  }
  std::size_t counted_to = 0;
  std::uint64_t line_no = 1;
  std::size_t current_line_start = std::string_view::npos;
  std::size_t current_line_end = 0;  // the current line's '\n' (or text.size()), once known
  const char* base = text.data();
  matcher.for_each_match(text, [&](std::size_t begin, std::size_t end) {
    // Matches come in order: one on the current line needs no search for its start (a line with
    // many matches would else be scanned back once per match).
    std::size_t line_start;
    if (current_line_start != std::string_view::npos && begin >= current_line_start && begin <= current_line_end) {
      line_start = current_line_start;
    } else {
      std::size_t floor = current_line_start == std::string_view::npos ? 0 : counted_to;
      const void* nl = begin > floor ? ::memrchr(base + floor, '\n', begin - floor) : nullptr;
      line_start = nl ? static_cast<const char*>(nl) - base + 1 : floor;
      const void* eol = ::memchr(base + begin, '\n', text.size() - begin);
      current_line_end = eol ? static_cast<const char*>(eol) - base : text.size();
    }
    if (line_start != current_line_start) {
      if (query.max_per_file && out.lines == query.max_per_file) return false;
      if (query.output != OutputMode::count) line_no += std::count(base + counted_to, base + line_start, '\n');
      counted_to = line_start;
      current_line_start = line_start;
      ++out.lines;
    }
    if (begin == text.size() && begin == line_start && begin > 0) {
      // An empty match after the final newline is on no line (rg reports none).
      --out.lines;
      return false;
    }
    ++out.count;
    if (query.output == OutputMode::count) return true;
    if (out.matches.size() >= limit) return false;
    std::size_t line_end = current_line_end;
    MatchRecord m;
    m.line = line_no;
    m.column = begin - line_start + 1;
    m.begin = begin;
    m.end = end;
    m.text = line_text(text.substr(line_start, line_end - line_start), query.max_line_bytes, m.text_cut);
    std::size_t s = line_start;
    for (std::size_t k = 0; k < query.context_before && s > 0; ++k) {
      const void* prev = s >= 2 ? ::memrchr(base, '\n', s - 1) : nullptr;
      std::size_t ps = prev ? static_cast<const char*>(prev) - base + 1 : 0;
      bool cut;
      m.before.insert(m.before.begin(), line_text(text.substr(ps, s - 1 - ps), query.max_line_bytes, cut));
      s = ps;
    }
    std::size_t e = line_end;
    for (std::size_t k = 0; k < query.context_after && e < text.size() && e + 1 < text.size(); ++k) {
      std::size_t ns = e + 1;
      const void* next = ::memchr(base + ns, '\n', text.size() - ns);
      std::size_t ne = next ? static_cast<const char*>(next) - base : text.size();
      bool cut;
      m.after.push_back(line_text(text.substr(ns, ne - ns), query.max_line_bytes, cut));
      e = ne;
    }
    out.bytes += m.text.size() + 120;
    for (const auto& b : m.before) out.bytes += b.size() + 4;
    for (const auto& a : m.after) out.bytes += a.size() + 4;
    out.matches.push_back(std::move(m));
    // Past the answer's size the collector cuts anyway (it sees this last match cross it).
    return !(query.max_result_bytes && out.bytes > query.max_result_bytes);
  });
}

/// What the stats say about the files of one search.
struct Counts {
  std::size_t searched = 0, matched = 0, binary = 0, unreadable = 0, too_large = 0, pruned = 0, special = 0;
  std::uint64_t bytes_read = 0;
  void add(const FileResult& r) {
    bytes_read += r.bytes_read;
    switch (r.status) {
      case FileStatus::searched: ++searched; if (r.count || r.lines) ++matched; break;
      case FileStatus::binary: ++binary; break;
      case FileStatus::unreadable: ++unreadable; break;
      case FileStatus::too_large: ++too_large; break;
      case FileStatus::pruned: ++pruned; break;
      case FileStatus::special: ++special; break;
      default: break;
    }
  }
};

/// Reads and searches one file into `r` (status and matches): `rel` beneath `dir_fd`, or the file
/// already open as `opened` (a search of one file). `limit` as for search_content.
void search_file(int dir_fd, const std::string& rel, const OpenedPath* opened, const Matcher& matcher,
                 const TextQuery& query, std::size_t limit, std::uint64_t max_file_bytes, std::vector<char>& buffer,
                 FileResult& r) {
  std::size_t size = 0;
  FileRead read = opened ? read_opened(opened->fd.get(), opened->st, buffer, size, max_file_bytes, r.bytes_read)
                         : read_file(dir_fd, rel, buffer, size, max_file_bytes, r.bytes_read);
  switch (read) {
    case FileRead::ok: break;
    case FileRead::unreadable: r.status = FileStatus::unreadable; return;
    case FileRead::too_large: r.status = FileStatus::too_large; return;
    case FileRead::not_regular: r.status = FileStatus::special; return;
    // A NUL anywhere makes the file binary, skipped whole (the deviation from rg in the header);
    // reading stopped at the chunk that held it.
    case FileRead::binary: r.status = FileStatus::binary; return;
  }
  std::string_view text(buffer.data(), size);
  r.status = FileStatus::searched;
  search_content(text, matcher, query, limit, r);
}

}  // namespace


/// The state kept for one searched directory.
struct Tree {
  std::string root;
  Fd fd;  // the directory `root` named when the tree was made; every read goes through it
  dev_t dev = 0;
  ino_t ino = 0;
  std::uint64_t last_used = 0;
  std::mutex mutex;  // guards everything below
  std::unique_ptr<TreeWatcher> watcher;
  bool watcher_failed = false;  // inotify impossible here: index entries are checked by stat
  TrigramIndex index;
  std::uint64_t max_indexed_files = 0, max_index_bytes = 0;
  bool index_full = false;  // reached a limit; cleared once removals bring it under 90% of both
  std::string index_error;  // why the indexer thread ended early (it threw), shown in stats
  struct Listing {
    std::uint64_t generation;
    std::shared_ptr<const std::vector<std::string>> files;
    std::uint64_t special;  // FIFOs, sockets and devices the walk skipped
  };
  std::map<std::string, Listing> listings;
  std::map<std::string, std::chrono::steady_clock::time_point> streamed;  // filters whose walk overflowed, when
  // The indexer's batch in flight: what changed while it read (a file is stale only if touched).
  bool batch_open = false;
  bool batch_reset = false;  // the index was reset, or too much changed to tell: redo the batch
  std::vector<TreeWatcher::Change> batch_changes;
  std::deque<std::string> queue;
  std::set<std::string> queued;
  std::set<std::string> unindexable;  // binary, unreadable, too large, KELVIN SIGN: searched every time
  bool indexing = false;
  bool stopping = false;
  std::condition_variable wake, idle;
  std::thread indexer;

  /// Applies the watcher's news to the index and listings. Caller holds `mutex`.
  void refresh() {
    if (!watcher) return;
    std::vector<TreeWatcher::Change> changes;
    if (watcher->drain(&changes) == 0) return;
    if (!watcher->healthy()) {
      // Events were lost: nothing the index says can be trusted. Start over with a new watcher.
      watcher.reset();
      index.clear();
      listings.clear();
      unindexable.clear();
      index_full = !index_error.empty();  // a failed indexer is gone: nothing may be queued for it
      batch_reset = true;
      return;
    }
    for (const auto& change : changes) {
      std::string rel = relative(change.path, root);
      index.remove(rel, change.is_dir);
      if (change.is_dir) unindexable.clear();
      else unindexable.erase(rel);
    }
    if (batch_open && !batch_reset) {
      if (batch_changes.size() + changes.size() > 4096) batch_reset = true;
      else batch_changes.insert(batch_changes.end(), changes.begin(), changes.end());
    }
    if (index_full && index.files() < max_indexed_files / 10 * 9 && index.bytes() < max_index_bytes / 10 * 9)
      index_full = false;
  }

  /// Whether a change recorded while the batch was read touches `rel`. Caller holds `mutex`.
  bool touched(const std::string& rel) const {
    if (batch_reset) return true;
    for (const auto& c : batch_changes) {
      std::string changed = relative(c.path, root);
      if (changed == rel) return true;
      if (c.is_dir && (changed.empty() || (rel.size() > changed.size() && rel.compare(0, changed.size(), changed) == 0 &&
                                           rel[changed.size()] == '/')))
        return true;
    }
    return false;
  }

  ~Tree() {
    {
      std::lock_guard lock(mutex);
      stopping = true;
    }
    wake.notify_all();
    if (indexer.joinable()) indexer.join();
  }
};

SearchSettings SearchSettings::from_json(const json& settings) {
  SearchSettings s;
  if (settings.is_null()) return s;
  if (!settings.is_object()) throw std::invalid_argument("search: must be an object");
  auto unsigned_key = [&](const char* key, std::uint64_t minimum, std::uint64_t maximum, auto& field) {
    if (!settings.contains(key)) return;
    const json& v = settings[key];
    if (!v.is_number_integer() || v.get<std::int64_t>() < static_cast<std::int64_t>(minimum) ||
        v.get<std::uint64_t>() > maximum)
      throw std::invalid_argument(std::string("search.") + key + ": must be an integer from " +
                                  std::to_string(minimum) + " to " + std::to_string(maximum));
    field = static_cast<std::remove_reference_t<decltype(field)>>(v.get<std::uint64_t>());
  };
  static const std::set<std::string> known = {"threads",          "index",          "max_indexed_files",
                                              "max_index_bytes",  "max_watched_dirs", "max_file_bytes",
                                              "max_regex_memory_bytes", "max_trees", "max_listed_files",
                                              "progress_interval_ms", "max_pattern_bytes", "max_globs",
                                              "max_glob_bytes", "max_glob_nesting", "max_ignore_file_bytes",
                                              "max_ignore_rules"};
  for (const auto& [key, value] : settings.items())
    if (!known.count(key)) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw std::invalid_argument("search." + key + ": unknown setting; known: " + list);
    }
  unsigned_key("threads", 0, 256, s.threads);
  unsigned_key("max_indexed_files", 0, 1ull << 31, s.max_indexed_files);
  unsigned_key("max_index_bytes", 0, 1ull << 40, s.max_index_bytes);
  unsigned_key("max_watched_dirs", 0, 10000000, s.max_watched_dirs);
  unsigned_key("max_file_bytes", 1, 1ull << 40, s.max_file_bytes);
  unsigned_key("max_regex_memory_bytes", 1 << 20, 1ull << 32, s.max_regex_memory_bytes);
  unsigned_key("max_trees", 1, 1024, s.max_trees);
  unsigned_key("max_listed_files", 1, 1ull << 31, s.max_listed_files);
  unsigned_key("progress_interval_ms", 1, 60000, s.progress_interval_ms);
  unsigned_key("max_pattern_bytes", 1, 1ull << 30, s.max_pattern_bytes);
  unsigned_key("max_globs", 1, 1ull << 24, s.max_globs);
  unsigned_key("max_glob_bytes", 1, 1ull << 20, s.max_glob_bytes);
  unsigned_key("max_glob_nesting", 1, 64, s.max_glob_nesting);
  unsigned_key("max_ignore_file_bytes", 1, 1ull << 30, s.max_ignore_file_bytes);
  unsigned_key("max_ignore_rules", 1, 1ull << 24, s.max_ignore_rules);
  if (settings.contains("index")) {
    if (!settings["index"].is_boolean()) throw std::invalid_argument("search.index: must be true or false");
    s.index = settings["index"].get<bool>();
  }
  return s;
}

IgnoreLimits SearchSettings::ignore_limits() const {
  IgnoreLimits limits;
  limits.glob.max_bytes = static_cast<std::size_t>(max_glob_bytes);
  limits.glob.max_nesting = static_cast<unsigned>(max_glob_nesting);
  limits.max_file_bytes = max_ignore_file_bytes;
  limits.max_rules = static_cast<std::size_t>(max_ignore_rules);
  return limits;
}

SearchEngine::SearchEngine(SearchSettings settings) : settings_(settings) {
  threads_ = settings_.threads ? settings_.threads : std::max(1u, std::thread::hardware_concurrency());
}

SearchEngine::~SearchEngine() = default;

std::shared_ptr<Tree> SearchEngine::tree_for(const OpenedPath& dir) {
  std::lock_guard lock(trees_mutex_);
  auto& tree = trees_[dir.display];
  // Another directory under the same name (the old one moved away, a new one made): a new tree.
  if (tree && (tree->dev != dir.st.st_dev || tree->ino != dir.st.st_ino)) tree.reset();
  if (!tree) {
    tree = std::make_shared<Tree>();
    tree->root = dir.display;
    tree->fd = Fd(::fcntl(dir.fd.get(), F_DUPFD_CLOEXEC, 0));
    if (!tree->fd) throw ToolError("cannot search '" + dir.display + "': " + std::strerror(errno));
    tree->dev = dir.st.st_dev;
    tree->ino = dir.st.st_ino;
    tree->max_indexed_files = settings_.max_indexed_files;
    tree->max_index_bytes = settings_.max_index_bytes;
  }
  tree->last_used = ++tick_;
  if (trees_.size() > settings_.max_trees) {
    auto oldest = std::min_element(trees_.begin(), trees_.end(),
                                   [](const auto& a, const auto& b) { return a.second->last_used < b.second->last_used; });
    trees_.erase(oldest);
  }
  return tree;
}

namespace {

/// Keeps a fresh walk's listing, only if nothing changed while walking (the watcher would have
/// said so), and only max_listed_files paths in all of the tree's listings together. Caller holds
/// tree.mutex; `generation` is the watcher's when the walk started.
void cache_listing(Tree& tree, const std::string& key, std::uint64_t generation,
                   const std::shared_ptr<const std::vector<std::string>>& shared, std::uint64_t max_listed_files,
                   std::uint64_t special) {
  if (!tree.watcher) return;
  tree.refresh();
  if (!tree.watcher || tree.watcher->generation() != generation) return;
  tree.listings.erase(key);
  std::size_t held = 0;
  for (const auto& [k, l] : tree.listings) held += l.files->size();
  while (!tree.listings.empty() && (tree.listings.size() >= 16 || held + shared->size() > max_listed_files)) {
    held -= tree.listings.begin()->second.files->size();
    tree.listings.erase(tree.listings.begin());
  }
  tree.listings[key] = {generation, shared, special};
}

}  // namespace

std::shared_ptr<const std::vector<std::string>> SearchEngine::listing(Tree& tree, const WalkFilter& filter,
                                                                      ToolContext& context, bool& reused,
                                                                      bool* walk_missing, std::uint64_t* special) {
  // What the walk reads from outside the tree is no watcher's: a listing is reused only while
  // that is unchanged too.
  std::string key = filter.key() + '\x1d' + outside_ignore_state(tree.root, settings_.max_file_bytes);
  std::uint64_t generation = 0;
  bool no_index = false;
  {
    std::lock_guard lock(tree.mutex);
    tree.refresh();
    no_index = tree.index.files() == 0;
    if (tree.watcher) {
      generation = tree.watcher->generation();
      auto it = tree.listings.find(key);
      if (it != tree.listings.end() && it->second.generation == generation) {
        reused = true;
        if (special) *special = it->second.special;
        return it->second.files;
      }
    }
    // A walk that overflowed is not tried again for a while: the tree is that large.
    auto it = tree.streamed.find(key);
    if (it != tree.streamed.end()) {
      if (Clock::now() - it->second < std::chrono::minutes(5)) return nullptr;
      tree.streamed.erase(it);
    }
  }
  reused = false;
  if (walk_missing && no_index) {  // with an index, a listing lets it prune
    *walk_missing = true;
    return nullptr;
  }
  WalkCounters counters;
  CancelToken cancel = context.cancel;
  std::function<bool()> cancelled = [cancel] { return cancel.cancelled(); };
  std::vector<std::string> files;
  bool overflow = false;
  WalkFilter bounded = filter;
  bounded.max_file_bytes = settings_.max_file_bytes;
  try {
    run_reporting(
        [&] {
          files = walk_files(tree.fd.get(), tree.root, bounded, threads_, counters, cancelled,
                             settings_.max_listed_files, &overflow);
        },
        [&] {
          context.report(0, 0,
                         "listing files: " + std::to_string(counters.files.load()) + " found in " +
                             std::to_string(counters.directories.load()) + " directories");
        },
        settings_.progress_interval_ms);
  } catch (const std::invalid_argument& e) {
    throw ToolError(e.what());
  }
  context.check_cancelled();
  log_skipped(counters, tree.root, context);
  if (overflow) {
    std::lock_guard lock(tree.mutex);
    if (tree.streamed.size() > 16) tree.streamed.clear();
    tree.streamed[key] = Clock::now();
    return nullptr;
  }
  auto shared = std::make_shared<const std::vector<std::string>>(std::move(files));
  if (special) *special = counters.special.load();
  std::lock_guard lock(tree.mutex);
  cache_listing(tree, key, generation, shared, settings_.max_listed_files, counters.special.load());
  return shared;
}

namespace {

// The background indexer of one tree: sets up the watcher before it reads anything, then indexes
// the queued files in batches, reading again the files of a batch that an event touched while the
// batch was being read (only those: a busy build directory elsewhere in the tree must not starve
// the index).
void index_files(Tree* tree, const SearchSettings& settings) {
  std::vector<char> buffer;
  std::unique_lock lock(tree->mutex);
  // Started by a query before it answers: let it answer first rather than compete with it for
  // the cores (the watcher's thousands of inotify_add_watch calls and the reads come after).
  tree->wake.wait_for(lock, std::chrono::milliseconds(50), [&] { return tree->stopping; });
  while (true) {
    tree->indexing = false;
    tree->idle.notify_all();
    tree->wake.wait(lock, [&] { return tree->stopping || !tree->queue.empty(); });
    if (tree->stopping) return;
    tree->indexing = true;
    if (!tree->watcher && !tree->watcher_failed) {
      lock.unlock();
      auto watcher = TreeWatcher::create(tree->root, settings.max_watched_dirs, tree->fd.get());
      lock.lock();
      if (watcher) {
        tree->watcher = std::move(watcher);
        tree->listings.clear();  // listed before the watch: not covered by its generation
      } else {
        tree->watcher_failed = true;
      }
    }
    tree->refresh();
    std::vector<std::string> batch;
    while (!tree->queue.empty() && batch.size() < 64) {
      batch.push_back(std::move(tree->queue.front()));
      tree->queue.pop_front();
    }
    bool stat_mode = !tree->watcher;
    tree->batch_open = true;
    tree->batch_reset = false;
    tree->batch_changes.clear();
    lock.unlock();
    struct Indexed {
      std::string path;
      std::vector<std::uint32_t> trigrams;
      struct stat st;
    };
    std::vector<Indexed> done;
    std::vector<std::string> skipped;
    auto now = std::chrono::system_clock::now().time_since_epoch();
    auto now_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(now).count();
    for (auto& rel : batch) {
      std::size_t size = 0;
      struct stat st;
      std::uint64_t bytes_read = 0;
      if (settings.before_index_file) settings.before_index_file(join(tree->root, rel));
      // Binary (never searched anyway), too large, unreadable, or no longer a regular file (a FIFO
      // is never opened for reading, so it cannot stall the indexer): not indexed.
      if (read_file(tree->fd.get(), rel, buffer, size, settings.max_file_bytes, bytes_read, &st) != FileRead::ok) {
        skipped.push_back(std::move(rel));
        continue;
      }
      std::string_view content(buffer.data(), size);
      // Without inotify only the stat guards the entry; a change within the timestamp's
      // granularity would go unseen, so recently modified files wait (git's "racy" rule).
      if (stat_mode && now_ns - mtime_ns(st) < 2'000'000'000) continue;
      bool indexable = false;
      auto trigrams = TrigramIndex::trigrams_of(content, indexable);
      if (!indexable) {
        skipped.push_back(std::move(rel));
        continue;
      }
      done.push_back({std::move(rel), std::move(trigrams), st});
    }
    lock.lock();
    tree->refresh();
    tree->batch_open = false;
    // What changed while we read may be stale: read it again (it stays in `queued`).
    for (auto& d : done) {
      if (tree->touched(d.path)) {
        tree->queue.push_back(std::move(d.path));
        continue;
      }
      tree->queued.erase(d.path);
      if (tree->index_full || tree->index.files() >= settings.max_indexed_files ||
          tree->index.bytes() >= settings.max_index_bytes) {
        tree->index_full = true;
        continue;
      }
      tree->index.add(d.path, d.trigrams, static_cast<std::uint64_t>(d.st.st_size), mtime_ns(d.st), d.st.st_ino);
    }
    for (auto& rel : skipped) {
      if (tree->touched(rel)) {
        tree->queue.push_back(std::move(rel));
        continue;
      }
      tree->queued.erase(rel);
      tree->unindexable.insert(rel);
    }
    for (auto& rel : batch)  // what was not moved out: the racy ones (stat mode), queued again by a later query
      if (!rel.empty()) tree->queued.erase(rel);
    tree->batch_changes.clear();
    if (tree->index_full) {
      tree->queue.clear();
      tree->queued.clear();
    }
  }
}

void run_indexer(Tree* tree, SearchSettings settings) {
  FirstError error;
  error.run([&] { index_files(tree, settings); });
  if (!error.failed()) return;
  std::string what = "unknown error";
  try {
    error.rethrow();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  // The index only prunes: searches go on without it. It stays full for good (a zero file limit
  // is never under 90%), so nothing more is queued for an indexer that is gone.
  std::lock_guard lock(tree->mutex);
  tree->index_error = "the indexer stopped: " + what;
  tree->index_full = true;
  tree->max_indexed_files = 0;
  tree->queue.clear();
  tree->queued.clear();
  tree->batch_open = false;
  tree->indexing = false;
  tree->idle.notify_all();
}

json stats_json(const Counts& c, std::size_t listed, std::size_t candidates, bool index_used, std::size_t indexed,
                std::size_t pending, bool index_full, bool listing_reused, bool streamed, double elapsed_ms) {
  return {{"files_listed", listed},
          {"files_searched", c.searched},
          {"files_matched", c.matched},
          {"binary_skipped", c.binary},
          {"unreadable_skipped", c.unreadable},
          {"too_large_skipped", c.too_large},
          {"special_skipped", c.special},
          {"bytes_read", c.bytes_read},
          {"streamed", streamed},
          {"index",
           {{"used", index_used},
            {"candidates", candidates},
            {"pruned", c.pruned},
            {"indexed_files", indexed},
            {"pending_files", pending},
            {"full", index_full},
            {"listing_reused", listing_reused}}},
          {"elapsed_ms", elapsed_ms}};
}

/// One matched file as the collector sees it.
struct Hit {
  const std::string* path;
  const FileResult* result;
};

/// Turns the matched files, in path order, into the answer's list up to the caps; sets
/// `truncated` and `message` when it cut.
json collect(const std::vector<Hit>& hits, const TextQuery& query, const ToolContext& context, bool& truncated,
             std::string& message) {
  const std::size_t cap = query.max_results;
  const std::size_t byte_budget = context.max_result_bytes / 2 > 4096 ? context.max_result_bytes / 2 - 4096 : 1024;
  std::size_t bytes = 0, kept = 0;
  json list = json::array();
  for (const Hit& hit : hits) {
    if (truncated) break;
    const FileResult& r = *hit.result;
    std::string path = replace_invalid_utf8(*hit.path);
    if (query.output == OutputMode::files || query.output == OutputMode::count) {
      if (kept == cap) {
        truncated = true;
        message = "stopped at max_results (" + std::to_string(cap) + " files); narrow the search or raise max_results";
        break;
      }
      bytes += path.size() + 40;
      if (bytes > byte_budget) {
        truncated = true;
        message = "stopped at " + std::to_string(kept) + " files to stay under the result size limit";
        break;
      }
      if (query.output == OutputMode::files)
        list.push_back(path);
      else
        list.push_back({{"path", path}, {"lines", r.lines}, {"matches", r.count}});
      ++kept;
      continue;
    }
    for (const auto& m : r.matches) {
      if (kept == cap) {
        truncated = true;
        message = "stopped at max_results (" + std::to_string(cap) + " matches); narrow the search or raise max_results";
        break;
      }
      std::size_t size = path.size() + m.text.size() + 120;
      for (const auto& b : m.before) size += b.size() + 4;
      for (const auto& a : m.after) size += a.size() + 4;
      if (bytes + size > byte_budget) {
        truncated = true;
        message = "stopped at " + std::to_string(kept) + " matches to stay under the result size limit (" +
                  std::to_string(context.max_result_bytes) + " bytes); narrow the search or use max_results";
        break;
      }
      bytes += size;
      json item = {{"path", path},        {"line", m.line},         {"column", m.column},
                   {"text", m.text},      {"byte_offset", m.begin}, {"byte_end", m.end}};
      if (m.text_cut) item["text_truncated"] = true;
      if (query.context_before) item["before"] = m.before;
      if (query.context_after) item["after"] = m.after;
      list.push_back(std::move(item));
      ++kept;
    }
  }
  return list;
}

const char* list_name(OutputMode mode) {
  return mode == OutputMode::matches ? "matches" : mode == OutputMode::files ? "files" : "counts";
}

/// The body of a search_text answer: the root, the list for the output mode within the caps, and
/// whether (and why) a cap cut it.
json text_answer(const std::string& dir, const std::vector<Hit>& hits, const TextQuery& query,
                 const ToolContext& context) {
  json out = json::object();
  out["root"] = replace_invalid_utf8(dir);
  bool truncated = false;
  std::string message;
  out[list_name(query.output)] = collect(hits, query, context, truncated, message);
  out["truncated"] = truncated;
  if (truncated) out["message"] = message;
  return out;
}

}  // namespace

json SearchEngine::search_text(const OpenedPath& target, const TextQuery& query, ToolContext& context) {
  auto started = Clock::now();
  if (query.pattern.pattern.size() > settings_.max_pattern_bytes)
    throw ToolError("pattern: " + std::to_string(query.pattern.pattern.size()) +
                    " bytes, over search.max_pattern_bytes (" + std::to_string(settings_.max_pattern_bytes) +
                    "); search for a shorter part of it");
  Matcher matcher = [&] {
    try {
      return Matcher(query.pattern);
    } catch (const std::invalid_argument& e) {
      throw ToolError(e.what());
    }
  }();
  std::string dir = target.display;
  std::shared_ptr<const std::vector<std::string>> files;
  std::shared_ptr<Tree> tree;
  bool listing_reused = false;
  int dir_fd = -1;
  std::uint64_t special = 0;  // skipped by the walk
  const OpenedPath* single = nullptr;  // a search of one file reads it through the fd it was opened as
  if (target.is_dir()) {
    tree = tree_for(target);
    dir_fd = tree->fd.get();
    bool walk_missing = false;
    files = listing(*tree, query.filter, context, listing_reused, &walk_missing, &special);
    if (!files) return stream_text(*tree, matcher, query, context, started, walk_missing);
  } else {
    auto slash = dir.rfind('/');
    files = std::make_shared<const std::vector<std::string>>(std::vector<std::string>{dir.substr(slash + 1)});
    dir = slash == 0 ? "/" : dir.substr(0, slash);
    single = &target;
  }

  // Ask the index which files may match; in stat mode a pruned file is pruned only while its stat
  // still equals the indexed one.
  const std::size_t n = files->size();
  std::vector<FileResult> results(n);
  std::vector<TrigramIndex::Entry> pruned_entries;  // stat mode: what to compare
  std::vector<std::uint32_t> pruned_slot(n, UINT32_MAX);
  bool index_used = false, stat_mode = false, index_full = false;
  std::string index_error;
  std::size_t indexed = 0, pending = 0, candidates = n;
  std::vector<std::string> unindexed;
  if (tree) {
    std::lock_guard lock(tree->mutex);
    tree->refresh();
    stat_mode = !tree->watcher;
    IndexQuery index_query(matcher.regex(), matcher.case_insensitive(), matcher.max_memory());
    CandidateSet set;
    if (tree->index.files() && index_query.useful()) {
      set = tree->index.candidates(index_query);
      index_used = set.prunes();
    }
    for (std::size_t i = 0; i < n; ++i) {
      const auto* entry = tree->index.find((*files)[i]);
      if (!entry) {
        if (settings_.index && !tree->index_full && !tree->queued.count((*files)[i]) &&
            !tree->unindexable.count((*files)[i]))
          unindexed.push_back((*files)[i]);
        continue;
      }
      if (index_used && !set.may_match(entry->id)) {
        results[i].status = FileStatus::pruned;
        if (stat_mode) {
          pruned_slot[i] = static_cast<std::uint32_t>(pruned_entries.size());
          pruned_entries.push_back(*entry);
        }
      }
    }
    indexed = tree->index.files();
  }
  candidates = static_cast<std::size_t>(
      std::count_if(results.begin(), results.end(), [](const FileResult& r) { return r.status != FileStatus::pruned; }));

  // Search the files in parallel, in path order, so that a cap keeps the first results.
  const bool by_files = query.output != OutputMode::matches;
  const std::size_t cap = query.max_results;
  std::atomic<std::size_t> next{0}, units{0}, finished{0};
  std::atomic<std::uint64_t> kept_bytes{0};
  CancelToken cancel = context.cancel;
  FirstError errors;
  auto over_budget = [&] {
    return query.max_result_bytes && kept_bytes.load(std::memory_order_relaxed) > query.max_result_bytes;
  };
  auto search = [&] {
    std::vector<char> buffer;
    while (true) {
      if (cancel.cancelled() || errors.failed() || units.load(std::memory_order_relaxed) > cap || over_budget())
        return;
      std::size_t i = next.fetch_add(1);
      if (i >= n) return;
      FileResult& r = results[i];
      const std::string& rel = (*files)[i];
      if (r.status == FileStatus::pruned) {
        if (!stat_mode) {
          finished.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        struct stat now;
        const auto& e = pruned_entries[pruned_slot[i]];
        if (stat_beneath(dir_fd, rel, now) && static_cast<std::uint64_t>(now.st_size) == e.size &&
            mtime_ns(now) == e.mtime_ns && now.st_ino == e.inode) {
          finished.fetch_add(1, std::memory_order_relaxed);
          continue;
        }
        r.stale = true;  // changed since indexed: searched now, indexed again below
      }
      if (settings_.before_search_file) settings_.before_search_file(join(dir, rel));
      search_file(dir_fd, rel, single, matcher, query, cap + 1, settings_.max_file_bytes, buffer, r);
      if (r.status == FileStatus::searched)
        units.fetch_add(by_files ? (r.lines ? 1 : 0) : r.matches.size(), std::memory_order_relaxed);
      kept_bytes.fetch_add(r.bytes, std::memory_order_relaxed);
      finished.fetch_add(1, std::memory_order_relaxed);
    }
  };
  auto worker = [&] { errors.run(search); };
  run_reporting(
      [&] {
        std::vector<std::thread> pool;
        unsigned threads = static_cast<unsigned>(std::min<std::size_t>(threads_, std::max<std::size_t>(1, n)));
        for (unsigned t = 1; t < threads; ++t) pool.emplace_back(worker);
        worker();
        for (auto& t : pool) t.join();
        errors.rethrow();
      },
      [&] {
        context.report(static_cast<double>(finished.load()), static_cast<double>(n),
                       "searched " + std::to_string(finished.load()) + " of " + std::to_string(n) + " files");
      },
      settings_.progress_interval_ms);
  context.check_cancelled();

  if (tree) {
    std::lock_guard lock(tree->mutex);
    bool wake = false;
    for (auto& rel : unindexed)
      if (tree->queued.insert(rel).second) {
        tree->queue.push_back(std::move(rel));
        wake = true;
      }
    for (std::size_t i = 0; i < n; ++i)
      if (results[i].stale && settings_.index && !tree->index_full && tree->queued.insert((*files)[i]).second) {
        tree->queue.push_back((*files)[i]);
        wake = true;
      }
    pending = tree->queue.size();
    index_full = tree->index_full;
    index_error = tree->index_error;
    if (wake) {
      if (!tree->indexer.joinable()) tree->indexer = std::thread(run_indexer, tree.get(), settings_);
      tree->wake.notify_all();
    }
  }

  // Collect in path order up to the caps.
  std::vector<Hit> hits;
  Counts counts;
  counts.special = special;
  for (std::size_t i = 0; i < n; ++i) {
    counts.add(results[i]);
    if (results[i].status == FileStatus::searched && results[i].lines) hits.push_back({&(*files)[i], &results[i]});
  }
  json out = text_answer(dir, hits, query, context);
  double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  out["stats"] =
      stats_json(counts, n, candidates, index_used, indexed, pending, index_full, listing_reused, false, elapsed);
  if (!index_error.empty()) out["stats"]["index"]["error"] = index_error;
  return out;
}

json SearchEngine::stream_text(Tree& searched, const Matcher& matcher, const TextQuery& query, ToolContext& context,
                               Clock::time_point started, bool collect_listing) {
  const std::string& dir = searched.root;
  const int dir_fd = searched.fd.get();
  Tree* tree = collect_listing ? &searched : nullptr;
  // Each file is searched by the walker thread that found it. Only matched files are kept, and of
  // those only the ones with the smallest paths that hold max_results + 1 units: enough to answer
  // exactly as the listed search does, in memory bounded by the caps, not by the tree.
  const bool by_files = query.output != OutputMode::matches;
  const std::size_t cap = query.max_results;
  auto units_of = [&](const FileResult& r) -> std::size_t { return by_files ? 1 : r.matches.size(); };
  std::mutex mutex;
  std::map<std::string, FileResult> kept;
  std::size_t kept_units = 0;
  std::uint64_t kept_bytes = 0;
  Counts counts;
  WalkCounters walked;
  std::atomic<std::size_t> finished{0};
  std::vector<std::vector<char>> buffers(threads_);
  // With a tree: the listing, per walker thread, until it passes max_listed_files.
  // Keyed as listing() keys it: the filter and what the walk reads from outside the tree.
  const std::string key =
      tree ? query.filter.key() + '\x1d' + outside_ignore_state(tree->root, settings_.max_file_bytes) : query.filter.key();
  std::uint64_t generation = 0;
  if (tree) {
    std::lock_guard lock(tree->mutex);
    if (tree->watcher) generation = tree->watcher->generation();
  }
  std::vector<std::vector<std::string>> listed(tree ? threads_ : 0);
  std::atomic<std::size_t> listed_count{0};
  std::atomic<bool> overflow{!tree};
  CancelToken cancel = context.cancel;
  std::function<bool()> cancelled = [cancel] { return cancel.cancelled(); };
  // Whether `rel` sorts after every path kept while the kept ones already fill the cap.
  auto beyond_cap = [&](const std::string& rel) {
    bool full = kept_units > cap || (query.max_result_bytes && kept_bytes > query.max_result_bytes);
    return full && !kept.empty() && rel > kept.rbegin()->first;
  };
  auto on_file = [&](unsigned worker, std::string&& rel) {
    if (cancel.cancelled()) return;
    if (!overflow.load(std::memory_order_relaxed)) {
      if (listed_count.fetch_add(1, std::memory_order_relaxed) >= settings_.max_listed_files) {
        overflow = true;  // too large to keep: the listing is dropped below, the search goes on
      } else {
        listed[worker].push_back(rel);
      }
    }
    {
      std::lock_guard lock(mutex);
      if (beyond_cap(rel)) return;
    }
    FileResult r;
    if (settings_.before_search_file) settings_.before_search_file(join(dir, rel));
    search_file(dir_fd, rel, nullptr, matcher, query, cap + 1, settings_.max_file_bytes, buffers[worker], r);
    finished.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mutex);
    counts.add(r);
    if (r.status != FileStatus::searched || r.lines == 0 || beyond_cap(rel)) return;
    kept_units += units_of(r);
    kept_bytes += r.bytes;
    kept.emplace(std::move(rel), std::move(r));
    // The last path goes while the others hold enough units, or more bytes than the answer can.
    while (kept.size() > 1) {
      const FileResult& last = std::prev(kept.end())->second;
      if (kept_units - units_of(last) <= cap &&
          !(query.max_result_bytes && kept_bytes - last.bytes > query.max_result_bytes))
        break;
      kept_units -= units_of(last);
      kept_bytes -= last.bytes;
      kept.erase(std::prev(kept.end()));
    }
  };
  try {
    WalkFilter bounded = query.filter;
    bounded.max_file_bytes = settings_.max_file_bytes;
    run_reporting([&] { walk_each(dir_fd, dir, bounded, threads_, walked, cancelled, on_file); },
                  [&] {
                    context.report(static_cast<double>(finished.load()), 0,
                                   "searched " + std::to_string(finished.load()) + " of " +
                                       std::to_string(walked.files.load()) + " files found so far");
                  },
                  settings_.progress_interval_ms);
  } catch (const std::invalid_argument& e) {
    throw ToolError(e.what());
  }
  context.check_cancelled();
  log_skipped(walked, dir, context);
  counts.special += walked.special.load();
  std::size_t pending = 0;
  bool index_full = false;
  if (tree && overflow) {
    listed.clear();
    std::lock_guard lock(tree->mutex);
    if (tree->streamed.size() > 16) tree->streamed.clear();
    tree->streamed[key] = Clock::now();
  } else if (tree) {
    // What the listed search would have done after its walk and its search: keep the listing and
    // queue its files for the index.
    std::vector<std::string> files;
    files.reserve(listed_count.load());
    for (auto& l : listed) {
      std::move(l.begin(), l.end(), std::back_inserter(files));
      std::vector<std::string>().swap(l);
    }
    std::sort(files.begin(), files.end());
    auto shared = std::make_shared<const std::vector<std::string>>(std::move(files));
    std::lock_guard lock(tree->mutex);
    cache_listing(*tree, key, generation, shared, settings_.max_listed_files, walked.special.load());
    tree->refresh();
    bool wake = false;
    if (settings_.index && !tree->index_full)
      for (const auto& rel : *shared)
        if (!tree->index.find(rel) && !tree->unindexable.count(rel) && tree->queued.insert(rel).second) {
          tree->queue.push_back(rel);
          wake = true;
        }
    pending = tree->queue.size();
    index_full = tree->index_full;
    if (wake) {
      if (!tree->indexer.joinable()) tree->indexer = std::thread(run_indexer, tree, settings_);
      tree->wake.notify_all();
    }
  }
  std::vector<Hit> hits;
  for (const auto& [path, r] : kept) hits.push_back({&path, &r});
  json out = text_answer(dir, hits, query, context);
  double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  std::size_t listed_files = walked.files.load();
  // The index was empty when this search began (that is why it streamed): it used none.
  const std::size_t indexed = 0;
  out["stats"] = stats_json(counts, listed_files, listed_files, false, indexed, pending, index_full, false,
                            !tree || overflow, elapsed);
  if (tree) {
    std::lock_guard lock(tree->mutex);
    if (!tree->index_error.empty()) out["stats"]["index"]["error"] = tree->index_error;
  }
  return out;
}

namespace {

/// search_files' test of one path: a glob, or a case-insensitive fragment of the file name.
class NameTest {
 public:
  NameTest(const std::string& pattern, const GlobLimits& limits) {
    if (has_glob_meta(pattern)) {
      try {
        glob_.emplace(pattern, false, limits);
      } catch (const std::invalid_argument& e) {
        throw ToolError(e.what());
      }
    } else {
      fragment_ = pattern;
      for (auto& c : fragment_) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  bool operator()(const std::string& rel) const {
    if (glob_) return glob_->matches(rel);
    std::string_view name = rel;
    auto slash = name.rfind('/');
    if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
    std::string lower(name);
    for (auto& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return fragment_.empty() || lower.find(fragment_) != std::string::npos;
  }

 private:
  std::optional<Glob> glob_;
  std::string fragment_;
};

json files_answer(const std::string& root, json list, std::size_t matched, std::size_t listed, std::size_t cap,
                  bool reused, bool streamed, Clock::time_point started) {
  bool truncated = matched > list.size();
  json out = {{"root", replace_invalid_utf8(root)}, {"files", std::move(list)}, {"truncated", truncated}};
  if (truncated)
    out["message"] = "stopped at max_results (" + std::to_string(cap) + " of " + std::to_string(matched) +
                     " files); narrow the pattern or raise max_results";
  double elapsed = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
  out["stats"] = {{"files_listed", listed}, {"files_matched", matched}, {"listing_reused", reused},
                  {"streamed", streamed},   {"elapsed_ms", elapsed}};
  return out;
}

}  // namespace

json SearchEngine::search_files(const OpenedPath& dir, const FilesQuery& query, ToolContext& context) {
  auto started = Clock::now();
  if (!dir.is_dir()) throw ToolError("path '" + dir.display + "' is not a directory");
  const std::string& target = dir.display;
  NameTest test(query.pattern, query.filter.limits.glob);
  auto tree = tree_for(dir);
  bool reused = false;
  auto files = listing(*tree, query.filter, context, reused);
  if (!files) return stream_files(*tree, query, context, started);
  json list = json::array();
  std::size_t matched = 0;
  for (const auto& rel : *files) {
    if (!test(rel)) continue;
    ++matched;
    if (list.size() < query.max_results) list.push_back(replace_invalid_utf8(rel));
  }
  return files_answer(target, std::move(list), matched, files->size(), query.max_results, reused, false, started);
}

json SearchEngine::stream_files(Tree& tree, const FilesQuery& query, ToolContext& context,
                                Clock::time_point started) {
  const std::string& dir = tree.root;
  // The max_results smallest matching paths, kept in a bounded set while the walk streams.
  NameTest test(query.pattern, query.filter.limits.glob);
  std::mutex mutex;
  std::set<std::string> kept;
  std::size_t matched = 0;
  WalkCounters walked;
  CancelToken cancel = context.cancel;
  std::function<bool()> cancelled = [cancel] { return cancel.cancelled(); };
  auto on_file = [&](unsigned, std::string&& rel) {
    if (!test(rel)) return;
    std::lock_guard lock(mutex);
    ++matched;
    if (kept.size() == query.max_results && (kept.empty() || rel > *kept.rbegin())) return;
    kept.insert(std::move(rel));
    if (kept.size() > query.max_results) kept.erase(std::prev(kept.end()));
  };
  try {
    WalkFilter bounded = query.filter;
    bounded.max_file_bytes = settings_.max_file_bytes;
    run_reporting([&] { walk_each(tree.fd.get(), dir, bounded, threads_, walked, cancelled, on_file); },
                  [&] {
                    context.report(static_cast<double>(walked.files.load()), 0,
                                   "listing files: " + std::to_string(walked.files.load()) + " found");
                  },
                  settings_.progress_interval_ms);
  } catch (const std::invalid_argument& e) {
    throw ToolError(e.what());
  }
  context.check_cancelled();
  log_skipped(walked, dir, context);
  json list = json::array();
  for (const auto& rel : kept) list.push_back(replace_invalid_utf8(rel));
  return files_answer(dir, std::move(list), matched, walked.files.load(), query.max_results, false, true, started);
}

bool SearchEngine::wait_for_index(const std::string& dir) {
  std::shared_ptr<Tree> tree;
  {
    std::lock_guard lock(trees_mutex_);
    auto it = trees_.find(dir);
    if (it == trees_.end()) return false;
    tree = it->second;
  }
  std::unique_lock lock(tree->mutex);
  tree->idle.wait(lock, [&] { return !tree->indexing && tree->queue.empty(); });
  return true;
}

}  // namespace mcpd::search
