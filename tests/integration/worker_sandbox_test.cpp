// Least privilege for workers, seen from outside the real worker processes the real mcpd starts:
// their environment, descriptors, limits, no_new_privs and seccomp state in /proc, a forbidden
// system call killing a worker with a log line naming it, and a failing setup step in the child
// reported instead of ignored.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "eventually.h"
#include "mcpd_fixture.h"

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

namespace {

const std::vector<std::string> kKinds = {"parser", "git", "search", "modbus", "testkit"};

json pool_status(McpClient& client, const std::string& kind) {
  return client.call_tool("mcpd_status", json::object())["structuredContent"]["executor"]["pools"][kind];
}

/// The pid of a ready (idle) worker of `kind`, waiting for the prewarmed one to say hello.
pid_t ready_worker(McpClient& client, const std::string& kind) {
  pid_t pid = -1;
  bool ready = eventually([&] {
    json pool = pool_status(client, kind);
    for (const auto& w : pool["workers"])
      if (w["state"] == "idle") {
        pid = w["pid"].get<pid_t>();
        return true;
      }
    return false;
  });
  REQUIRE_MESSAGE(ready, "no ready " << kind << " worker");
  return pid;
}

std::string read_proc(pid_t pid, const std::string& file) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + file);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

std::set<std::string> environment_of(pid_t pid) {
  std::set<std::string> out;
  std::string text = read_proc(pid, "environ");
  std::size_t start = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\0') {
      out.insert(text.substr(start, i - start));
      start = i + 1;
    }
  return out;
}

bool has_variable(const std::set<std::string>& env, const std::string& name) {
  for (const auto& kv : env)
    if (kv.rfind(name + "=", 0) == 0) return true;
  return false;
}

/// The line of /proc/<pid>/<file> that starts with `key`, or "".
std::string proc_line(pid_t pid, const std::string& file, const std::string& key) {
  std::istringstream in(read_proc(pid, file));
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key, 0) == 0) return line;
  return "";
}

/// The soft and hard values of a limit in /proc/<pid>/limits ("Max open files" -> {"512", "512"}).
std::pair<std::string, std::string> limit_of(pid_t pid, const std::string& name) {
  std::string line = proc_line(pid, "limits", name);
  std::istringstream rest(line.substr(std::min(line.size(), name.size())));
  std::string soft, hard;
  rest >> soft >> hard;
  return {soft, hard};
}

/// Waits for a log notification whose data contains every one of `needles`; returns its data.
std::optional<json> wait_log(McpClient& client, std::vector<json>& seen, const std::vector<std::string>& needles,
                             std::chrono::milliseconds timeout = 10s) {
  std::optional<json> found;
  eventually(
      [&] {
        for (auto& n : client.take_notifications()) seen.push_back(std::move(n));
        for (const auto& n : seen) {
          if (n.value("method", "") != "notifications/message") continue;
          std::string text = n["params"]["data"].dump();
          bool all = true;
          for (const auto& needle : needles) all = all && text.find(needle) != std::string::npos;
          if (all) {
            found = n["params"]["data"];
            return true;
          }
        }
        return false;
      },
      timeout);
  return found;
}

/// mcpd with the Modbus database in a directory of the test's own (no lock shared with others).
std::unique_ptr<McpClient> start_sandboxed(const TempDir& dir, std::vector<std::string> args = {},
                                           std::vector<std::string> env = {}) {
  args.push_back("--modbus");
  args.push_back(json{{"db_path", (dir.path / "modbus.sqlite").string()}}.dump());
  auto client = start_mcpd(std::move(args), std::move(env));
  client->initialize();
  return client;
}

}  // namespace

TEST_CASE("a worker's environment is the allow-list plus worker_env, never the rest of mcpd's") {
  TempDir dir;
  auto client = start_sandboxed(
      dir, {"--worker_env", R"({"MCPD_TEST_PASSED": true, "MCPD_TEST_SET": "set-by-config"})"},
      {"MCPD_TEST_SECRET=hunter2", "MCPD_TEST_PASSED=passed-through", "LC_TIME=C"});
  // The secret really is in mcpd's environment: the worker had it to inherit.
  CHECK(environment_of(client->process().pid()).count("MCPD_TEST_SECRET=hunter2") == 1);
  for (const auto& kind : kKinds) {
    CAPTURE(kind);
    pid_t pid = ready_worker(*client, kind);
    auto env = environment_of(pid);
    REQUIRE_FALSE(env.empty());
    CHECK_FALSE(has_variable(env, "MCPD_TEST_SECRET"));
    CHECK(env.count("MCPD_TEST_PASSED=passed-through") == 1);
    CHECK(env.count("MCPD_TEST_SET=set-by-config") == 1);
    CHECK(env.count("LC_TIME=C") == 1);  // the locale is on the allow-list
    CHECK(has_variable(env, "MCPD_WORKER_CONFIG"));
    for (const auto& kv : env) {
      std::string name = kv.substr(0, kv.find('='));
      static const std::set<std::string> expected = {
          "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ", "TMPDIR", "XDG_CONFIG_HOME", "XDG_STATE_HOME",
          "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS", "LSAN_OPTIONS", "MCPD_WORKER_CONFIG",
          "MCPD_TEST_PASSED", "MCPD_TEST_SET", "MCPD_TEST_WORKER_FAULT", "MCPD_TEST_WORKER_DIVERGE"};
      CHECK_MESSAGE((expected.count(name) == 1 || name.rfind("LC_", 0) == 0), "unexpected variable " << name);
    }
  }
}

