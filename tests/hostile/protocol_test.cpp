// Hostile input to the coordinator itself, through the real mcpd: every optional field of every
// message absent, null or of the wrong type; lifecycle out of order; ids and batch elements of every
// kind; a client that stops reading its stdout or closes it; a worker stopped with SIGSTOP.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "eventually.h"
#include "hostile_support.h"
#include "jsonrpc.h"

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

namespace {

json status(McpClient& client) { return client.call_tool("mcpd_status", json::object())["structuredContent"]; }

/// What a hostile line must get back: a JSON-RPC error with this code, a result, or nothing.
struct Expect {
  enum class Kind { error, result, nothing } kind;
  int code = 0;
};
Expect error(int code) { return {Expect::Kind::error, code}; }
Expect result() { return {Expect::Kind::result, 0}; }
Expect nothing() { return {Expect::Kind::nothing, 0}; }

struct Case {
  std::string what;
  std::string line;       // sent as is, a newline added
  std::optional<json> id;  // the id the answer carries; nullopt: id null (or no answer at all)
  Expect expect;
};

/// Sends `c.line` and checks the answer, then that mcpd still serves.
void run_case(McpClient& client, const Case& c) {
  CAPTURE(c.what);
  CAPTURE(c.line);
  client.send_raw(c.line + "\n");
  std::optional<json> answer;
  if (c.expect.kind != Expect::Kind::nothing) {
    answer = c.id ? client.wait_response(*c.id, 5s) : client.wait_unmatched(5s);
    REQUIRE_MESSAGE(answer, "no answer");
    if (c.expect.kind == Expect::Kind::error) {
      REQUIRE_MESSAGE(answer->contains("error"), answer->dump());
      CHECK((*answer)["error"]["code"] == c.expect.code);
      CHECK_FALSE((*answer)["error"]["message"].get<std::string>().empty());
    } else {
      CHECK_MESSAGE(answer->contains("result"), answer->dump());
    }
    if (c.id) CHECK((*answer)["id"] == *c.id);  // ids come back with their type
    else CHECK((*answer)["id"].is_null());
  }
  check_still_serves(client, "code_parse", trivial_parse());
  // Messages are handled in order: anything the line provoked came before the ping's answer.
  auto stray = client.wait_unmatched(0ms);
  CHECK_MESSAGE(!stray, "unexpected message: " << (stray ? stray->dump() : std::string()));
}

std::string request(const json& id, const std::string& method, const std::string& params_json) {
  std::string line = R"({"jsonrpc":"2.0","id":)" + id.dump() + R"(,"method":")" + method + "\"";
  if (!params_json.empty()) line += ",\"params\":" + params_json;
  return line + "}";
}

std::string notification(const std::string& method, const std::string& params_json) {
  std::string line = R"({"jsonrpc":"2.0","method":")" + method + "\"";
  if (!params_json.empty()) line += ",\"params\":" + params_json;
  return line + "}";
}

/// The values a hostile client puts where a field belongs, as JSON text.
const std::vector<std::string>& odd_values() {
  static const std::vector<std::string> values = {"null", "true", "0", "-1", "1.5", "\"\"", "\"x\"", "[]",
                                                  "[1]", "{}", "{\"a\":1}", "18446744073709551615"};
  return values;
}

std::uint64_t vm_rss_kib(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6));
  return 0;
}

}  // namespace

