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

/// Polls until `predicate` holds or `timeout` passes.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

inline bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// A TCP port on 127.0.0.1 that takes no connection and answers nothing: a listener with a full
/// accept queue (backlog 0, already filled), so the kernel drops further SYNs and connect() hangs
/// the way it does for a powered-off device behind a router.
class BlackholePort {
 public:
  BlackholePort() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 0) == 0);
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
    for (int i = 0; i < 3; ++i) {  // fill the queue
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      (void)::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
      fillers_.push_back(fd);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ~BlackholePort() {
    for (int fd : fillers_) ::close(fd);
    ::close(listener_);
  }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
  std::vector<int> fillers_;
};

/// A TCP port on 127.0.0.1 that accepts connections (the kernel completes them) but never reads
/// nor answers: a device whose Modbus server hangs, so every request waits out its timeout.
class SilentPort {
 public:
  SilentPort() {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    REQUIRE(::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener_, 64) == 0);
    REQUIRE(::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    port_ = ntohs(addr.sin_port);
  }
  ~SilentPort() { ::close(listener_); }
  int port() const { return port_; }

 private:
  int listener_ = -1;
  int port_ = 0;
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
