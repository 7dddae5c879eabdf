// A trigram index over the contents of a tree's files, as in Google Code Search and Zoekt: for each
// trigram of ASCII bytes (letters folded to lower case) the sorted list of files containing it. A
// query turns a regex into the literal strings ("atoms") any match must contain (RE2's FilteredRE2)
// and keeps only the files that contain every trigram of enough atoms. It only prunes: a file the
// index does not know, or knows stale, is searched anyway by the caller.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace re2 {
class FilteredRE2;
}

namespace mcpd::search {

/// The file ids a query may match, computed from the index once per query.
class CandidateSet {
 public:
  /// Whether file `id` may contain a match.
  bool may_match(std::uint32_t id) const;
  bool prunes() const { return prunes_; }

 private:
  friend class TrigramIndex;
  bool prunes_ = false;
  std::vector<std::uint64_t> bits_;
};

/// The regex side of a query: its atoms and the boolean structure over them.
class IndexQuery {
 public:
  /// `regex` as the matcher runs it; `case_insensitive` as it runs. Never throws: a regex the
  /// prefilter cannot analyse simply prunes nothing.
  IndexQuery(const std::string& regex, bool case_insensitive, std::int64_t max_mem);
  ~IndexQuery();
  bool useful() const { return useful_; }

  /// Larger regexes are not analysed (useful() is false).
  static constexpr std::size_t kMaxRegexBytes = 8192;

 private:
  friend class TrigramIndex;
  std::unique_ptr<re2::FilteredRE2> filter_;
  std::vector<std::string> atoms_;
  bool useful_ = false;
};

/// Not thread-safe: the owner serialises access (a shared mutex: queries read, the indexer writes).
class TrigramIndex {
 public:
  struct Entry {
    std::uint32_t id;
    std::uint64_t size;
    std::int64_t mtime_ns;
    std::uint64_t inode;
  };

  TrigramIndex();

  /// Trigrams of `content` (folded, ASCII only, sorted); nullopt-like empty with `indexable` false
  /// when the content has characters whose case folding reaches ASCII (U+212A KELVIN SIGN, U+017F
  /// LONG S), which a folded ASCII index would miss.
  static std::vector<std::uint32_t> trigrams_of(std::string_view content, bool& indexable);

  /// Adds (or replaces) `path` with its trigrams.
  void add(const std::string& path, const std::vector<std::uint32_t>& trigrams, std::uint64_t size,
           std::int64_t mtime_ns, std::uint64_t inode);
  /// Forgets `path`, or with `prefix` every path equal to it or below it ("dir" forgets "dir/...").
  void remove(const std::string& path, bool prefix);
  void clear();

  const Entry* find(const std::string& path) const;
  std::size_t files() const { return by_path_.size(); }
  /// The memory the live entries account for (posting list entries, paths, bookkeeping).
  std::uint64_t bytes() const { return bytes_; }
  /// Ids handed out since the last compaction, live or dead (what a query's bitmaps are sized by).
  std::size_t ids() const { return alive_.size(); }

  CandidateSet candidates(const IndexQuery& query) const;

 private:
  std::vector<std::uint64_t> files_with(std::string_view atom) const;
  /// Drops dead ids from the posting lists and renumbers the live ones, once dead ids outnumber
  /// the live ones: amortised O(1) per removal, so an often edited tree keeps a bounded index.
  void compact_if_sparse();
  void kill(std::uint32_t id);

  std::unordered_map<std::string, Entry> by_path_;
  std::vector<bool> alive_;                       // by id
  std::vector<std::uint32_t> id_bytes_;           // by id: what the entry added to bytes_
  std::size_t dead_ = 0;
  std::vector<std::uint32_t> slot_;               // by trigram: index into lists_ + 1, 0 when none
  std::vector<std::vector<std::uint32_t>> lists_; // posting lists, ids ascending
  std::uint64_t bytes_ = 0;
};

}  // namespace mcpd::search
