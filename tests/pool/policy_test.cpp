// Specification of coordinator/pool/policy.h: one TEST_CASE per rule, driven by a fake clock (a
// time_point the test advances) and seeded jitter, so every run is the same.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "policy.h"

using namespace mcpd::pool;
using namespace std::chrono_literals;

namespace {

// Far from the epoch so "now - something" never needs a time before it.
const Clock::time_point t0 = Clock::time_point{} + 1h;

struct FakeClock {
  Clock::time_point now = t0;
  void advance(Clock::duration d) { now += d; }
};

PoolSnapshot pool_of(std::size_t min_workers, std::size_t max_workers) {
  PoolSnapshot pool;
  pool.min_workers = min_workers;
  pool.max_workers = max_workers;
  return pool;
}

// A pool that follows decide_scale's decisions, for the scenarios: spawned workers start, become
// ready when told, take queued calls most-recently-idle first, and go idle again when calls finish.
struct SimPool {
  PoolSnapshot state;
  AutoscalerSettings settings;
  std::uint64_t next_id = 1;
  std::vector<std::uint64_t> starting_ids, busy_ids;
  std::size_t spawned = 0, retired = 0;
  std::vector<Clock::time_point> retired_at;

  PoolSnapshot snapshot() const {
    PoolSnapshot s = state;
    s.starting = starting_ids.size();
    s.busy = busy_ids.size();
    return s;
  }
  void decide(Clock::time_point now) {
    const ScaleDecision d = decide_scale(snapshot(), settings, now);
    for (std::size_t i = 0; i < d.spawn; ++i) starting_ids.push_back(next_id++);
    if (d.spawn > 0) state.last_scale_up = now;
    for (std::uint64_t id : d.retire) {
      auto it = std::find_if(state.idle.begin(), state.idle.end(),
                             [&](const IdleWorker& w) { return w.id == id; });
      REQUIRE(it != state.idle.end());
      state.idle.erase(it);
      retired_at.push_back(now);
    }
    if (!d.retire.empty()) state.last_scale_down = now;
    spawned += d.spawn;
    retired += d.retire.size();
    dispatch();
  }
  void ready(Clock::time_point now) {
    for (std::uint64_t id : starting_ids) state.idle.push_back({id, now});
    starting_ids.clear();
    dispatch();
  }
  void dispatch() {
    while (state.queued > 0 && !state.idle.empty()) {
      busy_ids.push_back(state.idle.back().id);  // most recently idle first
      state.idle.pop_back();
      --state.queued;
    }
  }
  void finish_all(Clock::time_point now) {
    for (std::uint64_t id : busy_ids) state.idle.push_back({id, now});
    busy_ids.clear();
    dispatch();
  }
  std::size_t total() const { return snapshot().total(); }
};

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Autoscaler
// ---------------------------------------------------------------------------------------------------

TEST_CASE("autoscaler prewarms an empty pool to min_workers") {
  const ScaleDecision d = decide_scale(pool_of(2, 8), {}, t0);
  CHECK(d.spawn == 2);
  CHECK(d.retire.empty());
  CHECK(d.reason.find("below min") != std::string::npos);
}

TEST_CASE("autoscaler replaces workers below min, counting the ones already starting") {
  PoolSnapshot pool = pool_of(3, 8);
  pool.busy = 1;
  pool.starting = 1;
  CHECK(decide_scale(pool, {}, t0).spawn == 1);

  pool.starting = 2;
  CHECK(decide_scale(pool, {}, t0).spawn == 0);
}

TEST_CASE("autoscaler holds an idle pool at min") {
  PoolSnapshot pool = pool_of(2, 8);
  pool.idle = {{1, t0}, {2, t0}};
  const ScaleDecision d = decide_scale(pool, {}, t0 + 1h);
  CHECK(d.spawn == 0);
  CHECK(d.retire.empty());
}

TEST_CASE("autoscaler: min_workers wins over a smaller max_workers") {
  CHECK(decide_scale(pool_of(3, 1), {}, t0).spawn == 3);
}

TEST_CASE("autoscaler scales a burst up at once, to cover the queue and not beyond max") {
  PoolSnapshot pool = pool_of(1, 8);
  pool.busy = 1;
  pool.queued = 3;
  const ScaleDecision covering = decide_scale(pool, {}, t0);
  CHECK(covering.spawn == 3);
  CHECK(covering.reason.find("queue") != std::string::npos);

  pool.queued = 100;
  CHECK(decide_scale(pool, {}, t0).spawn == 7);  // 1 busy + 7 = max

  pool.busy = 8;
  const ScaleDecision at_max = decide_scale(pool, {}, t0);
  CHECK(at_max.spawn == 0);
  CHECK(at_max.reason.find("at max") != std::string::npos);
}

TEST_CASE("autoscaler scales up with no cooldown, even right after a scale up") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.busy = 2;
  pool.queued = 2;
  pool.last_scale_up = t0;
  CHECK(decide_scale(pool, {}, t0).spawn == 2);
}

