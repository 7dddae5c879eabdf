// The worker pool's decisions as pure code: how many workers to spawn or retire, how long to wait
// before restarting after a crash loop, when to stop sending calls to a failing kind, when to recycle
// a worker, and which requests the pool serves during a rollout. Nothing here starts a process, does
// I/O or reads a clock: the WorkerPool passes in its state and `now`, acts on the answer, and the tests
// drive every rule with a fake clock. Randomness (jitter) comes from an injected seed
// through the small deterministic Rng below, so runs are repeatable.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace mcpd::pool {

using Clock = std::chrono::steady_clock;
using ms = std::chrono::milliseconds;

/// splitmix64: a tiny deterministic PRNG, enough for jitter. Same seed, same sequence.
struct Rng {
  std::uint64_t state = 0;

  constexpr std::uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    std::uint64_t z = state;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  /// Uniform in [0, 1), from the top 53 bits of next().
  constexpr double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
};

// ---------------------------------------------------------------------------------------------------
// Autoscaler
// ---------------------------------------------------------------------------------------------------

/// One idle worker as the autoscaler sees it.
struct IdleWorker {
  std::uint64_t id = 0;
  Clock::time_point idle_since{};
};

/// The pool of one kind at one instant, as the WorkerPool reports it to decide_scale.
struct PoolSnapshot {
  std::size_t starting = 0;        // spawned, no hello yet
  std::vector<IdleWorker> idle;    // one entry per idle worker; idle.size() is the idle count
  std::size_t busy = 0;            // running a call (draining workers are not counted anywhere)
  std::size_t queued = 0;          // calls waiting for a worker
  std::size_t min_workers = 0;
  std::size_t max_workers = 1;
  /// When the pool last acted on a decision with spawn > 0 / a non-empty retire; empty = never.
  std::optional<Clock::time_point> last_scale_up, last_scale_down;

  /// starting + idle + busy: every worker that is or will soon be able to take a call.
  std::size_t total() const { return starting + idle.size() + busy; }
};

/// What the pool should do now. Empty (spawn 0, retire empty) means hold.
struct ScaleDecision {
  std::size_t spawn = 0;
  std::vector<std::uint64_t> retire;  // ids of idle workers to stop gracefully
  std::string reason;                 // for the log and status, e.g. "queue: 3 queued, ..."
};

struct AutoscalerSettings {
  ms idle_timeout{30000};                   // a worker idle this long may be retired
  ms scale_down_interval{2000};             // at most one retirement per interval
  ms scale_up_cooldown_before_down{5000};   // no retirement this soon after a scale up
};

/// Decides spawns and retirements for one kind. The rules, in order:
///
/// 1. Ceiling. max is max(max_workers, min_workers): a misconfigured min wins over max. No decision
///    ever takes total() above it.
/// 2. Floor (prewarm / replace). If total() < min_workers, spawn the difference. Starting workers
///    count, so a replacement already on its way is not spawned twice.
/// 3. Fast up. Calls that no idle or starting worker will take (queued - idle - starting, when
///    positive) get one new worker each, at once and with no cooldown, capped by the ceiling. With no
///    idle worker this is "cover the queue not already covered by starting workers"; idle workers
///    count too because the pool dispatches to them before the next decision.
///    Rules 2 and 3 combine as spawn = min(max(floor gap, uncovered queue), ceiling - total()).
/// 4. Slow down. When nothing is spawned, retire at most ONE idle worker, and only if all hold:
///    - no call is queued (a queue means the workers are needed, even idle ones about to be used);
///    - total() > min_workers (never retire below min; starting workers count);
///    - no scale up within scale_up_cooldown_before_down (hysteresis: a pool that just grew for a
///      burst keeps its workers through the lull before the next one instead of flapping);
///    - no retirement within scale_down_interval (the pool shrinks one worker at a time);
///    - some idle worker has been idle for at least idle_timeout. The one idle longest is chosen
///      (first in the list on a tie), so a pool that dispatches to the most recently idle worker
///      lets its spare workers age out while the busy ones stay warm.
///
/// The caller sets last_scale_up / last_scale_down to `now` when it acts on a decision that spawns /
/// retires; replacements below min are scale ups too (they hold off retirement just the same).
ScaleDecision decide_scale(const PoolSnapshot& pool, const AutoscalerSettings& settings,
                           Clock::time_point now);

