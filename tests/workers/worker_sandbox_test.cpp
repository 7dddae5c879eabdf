// Each worker kind's seccomp filter, on the real worker binaries spoken to directly: the runtime's
// test_fault "socket" and "exec" (served in every kind with test hooks on) make the worker try a
// socket and an exec; a denied one kills it with SIGSYS and a stderr line naming the call.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <csignal>
#include <string>

#include "temp_dir.h"
#include "worker_harness.h"

using namespace mcpd;
using namespace mcpd::test;

namespace {

WorkerHarness::Options hooked(const TempDir& dir, bool seccomp = true) {
  json config = worker_config(true);
  config["seccomp"] = seccomp;
  config["settings"] = {{"modbus", {{"db_path", (dir.path / "modbus.sqlite").string()}}}};
  WorkerHarness::Options options;
  options.config = config.dump();
  return options;
}

/// Runs test_fault `fault` in a fresh worker of `kind`; true when the call was allowed (a result
/// saying so), false when the filter killed the worker, which must then have died of SIGSYS and
/// said which call it made.
bool allowed(const std::string& kind, const std::string& fault, const std::string& call, bool seccomp = true) {
  TempDir dir;
  WorkerHarness worker(kind, hooked(dir, seccomp));
  REQUIRE(worker.wait_type("hello", std::chrono::seconds(10)));
  worker.call("f", "test_fault", {{"fault", fault}});
  auto outcome = worker.wait_outcome("f", std::chrono::seconds(5));
  if (outcome) {
    CHECK((*outcome)["type"] == "result");
    CHECK((*outcome)["structured"]["allowed"] == true);
    return true;
  }
  auto status = worker.wait_exit(std::chrono::seconds(5));
  REQUIRE(status);
  CAPTURE(*status);
  CHECK(WIFSIGNALED(*status));
  CHECK(WTERMSIG(*status) == SIGSYS);
  std::string err = worker.stderr_text();
  CHECK_MESSAGE(err.find("seccomp: system call " + call + " (") != std::string::npos, err);
  return false;
}

}  // namespace

TEST_CASE("parser and search workers may neither open sockets nor exec") {
  for (const std::string kind : {"parser", "search"}) {
    CAPTURE(kind);
    CHECK_FALSE(allowed(kind, "socket", "socket"));
    CHECK_FALSE(allowed(kind, "exec", "execve"));
  }
}

TEST_CASE("the git worker may not open sockets, nor exec") {
  CHECK_FALSE(allowed("git", "socket", "socket"));
  CHECK_FALSE(allowed("git", "exec", "execve"));
}

TEST_CASE("the modbus worker may open sockets, but not exec") {
  CHECK(allowed("modbus", "socket", "socket"));
  CHECK_FALSE(allowed("modbus", "exec", "execve"));
}

TEST_CASE("no kind may make a namespace, not even through clone") {
  for (const std::string kind : {"parser", "search", "git", "modbus"}) {
    CAPTURE(kind);
    CHECK_FALSE(allowed(kind, "namespace", "clone"));
  }
}

TEST_CASE("with seccomp off in its configuration a worker is not filtered") {
  CHECK(allowed("parser", "socket", "socket", false));
  CHECK(allowed("parser", "exec", "execve", false));
  CHECK(allowed("parser", "namespace", "clone", false));
}

TEST_CASE("a worker makes itself non-dumpable at start, filter or not") {
  for (bool seccomp : {true, false}) {
    CAPTURE(seccomp);
    TempDir dir;
    WorkerHarness worker("parser", hooked(dir, seccomp));
    REQUIRE(worker.wait_type("hello", std::chrono::seconds(10)));
    worker.call("c", "test_fault", {{"fault", "confinement"}});
    auto outcome = worker.wait_outcome("c", std::chrono::seconds(5));
    REQUIRE(outcome);
    CHECK((*outcome)["structured"]["dumpable"] == 0);
  }
}

TEST_CASE("a filtered worker still serves its own tools") {
  TempDir dir;
  WorkerHarness worker("parser", hooked(dir));
  REQUIRE(worker.wait_type("hello", std::chrono::seconds(10)));
  worker.call("p", "code_parse", {{"language", "c"}, {"code", "int x;"}});
  auto outcome = worker.wait_outcome("p", std::chrono::seconds(10));
  REQUIRE(outcome);
  CHECK((*outcome)["type"] == "result");
}
