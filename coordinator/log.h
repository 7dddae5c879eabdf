// Structured logs: one JSON object per line on stderr (stdout carries protocol only), and an
// optional forwarder that turns records into MCP notifications/message. Thread-safe; any thread
// may log, and logging never waits for stderr: lines go into a bounded queue that a writer thread
// drains, so a stderr nobody reads cannot stall the event loop or a tool thread. Lines that find
// the queue full are dropped and counted; the count is reported in a line once writing resumes
// and in stats() (mcpd_status).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

class Log {
 public:
  using Forwarder = std::function<void(const std::string& level, const json& record)>;

  static Log& instance();

  void set_level(const std::string& level);  // stderr threshold
  void set_forwarder(Forwarder forwarder);    // called, under no lock, for records at its level
  /// The lowest level rank the forwarder takes (set with the forwarder; default: none).
  void set_forward_rank(int rank) { forward_rank_.store(rank, std::memory_order_relaxed); }
  /// Whether a record at `rank` goes anywhere (stderr or the forwarder): one comparison each,
  /// asked before a record's fields are built.
  bool wants(int rank) const {
    return rank >= threshold_.load(std::memory_order_relaxed) || rank >= forward_rank_.load(std::memory_order_relaxed);
  }
  /// Bytes of log lines that may wait for stderr; beyond them new lines are dropped and counted.
  void set_max_queue_bytes(std::size_t bytes);

  /// Queues {"ts":..., "level":..., "msg":..., <fields>} for stderr when at or above the threshold.
  void write(const std::string& level, const std::string& message, json fields = json::object());

  /// Waits until every queued line has been written, or `timeout` passes; true if all were.
  bool flush(std::chrono::milliseconds timeout);
  /// {"queued_bytes", "max_queue_bytes", "written", "dropped"}.
  json stats();

 private:
  Log() = default;
  void writer_loop();
  /// Writes all of `data` to stderr; false if stderr is gone for good.
  bool write_all(const std::string& data);

  std::mutex mutex_;
  std::condition_variable ready_, drained_;
  std::atomic<int> threshold_{1};  // info
  std::atomic<int> forward_rank_{1 << 30};
  Forwarder forwarder_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  std::size_t max_queue_bytes_ = 1u << 20;
  std::uint64_t written_ = 0, dropped_ = 0, dropped_unreported_ = 0;
  bool writing_ = false;     // the writer holds lines taken from the queue
  bool stderr_gone_ = false;  // a write failed for good (closed stderr): drop everything
  bool writer_started_ = false;
};

/// Whether a debug record would be written or forwarded: hot paths ask before building one.
inline bool debug_logging() { return Log::instance().wants(0); }  // 0: debug, the lowest rank

inline void log_debug(const std::string& m, json f = json::object()) { Log::instance().write("debug", m, std::move(f)); }
inline void log_info(const std::string& m, json f = json::object()) { Log::instance().write("info", m, std::move(f)); }
inline void log_warning(const std::string& m, json f = json::object()) { Log::instance().write("warning", m, std::move(f)); }
inline void log_error(const std::string& m, json f = json::object()) { Log::instance().write("error", m, std::move(f)); }

}  // namespace mcpd
