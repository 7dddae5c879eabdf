// The contract between a tool library and whoever runs it. A tool family (parser, git, ...) is a
// library that returns a list of Tool values; the coordinator runs their handlers in-process (the
// legacy path) and a worker process runs the very same handlers behind the frame protocol.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// Hints a client may show and the coordinator acts on (retry only idempotent tools). Same meaning as
/// MCP's ToolAnnotations.
struct ToolAnnotations {
  bool read_only = true;
  bool destructive = false;
  bool idempotent = true;
  bool open_world = false;
};

/// How the L1 cache may keep a tool's results.
enum class CachePolicy {
  never,  // live data (a device, the clock): always run
  pure,   // the answer depends on the arguments alone
  files,  // the answer depends on the arguments and the files named by Tool::path_arguments
  custom, // the answer depends on the arguments and on state only the tool's own process can judge:
          // Tool::cache_key there, checked again there before a cached copy is served
};

/// What a custom-policy family watches where its tools run, so that a cached answer is dropped as
/// soon as what it depends on changes rather than at the next lookup. Shared by the family's tools
/// (the runtime polls each distinct one), and called from one thread at a time.
class CacheWatch {
 public:
  virtual ~CacheWatch() = default;
  /// The tags (absolute directories, as Tool::cache_tag gives them) under which something changed
  /// since the last call, found without blocking (a drain of watchers). An answer whose tag is one
  /// of them or lies below one must go.
  virtual std::vector<std::string> changed() = 0;
};

/// A cancellation flag shared between the caller and a running handler. Handlers poll it at
/// convenient points (between files, every few thousand nodes) and throw ToolCancelled.
class CancelToken {
 public:
  CancelToken() : flag_(std::make_shared<std::atomic<bool>>(false)) {}
  void cancel() const { flag_->store(true, std::memory_order_relaxed); }
  bool cancelled() const { return flag_->load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<std::atomic<bool>> flag_;
};

/// A failure the user can act on: becomes an `isError: true` tool result with this message.
class ToolError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Thrown by a handler that noticed its CancelToken.
class ToolCancelled : public std::runtime_error {
 public:
  ToolCancelled() : std::runtime_error("cancelled") {}
};

class RootDirs;

/// What a handler may use while it runs. Callbacks are safe to call from the handler's thread.
struct ToolContext {
  std::vector<std::filesystem::path> roots;  // canonical, absolute
  /// The roots opened once by whoever runs the tools (roots.h); null: opened per call from `roots`.
  std::shared_ptr<const RootDirs> root_dirs;
  CancelToken cancel;
  std::uint64_t max_file_bytes = 8u << 20;
  std::uint64_t max_result_bytes = 4u << 20;
  /// Deepest nesting the structured result may have (the object itself is level 1): what the
  /// coordinator's frame reader and its clients accept, less their own envelope. A tool whose
  /// output nests with its input (a syntax tree as JSON) stays within it.
  std::uint64_t max_result_depth = 500;
  bool allow_writes = false;  // tools that change state (destructiveHint) refuse unless true
  /// Reports progress; `total` is 0 when unknown. The runner keeps values increasing.
  std::function<void(double progress, double total, const std::string& message)> progress;
  /// Level is an MCP/syslog level name: debug, info, notice, warning, error, ...
  std::function<void(const std::string& level, const std::string& message)> log;

  void check_cancelled() const {
    if (cancel.cancelled()) throw ToolCancelled();
  }
  void report(double done, double total, const std::string& message) const {
    if (progress) progress(done, total, message);
  }
};

/// A handler's answer. `structured` is the tool's structuredContent (an object, matching
/// outputSchema). A tool that declares an outputSchema gets the serialized structured JSON as its
/// text content (MCP asks for exactly that), so only tools without one set `text`.
struct ToolResult {
  json structured = json::object();
  std::string text;
};

using ToolHandler = std::function<ToolResult(const json& arguments, ToolContext& context)>;

/// One tool: its public interface (name, schemas, annotations) and its behaviour.
struct Tool {
  std::string name;
  std::string title;
  std::string description;
  json input_schema;
  json output_schema;  // null when the tool returns no structured content
  ToolAnnotations annotations;
  CachePolicy cache = CachePolicy::never;
  std::vector<std::string> path_arguments;  // argument names holding file paths (CachePolicy::files)
  /// CachePolicy::custom: the state the answer depends on besides the arguments (for git: HEAD and
  /// the refs; for search: the searched tree's watcher generation and the ignore files above it),
  /// or nullopt when the call must not be cached. It runs where the tool runs (the worker, or a
  /// legacy thread), never on the coordinator's event loop: once before the handler, and again
  /// before each cached copy is served, which only happens if both give the same state. It must
  /// cost a few stat()s and non-blocking reads, not the answer.
  std::function<std::optional<std::string>(const json& arguments, const std::vector<std::filesystem::path>& roots)>
      cache_key;
  /// CachePolicy::custom, optional: the absolute directory the answer depends on, the tag that
  /// `cache_watch` reports changes under. Without it, answers go stale only by cache_key.
  std::function<std::optional<std::string>(const json& arguments, const std::vector<std::filesystem::path>& roots)>
      cache_tag;
  std::shared_ptr<CacheWatch> cache_watch;
  std::chrono::milliseconds default_timeout{30000};
  /// Whether shadow mode may run the tool on both paths and compare: false where the tool's state
  /// lives in one process (Modbus polling groups) or its answer is a live reading. Tools that are
  /// not read-only are never shadowed.
  bool shadowable = true;
  ToolHandler handler;
};

}  // namespace mcpd
