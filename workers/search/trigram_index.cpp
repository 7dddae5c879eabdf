#include "trigram_index.h"

#include <algorithm>
#include <cstring>
#include <map>

#include <re2/filtered_re2.h>
#include <re2/re2.h>

namespace mcpd::search {

namespace {

constexpr std::uint32_t kTrigrams = 1u << 21;  // three 7-bit bytes

inline unsigned char fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

inline std::uint32_t pack(unsigned char a, unsigned char b, unsigned char c) {
  return (std::uint32_t(a) << 14) | (std::uint32_t(b) << 7) | c;
}

}  // namespace

bool CandidateSet::may_match(std::uint32_t id) const {
  if (!prunes_) return true;
  return (bits_[id / 64] >> (id % 64)) & 1;
}

IndexQuery::IndexQuery(const std::string& regex, bool case_insensitive, std::int64_t max_mem)
    : filter_(std::make_unique<re2::FilteredRE2>(3)) {
  // RE2's prefilter analysis is quadratic in the length of a literal run: a larger regex prunes
  // nothing rather than cost seconds before the search starts.
  if (regex.size() > kMaxRegexBytes) return;
  RE2::Options options;
  options.set_log_errors(false);
  options.set_never_nl(true);
  options.set_case_sensitive(!case_insensitive);
  options.set_max_mem(max_mem);
  int id = 0;
  if (filter_->Add(regex, options, &id) != RE2::NoError) return;
  filter_->Compile(&atoms_);
  // With no atom present, a regex that needs none still passes: then the index cannot help.
  std::vector<int> none, potential;
  filter_->AllPotentials(none, &potential);
  useful_ = potential.empty();
  for (auto& atom : atoms_)
    for (auto& c : atom) c = static_cast<char>(fold(static_cast<unsigned char>(c)));
}

IndexQuery::~IndexQuery() = default;

TrigramIndex::TrigramIndex() : slot_(kTrigrams, 0) {}

std::vector<std::uint32_t> TrigramIndex::trigrams_of(std::string_view content, bool& indexable) {
  indexable = ::memmem(content.data(), content.size(), "\xE2\x84\xAA", 3) == nullptr &&
              ::memmem(content.data(), content.size(), "\xC5\xBF", 2) == nullptr;
  std::vector<std::uint32_t> out;
  if (!indexable || content.size() < 3) return out;
  thread_local std::vector<std::uint64_t> seen(kTrigrams / 64, 0);
  const auto* p = reinterpret_cast<const unsigned char*>(content.data());
  std::size_t n = content.size();
  unsigned char a = fold(p[0]), b = fold(p[1]);
  for (std::size_t i = 2; i < n; ++i) {
    unsigned char c = fold(p[i]);
    if (((a | b | c) & 0x80) == 0) {
      std::uint32_t t = pack(a, b, c);
      std::uint64_t bit = std::uint64_t(1) << (t % 64);
      if (!(seen[t / 64] & bit)) {
        seen[t / 64] |= bit;
        out.push_back(t);
      }
    }
    a = b;
    b = c;
  }
  for (std::uint32_t t : out) seen[t / 64] = 0;
  std::sort(out.begin(), out.end());
  return out;
}

void TrigramIndex::add(const std::string& path, const std::vector<std::uint32_t>& trigrams, std::uint64_t size,
                       std::int64_t mtime_ns, std::uint64_t inode) {
  remove(path, false);
  compact_if_sparse();
  auto id = static_cast<std::uint32_t>(alive_.size());
  alive_.push_back(true);
  for (std::uint32_t t : trigrams) {
    if (slot_[t] == 0) {
      lists_.emplace_back();
      slot_[t] = static_cast<std::uint32_t>(lists_.size());
    }
    lists_[slot_[t] - 1].push_back(id);
  }
  std::uint64_t cost = trigrams.size() * sizeof(std::uint32_t) + path.size() + 64;
  id_bytes_.push_back(static_cast<std::uint32_t>(std::min<std::uint64_t>(cost, UINT32_MAX)));
  bytes_ += id_bytes_.back();
  by_path_[path] = Entry{id, size, mtime_ns, inode};
}

void TrigramIndex::compact_if_sparse() {
  if (dead_ < 1024 || dead_ < alive_.size() / 2) return;
  std::vector<std::uint32_t> new_id(alive_.size(), UINT32_MAX);
  std::uint32_t next = 0;
  std::vector<std::uint32_t> bytes;
  for (std::size_t id = 0; id < alive_.size(); ++id)
    if (alive_[id]) {
      new_id[id] = next++;
      bytes.push_back(id_bytes_[id]);
    }
  for (auto& list : lists_) {
    std::size_t out = 0;
    for (std::uint32_t id : list)
      if (new_id[id] != UINT32_MAX) list[out++] = new_id[id];  // ascending order is kept
    list.resize(out);
    list.shrink_to_fit();
  }
  for (auto& [path, entry] : by_path_) entry.id = new_id[entry.id];
  alive_.assign(next, true);
  id_bytes_ = std::move(bytes);
  dead_ = 0;
}

void TrigramIndex::remove(const std::string& path, bool prefix) {
  if (!prefix) {
    auto it = by_path_.find(path);
    if (it == by_path_.end()) return;
    kill(it->second.id);
    by_path_.erase(it);
    return;
  }
  std::string below = path.empty() ? "" : path + "/";
  for (auto it = by_path_.begin(); it != by_path_.end();) {
    if (path.empty() || it->first == path || it->first.compare(0, below.size(), below) == 0) {
      kill(it->second.id);
      it = by_path_.erase(it);
    } else {
      ++it;
    }
  }
}

void TrigramIndex::kill(std::uint32_t id) {
  alive_[id] = false;
  bytes_ -= id_bytes_[id];
  ++dead_;
}

void TrigramIndex::clear() {
  by_path_.clear();
  alive_.clear();
  id_bytes_.clear();
  dead_ = 0;
  std::fill(slot_.begin(), slot_.end(), 0);
  lists_.clear();
  bytes_ = 0;
}

const TrigramIndex::Entry* TrigramIndex::find(const std::string& path) const {
  auto it = by_path_.find(path);
  return it == by_path_.end() ? nullptr : &it->second;
}

std::vector<std::uint64_t> TrigramIndex::files_with(std::string_view atom) const {
  std::size_t words = (alive_.size() + 63) / 64;
  std::vector<std::uint64_t> bits(words, ~std::uint64_t(0));
  for (std::size_t i = 0; i + 3 <= atom.size(); ++i) {
    auto a = static_cast<unsigned char>(atom[i]), b = static_cast<unsigned char>(atom[i + 1]),
         c = static_cast<unsigned char>(atom[i + 2]);
    if ((a | b | c) & 0x80) continue;  // not indexed: cannot prune on it
    std::uint32_t slot = slot_[pack(a, b, c)];
    std::vector<std::uint64_t> with(words, 0);
    if (slot)
      for (std::uint32_t id : lists_[slot - 1]) with[id / 64] |= std::uint64_t(1) << (id % 64);
    for (std::size_t w = 0; w < words; ++w) bits[w] &= with[w];
  }
  return bits;
}

CandidateSet TrigramIndex::candidates(const IndexQuery& query) const {
  CandidateSet set;
  if (!query.useful_ || alive_.empty()) return set;
  std::size_t n = alive_.size();
  std::vector<std::vector<std::uint64_t>> atom_bits;
  for (const auto& atom : query.atoms_) atom_bits.push_back(files_with(atom));
  set.bits_.assign((n + 63) / 64, 0);
  // Files with the same atoms present get the same answer: ask the prefilter once per pattern.
  std::map<std::vector<int>, bool> memo;
  std::vector<int> present, potential;
  for (std::uint32_t id = 0; id < n; ++id) {
    if (!alive_[id]) continue;
    present.clear();
    for (std::size_t a = 0; a < atom_bits.size(); ++a)
      if ((atom_bits[a][id / 64] >> (id % 64)) & 1) present.push_back(static_cast<int>(a));
    auto it = memo.find(present);
    bool may = false;
    if (it != memo.end()) {
      may = it->second;
    } else {
      potential.clear();
      query.filter_->AllPotentials(present, &potential);
      may = !potential.empty();
      memo.emplace(present, may);
    }
    if (may) set.bits_[id / 64] |= std::uint64_t(1) << (id % 64);
  }
  set.prunes_ = true;
  return set;
}

}  // namespace mcpd::search
