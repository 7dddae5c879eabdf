// Polling groups against a real pymodbus server: schedules, triggers, failures and recovery,
// limits, stored samples and their queries, resuming from SQLite.
#include <unistd.h>

#include <algorithm>
#include <cmath>

#include "modbus_test_support.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;


json group_status(ModbusKit& kit, const std::string& name) { return kit.call("modbus_status", {{"name", name}})["groups"][0]; }

std::int64_t sample_count(ModbusKit& kit, const std::string& name, const std::string& tag) {
  return kit.call("modbus_samples", {{"group", name}, {"tag", tag}, {"limit", 100000}})["count"].get<std::int64_t>();
}

TEST_CASE("a FIXED group at 100 ms polls on the k*interval grid for 3 s, batched, without drift") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  json created = kit.call("modbus_group_create", fixed_group("line1", server.port()));
  CHECK(created["state"] == "stopped");
  CHECK(created["requests_per_poll"] == 4);  // holding 0..21 (gaps of 8) in one request, input, coils, discrete
  kit.call("modbus_group_start", {{"name", "line1"}});
  std::this_thread::sleep_for(3s);  // the window measured: how many polls 3 s hold, and when
  kit.call("modbus_group_stop", {{"name", "line1"}});

  json status = group_status(kit, "line1");
  CHECK(status["state"] == "stopped");
  CHECK(status["mode"] == "FIXED");
  std::int64_t polls = status["polls"];
  CHECK(polls >= 27);
  CHECK(polls <= 32);
  CHECK(status["error_count"] == 0);
  CHECK(status["success_count"] == polls);
  CHECK(status["overruns"].get<int>() <= 1);
  CHECK(status["jitter"]["p50_ms"].get<double>() < 20);
  CHECK(status.contains("last_poll_time"));

  json samples = kit.call("modbus_samples", {{"group", "line1"}, {"tag", "count"}, {"limit", 1000}});
  REQUIRE(samples["count"] == polls);
  // Drift-free: every poll starts near first + k * 100 ms. Scheduling each poll an interval after
  // the previous one ended would slide the offsets by the poll time, tens of ms over 30 polls.
  std::int64_t first = samples["samples"][0]["ts_ms"];
  int on_grid = 0;
  for (const auto& s : samples["samples"]) {
    std::int64_t offset = (s["ts_ms"].get<std::int64_t>() - first) % 100;
    on_grid += offset <= 15 || offset >= 85;
  }
  CHECK(on_grid >= static_cast<int>(polls) - 2);

  json latest = kit.call("modbus_samples", {{"group", "line1"}, {"limit", 7}, {"order", "newest_first"}});
  std::map<std::string, double> values;
  for (const auto& s : latest["samples"]) values[s["tag"]] = s["value"];
  CHECK(values["count"] == 1234);
  CHECK(values["minus"] == -5);
  CHECK(values["temp"] == doctest::Approx(123.456));
  CHECK(values["total"] == doctest::Approx(-1000));
  CHECK(values["level"] == 4321);
  CHECK(values["pump"] == 1);
  CHECK(values["door"] == 1);
}

TEST_CASE("a HANDSHAKE group polls only when triggered, and triggers within 1 s are coalesced") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  kit.call("modbus_group_create", fixed_group("batch", server.port(), {{"mode", "HANDSHAKE"}}));
  CHECK(contains(kit.error("modbus_group_trigger", {{"name", "batch"}}), "is stopped; start it"));
  kit.call("modbus_group_start", {{"name", "batch"}});
  std::this_thread::sleep_for(300ms);  // a window in which nothing may happen: three FIXED intervals
  CHECK(group_status(kit, "batch")["polls"] == 0);  // nothing without a trigger

  json first = kit.call("modbus_group_trigger", {{"name", "batch"}});
  CHECK(first["success"] == true);
  CHECK(first["tag_count"] == 7);
  CHECK(first["coalesced"] == false);
  CHECK(first["values"]["count"] == 1234);
  CHECK(first["values"]["temp"].get<double>() == doctest::Approx(123.456));
  json second = kit.call("modbus_group_trigger", {{"name", "batch"}});
  CHECK(second["coalesced"] == true);
  CHECK(second["polled_at"] == first["polled_at"]);
  CHECK(contains(second["note"], "already polled"));
  std::this_thread::sleep_for(1100ms);  // past the 1 s coalescing window: the behaviour under test is time
  CHECK(kit.call("modbus_group_trigger", {{"name", "batch"}})["coalesced"] == false);
  json status = group_status(kit, "batch");
  CHECK(status["polls"] == 2);
  CHECK(status["triggers"] == 3);
  CHECK(status["coalesced_triggers"] == 1);
  CHECK(sample_count(kit, "batch", "count") == 2);

  kit.call("modbus_group_create", fixed_group("fixed", server.port()));
  CHECK(contains(kit.error("modbus_group_trigger", {{"name", "fixed"}}), "is FIXED"));
}

