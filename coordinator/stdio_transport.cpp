#include "stdio_transport.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include "log.h"

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

/// A backlog larger than this is given back to the system once it has drained; smaller ones are
/// kept, since the next burst would only grow them again.
constexpr std::size_t kReleaseAfterBytes = 1u << 20;

bool is_pollable(int fd) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  return S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) || S_ISCHR(st.st_mode);
}

}  // namespace

StdioTransport::StdioTransport(asio::io_context& loop, std::size_t max_line_bytes, std::size_t max_output_queue_bytes,
                               int in_fd, int out_fd)
    : loop_(loop),
      max_line_bytes_(max_line_bytes),
      max_output_queue_bytes_(max_output_queue_bytes),
      in_fd_(in_fd),
      out_fd_(out_fd),
      reader_(max_line_bytes),
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

void StdioTransport::deliver() {
  // Lines already read wait in the reader while the output is congested: each of them may add a
  // response to the queue, so they are handed over only while there is room.
  while (!congested() && !broken_) {
    LineReader::Event event = reader_.next();
    if (event.kind == LineReader::Event::Kind::need_more) return;
    if (event.kind == LineReader::Event::Kind::line) handlers_.on_line(std::move(event.line));
    else handlers_.on_oversize(event.bytes);
  }
  if (!paused_ && !broken_) {
    paused_ = true;
    ++input_pauses_;
    log_debug("output queue over max_output_queue_bytes; pausing input",
              {{"queued_bytes", queued_bytes()}, {"max_output_queue_bytes", max_output_queue_bytes_}});
  }
}

void StdioTransport::read_async() {
  if (read_armed_ || eof_ || paused_ || broken_) return;
  read_armed_ = true;
  in_->async_read_some(asio::buffer(read_buffer_), [this](const boost::system::error_code& ec, std::size_t n) {
    read_armed_ = false;
    if (ec) {
      eof_ = true;
      if (auto last = reader_.flush_at_eof()) handlers_.on_line(std::move(*last));
      handlers_.on_eof();
      return;
    }
    reader_.feed(std::string_view(read_buffer_.data(), n));
    deliver();
    read_async();
  });
}

void StdioTransport::read_thread() {
  LineReader reader(max_line_bytes_);
  std::string chunk(64 * 1024, '\0');
  for (;;) {
    {
      // Backpressure for a stdin that is a file: read on only once the client has taken our output.
      std::unique_lock lock(mutex_);
      if (congested() && !stopping_) ++input_pauses_;
      drained_.wait(lock, [this] { return !congested() || stopping_ || thread_broken_; });
      if (stopping_ || thread_broken_) return;
    }
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
  enqueue(encode_line(message));
}

void StdioTransport::send_text(std::string text) {
  text += '\n';
  enqueue(std::move(text));
}

bool StdioTransport::send_droppable(const nlohmann::json& message) {
  if (congested() || broken_) {
    ++dropped_notifications_;
    return false;
  }
  enqueue(encode_line(message));
  return true;
}

void StdioTransport::enqueue(std::string line) {
  if (out_) {
    if (broken_) return;
    queued_bytes_ += line.size();
    peak_since_release_ = std::max(peak_since_release_, queued_bytes());
    pending_ += line;
    if (!writing_) write_async();
    return;
  }
  bool was_empty;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || thread_broken_) return;
    was_empty = queue_.empty();
    queue_ += line;
    queued_bytes_ += line.size();
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
    queued_bytes_ -= writing_buffer_.size();
    writing_buffer_.clear();
    if (ec) {
      broken_ = true;  // client gone (EPIPE): nothing more can be said to it
      queued_bytes_ = 0;
      pending_.clear();
      writing_ = false;
      output_failed(ec.message());
      return;
    }
    write_async();
    after_drain();
  });
}

void StdioTransport::after_drain() {
  if (queued_bytes() == 0 && peak_since_release_ > kReleaseAfterBytes) {
    // A backlog grew the buffers (and the heap) to its size: give it back, or a client that once
    // stalled would leave mcpd that large for good.
    if (out_ && !writing_) {
      std::string().swap(pending_);
      std::string().swap(writing_buffer_);
    }
    peak_since_release_ = 0;
    ::malloc_trim(0);
  }
  if (queued_bytes() > max_output_queue_bytes_ / 2) return;
  {
    std::lock_guard lock(mutex_);  // so a reader thread cannot miss the wake-up
  }
  drained_.notify_all();
  if (paused_ && !broken_) {
    paused_ = false;
    log_debug("output queue drained; resuming input", {{"queued_bytes", queued_bytes()}});
    deliver();
    if (in_) read_async();
  }
}

void StdioTransport::output_failed(const std::string& error) {
  if (output_closed_reported_) return;
  output_closed_reported_ = true;
  broken_ = true;
  paused_ = true;  // nothing read now could be answered
  log_warning("stdout closed or failing; ending the session", {{"error", error}});
  if (handlers_.on_output_closed) handlers_.on_output_closed(error);
}

void StdioTransport::write_thread() {
  for (;;) {
    std::string out;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty() && stopping_) return;
      out.swap(queue_);
    }
    std::size_t off = 0;
    int error = 0;
    while (off < out.size()) {
      ssize_t n = ::write(out_fd_, out.data() + off, out.size() - off);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        error = n < 0 ? errno : EPIPE;
        break;
      }
      off += static_cast<std::size_t>(n);
    }
    if (error != 0) {
      {
        std::lock_guard lock(mutex_);
        thread_broken_ = true;
        queue_.clear();
        queued_bytes_ = 0;
      }
      drained_.notify_all();
      std::string message = std::strerror(error);
      asio::post(loop_, [this, message] { output_failed(message); });
      return;
    }
    std::size_t peak = out.size();
    queued_bytes_ -= out.size();
    std::string().swap(out);
    if (peak > kReleaseAfterBytes && queued_bytes() == 0) ::malloc_trim(0);
    {
      std::lock_guard lock(mutex_);
    }
    drained_.notify_all();
    // An async stdin paused by this backlog resumes on the loop.
    asio::post(loop_, [this] {
      if (paused_ && !broken_ && !congested()) after_drain();
    });
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
    output_closed_reported_ = true;  // stopping: a failure now is no news to anyone
    return;
  }
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_one();
  drained_.notify_all();
  if (writer_thread_.joinable()) writer_thread_.join();
}

}  // namespace mcpd
