// A client for any stdio MCP server: spawns the server command, speaks newline-delimited JSON-RPC
// to it, and matches responses to requests by id. Used by the integration tests, the demo and the
// load harness. A reader thread collects responses and notifications; every call is thread-safe.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// One spawned child with pipes to its stdin and stdout. posix_spawn directly: we need the pid for
/// signals and /proc, and control over which fds the child inherits.
class ChildProcess {
 public:
  struct Options {
    std::vector<std::string> env_extra;  // "KEY=VALUE" added to our environment, replacing ours
    std::string stderr_path;             // empty: inherit our stderr
    std::string cwd;                     // empty: ours
  };
  ChildProcess(const std::vector<std::string>& argv, const Options& options);
  ~ChildProcess();  // closes pipes, SIGKILLs if still running, reaps
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }
  int stdin_fd() const { return in_; }
  int stdout_fd() const { return out_; }
  void close_stdin();
  /// Closes our end of the child's stdout (a client that hangs up); not with a McpClient reading it.
  void close_stdout();
  /// Waits for exit up to `timeout`; returns the exit status (as waitpid's wstatus) or nullopt.
  std::optional<int> wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_ = -1;
  std::optional<int> status_;
};

class McpClient {
 public:
  McpClient(const std::vector<std::string>& argv, const ChildProcess::Options& options = {});
  ~McpClient();

  /// Sends initialize then notifications/initialized; returns the initialize result.
  json initialize(const std::string& protocol_version = "2025-06-18");

  /// Sends a request and waits for its response (the whole JSON-RPC response object).
  json request(const std::string& method, const json& params = json::object(),
               std::chrono::milliseconds timeout = std::chrono::seconds(30));
  /// tools/call shortcut: returns the response's "result" or throws with the JSON-RPC error.
  json call_tool(const std::string& name, const json& arguments,
                 std::chrono::milliseconds timeout = std::chrono::seconds(30));

  /// Sends a request without waiting; returns the id used (an integer unless `id` is given).
  json send_request(const std::string& method, const json& params, std::optional<json> id = {});
  /// Waits for the response to `id`; nullopt on timeout.
  std::optional<json> wait_response(const json& id, std::chrono::milliseconds timeout);
  void notify(const std::string& method, const json& params = json::object());
  /// Writes raw bytes (a line must end with "\n").
  void send_raw(const std::string& bytes);
  /// Waits for a response with an id that matches nothing we sent (e.g. id null); nullopt on timeout.
  std::optional<json> wait_unmatched(std::chrono::milliseconds timeout);

  /// Notifications received so far (moved out).
  std::vector<json> take_notifications();
  /// Waits until a notification with `method` has arrived; returns it.
  std::optional<json> wait_notification(const std::string& method, std::chrono::milliseconds timeout);

  /// Stops reading the server's stdout (after the chunk being read), as a client that stalls
  /// would; the server's writes then block in the pipe. resume_reading() reads on.
  void pause_reading();
  void resume_reading();

  bool server_closed() const;
  ChildProcess& process() { return child_; }

 private:
  void read_loop();
  ChildProcess child_;
  std::thread reader_;
  mutable std::mutex mutex_;
  std::condition_variable arrived_;
  std::map<std::string, json> responses_;  // by id key
  std::vector<json> unmatched_;
  std::vector<json> notifications_;
  std::int64_t next_id_ = 1;
  bool closed_ = false;
  bool paused_ = false;
  std::condition_variable unpaused_;
  std::mutex write_mutex_;
};

/// Thrown by call_tool when the server answers with a JSON-RPC error.
struct RpcError : std::runtime_error {
  RpcError(int code, const std::string& message, json data)
      : std::runtime_error(message), code(code), data(std::move(data)) {}
  int code;
  json data;
};

}  // namespace mcpd