TEST_CASE("autoscaler counts starting workers against the queue") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.busy = 2;
  pool.starting = 2;
  pool.queued = 3;
  CHECK(decide_scale(pool, {}, t0).spawn == 1);

  pool.queued = 2;
  CHECK(decide_scale(pool, {}, t0).spawn == 0);
}

TEST_CASE("autoscaler counts idle workers against the queue") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.idle = {{1, t0}};
  pool.queued = 3;
  CHECK(decide_scale(pool, {}, t0).spawn == 2);

  pool.idle = {{1, t0}, {2, t0}, {3, t0}};
  CHECK(decide_scale(pool, {}, t0).spawn == 0);
}

TEST_CASE("autoscaler never scales down while calls are queued") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.idle = {{1, t0}, {2, t0}};
  pool.queued = 1;  // covered by an idle worker, so nothing spawns either
  const ScaleDecision d = decide_scale(pool, {}, t0 + 1h);
  CHECK(d.spawn == 0);
  CHECK(d.retire.empty());
}

TEST_CASE("autoscaler retires an idle worker only once it has been idle for idle_timeout") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.idle = {{7, t0}};
  CHECK(decide_scale(pool, {}, t0 + 29999ms).retire.empty());
  const ScaleDecision d = decide_scale(pool, {}, t0 + 30000ms);
  CHECK(d.retire == std::vector<std::uint64_t>{7});
  CHECK(d.spawn == 0);
}

TEST_CASE("autoscaler retires one worker at a time, the one idle longest") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.idle = {{1, t0 + 2s}, {2, t0}, {3, t0 + 1s}};
  CHECK(decide_scale(pool, {}, t0 + 1h).retire == std::vector<std::uint64_t>{2});
}

TEST_CASE("autoscaler retires at most one worker per scale_down_interval") {
  PoolSnapshot pool = pool_of(0, 8);
  pool.idle = {{1, t0}, {2, t0}};
  const Clock::time_point now = t0 + 1h;
  pool.last_scale_down = now - 1999ms;
  const ScaleDecision held = decide_scale(pool, {}, now);
  CHECK(held.retire.empty());
  CHECK(held.reason.find("retired") != std::string::npos);
  pool.last_scale_down = now - 2000ms;
  CHECK(decide_scale(pool, {}, now).retire.size() == 1);
}

TEST_CASE("autoscaler never retires below min_workers, counting starting workers") {
  PoolSnapshot pool = pool_of(2, 8);
  pool.idle = {{1, t0}, {2, t0}};
  CHECK(decide_scale(pool, {}, t0 + 1h).retire.empty());

  pool.idle = {{1, t0}, {2, t0}, {3, t0}};
  CHECK(decide_scale(pool, {}, t0 + 1h).retire.size() == 1);

  pool.idle = {{1, t0}, {2, t0}};
  pool.starting = 0;
  pool.busy = 1;
  CHECK(decide_scale(pool, {}, t0 + 1h).retire.size() == 1);

  pool.busy = 0;
  pool.idle = {{1, t0}};
  pool.starting = 1;
  CHECK(decide_scale(pool, {}, t0 + 1h).retire.empty());
}

