// Specifies the worker side of protocol/worker_protocol.h by running the real worker binaries
// (mcpd-worker-parser, mcpd-worker-testkit) and speaking frames to them, fault hooks included.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "temp_dir.h"
#include "testkit_tools.h"
#include "tool_runner.h"
#include "worker_harness.h"
#include "worker_runtime.h"

namespace {

namespace fs = std::filesystem;
using mcpd::json;
using mcpd::test::WorkerHarness;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// What a sanitizer runtime adds to a process's exit (TSan's and LSan's reports at exit take most of
// a second): the bounds on how promptly a worker exits allow it, and nothing more.
#ifdef MCPD_SANITIZER_BUILD
constexpr long kExitMs = 1500;
#else
constexpr long kExitMs = 0;
#endif

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

long long ms_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
}

/// A worker that has sent its hello (checked).
struct Started {
  WorkerHarness worker;
  json hello;
  explicit Started(const std::string& kind, WorkerHarness::Options options = {}) : worker(kind, std::move(options)) {
    auto frame = worker.wait_type("hello");
    REQUIRE_MESSAGE(frame.has_value(), "no hello; stderr: " << worker.stderr_text());
    hello = *frame;
  }
};

/// Pings until the worker reports `calls` calls taken by a call thread: the barrier before a cancel
/// or a shutdown that must find the call running, not waiting. Pongs come back at once, busy or not.
void wait_running(WorkerHarness& worker, std::size_t calls = 1) {
  static std::int64_t seq = 1000;
  for (auto until = Clock::now() + 5s; Clock::now() < until;) {
    worker.send({{"type", "ping"}, {"seq", ++seq}});
    auto pong = worker.wait_type("pong", 1s);
    REQUIRE(pong);
    if ((*pong).value("running", std::size_t{0}) >= calls) return;
  }
  FAIL("the call never started");
}

bool exited_with(std::optional<int> status, int code) {
  return status && WIFEXITED(*status) && WEXITSTATUS(*status) == code;
}

bool killed_by(std::optional<int> status, int signal) {
  return status && WIFSIGNALED(*status) && WTERMSIG(*status) == signal;
}

