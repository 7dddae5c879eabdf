// The Modbus tools as a client sees them: the real mcpd, its singleton Modbus worker, a real
// pymodbus server, and a worker SIGKILLed mid-run whose groups resume from SQLite on their own.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <sqlite3.h>

#include <fstream>
#include <iterator>
#include <map>
#include <thread>

#include "fake_modbus_device.h"
#include "mcpd_fixture.h"
#include "modbus_server.h"
#include "eventually.h"
#include "worker_harness.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

std::unique_ptr<McpClient> start(const TempDir& dir, std::vector<std::string> extra = {}) {
  json settings = {{"db_path", (dir.path / "modbus.sqlite").string()}, {"reconnect_backoff_max_ms", 500},
                   {"allowed_hosts", {"127.0.0.1"}}};
  std::vector<std::string> args = {"--modbus", settings.dump()};
  args.insert(args.end(), extra.begin(), extra.end());
  auto client = start_mcpd(args);
  client->initialize();
  return client;
}

json structured(McpClient& client, const std::string& tool, const json& arguments) {
  json r = client.call_tool(tool, arguments);
  INFO(r.dump());
  REQUIRE(r["isError"] == false);
  return r["structuredContent"];
}

std::vector<pid_t> modbus_pids(McpClient& client) {
  std::vector<pid_t> pids;
  json pool = client.call_tool("mcpd_status", json::object())["structuredContent"]["executor"]["pools"]["modbus"];
  for (const auto& w : pool["workers"]) {
    std::string s = w["state"];
    if (s != "dead" && s != "draining") pids.push_back(w["pid"].get<pid_t>());
  }
  return pids;
}

TEST_CASE("mcpd lists the Modbus tools with their annotations") {
  TempDir dir;
  auto client = start(dir);
  std::map<std::string, json> tools;
  json listed = client->request("tools/list")["result"]["tools"];  // named: a temporary's member would dangle
  for (const auto& t : listed) tools[t["name"]] = t;
  for (const char* name : {"modbus_read", "modbus_write", "modbus_group_create", "modbus_group_update",
                           "modbus_group_delete", "modbus_group_start", "modbus_group_stop", "modbus_group_trigger",
                           "modbus_status", "modbus_samples"}) {
    CAPTURE(name);
    REQUIRE(tools.count(name));
  }
  CHECK(tools["modbus_read"]["annotations"]["readOnlyHint"] == true);
  CHECK(tools["modbus_read"]["annotations"]["idempotentHint"] == true);
  CHECK(tools["modbus_read"]["annotations"]["openWorldHint"] == true);
  CHECK(tools["modbus_read"].contains("outputSchema"));
  CHECK(tools["modbus_write"]["annotations"]["destructiveHint"] == true);
  CHECK(tools["modbus_write"]["annotations"]["idempotentHint"] == false);
  for (const char* name : {"modbus_group_create", "modbus_group_start", "modbus_group_stop", "modbus_group_trigger"}) {
    CAPTURE(name);
    CHECK(tools[name]["annotations"]["readOnlyHint"] == false);
    CHECK(tools[name]["annotations"]["idempotentHint"] == false);
  }
}

TEST_CASE("a bad modbus setting stops mcpd at start with the key named") {
  auto client = start_mcpd({"--modbus", R"({"max_running_groups": 0})"});
  auto status = client->process().wait(10s);
  REQUIRE(status);
  CHECK(WEXITSTATUS(*status) == 2);
}

TEST_CASE("through mcpd: a read, a write refused, a group that survives a SIGKILL of the worker") {
  ModbusServer server;
  TempDir dir;
  auto client = start(dir);
  json device = {{"host", "127.0.0.1"}, {"port", server.port()}};

  json read = device;
  read.update({{"table", "holding"}, {"address", 10}, {"type", "float32"}});
  json r = client->call_tool("modbus_read", read);
  REQUIRE(r["isError"] == false);
  CHECK(r["_meta"]["mcpd/path"] == "pool");
  CHECK(r["structuredContent"]["values"][0].get<double>() == doctest::Approx(123.456));

  json write = device;
  write.update({{"table", "holding"}, {"address", 500}, {"values", {1}}});
  json refused = client->call_tool("modbus_write", write);
  CHECK(refused["isError"] == true);
  CHECK(text_of(refused) == "writes are disabled; start mcpd with --allow_writes true");

  json group = device;
  group.update({{"name", "line"}, {"interval_ms", 100}, {"tags", {{{"name", "count"}, {"address", 0}}}}});
  structured(*client, "modbus_group_create", group);
  structured(*client, "modbus_group_start", {{"name", "line"}});
  auto samples = [&] {
    return structured(*client, "modbus_samples", {{"group", "line"}, {"limit", 100000}})["count"].get<std::int64_t>();
  };
  REQUIRE(eventually([&] { return samples() >= 5; }));

  auto pids = modbus_pids(*client);
  REQUIRE(pids.size() == 1);
  REQUIRE(::kill(pids[0], SIGKILL) == 0);
  // The pool restarts the worker; the new one opens the database and resumes the group without a call.
  REQUIRE(eventually([&] {
    auto now = modbus_pids(*client);
    return now.size() == 1 && now[0] != pids[0];
  }));
  std::int64_t after_restart = samples();
  CHECK(eventually([&] { return samples() >= after_restart + 5; }));
  json status = structured(*client, "modbus_status", {{"name", "line"}});
  CHECK(status["groups"][0]["state"] == "running");
  CHECK(status["groups"][0]["success_count"].get<int>() >= 5);
}

}  // namespace

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

