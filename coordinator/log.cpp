#include "log.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>

#include "config.h"

namespace mcpd {

Log& Log::instance() {
  // Never destroyed: the writer thread may still run while static destructors do at exit.
  static Log* log = new Log;
  return *log;
}

void Log::set_level(const std::string& level) {
  std::lock_guard lock(mutex_);
  int rank = log_level_rank(level);
  if (rank >= 0) threshold_.store(rank, std::memory_order_relaxed);
}

void Log::set_max_queue_bytes(std::size_t bytes) {
  std::lock_guard lock(mutex_);
  max_queue_bytes_ = bytes;
}

void Log::set_forwarder(Forwarder forwarder) {
  std::lock_guard lock(mutex_);
  forwarder_ = std::move(forwarder);
}

namespace {
std::string utc_timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}
}  // namespace

void Log::write(const std::string& level, const std::string& message, json fields) {
  const int rank = log_level_rank(level);
  if (!wants(rank)) return;  // neither stderr nor the client takes it: no timestamp, no lock
  json record = json::object();
  record["ts"] = utc_timestamp();
  record["level"] = level;
  record["msg"] = message;
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it) record[it.key()] = it.value();
  Forwarder forwarder;
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (rank >= threshold_.load(std::memory_order_relaxed)) {
      std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      if (stderr_gone_ || queued_bytes_ + line.size() > max_queue_bytes_) {
        ++dropped_;
        ++dropped_unreported_;
      } else {
        queued_bytes_ += line.size();
        queue_.push_back(std::move(line));
        wake = true;
        if (!writer_started_) {
          writer_started_ = true;
          std::thread([this] { writer_loop(); }).detach();
        }
      }
    }
    if (rank >= forward_rank_.load(std::memory_order_relaxed)) forwarder = forwarder_;
  }
  if (wake) ready_.notify_one();
  if (forwarder) forwarder(level, record);
}

bool Log::write_all(const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(STDERR_FILENO, data.data() + off, data.size() - off);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // Someone made the shared stderr non-blocking: wait for room on this thread, nobody else's.
      pollfd pfd{STDERR_FILENO, POLLOUT, 0};
      ::poll(&pfd, 1, -1);
    } else {
      return false;
    }
  }
  return true;
}

void Log::writer_loop() {
  for (;;) {
    std::deque<std::string> lines;
    std::uint64_t dropped = 0;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [this] { return !queue_.empty(); });
      lines.swap(queue_);
      dropped = std::exchange(dropped_unreported_, 0);
      writing_ = true;
    }
    // One write per batch: lines from threads never interleave, and a burst costs one syscall.
    std::string batch;
    if (dropped > 0) {
      json note = {{"ts", utc_timestamp()}, {"level", "warning"},
                   {"msg", "log lines dropped: stderr was not read fast enough (max_log_queue_bytes)"},
                   {"dropped", dropped}};
      batch += note.dump() + "\n";
    }
    std::size_t bytes = 0;
    for (const auto& line : lines) {
      batch += line;
      bytes += line.size();
    }
    bool ok = write_all(batch);
    {
      std::lock_guard lock(mutex_);
      queued_bytes_ -= bytes;
      writing_ = false;
      if (ok) {
        written_ += lines.size();
      } else {
        stderr_gone_ = true;
        dropped_ += lines.size() + queue_.size();
        for (const auto& line : queue_) queued_bytes_ -= line.size();
        queue_.clear();
      }
    }
    drained_.notify_all();
  }
}

bool Log::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return drained_.wait_for(lock, timeout, [this] { return (queue_.empty() && !writing_) || stderr_gone_; });
}

json Log::stats() {
  std::lock_guard lock(mutex_);
  return {{"queued_bytes", queued_bytes_}, {"max_queue_bytes", max_queue_bytes_}, {"written", written_},
          {"dropped", dropped_}, {"stderr_closed", stderr_gone_}};
}

}  // namespace mcpd