TEST_CASE("a server that dies mid-run: errors are counted, polling goes on, and it recovers by itself") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  kit.call("modbus_group_create", fixed_group("line", server.port()));
  kit.call("modbus_group_start", {{"name", "line"}});
  REQUIRE(eventually([&] { return group_status(kit, "line")["success_count"].get<int>() >= 5; }));

  server.stop();
  REQUIRE(eventually([&] { return group_status(kit, "line")["error_count"].get<int>() >= 5; }));
  json down = group_status(kit, "line");
  CHECK(down["state"] == "running");
  CHECK(contains(down["last_error"], "127.0.0.1:" + std::to_string(server.port())));
  std::int64_t polls_down = down["polls"];
  CHECK(eventually([&] { return group_status(kit, "line")["polls"].get<std::int64_t>() > polls_down + 2; }));  // still polling

  std::int64_t stored = sample_count(kit, "line", "count");
  server.start();
  std::int64_t successes = group_status(kit, "line")["success_count"];
  CHECK(eventually([&] { return group_status(kit, "line")["success_count"].get<std::int64_t>() >= successes + 5; }));
  CHECK(sample_count(kit, "line", "count") > stored);
  kit.call("modbus_group_stop", {{"name", "line"}});
}

TEST_CASE("groups are isolated: one on a dead device does not stop one on a live device") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  kit.call("modbus_group_create", fixed_group("dead", free_tcp_port()));
  kit.call("modbus_group_create", fixed_group("bad_host", 502, {{"host", "no-such-host.invalid"}}));
  kit.call("modbus_group_create", fixed_group("live", server.port()));
  for (const char* name : {"dead", "bad_host", "live"}) kit.call("modbus_group_start", {{"name", name}});
  REQUIRE(eventually([&] {
    return group_status(kit, "dead")["error_count"].get<int>() >= 3 &&
           group_status(kit, "bad_host")["error_count"].get<int>() >= 1 &&
           group_status(kit, "live")["success_count"].get<int>() >= 12;
  }));
  json dead = group_status(kit, "dead");
  json bad_host = group_status(kit, "bad_host");
  json live = group_status(kit, "live");
  CHECK(dead["error_count"].get<int>() >= 3);
  CHECK(contains(dead["last_error"], "refused"));
  CHECK(contains(bad_host["last_error"], "cannot resolve host 'no-such-host.invalid'"));
  CHECK(live["error_count"] == 0);
  CHECK(live["success_count"].get<int>() >= 12);
}

TEST_CASE("a tag at an address the device lacks: the exception is counted, the other tags are stored") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  json g = fixed_group("partial", server.port(), {{"tags", {{{"name", "ok"}, {"address", 0}}, {{"name", "missing"}, {"address", 9000}}}}});
  kit.call("modbus_group_create", g);
  kit.call("modbus_group_start", {{"name", "partial"}});
  REQUIRE(eventually([&] { return group_status(kit, "partial")["error_count"].get<int>() >= 3; }));
  kit.call("modbus_group_stop", {{"name", "partial"}});
  json status = group_status(kit, "partial");
  CHECK(status["last_error"] == "illegal data address: the device has no holding register 9000 (Modbus exception 2)");
  CHECK(sample_count(kit, "partial", "ok") >= 3);
  CHECK(sample_count(kit, "partial", "missing") == 0);
}

TEST_CASE("max_running_groups rejects the next start clearly") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite", {{"max_running_groups", 2}});
  for (const char* name : {"a", "b", "c"}) kit.call("modbus_group_create", fixed_group(name, server.port(), {{"interval_ms", 500}}));
  kit.call("modbus_group_start", {{"name", "a"}});
  kit.call("modbus_group_start", {{"name", "b"}});
  std::string refused = kit.error("modbus_group_start", {{"name", "c"}});
  CHECK(contains(refused, "cannot start group 'c': 2 groups are running, the maximum (modbus.max_running_groups)"));
  kit.call("modbus_group_stop", {{"name", "a"}});
  CHECK(kit.call("modbus_group_start", {{"name", "c"}})["state"] == "running");
  CHECK(kit.call("modbus_status", json::object())["running_groups"] == 2);
}

TEST_CASE("group definitions are checked, named, updated and deleted") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  json bad = fixed_group("g", server.port());
  bad["tags"][2]["type"] = "float64";
  CHECK(kit.error("modbus_group_create", bad) ==
        "tags[2].type: unknown type 'float64'; use int16, uint16, int32, uint32 or float32");
  CHECK(contains(kit.error("modbus_group_create", fixed_group("g", server.port(), {{"interval_ms", nullptr}})), "interval_ms"));
  CHECK(contains(kit.error("modbus_group_create", fixed_group("bad name!", server.port())), "name:"));
  kit.call("modbus_group_create", fixed_group("g", server.port()));
  CHECK(contains(kit.error("modbus_group_create", fixed_group("g", server.port())), "exists"));
  CHECK(contains(kit.error("modbus_group_start", {{"name", "nope"}}), "no group named 'nope'; groups: g"));

  kit.call("modbus_group_start", {{"name", "g"}});
  json updated = kit.call("modbus_group_update", {{"name", "g"}, {"interval_ms", 50}});
  CHECK(updated["state"] == "running");
  CHECK(updated["group"]["interval_ms"] == 50);
  CHECK(updated["group"]["tags"].size() == 7);  // fields not given keep their values
  CHECK(group_status(kit, "g")["interval_ms"] == 50);
  json deleted = kit.call("modbus_group_delete", {{"name", "g"}});
  CHECK(deleted["was_running"] == true);
  CHECK(kit.call("modbus_status", json::object())["groups"].empty());
}

