#include "worker_pool.h"

#include <algorithm>
#include <random>

#include <boost/asio/post.hpp>

#include "config.h"
#include "json_access.h"
#include "json_text.h"
#include "log.h"

namespace mcpd::pool {

namespace {
constexpr std::size_t kMaxTagsPerInvalidation = 256;
}

namespace asio = boost::asio;
using std::chrono::milliseconds;

namespace {

constexpr milliseconds kTick{100};

CallOutcome outcome(CallOutcome::Status status, std::string error) {
  CallOutcome o;
  o.status = status;
  o.error = std::move(error);
  o.path = "pool";
  return o;
}

}  // namespace

WorkerPool::WorkerPool(asio::io_context& loop, LaunchSpec launch, PoolSettings settings)
    : loop_(loop),
      launch_(std::move(launch)),
      settings_(std::move(settings)),
      rng_{std::random_device{}()},
      backoff_(settings_.backoff, rng_.next()),
      breaker_(settings_.breaker) {}

WorkerPool::~WorkerPool() {
  // Worker destructors kill and reap whatever is left.
  for (auto& [id, worker] : workers_) worker->kill("pool destroyed");
}

std::size_t WorkerPool::live_workers() const {
  std::size_t n = 0;
  for (const auto& [id, w] : workers_)
    if (!w->lost() && w->state != Worker::State::draining) ++n;
  return n;
}

void WorkerPool::start() {
  rebalance("prewarm");
  tick_timer_ = std::make_unique<asio::steady_timer>(loop_, kTick);
  tick_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

// ---------------------------------------------------------------------------------------------
// Scaling and spawning

PoolSnapshot WorkerPool::snapshot() const {
  PoolSnapshot s;
  s.min_workers = settings_.min_workers;
  s.max_workers = settings_.max_workers;
  s.queued = queue_.size();
  s.last_scale_up = last_scale_up_;
  s.last_scale_down = last_scale_down_;
  for (const auto& [id, w] : workers_) {
    if (w->lost()) continue;
    switch (w->state) {
      case Worker::State::starting: ++s.starting; break;
      case Worker::State::idle: s.idle.push_back({id, w->idle_since}); break;
      case Worker::State::busy: ++s.busy; break;
      default: break;
    }
  }
  return s;
}

void WorkerPool::rebalance(const std::string& trigger) {
  if (stopping_) return;
  auto now = Clock::now();
  ScaleDecision decision = decide_scale(snapshot(), settings_.autoscaler, now);
  if (decision.spawn > 0) {
    // A crash-looping kind waits out its backoff; isolated deaths are replaced at once.
    auto delay = backoff_.delay(now);
    if (delay.count() > 0) {
      schedule_rebalance(delay);
    } else {
      bool growing = snapshot().total() >= settings_.min_workers;
      last_scale_up_ = now;
      for (std::size_t i = 0; i < decision.spawn; ++i) spawn(decision.reason.empty() ? trigger : decision.reason);
      if (growing) {
        ++scale_ups_;
        log_info("pool scaled up", {{"worker", launch_.kind}, {"spawned", decision.spawn}, {"reason", decision.reason},
                                    {"queued", queue_.size()}});
      }
    }
  }
  for (std::uint64_t id : decision.retire) {
    auto it = workers_.find(id);
    if (it == workers_.end() || it->second->state != Worker::State::idle) continue;
    ++scale_downs_;
    last_scale_down_ = now;
    log_info("pool scaled down", {{"worker", launch_.kind}, {"pid", it->second->pid()}, {"reason", decision.reason}});
    it->second->stop(settings_.stop_grace);
  }
}

void WorkerPool::schedule_rebalance(milliseconds delay) {
  if (respawn_pending_) return;
  respawn_pending_ = true;
  if (!respawn_timer_) respawn_timer_ = std::make_unique<asio::steady_timer>(loop_);
  respawn_timer_->expires_after(delay);
  log_warning("worker kind is crash-looping; delaying restart",
              {{"worker", launch_.kind}, {"delay_ms", delay.count()}, {"consecutive_failures", backoff_.consecutive()}});
  respawn_timer_->async_wait([this](const boost::system::error_code& ec) {
    respawn_pending_ = false;
    if (ec || stopping_) return;
    rebalance("backoff elapsed");
  });
}

void WorkerPool::spawn(const std::string& why) {
  std::uint64_t id = next_worker_id_++;
  Worker::Events events;
  events.on_ready = [this](Worker& w, const json& hello) { on_ready(w, hello); };
  events.on_frame = [this](Worker& w, json frame, std::string raw) { on_frame(w, std::move(frame), std::move(raw)); };
  events.on_lost = [this](Worker& w, const std::string& reason) { on_lost(w, reason); };
  events.on_reaped = [this](Worker& w) { on_reaped(w); };
  auto worker = std::make_shared<Worker>(loop_, id, launch_, std::move(events));
  worker->recycle_after = recycle_after_calls(settings_.max_calls_per_worker, 0.1, rng_.next());
  workers_[id] = worker;
  log_debug("spawning worker", {{"worker", launch_.kind}, {"reason", why}});
  worker->start();
}

// ---------------------------------------------------------------------------------------------
// Calls

void WorkerPool::submit(std::shared_ptr<PoolCall> call) {
  ++submitted_;
  auto now = Clock::now();
  if (stopping_) {
    ++rejected_;
    call->done(outcome(CallOutcome::Status::rejected, "server is shutting down"));
    return;
  }
  if (!breaker_.allow_call(now)) {
    ++rejected_;
    call->done(outcome(CallOutcome::Status::rejected,
                       "server busy: worker kind '" + launch_.kind + "' is failing and its circuit breaker is " +
                           breaker_.describe(now) + "; calls fail fast until it recovers"));
    return;
  }
  if (queue_.size() >= settings_.max_queue) {
    ++rejected_;
    call->done(outcome(CallOutcome::Status::rejected,
                       "server busy: " + std::to_string(queue_.size()) + " calls already queued for worker kind '" +
                           launch_.kind + "' (max_queue " + std::to_string(settings_.max_queue) + ")"));
    return;
  }
  queue_.push_back(std::move(call));
  dispatch();
  if (!queue_.empty()) rebalance("calls queued");
}

Worker* WorkerPool::pick_worker(const PoolCall& call) {
  // Least-loaded first: an idle worker, and among idle ones the one idle for the shortest time
  // (its caches are warm, and the others can age past idle_timeout and be scaled down).
  Worker* best = nullptr;
  std::size_t busy_or_starting = 0;
  for (auto& [id, w] : workers_) {
    if (w->lost() || w->state == Worker::State::draining) continue;
    if (w->state != Worker::State::idle) {
      ++busy_or_starting;
      continue;
    }
    if (!best || w->idle_since > best->idle_since) best = w.get();
  }
  if (best) return best;
  // A worker that runs several calls at once (the Modbus worker, so that one slow device does not
  // hold up calls to the others) takes any call while it has a free slot.
  for (auto& [id, w] : workers_) {
    if (w->lost() || w->state != Worker::State::busy || w->recycle_pending) continue;
    if (w->calls.size() >= w->max_calls) continue;
    if (!best || w->calls.size() < best->calls.size()) best = w.get();
  }
  if (best) return best;
  // Pipelining: when the pool cannot grow, an idempotent call may wait inside a busy worker, so
  // that worker goes straight from one call to the next. Idempotent only: if the worker dies, the
  // waiting call is retried like the running one.
  if (!call.idempotent || settings_.pipeline_depth < 2 || busy_or_starting < settings_.max_workers) return nullptr;
  for (auto& [id, w] : workers_) {
    if (w->lost() || w->state != Worker::State::busy || w->recycle_pending) continue;
    if (w->calls.size() >= w->max_calls + std::min(settings_.pipeline_depth - 1, w->max_waiting)) continue;
    if (!best || w->calls.size() < best->calls.size()) best = w.get();
  }
  return best;
}

void WorkerPool::dispatch() {
  while (!queue_.empty()) {
    auto call = queue_.front();
    if (call->finished) {
      queue_.pop_front();
      continue;
    }
    Worker* best = pick_worker(*call);
    if (!best) return;
    auto now = Clock::now();
    // A worker not heard from for a while may be stopped (SIGSTOP) or wedged since its last pong.
    // Checking costs a /proc read, so only such workers pay it; a busy pool never does.
    bool stale = now - best->last_heard > settings_.ping_interval / 2;
    if (stale) {
      char state = best->process_state();
      if (state == 'T' || state == 't' || state == 'Z' || state == 'X') {
        ++missed_pongs_;
        best->kill(std::string("worker process is ") + (state == 'T' || state == 't' ? "stopped" : "dead") +
                   " (state " + state + " in /proc) at dispatch");
        continue;  // on_lost has run; pick again
      }
    }
    queue_.pop_front();
    best->state = Worker::State::busy;
    best->calls.push_back(call->id);
    running_[call->id] = call;
    auto remaining = std::chrono::duration_cast<milliseconds>(call->deadline - Clock::now());
    // Written out by hand: a json object around the arguments would copy them first.
    std::string frame = R"({"type":"call","id":)";
    append_json_string(frame, call->id);
    frame += R"(,"tool":)";
    append_json_string(frame, call->tool);
    frame += R"(,"arguments":)";
    append_json(frame, call->arguments);
    frame += R"(,"validated":true,"deadline_ms":)";
    frame += std::to_string(std::max<std::int64_t>(1, remaining.count()));
    frame += '}';
    best->send_text(frame);
    // The worker answers a ping at once, even mid-call: one sent with the call proves within
    // ping_timeout that the worker took it, instead of the call waiting out its whole deadline.
    if (stale && best->ping_seq == best->pong_seq) send_ping(*best, now);
  }
}

void WorkerPool::send_ping(Worker& worker, Clock::time_point now) {
  worker.ping_sent = now;
  worker.send({{"type", "ping"}, {"seq", ++worker.ping_seq}});
}

void WorkerPool::cancel(const std::string& call_id) {
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if ((*it)->id != call_id) continue;
    auto call = *it;
    queue_.erase(it);
    call->cancelled = true;
    ++cancelled_;
    complete(call, outcome(CallOutcome::Status::cancelled, "cancelled"));
    return;
  }
  breaker_.record_abandoned(Clock::now());  // a cancelled trial gives no verdict on the kind
  auto running = running_.find(call_id);
  if (running == running_.end()) return;
  auto call = running->second;
  call->cancelled = true;
  ++cancelled_;
  for (auto& [id, w] : workers_) {
    if (!w->holds(call_id) || w->lost()) continue;
    w->send({{"type", "cancel"}, {"id", call_id}});
    // A worker that does not stop within the grace period is killed and replaced: the slot must
    // come back whether or not the tool honours cancellation.
    auto timer = std::make_shared<asio::steady_timer>(loop_, settings_.cancel_grace);
    std::weak_ptr<Worker> weak = w;
    timer->async_wait([this, timer, weak, call_id](const boost::system::error_code& ec) {
      auto worker = weak.lock();
      if (ec || !worker || worker->lost() || !worker->holds(call_id)) return;
      ++timeouts_;
      log_warning("worker did not stop after cancel; killing it",
                  {{"worker", launch_.kind}, {"pid", worker->pid()}, {"call", call_id},
                   {"grace_ms", settings_.cancel_grace.count()}});
      worker->kill("did not stop within " + std::to_string(settings_.cancel_grace.count()) +
                   " ms of cancelling call " + call_id);
    });
    return;
  }
}

void WorkerPool::revalidate(std::uint64_t worker_id, const std::string& tool, const json& arguments,
                            const std::string& state, std::function<void(bool)> done) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || it->second->lost() || it->second->state == Worker::State::draining ||
      it->second->state == Worker::State::starting) {
    done(false);
    return;
  }
  std::string id = "v" + std::to_string(++next_validation_);
  validations_[id] = Validation{worker_id, Clock::now(), std::move(done)};
  it->second->send({{"type", "validate"}, {"id", id}, {"tool", tool}, {"arguments", arguments}, {"state", state}});
}