TEST_CASE("before initialize only ping is served; initialize tolerates odd optional fields; a second one is refused") {
  auto client = start_mcpd();
  client->send_raw(request(1, "ping", "") + "\n");
  auto pong = client->wait_response(1, 5s);
  REQUIRE(pong);
  CHECK(pong->contains("result"));
  for (const char* method : {"tools/list", "tools/call", "logging/setLevel"}) {
    client->send_raw(request("early", method, R"({"name":"code_parse","arguments":{},"level":"debug"})") + "\n");
    auto answer = client->wait_response("early", 5s);
    REQUIRE(answer);
    CAPTURE(answer->dump());
    CHECK((*answer)["error"]["code"] == -32600);
    CHECK((*answer)["error"]["message"].get<std::string>().find("not initialized") != std::string::npos);
  }
  // Every optional field of initialize of the wrong type: still an initialize, answered with the
  // newest version since the requested one is not a version.
  client->send_raw(request("init", "initialize", R"({"protocolVersion":42,"capabilities":"x","clientInfo":[1]})") + "\n");
  auto init = client->wait_response("init", 5s);
  REQUIRE(init);
  REQUIRE_MESSAGE(init->contains("result"), init->dump());
  CHECK((*init)["result"]["protocolVersion"] == "2025-11-25");
  client->notify("notifications/initialized");
  check_still_serves(*client, "code_parse", trivial_parse());

  // A second initialize, however it is phrased, is refused and changes nothing.
  std::vector<std::string> second = {"", R"({"protocolVersion":"2024-11-05"})", "{}",
                                     R"({"protocolVersion":null,"clientInfo":null})"};
  for (const auto& params : second)
    run_case(*client, {"second initialize", request("again", "initialize", params), json("again"), error(-32600)});
  run_case(*client, {"second initialize, params an array", request("again", "initialize", "[]"), json("again"),
                     error(-32602)});
  CHECK(status(*client)["server"]["protocol_version"] == "2025-11-25");
}

TEST_CASE("every optional field absent, null or of the wrong type: answered or ignored, never a crash") {
  auto client = start_mcpd({"--cache_enabled", "false"});
  client->initialize();
  std::vector<Case> cases;
  int n = 0;
  auto id = [&n] { return json(++n); };

  // tools/call: name and arguments.
  cases.push_back({"tools/call without params", request(id(), "tools/call", ""), json(n), error(-32602)});
  cases.push_back({"tools/call with params an array", request(id(), "tools/call", "[\"code_parse\"]"), json(n), error(-32602)});
  for (const auto& v : odd_values()) {
    cases.push_back({"tools/call name " + v, request(id(), "tools/call", "{\"name\":" + v + "}"), json(n), error(-32602)});
    if (v == "null" || v == "{}" || v == "{\"a\":1}") continue;  // null is no arguments; objects are arguments
    cases.push_back({"tools/call arguments " + v,
                     request(id(), "tools/call", R"({"name":"code_parse","arguments":)" + v + "}"), json(n), error(-32602)});
  }
  // Progress tokens and _meta of every type: the call runs (no progress for tokens MCP does not allow).
  const std::string args = R"("arguments":{"language":"c","code":"int x;"})";
  cases.push_back({"_meta absent", request(id(), "tools/call", R"({"name":"code_parse",)" + args + "}"), json(n), result()});
  for (const auto& v : odd_values()) {
    cases.push_back({"_meta " + v, request(id(), "tools/call", R"({"name":"code_parse",)" + args + ",\"_meta\":" + v + "}"),
                     json(n), result()});
    cases.push_back({"progressToken " + v,
                     request(id(), "tools/call",
                             R"({"name":"code_parse",)" + args + ",\"_meta\":{\"progressToken\":" + v + "}}"),
                     json(n), result()});
  }
  // logging/setLevel: level absent, null, wrong type, unknown.
  cases.push_back({"setLevel without params", request(id(), "logging/setLevel", ""), json(n), error(-32602)});
  for (const auto& v : odd_values())
    cases.push_back({"setLevel level " + v, request(id(), "logging/setLevel", "{\"level\":" + v + "}"), json(n), error(-32602)});
  cases.push_back({"setLevel level unknown", request(id(), "logging/setLevel", R"({"level":"loud"})"), json(n), error(-32602)});
  cases.push_back({"setLevel level debug", request(id(), "logging/setLevel", R"({"level":"debug"})"), json(n), result()});
  cases.push_back({"setLevel back to warning", request(id(), "logging/setLevel", R"({"level":"warning"})"), json(n), result()});
  // Other methods with odd params.
  cases.push_back({"ping with params an array", request(id(), "ping", "[]"), json(n), error(-32602)});
  cases.push_back({"tools/list with odd params", request(id(), "tools/list", R"({"cursor":5})"), json(n), result()});
  cases.push_back({"unknown method", request(id(), "tools/destroy", "{}"), json(n), error(-32601)});
  // Notifications with odd params get no answer at all.
  for (const auto& v : odd_values())
    cases.push_back({"notifications/progress " + v, notification("notifications/progress", "{\"progressToken\":" + v + "}"),
                     std::nullopt, nothing()});
  cases.push_back({"unknown notification", notification("notifications/whatever", "{}"), std::nullopt, nothing()});
  cases.push_back({"initialized again", notification("notifications/initialized", "[]"), std::nullopt, nothing()});

  for (const auto& c : cases) run_case(*client, c);
}

