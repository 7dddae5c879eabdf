// The worker pool under real faults: real worker processes, real signals, the real mcpd binary.
#include <doctest/doctest.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

#include "mcpd_fixture.h"
#include "eventually.h"
#include "processes.h"

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

namespace {

json status(McpClient& client) {
  return client.call_tool("mcpd_status", json::object())["structuredContent"];
}

json pool_status(McpClient& client, const std::string& kind) {
  return status(client)["executor"]["pools"][kind];
}

/// Pids of the kind's workers that are alive (not dead or draining).
std::vector<pid_t> live_pids(McpClient& client, const std::string& kind, const std::string& state = "") {
  std::vector<pid_t> pids;
  json pool = pool_status(client, kind);  // a named value: ranging over a temporary's member dangles
  for (const auto& w : pool["workers"]) {
    std::string s = w["state"];
    if (s == "dead" || s == "draining") continue;
    if (!state.empty() && s != state) continue;
    pids.push_back(w["pid"].get<pid_t>());
  }
  return pids;
}

bool process_exists(pid_t pid) { return ::kill(pid, 0) == 0 || errno != ESRCH; }

/// A child that has just exited is a zombie until the loop's pidfd handler reaps it (a few ms);
/// one that stays a zombie was never reaped.
void check_no_zombies(pid_t server) {
  auto zombies = [server] {
    int n = 0;
    for (const auto& child : children_of(server)) n += child.state == 'Z';
    return n;
  };
  CHECK_MESSAGE(eventually([&] { return zombies() == 0; }, 2s), "unreaped children of mcpd: " << zombies());
}

std::string workers_config(const std::string& kind, const json& settings) {
  return json{{kind, settings}}.dump();
}

}  // namespace

TEST_CASE("calls run in worker processes by default, and legacy is one setting away") {
  auto client = start_mcpd();
  client->initialize();
  json r = client->call_tool("code_parse", {{"language", "c"}, {"code", "int a;"}});
  CHECK(r["_meta"]["mcpd/path"] == "pool");
  CHECK_FALSE(live_pids(*client, "parser").empty());
  for (pid_t pid : live_pids(*client, "parser")) CHECK(pid != client->process().pid());

  auto legacy = start_mcpd({}, {"MCPD_MODE=legacy"});
  legacy->initialize();
  r = legacy->call_tool("code_parse", {{"language", "c"}, {"code", "int a;"}});
  CHECK(r["_meta"]["mcpd/path"] == "legacy");
  CHECK(pool_status(*legacy, "parser")["workers"].empty());  // legacy mode spawns no workers
}

TEST_CASE("SIGKILL of a worker mid-call: the idempotent call is answered by another worker") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 2}, {"max_workers", 2}})});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 2; }));
  json id = client->send_request("tools/call",
                                 {{"name", "test_sleep"}, {"arguments", {{"ms", 600}, {"tag", "sigkill"}}}});
  std::vector<pid_t> busy;
  REQUIRE(eventually([&] { return !(busy = live_pids(*client, "testkit", "busy")).empty(); }));
  REQUIRE(::kill(busy.front(), SIGKILL) == 0);
  auto response = client->wait_response(id, 10s);
  REQUIRE(response);
  CHECK((*response)["result"]["isError"] == false);
  CHECK((*response)["result"]["structuredContent"]["slept_ms"] == 600);
  json pool = pool_status(*client, "testkit");
  CHECK(pool["retried"] == 1);
  CHECK(pool["restarts"].get<int>() >= 1);
  CHECK(eventually([&] { return live_pids(*client, "testkit").size() == 2; }));
  CHECK(eventually([&] { return process_state(busy.front()) == 0; }));  // killed and reaped
  check_no_zombies(client->process().pid());
}

TEST_CASE("a call waiting inside a busy worker (pipelined) survives that worker's SIGKILL too") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 1}, {"max_workers", 1}})});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 1; }));
  json first = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 500}, {"tag", "p1"}}}});
  json second = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 100}, {"tag", "p2"}}}});
  REQUIRE(eventually([&] {
    json pool = pool_status(*client, "testkit");
    return !pool["workers"].empty() && pool["workers"][0]["calls"].size() == 2;
  }));
  ::kill(live_pids(*client, "testkit").front(), SIGKILL);
  for (const auto& [id, ms] : {std::pair{first, 500}, std::pair{second, 100}}) {
    auto r = client->wait_response(id, 10s);
    REQUIRE(r);
    CHECK((*r)["result"]["structuredContent"]["slept_ms"] == ms);
  }
  CHECK(pool_status(*client, "testkit")["retried"] == 2);
  check_no_zombies(client->process().pid());
}