TEST_CASE("worker_env is checked at start and names what is wrong") {
  auto run = [](std::vector<std::string> argv) {
    TempDir out;
    ChildProcess::Options options;
    options.stderr_path = (out.path / "err").string();
    ChildProcess child(argv, options);
    child.close_stdin();
    auto status = child.wait(10s);
    std::ifstream err(out.path / "err");
    std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    return std::make_pair(status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1, text);
  };
  auto [code, text] = run({mcpd_binary(), "--print-config", "--worker_env", R"({"A=B": "x"})"});
  CHECK(code == 2);
  CHECK(text.find("worker_env") != std::string::npos);
  CHECK(text.find("'A=B' is not a variable name") != std::string::npos);
  std::tie(code, text) = run({mcpd_binary(), "--print-config", "--worker_env", R"({"MCPD_WORKER_CONFIG": "{}"})"});
  CHECK(code == 2);
  CHECK(text.find("set by mcpd itself") != std::string::npos);
  std::tie(code, text) = run({mcpd_binary(), "--print-config", "--worker_env", R"({"X": 3})"});
  CHECK(code == 2);
  CHECK(text.find("value of 'X' must be a string") != std::string::npos);
  std::tie(code, text) = run({mcpd_binary(), "--print-config", "--worker_env", R"(["OK_NAME"])"});
  CHECK(code == 0);
}

TEST_CASE("a MiB setting that would overflow in bytes is refused, naming the key") {
  TempDir out;
  ChildProcess::Options options;
  options.stderr_path = (out.path / "err").string();
  // 2^44 MiB is 2^64 bytes: shifted, it wrapped to 0, which read as "no limit".
  ChildProcess child({mcpd_binary(), "--print-config", "--workers",
                      R"({"parser": {"memory_hard_limit_mb": 17592186044416}})"},
                     options);
  child.close_stdin();
  auto status = child.wait(10s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 2);
  std::ifstream err(out.path / "err");
  std::string text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
  CHECK(text.find("workers.parser.memory_hard_limit_mb") != std::string::npos);
}

TEST_CASE("a worker holds no descriptor of mcpd's: only its pipes and what it opened itself") {
  TempDir dir;
  auto client = start_sandboxed(dir);
  // mcpd itself holds many: the client's stdio, every other worker's pipes, pidfds, its epoll.
  CHECK(std::distance(std::filesystem::directory_iterator("/proc/" + std::to_string(client->process().pid()) + "/fd"),
                      std::filesystem::directory_iterator()) > 10);
  for (const auto& kind : {"parser", "git", "search", "testkit"}) {
    CAPTURE(kind);
    pid_t pid = ready_worker(*client, kind);
    std::set<int> fds;
    std::string fd_dir = "/proc/" + std::to_string(pid) + "/fd";
    for (const auto& entry : std::filesystem::directory_iterator(fd_dir)) {
      int fd = std::stoi(entry.path().filename().string());
      fds.insert(fd);
      std::string target = std::filesystem::read_symlink(entry.path()).string();
      CAPTURE(fd);
      CAPTURE(target);
      // 0 is /dev/null once the runtime has moved the frame channel away; 1-4 are pipes; above
      // them only the directory handle of the root (mcpd's source tree here), which the worker
      // opens itself so every path is opened beneath it.
      if (fd == 0) CHECK(target == "/dev/null");
      else if (fd <= 4) CHECK(target.rfind("pipe:", 0) == 0);
      else CHECK(target == std::filesystem::canonical(source_dir()).string());
    }
    // 0-2, the runtime's private copies of the frame channel (its own, close-on-exec), the root.
    CHECK(fds == std::set<int>{0, 1, 2, 3, 4, 5});
  }
}

