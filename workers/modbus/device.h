// A Modbus TCP device as the poller and the tools see it: one connection per host:port,
// reused by every call and every group that names it, and reconnected with backoff after a failure.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec.h"
#include "mbap.h"
#include "settings.h"
#include "tool.h"

namespace mcpd::modbus {

/// A request that failed, with a message a user can act on. `device_exception` is true when the
/// device answered with a Modbus exception (the connection is fine); otherwise the connection
/// was dropped and the next request reconnects.
class DeviceError : public std::runtime_error {
 public:
  DeviceError(const std::string& message, bool device_exception)
      : std::runtime_error(message), device_exception(device_exception) {}
  bool device_exception;
};

/// One connection to host:port, spoken to in Modbus TCP by this class itself (see device.cpp for
/// why not through libmodbus). A lock serialises requests, so groups and calls on the same device
/// take turns on one socket (a Modbus TCP server may serve only a few connections); devices never
/// wait for each other. Every wait has a total deadline: connect_timeout_ms for the name lookup
/// and the connect together, response_timeout_ms for sending a request and receiving its whole
/// answer, however slowly the bytes come. After a connection failure, requests that respect the
/// backoff fail fast until the next attempt is due; the wait doubles per failure up to the
/// configured maximum and resets on success. The connection state has a lock of its own, so
/// health() answers at once even while a request waits; interrupt() ends such a wait early, and
/// a request given a CancelToken ends (ToolCancelled) soon after it is cancelled.
class Device {
 public:
  Device(std::string host, int port, const Settings& settings);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  /// Reads `count` registers (holding or input table) or bits (coils or discrete: one byte per
  /// bit, 0 or 1). Throws DeviceError, or ToolCancelled once `cancel` is cancelled. A read on a
  /// connection the device closed while it was idle reconnects and is sent once more.
  std::vector<std::uint16_t> read_registers(int unit, Table table, int address, int count, bool respect_backoff,
                                            const CancelToken* cancel = nullptr);
  std::vector<std::uint8_t> read_bits(int unit, Table table, int address, int count, bool respect_backoff,
                                      const CancelToken* cancel = nullptr);
  /// Writes are sent once: only a write that provably never left (the connection was found
  /// closed before sending) goes out on a new connection.
  void write_registers(int unit, int address, const std::vector<std::uint16_t>& values,
                       const CancelToken* cancel = nullptr);
  void write_bits(int unit, int address, const std::vector<std::uint8_t>& values, const CancelToken* cancel = nullptr);

  /// "host:port".
  std::string name() const;
  /// Connection state for status: connected, failures in a row, last error, next attempt.
  nlohmann::json health() const;

  /// Ends the connect or request under way (it fails with "interrupted") and fails every later
  /// one fast, until resume(). The poller's shutdown uses it when a cycle outlasts its grace.
  void interrupt();
  void resume();

  struct Lookup;  // a name lookup, on a thread of its own (device.cpp)

 private:
  Response transact(int unit, const Bytes& request, bool is_read, bool respect_backoff, const std::string& what,
                    const CancelToken* cancel);
  void connect_locked(const CancelToken* cancel);
  void fail_locked(const std::string& message);
  void close_socket_locked();

  const std::string host_;
  const int port_;
  const Settings settings_;
  std::timed_mutex mutex_;  // one request at a time; held through connects and responses
  int fd_ = -1;             // the connection, under mutex_
  std::uint16_t transaction_ = 0;
  std::shared_ptr<Lookup> lookup_;  // the last name lookup, which may still run after its deadline
  std::atomic<bool> interrupted_{false};

  mutable std::mutex state_mutex_;  // what follows; never held while waiting for the network
  int socket_fd_ = -1;
  bool connected_ = false;
  int failures_in_a_row_ = 0;
  std::chrono::milliseconds backoff_{0};
  std::chrono::steady_clock::time_point next_attempt_{};
  std::string last_error_;
};

/// Every device this process talks to, by host:port, created on first use and kept.
class DeviceSet {
 public:
  explicit DeviceSet(Settings settings) : settings_(std::move(settings)) {}
  std::shared_ptr<Device> get(const std::string& host, int port);
  nlohmann::json health() const;
  void interrupt();
  void resume();

 private:
  const Settings settings_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<Device>> devices_;
};

}  // namespace mcpd::modbus