TEST_CASE("autoscaler does not retire within scale_up_cooldown_before_down of a scale up") {
  AutoscalerSettings settings;
  settings.idle_timeout = 0ms;
  PoolSnapshot pool = pool_of(0, 8);
  pool.idle = {{1, t0}, {2, t0}};
  pool.last_scale_up = t0;
  const ScaleDecision held = decide_scale(pool, settings, t0 + 4999ms);
  CHECK(held.retire.empty());
  CHECK(held.reason.find("scaled up") != std::string::npos);
  CHECK(decide_scale(pool, settings, t0 + 5000ms).retire.size() == 1);
}

TEST_CASE("autoscaler: the cooldown after a scale up keeps burst, lull, burst from flapping") {
  // Short idle timeout so that only the cooldown stands between the lull and a retirement.
  auto run = [](ms cooldown) {
    FakeClock clock;
    SimPool pool;
    pool.state.max_workers = 8;
    pool.settings.idle_timeout = 1s;
    pool.settings.scale_up_cooldown_before_down = cooldown;
    auto burst = [&] {
      pool.state.queued = 4;
      pool.decide(clock.now);
      clock.advance(200ms);
      pool.ready(clock.now);
      clock.advance(800ms);
      pool.finish_all(clock.now);
    };
    burst();
    for (int tick = 0; tick < 30; ++tick) {  // a 3 s lull
      clock.advance(100ms);
      pool.decide(clock.now);
    }
    burst();
    return pool;
  };
  const SimPool steady = run(5s);
  CHECK(steady.spawned == 4);
  CHECK(steady.retired == 0);

  const SimPool flapping = run(0ms);  // what the cooldown prevents
  CHECK(flapping.retired > 0);
  CHECK(flapping.spawned > 4);
}

TEST_CASE("autoscaler: bursts more often than idle_timeout never flap; after them the pool shrinks "
          "one worker per interval down to min") {
  FakeClock clock;
  SimPool pool;
  pool.state.min_workers = 1;
  pool.state.max_workers = 8;
  pool.decide(clock.now);
  CHECK(pool.spawned == 1);  // prewarm
  pool.ready(clock.now);

  for (int burst = 0; burst < 30; ++burst) {  // 4 calls every 10 s for 5 minutes
    pool.state.queued = 4;
    pool.decide(clock.now);
    clock.advance(500ms);
    pool.ready(clock.now);
    clock.advance(500ms);
    pool.finish_all(clock.now);
    for (int tick = 0; tick < 18; ++tick) {
      clock.advance(500ms);
      pool.decide(clock.now);
    }
  }
  CHECK(pool.spawned == 4);
  CHECK(pool.retired == 0);
  CHECK(pool.total() == 4);

  const Clock::time_point last_idle = clock.now - 9s;
  for (int tick = 0; tick < 600; ++tick) {  // a minute of quiet
    clock.advance(100ms);
    pool.decide(clock.now);
  }
  CHECK(pool.total() == 1);
  REQUIRE(pool.retired_at.size() == 3);
  CHECK(pool.retired_at[0] - last_idle >= 30s);
  CHECK(pool.retired_at[1] - pool.retired_at[0] >= 2s);
  CHECK(pool.retired_at[2] - pool.retired_at[1] >= 2s);
  CHECK(pool.retired_at[2] - pool.retired_at[1] < 2100ms);
}

// ---------------------------------------------------------------------------------------------------
// Restart backoff
// ---------------------------------------------------------------------------------------------------

namespace {

BackoffSettings no_jitter() {
  BackoffSettings s;
  s.jitter_fraction = 0;
  return s;
}

}  // namespace

