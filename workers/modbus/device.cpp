// The Modbus TCP client. It speaks MBAP on its own socket instead of through libmodbus, because
// libmodbus cannot bound a request in time: its response timeout covers only the wait for the
// first byte and its byte timeout each later byte, so a device that sends one byte every 200 ms
// holds a request for ever; it cannot watch a second descriptor (to interrupt a wait) and uses
// select(), which breaks on descriptors past 1023; and it does not check a response's MBAP
// length. Here every wait is poll() against one deadline for the whole exchange, and every field
// of a response is checked (mbap.h) before anything in it is believed.
#include "device.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <system_error>
#include <thread>

#include "allow_list.h"

namespace mcpd::modbus {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

/// How often a wait looks at its cancel token and the interrupt flag: the latency of a cancel.
constexpr milliseconds kWaitSlice{20};

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

enum class Wait { ready, timeout, cancelled, interrupted };

/// Waits until `fd` has `events`, the deadline passes, `cancel` is cancelled or `interrupted` is
/// set, looking at the last two every kWaitSlice.
Wait wait_for(int fd, short events, Clock::time_point deadline, const CancelToken* cancel,
              const std::atomic<bool>& interrupted) {
  for (;;) {
    if (interrupted) return Wait::interrupted;
    if (cancel && cancel->cancelled()) return Wait::cancelled;
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count() + 1;
    if (Clock::now() >= deadline) return Wait::timeout;
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left, kWaitSlice.count())));
    if (n < 0 && errno != EINTR) return Wait::ready;  // the next send or recv reports the error
    if (n > 0) return Wait::ready;
  }
}

}  // namespace

/// A getaddrinfo() on a thread of its own, because getaddrinfo cannot be given a deadline (the
/// resolver's own timeouts and retries add up to tens of seconds). A caller waits for it until
/// its connect deadline and then leaves it running; the device keeps the last one and waits for
/// it again next time instead of starting another, so a name server that hangs costs one thread
/// per device, not one per request.
struct Device::Lookup {
  std::mutex mutex;
  std::condition_variable done_cv;
  bool done = false;
  int rc = 0;
  addrinfo* result = nullptr;
  ~Lookup() {
    if (result) ::freeaddrinfo(result);
  }
};

Device::Device(std::string host, int port, const Settings& settings)
    : host_(std::move(host)), port_(port), settings_(settings) {}

Device::~Device() { close_socket_locked(); }

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
  // A request waiting for its response wakes up to a closed stream at once.
  std::lock_guard lock(state_mutex_);
  if (socket_fd_ >= 0) ::shutdown(socket_fd_, SHUT_RDWR);
}

void Device::resume() {
  std::lock_guard request(mutex_);  // after the interrupted request has given up
  interrupted_ = false;
}

