#include "stdio_transport.h"

#include <unistd.h>

#include <cerrno>

#include <boost/asio/post.hpp>

#include "line_reader.h"

namespace mcpd {

namespace asio = boost::asio;

StdioTransport::StdioTransport(asio::io_context& loop, std::size_t max_line_bytes, int in_fd, int out_fd)
    : loop_(loop), max_line_bytes_(max_line_bytes), in_fd_(in_fd), out_fd_(out_fd) {}

StdioTransport::~StdioTransport() {
  flush_and_stop();
  // The reader may be blocked in read(2) on a stdin nobody closes; it holds no state of ours that
  // outlives the process, so let it go rather than hang the exit.
  if (reader_.joinable()) reader_.detach();
}

void StdioTransport::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  writer_ = std::thread([this] { write_loop(); });
  reader_ = std::thread([this] { read_loop(); });
}

void StdioTransport::read_loop() {
  LineReader reader(max_line_bytes_);
  std::string chunk(64 * 1024, '\0');
  auto drain = [&] {
    for (;;) {
      LineReader::Event event = reader.next();
      if (event.kind == LineReader::Event::Kind::need_more) return;
      if (event.kind == LineReader::Event::Kind::line) {
        asio::post(loop_, [this, line = std::move(event.line)]() mutable { handlers_.on_line(std::move(line)); });
      } else {
        asio::post(loop_, [this, bytes = event.bytes] { handlers_.on_oversize(bytes); });
      }
    }
  };
  for (;;) {
    ssize_t n = ::read(in_fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    reader.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    drain();
  }
  if (auto last = reader.flush_at_eof())
    asio::post(loop_, [this, line = std::move(*last)]() mutable { handlers_.on_line(std::move(line)); });
  asio::post(loop_, [this] { handlers_.on_eof(); });
}

void StdioTransport::send(const nlohmann::json& message) {
  std::string line = encode_line(message);
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    queue_.push_back(std::move(line));
  }
  ready_.notify_one();
}

void StdioTransport::write_loop() {
  bool broken = false;
  for (;;) {
    std::deque<std::string> batch;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      batch.swap(queue_);
    }
    // Coalesce queued messages into few writes: under load this is most of the transport's cost.
    std::string out;
    for (auto& line : batch) out += line;
    std::size_t off = 0;
    while (!broken && off < out.size()) {
      ssize_t n = ::write(out_fd_, out.data() + off, out.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) broken = true;  // client gone (EPIPE): nothing more can be said to it
      else off += static_cast<std::size_t>(n);
    }
  }
}

void StdioTransport::flush_and_stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  if (writer_.joinable()) writer_.join();
}

}  // namespace mcpd