TEST_CASE("ids of every kind: legal ones come back with their type, others get -32600 with id null") {
  auto client = start_mcpd();
  client->initialize();
  for (const json& id : {json("a"), json(""), json(0), json(-1), json(9223372036854775807LL),
                         json(18446744073709551615ULL), json("1")})
    run_case(*client, {"id " + id.dump(), request(id, "ping", ""), id, result()});
  for (std::string id : {"null", "1.5", "true", "false", "{}", "[]", "[1]", "{\"a\":1}", "1e3"})
    run_case(*client, {"id " + id, R"({"jsonrpc":"2.0","id":)" + id + R"(,"method":"ping"})", std::nullopt, error(-32600)});
  // Not a message at all, or not JSON-RPC 2.0: the error carries the id when one could be read.
  const std::vector<std::pair<std::string, std::optional<json>>> invalid = {
      {"5", std::nullopt},
      {"\"x\"", std::nullopt},
      {"null", std::nullopt},
      {"true", std::nullopt},
      {R"({"id":1,"method":"ping"})", json(1)},
      {R"({"jsonrpc":"1.0","id":1,"method":"ping"})", json(1)},
      {R"({"jsonrpc":2,"id":1,"method":"ping"})", json(1)},
      {R"({"jsonrpc":"2.0","id":1,"method":5})", json(1)},
      {R"({"jsonrpc":"2.0","id":1,"method":"ping","params":"x"})", json(1)},
      {R"({"jsonrpc":"2.0","id":1})", json(1)},
      {R"({"jsonrpc":"2.0","id":1,"result":{},"error":{"code":1,"message":"m"}})", std::nullopt},
  };
  for (const auto& [line, id] : invalid) run_case(*client, {"invalid " + line, line, id, error(-32600)});
  run_case(*client, {"not JSON", "{\"jsonrpc\":", std::nullopt, error(-32700)});
  // Responses from the client (we sent no requests) are ignored.
  run_case(*client, {"a response", R"({"jsonrpc":"2.0","id":99,"result":{}})", std::nullopt, nothing()});
  run_case(*client, {"an error response", R"({"jsonrpc":"2.0","id":null,"error":{"code":1,"message":"m"}})", std::nullopt,
                     nothing()});
}

