// The sample path under stress and the poller's bounds: a writer that cannot keep up (the queue
// drops and counts, never grows), retention, a database file deleted under the writer, and a
// shutdown that stays under 5 s while devices hang on long connect and response timeouts.
#include <unistd.h>

#include <atomic>
#include <future>

#include "modbus_test_support.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace mcpd::modbus;
using namespace std::chrono_literals;


std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

TEST_CASE("a writer that cannot keep up: the queue stays within queue_capacity, drops are counted, polling goes on") {
  ModbusServer server;
  TempDir dir;
  auto db = dir.path / "m.sqlite";
  ModbusKit kit(db, {{"queue_capacity", 100}});
  kit.call("modbus_group_create", fixed_group("fast", server.port(), {{"interval_ms", 20}}));  // 7 tags every 20 ms: 350 samples/s
  kit.call("modbus_group_start", {{"name", "fast"}});
  REQUIRE(eventually([&] { return kit.call("modbus_status", json::object())["writer"]["written"].get<int>() >= 10; }));

  {
    // Another connection keeps the write lock for 1.5 s: the writer waits, the queue fills.
    SqliteWriteLock lock(db);
    std::int64_t max_queued = 0, max_depth = 0;
    auto until = std::chrono::steady_clock::now() + 1500ms;
    while (std::chrono::steady_clock::now() < until) {
      json status = kit.call("modbus_status", json::object());
      max_queued = std::max(max_queued, status["writer"]["queued"].get<std::int64_t>());
      max_depth = std::max(max_depth, status["groups"][0]["queue_depth"].get<std::int64_t>());
      std::this_thread::sleep_for(20ms);
    }
    json status = kit.call("modbus_status", json::object());
    CHECK(max_queued <= 100);  // the memory bound: never more than the capacity waits
    CHECK(max_queued >= 90);   // and it did fill: 100 is about 14 polls of 7
    CHECK(max_depth <= 100);
    CHECK(status["writer"]["capacity"] == 100);
    CHECK(status["writer"]["dropped"].get<std::int64_t>() >= 250);  // about 1.1 s of 350/s
    CHECK(status["groups"][0]["dropped_samples"] == status["writer"]["dropped"]);
    CHECK(status["groups"][0]["state"] == "running");
    CHECK(status["groups"][0]["error_count"] == 0);  // a full queue is not a device error
  }

  // Lock released: the backlog is written, polling went on throughout, and nothing more is lost.
  REQUIRE(eventually([&] { return kit.call("modbus_status", json::object())["writer"]["queued"] == 0; }, 3s));
  std::int64_t dropped = kit.call("modbus_status", json::object())["writer"]["dropped"];
  std::int64_t polls = kit.call("modbus_status", json::object())["groups"][0]["polls"];
  REQUIRE(eventually([&] {
    return kit.call("modbus_status", json::object())["groups"][0]["polls"].get<std::int64_t>() >= polls + 15;
  }));
  CHECK(kit.call("modbus_status", json::object())["writer"]["dropped"] == dropped);
  kit.call("modbus_group_stop", {{"name", "fast"}});

  // Every sample polled was either stored or counted as dropped.
  std::int64_t stored = kit.call("modbus_samples", {{"group", "fast"}, {"limit", 1000000}})["count"];  // flushes
  json final_status = kit.call("modbus_status", json::object());
  std::int64_t successes = final_status["groups"][0]["success_count"];
  CHECK(final_status["writer"]["queued"] == 0);
  CHECK(stored == final_status["writer"]["written"]);
  CHECK(stored + final_status["writer"]["dropped"].get<std::int64_t>() == successes * 7);
}