TEST_CASE("a hung worker: the call times out, the worker is killed and replaced, later calls work") {
  auto client = start_mcpd({"--tool_timeouts_ms", R"({"test_fault": 300})", "--workers",
                            workers_config("testkit", {{"min_workers", 1}, {"max_workers", 1}, {"cancel_grace_ms", 200}})});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 1; }));
  pid_t before = live_pids(*client, "testkit").front();
  json r = client->call_tool("test_fault", {{"fault", "hang"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("timed out") != std::string::npos);
  CHECK(eventually([&] { return !process_exists(before) || process_state(before) == 0; }));
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 1; }));
  CHECK(live_pids(*client, "testkit").front() != before);
  r = client->call_tool("test_echo", {{"value", 42}});
  CHECK(r["structuredContent"]["value"] == 42);
  check_no_zombies(client->process().pid());
}

TEST_CASE("a worker dying in a non-idempotent call: not retried, the error says the effect is unknown") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 1}, {"max_workers", 2}})});
  client->initialize();
  json r = client->call_tool("test_fault", {{"fault", "crash"}}, 20s);
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("not idempotent") != std::string::npos);
  CHECK(text_of(r).find("effect is unknown") != std::string::npos);
  json pool = pool_status(*client, "testkit");
  CHECK(pool["retried"] == 0);
  CHECK(client->call_tool("test_echo", {{"value", "still here"}})["structuredContent"]["value"] == "still here");
  check_no_zombies(client->process().pid());
}

TEST_CASE("a worker that writes garbage is killed and reported; a call that kills two workers is a poison pill") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 1}, {"max_workers", 2}})});
  client->initialize();
  json r = client->call_tool("test_fault_idempotent", {{"fault", "garbage"}}, 20s);
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("poison pill") != std::string::npos);
  json pool = pool_status(*client, "testkit");
  CHECK(pool["protocol_errors"].get<int>() >= 2);
  CHECK(pool["retried"] == 1);
  CHECK(pool["poison_pills"] == 1);
  // A good call in between, though a poison pill is one breaker failure, however many workers it
  // took (tests/hostile/parser_test.cpp sends several in a row).
  CHECK(client->call_tool("test_echo", {{"value", 1}})["structuredContent"]["value"] == 1);
  r = client->call_tool("test_fault_idempotent", {{"fault", "crash"}}, 20s);
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("killed two workers") != std::string::npos);
  CHECK(pool_status(*client, "testkit")["poison_pills"] == 2);
  CHECK(client->call_tool("test_echo", {{"value", "still here"}})["structuredContent"]["value"] == "still here");
  check_no_zombies(client->process().pid());
}

TEST_CASE("a worker speaking the wrong protocol version is killed and reported, not trusted") {
  auto client = start_mcpd({"--workers", workers_config("default", {{"breaker_threshold", 100}})},
                           {"MCPD_TEST_WORKER_FAULT=bad_version"});
  client->initialize();
  CHECK(eventually([&] { return pool_status(*client, "parser")["protocol_errors"].get<int>() >= 1; }));
  CHECK(live_pids(*client, "parser", "idle").empty());
}