TEST_CASE("batch elements of every type, where batches are allowed and where they are not") {
  {
    auto client = start_mcpd();
    client->initialize("2025-06-18");
    run_case(*client, {"batch on 2025-06-18", R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])", std::nullopt, error(-32600)});
  }
  auto client = start_mcpd();
  client->initialize("2025-03-26");
  run_case(*client, {"empty batch", "[]", std::nullopt, error(-32600)});
  for (const auto& v : odd_values()) {
    if (v == "[]") continue;  // a nested empty array is an element like any other, below
    CAPTURE(v);
    client->send_raw("[" + v + R"(,{"jsonrpc":"2.0","id":"ok","method":"ping"}])" "\n");
    auto batch = client->wait_unmatched(5s);
    REQUIRE(batch);
    REQUIRE_MESSAGE(batch->is_array(), batch->dump());
    REQUIRE(batch->size() == 2);
    int errors = 0, results = 0;
    for (const auto& reply : *batch) {
      if (reply.contains("error")) {
        ++errors;
        CHECK(reply["error"]["code"] == -32600);
        CHECK(reply["id"].is_null());
      } else {
        ++results;
        CHECK(reply["id"] == "ok");
      }
    }
    CHECK(errors == 1);
    CHECK(results == 1);
    check_still_serves(*client, "code_parse", trivial_parse());
  }
  client->send_raw(R"([[],[[]],{"jsonrpc":"2.0","method":"notifications/cancelled"}])" "\n");
  auto batch = client->wait_unmatched(5s);
  REQUIRE(batch);
  REQUIRE(batch->is_array());
  CHECK(batch->size() == 2);  // the two arrays are invalid requests; the notification gets nothing
  check_still_serves(*client, "code_parse", trivial_parse());
  // A batch whose call is cancelled is still answered, without that call's reply.
  client->send_raw(R"([{"jsonrpc":"2.0","id":"s","method":"tools/call","params":{"name":"test_sleep","arguments":{"ms":20000,"tag":"b"}}},)"
                   R"({"jsonrpc":"2.0","id":"p","method":"ping"}])" "\n");
  CHECK(eventually([&] { return status(*client)["server"]["executions_running"] == 1; }));
  client->notify("notifications/cancelled", {{"requestId", "s"}});
  batch = client->wait_unmatched(5s);
  REQUIRE(batch);
  REQUIRE(batch->is_array());
  REQUIRE(batch->size() == 1);
  CHECK((*batch)[0]["id"] == "p");
  check_still_serves(*client, "code_parse", trivial_parse());
  client->send_raw(R"([{"jsonrpc":"2.0","id":"i","method":"initialize","params":{"protocolVersion":"2024-11-05"}}])" "\n");
  batch = client->wait_unmatched(5s);
  REQUIRE(batch);
  REQUIRE(batch->is_array());
  REQUIRE(batch->size() == 1);
  CHECK((*batch)[0]["error"]["code"] == -32600);  // a second initialize, even inside a batch
  CHECK(status(*client)["server"]["protocol_version"] == "2025-03-26");
  check_still_serves(*client, "code_parse", trivial_parse());
}

TEST_CASE("notifications/cancelled with every field absent, null or mistyped, many hundreds of times") {
  auto client = start_mcpd();
  client->initialize();
  std::vector<std::string> params = {"", "[]", "{}", R"({"reason":"no id"})"};
  for (const auto& v : odd_values()) {
    params.push_back("{\"requestId\":" + v + "}");
    params.push_back("{\"requestId\":1,\"reason\":" + v + "}");
    params.push_back("{\"requestId\":\"x\",\"reason\":" + v + "}");
  }
  // Cancels of calls in flight, without a reason (the optional field that used to crash mcpd).
  std::string burst;
  for (int round = 0; round < 20; ++round)
    for (const auto& p : params) burst += notification("notifications/cancelled", p) + "\n";
  client->send_raw(burst);
  check_still_serves(*client, "code_parse", trivial_parse());
  for (int i = 0; i < 300; ++i) {
    json id = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 5000}, {"tag", "c" + std::to_string(i)}}}});
    client->notify("notifications/cancelled", {{"requestId", id}});
  }
  check_still_serves(*client, "code_parse", trivial_parse());
  json server = status(*client)["server"];
  CHECK(server["cancelled"].get<int>() == 300);
  CHECK(eventually([&] { return status(*client)["server"]["in_flight"] == 0; }));
  auto stray = client->wait_unmatched(0ms);
  CHECK_MESSAGE(!stray, (stray ? stray->dump() : std::string()));
}

