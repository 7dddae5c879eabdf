// Specification of cache/single_flight.h: one TEST_CASE per sentence of its contract.
#include <stdexcept>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "cache_key.h"
#include "lru_cache.h"
#include "single_flight.h"

using mcpd::CacheKey;
using mcpd::LruCache;
using mcpd::SingleFlight;

namespace {

CacheKey key(int i) { return mcpd::make_cache_key("tool", {{"i", i}}); }

void ignore(const std::string&) {}

}  // namespace

TEST_CASE("the first join for a key leads a new flight") {
  SingleFlight<std::string> flights;
  CHECK_FALSE(flights.in_flight(key(1)));
  CHECK(flights.join(key(1), ignore));
  CHECK(flights.in_flight(key(1)));
  CHECK(flights.flights() == 1);
  CHECK(flights.waiting(key(1)) == 0);
}

TEST_CASE("later joins for a running flight wait instead of leading") {
  SingleFlight<std::string> flights;
  CHECK(flights.join(key(1), ignore));
  CHECK_FALSE(flights.join(key(1), ignore));
  CHECK_FALSE(flights.join(key(1), ignore));
  CHECK(flights.waiting(key(1)) == 2);
  CHECK(flights.flights() == 1);
}

TEST_CASE("complete calls every waiter once with the value, not the leader, and returns the count") {
  SingleFlight<std::string> flights;
  bool leader_called = false;
  CHECK(flights.join(key(1), [&](const std::string&) { leader_called = true; }));
  constexpr int kWaiters = 5;
  std::vector<std::string> received;
  for (int i = 0; i < kWaiters; ++i)
    CHECK_FALSE(flights.join(key(1), [&](const std::string& v) { received.push_back(v); }));
  CHECK(flights.complete(key(1), "result") == kWaiters);
  CHECK(received == std::vector<std::string>(kWaiters, "result"));
  CHECK_FALSE(leader_called);
}

TEST_CASE("waiters are called in join order") {
  SingleFlight<int> flights;
  std::vector<int> order;
  flights.join(key(1), [](const int&) {});
  for (int i = 0; i < 4; ++i) flights.join(key(1), [&order, i](const int&) { order.push_back(i); });
  flights.complete(key(1), 0);
  CHECK(order == std::vector<int>{0, 1, 2, 3});
}

TEST_CASE("a flight with no waiters completes with count 0") {
  SingleFlight<int> flights;
  flights.join(key(1), [](const int&) {});
  CHECK(flights.complete(key(1), 7) == 0);
  CHECK_FALSE(flights.in_flight(key(1)));
}

TEST_CASE("complete for a key with no flight does nothing and returns 0") {
  SingleFlight<int> flights;
  flights.join(key(1), [](const int&) {});
  CHECK(flights.complete(key(2), 7) == 0);
  CHECK(flights.in_flight(key(1)));
}

TEST_CASE("complete ends the flight; a join after it leads a new one") {
  SingleFlight<std::string> flights;
  int calls = 0;
  flights.join(key(1), ignore);
  flights.join(key(1), [&](const std::string&) { ++calls; });
  flights.complete(key(1), "first");
  CHECK_FALSE(flights.in_flight(key(1)));
  CHECK(flights.flights() == 0);

  CHECK(flights.join(key(1), ignore));
  std::string second;
  CHECK_FALSE(flights.join(key(1), [&](const std::string& v) { second = v; }));
  CHECK(flights.complete(key(1), "second") == 1);
  CHECK(calls == 1);  // the first flight's waiter is not called again
  CHECK(second == "second");
}

TEST_CASE("flights for different keys are independent") {
  SingleFlight<int> flights;
  int got1 = 0, got2 = 0;
  CHECK(flights.join(key(1), [](const int&) {}));
  CHECK(flights.join(key(2), [](const int&) {}));
  flights.join(key(1), [&](const int& v) { got1 = v; });
  flights.join(key(2), [&](const int& v) { got2 = v; });
  CHECK(flights.flights() == 2);
  CHECK(flights.complete(key(1), 11) == 1);
  CHECK(got1 == 11);
  CHECK(got2 == 0);
  CHECK(flights.in_flight(key(2)));
  CHECK(flights.complete(key(2), 22) == 1);
  CHECK(got2 == 22);
}

