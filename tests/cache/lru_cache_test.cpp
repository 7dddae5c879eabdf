// Specification of cache/lru_cache.h: one TEST_CASE per sentence of its contract, driven by a fake
// clock.
#include <chrono>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>

#include <doctest/doctest.h>

#include "cache_key.h"
#include "lru_cache.h"

using mcpd::CacheKey;
using mcpd::json;
using mcpd::LruCache;
using namespace std::chrono_literals;

namespace {

struct FakeClock {
  std::chrono::steady_clock::time_point now{std::chrono::hours(1)};
  LruCache::Clock fn() {
    return [this] { return now; };
  }
};

CacheKey key(int i) { return mcpd::make_cache_key("tool", {{"i", i}}); }

LruCache::Limits entries(std::size_t n) {
  LruCache::Limits limits;
  limits.max_entries = n;
  return limits;
}

LruCache::Limits bytes(std::size_t n) {
  LruCache::Limits limits;
  limits.max_bytes = n;
  return limits;
}

}  // namespace

TEST_CASE("the default limits are 64 MiB, 10000 entries and 5 minutes") {
  const LruCache::Limits limits;
  CHECK(limits.max_bytes == 64u * 1024 * 1024);
  CHECK(limits.max_entries == 10000);
  CHECK(limits.default_ttl == 5min);
  LruCache cache{limits};
  CHECK(cache.stats().max_bytes == limits.max_bytes);
  CHECK(cache.stats().max_entries == limits.max_entries);
}

