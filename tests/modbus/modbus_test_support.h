// Helpers of the Modbus tests: a poller with its tools over a temporary database, and calls by
// tool name the way a runner makes them (schema checks are the coordinator's job, not done here).
#pragma once

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sqlite3.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <thread>

#include "modbus_server.h"
#include "eventually.h"
#include "modbus_tools.h"
#include "poller.h"
#include "temp_dir.h"

namespace mcpd::test {

/// The Modbus tools over one poller whose database lives in `dir`.
struct ModbusKit {
  std::shared_ptr<modbus::Poller> poller;
  std::map<std::string, Tool> tools;

  explicit ModbusKit(const std::filesystem::path& db, json settings = json::object()) {
    settings["db_path"] = db.string();
    if (!settings.contains("response_timeout_ms")) settings["response_timeout_ms"] = 500;
    if (!settings.contains("connect_timeout_ms")) settings["connect_timeout_ms"] = 500;
    if (!settings.contains("reconnect_backoff_max_ms")) settings["reconnect_backoff_max_ms"] = 400;
    // The test devices live on loopback; nothing is allowed unless listed.
    if (!settings.contains("allowed_hosts")) settings["allowed_hosts"] = {"127.0.0.1"};
    poller = make_modbus_poller(settings);
    for (auto& tool : modbus_tools(poller)) tools[tool.name] = tool;
  }

  /// The tool's structured result; a ToolError propagates.
  json call(const std::string& name, const json& arguments, bool allow_writes = false) {
    ToolContext context;
    context.allow_writes = allow_writes;
    REQUIRE(tools.count(name));
    return tools.at(name).handler(arguments, context).structured;
  }

  /// The ToolError message of a call that must fail ("" when it did not).
  std::string error(const std::string& name, const json& arguments, bool allow_writes = false) {
    try {
      call(name, arguments, allow_writes);
    } catch (const ToolError& e) {
      return e.what();
    }
    return "";
  }
};

/// A FIXED group on 127.0.0.1:`port` every 100 ms with one tag of each table and decoding that
/// tests/support/modbus_server.py documents (7 tags); `more` replaces any field.
inline json fixed_group(const std::string& name, int port, const json& more = json::object()) {
  json g = {{"name", name},
            {"host", "127.0.0.1"},
            {"port", port},
            {"tags",
             {{{"name", "count"}, {"address", 0}, {"type", "int16"}},
              {{"name", "minus"}, {"address", 1}, {"type", "int16"}},
              {{"name", "temp"}, {"address", 10}, {"type", "float32"}},
              {{"name", "total"}, {"address", 20}, {"type", "int32"}, {"scale", 0.01}},
              {{"name", "level"}, {"address", 0}, {"table", "input"}},
              {{"name", "pump"}, {"address", 0}, {"table", "coils"}},
              {{"name", "door"}, {"address", 1}, {"table", "discrete"}}}},
            {"mode", "FIXED"},
            {"interval_ms", 100}};
  for (auto it = more.begin(); it != more.end(); ++it) g[it.key()] = it.value();
  return g;
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A listening TCP socket on 127.0.0.1 and a free port that never accepts, never reads, never
/// answers: what a hung device looks like from outside.
class LoopbackListener {
 public:
  explicit LoopbackListener(int backlog) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    addr_.sin_family = AF_INET;
    addr_.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr_;
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_) == 0);
    REQUIRE(::listen(listener_, backlog) == 0);
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr_), &len) == 0);
  }
  ~LoopbackListener() { ::close(listener_); }
  LoopbackListener(const LoopbackListener&) = delete;
  LoopbackListener& operator=(const LoopbackListener&) = delete;
  int port() const { return ntohs(addr_.sin_port); }

 protected:
  int listener_ = -1;
  sockaddr_in addr_{};
};

/// A port that takes no connection: its accept queue (backlog 0) is already full, so the kernel
/// drops further SYNs and connect() hangs the way it does for a powered-off device behind a router.
class BlackholePort : public LoopbackListener {
 public:
  BlackholePort() : LoopbackListener(0) {
    for (int i = 0; i < 3; ++i) {  // fill the queue
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr_), sizeof addr_);
      fillers_.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~BlackholePort() {
    for (int fd : fillers_) ::close(fd);
  }

 private:
  std::vector<int> fillers_;
};

/// A port that accepts connections (the kernel completes them) but never reads nor answers: a
/// device whose Modbus server hangs, so every request waits out its timeout.
class SilentPort : public LoopbackListener {
 public:
  SilentPort() : LoopbackListener(64) {}
};

/// Another connection holding the SQLite write lock of `path` (as a backup job or an sqlite3 shell
/// in a transaction would): the poller's writer cannot write until release().
class SqliteWriteLock {
 public:
  explicit SqliteWriteLock(const std::filesystem::path& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db_, 5000);
    REQUIRE(sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  ~SqliteWriteLock() { release(); }
  void release() {
    if (!db_) return;
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace mcpd::test