TEST_CASE("a crash-looping kind: backoff grows and the breaker opens, then closes when the kind recovers") {
  TempDir dir;
  auto flag = dir.write("broken", "1");
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"breaker_threshold", 3},
                                                                    {"breaker_cooldown_ms", 2000},
                                                                    {"backoff_initial_ms", 20},
                                                                    {"backoff_max_ms", 200}})},
                           {"MCPD_TEST_WORKER_FAULT=exit_before_hello_while:" + flag.string()});
  client->initialize();
  // Workers die before their hello; the restart delay grows with each one.
  REQUIRE(eventually([&] { return pool_status(*client, "testkit")["crash_loop_deaths"].get<int>() >= 3; }));
  json pool = pool_status(*client, "testkit");
  CHECK(pool["backoff_consecutive"].get<int>() >= 3);
  CHECK(pool["breaker"]["state"] != "closed");
  CHECK(pool["breaker"]["opens"].get<int>() >= 1);
  // While open, calls fail fast with a clear error. The breaker cycles open -> half-open (a trial
  // that dies again) -> open, so wait for a moment it is open with time to spare, then call. The
  // cooldown is long enough that a slow machine (or a sanitizer build) reading the status still
  // finds it open with a second to go.
  REQUIRE(eventually([&] {
    json breaker = pool_status(*client, "testkit")["breaker"];
    std::string describe = breaker["describe"];
    auto at = describe.find("next trial in ");
    return breaker["state"] == "open" && at != std::string::npos &&
           std::stoll(describe.substr(at + std::string("next trial in ").size())) >= 1000;
  }));
  json r = client->request("tools/call", {{"name", "test_echo"}, {"arguments", {{"value", 1}}}});
  REQUIRE_MESSAGE(r.contains("error"), r.dump());
  CHECK(r["error"]["code"] == -32001);
  CHECK(r["error"]["message"].get<std::string>().find("circuit breaker") != std::string::npos);
  // The kind is fixed: a trial call goes through and the breaker closes.
  std::filesystem::remove(flag);
  CHECK(eventually([&] {
    json e = client->request("tools/call", {{"name", "test_echo"}, {"arguments", {{"value", 2}}}});
    return e.contains("result") && e["result"]["structuredContent"]["value"] == 2;
  }, 15s));
  CHECK(pool_status(*client, "testkit")["breaker"]["state"] == "closed");
  check_no_zombies(client->process().pid());
}

TEST_CASE("without pidfds (the fallback), dead workers are still reaped and replaced, and mcpd exits") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 2}, {"max_workers", 2}})},
                           {"MCPD_TEST_NO_PIDFD=1"});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 2; }));
  pid_t victim = live_pids(*client, "testkit").front();
  REQUIRE(::kill(victim, SIGKILL) == 0);
  CHECK(eventually([&] { return process_state(victim) == 0; }));  // reaped, not left a zombie
  CHECK(eventually([&] {
    auto pids = live_pids(*client, "testkit", "idle");
    return pids.size() == 2 && std::find(pids.begin(), pids.end(), victim) == pids.end();
  }));
  // A dead worker is erased from the pool, not kept as "dead" forever.
  CHECK(eventually([&] { return pool_status(*client, "testkit")["workers"].size() == 2; }));
  // A call that kills its worker is retried on the other one, like with a pidfd.
  json id = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 400}, {"tag", "nopidfd"}}}});
  std::vector<pid_t> busy;
  REQUIRE(eventually([&] { return !(busy = live_pids(*client, "testkit", "busy")).empty(); }));
  REQUIRE(::kill(busy.front(), SIGKILL) == 0);
  auto response = client->wait_response(id, 10s);
  REQUIRE(response);
  CHECK((*response)["result"]["isError"] == false);
  check_no_zombies(client->process().pid());
  // Shutdown waits for every worker to be reaped: without the fallback it waited forever.
  client->process().close_stdin();
  auto exit = client->process().wait(10s);
  REQUIRE_MESSAGE(exit, "mcpd did not exit after stdin EOF");
  CHECK(WIFEXITED(*exit));
  CHECK(WEXITSTATUS(*exit) == 0);
}

TEST_CASE("a busy worker stopped with SIGSTOP mid-call: missed pings kill it, the idempotent call is retried") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 2}, {"max_workers", 2},
                                                                    {"ping_interval_ms", 200}, {"ping_timeout_ms", 600}})});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 2; }));
  json id = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 1500}, {"tag", "stopped"}}}});
  std::vector<pid_t> busy;
  REQUIRE(eventually([&] { return !(busy = live_pids(*client, "testkit", "busy")).empty(); }));
  REQUIRE(::kill(busy.front(), SIGSTOP) == 0);
  auto response = client->wait_response(id, 20s);
  REQUIRE(response);
  CHECK((*response)["result"]["isError"] == false);
  CHECK((*response)["result"]["structuredContent"]["slept_ms"] == 1500);
  json pool = pool_status(*client, "testkit");
  CHECK(pool["missed_pongs"].get<int>() >= 1);
  CHECK(pool["retried"] == 1);
  CHECK(eventually([&] { return process_state(busy.front()) == 0; }));  // killed and reaped
  check_no_zombies(client->process().pid());
}

