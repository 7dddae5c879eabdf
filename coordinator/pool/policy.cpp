#include "policy.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace mcpd::pool {

namespace {

std::string ms_text(Clock::duration d) {
  return std::to_string(std::chrono::ceil<ms>(d).count()) + " ms";
}

// Rounds up, so a caller told "wait this long" never comes back early.
ms ceil_ms(Clock::duration d) { return d <= Clock::duration::zero() ? ms{0} : std::chrono::ceil<ms>(d); }

}  // namespace

// ---------------------------------------------------------------------------------------------------
// Autoscaler
// ---------------------------------------------------------------------------------------------------

ScaleDecision decide_scale(const PoolSnapshot& pool, const AutoscalerSettings& settings,
                           Clock::time_point now) {
  ScaleDecision decision;
  const std::size_t ceiling = std::max(pool.max_workers, pool.min_workers);
  const std::size_t total = pool.total();
  const std::size_t room = total < ceiling ? ceiling - total : 0;

  const std::size_t floor_gap = pool.min_workers > total ? pool.min_workers - total : 0;
  const std::size_t covered = pool.starting + pool.idle.size();
  const std::size_t uncovered = pool.queued > covered ? pool.queued - covered : 0;
  const std::size_t wanted = std::max(floor_gap, uncovered);

  if (wanted > 0) {
    decision.spawn = std::min(wanted, room);
    if (decision.spawn == 0) {
      decision.reason = "at max: " + std::to_string(uncovered) + " queued calls wait for one of " +
                        std::to_string(total) + " workers";
    } else if (uncovered > floor_gap) {
      decision.reason = "queue: " + std::to_string(pool.queued) + " queued, " +
                        std::to_string(pool.idle.size()) + " idle, " +
                        std::to_string(pool.starting) + " starting; spawning " +
                        std::to_string(decision.spawn);
    } else {
      decision.reason = "below min: " + std::to_string(total) + " of " +
                        std::to_string(pool.min_workers) + " workers; spawning " +
                        std::to_string(decision.spawn);
    }
    return decision;
  }

  if (pool.queued > 0) return decision;  // every queued call has a worker coming; none is spare
  if (pool.idle.empty() || total <= pool.min_workers) return decision;
  if (pool.last_scale_up && now - *pool.last_scale_up < settings.scale_up_cooldown_before_down) {
    decision.reason = "hold: scaled up " + ms_text(now - *pool.last_scale_up) + " ago";
    return decision;
  }
  if (pool.last_scale_down && now - *pool.last_scale_down < settings.scale_down_interval) {
    decision.reason = "hold: retired one " + ms_text(now - *pool.last_scale_down) + " ago";
    return decision;
  }
  const IdleWorker* oldest = nullptr;
  for (const IdleWorker& worker : pool.idle) {
    if (!oldest || worker.idle_since < oldest->idle_since) oldest = &worker;
  }
  if (now - oldest->idle_since < settings.idle_timeout) return decision;
  decision.retire.push_back(oldest->id);
  decision.reason = "idle: worker " + std::to_string(oldest->id) + " idle for " +
                    ms_text(now - oldest->idle_since) + "; " + std::to_string(total - 1) + " left";
  return decision;
}

// ---------------------------------------------------------------------------------------------------
// Restart backoff
// ---------------------------------------------------------------------------------------------------

bool counts_as_crash_loop(DeathKind kind) {
  switch (kind) {
    case DeathKind::before_hello:
    case DeathKind::before_first_call:
      return true;
    case DeathKind::during_call_after_serving:
    case DeathKind::idle_after_serving:
      return false;
  }
  return false;
}

RestartBackoff::RestartBackoff(BackoffSettings settings, std::uint64_t seed)
    : settings_(settings), rng_{seed} {}

void RestartBackoff::record_crash_loop_death(Clock::time_point now) {
  ++consecutive_;
  const double initial = static_cast<double>(settings_.initial.count());
  const double cap = static_cast<double>(settings_.max.count());
  // Multiplying up to the cap (not pow) cannot overflow however long the loop runs.
  double base = initial;
  if (settings_.multiplier > 1.0) {
    for (std::size_t i = 1; i < consecutive_ && base < cap; ++i) base *= settings_.multiplier;
  }
  base = std::min(base, cap);
  const double jitter = std::clamp(settings_.jitter_fraction, 0.0, 1.0);
  const double jittered = base * (1.0 + jitter * (2.0 * rng_.uniform() - 1.0));
  restart_at_ = now + ms{static_cast<ms::rep>(std::llround(std::max(0.0, jittered)))};
}

bool RestartBackoff::record_death(DeathKind kind, Clock::time_point now) {
  if (!counts_as_crash_loop(kind)) return false;
  record_crash_loop_death(now);
  return true;
}

void RestartBackoff::worker_stable() {
  consecutive_ = 0;
  restart_at_ = {};
}

ms RestartBackoff::delay(Clock::time_point now) const {
  if (consecutive_ == 0) return ms{0};
  return ceil_ms(restart_at_ - now);
}

