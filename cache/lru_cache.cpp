#include "lru_cache.h"

#include <stdexcept>
#include <utility>

namespace mcpd {

double LruCache::Stats::hit_ratio() const {
  const std::uint64_t lookups = hits + misses;
  return lookups == 0 ? 0.0 : static_cast<double>(hits) / static_cast<double>(lookups);
}

LruCache::LruCache(Limits limits, Clock clock) : limits_(limits), clock_(std::move(clock)) {
  if (limits_.max_bytes == 0) throw std::invalid_argument("cache limit max_bytes must be > 0");
  if (limits_.max_entries == 0) throw std::invalid_argument("cache limit max_entries must be > 0");
  if (limits_.default_ttl.count() <= 0)
    throw std::invalid_argument("cache limit default_ttl must be > 0 ms");
  if (!clock_) clock_ = [] { return std::chrono::steady_clock::now(); };
  index_.reserve(limits_.max_entries < 1024 ? limits_.max_entries : 1024);
}

std::shared_ptr<const std::string> LruCache::get(const CacheKey& key) {
  auto found = find(key);
  return found ? std::move(found->value) : nullptr;
}

std::optional<LruCache::Found> LruCache::find(const CacheKey& key) {
  const auto found = index_.find(key);
  if (found == index_.end()) {
    ++counters_.misses;
    return std::nullopt;
  }
  const List::iterator it = found->second;
  if (clock_() >= it->expires) {
    ++counters_.misses;
    ++counters_.expirations;
    remove(it);
    return std::nullopt;
  }
  ++counters_.hits;
  lru_.splice(lru_.begin(), lru_, it);
  return Found{it->value, it->voucher};
}

bool LruCache::erase_vouched(const CacheKey& key, const Voucher* voucher) {
  const auto found = index_.find(key);
  if (found == index_.end() || found->second->voucher.get() != voucher) return false;
  remove(found->second);
  ++counters_.invalidations;
  return true;
}

void LruCache::hit_was_stale() {
  if (counters_.hits > 0) --counters_.hits;
  ++counters_.misses;
  ++counters_.stale;
}

std::size_t LruCache::erase_vouched(const std::function<bool(const Voucher&)>& drop) {
  std::size_t dropped = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    const auto next = std::next(it);
    if (it->voucher && drop(*it->voucher)) {
      remove(it);
      ++dropped;
    }
    it = next;
  }
  counters_.invalidations += dropped;
  return dropped;
}

bool LruCache::put(const CacheKey& key, std::string value, std::chrono::milliseconds ttl,
                   std::shared_ptr<const Voucher> voucher) {
  // The old value goes first: it must not survive a rejected put, and must not be counted as evicted.
  if (const auto found = index_.find(key); found != index_.end()) remove(found->second);

  const std::size_t charge = charge_for(value.size());
  if (charge > limits_.max_bytes) {
    ++counters_.rejected;
    return false;
  }
  evict_for(charge);

  if (ttl.count() <= 0) ttl = limits_.default_ttl;
  lru_.push_front(Entry{key, std::make_shared<const std::string>(std::move(value)), clock_() + ttl,
                        charge, std::move(voucher)});
  index_.emplace(key, lru_.begin());
  bytes_ += charge;
  ++counters_.inserts;
  return true;
}

bool LruCache::contains(const CacheKey& key) const {
  const auto found = index_.find(key);
  return found != index_.end() && clock_() < found->second->expires;
}

bool LruCache::erase(const CacheKey& key) {
  const auto found = index_.find(key);
  if (found == index_.end()) return false;
  const bool live = clock_() < found->second->expires;
  if (!live) ++counters_.expirations;
  remove(found->second);
  return live;
}

void LruCache::clear() {
  lru_.clear();
  index_.clear();
  bytes_ = 0;
}

std::size_t LruCache::purge_expired() {
  const auto now = clock_();
  std::size_t purged = 0;
  for (auto it = lru_.begin(); it != lru_.end();) {
    const auto next = std::next(it);
    if (now >= it->expires) {
      remove(it);
      ++purged;
    }
    it = next;
  }
  counters_.expirations += purged;
  return purged;
}

LruCache::Stats LruCache::stats() const {
  Stats s = counters_;
  s.bytes = bytes_;
  s.entries = lru_.size();
  s.max_bytes = limits_.max_bytes;
  s.max_entries = limits_.max_entries;
  return s;
}

nlohmann::json LruCache::stats_json() const {
  const Stats s = stats();
  return {
      {"hits", s.hits},
      {"misses", s.misses},
      {"evictions", s.evictions},
      {"expirations", s.expirations},
      {"rejected", s.rejected},
      {"inserts", s.inserts},
      {"invalidations", s.invalidations},
      {"stale", s.stale},
      {"bytes", s.bytes},
      {"entries", s.entries},
      {"max_bytes", s.max_bytes},
      {"max_entries", s.max_entries},
      {"default_ttl_ms", limits_.default_ttl.count()},
      {"hit_ratio", s.hit_ratio()},
  };
}

void LruCache::remove(List::iterator it) {
  bytes_ -= it->charge;
  index_.erase(it->key);
  lru_.erase(it);
}

void LruCache::evict_for(std::size_t charge) {
  while (!lru_.empty() &&
         (lru_.size() >= limits_.max_entries || bytes_ + charge > limits_.max_bytes)) {
    remove(std::prev(lru_.end()));
    ++counters_.evictions;
  }
}

}  // namespace mcpd
