// Runs a piece of a test as an unprivileged user, so permission checks mean the same when the suite
// runs as root (which reads and writes any file whatever its mode) as when it runs as a user.
#pragma once

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

namespace mcpd::test {

/// The uid and gid of `nobody` on Debian.
constexpr uid_t kNobody = 65534;

/// Returns `body()`, run in this process when it is not root, and otherwise in a forked child that
/// has dropped to `nobody` first (so whatever `body` reads must be readable by others). `body`
/// returns JSON; its exceptions fail the test with their message.
template <class Body>
nlohmann::json run_unprivileged(Body body) {
  if (::geteuid() != 0) return body();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {
    ::close(fds[0]);
    std::string answer;
    int code = 0;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      answer = std::string("cannot drop to nobody: ") + std::strerror(errno);
      code = 3;
    } else {
      try {
        answer = body().dump();
      } catch (const std::exception& e) {
        answer = e.what();
        code = 4;
      }
    }
    for (std::size_t done = 0; done < answer.size();) {
      ssize_t n = ::write(fds[1], answer.data() + done, answer.size() - done);
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    ::_exit(code);
  }
  ::close(fds[1]);
  std::string answer;
  char buf[65536];
  for (ssize_t n; (n = ::read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    REQUIRE(n > 0);
    answer.append(buf, static_cast<std::size_t>(n));
  }
  ::close(fds[0]);
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE_MESSAGE((WIFEXITED(status) && WEXITSTATUS(status) == 0), "unprivileged part failed: " << answer);
  return nlohmann::json::parse(answer);
}

}  // namespace mcpd::test