TEST_CASE("backoff is zero when no crash loop is going on") {
  RestartBackoff backoff;
  CHECK(backoff.consecutive() == 0);
  CHECK(backoff.delay(t0) == 0ms);
}

TEST_CASE("backoff grows by the multiplier per crash-loop death and stops at max") {
  RestartBackoff backoff(no_jitter());
  const std::vector<ms> expected{100ms,  200ms,  400ms,   800ms,   1600ms,
                                 3200ms, 6400ms, 10000ms, 10000ms, 10000ms};
  for (std::size_t i = 0; i < expected.size(); ++i) {
    backoff.record_crash_loop_death(t0);
    CHECK(backoff.consecutive() == i + 1);
    CHECK(backoff.delay(t0) == expected[i]);
  }
  for (int i = 0; i < 200; ++i) backoff.record_crash_loop_death(t0);  // no overflow in a long loop
  CHECK(backoff.delay(t0) == 10000ms);
}

TEST_CASE("backoff delay runs from the death and reaches zero") {
  RestartBackoff backoff(no_jitter());
  backoff.record_crash_loop_death(t0);
  backoff.record_crash_loop_death(t0);
  CHECK(backoff.delay(t0 + 50ms) == 150ms);
  CHECK(backoff.delay(t0 + 200ms) == 0ms);
  CHECK(backoff.delay(t0 + 1h) == 0ms);
  CHECK(backoff.consecutive() == 2);  // the loop is not over just because the wait is
}

TEST_CASE("backoff jitter stays within +/- jitter_fraction, spreads, and repeats per seed") {
  ms lowest = 1h, highest = 0ms;
  for (std::uint64_t seed = 0; seed < 1000; ++seed) {
    RestartBackoff backoff({}, seed);
    backoff.record_crash_loop_death(t0);
    const ms first = backoff.delay(t0);
    CHECK(first >= 80ms);
    CHECK(first <= 120ms);
    CHECK(backoff.delay(t0) == first);  // asked twice, same answer
    lowest = std::min(lowest, first);
    highest = std::max(highest, first);
    for (int i = 0; i < 9; ++i) backoff.record_crash_loop_death(t0);
    CHECK(backoff.delay(t0) >= 8000ms);
    CHECK(backoff.delay(t0) <= 12000ms);
  }
  CHECK(lowest <= 82ms);
  CHECK(highest >= 118ms);

  RestartBackoff a({}, 42), b({}, 42);
  for (int i = 0; i < 5; ++i) {
    a.record_crash_loop_death(t0);
    b.record_crash_loop_death(t0);
    CHECK(a.delay(t0) == b.delay(t0));
  }
}

TEST_CASE("backoff resets when a worker proves stable") {
  RestartBackoff backoff(no_jitter());
  for (int i = 0; i < 5; ++i) backoff.record_crash_loop_death(t0);
  backoff.worker_stable();
  CHECK(backoff.consecutive() == 0);
  CHECK(backoff.delay(t0) == 0ms);
  backoff.record_crash_loop_death(t0 + 1s);
  CHECK(backoff.delay(t0 + 1s) == 100ms);
}

TEST_CASE("backoff: a worker is stable once up for stable_after") {
  RestartBackoff backoff;
  CHECK_FALSE(backoff.is_stable(t0, t0 + 9999ms));
  CHECK(backoff.is_stable(t0, t0 + 10000ms));
}

TEST_CASE("backoff: only deaths before hello or before the first call count as a crash loop") {
  CHECK(counts_as_crash_loop(DeathKind::before_hello));
  CHECK(counts_as_crash_loop(DeathKind::before_first_call));
  CHECK_FALSE(counts_as_crash_loop(DeathKind::during_call_after_serving));
  CHECK_FALSE(counts_as_crash_loop(DeathKind::idle_after_serving));
}

