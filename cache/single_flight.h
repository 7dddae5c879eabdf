// SingleFlight makes identical calls that are in flight at the same time run once: the first caller
// for a key leads and does the work, later callers wait for the leader's value. The coordinator's event
// loop owns it; it is not thread-safe and takes no locks (one owner thread).
//
// Contract:
// - join(key, waiter) with no flight running for key starts one and returns true: the caller is the
//   leader, its waiter is not kept, and it must run the work and then call complete(key, value)
//   exactly once. Otherwise join keeps waiter and returns false (an empty waiter is not kept: the
//   caller only learns that a flight is running).
// - complete(key, value) ends the flight and calls every kept waiter (not the leader) once with value,
//   in join order, and returns how many it called; 0 when no flight was running for key.
// - Errors are values: the leader completes with whatever its work produced, an error included (Value
//   carries it), and every waiter receives it. A failed leader that never calls complete strands its
//   waiters, so the leader completes on every path.
// - SingleFlight caches nothing. A completed flight is forgotten; storing the value in LruCache is the
//   caller's choice, and errors are not stored there unless the caller chooses to.
// - The flight is ended before any waiter runs, so a waiter may call join for the same key: it starts
//   (and leads) a new flight, as does any join after complete.
// - If waiters throw, the rest are still called, and the first exception is rethrown afterwards.
#pragma once

#include <cstddef>
#include <exception>
#include <functional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "cache_key.h"

namespace mcpd {

template <class Value>
class SingleFlight {
 public:
  using Waiter = std::function<void(const Value&)>;

  /// True: no flight was running and the caller now leads one (waiter is dropped). False: waiter will
  /// be called by complete.
  bool join(const CacheKey& key, Waiter waiter) {
    auto [it, started] = flights_.try_emplace(key);
    if (!started && waiter) it->second.push_back(std::move(waiter));
    return started;
  }

  /// Ends key's flight and calls its waiters with value; returns how many were called.
  std::size_t complete(const CacheKey& key, const Value& value) {
    const auto it = flights_.find(key);
    if (it == flights_.end()) return 0;
    // Moved out and erased first: a waiter may join the same key again, which must start a new
    // flight and must not touch the list being walked.
    std::vector<Waiter> waiters = std::move(it->second);
    flights_.erase(it);
    std::exception_ptr first_error;
    for (Waiter& waiter : waiters) {
      try {
        waiter(value);
      } catch (...) {
        if (!first_error) first_error = std::current_exception();
      }
    }
    if (first_error) std::rethrow_exception(first_error);
    return waiters.size();
  }

  bool in_flight(const CacheKey& key) const { return flights_.contains(key); }

  /// How many waiters key's flight has (0 if none is running).
  std::size_t waiting(const CacheKey& key) const {
    const auto it = flights_.find(key);
    return it == flights_.end() ? 0 : it->second.size();
  }

  /// Number of flights running.
  std::size_t flights() const { return flights_.size(); }

 private:
  std::unordered_map<CacheKey, std::vector<Waiter>> flights_;
};

}  // namespace mcpd
