// The Modbus tools as a client sees them: the real mcpd, its singleton Modbus worker, a real
// pymodbus server, and a worker SIGKILLed mid-run whose groups resume from SQLite on their own.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <map>
#include <thread>

#include "mcpd_fixture.h"
#include "modbus_server.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = 15s) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return predicate();
}

std::unique_ptr<McpClient> start(const TempDir& dir, std::vector<std::string> extra = {}) {
  json settings = {{"db_path", (dir.path / "modbus.sqlite").string()}, {"reconnect_backoff_max_ms", 500}};
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