TEST_CASE("a worker executable that is missing: a crash loop with a clear reason, and no zombie per attempt") {
  TempDir empty;
  auto client = start_mcpd({"--worker_dir", empty.path.string(), "--workers",
                            workers_config("default", {{"backoff_initial_ms", 10}, {"backoff_max_ms", 50}})});
  client->initialize();
  REQUIRE(eventually([&] { return pool_status(*client, "parser")["crash_loop_deaths"].get<int>() >= 5; }));
  json r = client->request("tools/call", {{"name", "code_parse"}, {"arguments", {{"language", "c"}, {"code", "int x;"}}}});
  std::string text = r.dump();
  CHECK((text.find("circuit breaker") != std::string::npos || text.find("not an executable") != std::string::npos));
  check_no_zombies(client->process().pid());
}

TEST_CASE("chaos: a random worker SIGKILLed every 250 ms, every idempotent call answered correctly") {
  auto client = start_mcpd({"--workers", workers_config("parser", {{"min_workers", 3}, {"max_workers", 4}}),
                            "--cache_enabled", "false"});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "parser", "idle").size() == 3; }));
  std::atomic<bool> stop{false};
  std::atomic<int> kills{0};
  std::thread killer([&] {
    std::mt19937 rng(7);
    while (!stop) {
      std::this_thread::sleep_for(250ms);
      auto pids = live_pids(*client, "parser");
      if (pids.empty()) continue;
      if (::kill(pids[rng() % pids.size()], SIGKILL) == 0) ++kills;
    }
  });
  std::atomic<int> answered{0}, wrong{0};
  std::vector<std::thread> callers;
  auto until = std::chrono::steady_clock::now() + 4s;
  for (int t = 0; t < 8; ++t) {
    callers.emplace_back([&, t] {
      for (int i = 0; std::chrono::steady_clock::now() < until; ++i) {
        std::string name = "f" + std::to_string(t) + "_" + std::to_string(i);
        json r = client->call_tool("code_query", {{"language", "javascript"},
                                                  {"code", "function " + name + "() {}"},
                                                  {"query", "(function_declaration name: (identifier) @n)"}});
        if (!r["isError"].get<bool>() && r["structuredContent"]["captures"][0]["text"] == name) ++answered;
        else ++wrong;
      }
    });
  }
  for (auto& c : callers) c.join();
  stop = true;
  killer.join();
  MESSAGE("chaos: " << answered.load() << " calls answered, " << kills.load() << " workers killed");
  CHECK(kills >= 10);
  CHECK(answered > 100);
  CHECK(wrong == 0);
  json pool = pool_status(*client, "parser");
  CHECK(pool["breaker"]["state"] == "closed");
  CHECK(pool["failed"] == 0);
  CHECK(eventually([&] { return live_pids(*client, "parser").size() >= 3; }));
  check_no_zombies(client->process().pid());
}

