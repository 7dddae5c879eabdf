// A worker process started the way the coordinator starts one (its configuration in
// MCPD_WORKER_CONFIG, frames on its stdin and stdout), for tests that speak the worker protocol
// directly. Frames are read on the test's own thread: wait_for() reads until a frame matching a
// predicate arrives and keeps the others, in order, for later waits; history() has every frame.
// The ChildProcess inside reaps the worker (SIGKILL if it lingers), so no test leaves a zombie.
#pragma once

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <functional>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "frame.h"
#include "mcp_client.h"
#include "temp_dir.h"

namespace mcpd::test {

using json = nlohmann::json;
using namespace std::chrono_literals;

inline std::string worker_binary(const std::string& kind) {
  return std::string(MCPD_BINARY_DIR) + "/bin/mcpd-worker-" + kind;
}

/// A worker configuration rooted at the source tree.
inline json worker_config(bool test_hooks = false, const std::string& log_level = "info") {
  return {{"roots", {MCPD_SOURCE_DIR}}, {"log_level", log_level}, {"test_hooks", test_hooks}};
}

class WorkerHarness {
 public:
  struct Options {
    std::optional<std::string> config = worker_config().dump();  // nullopt: MCPD_WORKER_CONFIG unset
    std::vector<std::string> env;                                // more KEY=VALUE
    std::vector<std::string> argv;  // empty: run the worker binary itself; else this command
  };

  explicit WorkerHarness(const std::string& kind) : WorkerHarness(kind, Options()) {}
  WorkerHarness(const std::string& kind, const Options& options)
      : child_(make_argv(kind, options), make_options(options)) {}

  /// Starts a worker with test hooks on, and optionally more environment.
  static Options hooks(std::vector<std::string> env = {}, const std::string& log_level = "info") {
    Options options;
    options.config = worker_config(true, log_level).dump();
    options.env = std::move(env);
    return options;
  }

  pid_t pid() const { return child_.pid(); }
  ChildProcess& process() { return child_; }

  void send(const json& frame) { send_raw(encode_frame(frame)); }

  /// Writes bytes to the worker's stdin; false once the worker is gone.
  bool send_raw(const std::string& bytes) {
    std::size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::write(child_.stdin_fd(), bytes.data() + off, bytes.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      off += static_cast<std::size_t>(n);
    }
    return true;
  }

  void call(const std::string& id, const std::string& tool, const json& arguments,
            std::optional<int> deadline_ms = std::nullopt) {
    json frame = {{"type", "call"}, {"id", id}, {"tool", tool}, {"arguments", arguments}};
    if (deadline_ms) frame["deadline_ms"] = *deadline_ms;
    send(frame);
  }

  void close_stdin() { child_.close_stdin(); }

  /// The first frame (held back or new) that `match` accepts, within `timeout`.
  std::optional<json> wait_for(const std::function<bool(const json&)>& match,
                               std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      for (auto it = held_.begin(); it != held_.end(); ++it)
        if (match(*it)) {
          json frame = std::move(*it);
          held_.erase(it);
          return frame;
        }
      if (!read_some(until)) return std::nullopt;
    }
  }

  std::optional<json> wait_type(const std::string& type, std::chrono::milliseconds timeout = 5s) {
    return wait_for([&](const json& f) { return f.value("type", "") == type; }, timeout);
  }

  /// The result or error frame that ends call `id`.
  std::optional<json> wait_outcome(const std::string& id, std::chrono::milliseconds timeout = 5s) {
    return wait_for(
        [&](const json& f) {
          auto type = f.value("type", "");
          return (type == "result" || type == "error") && f.value("id", "") == id;
        },
        timeout);
  }

  /// Reads until the worker closes its stdout or `timeout` passes; true at EOF.
  bool drain(std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (read_some(until)) {
    }
    return eof_;
  }

  /// Waits for the worker to exit; its wait status, or nullopt on timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = 5s) { return child_.wait(timeout); }

  const std::vector<json>& history() const { return history_; }
  /// The first error the frame reader saw on the worker's stdout (garbage), if any.
  const std::optional<FrameReader::Error>& frame_error() const { return frame_error_; }
  bool eof() const { return eof_; }

  /// Everything the worker wrote to stderr so far.
  std::string stderr_text() const {
    std::ifstream in(stderr_path());
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string stderr_path() const { return (dir_.path / "stderr.log").string(); }

  static std::vector<std::string> make_argv(const std::string& kind, const Options& options) {
    // A worker that dies takes its pipe with it; a test writing to it must see EPIPE, not die.
    std::signal(SIGPIPE, SIG_IGN);
    // The test's own environment must not leak hooks or a configuration into the worker.
    ::unsetenv("MCPD_WORKER_CONFIG");
    ::unsetenv("MCPD_TEST_WORKER_FAULT");
    ::unsetenv("MCPD_TEST_WORKER_DIVERGE");
    if (!options.argv.empty()) return options.argv;
    return {worker_binary(kind)};
  }

  ChildProcess::Options make_options(const Options& options) const {
    ChildProcess::Options child;
    child.env_extra = options.env;
    if (options.config) child.env_extra.push_back("MCPD_WORKER_CONFIG=" + *options.config);
    child.stderr_path = stderr_path();
    return child;
  }

  /// Reads one chunk (or times out); false at timeout or EOF.
  bool read_some(std::chrono::steady_clock::time_point until) {
    if (eof_) return false;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    if (left.count() < 0) return false;
    pollfd p{child_.stdout_fd(), POLLIN, 0};
    int ready = ::poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) return true;
    if (ready <= 0) return false;
    char buffer[64 * 1024];
    ssize_t n = ::read(child_.stdout_fd(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) return true;
    if (n <= 0) {
      eof_ = true;
      return false;
    }
    reader_.feed(buffer, static_cast<std::size_t>(n));
    for (;;) {
      auto event = reader_.next();
      if (event.kind == FrameReader::Event::Kind::need_more) break;
      if (event.kind == FrameReader::Event::Kind::error) {
        if (!frame_error_) frame_error_ = event.error;
        if (reader_.failed()) break;
        continue;
      }
      // A result carries the client's CallToolResult as its raw part; the tests read it as the
      // frame's "result", with its structured content (or its text) beside it for short checks.
      if (!event.raw.empty()) {
        json body = json::parse(event.raw);
        event.frame["structured"] = body.value("structuredContent", json());
        event.frame["text"] = body["content"][0].value("text", "");
        event.frame["result"] = std::move(body);
      }
      history_.push_back(event.frame);
      held_.push_back(std::move(event.frame));
    }
    return true;
  }

  TempDir dir_;  // before child_: holds the worker's stderr file, removed after the worker is reaped
  ChildProcess child_;
  FrameReader reader_;
  std::deque<json> held_;
  std::vector<json> history_;
  std::optional<FrameReader::Error> frame_error_;
  bool eof_ = false;
};

}  // namespace mcpd::test