TEST_CASE("backoff: isolated deaths of workers that served do not grow it") {
  RestartBackoff backoff(no_jitter());
  CHECK_FALSE(backoff.record_death(DeathKind::during_call_after_serving, t0));
  CHECK_FALSE(backoff.record_death(DeathKind::idle_after_serving, t0));
  CHECK(backoff.consecutive() == 0);
  CHECK(backoff.delay(t0) == 0ms);

  CHECK(backoff.record_death(DeathKind::before_hello, t0));
  CHECK(backoff.record_death(DeathKind::before_first_call, t0));
  CHECK_FALSE(backoff.record_death(DeathKind::idle_after_serving, t0));
  CHECK(backoff.consecutive() == 2);
  CHECK(backoff.delay(t0) == 200ms);
}

// ---------------------------------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------------------------------

namespace {

using State = CircuitBreaker::State;

void fail(CircuitBreaker& breaker, int times, Clock::time_point now) {
  for (int i = 0; i < times; ++i) {
    REQUIRE(breaker.allow_call(now));
    breaker.record_failure(now);
  }
}

}  // namespace

TEST_CASE("breaker starts closed and allows calls") {
  CircuitBreaker breaker;
  CHECK(breaker.state(t0) == State::closed);
  CHECK(breaker.allow_call(t0));
  CHECK(breaker.retry_after(t0) == 0ms);
  CHECK(breaker.describe(t0) == "closed");
}

TEST_CASE("breaker opens at failure_threshold consecutive failures") {
  CircuitBreaker breaker;
  fail(breaker, 4, t0);
  CHECK(breaker.state(t0) == State::closed);
  CHECK(breaker.describe(t0) == "closed: 4 consecutive failures");
  CHECK(breaker.allow_call(t0));
  breaker.record_failure(t0);
  CHECK(breaker.state(t0) == State::open);
  CHECK(breaker.opens() == 1);
}

TEST_CASE("breaker: a success while closed resets the consecutive failures") {
  CircuitBreaker breaker;
  fail(breaker, 4, t0);
  breaker.record_success(t0);
  CHECK(breaker.consecutive_failures() == 0);
  fail(breaker, 4, t0);
  CHECK(breaker.state(t0) == State::closed);
}

TEST_CASE("breaker fails fast while open and says when the trial comes") {
  FakeClock clock;
  CircuitBreaker breaker;
  fail(breaker, 5, clock.now);
  CHECK_FALSE(breaker.allow_call(clock.now));
  CHECK(breaker.retry_after(clock.now) == 5000ms);
  clock.advance(800ms);
  CHECK(breaker.describe(clock.now) == "open: 5 consecutive failures; next trial in 4200 ms");
  CHECK(breaker.retry_after(clock.now) == 4200ms);
  clock.advance(4199ms);
  CHECK_FALSE(breaker.allow_call(clock.now));
  CHECK(breaker.state(clock.now) == State::open);
  CHECK(breaker.retry_after(clock.now) == 1ms);
}

TEST_CASE("breaker reports half_open once the cooldown has passed, before any call asks") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  CHECK(breaker.state(t0 + 5s) == State::half_open);
  CHECK(breaker.retry_after(t0 + 5s) == 0ms);
  CHECK(breaker.describe(t0 + 5s) == "half-open: 5 consecutive failures; next call is the trial");
}

TEST_CASE("breaker in half_open allows exactly one trial call") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  CHECK(breaker.allow_call(t0 + 5s));
  CHECK_FALSE(breaker.allow_call(t0 + 5s));
  CHECK_FALSE(breaker.allow_call(t0 + 1h));
  CHECK(breaker.state(t0 + 1h) == State::half_open);
  CHECK(breaker.status(t0 + 1h).trial_in_flight);
  CHECK(breaker.retry_after(t0 + 1h) == 5000ms);
  CHECK(breaker.describe(t0 + 1h) == "half-open: 5 consecutive failures; trial call in flight");
}

