// WorkerPool runs the calls of one worker kind on a set of Worker processes it supervises: a
// bounded queue, dispatch to an idle worker, retries of idempotent calls when a worker dies,
// cancellation and deadlines that reach the worker (cancel, then kill after a grace period),
// health pings, recycling, restart backoff and a circuit breaker. The decisions (how many workers,
// how long to wait, whether to admit a call) come from the pure policies in policy.h; this class
// is the mechanism. It lives on the coordinator's event loop thread and takes no locks.
#pragma once

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "executor.h"
#include "metrics.h"
#include "policy.h"
#include "worker.h"

namespace mcpd::pool {

/// The knobs of one kind's pool, with units in the names.
struct PoolSettings {
  std::size_t min_workers = 1;
  std::size_t max_workers = 4;
  std::size_t max_queue = 1024;
  std::uint64_t max_calls_per_worker = 100000;  // recycle after this many calls (jittered), 0 = never
  std::uint64_t memory_soft_limit_bytes = 1ull << 30;  // recycle after the current call when above
  std::uint64_t memory_hard_limit_bytes = 4ull << 30;  // RLIMIT_AS of the process, 0 = none
  std::uint64_t max_open_files = 4096;                 // RLIMIT_NOFILE of the process, 0 = as inherited
  unsigned max_retries = 2;                  // re-runs of an idempotent call after worker deaths
  /// Calls a worker may hold at once: 1 = one at a time; 2 = the next idempotent call waits in the
  /// worker so it does not idle for a round trip between calls. Only used when every worker is busy
  /// and the pool cannot grow.
  std::size_t pipeline_depth = 8;
  std::chrono::milliseconds cancel_grace{500};
  std::chrono::milliseconds ping_interval{1000};
  std::chrono::milliseconds ping_timeout{3000};
  std::chrono::milliseconds stop_grace{1000};
  AutoscalerSettings autoscaler;
  BackoffSettings backoff;
  BreakerSettings breaker;
};

/// One call as the pool tracks it, across retries.
struct PoolCall {
  std::string id;
  std::string tool;
  json arguments;
  bool idempotent = true;
  Clock::time_point deadline{};
  std::function<void(double, double, const std::string&)> progress;
  Executor::Done done;
  unsigned retries = 0;
  unsigned workers_lost = 0;  // workers that died running it; two make it a poison pill
  bool finished = false;
  bool cancelled = false;
};

class WorkerPool {
 public:
  WorkerPool(boost::asio::io_context& loop, LaunchSpec launch, PoolSettings settings);
  ~WorkerPool();

  /// Prewarms min_workers and starts the health and scaling timer.
  void start();
  void submit(std::shared_ptr<PoolCall> call);
  void cancel(const std::string& call_id);
  /// Executor::revalidate for an answer vouched for by worker `worker_id` of this kind.
  void revalidate(std::uint64_t worker_id, const std::string& tool, const json& arguments, const std::string& state,
                  std::function<void(bool)> done);
  /// Where this kind's owners' news goes (Executor::on_invalidated); owners are named "<kind>#<id>".
  void on_invalidated(Executor::Invalidated listener) { invalidated_ = std::move(listener); }
  /// Stops every worker (shutdown frame, SIGTERM, SIGKILL) and calls `done` once all are reaped.
  void shutdown(std::function<void()> done);
  json status() const;

  const std::string& kind() const { return launch_.kind; }
  std::size_t live_workers() const;

 private:
  void spawn(const std::string& why);
  void rebalance(const std::string& trigger);
  void dispatch();
  void tick();
  void on_ready(Worker& worker, const json& hello);
  void on_frame(Worker& worker, json frame, std::string raw);
  void on_lost(Worker& worker, const std::string& reason);
  void on_reaped(Worker& worker);
  void complete(const std::shared_ptr<PoolCall>& call, CallOutcome outcome);
  void after_call(Worker& worker);
  Worker* pick_worker(const PoolCall& call);
  void fail_queue(CallOutcome::Status status, const std::string& message);
  void schedule_rebalance(std::chrono::milliseconds delay);
  void send_ping(Worker& worker, Clock::time_point now);
  PoolSnapshot snapshot() const;
  std::string owner_name(const Worker& worker) const { return launch_.kind + "#" + std::to_string(worker.id()); }
  void settle_validations(std::uint64_t worker_id, Clock::time_point sent_before);

  boost::asio::io_context& loop_;
  LaunchSpec launch_;
  PoolSettings settings_;
  Rng rng_;
  RestartBackoff backoff_;
  CircuitBreaker breaker_;

  std::uint64_t next_worker_id_ = 1;
  std::map<std::uint64_t, std::shared_ptr<Worker>> workers_;  // live and dying, until reaped
  std::deque<std::shared_ptr<PoolCall>> queue_;
  std::unordered_map<std::string, std::shared_ptr<PoolCall>> running_;  // call id -> call
  std::unique_ptr<boost::asio::steady_timer> tick_timer_, respawn_timer_;
  std::optional<Clock::time_point> last_scale_up_, last_scale_down_;
  bool respawn_pending_ = false;
  bool stopping_ = false;
  std::function<void()> on_stopped_;
  Executor::Invalidated invalidated_;
  /// Validations sent and not yet answered, by id ("v12"). A lost worker settles its own as not
  /// current; one unanswered past ping_timeout is settled so by tick().
  struct Validation {
    std::uint64_t worker = 0;
    Clock::time_point sent{};
    std::function<void(bool)> done;
  };
  std::unordered_map<std::string, Validation> validations_;
  std::uint64_t next_validation_ = 0;

  // Counters for the status tool.
  std::uint64_t submitted_ = 0, completed_ = 0, failed_ = 0, retried_ = 0, timeouts_ = 0,
                cancelled_ = 0, rejected_ = 0, poison_pills_ = 0, restarts_ = 0, crash_loop_deaths_ = 0,
                scale_ups_ = 0, scale_downs_ = 0, recycled_ = 0, protocol_errors_ = 0, missed_pongs_ = 0,
                validated_ = 0, found_stale_ = 0, invalidations_pushed_ = 0;
  LatencyWindow spawn_to_ready_us_{256};
  LatencyWindow loss_to_ready_us_{256};  // an unexpected death until the next worker is ready
  std::deque<Clock::time_point> losses_awaiting_replacement_;
};

}  // namespace mcpd::pool
