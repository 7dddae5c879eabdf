// The seam between the MCP server and wherever a tool runs: in-process on a thread pool (the
// legacy path) or in a worker process (the pool). The server owns deadlines, caching and replies;
// an executor only runs one call and reports how it ended, on the server's event loop.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "lru_cache.h"
#include "tool.h"

namespace mcpd {

/// One call handed to an executor.
struct CallRequest {
  const Tool* tool = nullptr;
  json arguments;
  std::string call_id;  // follows the call through every log line, e.g. "c42"
  CancelToken cancel;
  std::chrono::steady_clock::time_point deadline;
  /// Safe from any thread; the server forwards increasing values to the client.
  std::function<void(double progress, double total, const std::string& message)> progress;
};

/// How a call ended.
struct CallOutcome {
  // rejected: refused before running (a full queue, an open circuit breaker): the client gets
  // JSON-RPC error -32001 "server busy" and may try again later.
  enum class Status { ok, tool_error, cancelled, timeout, failed, rejected };
  Status status = Status::ok;
  /// When ok: the result as MCP's CallToolResult object, serialized where the tool ran
  /// (result_body); the server adds its _meta and passes the bytes on without parsing them.
  std::string body;
  std::string error;  // otherwise: a message a user can act on
  std::string path;   // which path ran it: "legacy" or "pool"
  int retries = 0;    // times the pool re-ran it on another worker after a worker died
  /// When ok and the tool is CachePolicy::custom: who vouches for a cached copy and with what
  /// state; null when the answer must not be cached (the owner gave no state).
  std::shared_ptr<const Voucher> voucher;
};

class Executor {
 public:
  using Done = std::function<void(CallOutcome)>;
  virtual ~Executor() = default;
  /// Runs the call; `done` is invoked exactly once, on the server's event loop thread.
  virtual void execute(CallRequest request, Done done) = 0;
  /// The server gave up on a call (deadline, client cancel, shutdown) and has already answered or
  /// abandoned it; the executor stops the work (a running worker gets a cancel, then is killed if
  /// it does not stop within the grace period). A late `done` for it is ignored by the server.
  virtual void cancel(const std::string& call_id) { (void)call_id; }
  /// Stops taking calls and releases resources (worker processes); `done` runs on the loop after.
  virtual void shutdown(std::function<void()> done) { done(); }
  /// Asks the owner of a vouched answer whether `voucher.state` is still the state a call of `tool`
  /// with `arguments` depends on. `done(true)` when it is; false when not, or when the owner is gone
  /// or does not answer in time. Invoked once, on the server's event loop.
  virtual void revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                          std::function<void(bool current)> done) {
    (void)tool;
    (void)arguments;
    (void)voucher;
    done(false);
  }
  /// Owners' news, on the loop: `owner` saw a change under each of `tags`, or, with no tags, is
  /// gone, and so is the validity of every answer it vouched for.
  using Invalidated = std::function<void(const std::string& owner, const std::vector<std::string>& tags)>;
  virtual void on_invalidated(Invalidated listener) { (void)listener; }
  /// Counters for the status tool.
  virtual json status() const { return json::object(); }
};

}  // namespace mcpd