TEST_CASE("a client that stops reading stdout: input pauses, memory stays bounded, and all is answered when it reads again") {
  constexpr std::size_t bound = 1u << 20;
  auto client = start_mcpd({"--max_output_queue_bytes", std::to_string(bound)});
  client->initialize();
  check_still_serves(*client, "code_parse", trivial_parse());
  pid_t pid = client->process().pid();
  std::uint64_t baseline = vm_rss_kib(pid);
  REQUIRE(baseline > 0);

  client->pause_reading();
  // Flood pings without blocking: stop when the pipe stays full (mcpd stopped reading us) or at a
  // count whose answers alone would be ~40 MB.
  int fd = client->process().stdin_fd();
  int flags = ::fcntl(fd, F_GETFL);
  REQUIRE(::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0);
  constexpr std::int64_t max_pings = 1'000'000, first_id = 1'000'000;
  std::int64_t next = first_id;
  std::string chunk;
  std::size_t off = 0;
  bool blocked = false;
  std::uint64_t peak = baseline;
  while (next - first_id < max_pings || off < chunk.size()) {
    if (off == chunk.size()) {
      peak = std::max(peak, vm_rss_kib(pid));
      chunk.clear();
      off = 0;
      for (int i = 0; i < 1000; ++i)
        chunk += R"({"jsonrpc":"2.0","id":)" + std::to_string(next++) + R"(,"method":"ping"})" "\n";
    }
    ssize_t w = ::write(fd, chunk.data() + off, chunk.size() - off);
    if (w > 0) {
      off += static_cast<std::size_t>(w);
      continue;
    }
    REQUIRE((w < 0 && (errno == EAGAIN || errno == EINTR)));
    pollfd pfd{fd, POLLOUT, 0};
    if (::poll(&pfd, 1, 1000) == 0) {
      blocked = true;
      break;
    }
    peak = std::max(peak, vm_rss_kib(pid));
  }
  peak = std::max(peak, vm_rss_kib(pid));
  REQUIRE(::fcntl(fd, F_SETFL, flags) == 0);
  MESSAGE("sent " << next - first_id << " pings; mcpd RSS " << baseline / 1024 << " MiB before, " << peak / 1024
                  << " MiB at most while flooded");
  CHECK_MESSAGE(blocked, "mcpd read every ping while nobody read its answers");
  CHECK(next - first_id < max_pings);
#ifndef MCPD_SANITIZER_BUILD  // ASan's quarantine keeps freed memory resident: RSS says nothing there
  CHECK(peak < baseline + 24 * 1024);  // the bound is 1 MiB; unbounded, this flood reaches +40 MiB
#endif

  // Reading again: the rest of the chunk goes out, and every ping is answered.
  client->resume_reading();
  client->send_raw(chunk.substr(off));
  std::int64_t missing = 0;
  for (std::int64_t id = first_id; id < next; ++id)
    if (!client->wait_response(json(id), 20s)) ++missing;
  CHECK(missing == 0);
  check_still_serves(*client, "code_parse", trivial_parse());
  json transport = status(*client)["transport"];
  CHECK(transport["input_pauses"].get<int>() >= 1);
  CHECK(transport["input_paused"] == false);
  // The backlog's buffers were given back.
  std::uint64_t after = vm_rss_kib(pid);
  MESSAGE("mcpd RSS after the backlog drained: " << after / 1024 << " MiB");
#ifndef MCPD_SANITIZER_BUILD
  CHECK(after < baseline + 16 * 1024);
#endif
}

