// The seam between the MCP server and wherever a tool runs: in-process on a thread pool (the
// legacy path) or in a worker process (the pool). The server owns deadlines, caching and replies;
// an executor only runs one call and reports how it ended, on the server's event loop.
#pragma once

#include <chrono>
#include <functional>
#include <string>

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
  enum class Status { ok, tool_error, cancelled, timeout, failed };
  Status status = Status::ok;
  ToolResult result;  // when ok
  std::string error;  // otherwise: a message a user can act on
  std::string path;   // which path ran it: "legacy" or "pool"
};

class Executor {
 public:
  using Done = std::function<void(CallOutcome)>;
  virtual ~Executor() = default;
  /// Runs the call; `done` is invoked exactly once, on the server's event loop thread.
  virtual void execute(CallRequest request, Done done) = 0;
  /// Stops taking calls; running calls finish or notice their CancelToken.
  virtual void shutdown() {}
};

}  // namespace mcpd