// ---------------------------------------------------------------------------------------------------
// Restart backoff
// ---------------------------------------------------------------------------------------------------

/// How a worker died, as the pool classifies it.
enum class DeathKind {
  before_hello,               // never became ready: a broken binary, config or environment
  before_first_call,          // ready, but died before finishing any call
  during_call_after_serving,  // had finished calls, died in one (a bad input, a tool bug)
  idle_after_serving,         // had finished calls, died idle (OOM killer, an operator's kill)
};

/// True for deaths that suggest every new worker will die the same way (the first two kinds).
/// Isolated deaths of workers that had served well are not a crash loop and never grow the backoff.
bool counts_as_crash_loop(DeathKind kind);

struct BackoffSettings {
  ms initial{100};
  ms max{10000};
  double multiplier = 2.0;
  double jitter_fraction = 0.2;  // the delay is spread uniformly over +/- this fraction
  ms stable_after{10000};        // a worker up this long proves the kind healthy again
};

/// RestartBackoff delays restarts of one kind while its workers are crash looping, so a broken
/// binary is not respawned in a tight loop. The WorkerPool owns one per kind.
///
/// - Each crash-loop death counts (consecutive() grows) and sets a restart time: the death's time
///   plus initial * multiplier^(n-1) capped at max, then jittered by +/- jitter_fraction (so the
///   longest delay is max * (1 + jitter_fraction)). Jitter is drawn once per death from the Rng
///   seeded at construction, so delay() asked twice agrees with itself.
/// - delay(now) is what remains of that wait: 0 when no crash loop is going on or the wait is over.
/// - The count resets only through worker_stable(), which the pool calls when a worker of the kind
///   finishes a call or has been up for stable_after (is_stable). Time alone does not reset it: a
///   kind dying at the capped delay would otherwise look healthy every max seconds.
class RestartBackoff {
 public:
  explicit RestartBackoff(BackoffSettings settings = {}, std::uint64_t seed = 0);

  /// A worker died before its hello or before finishing any call.
  void record_crash_loop_death(Clock::time_point now);
  /// Records the death if counts_as_crash_loop(kind); returns whether it counted.
  bool record_death(DeathKind kind, Clock::time_point now);
  /// A worker of this kind has proved healthy: the crash loop is over.
  void worker_stable();

  /// How long to wait from now before the next restart; 0 = restart now.
  ms delay(Clock::time_point now) const;
  /// Whether a worker started at worker_started_at has been up for stable_after by now.
  bool is_stable(Clock::time_point worker_started_at, Clock::time_point now) const;
  /// Crash-loop deaths since the last worker_stable().
  std::size_t consecutive() const { return consecutive_; }
  const BackoffSettings& settings() const { return settings_; }

 private:
  BackoffSettings settings_;
  Rng rng_;
  std::size_t consecutive_ = 0;
  Clock::time_point restart_at_{};
};

// ---------------------------------------------------------------------------------------------------
// Circuit breaker
// ---------------------------------------------------------------------------------------------------

struct BreakerSettings {
  std::size_t failure_threshold = 5;  // consecutive failures that open the breaker (0 acts as 1)
  ms cooldown{5000};                  // first wait before a trial call
  ms max_cooldown{60000};             // the cooldown doubles per failed trial up to this
};

