#include "log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>

#include "config.h"

namespace mcpd {

Log& Log::instance() {
  static Log log;
  return log;
}

void Log::set_level(const std::string& level) {
  std::lock_guard lock(mutex_);
  int rank = log_level_rank(level);
  if (rank >= 0) threshold_ = rank;
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
  json record = json::object();
  record["ts"] = utc_timestamp();
  record["level"] = level;
  record["msg"] = message;
  if (fields.is_object())
    for (auto it = fields.begin(); it != fields.end(); ++it) record[it.key()] = it.value();
  Forwarder forwarder;
  {
    std::lock_guard lock(mutex_);
    if (log_level_rank(level) >= threshold_) {
      std::string line = record.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
      // One write per record so lines from threads never interleave; stderr is unbuffered.
      ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
      (void)ignored;
    }
    forwarder = forwarder_;
  }
  if (forwarder) forwarder(level, record);
}

}  // namespace mcpd