bool RestartBackoff::is_stable(Clock::time_point worker_started_at, Clock::time_point now) const {
  return now - worker_started_at >= settings_.stable_after;
}

// ---------------------------------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------------------------------

CircuitBreaker::CircuitBreaker(BreakerSettings settings)
    : settings_(settings), cooldown_(settings.cooldown) {}

void CircuitBreaker::open(Clock::time_point now) {
  state_ = State::open;
  opened_at_ = now;
  ++opens_;
}

bool CircuitBreaker::allow_call(Clock::time_point now) {
  switch (state_) {
    case State::closed:
      return true;
    case State::open:
      if (now - opened_at_ < cooldown_) return false;
      state_ = State::half_open;  // this call is the trial
      return true;
    case State::half_open:
      return false;
  }
  return false;
}

void CircuitBreaker::record_success(Clock::time_point) {
  switch (state_) {
    case State::closed:
      consecutive_failures_ = 0;
      break;
    case State::half_open:
      state_ = State::closed;
      consecutive_failures_ = 0;
      cooldown_ = settings_.cooldown;
      break;
    case State::open:
      break;  // a straggler allowed before the breaker opened
  }
}

void CircuitBreaker::record_failure(Clock::time_point now) {
  switch (state_) {
    case State::closed:
      ++consecutive_failures_;
      if (consecutive_failures_ >= std::max<std::size_t>(1, settings_.failure_threshold)) open(now);
      break;
    case State::half_open:
      ++consecutive_failures_;
      cooldown_ = cooldown_ > settings_.max_cooldown / 2 ? settings_.max_cooldown : cooldown_ * 2;
      open(now);
      break;
    case State::open:
      break;  // a straggler allowed before the breaker opened
  }
}

void CircuitBreaker::record_abandoned(Clock::time_point now) {
  if (state_ == State::half_open) {
    // Back to open with the cooldown just over: the next allow_call takes a new trial.
    state_ = State::open;
    opened_at_ = now - cooldown_;
  }
}

CircuitBreaker::State CircuitBreaker::state(Clock::time_point now) const {
  if (state_ == State::open && now - opened_at_ >= cooldown_) return State::half_open;
  return state_;
}

ms CircuitBreaker::retry_after(Clock::time_point now) const {
  switch (state_) {
    case State::closed:
      return ms{0};
    case State::open:
      return ceil_ms(opened_at_ + cooldown_ - now);
    case State::half_open:
      return settings_.cooldown;
  }
  return ms{0};
}

CircuitBreaker::Status CircuitBreaker::status(Clock::time_point now) const {
  Status s;
  s.state = state(now);
  s.consecutive_failures = consecutive_failures_;
  s.opens = opens_;
  s.cooldown = cooldown_;
  s.retry_after = retry_after(now);
  s.trial_in_flight = state_ == State::half_open;
  return s;
}

std::string CircuitBreaker::describe(Clock::time_point now) const {
  const std::string failures = std::to_string(consecutive_failures_) + " consecutive failure" +
                               (consecutive_failures_ == 1 ? "" : "s");
  switch (state(now)) {
    case State::closed:
      return consecutive_failures_ == 0 ? "closed" : "closed: " + failures;
    case State::open:
      return "open: " + failures + "; next trial in " + ms_text(opened_at_ + cooldown_ - now);
    case State::half_open:
      return state_ == State::half_open ? "half-open: " + failures + "; trial call in flight"
                                        : "half-open: " + failures + "; next call is the trial";
  }
  return "";
}

std::string_view to_string(CircuitBreaker::State state) {
  switch (state) {
    case CircuitBreaker::State::closed:
      return "closed";
    case CircuitBreaker::State::open:
      return "open";
    case CircuitBreaker::State::half_open:
      return "half_open";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------------------------------
// Recycling, memory, rollout
// ---------------------------------------------------------------------------------------------------

std::uint64_t recycle_after_calls(std::uint64_t max_calls_per_worker, double jitter_fraction,
                                  std::uint64_t rng_value) {
  if (max_calls_per_worker == 0) return 0;
  const double jitter = std::isnan(jitter_fraction) ? 0.0 : std::clamp(jitter_fraction, 0.0, 1.0);
  // floor keeps the result >= max * (1 - jitter); the min keeps it >= 1.
  const auto span = std::min<std::uint64_t>(
      static_cast<std::uint64_t>(std::floor(static_cast<double>(max_calls_per_worker) * jitter)),
      max_calls_per_worker - 1);
  Rng mixer{rng_value};
  return max_calls_per_worker - mixer.next() % (span + 1);
}

bool over_soft_memory_limit(std::uint64_t rss_bytes, std::uint64_t soft_limit_bytes) {
  return soft_limit_bytes != 0 && rss_bytes > soft_limit_bytes;
}

bool route_to_pool(std::uint64_t request_hash, unsigned pool_percent) {
  if (pool_percent >= 100) return true;
  return request_hash % 100 < pool_percent;
}

}  // namespace mcpd::pool