/// CircuitBreaker stops sending calls to a kind that keeps failing and probes it with one trial call
/// at a time. The WorkerPool owns one per kind and reports the outcome of every call it allowed.
///
/// - closed: every call is allowed. A success resets the consecutive failures; a failure adds one,
///   and failure_threshold of them in a row open the breaker.
/// - open: calls fail fast (allow_call false) until the cooldown has passed since it opened. Then the
///   breaker is half-open: state() says so at once, and the first allow_call takes the one trial.
/// - half_open: exactly one trial call is allowed; everything else is refused until it reports.
///   A success closes the breaker (failures reset, cooldown back to its base). A failure opens it
///   again with the cooldown doubled (capped at max_cooldown). record_abandoned() gives back the
///   trial slot when the trial ends with no verdict (cancelled), so the breaker cannot stick.
/// - Results reported while open come from calls allowed before it opened and are ignored. While
///   half-open any result is taken as the trial's (the breaker hands out no tickets).
/// - opens() counts every transition to open, reopenings after a failed trial included.
class CircuitBreaker {
 public:
  enum class State { closed, open, half_open };

  /// A plain status for the status tool (no json here).
  struct Status {
    State state = State::closed;
    std::size_t consecutive_failures = 0;
    std::uint64_t opens = 0;
    ms cooldown{0};     // the current cooldown (base, or doubled after failed trials)
    ms retry_after{0};  // see retry_after()
    bool trial_in_flight = false;
  };

  explicit CircuitBreaker(BreakerSettings settings = {});

  /// Whether a call may go to the kind now. In half_open (reached when the cooldown has passed)
  /// true exactly once until the trial reports.
  bool allow_call(Clock::time_point now);
  void record_success(Clock::time_point now);
  void record_failure(Clock::time_point now);
  /// The trial call ended with neither success nor failure: another trial may be taken.
  void record_abandoned(Clock::time_point now);

  /// The state as of now: open turns into half_open when its cooldown has passed.
  State state(Clock::time_point now) const;
  /// A hint for a refused caller: 0 when a call would be allowed now; while open, the time left of
  /// the cooldown; while a trial is in flight, the base cooldown (its outcome is not known yet).
  ms retry_after(Clock::time_point now) const;
  std::uint64_t opens() const { return opens_; }
  std::size_t consecutive_failures() const { return consecutive_failures_; }
  Status status(Clock::time_point now) const;
  /// One line for logs and errors, e.g. "open: 5 consecutive failures; next trial in 4200 ms".
  std::string describe(Clock::time_point now) const;

 private:
  BreakerSettings settings_;
  State state_ = State::closed;  // half_open here always means the trial is in flight
  std::size_t consecutive_failures_ = 0;
  std::uint64_t opens_ = 0;
  ms cooldown_;
  Clock::time_point opened_at_{};

  void open(Clock::time_point now);
};

std::string_view to_string(CircuitBreaker::State state);

// ---------------------------------------------------------------------------------------------------
// Recycling and memory
// ---------------------------------------------------------------------------------------------------

/// A per-worker recycle threshold in [max * (1 - jitter_fraction), max] (and at least 1), so workers
/// started together do not all recycle together. rng_value may be any 64-bit value (a worker id
/// will do): it is mixed first, so consecutive values spread. max_calls_per_worker 0 = never (0).
/// jitter_fraction is clamped to [0, 1].
std::uint64_t recycle_after_calls(std::uint64_t max_calls_per_worker, double jitter_fraction,
                                  std::uint64_t rng_value);

/// Whether rss_bytes is strictly above the soft limit; a soft limit of 0 means none.
bool over_soft_memory_limit(std::uint64_t rss_bytes, std::uint64_t soft_limit_bytes);

// ---------------------------------------------------------------------------------------------------
// Rollout
// ---------------------------------------------------------------------------------------------------

/// Whether a request goes to the pool (rather than the legacy path) during a rollout:
/// (request_hash % 100) < pool_percent. 0 never, 100 (or more) always; the same hash always gets
/// the same answer, so a given request is routed the same way on every retry.
bool route_to_pool(std::uint64_t request_hash, unsigned pool_percent);

}  // namespace mcpd::pool