TEST_CASE("a closed stdout is logged and ends the session at once, calls in flight cancelled") {
  TempDir dir;
  auto log = dir.path / "stderr.log";
  ChildProcess::Options options;
  options.stderr_path = log.string();
  ChildProcess mcpd({mcpd_binary(), "--root", source_dir(), "--test_tools", "true", "--shutdown_grace_ms", "60000"},
                    options);
  auto send = [&](const json& message) {
    std::string line = message.dump() + "\n";
    REQUIRE(::write(mcpd.stdin_fd(), line.data(), line.size()) == static_cast<ssize_t>(line.size()));
  };
  send(make_request(1, "initialize", {{"protocolVersion", "2025-06-18"}, {"capabilities", json::object()},
                                      {"clientInfo", {{"name", "t"}, {"version", "1"}}}}));
  // Read the initialize answer, so mcpd is known to be up before its stdout goes away.
  std::string got;
  char buf[4096];
  while (got.find('\n') == std::string::npos) {
    ssize_t n = ::read(mcpd.stdout_fd(), buf, sizeof buf);
    REQUIRE(n > 0);
    got.append(buf, static_cast<std::size_t>(n));
  }
  send(make_notification("notifications/initialized"));
  send(make_request(2, "tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 60000}, {"tag", "stuck"}}}}));
  mcpd.close_stdout();
  send(make_request(3, "ping"));  // its answer meets the closed pipe
  auto started = std::chrono::steady_clock::now();
  auto exit = mcpd.wait(15s);
  REQUIRE_MESSAGE(exit, "mcpd kept running with its stdout closed");
  CHECK(WIFEXITED(*exit));
  CHECK(WEXITSTATUS(*exit) == 0);
  CHECK(std::chrono::steady_clock::now() - started < 15s);  // not the 60 s call, not the 60 s grace
  std::ifstream in(log);
  std::stringstream text;
  text << in.rdbuf();
  CHECK(text.str().find("stdout closed") != std::string::npos);
}

TEST_CASE("an idle worker stopped with SIGSTOP: the next call is answered by another worker well before its deadline") {
  auto client = start_mcpd({"--tool_timeout_ms", "30000", "--workers",
                            json{{"testkit", {{"min_workers", 1}, {"max_workers", 2}}}}.dump()});
  client->initialize();
  std::vector<pid_t> idle;
  REQUIRE(eventually([&] {
    idle.clear();
    json pool = status(*client)["executor"]["pools"]["testkit"];
    for (const auto& w : pool["workers"])
      if (w["state"] == "idle") idle.push_back(w["pid"].get<pid_t>());
    return idle.size() == 1;
  }));
  REQUIRE(::kill(idle.front(), SIGSTOP) == 0);
  auto started = std::chrono::steady_clock::now();
  json r = client->call_tool("test_echo", {{"value", "after sigstop"}}, 30s);
  auto took = std::chrono::steady_clock::now() - started;
  CHECK(r["isError"] == false);
  CHECK(r["structuredContent"]["value"] == "after sigstop");
  MESSAGE("answered after " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms");
  CHECK(took < 10s);
  json pool = status(*client)["executor"]["pools"]["testkit"];
  CHECK(pool["missed_pongs"].get<int>() >= 1);
  for (const auto& w : pool["workers"])
    if (w["state"] != "dead") CHECK(w["pid"].get<pid_t>() != idle.front());
  check_still_serves(*client, "test_echo", {{"value", 1}});
  check_still_serves(*client, "code_parse", trivial_parse());
}

TEST_CASE("a stderr nobody reads: calls are still answered, log lines are dropped and counted, and reported later") {
  TempDir dir;
  auto fifo = dir.path / "stderr.fifo";
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  // Our read end keeps the pipe open (so mcpd's writes block rather than fail) and is not read
  // until the end.
  int reader = ::open(fifo.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  REQUIRE(reader >= 0);
  ::fcntl(reader, F_SETPIPE_SZ, 4096);  // the smallest pipe: it fills at once
  ChildProcess::Options options;
  options.stderr_path = fifo.string();
  McpClient client({mcpd_binary(), "--root", source_dir(), "--test_tools", "true", "--log_level", "debug",
                    "--max_log_queue_bytes", "16384", "--cache_enabled", "false"},
                   options);
  client.initialize();
  // Debug logging writes several lines per call: far more than the pipe and the queue hold.
  for (int i = 0; i < 1000; ++i) {
    json r = client.call_tool("code_parse", {{"language", "c"}, {"code", "int x" + std::to_string(i) + ";"}}, 5s);
    REQUIRE_MESSAGE(r["isError"] == false, r.dump());
  }
  json log = status(client)["log"];
  CHECK(log["dropped"].get<std::uint64_t>() > 0);
  CHECK(log["queued_bytes"].get<std::uint64_t>() <= 16384);
  check_still_serves(client, "code_parse", trivial_parse());
  // Drained again, the log says how much it lost.
  std::string text;
  CHECK(eventually([&] {
    char buf[65536];
    for (ssize_t n; (n = ::read(reader, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
    if (text.find("log lines dropped") != std::string::npos) return true;
    client.call_tool("code_parse", trivial_parse(), 2s);  // something new to log, so the writer writes
    return false;
  }));
  ::close(reader);
}