TEST_CASE("breaker closes when the trial succeeds") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  REQUIRE(breaker.allow_call(t0 + 5s));
  breaker.record_success(t0 + 6s);
  CHECK(breaker.state(t0 + 6s) == State::closed);
  CHECK(breaker.consecutive_failures() == 0);
  CHECK(breaker.allow_call(t0 + 6s));
  CHECK(breaker.allow_call(t0 + 6s));
  fail(breaker, 4, t0 + 7s);  // a fresh count: four more failures do not reopen it
  CHECK(breaker.state(t0 + 7s) == State::closed);
}

TEST_CASE("breaker reopens with a doubled cooldown when the trial fails, up to max_cooldown") {
  FakeClock clock;
  CircuitBreaker breaker;
  fail(breaker, 5, clock.now);
  const std::vector<ms> cooldowns{10s, 20s, 40s, 60s, 60s};
  clock.advance(5s);
  for (std::size_t i = 0; i < cooldowns.size(); ++i) {
    REQUIRE(breaker.allow_call(clock.now));
    breaker.record_failure(clock.now);
    CHECK(breaker.state(clock.now) == State::open);
    CHECK(breaker.opens() == i + 2);
    CHECK(breaker.retry_after(clock.now) == cooldowns[i]);
    CHECK(breaker.status(clock.now).cooldown == cooldowns[i]);
    clock.advance(cooldowns[i] - 1ms);
    CHECK_FALSE(breaker.allow_call(clock.now));
    clock.advance(1ms);
  }
}

TEST_CASE("breaker cooldown goes back to its base when it closes") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  REQUIRE(breaker.allow_call(t0 + 5s));
  breaker.record_failure(t0 + 5s);  // cooldown now 10 s
  REQUIRE(breaker.allow_call(t0 + 15s));
  breaker.record_success(t0 + 15s);
  fail(breaker, 5, t0 + 20s);
  CHECK(breaker.retry_after(t0 + 20s) == 5000ms);
  CHECK(breaker.opens() == 3);
}

TEST_CASE("breaker: an abandoned trial gives the trial slot back") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  REQUIRE(breaker.allow_call(t0 + 5s));
  breaker.record_abandoned(t0 + 6s);
  CHECK(breaker.state(t0 + 6s) == State::half_open);
  CHECK(breaker.allow_call(t0 + 6s));
  CHECK_FALSE(breaker.allow_call(t0 + 6s));
  CHECK(breaker.opens() == 1);  // giving the slot back is not a new opening
  breaker.record_abandoned(t0 + 7s);
  breaker.record_abandoned(t0 + 7s);  // and a second one changes nothing
  CHECK(breaker.allow_call(t0 + 7s));
  CHECK_FALSE(breaker.allow_call(t0 + 7s));
}

TEST_CASE("breaker ignores results reported while open (calls allowed before it opened)") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  breaker.record_success(t0 + 1s);
  breaker.record_failure(t0 + 1s);
  CHECK(breaker.state(t0 + 1s) == State::open);
  CHECK(breaker.retry_after(t0 + 1s) == 4000ms);
  CHECK(breaker.opens() == 1);
}

TEST_CASE("breaker status is a plain struct of the same facts") {
  CircuitBreaker breaker;
  fail(breaker, 5, t0);
  const CircuitBreaker::Status s = breaker.status(t0 + 1s);
  CHECK(s.state == State::open);
  CHECK(s.consecutive_failures == 5);
  CHECK(s.opens == 1);
  CHECK(s.cooldown == 5000ms);
  CHECK(s.retry_after == 4000ms);
  CHECK_FALSE(s.trial_in_flight);
  CHECK(to_string(s.state) == "open");
  CHECK(to_string(State::half_open) == "half_open");
}

TEST_CASE("breaker with a threshold of 1 opens on the first failure") {
  BreakerSettings settings;
  settings.failure_threshold = 1;
  CircuitBreaker breaker(settings);
  fail(breaker, 1, t0);
  CHECK(breaker.state(t0) == State::open);
}

// ---------------------------------------------------------------------------------------------------
// Recycling and memory
// ---------------------------------------------------------------------------------------------------

TEST_CASE("recycle_after_calls: 0 means never") {
  CHECK(recycle_after_calls(0, 0.2, 12345) == 0);
}

