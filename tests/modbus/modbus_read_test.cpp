// modbus_read and modbus_write against a real pymodbus server, plus the pure codec and batching.
#include <cmath>

#include "codec.h"
#include "modbus_test_support.h"
#include "settings.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace mcpd::modbus;

json device(const ModbusServer& server, json more = json::object()) {
  more["host"] = "127.0.0.1";
  more["port"] = server.port();
  return more;
}

TEST_CASE("codec: every type in both byte and word orders, with scale, round-trips") {
  for (DataType type : {DataType::int16, DataType::uint16, DataType::int32, DataType::uint32, DataType::float32})
    for (bool bytes : {false, true})
      for (bool words : {false, true}) {
        Encoding e{type, bytes, words, 0.5};
        double value = type == DataType::uint16 || type == DataType::uint32 ? 1000.5 : -1000.5;
        auto regs = encode(value, e);
        CAPTURE(type_name(type));
        CHECK(regs.size() == static_cast<std::size_t>(register_width(type)));
        CHECK(decode(regs.data(), e) == doctest::Approx(value));
      }
  CHECK_THROWS_WITH(encode(70000, Encoding{DataType::int16}), doctest::Contains("does not fit int16"));
  CHECK_THROWS_WITH(encode(1.5, Encoding{DataType::uint16}), doctest::Contains("whole number"));
  std::uint16_t abcd[] = {0x1234, 0x5678};
  CHECK(decode(abcd, Encoding{DataType::uint32}) == 0x12345678);
  CHECK(decode(abcd, Encoding{DataType::uint32, false, true}) == 0x56781234);
  CHECK(decode(abcd, Encoding{DataType::uint32, true, false}) == 0x34127856);
}

TEST_CASE("batching: contiguous and nearly contiguous tags share a request within the protocol limits") {
  std::vector<TagSpan> spans;
  for (int i = 0; i < 100; ++i) spans.push_back({Table::holding, i, 1});  // 0..99
  spans.push_back({Table::holding, 104, 2});                            // a gap of 4: joins
  spans.push_back({Table::holding, 200, 1});                            // far: a new request
  spans.push_back({Table::coils, 0, 1});
  spans.push_back({Table::coils, 60, 1});  // a gap of 59 bits: joins
  spans.push_back({Table::input, 0, 2});
  auto plan = plan_reads(spans);
  REQUIRE(plan.size() == 4);
  std::size_t covered = 0;
  for (const auto& r : plan) {
    covered += r.tags.size();
    CHECK(r.count <= (is_bit_table(r.table) ? kMaxReadBits : kMaxReadRegisters));
  }
  CHECK(covered == spans.size());
  CHECK(plan[0].table == Table::holding);
  CHECK(plan[0].count == 106);
  CHECK(plan[1].address == 200);

  // 300 contiguous registers need three requests (125 + 125 + 50); a 32-bit tag never straddles two.
  std::vector<TagSpan> wide;
  for (int a = 0; a < 300; a += 2) wide.push_back({Table::holding, a, 2});
  auto split = plan_reads(wide);
  CHECK(split.size() == 3);
  for (const auto& r : split) CHECK(r.count <= 125);
}

TEST_CASE("settings: defaults, and a bad key is named") {
  Settings s = parse_settings(json::object());
  CHECK(s.max_running_groups == 10);
  CHECK_THROWS_WITH(parse_settings({{"max_running_groups", 0}}), doctest::Contains("modbus.max_running_groups: must be"));
  CHECK_THROWS_WITH(parse_settings({{"queue_capacity", "big"}}), doctest::Contains("modbus.queue_capacity"));
  CHECK_THROWS_WITH(parse_settings({{"no_such", 1}}), doctest::Contains("modbus.no_such: unknown setting"));
  CHECK_THROWS_AS(modbus_tools({{"retention_hours", -1}}), std::invalid_argument);
}

TEST_CASE("modbus_read: every table, with raw values") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  json holding = kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 0}, {"count", 3}}));
  CHECK(holding["registers"] == json({1234, 0xFFFB, 1002}));
  CHECK(holding["values"] == json({1234.0, 65531.0, 1002.0}));
  json input = kit.call("modbus_read", device(server, {{"table", "input"}, {"address", 0}, {"count", 2}}));
  CHECK(input["registers"] == json({4321, 2001}));
  json coils = kit.call("modbus_read", device(server, {{"table", "coils"}, {"address", 0}, {"count", 4}}));
  CHECK(coils["bits"] == json({true, false, false, true}));
  json discrete = kit.call("modbus_read", device(server, {{"table", "discrete"}, {"address", 0}, {"count", 4}}));
  CHECK(discrete["bits"] == json({false, true, false, true}));
  // The largest single read the protocol allows.
  json many = kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 100}, {"count", 125}}));
  CHECK(many["registers"].size() == 125);
  CHECK(many["registers"][124] == 1224);
  // Unit ids reach the device (the test server answers every unit).
  CHECK(kit.call("modbus_read", device(server, {{"unit", 7}, {"table", "input"}, {"address", 0}}))["registers"][0] == 4321);
}