std::string describe(std::optional<int> status) {
  if (!status) return "still running";
  if (WIFEXITED(*status)) return "exited " + std::to_string(WEXITSTATUS(*status));
  if (WIFSIGNALED(*status)) return "killed by signal " + std::to_string(WTERMSIG(*status));
  return "status " + std::to_string(*status);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Configuration

TEST_CASE("a worker configuration defaults to the current directory and ToolContext's limits") {
  auto config = mcpd::parse_worker_config("{}");
  REQUIRE(config.roots.size() == 1);
  CHECK(config.roots[0] == fs::canonical(fs::current_path()));
  mcpd::ToolContext defaults;
  CHECK(config.max_file_bytes == defaults.max_file_bytes);
  CHECK(config.max_result_bytes == defaults.max_result_bytes);
  CHECK(config.max_result_depth == defaults.max_result_depth);
  CHECK(config.log_level == "info");
  CHECK(config.test_hooks == false);
}

TEST_CASE("a worker configuration is read key by key, roots made canonical, unknown keys ignored") {
  mcpd::test::TempDir dir;
  fs::create_directories(dir.path / "sub");
  json text = {{"roots", {(dir.path / "sub" / "..").string()}},
               {"max_file_bytes", 1000},
               {"max_result_bytes", 2000},
               {"max_result_depth", 40},
               {"log_level", "debug"},
               {"test_hooks", true},
               {"from_a_newer_coordinator", 1}};
  auto config = mcpd::parse_worker_config(text.dump());
  REQUIRE(config.roots.size() == 1);
  CHECK(config.roots[0] == dir.path);
  CHECK(config.max_file_bytes == 1000);
  CHECK(config.max_result_bytes == 2000);
  CHECK(config.max_result_depth == 40);
  CHECK(config.log_level == "debug");
  CHECK(config.test_hooks == true);
}

TEST_CASE("a bad worker configuration is refused with a message naming the key") {
  auto error_of = [](const std::string& text) -> std::string {
    try {
      mcpd::parse_worker_config(text);
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    FAIL_CHECK("accepted " << text);
    return {};
  };
  CHECK(contains(error_of("{"), "not JSON"));
  CHECK(contains(error_of("[]"), "object"));
  CHECK(contains(error_of(R"({"roots":"/"})"), "roots"));
  CHECK(contains(error_of(R"({"roots":["/no/such/dir/mcpd"]})"), "'/no/such/dir/mcpd' does not exist"));
  CHECK(contains(error_of(R"({"roots":["/etc/hostname"]})"), "not a directory"));
  CHECK(contains(error_of(R"({"max_file_bytes":0})"), "max_file_bytes"));
  CHECK(contains(error_of(R"({"max_result_bytes":"big"})"), "max_result_bytes"));
  CHECK(contains(error_of(R"({"log_level":"loud"})"), "log_level"));
  CHECK(contains(error_of(R"({"test_hooks":"yes"})"), "test_hooks"));
}

TEST_CASE("a worker without MCPD_WORKER_CONFIG exits 2 and says why on stderr") {
  WorkerHarness::Options options;
  options.config = std::nullopt;
  WorkerHarness worker("testkit", options);
  CHECK(exited_with(worker.wait_exit(), 2));
  CHECK(worker.drain());
  CHECK(worker.history().empty());
  CHECK(contains(worker.stderr_text(), "MCPD_WORKER_CONFIG is not set"));
}

TEST_CASE("a worker with an invalid MCPD_WORKER_CONFIG exits 2 naming the key") {
  WorkerHarness::Options options;
  options.config = R"({"log_level":"shouty"})";
  WorkerHarness worker("parser", options);
  CHECK(exited_with(worker.wait_exit(), 2));
  CHECK(worker.history().empty());
  CHECK(contains(worker.stderr_text(), "log_level"));
}

// ---------------------------------------------------------------------------------------------
// Hello and calls

TEST_CASE("hello comes first, with protocol 3, the kind, the worker's pid and its tool names") {
  Started parser("parser");
  CHECK(parser.worker.history().front() == parser.hello);
  CHECK(parser.hello["protocol"] == 3);
  CHECK(parser.hello["kind"] == "parser");
  CHECK(parser.hello["version"] == "0.1.0");
  CHECK(parser.hello["pid"] == parser.worker.pid());
  CHECK(parser.hello["tools"] == json({"code_parse", "code_outline", "code_query"}));

  Started testkit("testkit");
  CHECK(testkit.hello["kind"] == "testkit");
  CHECK(testkit.hello["pid"] == testkit.worker.pid());
  CHECK(testkit.hello["tools"] == json({"test_sleep", "test_echo", "test_fault", "test_fault_idempotent"}));
}

TEST_CASE("a code_parse call returns a result frame with the call id and the parse tree") {
  Started s("parser");
  s.worker.call("c1", "code_parse", {{"path", "workers/runtime/roots.cpp"}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["type"] == "result");
  CHECK((*result)["id"] == "c1");
  CHECK((*result)["text"].is_string());
  const json& structured = (*result)["structured"];
  CHECK(structured["language"] == "cpp");
  CHECK(structured["root_type"] == "translation_unit");
  CHECK(structured["has_errors"] == false);
  CHECK(structured["tree"].is_string());

  s.worker.call("c2", "code_parse", {{"code", "def f():\n    return 1\n"}, {"language", "py"}, {"format", "json"}});
  auto second = s.worker.wait_outcome("c2");
  REQUIRE(second);
  CHECK((*second)["type"] == "result");
  CHECK((*second)["structured"]["language"] == "python");
  CHECK((*second)["structured"]["tree"]["type"] == "module");
}

TEST_CASE("a tool error comes back as an error frame of kind tool_error") {
  Started s("parser");
  s.worker.call("c1", "code_parse", {{"code", "x"}, {"language", "cobol"}});
  auto error = s.worker.wait_outcome("c1");
  REQUIRE(error);
  CHECK((*error)["type"] == "error");
  CHECK((*error)["kind"] == "tool_error");
  CHECK(contains((*error)["message"], "cobol"));

  // A path outside the roots is the tool's refusal too.
  s.worker.call("c2", "code_parse", {{"path", "/etc/passwd"}});
  auto outside = s.worker.wait_outcome("c2");
  REQUIRE(outside);
  CHECK((*outside)["kind"] == "tool_error");
}

TEST_CASE("arguments outside the tool's schema are a tool_error naming the argument") {
  Started s("parser");
  s.worker.call("c1", "code_parse", {{"code", "x"}, {"language", "c"}, {"max_depth", "deep"}});
  auto error = s.worker.wait_outcome("c1");
  REQUIRE(error);
  CHECK((*error)["kind"] == "tool_error");
  CHECK(contains((*error)["message"], "max_depth"));

  Started t("testkit");
  t.worker.call("c2", "test_sleep", json::object());  // ms is required
  auto missing = t.worker.wait_outcome("c2");
  REQUIRE(missing);
  CHECK((*missing)["kind"] == "tool_error");
  CHECK(contains((*missing)["message"], "ms"));
}

TEST_CASE("a call the coordinator marks validated is not checked again; a bad mark is a protocol error") {
  Started s("testkit");
  // test_echo refuses members it does not name: unmarked, the worker checks and refuses.
  const json extra = {{"value", 1}, {"extra", 2}};
  s.worker.call("c1", "test_echo", extra);
  auto refused = s.worker.wait_outcome("c1");
  REQUIRE(refused);
  CHECK((*refused)["kind"] == "tool_error");
  CHECK(contains((*refused)["message"], "extra"));
  // Marked as validated by the coordinator, the same arguments reach the handler.
  s.worker.send({{"type", "call"}, {"id", "c2"}, {"tool", "test_echo"}, {"arguments", extra}, {"validated", true}});
  auto ran = s.worker.wait_outcome("c2");
  REQUIRE(ran);
  CHECK((*ran)["type"] == "result");
  s.worker.send({{"type", "call"}, {"id", "c3"}, {"tool", "test_echo"}, {"arguments", extra}, {"validated", "yes"}});
  CHECK(exited_with(s.worker.wait_exit(), 3));
  CHECK(contains(s.worker.stderr_text(), "\"validated\" that is not a boolean"));
}

TEST_CASE("a call to a tool the worker does not serve is answered unknown_tool") {
  Started s("parser");
  s.worker.call("c1", "test_sleep", {{"ms", 1}});
  auto error = s.worker.wait_outcome("c1");
  REQUIRE(error);
  CHECK((*error)["type"] == "error");
  CHECK((*error)["kind"] == "unknown_tool");
  CHECK(contains((*error)["message"], "code_parse"));
  // Nothing ran, so the worker is not busy.
  s.worker.call("c2", "code_parse", {{"code", "int x;"}, {"language", "c"}});
  auto next = s.worker.wait_outcome("c2");
  REQUIRE(next);
  CHECK((*next)["type"] == "result");
}

TEST_CASE("one call runs and max_waiting wait; the next is answered busy, and the held calls finish in order") {
  Started s("testkit");
  REQUIRE(s.hello.contains("max_waiting"));
  const int waiting = s.hello["max_waiting"].get<int>();
  CHECK(waiting >= 1);
  s.worker.call("c1", "test_sleep", {{"ms", 400}});
  for (int i = 0; i < waiting; ++i) s.worker.call("w" + std::to_string(i), "test_echo", {{"value", i}});
  s.worker.call("over", "test_echo", {{"value", -1}});
  auto busy = s.worker.wait_outcome("over", 1s);
  REQUIRE(busy);
  CHECK((*busy)["kind"] == "busy");
  CHECK(contains((*busy)["message"], "c1"));
  auto first = s.worker.wait_outcome("c1");
  REQUIRE(first);
  CHECK((*first)["type"] == "result");
  CHECK((*first)["structured"]["slept_ms"] == 400);
  for (int i = 0; i < waiting; ++i) {
    auto held = s.worker.wait_outcome("w" + std::to_string(i));
    REQUIRE(held);
    CHECK((*held)["structured"]["value"] == i);
  }
}

TEST_CASE("a waiting call that is cancelled never starts and is answered at once") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 400}});
  s.worker.call("c2", "test_sleep", {{"ms", 5000}});
  s.worker.send({{"type", "cancel"}, {"id", "c2"}});
  auto cancelled = s.worker.wait_outcome("c2", 300ms);
  REQUIRE(cancelled);
  CHECK((*cancelled)["kind"] == "cancelled");
  auto first = s.worker.wait_outcome("c1");
  REQUIRE(first);
  CHECK((*first)["type"] == "result");
}