void Device::close_socket_locked() {
  {
    std::lock_guard lock(state_mutex_);
    socket_fd_ = -1;  // interrupt() must not shut down a number the kernel hands out again
    connected_ = false;
  }
  if (fd_ < 0) return;
  // An abortive close (a reset, no FIN): an orderly one after the device closed first leaves its
  // port in TIME_WAIT for a minute, and a server that does not set SO_REUSEADDR (pymodbus does
  // not) then cannot listen there again when it restarts. Modbus TCP has no closing handshake to
  // lose.
  linger abort{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
  ::close(fd_);
  fd_ = -1;
}

void Device::fail_locked(const std::string& message) {
  close_socket_locked();
  std::lock_guard lock(state_mutex_);
  ++failures_in_a_row_;
  backoff_ = failures_in_a_row_ == 1 ? milliseconds(settings_.reconnect_backoff_initial_ms)
                                     : std::min(backoff_ * 2, milliseconds(settings_.reconnect_backoff_max_ms));
  next_attempt_ = Clock::now() + backoff_;
  last_error_ = message;
}

namespace {

/// A connected non-blocking socket to one of `addresses`, all attempts within `deadline`; -1 with
/// `error` set (an errno value, ECANCELED when cancelled, EINTR when interrupted).
int connect_socket(const std::vector<const addrinfo*>& addresses, Clock::time_point deadline,
                   const CancelToken* cancel, const std::atomic<bool>& interrupted, int& error) {
  error = ECONNREFUSED;
  for (const addrinfo* a : addresses) {
    int fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
      error = errno;
      continue;
    }
    int rc = ::connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno == EINPROGRESS) {
      Wait w = wait_for(fd, POLLOUT, deadline, cancel, interrupted);
      if (w != Wait::ready) {
        ::close(fd);
        error = w == Wait::timeout ? ETIMEDOUT : w == Wait::cancelled ? ECANCELED : EINTR;
        return -1;
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
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
  }
  return -1;
}

/// Whether the idle connection `fd` is no longer usable: the device closed it (a FIN or a reset
/// is waiting) or sent bytes nobody asked for, which would be read as the next answer.
bool idle_connection_gone(int fd) {
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return false;
  return true;
}

}  // namespace

void Device::connect_locked(const CancelToken* cancel) {
  auto interrupted_error = [&] { return DeviceError(name() + ": interrupted, the poller is stopping", false); };
  if (interrupted_) throw interrupted_error();
  const auto deadline = Clock::now() + milliseconds(settings_.connect_timeout_ms);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  const std::string service = std::to_string(port_);

  // A numeric address needs no name service: no thread, no wait.
  std::shared_ptr<Lookup> lookup = std::make_shared<Lookup>();
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  int numeric = ::getaddrinfo(host_.c_str(), service.c_str(), &hints, &lookup->result);
  if (numeric == 0) {
    lookup->done = true;
  } else {
    lookup->result = nullptr;
    if (lookup_) {
      std::lock_guard l(lookup_->mutex);
      if (!lookup_->done || lookup_->rc == 0) lookup = lookup_;  // still running, or a fresh answer to reuse once
    }
    if (lookup != lookup_) {
      lookup_ = lookup;
      hints.ai_flags = AI_NUMERICSERV;
      try {
        std::thread([lookup, host = host_, service, hints] {
          addrinfo* found = nullptr;
          int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
          std::lock_guard l(lookup->mutex);
          lookup->rc = rc;
          lookup->result = found;
          lookup->done = true;
          lookup->done_cv.notify_all();
        }).detach();
      } catch (const std::system_error& e) {
        lookup_.reset();
        throw DeviceError("cannot resolve host '" + host_ + "': cannot start a lookup: " + e.what(), false);
      }
    }
    std::unique_lock l(lookup->mutex);
    while (!lookup->done) {
      if (interrupted_) throw interrupted_error();
      if (cancel && cancel->cancelled()) throw ToolCancelled();
      if (Clock::now() >= deadline) {
        l.unlock();
        std::string message = "cannot resolve host '" + host_ + "': no answer from the name service within " +
                              std::to_string(settings_.connect_timeout_ms) + " ms (modbus.connect_timeout_ms)";
        fail_locked(message);
        throw DeviceError(message, false);
      }
      lookup->done_cv.wait_for(l, std::min<Clock::duration>(kWaitSlice, deadline - Clock::now()));
    }
    if (lookup == lookup_) lookup_.reset();  // used: the next connect asks the name service again
    if (lookup->rc != 0) {
      std::string message = "cannot resolve host '" + host_ + "': " + ::gai_strerror(lookup->rc);
      l.unlock();
      fail_locked(message);
      throw DeviceError(message, false);
    }
  }

  // The allow-list is checked against the addresses we would connect to, so a name that is not
  // listed cannot lead to a listed one's neighbour, nor a listed address's name elsewhere.
  std::vector<const addrinfo*> allowed;
  std::string refused;
  bool listed_by_name = settings_.allowed.allows_host(host_, port_);
  for (const addrinfo* a = lookup->result; a; a = a->ai_next) {
    auto ip = ip_of(a->ai_addr);
    if (!ip) continue;
    if (listed_by_name || settings_.allowed.allows_address(*ip, port_)) allowed.push_back(a);
    else if (refused.empty()) refused = ip->text();
  }
  if (allowed.empty()) {
    // Not a device failure: no backoff, the next request is refused the same way.
    throw DeviceError(not_allowed_message(host_, port_, refused, settings_.allowed), false);
  }

  int error = 0;
  int fd = connect_socket(allowed, deadline, cancel, interrupted_, error);
  if (fd < 0) {
    if (error == ECANCELED) throw ToolCancelled();
    std::string message =
        "cannot connect to " + name() + ": " +
        (error == ETIMEDOUT ? "no answer within " + std::to_string(settings_.connect_timeout_ms) + " ms"
         : error == EINTR   ? std::string("interrupted, the poller is stopping")
                            : std::string(std::strerror(error)));
    fail_locked(message);
    throw DeviceError(message, false);
  }
  fd_ = fd;
  std::lock_guard lock(state_mutex_);
  socket_fd_ = fd;
  connected_ = true;
  if (interrupted_) ::shutdown(fd, SHUT_RDWR);  // interrupt() came between the connect and here
}

namespace {

/// How one request went on the wire.
struct Exchange {
  enum class Status { ok, timeout, closed, invalid, io_error, cancelled, interrupted } status = Status::ok;
  std::size_t sent = 0;      // request bytes the kernel took
  std::size_t received = 0;  // response bytes read
  std::size_t expected = kMbapHeaderBytes;  // response bytes expected so far
  int error = 0;             // errno for io_error
  std::string detail;        // what is wrong, for invalid
  Bytes pdu;                 // the response PDU, for ok
};

/// Sends `adu` and reads the one response it gets, everything by `deadline`.
Exchange exchange(int fd, const Bytes& adu, std::uint16_t transaction, std::uint8_t unit, const Bytes& request,
                  Clock::time_point deadline, const CancelToken* cancel, const std::atomic<bool>& interrupted) {
  Exchange x;
  auto waited = [&](short events) {
    Wait w = wait_for(fd, events, deadline, cancel, interrupted);
    if (w == Wait::timeout) x.status = Exchange::Status::timeout;
    else if (w == Wait::cancelled) x.status = Exchange::Status::cancelled;
    else if (w == Wait::interrupted) x.status = Exchange::Status::interrupted;
    return w == Wait::ready;
  };
  while (x.sent < adu.size()) {
    ssize_t n = ::send(fd, adu.data() + x.sent, adu.size() - x.sent, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      x.sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!waited(POLLOUT)) return x;
      continue;
    }
    x.error = errno;
    x.status = errno == EPIPE || errno == ECONNRESET ? Exchange::Status::closed : Exchange::Status::io_error;
    return x;
  }
  std::uint8_t header[kMbapHeaderBytes];
  Bytes body;
  std::size_t body_bytes = 0;
  for (;;) {
    std::uint8_t* into;
    std::size_t want;
    if (x.received < kMbapHeaderBytes) {
      into = header + x.received;
      want = kMbapHeaderBytes - x.received;
    } else {
      into = body.data() + (x.received - kMbapHeaderBytes);
      want = x.expected - x.received;
    }
    if (want == 0) break;
    ssize_t n = ::recv(fd, into, want, MSG_DONTWAIT);
    if (n == 0) {
      x.status = Exchange::Status::closed;
      return x;
    }
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!waited(POLLIN)) return x;
        continue;
      }
      x.error = errno;
      x.status = errno == ECONNRESET ? Exchange::Status::closed : Exchange::Status::io_error;
      return x;
    }
    x.received += static_cast<std::size_t>(n);
    if (x.received == kMbapHeaderBytes) {
      // The header alone says whether this can be our answer: refuse it before waiting for more.
      x.detail = check_response_header(header, transaction, unit, request, body_bytes);
      if (!x.detail.empty()) {
        x.status = Exchange::Status::invalid;
        return x;
      }
      body.resize(body_bytes);
      x.expected = kMbapHeaderBytes + body_bytes;
    }
  }
  x.pdu = std::move(body);
  return x;
}

}  // namespace