TEST_CASE("a waiter may join the same key again: it leads a new flight") {
  SingleFlight<std::string> flights;
  std::vector<std::string> log;
  flights.join(key(1), ignore);
  // Waiter A re-joins inside its callback and becomes the new leader; waiter B then joins that new
  // flight as a waiter.
  flights.join(key(1), [&](const std::string& v) {
    log.push_back("A got " + v);
    CHECK(flights.join(key(1), ignore));
  });
  flights.join(key(1), [&](const std::string& v) {
    log.push_back("B got " + v);
    CHECK_FALSE(flights.join(key(1), [&](const std::string& v2) { log.push_back("B again got " + v2); }));
  });
  CHECK(flights.complete(key(1), "one") == 2);
  CHECK(flights.in_flight(key(1)));
  CHECK(flights.waiting(key(1)) == 1);
  CHECK(flights.complete(key(1), "two") == 1);
  CHECK(log == std::vector<std::string>{"A got one", "B got one", "B again got two"});
  CHECK(flights.flights() == 0);
}

TEST_CASE("a waiter may complete the flight it started from inside its callback") {
  SingleFlight<int> flights;
  int later = 0;
  flights.join(key(1), [](const int&) {});
  flights.join(key(1), [&](const int& v) {
    CHECK(flights.join(key(1), [](const int&) {}));
    flights.join(key(1), [&](const int& v2) { later = v2; });
    CHECK(flights.complete(key(1), v + 1) == 1);
  });
  CHECK(flights.complete(key(1), 1) == 1);
  CHECK(later == 2);
  CHECK(flights.flights() == 0);
}

namespace {
// What the router would carry: a result or an error a user can act on.
struct Outcome {
  bool ok;
  std::string text;
};
}  // namespace

TEST_CASE("errors are delivered to waiters like values") {
  SingleFlight<Outcome> flights;
  std::vector<Outcome> got;
  flights.join(key(1), [](const Outcome&) {});
  flights.join(key(1), [&](const Outcome& o) { got.push_back(o); });
  flights.join(key(1), [&](const Outcome& o) { got.push_back(o); });
  CHECK(flights.complete(key(1), Outcome{false, "worker died"}) == 2);
  REQUIRE(got.size() == 2);
  for (const Outcome& o : got) {
    CHECK_FALSE(o.ok);
    CHECK(o.text == "worker died");
  }
}

TEST_CASE("single flight caches nothing: a completed error is not in LruCache unless the caller puts it") {
  SingleFlight<Outcome> flights;
  LruCache cache{LruCache::Limits{}};
  // The router's pattern: lead, do the work, cache only successes, complete.
  auto finish = [&](const CacheKey& k, const Outcome& o) {
    if (o.ok) cache.put(k, o.text);
    return flights.complete(k, o);
  };
  flights.join(key(1), [](const Outcome&) {});
  flights.join(key(1), [](const Outcome&) {});
  CHECK(finish(key(1), Outcome{false, "timeout"}) == 1);
  CHECK(cache.get(key(1)) == nullptr);
  CHECK(cache.stats().inserts == 0);

  // The next call for the key runs the work again rather than reusing the error.
  CHECK(flights.join(key(1), [](const Outcome&) {}));
  CHECK(finish(key(1), Outcome{true, "{\"ok\":1}"}) == 0);
  REQUIRE(cache.get(key(1)) != nullptr);
  CHECK(*cache.get(key(1)) == "{\"ok\":1}");
}

TEST_CASE("a throwing waiter does not stop the others; the first exception is rethrown") {
  SingleFlight<int> flights;
  int called = 0;
  flights.join(key(1), [](const int&) {});
  flights.join(key(1), [&](const int&) {
    ++called;
    throw std::runtime_error("first");
  });
  flights.join(key(1), [&](const int&) {
    ++called;
    throw std::logic_error("second");
  });
  flights.join(key(1), [&](const int&) { ++called; });
  CHECK_THROWS_WITH_AS(flights.complete(key(1), 0), "first", std::runtime_error);
  CHECK(called == 3);
  CHECK_FALSE(flights.in_flight(key(1)));
}

TEST_CASE("an empty waiter is not kept") {
  SingleFlight<int> flights;
  flights.join(key(1), nullptr);
  CHECK_FALSE(flights.join(key(1), nullptr));
  CHECK(flights.waiting(key(1)) == 0);
  CHECK(flights.complete(key(1), 0) == 0);
}