TEST_CASE("the next call sent right after a result is never refused as busy") {
  Started s("testkit");
  for (int i = 0; i < 200; ++i) {
    std::string id = "c" + std::to_string(i);
    s.worker.call(id, "test_echo", {{"value", i}});
    auto result = s.worker.wait_outcome(id);
    REQUIRE(result);
    REQUIRE_MESSAGE((*result)["type"] == "result", result->dump());
    CHECK((*result)["structured"]["value"] == i);
  }
}

TEST_CASE("a ping is answered at once while a call runs") {
  Started s("testkit");
  s.worker.send({{"type", "ping"}, {"seq", 1}});
  auto idle = s.worker.wait_type("pong");
  REQUIRE(idle);
  CHECK((*idle)["seq"] == 1);
  CHECK((*idle)["busy"] == false);
  CHECK((*idle)["calls"] == 0);
  CHECK((*idle)["running"] == 0);
  CHECK((*idle)["rss_bytes"].get<std::uint64_t>() > 0);

  s.worker.call("c1", "test_sleep", {{"ms", 500}});
  wait_running(s.worker);
  auto sent = Clock::now();
  s.worker.send({{"type", "ping"}, {"seq", 2}});
  auto pong = s.worker.wait_type("pong", 1s);
  REQUIRE(pong);
  CHECK(ms_since(sent) < 200);
  CHECK((*pong)["seq"] == 2);
  CHECK((*pong)["busy"] == true);
  CHECK((*pong)["calls"] == 0);
  // The pong came before the call's result.
  CHECK_FALSE(s.worker.wait_outcome("c1", 0ms).has_value());
  REQUIRE(s.worker.wait_outcome("c1"));

  s.worker.send({{"type", "ping"}, {"seq", 3}});
  auto after = s.worker.wait_type("pong");
  REQUIRE(after);
  CHECK((*after)["busy"] == false);
  CHECK((*after)["calls"] == 1);
}