TEST_CASE("retention: the store prunes samples older than retention_hours every prune_interval_ms; 0 keeps all") {
  TempDir dir;
  const std::int64_t now = now_ms();
  auto fill = [&](SampleStore& store) {
    store.save_group("g", json::object());
    store.save_group("other", json::object());
    store.push({"g", now - 3 * 3600000, {{"a", 1}, {"b", 1}}, nullptr});  // three hours old
    store.push({"g", now - 2 * 3600000 - 1, {{"a", 2}}, nullptr});        // just past two hours
    store.push({"g", now - 2 * 3600000 + 60000, {{"a", 3}}, nullptr});    // a minute inside
    store.push({"g", now, {{"a", 4}, {"b", 4}}, nullptr});
    store.push({"other", now - 5 * 3600000, {{"x", 5}}, nullptr});
    store.flush(2000);
  };
  auto values = [](SampleStore& store, const std::string& group) {
    std::vector<double> out;
    for (const auto& row : store.query({group, std::nullopt, 0, INT64_MAX, 100, false})) out.push_back(row.value);
    return out;
  };
  {
    SampleStore store((dir.path / "two_hours.sqlite").string(), 1000, 2.0, 50);
    fill(store);
    REQUIRE(eventually([&] { return store.stats()["pruned"].get<int>() == 4; }, 3s));
    CHECK(values(store, "g") == std::vector<double>{3, 4, 4});
    CHECK(values(store, "other").empty());
    std::this_thread::sleep_for(200ms);  // later prunes find nothing more
    CHECK(store.stats()["pruned"] == 4);
    CHECK_FALSE(store.stats().contains("last_error"));
  }
  {
    SampleStore store((dir.path / "forever.sqlite").string(), 1000, 0, 50);
    fill(store);
    std::this_thread::sleep_for(400ms);  // several prune intervals
    CHECK(store.stats()["pruned"] == 0);
    CHECK(values(store, "g") == std::vector<double>{1, 1, 2, 3, 4, 4});
    CHECK(values(store, "other") == std::vector<double>{5});
  }
  CHECK(parse_settings(json::object()).prune_interval_ms == 60000);
  CHECK(parse_settings({{"prune_interval_ms", 100}}).prune_interval_ms == 100);
  CHECK_THROWS_WITH(parse_settings({{"prune_interval_ms", 0}}), doctest::Contains("modbus.prune_interval_ms: must be"));
}

TEST_CASE("retention through the poller: a running group keeps only the last retention_hours of samples") {
  ModbusServer server;
  TempDir dir;
  // 0.0002 h = 720 ms.
  ModbusKit kit(dir.path / "m.sqlite", {{"retention_hours", 0.0002}, {"prune_interval_ms", 100}});
  kit.call("modbus_group_create", fixed_group("short", server.port(), {{"interval_ms", 50}}));
  kit.call("modbus_group_start", {{"name", "short"}});
  std::int64_t started = now_ms();
  std::this_thread::sleep_for(1800ms);  // time is what is tested: 2.5 retention periods pass
  json samples = kit.call("modbus_samples", {{"group", "short"}, {"tag", "count"}, {"limit", 10000}});
  std::int64_t queried = now_ms();
  kit.call("modbus_group_stop", {{"name", "short"}});
  REQUIRE(samples["count"].get<int>() > 0);
  std::int64_t oldest = samples["samples"][0]["ts_ms"];
  CHECK(oldest > started + 500);               // the first second of samples is gone
  CHECK(queried - oldest < 720 + 100 + 300);   // retention + one prune interval + slack
  CHECK(samples["count"].get<int>() <= 24);    // about 15 polls live within 720 ms
  CHECK(kit.call("modbus_status", json::object())["writer"]["pruned"].get<int>() >= 5 * 5);
}

