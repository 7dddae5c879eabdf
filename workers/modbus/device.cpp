#include "device.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <modbus/modbus.h>

namespace mcpd::modbus {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

void set_timeout(modbus_t* ctx, int ms) {
  modbus_set_response_timeout(ctx, static_cast<std::uint32_t>(ms / 1000), static_cast<std::uint32_t>(ms % 1000) * 1000);
}

std::string exception_name(int code) {
  switch (code) {
    case 1: return "illegal function";
    case 2: return "illegal data address";
    case 3: return "illegal data value";
    case 4: return "server device failure";
    case 5: return "acknowledge";
    case 6: return "server device busy";
    case 8: return "memory parity error";
    case 10: return "gateway path unavailable";
    case 11: return "gateway target device failed to respond";
    default: return "exception";
  }
}

std::string table_noun(Table table, int count) {
  switch (table) {
    case Table::holding: return count == 1 ? "holding register" : "holding registers";
    case Table::input: return count == 1 ? "input register" : "input registers";
    case Table::coils: return count == 1 ? "coil" : "coils";
    case Table::discrete: return count == 1 ? "discrete input" : "discrete inputs";
  }
  return "?";
}

}  // namespace

Device::Device(std::string host, int port, const Settings& settings)
    : host_(std::move(host)), port_(port), settings_(settings), cancel_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

Device::~Device() {
  if (ctx_) {
    modbus_close(ctx_);
    modbus_free(ctx_);
  }
  if (cancel_fd_ >= 0) ::close(cancel_fd_);
}

std::string Device::name() const { return host_ + ":" + std::to_string(port_); }

nlohmann::json Device::health() const {
  std::lock_guard lock(state_mutex_);
  nlohmann::json h = {{"device", name()}, {"connected", connected_}, {"failures_in_a_row", failures_in_a_row_}};
  if (!last_error_.empty()) h["last_error"] = last_error_;
  if (!connected_ && failures_in_a_row_ > 0) {
    auto wait = std::chrono::duration_cast<milliseconds>(next_attempt_ - Clock::now()).count();
    h["next_attempt_in_ms"] = std::max<long long>(0, wait);
  }
  return h;
}

void Device::interrupt() {
  interrupted_ = true;
  if (cancel_fd_ >= 0) {
    std::uint64_t one = 1;
    ssize_t ignored = ::write(cancel_fd_, &one, sizeof one);
    (void)ignored;
  }
  // A request waiting for its response wakes up to a closed stream.
  std::lock_guard lock(state_mutex_);
  if (socket_fd_ >= 0) ::shutdown(socket_fd_, SHUT_RDWR);
}

void Device::resume() {
  std::lock_guard request(mutex_);  // after the interrupted request has given up
  if (cancel_fd_ >= 0) {
    std::uint64_t count = 0;
    ssize_t ignored = ::read(cancel_fd_, &count, sizeof count);
    (void)ignored;
  }
  interrupted_ = false;
}

void Device::close_socket_locked() {
  {
    std::lock_guard lock(state_mutex_);
    socket_fd_ = -1;  // interrupt() must not shut down a number the kernel hands out again
  }
  if (ctx_) modbus_close(ctx_);
}

void Device::fail_locked(const std::string& message) {
  close_socket_locked();
  std::lock_guard lock(state_mutex_);
  connected_ = false;
  ++failures_in_a_row_;
  backoff_ = failures_in_a_row_ == 1 ? milliseconds(settings_.reconnect_backoff_initial_ms)
                                     : std::min(backoff_ * 2, milliseconds(settings_.reconnect_backoff_max_ms));
  next_attempt_ = Clock::now() + backoff_;
  last_error_ = message;
}

namespace {

/// A connected blocking socket to one of `addresses`, within `timeout_ms` in all; -1 with `error`
/// set (an errno value, or ECANCELED when `cancel_fd` became readable). Our own connect rather
/// than libmodbus's, so that interrupt() can end a long wait for a host that does not answer.
int connect_socket(const addrinfo* addresses, int timeout_ms, int cancel_fd, int& error) {
  auto deadline = Clock::now() + milliseconds(timeout_ms);
  error = ECONNREFUSED;
  for (const addrinfo* a = addresses; a; a = a->ai_next) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      for (;;) {
        auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
          ::close(fd);
          error = ETIMEDOUT;
          return -1;
        }
        pollfd fds[2] = {{fd, POLLOUT, 0}, {cancel_fd, POLLIN, 0}};
        int n = ::poll(fds, cancel_fd >= 0 ? 2 : 1, static_cast<int>(left));
        if (n < 0 && errno == EINTR) continue;
        if (n > 0 && cancel_fd >= 0 && (fds[1].revents & POLLIN)) {
          ::close(fd);
          error = ECANCELED;
          return -1;
        }
        if (n > 0) break;
      }
      int so_error = 0;
      socklen_t len = sizeof so_error;
      ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len);
      rc = so_error == 0 ? 0 : -1;
      errno = so_error;
    }
    if (rc != 0) {
      error = errno;
      ::close(fd);
      continue;
    }
    int flags = ::fcntl(fd, F_GETFL);
    ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  return -1;
}

}  // namespace