TEST_CASE("modbus_read: types, byte and word order, scale") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  auto value = [&](json args) {
    json r = kit.call("modbus_read", device(server, args));
    return r["values"][0].get<double>();
  };
  CHECK(value({{"table", "holding"}, {"address", 1}, {"type", "int16"}}) == -5);
  CHECK(value({{"table", "holding"}, {"address", 1}, {"type", "uint16"}}) == 65531);
  CHECK(value({{"table", "holding"}, {"address", 10}, {"type", "float32"}}) == doctest::Approx(123.456));
  CHECK(value({{"table", "holding"}, {"address", 12}, {"type", "float32"}, {"word_order", "little"}}) ==
        doctest::Approx(123.456));
  CHECK(value({{"table", "holding"}, {"address", 10}, {"type", "float32"}, {"word_order", "little"}}) !=
        doctest::Approx(123.456));
  CHECK(value({{"table", "holding"}, {"address", 20}, {"type", "int32"}}) == -100000);
  CHECK(value({{"table", "holding"}, {"address", 22}, {"type", "uint32"}}) == 3000000000.0);
  CHECK(value({{"table", "holding"}, {"address", 30}, {"byte_order", "little"}}) == 0x1234);
  CHECK(value({{"table", "holding"}, {"address", 0}, {"scale", 0.1}}) == doctest::Approx(123.4));
  json two = kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 20}, {"count", 2}, {"type", "int32"}}));
  CHECK(two["registers"].size() == 4);
  CHECK(two["values"][0] == -100000.0);
  CHECK(two["values"][1] == -1294967296.0);  // the uint32 3000000000 read as int32
  CHECK(contains(kit.error("modbus_read", device(server, {{"table", "holding"}, {"address", 0}, {"count", 63}, {"type", "int32"}})),
                 "at most 125 registers"));
}

TEST_CASE("modbus_read: exceptions and bad devices give messages a user can act on") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  std::string illegal = kit.error("modbus_read", device(server, {{"table", "holding"}, {"address", 9000}}));
  CHECK(illegal == "illegal data address: the device has no holding register 9000 (Modbus exception 2)");
  // The connection survives an exception.
  CHECK(kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 0}}))["registers"][0] == 1234);

  int closed = free_tcp_port();
  std::string refused = kit.error("modbus_read", {{"host", "127.0.0.1"}, {"port", closed}, {"table", "holding"}, {"address", 0}});
  CHECK(contains(refused, "cannot connect to 127.0.0.1:" + std::to_string(closed)));
  CHECK(contains(refused, "refused"));

  std::string unknown = kit.error("modbus_read", {{"host", "no-such-host.invalid"}, {"table", "holding"}, {"address", 0}});
  CHECK(contains(unknown, "cannot resolve host 'no-such-host.invalid'"));

  ModbusKit fenced(dir.path / "f.sqlite", {{"allowed_hosts", {"plc1.example"}}});
  CHECK(contains(fenced.error("modbus_read", device(server, {{"table", "holding"}, {"address", 0}})),
                 "not in modbus.allowed_hosts"));
}

TEST_CASE("modbus_write: refused unless writes are enabled, then written and read back") {
  ModbusServer server;
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite");
  json args = device(server, {{"table", "holding"}, {"address", 500}, {"values", {7, -2}}});
  CHECK(kit.error("modbus_write", args) == "writes are disabled; start mcpd with --allow_writes true");
  CHECK(kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 500}}))["registers"][0] == 1500);

  CHECK(kit.call("modbus_write", args, true)["written"] == 2);
  CHECK(kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 500}, {"count", 2}, {"type", "int16"}}))["values"] ==
        json({7.0, -2.0}));

  kit.call("modbus_write", device(server, {{"table", "holding"}, {"address", 510}, {"values", {-1.25}}, {"type", "float32"},
                                           {"word_order", "little"}}),
           true);
  CHECK(kit.call("modbus_read", device(server, {{"table", "holding"}, {"address", 510}, {"type", "float32"},
                                                {"word_order", "little"}}))["values"][0] == -1.25);

  kit.call("modbus_write", device(server, {{"table", "coils"}, {"address", 600}, {"values", {true, true, false}}}), true);
  CHECK(kit.call("modbus_read", device(server, {{"table", "coils"}, {"address", 600}, {"count", 3}}))["bits"] ==
        json({true, true, false}));

  CHECK(contains(kit.error("modbus_write", device(server, {{"table", "holding"}, {"address", 0}, {"values", {70000}}}), true),
                 "values[0]: a raw register is an integer from -32768 to 65535"));
  CHECK(kit.error("modbus_write", device(server, {{"table", "holding"}, {"address", 9000}, {"values", {1}}}), true) ==
        "illegal data address: the device has no holding register 9000 (Modbus exception 2)");
}

}  // namespace