TEST_CASE("the database file deleted under a running poller: reported in modbus_status, polling goes on") {
  ModbusServer server;
  TempDir dir;
  auto db = dir.path / "m.sqlite";
  ModbusKit kit(db);
  kit.call("modbus_group_create", fixed_group("g", server.port(), {{"interval_ms", 50}}));
  kit.call("modbus_group_start", {{"name", "g"}});
  REQUIRE(eventually([&] { return kit.call("modbus_status", json::object())["writer"]["written"].get<int>() >= 10; }));
  std::filesystem::remove(db);
  REQUIRE(eventually([&] { return kit.call("modbus_status", json::object())["writer"].contains("file_missing"); }, 3s));
  json status = kit.call("modbus_status", json::object());
  CHECK(contains(status["writer"]["last_error"], "was deleted or replaced while in use"));
  std::int64_t polls = status["groups"][0]["polls"];
  CHECK(eventually([&] { return kit.call("modbus_status", json::object())["groups"][0]["polls"].get<std::int64_t>() > polls + 2; }));
  status = kit.call("modbus_status", json::object());
  CHECK(status["groups"][0]["state"] == "running");
  CHECK(kit.call("modbus_samples", {{"group", "g"}, {"limit", 5}})["count"] == 5);  // still readable
}

TEST_CASE("devices that hang: status answers at once, and the whole stop stays under 5 s") {
  BlackholePort no_connect;  // connect() waits out connect_timeout_ms
  SilentPort no_answer;      // requests wait out response_timeout_ms
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite", {{"connect_timeout_ms", 30000}, {"response_timeout_ms", 30000}});
  json one_tag = {{{"name", "v"}, {"address", 0}}};
  kit.call("modbus_group_create", fixed_group("hang_connect", no_connect.port(), {{"tags", one_tag}, {"interval_ms", 100}}));
  kit.call("modbus_group_create", fixed_group("hang_answer", no_answer.port(), {{"tags", one_tag}, {"interval_ms", 100}}));
  kit.call("modbus_group_create",
           fixed_group("hang_trigger", no_answer.port(), {{"tags", one_tag}, {"mode", "HANDSHAKE"}, {"unit", 2}}));
  kit.call("modbus_group_start", {{"name", "hang_connect"}});
  kit.call("modbus_group_start", {{"name", "hang_answer"}});
  kit.call("modbus_group_start", {{"name", "hang_trigger"}});
  // Both FIXED groups are inside their first poll, each held by its device.
  REQUIRE(eventually([&] {
    return kit.call("modbus_status", {{"name", "hang_connect"}})["groups"][0]["polling"] == true &&
           kit.call("modbus_status", {{"name", "hang_answer"}})["groups"][0]["polling"] == true;
  }));
  CHECK(kit.call("modbus_status", {{"name", "hang_trigger"}})["groups"][0]["polling"] == false);

  // A device's health is read without waiting for the request that holds its connection.
  auto began = std::chrono::steady_clock::now();
  json status = kit.call("modbus_status", json::object());
  CHECK(std::chrono::steady_clock::now() - began < 500ms);
  CHECK(status["groups"].size() == 3);

  // A trigger stuck on the silent device while everything stops.
  auto trigger = std::async(std::launch::async, [&] {
    try {
      return kit.call("modbus_group_trigger", {{"name", "hang_trigger"}});
    } catch (const ToolError& e) {
      return json{{"error", e.what()}};
    }
  });
  REQUIRE(eventually([&] { return kit.call("modbus_status", {{"name", "hang_trigger"}})["groups"][0]["polling"] == true; }));
  began = std::chrono::steady_clock::now();
  kit.poller->shutdown();
  auto took = std::chrono::steady_clock::now() - began;
  CHECK(took < 5s);
  CHECK(took >= modbus::Poller::kStopGrace);  // the cycles were given their grace first
  REQUIRE(trigger.wait_for(2s) == std::future_status::ready);
  json triggered = trigger.get();
  CAPTURE(triggered.dump());
  CHECK(triggered.value("success", true) == false);
  CHECK(contains(triggered.dump(), "interrupted"));
  // The devices work again afterwards (the interruption ends with the shutdown).
  ModbusServer server;
  CHECK(kit.call("modbus_read", {{"host", "127.0.0.1"}, {"port", server.port()}, {"table", "holding"}, {"address", 0}})["registers"][0] == 1234);
}

}  // namespace