TEST_CASE("a zero bound or non-positive default TTL is refused, naming the field") {
  auto message = [](LruCache::Limits limits) {
    try {
      LruCache cache{limits};
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  LruCache::Limits l;
  l.max_bytes = 0;
  CHECK(message(l).find("max_bytes") != std::string::npos);
  l = {};
  l.max_entries = 0;
  CHECK(message(l).find("max_entries") != std::string::npos);
  l = {};
  l.default_ttl = 0ms;
  CHECK(message(l).find("default_ttl") != std::string::npos);
}

TEST_CASE("a put value is returned by get and counts as a hit; an absent key is a miss") {
  LruCache cache{LruCache::Limits{}};
  CHECK(cache.get(key(1)) == nullptr);
  CHECK(cache.put(key(1), "one"));
  const auto value = cache.get(key(1));
  REQUIRE(value != nullptr);
  CHECK(*value == "one");
  CHECK(cache.stats().hits == 1);
  CHECK(cache.stats().misses == 1);
}

TEST_CASE("the default clock is steady_clock") {
  LruCache cache{LruCache::Limits{}};
  cache.put(key(1), "v", 60s);
  CHECK(cache.contains(key(1)));
}

TEST_CASE("each entry is charged value size + key size + a fixed overhead") {
  LruCache cache{LruCache::Limits{}};
  CHECK(LruCache::charge_for(100) == 100 + sizeof(CacheKey) + LruCache::kEntryOverheadBytes);
  CHECK(sizeof(CacheKey) == 32);
  cache.put(key(1), std::string(100, 'x'));
  cache.put(key(2), "");
  CHECK(cache.stats().bytes == LruCache::charge_for(100) + LruCache::charge_for(0));
  CHECK(cache.stats().entries == 2);
}

TEST_CASE("the least recently used entry is evicted first") {
  LruCache cache{entries(3)};
  for (int i = 1; i <= 3; ++i) cache.put(key(i), "v");
  cache.put(key(4), "v");
  CHECK_FALSE(cache.contains(key(1)));
  CHECK(cache.contains(key(2)));
  CHECK(cache.contains(key(3)));
  CHECK(cache.contains(key(4)));
  cache.put(key(5), "v");
  CHECK_FALSE(cache.contains(key(2)));
  CHECK(cache.stats().evictions == 2);
}

TEST_CASE("a get makes an entry the most recently used") {
  LruCache cache{entries(3)};
  for (int i = 1; i <= 3; ++i) cache.put(key(i), "v");
  CHECK(cache.get(key(1)) != nullptr);
  cache.put(key(4), "v");
  CHECK(cache.contains(key(1)));
  CHECK_FALSE(cache.contains(key(2)));
}

TEST_CASE("a put of an existing key makes it the most recently used") {
  LruCache cache{entries(3)};
  for (int i = 1; i <= 3; ++i) cache.put(key(i), "v");
  cache.put(key(1), "w");
  cache.put(key(4), "v");
  CHECK(cache.contains(key(1)));
  CHECK_FALSE(cache.contains(key(2)));
}

TEST_CASE("contains and stats touch neither recency nor counters") {
  LruCache cache{entries(3)};
  for (int i = 1; i <= 3; ++i) cache.put(key(i), "v");
  CHECK(cache.contains(key(1)));
  CHECK_FALSE(cache.contains(key(9)));
  (void)cache.stats();
  cache.put(key(4), "v");
  CHECK_FALSE(cache.contains(key(1)));
  CHECK(cache.stats().hits == 0);
  CHECK(cache.stats().misses == 0);
}

TEST_CASE("a failed get (miss) does not change recency") {
  LruCache cache{entries(2)};
  cache.put(key(1), "v");
  cache.put(key(2), "v");
  CHECK(cache.get(key(9)) == nullptr);
  cache.put(key(3), "v");
  CHECK_FALSE(cache.contains(key(1)));
}

TEST_CASE("the entry bound is never exceeded") {
  LruCache cache{entries(5)};
  for (int i = 0; i < 50; ++i) {
    cache.put(key(i), "v");
    CHECK(cache.stats().entries <= 5);
  }
  CHECK(cache.stats().entries == 5);
  CHECK(cache.stats().evictions == 45);
  for (int i = 45; i < 50; ++i) CHECK(cache.contains(key(i)));
}

TEST_CASE("the byte bound is never exceeded") {
  LruCache cache{bytes(10 * LruCache::charge_for(500))};
  std::mt19937 rng(7);
  std::uniform_int_distribution<std::size_t> size(0, 3000);
  std::uniform_int_distribution<int> which(0, 40);
  for (int step = 0; step < 2000; ++step) {
    if (step % 3 == 0) {
      (void)cache.get(key(which(rng)));
    } else {
      cache.put(key(which(rng)), std::string(size(rng), 'x'));
    }
    REQUIRE(cache.stats().bytes <= cache.stats().max_bytes);
  }
  CHECK(cache.stats().evictions > 0);
}

TEST_CASE("a big entry evicts as many least recently used entries as it needs, and no more") {
  const std::size_t small = LruCache::charge_for(10);
  LruCache cache{bytes(4 * small)};
  for (int i = 1; i <= 4; ++i) cache.put(key(i), std::string(10, 's'));
  CHECK(cache.stats().bytes == 4 * small);

  // Needs the room of three small entries: 1, 2 and 3 go, 4 stays.
  const std::size_t big_value = 3 * small - LruCache::charge_for(0);
  CHECK(cache.put(key(100), std::string(big_value, 'B')));
  CHECK(cache.stats().evictions == 3);
  CHECK_FALSE(cache.contains(key(1)));
  CHECK_FALSE(cache.contains(key(2)));
  CHECK_FALSE(cache.contains(key(3)));
  CHECK(cache.contains(key(4)));
  CHECK(cache.contains(key(100)));
  CHECK(cache.stats().bytes == 4 * small);
}

TEST_CASE("a value whose charge is exactly the byte bound is stored") {
  LruCache cache{bytes(LruCache::charge_for(1000))};
  cache.put(key(1), "small");
  CHECK(cache.put(key(2), std::string(1000, 'x')));
  CHECK(cache.contains(key(2)));
  CHECK_FALSE(cache.contains(key(1)));
  CHECK(cache.stats().bytes == cache.stats().max_bytes);
}

TEST_CASE("a value larger than the byte bound is rejected, stored nowhere and evicts nothing") {
  LruCache cache{bytes(LruCache::charge_for(1000))};
  cache.put(key(1), "small");
  CHECK_FALSE(cache.put(key(2), std::string(1001, 'x')));
  CHECK(cache.get(key(2)) == nullptr);
  CHECK(cache.contains(key(1)));
  const auto s = cache.stats();
  CHECK(s.rejected == 1);
  CHECK(s.evictions == 0);
  CHECK(s.inserts == 1);
  CHECK(s.entries == 1);
}

TEST_CASE("an oversize put removes the key's older value") {
  LruCache cache{bytes(LruCache::charge_for(1000))};
  cache.put(key(1), "old");
  CHECK_FALSE(cache.put(key(1), std::string(5000, 'x')));
  CHECK(cache.get(key(1)) == nullptr);
  CHECK(cache.stats().bytes == 0);
  CHECK(cache.stats().evictions == 0);
}

TEST_CASE("a put of an existing key replaces value, charge and TTL, and is not an eviction") {
  FakeClock clock;
  LruCache cache{LruCache::Limits{}, clock.fn()};
  cache.put(key(1), std::string(100, 'a'), 10ms);
  cache.put(key(1), std::string(40, 'b'), 1000ms);
  CHECK(cache.stats().entries == 1);
  CHECK(cache.stats().bytes == LruCache::charge_for(40));
  CHECK(cache.stats().evictions == 0);
  CHECK(cache.stats().inserts == 2);
  clock.now += 500ms;  // past the old TTL, within the new one
  const auto value = cache.get(key(1));
  REQUIRE(value != nullptr);
  CHECK(*value == std::string(40, 'b'));
}

TEST_CASE("a replacement at the entry bound evicts nothing") {
  LruCache cache{entries(2)};
  cache.put(key(1), "v");
  cache.put(key(2), "v");
  cache.put(key(2), "w");
  CHECK(cache.contains(key(1)));
  CHECK(cache.stats().evictions == 0);
}

TEST_CASE("an entry is live until its TTL and expired exactly at it") {
  FakeClock clock;
  LruCache cache{LruCache::Limits{}, clock.fn()};
  cache.put(key(1), "v", 100ms);
  clock.now += 99ms;
  CHECK(cache.get(key(1)) != nullptr);
  clock.now += 1ms;
  CHECK(cache.get(key(1)) == nullptr);
  const auto s = cache.stats();
  CHECK(s.hits == 1);
  CHECK(s.misses == 1);
  CHECK(s.expirations == 1);
  CHECK(s.entries == 0);
  CHECK(s.bytes == 0);
}

TEST_CASE("an entry is expired after its TTL, and counted as an expiration once") {
  FakeClock clock;
  LruCache cache{LruCache::Limits{}, clock.fn()};
  cache.put(key(1), "v", 100ms);
  clock.now += 10s;
  CHECK_FALSE(cache.contains(key(1)));
  CHECK(cache.get(key(1)) == nullptr);
  CHECK(cache.get(key(1)) == nullptr);  // removed by the first get: a plain miss now
  CHECK(cache.stats().expirations == 1);
  CHECK(cache.stats().misses == 2);
}

TEST_CASE("a zero TTL means the limits' default TTL") {
  FakeClock clock;
  LruCache::Limits limits;
  limits.default_ttl = 2s;
  LruCache cache{limits, clock.fn()};
  cache.put(key(1), "v");
  cache.put(key(2), "v", 0ms);
  cache.put(key(3), "v", -5ms);
  clock.now += 1999ms;
  CHECK(cache.contains(key(1)));
  CHECK(cache.contains(key(2)));
  CHECK(cache.contains(key(3)));
  clock.now += 1ms;
  CHECK_FALSE(cache.contains(key(1)));
  CHECK_FALSE(cache.contains(key(2)));
  CHECK_FALSE(cache.contains(key(3)));
}

TEST_CASE("the built-in default TTL is 5 minutes") {
  FakeClock clock;
  LruCache cache{LruCache::Limits{}, clock.fn()};
  cache.put(key(1), "v");
  clock.now += 5min - 1ms;
  CHECK(cache.get(key(1)) != nullptr);
  clock.now += 1ms;
  CHECK(cache.get(key(1)) == nullptr);
}

TEST_CASE("a get does not extend the TTL") {
  FakeClock clock;
  LruCache cache{LruCache::Limits{}, clock.fn()};
  cache.put(key(1), "v", 100ms);
  for (int i = 0; i < 9; ++i) {
    clock.now += 10ms;
    CHECK(cache.get(key(1)) != nullptr);
  }
  clock.now += 10ms;
  CHECK(cache.get(key(1)) == nullptr);
}

TEST_CASE("expired entries stay charged until evicted or purged") {
  FakeClock clock;
  LruCache cache{entries(3), clock.fn()};
  cache.put(key(1), "v", 10ms);
  cache.put(key(2), "v", 10ms);
  cache.put(key(3), "v", 1h);
  clock.now += 1s;
  CHECK(cache.stats().entries == 3);
  cache.put(key(4), "v", 1h);  // evicts 1, the least recently used, as an eviction
  CHECK(cache.stats().evictions == 1);
  CHECK(cache.stats().entries == 3);
  CHECK(cache.purge_expired() == 1);  // 2
  const auto s = cache.stats();
  CHECK(s.entries == 2);
  CHECK(s.expirations == 1);
  CHECK(s.bytes == 2 * LruCache::charge_for(1));
  CHECK(cache.contains(key(3)));
  CHECK(cache.contains(key(4)));
}

TEST_CASE("erase removes a live entry and says so") {
  LruCache cache{LruCache::Limits{}};
  cache.put(key(1), "v");
  cache.put(key(2), "v");
  CHECK(cache.erase(key(1)));
  CHECK_FALSE(cache.contains(key(1)));
  CHECK(cache.stats().entries == 1);
  CHECK(cache.stats().bytes == LruCache::charge_for(1));
  CHECK_FALSE(cache.erase(key(1)));
  CHECK(cache.stats().evictions == 0);
}

TEST_CASE("erase of an expired entry removes it, counts an expiration and returns false") {
  FakeClock clock;
  LruCache cache{LruCache::Limits{}, clock.fn()};
  cache.put(key(1), "v", 10ms);
  clock.now += 10ms;
  CHECK_FALSE(cache.erase(key(1)));
  CHECK(cache.stats().entries == 0);
  CHECK(cache.stats().bytes == 0);
  CHECK(cache.stats().expirations == 1);
}

TEST_CASE("clear removes every entry and keeps the counters") {
  LruCache cache{LruCache::Limits{}};
  cache.put(key(1), "v");
  cache.put(key(2), "v");
  (void)cache.get(key(1));
  (void)cache.get(key(3));
  cache.clear();
  CHECK_FALSE(cache.contains(key(1)));
  CHECK_FALSE(cache.contains(key(2)));
  const auto s = cache.stats();
  CHECK(s.entries == 0);
  CHECK(s.bytes == 0);
  CHECK(s.hits == 1);
  CHECK(s.misses == 1);
  CHECK(s.inserts == 2);
  CHECK(s.evictions == 0);
  cache.put(key(1), "again");
  CHECK(*cache.get(key(1)) == "again");
}

TEST_CASE("stats count hits, misses and inserts, and hit_ratio is hits over lookups") {
  LruCache cache{LruCache::Limits{}};
  CHECK(cache.stats().hit_ratio() == 0.0);
  cache.put(key(1), "v");
  cache.put(key(1), "w");
  for (int i = 0; i < 3; ++i) (void)cache.get(key(1));
  (void)cache.get(key(2));
  const auto s = cache.stats();
  CHECK(s.hits == 3);
  CHECK(s.misses == 1);
  CHECK(s.inserts == 2);
  CHECK(s.hit_ratio() == doctest::Approx(0.75));
}

TEST_CASE("stats_json has snake_case keys matching stats()") {
  FakeClock clock;
  LruCache::Limits limits;
  limits.max_entries = 1;
  limits.max_bytes = LruCache::charge_for(100);
  LruCache cache{limits, clock.fn()};
  cache.put(key(1), "v", 5ms);
  (void)cache.get(key(1));
  cache.put(key(2), "v");               // evicts 1
  cache.put(key(3), std::string(101, 'x'));  // rejected
  cache.put(key(4), "v", 5ms);          // evicts 2
  clock.now += 5ms;
  (void)cache.get(key(4));              // expired
  const json j = cache.stats_json();
  CHECK(j == json{{"hits", 1},
                  {"misses", 1},
                  {"evictions", 2},
                  {"expirations", 1},
                  {"rejected", 1},
                  {"inserts", 3},
                  {"invalidations", 0},
                  {"stale", 0},
                  {"bytes", 0},
                  {"entries", 0},
                  {"max_bytes", LruCache::charge_for(100)},
                  {"max_entries", 1},
                  {"default_ttl_ms", 300000},
                  {"hit_ratio", 0.5}});
}

TEST_CASE("vouched entries carry their voucher and are dropped by owner or tag, counted as invalidations") {
  LruCache cache{entries(10)};
  cache.put(key(1), "plain");
  cache.put(key(2), "a", {}, std::make_shared<const mcpd::Voucher>(mcpd::Voucher{"search#1", "s1", "/r/a"}));
  cache.put(key(3), "b", {}, std::make_shared<const mcpd::Voucher>(mcpd::Voucher{"search#1", "s2", "/r/b"}));
  cache.put(key(4), "c", {}, std::make_shared<const mcpd::Voucher>(mcpd::Voucher{"search#2", "s3", "/r/a"}));
  auto found = cache.find(key(2));
  REQUIRE(found.has_value());
  CHECK(*found->value == "a");
  REQUIRE(found->voucher);
  CHECK(found->voucher->state == "s1");
  CHECK_FALSE(cache.find(key(1))->voucher);
  CHECK(cache.erase_vouched([](const mcpd::Voucher& v) { return v.owner == "search#1" && v.tag == "/r/a"; }) == 1);
  CHECK_FALSE(cache.contains(key(2)));
  CHECK(cache.contains(key(3)));
  CHECK(cache.erase_vouched([](const mcpd::Voucher& v) { return v.owner == "search#1"; }) == 1);
  CHECK(cache.contains(key(1)));  // never vouched: never dropped this way
  CHECK(cache.contains(key(4)));
  CHECK(cache.stats().invalidations == 2);
  CHECK(cache.stats().entries == 2);
  // A key's entry goes only while it is the one a voucher was checked for.
  auto newer = std::make_shared<const mcpd::Voucher>(mcpd::Voucher{"search#2", "s4", "/r/a"});
  auto older = cache.find(key(4))->voucher;
  cache.put(key(4), "d", {}, newer);
  CHECK_FALSE(cache.erase_vouched(key(4), older.get()));
  CHECK(cache.erase_vouched(key(4), newer.get()));
  CHECK_FALSE(cache.contains(key(4)));
  std::uint64_t hits = cache.stats().hits;
  (void)cache.find(key(1));
  cache.hit_was_stale();
  CHECK(cache.stats().hits == hits);
  CHECK(cache.stats().stale == 1);
}

TEST_CASE("a value handed out by get outlives its entry") {
  LruCache cache{entries(1)};
  cache.put(key(1), "first");
  const auto value = cache.get(key(1));
  cache.put(key(2), "second");  // evicts 1
  CHECK_FALSE(cache.contains(key(1)));
  CHECK(*value == "first");
}

TEST_CASE("a moved cache keeps its entries and order") {
  LruCache a{entries(2)};
  a.put(key(1), "v");
  a.put(key(2), "v");
  LruCache b = std::move(a);
  (void)b.get(key(1));
  b.put(key(3), "v");
  CHECK(b.contains(key(1)));
  CHECK_FALSE(b.contains(key(2)));
}