TEST_CASE("recycle_after_calls stays within [max * (1 - jitter), max] and spreads") {
  std::set<std::uint64_t> seen;
  for (std::uint64_t worker_id = 0; worker_id < 10000; ++worker_id) {
    const std::uint64_t n = recycle_after_calls(1000, 0.2, worker_id);
    CHECK(n >= 800);
    CHECK(n <= 1000);
    seen.insert(n);
  }
  CHECK(seen.size() > 150);
  CHECK(*seen.begin() <= 805);
  CHECK(*seen.rbegin() >= 995);

  std::set<std::uint64_t> first_ten;  // consecutive ids do not recycle together
  for (std::uint64_t worker_id = 1; worker_id <= 10; ++worker_id) {
    first_ten.insert(recycle_after_calls(1000, 0.2, worker_id));
  }
  CHECK(first_ten.size() >= 8);
  CHECK(recycle_after_calls(1000, 0.2, 77) == recycle_after_calls(1000, 0.2, 77));
}

TEST_CASE("recycle_after_calls: no jitter gives max; full jitter never gives 0") {
  for (std::uint64_t v = 0; v < 1000; ++v) {
    CHECK(recycle_after_calls(500, 0.0, v) == 500);
    const std::uint64_t n = recycle_after_calls(10, 1.0, v);
    CHECK(n >= 1);
    CHECK(n <= 10);
    CHECK(recycle_after_calls(1, 0.5, v) == 1);
    CHECK(recycle_after_calls(100, 7.0, v) >= 1);  // clamped to 1
    CHECK(recycle_after_calls(100, -1.0, v) == 100);  // clamped to 0
  }
}

TEST_CASE("over_soft_memory_limit: strictly above the limit; 0 is no limit") {
  CHECK_FALSE(over_soft_memory_limit(1ull << 40, 0));
  CHECK_FALSE(over_soft_memory_limit(100, 100));
  CHECK(over_soft_memory_limit(101, 100));
  CHECK_FALSE(over_soft_memory_limit(99, 100));
}

// ---------------------------------------------------------------------------------------------------
// Rollout and Rng
// ---------------------------------------------------------------------------------------------------

TEST_CASE("route_to_pool: 0 percent never, 100 percent always") {
  Rng rng{1};
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t h = rng.next();
    CHECK_FALSE(route_to_pool(h, 0));
    CHECK(route_to_pool(h, 100));
    CHECK(route_to_pool(h, 250));
  }
  CHECK(route_to_pool(~0ull, 100));
  CHECK_FALSE(route_to_pool(0, 0));
}

TEST_CASE("route_to_pool at 50 percent routes about half, each hash the same way every time") {
  Rng rng{2};
  int routed = 0;
  for (int i = 0; i < 10000; ++i) {
    const std::uint64_t h = rng.next();
    const bool first = route_to_pool(h, 50);
    routed += first ? 1 : 0;
    CHECK(route_to_pool(h, 50) == first);
    CHECK(first == (h % 100 < 50));
  }
  CHECK(routed > 4700);
  CHECK(routed < 5300);
}

TEST_CASE("route_to_pool: raising the percentage only adds requests to the pool") {
  Rng rng{3};
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t h = rng.next();
    for (unsigned p = 0; p < 100; ++p) {
      if (route_to_pool(h, p)) CHECK(route_to_pool(h, p + 1));
    }
  }
}

TEST_CASE("Rng is deterministic per seed and uniform() stays in [0, 1)") {
  Rng a{9}, b{9}, c{10};
  CHECK(a.next() == b.next());
  CHECK(a.next() != c.next());
  Rng r{0};
  double sum = 0;
  for (int i = 0; i < 10000; ++i) {
    const double u = r.uniform();
    CHECK(u >= 0.0);
    CHECK(u < 1.0);
    sum += u;
  }
  CHECK(sum / 10000 == doctest::Approx(0.5).epsilon(0.05));
}