TEST_CASE("cancel stops a running call quickly, and the worker then serves the next call") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 10000}});
  wait_running(s.worker);
  auto sent = Clock::now();
  s.worker.send({{"type", "cancel"}, {"id", "c1"}});
  auto cancelled = s.worker.wait_outcome("c1", 2s);
  REQUIRE(cancelled);
  CHECK(ms_since(sent) < 500 + kExitMs);
  CHECK((*cancelled)["type"] == "error");
  CHECK((*cancelled)["kind"] == "cancelled");

  s.worker.call("c2", "test_echo", {{"value", "next"}});
  auto next = s.worker.wait_outcome("c2");
  REQUIRE(next);
  CHECK((*next)["structured"]["value"] == "next");
}

TEST_CASE("a cancel for a call that is not running is ignored") {
  Started s("testkit");
  s.worker.send({{"type", "cancel"}, {"id", "nothing"}});
  s.worker.call("c1", "test_sleep", {{"ms", 100}});
  s.worker.send({{"type", "cancel"}, {"id", "c0"}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["type"] == "result");
  // Exactly one outcome per call.
  CHECK_FALSE(s.worker.wait_outcome("c1", 200ms).has_value());
  CHECK_FALSE(s.worker.wait_outcome("nothing", 0ms).has_value());
}

TEST_CASE("a call's deadline_ms cancels it softly when it passes") {
  Started s("testkit");
  auto sent = Clock::now();
  s.worker.call("c1", "test_sleep", {{"ms", 10000}}, 150);
  auto outcome = s.worker.wait_outcome("c1", 3s);
  REQUIRE(outcome);
  auto took = ms_since(sent);
  CHECK(took >= 140);
  CHECK(took < 1000);
  CHECK((*outcome)["kind"] == "cancelled");
}

TEST_CASE("progress frames carry the call id, grow, and end at the total") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 600}, {"steps", 6}});
  REQUIRE(s.worker.wait_outcome("c1"));
  std::vector<json> progress;
  for (const auto& frame : s.worker.history())
    if (frame["type"] == "progress") progress.push_back(frame);
  // One per step, unless the scheduler bunched two steps closer than 50 ms.
  REQUIRE(progress.size() >= 3);
  CHECK(progress.size() <= 6);
  double last = 0;
  for (const auto& p : progress) {
    CHECK(p["id"] == "c1");
    CHECK(p["total"] == 6);
    CHECK(p["progress"].get<double>() > last);
    CHECK(p["message"].is_string());
    last = p["progress"].get<double>();
  }
  CHECK(progress.back()["progress"] == 6);
  CHECK(progress.back()["message"] == "step 6 of 6");
}

TEST_CASE("progress is limited to one frame per 50 ms, but the final value always arrives") {
  Started s("testkit");
  // 200 steps of 2 ms: 200 reports in 400 ms.
  s.worker.call("c1", "test_sleep", {{"ms", 400}, {"steps", 200}});
  REQUIRE(s.worker.wait_outcome("c1"));
  std::vector<json> progress;
  for (const auto& frame : s.worker.history())
    if (frame["type"] == "progress") progress.push_back(frame);
  REQUIRE(progress.size() >= 2);
  CHECK(progress.size() <= 400 / 50 + 2);
  CHECK(progress.back()["progress"] == 200);
  // Progress comes before the outcome.
  std::size_t result_at = 0, last_progress_at = 0;
  for (std::size_t i = 0; i < s.worker.history().size(); ++i) {
    if (s.worker.history()[i]["type"] == "result") result_at = i;
    if (s.worker.history()[i]["type"] == "progress") last_progress_at = i;
  }
  CHECK(last_progress_at < result_at);
}

TEST_CASE("tool logs arrive in telemetry frames tagged with the call id, with metrics") {
  Started s("testkit");
  s.worker.call("c1", "test_echo", {{"value", 1}, {"log", "hello from a tool"}});
  REQUIRE(s.worker.wait_outcome("c1"));
  auto telemetry = s.worker.wait_type("telemetry", 2s);
  REQUIRE(telemetry);
  REQUIRE((*telemetry)["logs"].size() == 1);
  const json& record = (*telemetry)["logs"][0];
  CHECK(record["msg"] == "hello from a tool");
  CHECK(record["level"] == "info");
  CHECK(record["call"] == "c1");
  CHECK(record["ts"].is_string());
  const json& metrics = (*telemetry)["metrics"];
  CHECK(metrics["rss_bytes"].get<std::uint64_t>() > 0);
  CHECK(metrics["cpu_ms"].is_number_unsigned());
  CHECK(metrics["calls"].is_number_unsigned());
  CHECK_FALSE(telemetry->contains("dropped"));
}

TEST_CASE("no telemetry frame is sent when there is nothing to say") {
  Started s("testkit");
  s.worker.call("c1", "test_echo", {{"value", 1}});  // logs nothing at info level
  REQUIRE(s.worker.wait_outcome("c1"));
  CHECK_FALSE(s.worker.wait_type("telemetry", 300ms).has_value());
}

