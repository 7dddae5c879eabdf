// The client connection over stdin/stdout, MCP's stdio transport. When stdin and stdout are pipes
// or sockets (how MCP clients launch servers) the event loop reads and writes them directly, so a
// message costs no thread handoff. When either is something epoll refuses (a regular file, as in
// `mcpd < requests.jsonl`), that side falls back to a thread: a blocking reader that posts batches
// of lines, or a writer that drains a queue. Either way stdout carries protocol only, and a client
// that reads slowly never blocks the loop.
#pragma once

#include <condition_variable>
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
  };

  StdioTransport(boost::asio::io_context& loop, std::size_t max_line_bytes, int in_fd = 0, int out_fd = 1);
  ~StdioTransport();

  /// Starts reading; handlers run on the event loop thread.
  void start(Handlers handlers);
  /// Queues one message. Call on the loop thread (other threads are hopped over to it). Write
  /// errors (client gone) drop further output silently.
  void send(const nlohmann::json& message);
  /// Writes everything queued, then stops (call on the loop thread's way out, after run()).
  void flush_and_stop();

 private:
  void read_async();
  void read_thread();
  void deliver(LineReader& reader);
  void write_async();
  void write_thread();

  boost::asio::io_context& loop_;
  std::size_t max_line_bytes_;
  int in_fd_, out_fd_;
  Handlers handlers_;
  LineReader reader_;
  std::vector<char> read_buffer_;

  // Async side (pipes, sockets).
  std::unique_ptr<boost::asio::posix::stream_descriptor> in_, out_;
  std::string pending_, writing_buffer_;
  bool writing_ = false;
  bool broken_ = false;

  // Thread side (regular files, terminals).
  std::thread reader_thread_, writer_thread_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::string queue_;
  bool stopping_ = false;
};

}  // namespace mcpd