void WorkerPool::settle_validations(std::uint64_t worker_id, Clock::time_point sent_before) {
  std::vector<std::function<void(bool)>> settled;
  for (auto it = validations_.begin(); it != validations_.end();) {
    bool match = worker_id == 0 ? it->second.sent < sent_before : it->second.worker == worker_id;
    if (match) {
      settled.push_back(std::move(it->second.done));
      it = validations_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& done : settled) done(false);
}

void WorkerPool::complete(const std::shared_ptr<PoolCall>& call, CallOutcome result) {
  if (call->finished) return;
  call->finished = true;
  running_.erase(call->id);
  result.path = "pool";
  result.retries = static_cast<int>(call->retries);
  if (result.status == CallOutcome::Status::ok || result.status == CallOutcome::Status::tool_error) ++completed_;
  else if (result.status == CallOutcome::Status::failed) ++failed_;
  call->done(std::move(result));
}

void WorkerPool::fail_queue(CallOutcome::Status status, const std::string& message) {
  auto queued = std::move(queue_);
  queue_.clear();
  for (auto& call : queued) {
    ++rejected_;
    complete(call, outcome(status, message));
  }
}

// ---------------------------------------------------------------------------------------------
// Worker events

void WorkerPool::on_ready(Worker& worker, const json& hello) {
  worker.state = Worker::State::idle;
  // Bounded like the worker's own setting, so a confused hello cannot make us flood it.
  if (auto max_calls = optional_uint(hello, "max_calls")) worker.max_calls = std::clamp<std::size_t>(*max_calls, 1, 256);
  // What the worker holds waiting bounds the pipeline: sending more would get calls refused as busy.
  worker.max_waiting = std::clamp<std::size_t>(optional_uint(hello, "max_waiting").value_or(1), 0, 256);
  worker.idle_since = worker.last_pong = worker.last_heard = Clock::now();
  double micros = std::chrono::duration<double, std::micro>(worker.ready_at() - worker.started_at()).count();
  spawn_to_ready_us_.add(micros);
  if (!losses_awaiting_replacement_.empty()) {
    loss_to_ready_us_.add(std::chrono::duration<double, std::micro>(worker.ready_at() -
                                                                    losses_awaiting_replacement_.front())
                              .count());
    losses_awaiting_replacement_.pop_front();
  }
  const json* tools = optional_array(hello, "tools");
  log_info("worker ready", {{"worker", launch_.kind}, {"pid", worker.pid()}, {"ms", micros / 1000.0},
                            {"tools", tools ? tools->size() : 0}});
  if (stopping_) {
    worker.stop(settings_.stop_grace);
    return;
  }
  dispatch();
}

void WorkerPool::on_frame(Worker& worker, json frame, std::string raw) {
  worker.last_heard = Clock::now();
  // Frames come from a process that may be broken: every member is read with a type check, and a
  // frame without a string type (or a call frame without a string id) is a protocol error.
  auto type_member = optional_string(frame, "type");
  if (!type_member) {
    ++protocol_errors_;
    worker.kill("protocol error: a frame without a string \"type\"");
    return;
  }
  const std::string type = std::move(*type_member);
  if (type == "pong") {
    worker.pong_seq = optional_uint(frame, "seq").value_or(0);
    worker.last_pong = Clock::now();
    worker.reported_rss = optional_uint(frame, "rss_bytes").value_or(0);
    return;
  }
  if (type == "telemetry") {
    // Worker logs join ours, tagged with the worker and (in the record) the call id.
    json logs = frame.contains("logs") && frame["logs"].is_array() ? std::move(frame["logs"]) : json::array();
    for (auto& record : logs) {
      if (!record.is_object()) continue;
      std::string level = string_or(record, "level", "info"), message = string_or(record, "msg", "");
      if (log_level_rank(level) < 0) level = "info";
      record.erase("level");
      record.erase("msg");
      record.erase("ts");
      record["worker"] = launch_.kind;
      record["pid"] = worker.pid();
      Log::instance().write(level, message, record);
    }
    if (const json* metrics = optional_object(frame, "metrics"))
      worker.reported_rss = optional_uint(*metrics, "rss_bytes").value_or(worker.reported_rss);
    return;
  }
  if (type == "invalidate") {
    std::vector<std::string> tags;
    if (const json* list = optional_array(frame, "tags"))
      for (const auto& tag : *list)
        if (tag.is_string() && !tag.get_ref<const std::string&>().empty()) tags.push_back(tag.get<std::string>());
    invalidations_pushed_ += tags.size();
    // Each tag costs a pass over the cache: a worker naming more at once loses all its answers
    // in one pass instead, so no frame can keep the loop busy.
    if (tags.size() > kMaxTagsPerInvalidation) tags = {"/"};
    if (!tags.empty() && invalidated_) invalidated_(owner_name(worker), tags);
    return;
  }
  const std::string id = string_or(frame, "id", "");
  if (type == "validated") {
    auto v = validations_.find(id);
    if (v == validations_.end()) return;  // settled already (timed out)
    if (v->second.worker != worker.id()) {
      ++protocol_errors_;
      worker.kill("protocol error: an answer to validation '" + id + "', which this worker was not asked");
      return;
    }
    auto done = std::move(v->second.done);
    validations_.erase(v);
    bool current = optional_bool(frame, "current").value_or(false);
    ++validated_;
    if (!current) ++found_stale_;
    done(current);
    return;
  }
  auto it = running_.find(id);
  if (type == "progress") {
    auto progress = optional_number(frame, "progress");
    if (progress && it != running_.end() && it->second->progress && !it->second->cancelled)
      it->second->progress(*progress, optional_number(frame, "total").value_or(0.0), string_or(frame, "message", ""));
    return;
  }
  if (type != "result" && type != "error") {
    ++protocol_errors_;
    worker.kill("protocol error: unexpected frame type '" + type + "'");
    return;
  }
  if (!worker.holds(id)) {
    ++protocol_errors_;
    worker.kill("protocol error: answer for call '" + id + "', which this worker was not given");
    return;
  }
  worker.calls.erase(std::find(worker.calls.begin(), worker.calls.end(), id));
  ++worker.calls_served;
  worker.reported_peak_rss = optional_uint(frame, "peak_rss_bytes").value_or(worker.reported_peak_rss);
  backoff_.worker_stable();  // a finished call proves the kind works
  if (it != running_.end()) {
    auto call = it->second;
    if (type == "result" && (raw.size() < 2 || raw.front() != '{' || raw.back() != '}')) {
      // The frame reader checked that the raw part is JSON; the server splices its _meta into it,
      // so it must be an object written compactly, as result_body writes it.
      complete(call, outcome(CallOutcome::Status::failed,
                             "the worker's answer was refused: a result frame must carry the result as an object "
                             "in its raw part"));
    } else if (type == "result") {
      CallOutcome o = outcome(CallOutcome::Status::ok, "");
      o.body = std::move(raw);
      if (const json* cache = optional_object(frame, "cache")) {
        auto state = optional_string(*cache, "state");
        if (state && !state->empty())
          o.voucher = std::make_shared<const Voucher>(
              Voucher{owner_name(worker), std::move(*state), string_or(*cache, "tag", "")});
      }
      breaker_.record_success(Clock::now());
      complete(call, std::move(o));
    } else {
      std::string kind = string_or(frame, "kind", "failed"), message = string_or(frame, "message", "");
      using S = CallOutcome::Status;
      S status = kind == "tool_error"  ? S::tool_error
                 : kind == "cancelled" ? S::cancelled
                                       : S::failed;
      // A cancel we never sent is the worker enforcing the call's deadline on its own.
      if (status == S::cancelled && !call->cancelled) {
        status = S::timeout;
        message = "tool '" + call->tool + "' timed out: its deadline passed while the worker ran it";
      }
      if (status != S::failed) breaker_.record_success(Clock::now());
      if (kind == "unknown_tool" || kind == "busy") message = "worker refused the call (" + kind + "): " + message;
      complete(call, outcome(status, message));
    }
  }
  after_call(worker);
}

void WorkerPool::after_call(Worker& worker) {
  // From what the worker reported (its outcome frame's peak, its last pong): never a /proc read
  // on the event loop per call.
  std::uint64_t rss = std::max(worker.reported_rss, worker.reported_peak_rss);
  bool too_big = over_soft_memory_limit(rss, settings_.memory_soft_limit_bytes);
  bool worn = worker.recycle_after > 0 && worker.calls_served >= worker.recycle_after;
  if ((too_big || worn) && !worker.calls.empty()) {
    worker.recycle_pending = true;  // after the call waiting in it; nothing more is sent to it
  } else if (too_big || worn || worker.recycle_pending) {
    ++recycled_;
    log_info("recycling worker", {{"worker", launch_.kind}, {"pid", worker.pid()}, {"calls", worker.calls_served},
                                  {"rss_bytes", rss}, {"reason", too_big ? "memory_soft_limit" : "max_calls_per_worker"}});
    worker.stop(settings_.stop_grace);
    rebalance("recycled");
  } else if (worker.calls.empty()) {
    worker.state = Worker::State::idle;
    worker.idle_since = Clock::now();
  }
  dispatch();
}

void WorkerPool::on_lost(Worker& worker, const std::string& reason) {
  auto now = Clock::now();
  DeathKind death = worker.ready_at() == Clock::time_point{}           ? DeathKind::before_hello
                    : worker.calls_served == 0 && !worker.calls.empty() ? DeathKind::before_first_call
                    : worker.calls.empty()                              ? DeathKind::idle_after_serving
                                                                        : DeathKind::during_call_after_serving;
  bool expected = stopping_ || worker.state == Worker::State::draining;
  // A death in the middle of a call is judged with the call, once, when it ends below: a poison
  // pill that kills two fresh workers is one failure of one call, not two failures of the kind and
  // two steps of restart backoff, so a few bad inputs in a row neither open the breaker nor leave
  // the kind without a worker for seconds. A kind whose every call kills its worker still opens
  // the breaker, one failed call at a time. A death with no call running (before hello) is the
  // kind's own crash loop at once.
  bool call_running = !worker.calls.empty() && running_.count(worker.calls.front()) > 0;
  bool death_counts = false;
  if (!expected) {
    ++restarts_;
    if (losses_awaiting_replacement_.size() < 64) losses_awaiting_replacement_.push_back(now);
    if (reason.rfind("protocol error", 0) == 0) ++protocol_errors_;
    if (counts_as_crash_loop(death) && call_running) {
      death_counts = true;
    } else if (counts_as_crash_loop(death)) {
      ++crash_loop_deaths_;
      backoff_.record_crash_loop_death(now);
      breaker_.record_failure(now);
    }
    log_warning("worker lost", {{"worker", launch_.kind}, {"pid", worker.pid()}, {"reason", reason},
                                {"calls_served", worker.calls_served},
                                {"call", worker.calls.empty() ? "" : worker.calls.front()}});
  }

  // Its answers in the cache were only as good as its word: they go with it.
  settle_validations(worker.id(), Clock::time_point::max());
  if (invalidated_) invalidated_(owner_name(worker), {});

  // The first max_calls calls were running when the worker died; any after them were waiting and
  // never started.
  std::deque<std::string> held = std::exchange(worker.calls, {});
  for (std::size_t i = held.size(); i-- > 0;) {
    auto it = running_.find(held[i]);
    if (it == running_.end()) continue;
    auto call = it->second;
    running_.erase(it);
    bool was_running = i < worker.max_calls;
    if (was_running) ++call->workers_lost;
    if (call->cancelled) {
      if (was_running && death_counts) breaker_.record_failure(now);
      complete(call, outcome(CallOutcome::Status::cancelled, "cancelled"));
    } else if (call->workers_lost >= 2) {
      // Retry only idempotent calls, and never a third time for one that killed two workers.
      // One breaker failure for the call, however many workers it took.
      breaker_.record_failure(now);
      ++poison_pills_;
      complete(call, outcome(CallOutcome::Status::failed,
                             "call " + call->id + " to '" + call->tool + "' killed two workers (last: " + reason +
                                 "); it looks like a poison pill and was not sent to a third"));
    } else if (!call->idempotent) {
      breaker_.record_failure(now);
      complete(call, outcome(CallOutcome::Status::failed,
                             "the worker running '" + call->tool + "' died during the call (" + reason +
                                 "); the tool is not idempotent, so it was not retried and its effect is unknown"));
    } else if (call->retries >= settings_.max_retries) {
      breaker_.record_failure(now);
      complete(call, outcome(CallOutcome::Status::failed,
                             "the worker running '" + call->tool + "' died (" + reason + ") and the call was already retried " +
                                 std::to_string(call->retries) + " times (max_retries)"));
    } else {
      ++call->retries;
      ++retried_;
      log_info("retrying call on another worker",
               {{"worker", launch_.kind}, {"call", call->id}, {"retry", call->retries}, {"was_running", was_running}});
      queue_.push_front(call);  // walked backwards, so the queue keeps the original order
    }
  }
  if (breaker_.state(now) == CircuitBreaker::State::open && !queue_.empty())
    fail_queue(CallOutcome::Status::rejected, "server busy: worker kind '" + launch_.kind +
                                                  "' is failing and its circuit breaker is " + breaker_.describe(now));
  dispatch();
  rebalance("worker lost");
  // No replacement on its way (the pool was above its minimum): nothing to time.
  if (snapshot().starting == 0 && !respawn_pending_) losses_awaiting_replacement_.clear();
}

void WorkerPool::on_reaped(Worker& worker) {
  std::uint64_t id = worker.id();
  // Erase on a later turn of the loop: we are inside one of the worker's own callbacks.
  asio::post(loop_, [this, id] {
    workers_.erase(id);
    if (stopping_ && workers_.empty() && on_stopped_) {
      auto done = std::move(on_stopped_);
      on_stopped_ = nullptr;
      done();
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Health, scale-down, shutdown

void WorkerPool::tick() {
  auto now = Clock::now();
  for (auto& [id, w] : workers_) {
    if (!w->lost() && w->state != Worker::State::starting && backoff_.is_stable(w->ready_at(), now))
      backoff_.worker_stable();
    // Idle and busy workers alike are pinged when nothing was heard from them for ping_interval
    // (their main thread answers at once, even mid-call); one whose pong is overdue is stopped,
    // hung or wedged, and is killed: its calls are retried elsewhere if idempotent. A draining
    // worker is finishing its last call and reads no more frames.
    if (w->lost() || (w->state != Worker::State::idle && w->state != Worker::State::busy)) continue;
    if (w->ping_seq > w->pong_seq) {
      if (now - w->ping_sent > settings_.ping_timeout) {
        ++missed_pongs_;
        log_warning("worker did not answer a ping; killing it",
                    {{"worker", launch_.kind}, {"pid", w->pid()}, {"state", to_string(w->state)},
                     {"ping_timeout_ms", settings_.ping_timeout.count()},
                     {"call", w->calls.empty() ? "" : w->calls.front()}});
        w->kill("did not answer a ping within " + std::to_string(settings_.ping_timeout.count()) +
                " ms (ping_timeout_ms)");
      }
      continue;
    }
    if (now - w->last_heard >= settings_.ping_interval) send_ping(*w, now);
  }
  settle_validations(0, now - settings_.ping_timeout);
  rebalance("tick");
  tick_timer_->expires_after(kTick);
  tick_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (!ec) tick();
  });
}

void WorkerPool::shutdown(std::function<void()> done) {
  stopping_ = true;
  if (tick_timer_) tick_timer_->cancel();
  if (respawn_timer_) respawn_timer_->cancel();
  fail_queue(CallOutcome::Status::rejected, "server is shutting down");
  if (workers_.empty()) {
    done();
    return;
  }
  on_stopped_ = std::move(done);
  for (auto& [id, w] : workers_) {
    if (w->lost()) continue;
    w->stop(settings_.stop_grace);
  }
}

json WorkerPool::status() const {
  json workers = json::array();
  auto now = Clock::now();
  for (const auto& [id, w] : workers_) {
    workers.push_back({{"pid", w->pid()},
                       {"state", to_string(w->lost() ? Worker::State::dead : w->state)},
                       {"calls_served", w->calls_served},
                       {"uptime_ms", std::chrono::duration_cast<milliseconds>(now - w->started_at()).count()},
                       {"rss_bytes", std::max(w->reported_rss, w->rss_bytes())},
                       {"calls", w->calls}});
  }
  auto snap = snapshot();
  return {{"workers", std::move(workers)},
          {"min_workers", settings_.min_workers},
          {"max_workers", settings_.max_workers},
          {"queue_length", queue_.size()},
          {"max_queue", settings_.max_queue},
          {"in_flight", running_.size()},
          {"idle", snap.idle.size()},
          {"busy", snap.busy},
          {"starting", snap.starting},
          {"submitted", submitted_},
          {"completed", completed_},
          {"failed", failed_},
          {"retried", retried_},
          {"timeouts", timeouts_},
          {"cancelled", cancelled_},
          {"rejected", rejected_},
          {"poison_pills", poison_pills_},
          {"restarts", restarts_},
          {"crash_loop_deaths", crash_loop_deaths_},
          {"protocol_errors", protocol_errors_},
          {"missed_pongs", missed_pongs_},
          {"recycled", recycled_},
          {"scale_ups", scale_ups_},
          {"scale_downs", scale_downs_},
          {"cache_validations", {{"answered", validated_}, {"stale", found_stale_}, {"pending", validations_.size()},
                                 {"invalidations_pushed", invalidations_pushed_}}},
          {"backoff_consecutive", backoff_.consecutive()},
          {"breaker", {{"state", std::string(to_string(breaker_.state(now)))}, {"opens", breaker_.opens()},
                       {"describe", breaker_.describe(now)}}},
          {"spawn_to_ready_ms", {{"p50", spawn_to_ready_us_.percentile(50) / 1000.0},
                                 {"p99", spawn_to_ready_us_.percentile(99) / 1000.0}}},
          {"loss_to_ready_ms", {{"count", loss_to_ready_us_.count()},
                                {"p50", loss_to_ready_us_.percentile(50) / 1000.0},
                                {"p99", loss_to_ready_us_.percentile(99) / 1000.0}}}};
}

}  // namespace mcpd::pool