void Device::connect_locked() {
  if (interrupted_) throw DeviceError(name() + ": interrupted, the poller is stopping", false);
  // Resolve first: libmodbus reports a name that does not resolve as "Connection refused".
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  int rc = ::getaddrinfo(host_.c_str(), std::to_string(port_).c_str(), &hints, &found);
  if (rc != 0) {
    std::string message = "cannot resolve host '" + host_ + "': " + ::gai_strerror(rc);
    fail_locked(message);
    throw DeviceError(message, false);
  }
  if (!ctx_) {
    ctx_ = modbus_new_tcp_pi(host_.c_str(), std::to_string(port_).c_str());
    if (!ctx_) {
      ::freeaddrinfo(found);
      throw DeviceError(std::string("cannot create a Modbus context: ") + std::strerror(errno), false);
    }
  }
  int error = 0;
  int fd = connect_socket(found, settings_.connect_timeout_ms, cancel_fd_, error);
  ::freeaddrinfo(found);
  if (fd < 0) {
    std::string message =
        "cannot connect to " + name() + ": " +
        (error == ETIMEDOUT   ? "no answer within " + std::to_string(settings_.connect_timeout_ms) + " ms"
         : error == ECANCELED ? std::string("interrupted, the poller is stopping")
                              : std::string(std::strerror(error)));
    fail_locked(message);
    throw DeviceError(message, false);
  }
  modbus_set_socket(ctx_, fd);
  set_timeout(ctx_, settings_.response_timeout_ms);
  std::lock_guard lock(state_mutex_);
  socket_fd_ = fd;
  connected_ = true;
  if (interrupted_) ::shutdown(fd, SHUT_RDWR);  // interrupt() came between the connect and here
}

template <class Request>
void Device::run(int unit, bool respect_backoff, const std::string& what, Request request) {
  std::lock_guard request_lock(mutex_);
  bool connected;
  {
    std::lock_guard lock(state_mutex_);
    connected = connected_;
    if (!connected && respect_backoff && failures_in_a_row_ > 0 && Clock::now() < next_attempt_) {
      auto wait = std::chrono::duration_cast<milliseconds>(next_attempt_ - Clock::now()).count();
      throw DeviceError(name() + " is unreachable (" + last_error_ + "); next connection attempt in " +
                            std::to_string(wait) + " ms",
                        false);
    }
  }
  if (!connected) connect_locked();
  modbus_set_slave(ctx_, unit);
  if (request(ctx_) >= 0) {
    std::lock_guard lock(state_mutex_);
    failures_in_a_row_ = 0;
    last_error_.clear();
    return;
  }
  int error = errno;
  if (error >= EMBXILFUN && error <= EMBXGTAR) {
    int code = error - MODBUS_ENOBASE;
    std::string message = exception_name(code) + ": " + what + " (Modbus exception " + std::to_string(code) + ")";
    throw DeviceError(message, true);
  }
  std::string message;
  if (interrupted_)
    message = name() + " unit " + std::to_string(unit) + ": interrupted, the poller is stopping";
  else if (error == ETIMEDOUT)
    message = "no answer from " + name() + " unit " + std::to_string(unit) + " within " +
              std::to_string(settings_.response_timeout_ms) + " ms";
  else
    message = name() + " unit " + std::to_string(unit) + ": " + modbus_strerror(error);
  // The stream may be out of step after a timeout or a bad frame: start over on a fresh connection.
  fail_locked(message);
  throw DeviceError(message + "; reconnecting", false);
}

namespace {

std::string range_text(Table table, int address, int count) {
  std::string noun = table_noun(table, count);
  if (count == 1) return "the device has no " + noun + " " + std::to_string(address);
  return "the device has no " + noun + " " + std::to_string(address) + ".." + std::to_string(address + count - 1) +
         " (or not all of them)";
}

}  // namespace

std::vector<std::uint16_t> Device::read_registers(int unit, Table table, int address, int count, bool respect_backoff) {
  std::vector<std::uint16_t> out(static_cast<std::size_t>(count));
  run(unit, respect_backoff, range_text(table, address, count), [&](modbus_t* ctx) {
    return table == Table::input ? modbus_read_input_registers(ctx, address, count, out.data())
                                 : modbus_read_registers(ctx, address, count, out.data());
  });
  return out;
}

std::vector<std::uint8_t> Device::read_bits(int unit, Table table, int address, int count, bool respect_backoff) {
  std::vector<std::uint8_t> out(static_cast<std::size_t>(count));
  run(unit, respect_backoff, range_text(table, address, count), [&](modbus_t* ctx) {
    return table == Table::discrete ? modbus_read_input_bits(ctx, address, count, out.data())
                                    : modbus_read_bits(ctx, address, count, out.data());
  });
  return out;
}

void Device::write_registers(int unit, int address, const std::vector<std::uint16_t>& values) {
  int count = static_cast<int>(values.size());
  run(unit, false, range_text(Table::holding, address, count), [&](modbus_t* ctx) {
    return count == 1 ? modbus_write_register(ctx, address, values[0])
                      : modbus_write_registers(ctx, address, count, values.data());
  });
}

void Device::write_bits(int unit, int address, const std::vector<std::uint8_t>& values) {
  int count = static_cast<int>(values.size());
  run(unit, false, range_text(Table::coils, address, count), [&](modbus_t* ctx) {
    return count == 1 ? modbus_write_bit(ctx, address, values[0]) : modbus_write_bits(ctx, address, count, values.data());
  });
}

std::shared_ptr<Device> DeviceSet::get(const std::string& host, int port) {
  std::lock_guard lock(mutex_);
  std::string key = host + ":" + std::to_string(port);
  auto& device = devices_[key];
  if (!device) device = std::make_shared<Device>(host, port, settings_);
  return device;
}

void DeviceSet::interrupt() {
  std::lock_guard lock(mutex_);
  for (auto& [key, device] : devices_) device->interrupt();
}

void DeviceSet::resume() {
  std::lock_guard lock(mutex_);
  for (auto& [key, device] : devices_) device->resume();
}

nlohmann::json DeviceSet::health() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, device] : devices_) out.push_back(device->health());
  return out;
}

}  // namespace mcpd::modbus
