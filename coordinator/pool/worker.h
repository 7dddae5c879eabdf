// Worker is one worker process and its channel, driven entirely by the coordinator's event loop:
// spawned with least privilege (spawn.h), spoken to in frames over its stdin/stdout, its stderr relayed to
// our log tagged with kind and pid, and its exit noticed the moment it happens (EOF on the pipe or
// the pidfd turning readable), never at the next health check. The WorkerPool owns every Worker
// and decides what to do with one; a Worker only reports what it sees and does what it is told.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/readable_pipe.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/writable_pipe.hpp>
#include <nlohmann/json.hpp>

#include "frame.h"

namespace mcpd::pool {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

/// How to start a worker of one kind.
struct LaunchSpec {
  std::string kind;
  std::string executable;
  std::uint64_t address_space_limit = 0;    // RLIMIT_AS in bytes, 0 = none (the hard memory limit)
  std::size_t max_frame_bytes = 64u << 20;
  std::vector<std::string> environment;     // "KEY=VALUE", the worker's whole environment
  std::uint64_t max_open_files = 0;         // RLIMIT_NOFILE, 0 = as inherited
  std::string spawn_fault;                  // test hook, see SpawnRequest::fault
  /// Watch the exit through a pidfd. Without one (pidfd_open refused, or turned off by the test
  /// hook) a dead worker is found by EOF on its pipe and reaped by polling waitpid.
  bool use_pidfd = true;
};

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  enum class State { starting, idle, busy, draining, dead };

  struct Events {
    std::function<void(Worker&, const json& hello)> on_ready;
    /// Any frame after hello, with its raw part (frame.h; empty when it has none).
    std::function<void(Worker&, json frame, std::string raw)> on_frame;
    /// Called once, as soon as the worker is known to be gone or broken; `reason` says why.
    std::function<void(Worker&, const std::string& reason)> on_lost;
    /// Called once, when the process has been reaped (after on_lost).
    std::function<void(Worker&)> on_reaped;
  };

  Worker(boost::asio::io_context& loop, std::uint64_t id, LaunchSpec spec, Events events);
  ~Worker();

  /// Spawns the process. Failure to spawn is reported through on_lost, like any other death.
  void start();
  void send(const json& frame);
  /// Sends a frame whose JSON object is already serialized (compactly: no raw newline).
  void send_text(std::string_view frame_json);
  /// SIGKILLs the worker's process group (its own children die with it) and reports it lost.
  void kill(const std::string& reason);
  /// Graceful stop: a shutdown frame, SIGTERM after `grace`, SIGKILL after another `grace`.
  void stop(std::chrono::milliseconds grace);

  std::uint64_t id() const { return id_; }
  pid_t pid() const { return pid_; }
  const std::string& kind() const { return spec_.kind; }
  bool lost() const { return lost_; }
  bool reaped() const { return reaped_; }
  Clock::time_point started_at() const { return started_at_; }
  Clock::time_point ready_at() const { return ready_at_; }
  /// Resident memory from /proc (0 if unknown).
  std::uint64_t rss_bytes() const;
  /// How the process ended, e.g. "killed by signal 9 (Killed)" or "exited with status 3".
  const std::string& exit_description() const { return exit_description_; }
  /// The state letter of /proc/<pid>/stat ('R', 'S', 'T' for stopped...), or 0 when unknown.
  char process_state() const;
  /// True when the exit is watched without a pidfd (the waitpid polling fallback).
  bool reaps_by_polling() const { return !pidfd_; }

  // Pool bookkeeping, owned by the pool.
  State state = State::starting;
  /// Ids of the calls it holds, in the order sent: the first max_calls run, the rest wait in the
  /// worker (pipelining, at most PoolSettings::pipeline_depth - 1 beyond max_calls).
  std::deque<std::string> calls;
  bool holds(const std::string& call_id) const {
    for (const auto& c : calls)
      if (c == call_id) return true;
    return false;
  }
  /// Calls it runs at once, from its hello ("max_calls"): the first max_calls of `calls` run.
  std::size_t max_calls = 1;
  /// Calls it holds waiting beyond max_calls, from its hello ("max_waiting"; absent: 1).
  std::size_t max_waiting = 1;
  bool recycle_pending = false;         // recycle once its calls are done
  std::uint64_t calls_served = 0;
  std::uint64_t recycle_after = 0;      // calls before it is recycled, 0 = never
  Clock::time_point idle_since{};
  Clock::time_point last_pong{};
  Clock::time_point last_heard{};  // any frame from the worker: it is alive and reading
  Clock::time_point ping_sent{};   // when the outstanding ping (ping_seq > pong_seq) went out
  std::uint64_t ping_seq = 0, pong_seq = 0;
  std::uint64_t reported_rss = 0;       // resident size from its last pong or telemetry
  std::uint64_t reported_peak_rss = 0;  // its peak resident size, from its last outcome frame

 private:
  void read_frames();
  void read_stderr();
  void watch_exit();
  void flush_writes();
  void schedule_flush();  // flush_writes after the running handler, unless a write is under way
  void lose(const std::string& reason);
  void on_exit_status(int status);
  /// The fallback reaper: waitpid(WNOHANG) on a timer, from 5 ms up to 200 ms apart.
  void poll_reap(std::chrono::milliseconds delay);

  boost::asio::io_context& loop_;
  std::uint64_t id_;
  LaunchSpec spec_;
  Events events_;
  pid_t pid_ = -1;
  boost::asio::writable_pipe stdin_;
  boost::asio::readable_pipe stdout_, stderr_;
  std::unique_ptr<boost::asio::posix::stream_descriptor> pidfd_;
  std::unique_ptr<boost::asio::steady_timer> stop_timer_, reap_timer_;
  FrameReader reader_;
  std::vector<char> read_buffer_, stderr_buffer_;
  std::string stderr_line_;
  std::deque<std::string> write_queue_;
  bool writing_ = false;  // a write is under way or posted
  bool hello_seen_ = false;
  bool lost_ = false;
  bool reaped_ = false;
  std::string exit_description_;
  Clock::time_point started_at_{}, ready_at_{};
};

const char* to_string(Worker::State state);

}  // namespace mcpd::pool
