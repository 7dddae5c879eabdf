#include "stdio_transport.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

namespace mcpd {

namespace asio = boost::asio;

namespace {

/// A descriptor for `fd` on the loop, or null when epoll cannot watch it (a regular file).
std::unique_ptr<asio::posix::stream_descriptor> try_async(asio::io_context& loop, int fd) {
  int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0) return nullptr;
  auto descriptor = std::make_unique<asio::posix::stream_descriptor>(loop);
  boost::system::error_code ec;
  descriptor->assign(copy, ec);
  if (ec) {
    ::close(copy);
    return nullptr;
  }
  // Probe: epoll refuses regular files only when an operation registers the descriptor.
  descriptor->non_blocking(true, ec);
  if (ec) return nullptr;
  return descriptor;
}

bool is_pollable(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode);
}

}  // namespace

StdioTransport::StdioTransport(asio::io_context& loop, std::size_t max_line_bytes, int in_fd, int out_fd)
    : loop_(loop), max_line_bytes_(max_line_bytes), in_fd_(in_fd), out_fd_(out_fd), reader_(max_line_bytes),
      read_buffer_(64 * 1024) {}

StdioTransport::~StdioTransport() {
  flush_and_stop();
  // A reader thread may be blocked in read(2) on a stdin nobody closes; it holds no state of ours
  // that outlives the process, so let it go rather than hang the exit.
  if (reader_thread_.joinable()) reader_thread_.detach();
}

void StdioTransport::start(Handlers handlers) {
  handlers_ = std::move(handlers);
  // Terminals are character devices epoll accepts, but a shared tty in non-blocking mode would
  // surprise the shell afterwards: only pipes and sockets go async.
  if (is_pollable(in_fd_) && !::isatty(in_fd_)) in_ = try_async(loop_, in_fd_);
  if (is_pollable(out_fd_) && !::isatty(out_fd_)) out_ = try_async(loop_, out_fd_);
  if (!out_) writer_thread_ = std::thread([this] { write_thread(); });
  if (in_) read_async();
  else reader_thread_ = std::thread([this] { read_thread(); });
}

void StdioTransport::deliver(LineReader& reader) {
  for (;;) {
    LineReader::Event event = reader.next();
    if (event.kind == LineReader::Event::Kind::need_more) return;
    if (event.kind == LineReader::Event::Kind::line) handlers_.on_line(std::move(event.line));
    else handlers_.on_oversize(event.bytes);
  }
}

void StdioTransport::read_async() {
  in_->async_read_some(asio::buffer(read_buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
    if (ec) {
      if (auto last = reader_.flush_at_eof()) handlers_.on_line(std::move(*last));
      handlers_.on_eof();
      return;
    }
    reader_.feed(std::string_view(read_buffer_.data(), n));
    deliver(reader_);
    read_async();
  });
}

void StdioTransport::read_thread() {
  LineReader reader(max_line_bytes_);
  std::string chunk(64 * 1024, '\0');
  for (;;) {
    ssize_t n = ::read(in_fd_, chunk.data(), chunk.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    // One post per read, carrying every line in it: under load that is one wake-up per batch.
    std::vector<LineReader::Event> events;
    reader.feed(std::string_view(chunk.data(), static_cast<std::size_t>(n)));
    for (;;) {
      auto event = reader.next();
      if (event.kind == LineReader::Event::Kind::need_more) break;
      events.push_back(std::move(event));
    }
    if (events.empty()) continue;
    asio::post(loop_, [this, events = std::move(events)]() mutable {
      for (auto& event : events) {
        if (event.kind == LineReader::Event::Kind::line) handlers_.on_line(std::move(event.line));
        else handlers_.on_oversize(event.bytes);
      }
    });
  }
  std::optional<std::string> last = reader.flush_at_eof();
  asio::post(loop_, [this, last = std::move(last)]() mutable {
    if (last) handlers_.on_line(std::move(*last));
    handlers_.on_eof();
  });
}

void StdioTransport::send(const nlohmann::json& message) {
  if (!loop_.get_executor().running_in_this_thread()) {
    asio::post(loop_, [this, message] { send(message); });
    return;
  }
  std::string line = encode_line(message);
  if (out_) {
    if (broken_) return;
    pending_ += line;
    if (!writing_) write_async();
    return;
  }
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    was_empty = queue_.empty();
    queue_ += line;
  }
  if (was_empty) ready_.notify_one();  // the writer drains everything queued once woken
}

void StdioTransport::write_async() {
  if (pending_.empty() || broken_) {
    writing_ = false;
    return;
  }
  writing_ = true;
  // Everything queued while the last write was in flight goes out in one write.
  writing_buffer_.swap(pending_);
  pending_.clear();
  asio::async_write(*out_, asio::buffer(writing_buffer_), [this](const boost::system::error_code& ec, std::size_t) {
    writing_buffer_.clear();
    if (ec) {
      broken_ = true;  // client gone (EPIPE): nothing more can be said to it
      pending_.clear();
      writing_ = false;
      return;
    }
    write_async();
  });
}

void StdioTransport::write_thread() {
  bool broken = false;
  for (;;) {
    std::string out;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      out.swap(queue_);
    }
    std::size_t off = 0;
    while (!broken && off < out.size()) {
      ssize_t n = ::write(out_fd_, out.data() + off, out.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) broken = true;
      else off += static_cast<std::size_t>(n);
    }
  }
}

void StdioTransport::flush_and_stop() {
  if (out_) {
    // The loop has stopped. Let a write in flight finish on it (bounded: a client that stopped
    // reading gets 2 s), then send the rest with a blocking write.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    loop_.restart();
    while (writing_ && !broken_ && std::chrono::steady_clock::now() < until)
      loop_.run_one_for(std::chrono::milliseconds(50));
    if (writing_) broken_ = true;  // never resend part of a line
    boost::system::error_code ec;
    out_->non_blocking(false, ec);
    if (!broken_ && !pending_.empty()) asio::write(*out_, asio::buffer(pending_), ec);
    pending_.clear();
    broken_ = true;
    return;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  if (writer_thread_.joinable()) writer_thread_.join();
}

}  // namespace mcpd