Response Device::transact(int unit, const Bytes& request, bool is_read, bool respect_backoff, const std::string& what,
                          const CancelToken* cancel) {
  const std::string who = name() + " unit " + std::to_string(unit);
  std::unique_lock request_lock(mutex_, std::defer_lock);
  // Waiting for our turn behind a slow request to the same device stays cancellable.
  while (!request_lock.try_lock_for(kWaitSlice)) {
    if (cancel && cancel->cancelled()) throw ToolCancelled();
    if (interrupted_) throw DeviceError(who + ": interrupted, the poller is stopping", false);
  }
  if (interrupted_) throw DeviceError(who + ": interrupted, the poller is stopping", false);
  {
    std::lock_guard lock(state_mutex_);
    if (!connected_ && respect_backoff && failures_in_a_row_ > 0 && Clock::now() < next_attempt_) {
      auto wait = std::chrono::duration_cast<milliseconds>(next_attempt_ - Clock::now()).count();
      throw DeviceError(name() + " is unreachable (" + last_error_ + "); next connection attempt in " +
                            std::to_string(wait) + " ms",
                        false);
    }
  }
  for (int attempt = 0;; ++attempt) {
    // A device may close a connection that sat idle (many do after a minute or so). Found
    // before sending, that costs a reconnect and nothing else, for reads and writes alike.
    if (fd_ >= 0 && idle_connection_gone(fd_)) close_socket_locked();
    bool reused = fd_ >= 0;
    if (fd_ < 0) connect_locked(cancel);
    const std::uint16_t transaction = ++transaction_;
    const Bytes adu = frame_request(transaction, static_cast<std::uint8_t>(unit), request);
    const auto deadline = Clock::now() + milliseconds(settings_.response_timeout_ms);
    Exchange x = exchange(fd_, adu, transaction, static_cast<std::uint8_t>(unit), request, deadline, cancel,
                          interrupted_);
    if (x.status == Exchange::Status::ok) {
      Response r = decode_response(request, x.pdu.data(), x.pdu.size());
      if (!r.error.empty()) {
        std::string message = "invalid response from " + who + ": " + r.error;
        fail_locked(message);
        throw DeviceError(message + "; reconnecting", false);
      }
      {
        std::lock_guard lock(state_mutex_);
        failures_in_a_row_ = 0;
        last_error_.clear();
      }
      if (r.exception_code != 0) {
        std::string message = exception_name(r.exception_code) + ": " + what + " (Modbus exception " +
                              std::to_string(r.exception_code) + ")";
        throw DeviceError(message, true);
      }
      return r;
    }
    std::string message;
    // interrupt() shuts the socket down, which a request sees as a closed connection.
    if (interrupted_ && x.status != Exchange::Status::cancelled) x.status = Exchange::Status::interrupted;
    switch (x.status) {
      case Exchange::Status::cancelled:
        // The answer may still come and would be read as the next one's: start over next time.
        close_socket_locked();
        throw ToolCancelled();
      case Exchange::Status::interrupted: message = who + ": interrupted, the poller is stopping"; break;
      case Exchange::Status::timeout:
        message = x.received == 0
                      ? "no answer from " + who + " within " + std::to_string(settings_.response_timeout_ms) + " ms"
                      : "no complete answer from " + who + " within " + std::to_string(settings_.response_timeout_ms) +
                            " ms (modbus.response_timeout_ms, the limit for the whole answer): got " +
                            (x.received < kMbapHeaderBytes
                                 ? std::to_string(x.received) + " bytes of the 7-byte header"
                                 : std::to_string(x.received) + " of " + std::to_string(x.expected) + " bytes");
        break;
      case Exchange::Status::invalid: message = "invalid response from " + who + ": " + x.detail; break;
      case Exchange::Status::closed:
        if (x.received == 0 && reused && attempt == 0 && (is_read || x.sent == 0)) {
          // The device closed the idle connection just as we used it. A read is safe to send
          // again; a write only when none of it left.
          close_socket_locked();
          continue;
        }
        message = x.received == 0 ? who + " closed the connection without answering"
                                  : who + " closed the connection mid-answer (after " + std::to_string(x.received) +
                                        " of " + std::to_string(x.expected) + " bytes)";
        if (!is_read && x.sent > 0) message += "; the write may or may not have taken effect";
        break;
      default: message = who + ": " + std::strerror(x.error); break;
    }
    // The stream may be out of step after a timeout or a bad frame: start over on a fresh connection.
    fail_locked(message);
    throw DeviceError(message + "; reconnecting", false);
  }
}