TEST_CASE("workers run with no_new_privs, their seccomp filter, no core dumps and bounded descriptors and memory") {
  TempDir dir;
  auto client = start_sandboxed(
      dir, {"--workers", R"({"default": {"max_open_files": 512, "memory_hard_limit_mb": 3072}})"});
  for (const auto& kind : kKinds) {
    CAPTURE(kind);
    pid_t pid = ready_worker(*client, kind);
    CHECK(proc_line(pid, "status", "NoNewPrivs:") == "NoNewPrivs:\t1");
    CHECK(proc_line(pid, "status", "Seccomp:") == "Seccomp:\t2");  // 2: a filter
    CHECK(limit_of(pid, "Max core file size") == std::make_pair(std::string("0"), std::string("0")));
    CHECK(limit_of(pid, "Max open files") == std::make_pair(std::string("512"), std::string("512")));
#ifdef MCPD_SANITIZER_BUILD
    // A sanitizer's shadow memory needs terabytes of address space: these builds set no RLIMIT_AS.
    CHECK(limit_of(pid, "Max address space") == std::make_pair(std::string("unlimited"), std::string("unlimited")));
#else
    std::string as = std::to_string(3072ull << 20);
    CHECK(limit_of(pid, "Max address space") == std::make_pair(as, as));
#endif
  }
  // Non-dumpable too (exec resets it, so the worker sets it itself): no core, no attaching.
  json r = client->call_tool("test_fault", {{"fault", "confinement"}});
  CHECK(r["structuredContent"]["dumpable"] == 0);
  CHECK(r["structuredContent"]["no_new_privs"] == 1);
}

TEST_CASE("worker_seccomp false leaves the filter off, and only the filter") {
  TempDir dir;
  auto client = start_sandboxed(dir, {"--worker_seccomp", "false"});
  pid_t pid = ready_worker(*client, "testkit");
  CHECK(proc_line(pid, "status", "Seccomp:") == "Seccomp:\t0");
  CHECK(proc_line(pid, "status", "NoNewPrivs:") == "NoNewPrivs:\t1");
  json r = client->call_tool("test_fault", {{"fault", "exec"}});
  CHECK(r["isError"] == false);
  CHECK(r["structuredContent"]["allowed"] == true);
}

TEST_CASE("a worker that makes a forbidden system call is killed, and mcpd logs the call's name") {
  TempDir dir;
  auto client = start_sandboxed(dir);
  std::vector<json> seen;
  for (const auto& [fault, call] : {std::pair<std::string, std::string>{"exec", "execve"},
                                    std::pair<std::string, std::string>{"socket", "socket"}}) {
    const std::string& injected = fault;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(injected);
    pid_t pid = ready_worker(*client, "testkit");
    json r = client->call_tool("test_fault", {{"fault", fault}});
    CHECK(r["isError"] == true);  // the worker died mid-call
    auto line = wait_log(*client, seen, {"seccomp", "system call " + call + " ", std::to_string(pid)});
    const std::string& syscall_name = call;  // clang 14 cannot capture a structured binding in a lambda
    CHECK_MESSAGE(line.has_value(), "no log line names " << syscall_name);
    if (line) CHECK(line->value("level", "") == "warning");
    // And the worker really is gone (killed and reaped), not left serving.
    CHECK(eventually([pid] { return !std::filesystem::exists("/proc/" + std::to_string(pid)); }));
  }
  json r = client->call_tool("test_echo", {{"value", 1}});
  CHECK(r["isError"] == false);
}

TEST_CASE("a setup call that fails in the child is reported and the spawn fails") {
  for (const auto& [fault, call] : {std::pair<std::string, std::string>{"setrlimit", "setrlimit(RLIMIT_NOFILE)"},
                                    std::pair<std::string, std::string>{"prctl", "prctl(PR_SET_NO_NEW_PRIVS)"}}) {
    const std::string& injected = fault;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(injected);
    TempDir dir;
    auto client = start_sandboxed(dir, {"--tool_timeouts_ms", R"({"code_parse": 3000})"},
                                  {"MCPD_TEST_SPAWN_FAULT=" + fault});
    std::vector<json> seen;
    auto line = wait_log(*client, seen, {"cannot start worker", call, "Invalid argument"});
    const std::string& failed_call = call;  // clang 14 cannot capture a structured binding in a lambda
    REQUIRE_MESSAGE(line.has_value(), "no log line reports " << failed_call);
    // No worker ever ran half confined: the call fails instead of being served.
    // (a tool error, or "server busy" once the kind's breaker has opened).
    bool failed = false;
    try {
      failed = client->call_tool("code_parse", {{"language", "c"}, {"code", "int x;"}}, 10s)["isError"] == true;
    } catch (const std::exception& e) {
      failed = std::string(e.what()).find("worker kind 'parser' is failing") != std::string::npos;
    }
    CHECK(failed);
    CHECK(client->request("ping", json::object(), 2s).contains("result"));
  }
}