TEST_CASE("the configured log level filters what telemetry carries") {
  WorkerHarness::Options quiet;
  quiet.config = mcpd::test::worker_config(false, "warning").dump();
  Started s("testkit", quiet);
  s.worker.call("c1", "test_echo", {{"log", "info is below warning"}});
  REQUIRE(s.worker.wait_outcome("c1"));
  CHECK_FALSE(s.worker.wait_type("telemetry", 300ms).has_value());

  WorkerHarness::Options verbose;
  verbose.config = mcpd::test::worker_config(false, "debug").dump();
  Started d("testkit", verbose);
  d.worker.call("c1", "test_echo", {{"value", 1}});
  REQUIRE(d.worker.wait_outcome("c1"));
  std::set<std::string> messages;
  for (int i = 0; i < 2 && messages.size() < 2; ++i)
    if (auto t = d.worker.wait_type("telemetry", 1s))
      for (const auto& record : (*t)["logs"]) {
        CHECK(record["call"] == "c1");
        messages.insert(record["msg"].get<std::string>());
      }
  CHECK(messages == std::set<std::string>{"call started", "call finished"});
}

TEST_CASE("telemetry is batched and bounded: at most 1000 records queued, the rest counted as dropped") {
  Started s("testkit");
  constexpr int kLogs = 20000;
  s.worker.call("c1", "test_echo", {{"log", "flood"}, {"log_repeat", kLogs}});
  REQUIRE(s.worker.wait_outcome("c1"));
  std::uint64_t received = 0, dropped = 0;
  int frames = 0;
  while (received + dropped < kLogs) {
    auto t = s.worker.wait_type("telemetry", 1s);
    if (!t) break;
    ++frames;
    CHECK((*t)["logs"].size() <= 1000);
    received += (*t)["logs"].size();
    dropped += t->value("dropped", std::uint64_t{0});
  }
  CHECK(received + dropped == kLogs);
  CHECK(dropped > 0);
  CHECK(frames >= 1);
}

// ---------------------------------------------------------------------------------------------
// Ending

TEST_CASE("closing stdin ends an idle worker with status 0") {
  Started s("parser");
  auto closed = Clock::now();
  s.worker.close_stdin();
  auto status = s.worker.wait_exit(2s);
  CHECK_MESSAGE(exited_with(status, 0), describe(status));
  CHECK(ms_since(closed) < 500 + kExitMs);
}

TEST_CASE("closing stdin ends the worker with status 0 promptly, even mid-call in a tool that ignores cancel") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 60000}, {"ignore_cancel", true}});
  wait_running(s.worker);
  auto closed = Clock::now();
  s.worker.close_stdin();
  auto status = s.worker.wait_exit(2s);
  auto took = ms_since(closed);
  CHECK_MESSAGE(exited_with(status, 0), describe(status));
  CHECK(took < 300 + kExitMs);
}

TEST_CASE("shutdown lets the running call finish, sends its result, then exits 0") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 300}});
  wait_running(s.worker);
  s.worker.send({{"type", "shutdown"}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["type"] == "result");
  CHECK(s.worker.drain());
  CHECK(exited_with(s.worker.wait_exit(), 0));
}

TEST_CASE("shutdown of an idle worker exits 0 at once") {
  Started s("parser");
  auto sent = Clock::now();
  s.worker.send({{"type", "shutdown"}});
  CHECK(exited_with(s.worker.wait_exit(2s), 0));
  CHECK(ms_since(sent) < 500 + kExitMs);
}

TEST_CASE("shutdown waits no longer than the running call's deadline") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 60000}, {"ignore_cancel", true}}, 200);
  s.worker.send({{"type", "shutdown"}});
  auto sent = Clock::now();
  auto status = s.worker.wait_exit(3s);
  CHECK_MESSAGE(exited_with(status, 0), describe(status));
  CHECK(ms_since(sent) < 1500 + kExitMs);
}

TEST_CASE("a coordinator that breaks the protocol makes the worker exit 3") {
  SUBCASE("garbage bytes") {
    Started s("testkit");
    s.worker.send_raw(std::string("\x00\x00\x00\x03" "abc", 7));
    CHECK(exited_with(s.worker.wait_exit(), 3));
    CHECK(contains(s.worker.stderr_text(), "protocol error"));
  }
  SUBCASE("an unknown frame type") {
    Started s("testkit");
    s.worker.send({{"type", "reboot"}});
    CHECK(exited_with(s.worker.wait_exit(), 3));
    CHECK(contains(s.worker.stderr_text(), "reboot"));
  }
  SUBCASE("a call without an id") {
    Started s("testkit");
    s.worker.send({{"type", "call"}, {"tool", "test_echo"}, {"arguments", json::object()}});
    CHECK(exited_with(s.worker.wait_exit(), 3));
  }
  SUBCASE("a ping without a seq") {
    Started s("testkit");
    s.worker.send({{"type", "ping"}});
    CHECK(exited_with(s.worker.wait_exit(), 3));
  }
}