TEST_CASE("autoscaling: a burst of slow calls grows the pool to max, idleness shrinks it to min") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 1},
                                                                    {"max_workers", 3},
                                                                    {"idle_timeout_ms", 300},
                                                                    {"scale_down_interval_ms", 100},
                                                                    {"scale_up_cooldown_ms", 200}})});
  client->initialize();
  std::vector<json> ids;
  for (int i = 0; i < 6; ++i)
    ids.push_back(client->send_request(
        "tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 700}, {"tag", "burst" + std::to_string(i)}}}}));
  CHECK(eventually([&] { return live_pids(*client, "testkit").size() == 3; }, 5s));
  for (const auto& id : ids) CHECK(client->wait_response(id, 10s));
  json pool = pool_status(*client, "testkit");
  CHECK(pool["scale_ups"].get<int>() >= 1);
  CHECK(eventually([&] { return live_pids(*client, "testkit").size() == 1; }, 10s));
  CHECK(pool_status(*client, "testkit")["scale_downs"].get<int>() >= 2);
  check_no_zombies(client->process().pid());
}

TEST_CASE("a full queue answers 'server busy' instead of growing without bound") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 1}, {"max_workers", 1}, {"max_queue", 1},
                                                                     {"pipeline_depth", 2}})});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 1; }));
  std::vector<json> ids;
  for (int i = 0; i < 4; ++i)
    ids.push_back(client->send_request(
        "tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 400}, {"tag", "q" + std::to_string(i)}}}}));
  int busy = 0, ok = 0;
  for (const auto& id : ids) {
    auto r = client->wait_response(id, 10s);
    REQUIRE(r);
    if (r->contains("error")) {
      CHECK((*r)["error"]["code"] == -32001);
      CHECK((*r)["error"]["message"].get<std::string>().find("max_queue") != std::string::npos);
      ++busy;
    } else {
      ++ok;
    }
  }
  CHECK(ok == 3);  // one running, one waiting inside the worker (pipelined), one in the queue
  CHECK(busy == 1);
}

TEST_CASE("a worker over its soft memory limit is recycled after its call") {
  auto client = start_mcpd({"--workers", workers_config("testkit", {{"min_workers", 1}, {"memory_soft_limit_mb", 64}})});
  client->initialize();
  json r = client->call_tool("test_fault", {{"fault", "leak"}, {"mb", 128}});
  CHECK(r["isError"] == false);
  CHECK(eventually([&] { return pool_status(*client, "testkit")["recycled"].get<int>() == 1; }));
  CHECK(eventually([&] { return live_pids(*client, "testkit", "idle").size() == 1; }));
  check_no_zombies(client->process().pid());
}

TEST_CASE("shadow mode counts matches, and reports a divergent result as a mismatch") {
  {
    auto client = start_mcpd({"--mode", "shadow"});
    client->initialize();
    for (int i = 0; i < 3; ++i) client->call_tool("test_echo", {{"value", i}});
    CHECK(eventually([&] { return status(*client)["executor"]["shadow"]["matches"] == 3; }));
    CHECK(status(*client)["executor"]["shadow"]["mismatches"] == 0);
    // A tool that is not read-only runs once, on the pool: shadowing a write would do it twice.
    json r = client->call_tool("test_fault", {{"fault", "ok"}});
    CHECK(r["_meta"]["mcpd/path"] == "pool");
    CHECK(status(*client)["executor"]["shadow"]["compared"] == 3);
  }
  {
    auto client = start_mcpd({"--mode", "shadow"}, {"MCPD_TEST_WORKER_DIVERGE=1"});
    client->initialize();
    json r = client->call_tool("test_echo", {{"value", "x"}});
    CHECK(r["_meta"]["mcpd/path"] == "pool");
    CHECK(eventually([&] { return status(*client)["executor"]["shadow"]["mismatches"] == 1; }));
  }
}

TEST_CASE("pool_percent sends a stable share of calls to the pool") {
  auto client = start_mcpd({"--pool_percent", "50", "--cache_enabled", "false"});
  client->initialize();
  std::map<int, std::string> first;
  for (int i = 0; i < 40; ++i)
    first[i] = client->call_tool("test_echo", {{"value", i}})["_meta"]["mcpd/path"];
  int pool = 0;
  for (int i = 0; i < 40; ++i) {
    CHECK(client->call_tool("test_echo", {{"value", i}})["_meta"]["mcpd/path"] == first[i]);  // stable
    pool += first[i] == "pool";
  }
  CHECK(pool > 5);
  CHECK(pool < 35);
}

TEST_CASE("no worker outlives mcpd: not after EOF, and not after mcpd is SIGKILLed") {
  std::vector<pid_t> pids;
  {
    auto client = start_mcpd({"--workers", workers_config("parser", {{"min_workers", 2}})});
    client->initialize();
    REQUIRE(eventually([&] { return live_pids(*client, "parser", "idle").size() == 2; }));
    pids = live_pids(*client, "parser");
    client->process().close_stdin();
    auto exit = client->process().wait(10s);
    REQUIRE(exit);
    CHECK(WEXITSTATUS(*exit) == 0);
  }
  for (pid_t pid : pids) CHECK(eventually([&] { return process_state(pid) == 0; }, 3s));

  auto client = start_mcpd({"--workers", workers_config("parser", {{"min_workers", 2}})});
  client->initialize();
  REQUIRE(eventually([&] { return live_pids(*client, "parser", "idle").size() == 2; }));
  pids = live_pids(*client, "parser");
  ::kill(client->process().pid(), SIGKILL);
  client->process().wait(5s);
  // Orphans are reparented and reaped by init; what matters is that they exit at once.
  for (pid_t pid : pids) CHECK(eventually([&] { return process_state(pid) == 0 || process_state(pid) == 'Z'; }, 3s));
}
