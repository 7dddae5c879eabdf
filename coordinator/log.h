// Structured logs: one JSON object per line on stderr (stdout carries protocol only), and an
// optional forwarder that turns records into MCP notifications/message. Thread-safe; any thread
// may log.
#pragma once

#include <functional>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

class Log {
 public:
  using Forwarder = std::function<void(const std::string& level, const json& record)>;

  static Log& instance();

  void set_level(const std::string& level);  // stderr threshold
  void set_forwarder(Forwarder forwarder);    // called for every record, any level, under no lock

  /// Writes {"ts":..., "level":..., "msg":..., <fields>} to stderr when at or above the threshold.
  void write(const std::string& level, const std::string& message, json fields = json::object());

 private:
  std::mutex mutex_;
  int threshold_ = 1;  // info
  Forwarder forwarder_;
};

inline void log_debug(const std::string& m, json f = json::object()) { Log::instance().write("debug", m, std::move(f)); }
inline void log_info(const std::string& m, json f = json::object()) { Log::instance().write("info", m, std::move(f)); }
inline void log_warning(const std::string& m, json f = json::object()) { Log::instance().write("warning", m, std::move(f)); }
inline void log_error(const std::string& m, json f = json::object()) { Log::instance().write("error", m, std::move(f)); }

}  // namespace mcpd