TEST_CASE("a worker whose parent dies is killed by the kernel") {
  // We become the subreaper, so the orphaned worker is reparented to us and we can see how it died
  // (and reap it). Its stdin stays open on our side, so only PR_SET_PDEATHSIG can end it.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  {
    WorkerHarness::Options options;
    // A non-interactive sh gives background jobs /dev/null as stdin; pass ours through fd 3.
    options.argv = {"/bin/sh", "-c", "exec 3<&0; \"$0\" 0<&3 3<&- & wait", mcpd::test::worker_binary("testkit")};
    WorkerHarness shell("testkit", options);
    auto hello = shell.wait_type("hello");
    REQUIRE(hello);
    pid_t worker = (*hello)["pid"].get<pid_t>();
    CHECK(worker != shell.pid());
    ::kill(shell.pid(), SIGKILL);
    CHECK(killed_by(shell.wait_exit(), SIGKILL));
    std::optional<int> status;
    auto until = Clock::now() + 1s;
    while (!status && Clock::now() < until) {
      int s = 0;
      if (::waitpid(worker, &s, WNOHANG) == worker) status = s;
      else std::this_thread::sleep_for(5ms);
    }
    if (!status) {
      ::kill(worker, SIGKILL);
      ::waitpid(worker, nullptr, 0);
    }
    CHECK_MESSAGE(killed_by(status, SIGKILL), describe(status));
  }
  ::prctl(PR_SET_CHILD_SUBREAPER, 0);
}

// ---------------------------------------------------------------------------------------------
// Stray output and test hooks

TEST_CASE("stray stdout writes from a tool go to stderr and never corrupt frames") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.call("c1", "test_fault", {{"fault", "stdout"}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["structured"]["fault"] == "stdout");
  s.worker.call("c2", "test_echo", {{"value", "still fine"}});
  auto next = s.worker.wait_outcome("c2");
  REQUIRE(next);
  CHECK((*next)["structured"]["value"] == "still fine");
  CHECK_FALSE(s.worker.frame_error().has_value());
  s.worker.close_stdin();
  CHECK(exited_with(s.worker.wait_exit(), 0));
  auto err = s.worker.stderr_text();
  CHECK(contains(err, "stray printf from a tool"));
  CHECK(contains(err, "stray std::cout from a tool"));
  CHECK(contains(err, "stray write(1) from a tool"));
}

TEST_CASE("hook exit_before_hello: the worker exits 1 without a frame") {
  WorkerHarness worker("testkit", WorkerHarness::hooks({"MCPD_TEST_WORKER_FAULT=exit_before_hello"}));
  CHECK(exited_with(worker.wait_exit(), 1));
  CHECK(worker.drain());
  CHECK(worker.history().empty());
}

TEST_CASE("hook bad_version: hello says protocol 99") {
  Started s("testkit", WorkerHarness::hooks({"MCPD_TEST_WORKER_FAULT=bad_version"}));
  CHECK(s.hello["protocol"] == 99);
  CHECK(s.hello["kind"] == "testkit");
}

TEST_CASE("hook garbage_hello: the first bytes are no frame") {
  WorkerHarness worker("testkit", WorkerHarness::hooks({"MCPD_TEST_WORKER_FAULT=garbage_hello"}));
  CHECK_FALSE(worker.wait_type("hello", 500ms).has_value());
  REQUIRE(worker.frame_error().has_value());
  CHECK(worker.history().empty());
  worker.close_stdin();
  CHECK(exited_with(worker.wait_exit(), 0));
}

TEST_CASE("an unknown MCPD_TEST_WORKER_FAULT with hooks on exits 2") {
  WorkerHarness worker("testkit", WorkerHarness::hooks({"MCPD_TEST_WORKER_FAULT=explode"}));
  CHECK(exited_with(worker.wait_exit(), 2));
  CHECK(contains(worker.stderr_text(), "explode"));
}

TEST_CASE("test_fault ok returns a normal result") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.call("c1", "test_fault", {{"fault", "ok"}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["type"] == "result");
  CHECK((*result)["structured"] == json{{"fault", "none"}});
}

TEST_CASE("test_fault crash kills the worker mid-call with SIGABRT") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.call("c1", "test_fault", {{"fault", "crash"}});
  auto status = s.worker.wait_exit();
  CHECK_MESSAGE(killed_by(status, SIGABRT), describe(status));
  CHECK(s.worker.drain());
  CHECK_FALSE(s.worker.wait_outcome("c1", 0ms).has_value());
}

