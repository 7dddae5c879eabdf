// A small Modbus TCP device on 127.0.0.1 for the faults a real server (pymodbus) cannot produce:
// answers that dribble in a byte at a time, answers with a wrong MBAP length, unit id, transaction
// id, protocol id or function code, and a device that closes a connection the moment the next
// request arrives (a connection it dropped while idle). Otherwise it answers reads and writes
// correctly: holding and input register i reads 100 + i, coil and discrete input i reads i % 2.
// Each connection is served on a thread of its own; the destructor stops and joins them all.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace mcpd::test {

class FakeModbusDevice {
 public:
  enum class Fault {
    none,
    dribble,            // the whole answer, one byte per `dribble_interval`
    wrong_length,       // the MBAP length says 10 bytes more than follow
    wrong_unit,         // another unit id
    wrong_transaction,  // another transaction id
    wrong_protocol,     // protocol id 1
    wrong_function,     // function code 0x11
    close_on_second,    // answers the first request of a connection, closes it at the second
    silent,             // reads requests, never answers
  };

  explicit FakeModbusDevice(Fault fault, std::chrono::milliseconds dribble_interval = std::chrono::milliseconds(200))
      : fault_(fault), interval_(dribble_interval) {
    listener_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener_ < 0 || ::bind(listener_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener_, 16) != 0 || ::getsockname(listener_, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::runtime_error("fake Modbus device: cannot listen on loopback");
    port_ = ntohs(addr.sin_port);
    if (::pipe2(stop_pipe_, O_CLOEXEC) != 0) throw std::runtime_error("fake Modbus device: pipe failed");
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  ~FakeModbusDevice() {
    char one = 1;
    ssize_t ignored = ::write(stop_pipe_[1], &one, 1);
    (void)ignored;
    acceptor_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mutex_);
      threads = std::move(connections_);
    }
    for (auto& t : threads) t.join();
    ::close(listener_);
    ::close(stop_pipe_[0]);
    ::close(stop_pipe_[1]);
  }

  FakeModbusDevice(const FakeModbusDevice&) = delete;
  FakeModbusDevice& operator=(const FakeModbusDevice&) = delete;

  int port() const { return port_; }
  /// Connections accepted so far.
  int connections() const { return accepted_.load(); }
  /// Requests received so far, over all connections.
  int requests() const { return requests_.load(); }

 private:
  /// Waits for `fd` to be readable; false when the device is stopping.
  bool wait_readable(int fd) {
    pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
    for (;;) {
      int n = ::poll(fds, 2, -1);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 || (fds[1].revents & POLLIN)) return false;
      if (fds[0].revents) return true;
    }
  }

  void accept_loop() {
    while (wait_readable(listener_)) {
      int fd = ::accept4(listener_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      ++accepted_;
      std::lock_guard lock(mutex_);
      connections_.emplace_back([this, fd] {
        serve(fd);
        ::close(fd);
      });
    }
  }

  bool read_exact(int fd, std::uint8_t* into, std::size_t n) {
    std::size_t got = 0;
    while (got < n) {
      if (!wait_readable(fd)) return false;
      ssize_t r = ::recv(fd, into + got, n - got, 0);
      if (r <= 0) return false;
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

  static int get16(const std::uint8_t* p) { return (p[0] << 8) | p[1]; }
  static void put16(std::vector<std::uint8_t>& out, int v) {
    out.push_back(static_cast<std::uint8_t>((v >> 8) & 0xff));
    out.push_back(static_cast<std::uint8_t>(v & 0xff));
  }

  /// The correct response PDU to `request`.
  static std::vector<std::uint8_t> answer(const std::vector<std::uint8_t>& request) {
    int function = request[0], address = get16(&request[1]), quantity = get16(&request[3]);
    std::vector<std::uint8_t> pdu{static_cast<std::uint8_t>(function)};
    if (function == 3 || function == 4) {
      pdu.push_back(static_cast<std::uint8_t>(2 * quantity));
      for (int i = 0; i < quantity; ++i) put16(pdu, 100 + address + i);
    } else if (function == 1 || function == 2) {
      int bytes = (quantity + 7) / 8;
      pdu.push_back(static_cast<std::uint8_t>(bytes));
      std::vector<std::uint8_t> bits(static_cast<std::size_t>(bytes), 0);
      for (int i = 0; i < quantity; ++i)
        if ((address + i) % 2) bits[static_cast<std::size_t>(i / 8)] |= static_cast<std::uint8_t>(1 << (i % 8));
      pdu.insert(pdu.end(), bits.begin(), bits.end());
    } else {
      put16(pdu, address);  // writes echo their address and value or quantity
      put16(pdu, quantity);
    }
    return pdu;
  }

  void serve(int fd) {
    for (int on_connection = 1;; ++on_connection) {
      std::uint8_t header[7];
      if (!read_exact(fd, header, 7)) return;
      int length = get16(header + 4);
      if (length < 2 || length > 254) return;
      std::vector<std::uint8_t> request(static_cast<std::size_t>(length - 1));
      if (!read_exact(fd, request.data(), request.size())) return;
      ++requests_;
      if (fault_ == Fault::silent) continue;
      if (fault_ == Fault::close_on_second && on_connection >= 2) return;
      std::vector<std::uint8_t> pdu = answer(request);
      int transaction = get16(header), protocol = 0, unit = header[6];
      int mbap_length = static_cast<int>(pdu.size()) + 1;
      switch (fault_) {
        case Fault::wrong_length: mbap_length += 10; break;
        case Fault::wrong_unit: unit = (unit + 1) & 0xff; break;
        case Fault::wrong_transaction: transaction = (transaction + 1000) & 0xffff; break;
        case Fault::wrong_protocol: protocol = 1; break;
        case Fault::wrong_function: pdu[0] = 0x11; break;
        default: break;
      }
      std::vector<std::uint8_t> adu;
      put16(adu, transaction);
      put16(adu, protocol);
      put16(adu, mbap_length);
      adu.push_back(static_cast<std::uint8_t>(unit));
      adu.insert(adu.end(), pdu.begin(), pdu.end());
      if (fault_ == Fault::dribble) {
        for (std::uint8_t byte : adu) {
          pollfd stop{stop_pipe_[0], POLLIN, 0};
          if (::poll(&stop, 1, static_cast<int>(interval_.count())) != 0) return;  // stopping
          if (::send(fd, &byte, 1, MSG_NOSIGNAL) != 1) return;
        }
      } else if (::send(fd, adu.data(), adu.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(adu.size())) {
        return;
      }
    }
  }

  const Fault fault_;
  const std::chrono::milliseconds interval_;
  int listener_ = -1;
  int port_ = 0;
  int stop_pipe_[2] = {-1, -1};
  std::atomic<int> accepted_{0}, requests_{0};
  std::mutex mutex_;
  std::vector<std::thread> connections_;
  std::thread acceptor_;
};

}  // namespace mcpd::test
