// A real Modbus TCP server for tests: tests/support/modbus_server.py (pymodbus under
// /usr/bin/python3) on 127.0.0.1 and a free port, with the known datastore that script documents.
// The fixture owns the process: stop() and the destructor kill and reap it; start() again serves
// the same port (a device coming back).
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <stdexcept>
#include <string>
#include <thread>

namespace mcpd::test {

/// A TCP port on 127.0.0.1 that was free a moment ago.
inline int free_tcp_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0)
    throw std::runtime_error("cannot find a free port");
  ::close(fd);
  return ntohs(addr.sin_port);
}

/// Whether something accepts TCP connections on 127.0.0.1:port.
inline bool port_accepts(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<std::uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}

class ModbusServer {
 public:
  explicit ModbusServer(int port = 0) : port_(port == 0 ? free_tcp_port() : port) { start(); }
  ~ModbusServer() { stop(); }
  ModbusServer(const ModbusServer&) = delete;
  ModbusServer& operator=(const ModbusServer&) = delete;

  int port() const { return port_; }
  bool running() const { return pid_ > 0; }

  /// Spawns the server and waits until the port accepts connections.
  void start() {
    if (pid_ > 0) return;
    std::string script = std::string(MCPD_SOURCE_DIR) + "/tests/support/modbus_server.py";
    std::string port = std::to_string(port_);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::execl("/usr/bin/python3", "python3", script.c_str(), port.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    while (!port_accepts(port_)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("the Modbus test server exited at start (is python3-pymodbus installed?)");
      }
      if (std::chrono::steady_clock::now() > until) {
        stop();
        throw std::runtime_error("the Modbus test server did not listen on port " + port);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }

  /// Kills the server (a device that vanishes) and reaps it.
  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

}  // namespace mcpd::test