TEST_CASE("test_fault hang never ends the call, ignores cancel, keeps answering pings") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.call("c1", "test_fault", {{"fault", "hang"}});
  // It must have started: a cancel that finds the call still waiting would (rightly) cancel it unstarted.
  wait_running(s.worker);
  s.worker.send({{"type", "cancel"}, {"id", "c1"}});
  CHECK_FALSE(s.worker.wait_outcome("c1", 300ms).has_value());
  s.worker.send({{"type", "ping"}, {"seq", 9}});
  auto pong = s.worker.wait_type("pong", 1s);
  REQUIRE(pong);
  CHECK((*pong)["busy"] == true);
  auto closed = Clock::now();
  s.worker.close_stdin();
  CHECK(exited_with(s.worker.wait_exit(2s), 0));
  CHECK(ms_since(closed) < 300 + kExitMs);
}

TEST_CASE("test_fault garbage puts bytes on the frame channel that no reader accepts") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.call("c1", "test_fault", {{"fault", "garbage"}});
  s.worker.drain(500ms);
  REQUIRE(s.worker.frame_error().has_value());
  // The worker itself runs on.
  CHECK_FALSE(s.worker.wait_exit(0ms).has_value());
  s.worker.close_stdin();
  CHECK(exited_with(s.worker.wait_exit(), 0));
}

TEST_CASE("test_fault exit ends the worker with status 7 mid-call") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.call("c1", "test_fault", {{"fault", "exit"}});
  auto status = s.worker.wait_exit();
  CHECK_MESSAGE(exited_with(status, 7), describe(status));
  CHECK(s.worker.drain());
  CHECK_FALSE(s.worker.wait_outcome("c1", 0ms).has_value());
}