/// mcpd on the database `db`, its stderr in `log` (each test its own: the shared fixture log is
/// written by every integration test at once).
std::unique_ptr<McpClient> start_on(const std::filesystem::path& db, const std::filesystem::path& log,
                                    std::vector<std::string> extra = {}) {
  json settings = {{"db_path", db.string()}, {"reconnect_backoff_max_ms", 500}, {"connect_timeout_ms", 500},
                   {"allowed_hosts", {"127.0.0.1"}}};
  std::vector<std::string> argv = {mcpd_binary(), "--root", source_dir(), "--modbus", settings.dump()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess::Options options;
  options.stderr_path = log.string();
  auto client = std::make_unique<McpClient>(argv, options);
  client->initialize();
  return client;
}

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

json one_tag_group(const std::string& name, int port) {
  return {{"name", name}, {"host", "127.0.0.1"}, {"port", port}, {"interval_ms", 100},
          {"tags", {{{"name", "count"}, {"address", 0}}}}};
}

/// Holds the SQLite write lock of `path` from another connection until destroyed.
struct WriteLock {
  sqlite3* db = nullptr;
  explicit WriteLock(const std::filesystem::path& path) {
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    REQUIRE(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  ~WriteLock() {
    sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
};

TEST_CASE("legacy mode: the group runs inside mcpd, an orderly exit writes every sample, a new mcpd resumes it") {
  ModbusServer server;
  TempDir dir;
  auto db = dir.path / "modbus.sqlite";
  std::int64_t polled = 0, closed_at = 0;
  {
    auto first = start_on(db, dir.path / "first.log", {"--mode", "legacy"});
    json created = first->call_tool("modbus_group_create", one_tag_group("line", server.port()));
    REQUIRE(created["isError"] == false);
    CHECK(created["_meta"]["mcpd/path"] == "legacy");
    structured(*first, "modbus_group_start", {{"name", "line"}});
    REQUIRE(eventually([&] {
      return structured(*first, "modbus_samples", {{"group", "line"}, {"limit", 1000}})["count"].get<int>() >= 3;
    }));
    {
      // The writer is held up, so samples wait in the queue when stdin closes: only the flush on
      // the way out stores them.
      WriteLock lock(db);
      REQUIRE(eventually([&] { return structured(*first, "modbus_status", {{"name", "line"}})["writer"]["queued"].get<int>() >= 5; }));
      json status = structured(*first, "modbus_status", {{"name", "line"}});
      polled = status["groups"][0]["success_count"];
      closed_at = wall_ms();
      first->process().close_stdin();
      // The lock is held a while longer, so the exit finds the samples still queued. Nothing tells
      // the outside that mcpd has begun to exit: this wait is time on purpose, and too short a one
      // weakens the test (the writer would store them first) without making it fail wrongly.
      std::this_thread::sleep_for(300ms);
    }
    auto exit = first->process().wait(5s);
    REQUIRE(exit);
    CHECK(WIFEXITED(*exit));
    CHECK(WEXITSTATUS(*exit) == 0);
  }
  auto second = start_on(db, dir.path / "second.log", {"--mode", "legacy"});
  json before_exit = structured(*second, "modbus_samples", {{"group", "line"}, {"to", closed_at}, {"limit", 100000}});
  CHECK(before_exit["count"].get<std::int64_t>() >= polled);  // none lost, the queued ones included
  json status = structured(*second, "modbus_status", {{"name", "line"}});
  CHECK(status["groups"][0]["state"] == "running");  // resumed without a call to start it
  std::int64_t restarted = wall_ms();
  CHECK(eventually([&] {
    return structured(*second, "modbus_samples", {{"group", "line"}, {"from", restarted}, {"limit", 1000}})["count"]
               .get<int>() >= 3;
  }));
  CHECK(has(read_file(dir.path / "second.log"), "group 'line' resumed from " + db.string()));
}

TEST_CASE("one database, several processes: the first poller keeps it, the others name its pid; failures are logged") {
  ModbusServer server;
  TempDir dir;
  auto db = dir.path / "modbus.sqlite";
  auto pool = start_on(db, dir.path / "pool.log");
  int dead_port = free_tcp_port();
  structured(*pool, "modbus_group_create", one_tag_group("line", server.port()));
  structured(*pool, "modbus_group_create", one_tag_group("dead", dead_port));
  structured(*pool, "modbus_group_start", {{"name", "line"}});
  structured(*pool, "modbus_group_start", {{"name", "dead"}});
  auto samples = [&] {
    return structured(*pool, "modbus_samples", {{"group", "line"}, {"limit", 100000}})["count"].get<std::int64_t>();
  };
  REQUIRE(eventually([&] { return samples() >= 3; }));
  auto pids = modbus_pids(*pool);
  REQUIRE(pids.size() == 1);
  std::string holder = "is in use by another poller (pid " + std::to_string(pids[0]);

  // A legacy mcpd (its poller in-process) and a second pool mcpd (its own worker) on the same file.
  auto legacy = start_on(db, dir.path / "legacy.log", {"--mode", "legacy"});
  auto other_pool = start_on(db, dir.path / "other_pool.log");
  for (McpClient* client : {legacy.get(), other_pool.get()}) {
    for (const auto& [tool, arguments] : std::vector<std::pair<std::string, json>>{
             {"modbus_status", json::object()},
             {"modbus_group_create", one_tag_group("twice", server.port())},
             {"modbus_group_start", {{"name", "line"}}}}) {
      json r = client->call_tool(tool, arguments);
      const auto& name = tool;  // clang 14 cannot capture a structured binding in CAPTURE's lambda
      CAPTURE(name);
      CAPTURE(r.dump());
      CHECK(r["isError"] == true);
      CHECK(has(text_of(r), holder));
    }
    // On-demand reads need no database.
    json read = client->call_tool("modbus_read", {{"host", "127.0.0.1"}, {"port", server.port()}, {"table", "holding"}, {"address", 0}});
    CHECK(read["structuredContent"]["registers"][0] == 1234);
  }
  // The first one never noticed.
  std::int64_t now = samples();
  CHECK(eventually([&] { return samples() >= now + 5; }));
  json line = structured(*pool, "modbus_status", {{"name", "line"}})["groups"][0];
  CHECK(line["error_count"] == 0);
  CHECK(structured(*pool, "modbus_status", json::object())["groups"].size() == 2);  // "twice" never got in

  // The dead device's failure reached mcpd's log from the worker: group, device, error, retry plan.
  std::string device = "127.0.0.1:" + std::to_string(dead_port);
  CHECK(eventually([&] {
    return has(read_file(dir.path / "pool.log"), "group 'dead' on " + device + " unit 1: poll failed (1 in a row): cannot connect to " + device + ": Connection refused; polling goes on every 100 ms; the connection is retried with backoff");
  }, 5s));
  json dead = structured(*pool, "modbus_status", {{"name", "dead"}})["groups"][0];
  CHECK(dead["error_count"].get<int>() >= 2);
  CHECK(has(read_file(dir.path / "legacy.log"), "Modbus polling groups unavailable"));
}

TEST_CASE("the Modbus worker runs calls side by side: max_calls in hello, one more waiting, then busy") {
  TempDir dir;
  FakeModbusDevice silent(FakeModbusDevice::Fault::silent);
  ModbusServer healthy;
  json config = worker_config();
  config["settings"] = {{"modbus",
                         {{"db_path", (dir.path / "m.sqlite").string()},
                          {"allowed_hosts", {"127.0.0.1"}},
                          {"response_timeout_ms", 60000},
                          {"max_concurrent_calls", 2}}}};
  WorkerHarness::Options options;
  options.config = config.dump();
  WorkerHarness worker("modbus", options);
  auto hello = worker.wait_type("hello", 10s);
  REQUIRE(hello);
  CHECK((*hello)["max_calls"] == 2);

  json hung = {{"host", "127.0.0.1"}, {"port", silent.port()}, {"table", "holding"}, {"address", 0}};
  worker.call("c1", "modbus_read", hung);
  REQUIRE(eventually([&] { return silent.requests() == 1; }));
  // A call to another device runs beside the one that waits.
  worker.call("c2", "modbus_read", {{"host", "127.0.0.1"}, {"port", healthy.port()}, {"table", "holding"}, {"address", 0}});
  auto fast = worker.wait_outcome("c2", 10s);
  REQUIRE(fast);
  CHECK((*fast)["type"] == "result");
  CHECK((*fast)["structured"]["registers"][0] == 1234);
  // Two running and as many waiting as the hello announced are held; the next is refused.
  REQUIRE(hello->contains("max_waiting"));
  const int waiting = (*hello)["max_waiting"].get<int>();
  std::vector<std::string> held = {"c1"};
  for (int i = 0; i < 1 + waiting; ++i) {
    held.push_back("h" + std::to_string(i));
    worker.call(held.back(), "modbus_read", hung);
  }
  worker.call("over", "modbus_read", hung);
  auto busy = worker.wait_outcome("over", 10s);
  REQUIRE(busy);
  CHECK((*busy)["kind"] == "busy");
  CHECK(has((*busy)["message"], "holds at most " + std::to_string(2 + waiting) + " calls (2 running, " +
                                    std::to_string(waiting) + " waiting)"));
  for (const auto& id : held) {
    CAPTURE(id);
    worker.send({{"type", "cancel"}, {"id", id}});
    auto outcome = worker.wait_outcome(id, 10s);
    REQUIRE(outcome);
    CHECK((*outcome)["kind"] == "cancelled");
  }
}

}  // namespace
