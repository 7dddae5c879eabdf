#include "pool_executor.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "json_access.h"

namespace mcpd::pool {

namespace {

/// MiB to bytes, saturating: the configuration refuses values this large, and a limit that wrapped
/// past 2^64 could come out as 0, which means no limit at all.
std::uint64_t mib_to_bytes(std::uint64_t mib) {
  constexpr std::uint64_t max_mib = std::numeric_limits<std::uint64_t>::max() >> 20;
  return mib > max_mib ? std::numeric_limits<std::uint64_t>::max() : mib << 20;
}

}  // namespace

PoolSettings pool_settings(const json& workers, const std::string& kind) {
  PoolSettings s;
  auto apply = [&s](const json& entry) {
    if (!entry.is_object()) return;
    // load_config has checked the types; a value of another type still falls back, never throws.
    auto u64 = [&entry](const char* key, std::uint64_t fallback) { return optional_uint(entry, key).value_or(fallback); };
    auto millis = [&u64](const char* key, std::chrono::milliseconds fallback) {
      std::uint64_t ms = std::min<std::uint64_t>(u64(key, static_cast<std::uint64_t>(fallback.count())), INT64_MAX);
      return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
    };
    s.min_workers = u64("min_workers", s.min_workers);
    s.max_workers = u64("max_workers", s.max_workers);
    s.max_queue = u64("max_queue", s.max_queue);
    s.max_calls_per_worker = u64("max_calls_per_worker", s.max_calls_per_worker);
    s.memory_soft_limit_bytes = mib_to_bytes(u64("memory_soft_limit_mb", s.memory_soft_limit_bytes >> 20));
    s.memory_hard_limit_bytes = mib_to_bytes(u64("memory_hard_limit_mb", s.memory_hard_limit_bytes >> 20));
    s.max_open_files = u64("max_open_files", s.max_open_files);
    s.max_retries = static_cast<unsigned>(u64("max_retries", s.max_retries));
    s.pipeline_depth = std::clamp<std::uint64_t>(u64("pipeline_depth", s.pipeline_depth), 1, 16);
    s.cancel_grace = millis("cancel_grace_ms", s.cancel_grace);
    s.ping_interval = millis("ping_interval_ms", s.ping_interval);
    s.ping_timeout = millis("ping_timeout_ms", s.ping_timeout);
    s.stop_grace = millis("stop_grace_ms", s.stop_grace);
    s.autoscaler.idle_timeout = millis("idle_timeout_ms", s.autoscaler.idle_timeout);
    s.autoscaler.scale_down_interval = millis("scale_down_interval_ms", s.autoscaler.scale_down_interval);
    s.autoscaler.scale_up_cooldown_before_down =
        millis("scale_up_cooldown_ms", s.autoscaler.scale_up_cooldown_before_down);
    s.backoff.initial = millis("backoff_initial_ms", s.backoff.initial);
    s.backoff.max = millis("backoff_max_ms", s.backoff.max);
    s.backoff.stable_after = millis("stable_after_ms", s.backoff.stable_after);
    s.breaker.failure_threshold = u64("breaker_threshold", s.breaker.failure_threshold);
    s.breaker.cooldown = millis("breaker_cooldown_ms", s.breaker.cooldown);
    // A stateful kind (the Modbus poller) runs exactly one worker.
    if (optional_bool(entry, "singleton").value_or(false)) s.min_workers = s.max_workers = 1;
  };
  if (workers.contains("default")) apply(workers["default"]);
  if (workers.contains(kind)) apply(workers[kind]);
  s.min_workers = std::max<std::size_t>(s.min_workers, 1);  // the first call never waits for a spawn
  s.max_workers = std::max(s.max_workers, s.min_workers);
  return s;
}

void PoolExecutor::add_kind(const std::vector<Tool>& tools, LaunchSpec launch, PoolSettings settings) {
  auto pool = std::make_unique<WorkerPool>(loop_, std::move(launch), std::move(settings));
  for (const auto& tool : tools) kind_of_[tool.name] = pool.get();
  std::string kind = pool->kind();
  pools_[kind] = std::move(pool);
}

void PoolExecutor::start() {
  for (auto& [kind, pool] : pools_) pool->start();
}

void PoolExecutor::execute(CallRequest request, Done done) {
  auto it = kind_of_.find(request.tool->name);
  if (it == kind_of_.end()) {
    CallOutcome o;
    o.status = CallOutcome::Status::failed;
    o.error = "no worker kind serves tool '" + request.tool->name + "'";
    o.path = "pool";
    done(std::move(o));
    return;
  }
  WorkerPool* pool = it->second;
  auto call = std::make_shared<PoolCall>();
  call->id = request.call_id;
  call->tool = request.tool->name;
  call->arguments = std::move(request.arguments);
  call->idempotent = request.tool->annotations.idempotent;
  call->deadline = request.deadline;
  call->progress = std::move(request.progress);
  calls_[call->id] = pool;
  call->done = [this, id = call->id, done = std::move(done)](CallOutcome outcome) {
    calls_.erase(id);
    done(std::move(outcome));
  };
  pool->submit(std::move(call));
}

void PoolExecutor::cancel(const std::string& call_id) {
  auto it = calls_.find(call_id);
  if (it != calls_.end()) it->second->cancel(call_id);
}

void PoolExecutor::revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                              std::function<void(bool)> done) {
  // Owners are "<kind>#<worker id>" (WorkerPool::owner_name).
  auto hash = voucher.owner.rfind('#');
  auto pool = hash == std::string::npos ? pools_.end() : pools_.find(voucher.owner.substr(0, hash));
  std::uint64_t worker = 0;
  if (pool != pools_.end()) {
    try {
      worker = std::stoull(voucher.owner.substr(hash + 1));
    } catch (const std::exception&) {
      worker = 0;
    }
  }
  if (pool == pools_.end() || worker == 0) {
    done(false);
    return;
  }
  pool->second->revalidate(worker, tool.name, arguments, voucher.state, std::move(done));
}

void PoolExecutor::on_invalidated(Invalidated listener) {
  for (auto& [kind, pool] : pools_) pool->on_invalidated(listener);
}

void PoolExecutor::shutdown(std::function<void()> done) {
  auto remaining = std::make_shared<std::size_t>(pools_.size());
  if (*remaining == 0) {
    done();
    return;
  }
  for (auto& [kind, pool] : pools_)
    pool->shutdown([remaining, done] {
      if (--*remaining == 0) done();
    });
}

json PoolExecutor::status() const {
  json out = json::object();
  for (const auto& [kind, pool] : pools_) out[kind] = pool->status();
  return out;
}

}  // namespace mcpd::pool