TEST_CASE("test_fault leak keeps the memory it touched, and the worker reports it") {
  Started s("testkit", WorkerHarness::hooks());
  s.worker.send({{"type", "ping"}, {"seq", 1}});
  auto before = s.worker.wait_type("pong");
  REQUIRE(before);
  s.worker.call("c1", "test_fault", {{"fault", "leak"}, {"mb", 48}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  REQUIRE((*result)["type"] == "result");
  CHECK((*result)["structured"]["mb"] == 48);
  s.worker.send({{"type", "ping"}, {"seq", 2}});
  auto after = s.worker.wait_type("pong");
  REQUIRE(after);
  auto grown = (*after)["rss_bytes"].get<std::int64_t>() - (*before)["rss_bytes"].get<std::int64_t>();
  CHECK(grown >= std::int64_t{48} << 20);
}

TEST_CASE("test_fault works in every kind when hooks are on, though only testkit lists it") {
  Started s("parser", WorkerHarness::hooks());
  CHECK(s.hello["tools"] == json({"code_parse", "code_outline", "code_query"}));
  s.worker.call("c1", "test_fault", {{"fault", "ok"}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["type"] == "result");
}

TEST_CASE("with test hooks off, test_fault refuses and the fault variables are ignored") {
  WorkerHarness::Options options;  // test_hooks false
  options.env = {"MCPD_TEST_WORKER_FAULT=exit_before_hello", "MCPD_TEST_WORKER_DIVERGE=1"};
  Started s("testkit", options);
  CHECK(s.hello["protocol"] == 3);
  for (const char* fault : {"crash", "exit", "hang", "garbage"}) {
    std::string id = std::string("c-") + fault;
    s.worker.call(id, "test_fault", {{"fault", fault}});
    auto outcome = s.worker.wait_outcome(id);
    REQUIRE(outcome);
    CHECK((*outcome)["kind"] == "tool_error");
    CHECK(contains((*outcome)["message"], "test hooks"));
  }
  s.worker.call("c2", "test_echo", {{"value", 1}});
  auto echo = s.worker.wait_outcome("c2");
  REQUIRE(echo);
  CHECK_FALSE((*echo)["structured"].contains("diverged"));
  CHECK_FALSE(s.worker.frame_error().has_value());

  Started parser("parser", options);
  parser.worker.call("c1", "test_fault", {{"fault", "crash"}});
  auto unknown = parser.worker.wait_outcome("c1");
  REQUIRE(unknown);
  CHECK((*unknown)["kind"] == "unknown_tool");
}

TEST_CASE("hook MCPD_TEST_WORKER_DIVERGE=1 marks every result diverged") {
  Started s("testkit", WorkerHarness::hooks({"MCPD_TEST_WORKER_DIVERGE=1"}));
  s.worker.call("c1", "test_echo", {{"value", 3}});
  auto result = s.worker.wait_outcome("c1");
  REQUIRE(result);
  CHECK((*result)["structured"]["value"] == 3);
  CHECK((*result)["structured"]["diverged"] == true);
}

TEST_CASE("the testkit's test_fault refuses when run in-process") {
  auto tools = mcpd::testkit_tools();
  const mcpd::Tool* fault = nullptr;
  for (const auto& t : tools)
    if (t.name == "test_fault") fault = &t;
  REQUIRE(fault != nullptr);
  CHECK(fault->input_schema["properties"]["fault"]["enum"].size() == 12);
  CHECK(fault->annotations.idempotent == false);
  mcpd::ToolContext context;
  CHECK_THROWS_AS(fault->handler({{"fault", "crash"}}, context), mcpd::ToolError);
}

TEST_CASE("no worker is left behind: this test process has no child, zombie or not") {
  std::vector<std::string> children;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::ifstream stat(entry.path() / "stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == ::getpid()) children.push_back(line);
  }
  CHECK_MESSAGE(children.empty(), children.size() << " children left, first: " << (children.empty() ? "" : children[0]));
}

TEST_CASE("result_body serializes a result exactly as MCP has it, the text escaped as nlohmann escapes it") {
  mcpd::Tool with_schema;
  with_schema.name = "t";
  with_schema.output_schema = {{"type", "object"}};
  mcpd::ToolResult result;
  result.structured = {{"s", std::string("quote \" backslash \\ nl \n tab \t bell \x07 del \x7f caf\xC3\xA9 bad \xFF")},
                       {"n", {1, 2.5, -3}}};
  json body = json::parse(mcpd::result_body(with_schema, result));
  std::string dumped = result.structured.dump(-1, ' ', false, json::error_handler_t::replace);
  CHECK(body["isError"] == false);
  CHECK(body["content"][0]["type"] == "text");
  CHECK(body["content"][0]["text"] == dumped);
  CHECK(body["structuredContent"] == json::parse(dumped));
  CHECK(mcpd::result_body(with_schema, result).find(json(dumped).dump()) != std::string::npos);

  mcpd::Tool plain;
  plain.name = "p";
  mcpd::ToolResult text_only;
  text_only.text = "line\nnext \x01";
  json plain_body = json::parse(mcpd::result_body(plain, text_only));
  CHECK(plain_body["content"][0]["text"] == "line\nnext \x01");
  CHECK_FALSE(plain_body.contains("structuredContent"));
}

namespace {

TEST_CASE("a validate frame is answered by its own thread, even while a call runs") {
  Started s("testkit");
  s.worker.call("c1", "test_sleep", {{"ms", 1500}});
  wait_running(s.worker);
  s.worker.send({{"type", "validate"}, {"id", "v1"}, {"tool", "test_sleep"}, {"arguments", {{"ms", 1}}}, {"state", "x"}});
  auto validated = s.worker.wait_type("validated", 1s);
  REQUIRE(validated);
  CHECK((*validated)["id"] == "v1");
  CHECK((*validated)["current"] == false);  // a tool that vouches for nothing: never current
  CHECK_FALSE(s.worker.wait_outcome("c1", 10ms).has_value());  // the call is still running
  CHECK(s.worker.wait_outcome("c1", 5s).has_value());
}

TEST_CASE("a search result carries its owner's voucher, which holds until the tree changes") {
  mcpd::test::TempDir t;
  t.write("a.txt", "needle\n");
  WorkerHarness::Options options;
  options.config = json({{"roots", json::array({t.path.string()})}, {"log_level", "info"}}).dump();
  Started s("search", options);
  const json args = {{"pattern", "needle"}};
  // The first calls of a tree run while its watcher is set up: no voucher, not cacheable.
  json cache;
  for (int i = 0; i < 500 && cache.is_null(); ++i) {
    std::string id = "c" + std::to_string(i);
    s.worker.call(id, "search_text", args);
    auto result = s.worker.wait_outcome(id, 60s);
    REQUIRE_MESSAGE(result, "stderr: " << s.worker.stderr_text());
    if (result->contains("cache")) cache = (*result)["cache"];
    else std::this_thread::sleep_for(10ms);
  }
  REQUIRE(cache.is_object());
  CHECK(cache["tag"] == t.path.string());
  auto check = [&](const std::string& id, const std::string& state) {
    s.worker.send({{"type", "validate"}, {"id", id}, {"tool", "search_text"}, {"arguments", args}, {"state", state}});
    auto validated = s.worker.wait_for([&](const json& f) { return f["type"] == "validated" && f["id"] == id; });
    REQUIRE(validated);
    return (*validated)["current"].get<bool>();
  };
  CHECK(check("v1", cache["state"]));
  CHECK_FALSE(check("v2", "0123456789abcdef0123456789abcdef"));
  t.write("b.txt", "needle\n");
  // The worker says so unasked, and the old state no longer holds.
  auto pushed = s.worker.wait_type("invalidate", 5s);
  REQUIRE(pushed);
  CHECK((*pushed)["tags"] == json::array({t.path.string()}));
  CHECK_FALSE(check("v3", cache["state"]));
}

TEST_CASE("a validate frame without an id or with arguments that are not an object breaks the protocol") {
  for (const json& frame : {json{{"type", "validate"}, {"tool", "test_echo"}, {"state", "x"}},
                            json{{"type", "validate"}, {"id", "v1"}, {"tool", "test_echo"}, {"state", "x"}, {"arguments", 3}}}) {
    CAPTURE(frame.dump());
    Started s("testkit");
    s.worker.send(frame);
    CHECK(exited_with(s.worker.wait_exit(), 3));
  }
}

}  // namespace
