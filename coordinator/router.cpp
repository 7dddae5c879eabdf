#include "router.h"

#include <cstring>

#include "cache_key.h"
#include "json_text.h"
#include "log.h"
#include "policy.h"

namespace mcpd {

Router::Router(const Config& config, Executor& legacy, Executor* pool,
               std::function<bool(const std::string& tool)> pool_serves)
    : config_(config), legacy_(legacy), pool_(pool), pool_serves_(std::move(pool_serves)) {}

std::string Router::route(const Tool& tool, const json& arguments) const {
  if (!pool_ || !pool_serves_(tool.name)) return "legacy";
  std::string mode = config_.mode;
  if (auto it = config_.tool_modes.find(tool.name); it != config_.tool_modes.end()) mode = it->second;
  // Shadow runs a call twice, so only where that is harmless and comparable: a write (git_commit) or
  // a tool whose state lives in one process (Modbus) goes to the pool alone.
  bool single_run = !tool.annotations.read_only || !tool.shadowable;
  if (mode == "shadow" && single_run) return "pool";
  if (mode != "pool") return mode;
  // A share of calls split by request hash would put a stateful tool's calls in two processes.
  if (config_.pool_percent >= 100 || !tool.shadowable) return "pool";
  CacheKey key = make_cache_key(tool.name, arguments);
  std::uint64_t hash = 0;
  std::memcpy(&hash, key.bytes.data(), sizeof hash);
  return pool::route_to_pool(hash, static_cast<unsigned>(config_.pool_percent)) ? "pool" : "legacy";
}

namespace {

/// What two paths must agree on: how the call ended and what it returned.
json comparable(const CallOutcome& o) {
  json out = {{"status", static_cast<int>(o.status)}};
  if (o.status == CallOutcome::Status::ok) {
    JsonText body = parse_json_text(o.body);  // shadow mode only: the hot paths never parse it
    out["result"] = body.ok ? std::move(body.value) : json(o.body);
  }
  else out["error"] = o.error;
  return out;
}

}  // namespace

void Router::execute(CallRequest request, Done done) {
  std::string path = route(*request.tool, request.arguments);
  ++routed_[path];
  if (path == "legacy") return legacy_.execute(std::move(request), std::move(done));
  if (path == "pool") return pool_->execute(std::move(request), std::move(done));

  // Shadow: both paths run; the client gets the pool's answer as soon as it has it.
  struct Pair {
    std::optional<CallOutcome> pool, legacy;
  };
  auto pair = std::make_shared<Pair>();
  std::string tool = request.tool->name, call_id = request.call_id;
  auto started = std::chrono::steady_clock::now();
  CallRequest shadow = request;
  shadow.progress = nullptr;  // progress comes from the path that answers
  pool_->execute(std::move(request), [this, pair, tool, call_id, done = std::move(done)](CallOutcome outcome) {
    pair->pool = outcome;
    done(std::move(outcome));
    if (pair->legacy) compare(tool, call_id, *pair->pool, *pair->legacy);
  });
  legacy_.execute(std::move(shadow), [this, pair, tool, call_id, started](CallOutcome outcome) {
    PathStats& stats = shadow_legacy_[tool];
    ++stats.calls;
    stats.latency_us.add(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - started).count());
    if (outcome.status == CallOutcome::Status::ok) ++stats.ok;
    else ++stats.failed;
    pair->legacy = std::move(outcome);
    if (pair->pool) compare(tool, call_id, *pair->pool, *pair->legacy);
  });
}

void Router::compare(const std::string& tool, const std::string& call_id, const CallOutcome& pool,
                     const CallOutcome& legacy) {
  // A call the server gave up on (timeout, cancel) says nothing about the paths agreeing.
  using S = CallOutcome::Status;
  for (S s : {pool.status, legacy.status})
    if (s == S::cancelled || s == S::timeout || s == S::rejected) return;
  ++shadow_compared_;
  json a = comparable(pool), b = comparable(legacy);
  if (canonical_json(a) == canonical_json(b)) {
    ++shadow_matches_;
    return;
  }
  ++shadow_mismatches_;
  std::string diff = json::diff(b, a).dump(-1, ' ', false, json::error_handler_t::replace);
  if (diff.size() > 4096) diff = diff.substr(0, 4096) + "...";
  log_warning("shadow mismatch: the pool and legacy paths disagree",
              {{"call", call_id}, {"tool", tool}, {"diff_legacy_to_pool", diff}});
}

void Router::cancel(const std::string& call_id) {
  legacy_.cancel(call_id);
  if (pool_) pool_->cancel(call_id);
}

void Router::revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                        std::function<void(bool)> done) {
  // The owner answers, whichever path the route would take now.
  if (voucher.owner == "legacy" || !pool_) return legacy_.revalidate(tool, arguments, voucher, std::move(done));
  pool_->revalidate(tool, arguments, voucher, std::move(done));
}

void Router::on_invalidated(Invalidated listener) {
  legacy_.on_invalidated(listener);
  if (pool_) pool_->on_invalidated(std::move(listener));
}

void Router::shutdown(std::function<void()> done) {
  if (!pool_) return legacy_.shutdown(std::move(done));
  pool_->shutdown([this, done = std::move(done)]() mutable { legacy_.shutdown(std::move(done)); });
}

json Router::status() const {
  json shadow_legacy = json::object();
  for (const auto& [tool, stats] : shadow_legacy_) shadow_legacy[tool] = stats.to_json();
  return {{"mode", config_.mode},
          {"tool_modes", config_.tool_modes},
          {"pool_percent", config_.pool_percent},
          {"routed", routed_},
          {"shadow",
           {{"compared", shadow_compared_},
            {"matches", shadow_matches_},
            {"mismatches", shadow_mismatches_},
            {"legacy_side", shadow_legacy}}},
          {"pools", pool_ ? pool_->status() : json::object()},
          {"legacy", legacy_.status()}};
}

}  // namespace mcpd
