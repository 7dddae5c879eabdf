// LruCache is the coordinator's L1 result cache: CacheKey -> serialized tool result. The coordinator's
// event loop owns it; it is not thread-safe and takes no locks (one owner thread).
//
// Contract:
// - Bounds. The cache never holds more than limits.max_bytes charged bytes nor more than
//   limits.max_entries entries (defaults 64 MiB and 10000). Each entry is charged
//   value.size() + sizeof(CacheKey) + kEntryOverheadBytes, a fixed estimate of list and map nodes.
// - Eviction. To make room for a put, least-recently-used entries are evicted first, as many as needed
//   for the new entry to fit both bounds. A put and a successful get make an entry the most recently
//   used; contains() and stats() do not. Each entry removed to make room counts as an eviction.
// - TTL. Each entry lives for the ttl given to put; a ttl of zero (or less) means limits.default_ttl
//   (default 5 minutes). An entry put at time t with ttl d is live while now < t + d; at t + d and after
//   it is expired. An expired entry is never returned: get counts it as a miss and an expiration, and
//   removes it. The TTL runs from put; a get does not extend it. Expired entries nobody asks for stay
//   charged until evicted or until purge_expired() removes them.
// - Oversize. A value whose charge exceeds max_bytes is not stored and counts as rejected; an existing
//   entry for that key is removed, so a later get never returns a value older than the last put.
// - Replace. A put of a key already present replaces its value, charge and TTL, and makes it the most
//   recently used; the old value is not an eviction.
// - What is cached. Whatever put is given and nothing else: the caller decides that errors, results of
//   non-idempotent tools and partial results are not cached (the router's policy, not this class's).
// - Stats. hits and misses count get calls; inserts counts stored puts (replacements included);
//   clear() and erase() drop entries but keep the counters.
// - Vouched entries. An entry may carry a Voucher: which process computed it, the state of what it
//   depends on there (an opaque token, such as a watched tree's generation) and a tag naming that
//   thing (a directory). Such an entry is only as good as its owner says: the caller asks the owner
//   before serving it, and drops entries with erase_vouched() when an owner reports a change or dies.
//   Dropped entries count as invalidations.
// - Clock. Time comes from the injected Clock (default steady_clock::now), so tests use a fake one.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "cache_key.h"

namespace mcpd {

/// Who vouches for a cached answer whose validity only the process that computed it can judge
/// (CachePolicy::custom): see the contract above.
struct Voucher {
  std::string owner;  // e.g. "search#3" (a worker) or "legacy" (the coordinator's own threads)
  std::string state;  // the owner's token for what the answer depended on when it was computed
  std::string tag;    // what that is (an absolute directory), or "" when the owner pushes no changes
};

class LruCache {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;

  /// Fixed bytes charged per entry on top of its value and key.
  static constexpr std::size_t kEntryOverheadBytes = 128;

  /// The bounds; constructing with a zero bound or a non-positive default_ttl throws
  /// std::invalid_argument naming the field.
  struct Limits {
    std::size_t max_bytes = 64u << 20;
    std::size_t max_entries = 10000;
    std::chrono::milliseconds default_ttl{300000};
  };

  struct Stats {
    std::uint64_t hits = 0;
    std::uint64_t misses = 0;
    std::uint64_t evictions = 0;
    std::uint64_t expirations = 0;
    std::uint64_t rejected = 0;
    std::uint64_t inserts = 0;
    std::uint64_t invalidations = 0;  // vouched entries dropped because their owner said so
    std::uint64_t stale = 0;          // lookups that found an entry its owner then called stale
    std::size_t bytes = 0;
    std::size_t entries = 0;
    std::size_t max_bytes = 0;
    std::size_t max_entries = 0;
    /// hits / (hits + misses), 0 before any get.
    double hit_ratio() const;
  };

  explicit LruCache(Limits limits, Clock clock = {});
  // Copying would leave the index pointing into the other object's list.
  LruCache(const LruCache&) = delete;
  LruCache& operator=(const LruCache&) = delete;
  LruCache(LruCache&&) = default;
  LruCache& operator=(LruCache&&) = default;

  /// The live value for key, or null (a miss). Values are shared and immutable, so a reply being
  /// written keeps its value alive even if the entry is evicted meanwhile, and nothing is copied.
  std::shared_ptr<const std::string> get(const CacheKey& key);

  /// Stores value under key for ttl (zero: limits.default_ttl), evicting as the contract says.
  /// Returns false when the value was rejected as oversize.
  bool put(const CacheKey& key, std::string value, std::chrono::milliseconds ttl = {},
           std::shared_ptr<const Voucher> voucher = nullptr);

  /// A live entry as get() finds it (counted and touched the same way), with its voucher.
  struct Found {
    std::shared_ptr<const std::string> value;
    std::shared_ptr<const Voucher> voucher;  // null for an entry that needs none
  };
  std::optional<Found> find(const CacheKey& key);

  /// Removes key's entry only if it is still the one `voucher` vouches for (a newer one stays).
  bool erase_vouched(const CacheKey& key, const Voucher* voucher);

  /// Counts the last hit as a miss after all: its owner found it stale.
  void hit_was_stale();

  /// Removes every vouched entry for which `drop` says so (O(entries)); returns how many, each
  /// counted as an invalidation.
  std::size_t erase_vouched(const std::function<bool(const Voucher&)>& drop);

  /// Whether key has a live entry; touches neither recency nor counters.
  bool contains(const CacheKey& key) const;

  /// Removes key's entry; true if a live entry was removed. An expired one is removed too, counted as
  /// an expiration, and false is returned, as if it had already gone.
  bool erase(const CacheKey& key);

  /// Removes every entry; counters are kept.
  void clear();

  /// Removes every expired entry (O(entries)), counting each as an expiration; returns how many.
  std::size_t purge_expired();

  Stats stats() const;
  /// stats() as {"hits", "misses", "evictions", "expirations", "rejected", "inserts", "bytes",
  /// "invalidations", "entries", "max_bytes", "max_entries", "default_ttl_ms", "hit_ratio"}.
  nlohmann::json stats_json() const;

  const Limits& limits() const { return limits_; }

  /// The charge of an entry holding value_size bytes.
  static constexpr std::size_t charge_for(std::size_t value_size) {
    return value_size + sizeof(CacheKey) + kEntryOverheadBytes;
  }

 private:
  struct Entry {
    CacheKey key;
    std::shared_ptr<const std::string> value;
    std::chrono::steady_clock::time_point expires;
    std::size_t charge;
    std::shared_ptr<const Voucher> voucher;
  };
  using List = std::list<Entry>;  // front = most recently used

  void remove(List::iterator it);
  void evict_for(std::size_t charge);

  Limits limits_;
  Clock clock_;
  List lru_;
  std::unordered_map<CacheKey, List::iterator> index_;
  std::size_t bytes_ = 0;
  Stats counters_;
};

}  // namespace mcpd