TEST_CASE("modbus_samples: tag, time range, limit, order and downsampling") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  kit.call("modbus_group_create", fixed_group("s", server.port(), {{"interval_ms", 50}}));
  kit.call("modbus_group_start", {{"name", "s"}});
  // Enough samples for three 500 ms buckets.
  REQUIRE(eventually([&] { return sample_count(kit, "s", "count") >= 24; }));
  kit.call("modbus_group_stop", {{"name", "s"}});

  json all = kit.call("modbus_samples", {{"group", "s"}, {"tag", "count"}, {"limit", 100000}});
  std::int64_t n = all["count"];
  CHECK(n >= 20);
  CHECK(all["truncated"] == false);
  json limited = kit.call("modbus_samples", {{"group", "s"}, {"limit", 5}});
  CHECK(limited["count"] == 5);
  CHECK(limited["truncated"] == true);

  std::int64_t t0 = all["samples"][0]["ts_ms"];
  std::int64_t t5 = all["samples"][5]["ts_ms"];
  json range = kit.call("modbus_samples", {{"group", "s"}, {"tag", "count"}, {"from", all["samples"][0]["ts"]}, {"to", t5}});
  CHECK(range["count"] == 6);
  CHECK(range["samples"][0]["ts_ms"] == t0);
  json newest = kit.call("modbus_samples", {{"group", "s"}, {"tag", "count"}, {"limit", 1}, {"order", "newest_first"}});
  CHECK(newest["samples"][0]["ts_ms"] == all["samples"][n - 1]["ts_ms"]);

  json buckets = kit.call("modbus_samples", {{"group", "s"}, {"tag", "minus"}, {"bucket_ms", 500}});
  CHECK(buckets["count"].get<int>() >= 3);
  std::int64_t total = 0;
  for (const auto& b : buckets["buckets"]) {
    CHECK(b["tag"] == "minus");
    CHECK(b["start_ms"].get<std::int64_t>() % 500 == 0);
    CHECK(b["min"] == -5);
    CHECK(b["max"] == -5);
    CHECK(b["avg"] == -5);
    CHECK(b["last"] == -5);
    total += b["count"].get<std::int64_t>();
  }
  CHECK(total == n);
  CHECK(contains(kit.error("modbus_samples", {{"group", "s"}, {"from", "yesterday"}}), "cannot read time 'yesterday'"));
}

TEST_CASE("running groups resume from SQLite when the poller is recreated; one file, one poller") {
  ModbusServer server;
  TempDir dir;
  auto db = dir.path / "state" / "m.sqlite";  // the directory is created
  {
    ModbusKit first(db);
    first.call("modbus_group_create", fixed_group("keep", server.port()));
    first.call("modbus_group_create", fixed_group("idle", server.port()));
    first.call("modbus_group_start", {{"name", "keep"}});
    REQUIRE(eventually([&] { return sample_count(first, "keep", "count") >= 3; }));

    ModbusKit second(db);
    std::string busy = second.error("modbus_status", json::object());
    CHECK(contains(busy, "is in use by another poller (pid " + std::to_string(::getpid())));
    // Reads need no database.
    CHECK(second.call("modbus_read", {{"host", "127.0.0.1"}, {"port", server.port()}, {"table", "holding"}, {"address", 0}})
              ["registers"][0] == 1234);
    auto began = std::chrono::steady_clock::now();
    first.poller->shutdown();
    CHECK(std::chrono::steady_clock::now() - began < 5s);
  }
  ModbusKit again(db);
  again.poller->open();  // what the worker does at start
  std::int64_t before = sample_count(again, "keep", "count");
  CHECK(group_status(again, "keep")["state"] == "running");
  CHECK(group_status(again, "idle")["state"] == "stopped");
  CHECK(eventually([&] { return sample_count(again, "keep", "count") >= before + 3; }));
}

TEST_CASE("stopping ten running groups takes well under 5 s") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  for (int i = 0; i < 10; ++i) {
    std::string name = "g";
    name += std::to_string(i);  // not "g" + to_string(i): GCC 12 -O2 reports a false -Wrestrict there
    kit.call("modbus_group_create", fixed_group(name, server.port()));
    kit.call("modbus_group_start", {{"name", name}});
  }
  // Every group has polled (its connection is open, its cycle running) before the stop.
  REQUIRE(eventually([&] {
    json groups = kit.call("modbus_status", json::object())["groups"];
    return std::all_of(groups.begin(), groups.end(), [](const json& g) { return g["success_count"].get<int>() >= 1; });
  }));
  auto began = std::chrono::steady_clock::now();
  kit.poller->shutdown();
  CHECK(std::chrono::steady_clock::now() - began < 5s);
}

}  // namespace