namespace {

std::string range_text(Table table, int address, int count) {
  std::string noun = table_noun(table, count);
  if (count == 1) return "the device has no " + noun + " " + std::to_string(address);
  return "the device has no " + noun + " " + std::to_string(address) + ".." + std::to_string(address + count - 1) +
         " (or not all of them)";
}

}  // namespace

std::vector<std::uint16_t> Device::read_registers(int unit, Table table, int address, int count, bool respect_backoff,
                                                  const CancelToken* cancel) {
  return transact(unit, read_request(table, address, count), true, respect_backoff, range_text(table, address, count),
                  cancel)
      .registers;
}

std::vector<std::uint8_t> Device::read_bits(int unit, Table table, int address, int count, bool respect_backoff,
                                            const CancelToken* cancel) {
  return transact(unit, read_request(table, address, count), true, respect_backoff, range_text(table, address, count),
                  cancel)
      .bits;
}

void Device::write_registers(int unit, int address, const std::vector<std::uint16_t>& values,
                             const CancelToken* cancel) {
  int count = static_cast<int>(values.size());
  transact(unit, write_registers_request(address, values), false, false, range_text(Table::holding, address, count),
           cancel);
}

void Device::write_bits(int unit, int address, const std::vector<std::uint8_t>& values, const CancelToken* cancel) {
  int count = static_cast<int>(values.size());
  transact(unit, write_bits_request(address, values), false, false, range_text(Table::coils, address, count), cancel);
}

std::shared_ptr<Device> DeviceSet::get(const std::string& host, int port) {
  std::lock_guard lock(mutex_);
  std::string key = host + ":" + std::to_string(port);
  if (auto it = devices_.find(key); it != devices_.end()) return it->second;
  if (devices_.size() >= static_cast<std::size_t>(settings_.max_devices)) {
    // Forget the devices nothing uses now (no group, no call in flight), closing their
    // connections: reads of ever new hosts must not pile up sockets until none is left for the
    // devices that matter.
    for (auto it = devices_.begin(); it != devices_.end();)
      it = it->second.use_count() == 1 ? devices_.erase(it) : std::next(it);
    if (devices_.size() >= static_cast<std::size_t>(settings_.max_devices))
      throw DeviceError("cannot reach " + key + ": " + std::to_string(devices_.size()) +
                            " devices are in use by groups and calls, the maximum (modbus.max_devices); delete a "
                            "group or raise the setting",
                        false);
  }
  auto device = std::make_shared<Device>(host, port, settings_);
  devices_[key] = device;
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
