// The client connection over stdin/stdout, MCP's stdio transport. A reader thread splits stdin into
// lines (a blocking read works for pipes, files and terminals alike, where epoll refuses regular
// files) and posts each to the event loop; a writer thread drains a queue to stdout so a client
// that reads slowly never blocks the loop. stdout carries protocol only.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

#include <boost/asio/io_context.hpp>
#include <nlohmann/json.hpp>

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
  /// Queues one message; thread-safe. Write errors (client gone) drop further output silently.
  void send(const nlohmann::json& message);
  /// Writes everything queued, then stops the writer (call before exit).
  void flush_and_stop();

 private:
  void read_loop();
  void write_loop();

  boost::asio::io_context& loop_;
  std::size_t max_line_bytes_;
  int in_fd_, out_fd_;
  Handlers handlers_;
  std::thread reader_, writer_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::string> queue_;
  bool stopping_ = false;
};

}  // namespace mcpd
