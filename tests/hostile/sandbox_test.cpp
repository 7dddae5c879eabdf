// Least privilege: a worker driven to a system call its kind may not make (as a tool exploited by
// hostile input would) is killed by its seccomp filter, mcpd names the call in its log, and the
// kind serves the next call from a fresh worker.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "eventually.h"
#include "hostile_support.h"

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

TEST_CASE("hostile: a forbidden system call costs one worker, and the log names the call") {
  struct Case {
    std::string fault, call;
  };
  const std::vector<Case> cases = {{"exec", "execve"}, {"socket", "socket"}};
  auto client = start_mcpd();
  client->initialize();
  std::vector<json> seen;
  for (const auto& c : cases) {
    CAPTURE(c.fault);
    json r = client->call_tool("test_fault", {{"fault", c.fault}});
    CHECK(r["isError"] == true);
    bool logged = eventually([&] {
      for (auto& n : client->take_notifications()) seen.push_back(std::move(n));
      for (const auto& n : seen)
        if (n.value("method", "") == "notifications/message" &&
            n["params"]["data"].dump().find("seccomp: system call " + c.call + " (") != std::string::npos)
          return true;
      return false;
    });
    CHECK_MESSAGE(logged, "no log line names " << c.call);
    check_still_serves(*client, "test_echo", {{"value", c.fault}});
  }
}
