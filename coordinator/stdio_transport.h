// The client connection over stdin/stdout, MCP's stdio transport. When stdin and stdout are pipes
// or sockets (how MCP clients launch servers) the event loop reads and writes them directly, so a
// message costs no thread handoff. When either is something epoll refuses (a regular file, as in
// `mcpd < requests.jsonl`), that side falls back to a thread: a blocking reader that posts batches
// of lines, or a writer that drains a queue. Either way stdout carries protocol only, and a client
// that reads slowly never blocks the loop.
//
// Backpressure: output waiting for the client is bounded by max_output_queue_bytes. Above it, no
// more input is taken (the client's writes block in the pipe, so what it sends cannot pile up here),
// notifications the client can live without are dropped and counted, and reading resumes when the
// queue has drained below half the bound. Buffers grown by a backlog are given back once it drains.
// A stdout that fails (EPIPE: the client closed it) is reported once through on_output_closed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <nlohmann/json.hpp>

#include "line_reader.h"

namespace mcpd {

class StdioTransport {
 public:
  struct Handlers {
    std::function<void(std::string line)> on_line;
    std::function<void(std::size_t bytes)> on_oversize;
    std::function<void()> on_eof;
    /// stdout failed (the client closed it, or another write error): nothing more can be said.
    std::function<void(const std::string& error)> on_output_closed;
  };

  StdioTransport(boost::asio::io_context& loop, std::size_t max_line_bytes, std::size_t max_output_queue_bytes,
                 int in_fd = 0, int out_fd = 1);
  ~StdioTransport();

  /// Starts reading; handlers run on the event loop thread.
  void start(Handlers handlers);
  /// Queues one message. Call on the loop thread (other threads are hopped over to it). Write
  /// errors (client gone) drop further output silently.
  void send(const nlohmann::json& message);
  /// Queues one message already serialized (compact, one line, no newline). Loop thread only.
  void send_text(std::string text);
  /// Queues a message the client can do without (progress, log notifications), unless the output
  /// queue is over its bound: then it is dropped and counted. Loop thread only. True if queued.
  bool send_droppable(const nlohmann::json& message);
  /// Writes everything queued, then stops (call on the loop thread's way out, after run()).
  void flush_and_stop();

  /// Bytes written by us and not yet taken by the client.
  std::size_t queued_bytes() const { return queued_bytes_.load(std::memory_order_relaxed); }
  std::uint64_t dropped_notifications() const { return dropped_notifications_; }
  /// Times input was paused because the output queue was over its bound.
  std::uint64_t input_pauses() const { return input_pauses_; }
  bool input_paused() const { return paused_; }

 private:
  void read_async();
  void read_thread();
  /// Hands buffered lines to on_line until the buffer is empty or the output is congested.
  void deliver();
  void write_async();
  void write_thread();
  void enqueue(std::string line);
  bool congested() const { return queued_bytes() > max_output_queue_bytes_; }
  /// After a write: resume input below half the bound, and give back a drained backlog's memory.
  void after_drain();
  void output_failed(const std::string& error);

  boost::asio::io_context& loop_;
  std::size_t max_line_bytes_;
  std::size_t max_output_queue_bytes_;
  int in_fd_, out_fd_;
  Handlers handlers_;
  LineReader reader_;
  std::vector<char> read_buffer_;
  std::atomic<std::size_t> queued_bytes_{0};
  std::size_t peak_since_release_ = 0;  // largest backlog since buffers were last given back
  std::uint64_t dropped_notifications_ = 0;
  std::atomic<std::uint64_t> input_pauses_{0};
  bool paused_ = false;     // input not read because the output is congested
  bool read_armed_ = false;  // an async read is outstanding
  bool eof_ = false;
  bool output_closed_reported_ = false;

  // Async side (pipes, sockets).
  std::unique_ptr<boost::asio::posix::stream_descriptor> in_, out_;
  std::string pending_, writing_buffer_;
  bool writing_ = false;
  bool broken_ = false;

  // Thread side (regular files, terminals).
  std::thread reader_thread_, writer_thread_;
  std::mutex mutex_;
  std::condition_variable ready_, drained_;
  std::string queue_;
  bool stopping_ = false;
  bool thread_broken_ = false;
};

}  // namespace mcpd
