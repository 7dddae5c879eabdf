// The Modbus TCP client against devices that misbehave (tests/support/fake_modbus_device.h, for
// faults pymodbus cannot produce) next to a real pymodbus server: a total response deadline,
// devices that never wait for each other, malformed answers refused, reconnects after a device
// closed an idle connection; the MBAP checks and the host allow-list as pure functions.
#include <future>

#include "allow_list.h"
#include "device.h"
#include "fake_modbus_device.h"
#include "mbap.h"
#include "modbus_test_support.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace mcpd::modbus;
using Fault = FakeModbusDevice::Fault;

Settings settings_with(json more = json::object()) {
  json s = {{"allowed_hosts", {"127.0.0.1"}}, {"response_timeout_ms", 500}, {"connect_timeout_ms", 500},
            {"reconnect_backoff_initial_ms", 1}, {"reconnect_backoff_max_ms", 1}};
  for (auto it = more.begin(); it != more.end(); ++it) s[it.key()] = it.value();
  return parse_settings(s);
}

/// The DeviceError message of a read that must fail ("" when it did not).
std::string read_error(Device& device, int unit = 1, Table table = Table::holding, int count = 2) {
  try {
    if (is_bit_table(table)) device.read_bits(unit, table, 0, count, false);
    else device.read_registers(unit, table, 0, count, false);
  } catch (const DeviceError& e) {
    return e.what();
  }
  return "";
}

TEST_CASE("mbap: a response header is checked against its request before the body is read") {
  Bytes request = read_request(Table::holding, 10, 2);  // an answer has 1 + 6 bytes after the header
  std::size_t body = 0;
  const std::uint8_t good[] = {0, 7, 0, 0, 0, 7, 1};
  CHECK(check_response_header(good, 7, 1, request, body) == "");
  CHECK(body == 6);
  const std::uint8_t exception[] = {0, 7, 0, 0, 0, 3, 1};
  CHECK(check_response_header(exception, 7, 1, request, body) == "");
  CHECK(body == 2);
  const std::uint8_t transaction[] = {0, 8, 0, 0, 0, 7, 1};
  CHECK(check_response_header(transaction, 7, 1, request, body) == "transaction id 8, but the request was 7");
  const std::uint8_t protocol[] = {0, 7, 0, 1, 0, 7, 1};
  CHECK(check_response_header(protocol, 7, 1, request, body) == "protocol id 1, where Modbus is 0");
  const std::uint8_t unit[] = {0, 7, 0, 0, 0, 7, 9};
  CHECK(check_response_header(unit, 7, 1, request, body) == "unit id 9, but the request was for unit 1");
  const std::uint8_t length[] = {0, 7, 0, 0, 0, 200, 1};
  CHECK(check_response_header(length, 7, 1, request, body) ==
        "MBAP length 200, but the answer to a read of 2 holding registers has length 7 (or 3 for an exception)");
}

TEST_CASE("mbap: response bodies are decoded only when they answer the request") {
  Bytes read = read_request(Table::input, 0, 2);
  const std::uint8_t registers[] = {4, 4, 0x12, 0x34, 0xff, 0xfb};
  Response r = decode_response(read, registers, sizeof registers);
  CHECK(r.error == "");
  CHECK(r.registers == std::vector<std::uint16_t>{0x1234, 0xfffb});
  const std::uint8_t other_function[] = {3, 4, 0, 0, 0, 0};
  CHECK(decode_response(read, other_function, 6).error ==
        "function code 0x03 in the answer to function 0x04 (expected 0x04 or its exception 0x84)");
  const std::uint8_t count[] = {4, 2, 0, 0, 0, 0};
  CHECK(decode_response(read, count, 6).error == "byte count 2, where a read of 2 input registers has 4");
  const std::uint8_t exception[] = {0x84, 2};
  CHECK(decode_response(read, exception, 2).exception_code == 2);
  const std::uint8_t no_code[] = {0x84, 0};
  CHECK(decode_response(read, no_code, 2).error != "");
  CHECK(decode_response(read, registers, 1).error != "");

  Bytes coils = read_request(Table::coils, 0, 10);
  const std::uint8_t bits[] = {1, 2, 0b00000101, 0b00000010};
  CHECK(decode_response(coils, bits, 4).bits == std::vector<std::uint8_t>{1, 0, 1, 0, 0, 0, 0, 0, 0, 1});

  Bytes write = write_registers_request(5, {7, 8});
  const std::uint8_t echo[] = {16, 0, 5, 0, 2};
  CHECK(decode_response(write, echo, 5).error == "");
  const std::uint8_t wrong_echo[] = {16, 0, 6, 0, 2};
  CHECK(contains(decode_response(write, wrong_echo, 5).error, "says address 6"));
  Bytes coil = write_bits_request(3, {1});
  CHECK(coil == Bytes{5, 0, 3, 0xff, 0});
  CHECK(frame_request(0x0102, 9, coil) == Bytes{1, 2, 0, 0, 0, 6, 9, 5, 0, 3, 0xff, 0});
}

TEST_CASE("allowed_hosts: names, addresses, ranges and ports") {
  AllowList none;
  CHECK_FALSE(none.allows_host("127.0.0.1", 502));
  CHECK_FALSE(none.may_allow_by_address(502));

  AllowList list({"plc1.Plant", "10.1.2.3", "192.168.0.0/16:502", "[fd00::/8]:1502", "::1", "gw:503"});
  CHECK(list.allows_host("PLC1.plant.", 502));
  CHECK(list.allows_host("10.1.2.3", 9999));
  CHECK_FALSE(list.allows_host("10.1.2.4", 502));
  CHECK(list.allows_host("192.168.7.9", 502));
  CHECK_FALSE(list.allows_host("192.168.7.9", 503));
  CHECK(list.allows_host("fd12::5", 1502));
  CHECK_FALSE(list.allows_host("fe80::1", 1502));
  CHECK(list.allows_host("::1", 502));
  CHECK(list.allows_host("gw", 503));
  CHECK_FALSE(list.allows_host("gw", 502));
  CHECK_FALSE(list.allows_host("plc2.plant", 502));
  CHECK(list.may_allow_by_address(502));  // a name may resolve into a listed range
  // An IPv4 entry covers the same address in IPv4-mapped form.
  CHECK(list.allows_address(*parse_ip("::ffff:10.1.2.3"), 502));
  CHECK_FALSE(list.allows_address(*parse_ip("10.1.2.4"), 502));

  CHECK(AllowList({"*"}).allows_host("anything", 1));
  CHECK(AllowList({"0.0.0.0/0"}).allows_host("8.8.8.8", 1));

  for (const char* bad : {"10.0.0.0/33", "host:0", "host:99999", "[::1", "bad host", "x/8", ":502", "fd00::/129"}) {
    CAPTURE(bad);
    CHECK_THROWS_WITH(AllowList({bad}), doctest::Contains("modbus.allowed_hosts: '"));
  }
  CHECK_THROWS_WITH(parse_settings({{"allowed_hosts", {"10.0.0.0/40"}}}), doctest::Contains("prefix length"));
}

TEST_CASE("allowed_hosts: nothing is reachable by default, and a refusal names the setting") {
  ModbusServer server;
  TempDir dir;
  ModbusKit open_kit(dir.path / "a.sqlite", {{"allowed_hosts", json::array()}});
  json read = {{"host", "127.0.0.1"}, {"port", server.port()}, {"table", "holding"}, {"address", 0}};
  std::string refused = open_kit.error("modbus_read", read);
  CHECK(contains(refused, "host '127.0.0.1' is not in modbus.allowed_hosts, which is empty"));
  CHECK(contains(refused, "add the host to allow connections"));
  CHECK(contains(open_kit.error("modbus_group_create", fixed_group("g", server.port())), "modbus.allowed_hosts"));
  json write = read;
  write["values"] = {1};
  CHECK(contains(open_kit.error("modbus_write", write, true), "modbus.allowed_hosts"));
  // No connection was attempted: the device set holds nothing to report.
  CHECK(open_kit.call("modbus_status", json::object())["devices"].empty());

  // A listed address lets a name that resolves to it through; a range that does not hold it does not.
  ModbusKit by_address(dir.path / "b.sqlite", {{"allowed_hosts", {"127.0.0.0/8"}}});
  read["host"] = "localhost";
  CHECK(by_address.call("modbus_read", read)["registers"][0] == 1234);
  ModbusKit elsewhere(dir.path / "c.sqlite", {{"allowed_hosts", {"10.0.0.0/8"}}});
  std::string resolved = elsewhere.error("modbus_read", read);
  CHECK(contains(resolved, "host 'localhost' (which resolves to "));
  CHECK(contains(resolved, "is not in modbus.allowed_hosts (10.0.0.0/8); add it to allow connections"));

  // A port-limited entry allows that port only.
  ModbusKit port_only(dir.path / "d.sqlite", {{"allowed_hosts", {"127.0.0.1:" + std::to_string(server.port() + 1)}}});
  read["host"] = "127.0.0.1";
  CHECK(contains(port_only.error("modbus_read", read),
                 "host '127.0.0.1' port " + std::to_string(server.port()) + " is not in modbus.allowed_hosts"));
}

TEST_CASE("a device that dribbles its answer fails at the response timeout, and another device is not held up") {
  FakeModbusDevice slow(Fault::dribble, std::chrono::milliseconds(50));
  ModbusServer healthy;
  Settings settings = settings_with();
  Device slow_device("127.0.0.1", slow.port(), settings);
  Device healthy_device("127.0.0.1", healthy.port(), settings);

  auto slow_read = std::async(std::launch::async, [&] { return read_error(slow_device); });
  REQUIRE(eventually([&] { return slow.requests() == 1; }));
  // The slow read is still waiting for its bytes while the healthy device answers.
  CHECK(healthy_device.read_registers(1, Table::holding, 0, 1, false)[0] == 1234);
  CHECK(slow_read.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);
  std::string error = slow_read.get();
  // Bytes kept coming, each well within 500 ms of the last, yet the read ended: the limit is for
  // the whole answer (13 bytes at 50 ms or more apart take at least 650 ms, and would succeed).
  CHECK(contains(error, "no complete answer from 127.0.0.1:" + std::to_string(slow.port()) + " unit 1 within 500 ms"));
  CHECK(contains(error, "modbus.response_timeout_ms, the limit for the whole answer): got "));
  CHECK(contains(error, " of 13 bytes"));  // the header had come
}

TEST_CASE("malformed answers are refused as invalid, each with what is wrong") {
  struct Case {
    Fault fault;
    const char* says;
  };
  const Case cases[] = {
      {Fault::wrong_length, "MBAP length 17, but the answer to a read of 2 holding registers has length 7"},
      {Fault::wrong_unit, "unit id 2, but the request was for unit 1"},
      {Fault::wrong_transaction, "transaction id 1001, but the request was 1"},
      {Fault::wrong_protocol, "protocol id 1, where Modbus is 0"},
      {Fault::wrong_function, "function code 0x11 in the answer to function 0x03"},
  };
  Settings settings = settings_with({{"response_timeout_ms", 10000}});
  for (const auto& c : cases) {
    CAPTURE(c.says);
    FakeModbusDevice fake(c.fault);
    Device device("127.0.0.1", fake.port(), settings);
    std::string error = read_error(device);
    CHECK(contains(error, "invalid response from 127.0.0.1:" + std::to_string(fake.port()) + " unit 1: "));
    CHECK(contains(error, c.says));
    CHECK(contains(error, "; reconnecting"));
    CHECK(device.health()["connected"] == false);
  }
}

TEST_CASE("a connection the device closed while idle: a read reconnects and is sent once more; a write is not") {
  FakeModbusDevice fake(Fault::close_on_second);
  Settings settings = settings_with();
  Device device("127.0.0.1", fake.port(), settings);
  CHECK(device.read_registers(1, Table::holding, 3, 2, false) == std::vector<std::uint16_t>{103, 104});
  // The second request on that connection finds it closed; the read goes out again on a new one.
  CHECK(device.read_registers(1, Table::input, 0, 1, false) == std::vector<std::uint16_t>{100});
  CHECK(fake.connections() == 2);
  CHECK(fake.requests() == 3);

  std::string error;
  try {
    device.write_registers(1, 0, {5});
  } catch (const DeviceError& e) {
    error = e.what();
  }
  CHECK(contains(error, "closed the connection without answering; the write may or may not have taken effect"));
  CHECK(fake.requests() == 4);  // sent once, never again
  CHECK(fake.connections() == 2);
  // The next request starts over on a fresh connection.
  CHECK(device.read_bits(1, Table::coils, 0, 3, false) == std::vector<std::uint8_t>{0, 1, 0});
  CHECK(fake.connections() == 3);
}

TEST_CASE("a read waiting on a silent device ends soon after its call is cancelled") {
  FakeModbusDevice silent(Fault::silent);
  Settings settings = settings_with({{"response_timeout_ms", 60000}});
  Device device("127.0.0.1", silent.port(), settings);
  CancelToken cancel;
  auto read = std::async(std::launch::async, [&] {
    try {
      device.read_registers(1, Table::holding, 0, 1, false, &cancel);
    } catch (const ToolCancelled&) {
      return std::string("cancelled");
    } catch (const std::exception& e) {
      return std::string(e.what());
    }
    return std::string("answered");
  });
  REQUIRE(eventually([&] { return silent.requests() == 1; }));
  // A second call to the same device waits for its turn, and is cancellable there too.
  CancelToken second_cancel;
  auto second = std::async(std::launch::async, [&] {
    try {
      device.read_registers(1, Table::holding, 0, 1, false, &second_cancel);
    } catch (const ToolCancelled&) {
      return std::string("cancelled");
    }
    return std::string("answered");
  });
  second_cancel.cancel();
  CHECK(second.get() == "cancelled");
  cancel.cancel();
  CHECK(read.get() == "cancelled");
  // Not a device failure: no backoff, nothing reported against the device.
  CHECK(device.health()["failures_in_a_row"] == 0);
}

TEST_CASE("status answers while a group's poll waits on a silent device") {
  FakeModbusDevice silent(Fault::silent);
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite", {{"response_timeout_ms", 8000}});
  kit.call("modbus_group_create", fixed_group("hung", silent.port(), {{"interval_ms", 100}}));
  kit.call("modbus_group_start", {{"name", "hung"}});
  REQUIRE(eventually([&] { return silent.requests() >= 1; }));
  // The poll holds the device for up to 8 s; status is not behind it: it answers while that first
  // poll is still waiting.
  json status = kit.call("modbus_status", {{"name", "hung"}});
  CHECK(status["groups"][0]["polls"] == 0);
  CHECK(status["groups"][0]["state"] == "running");
  CHECK(status["devices"][0]["device"] == "127.0.0.1:" + std::to_string(silent.port()));

  // Changing the hung group waits for its poll, but status does not wait with it.
  auto update = std::async(std::launch::async, [&] { return kit.call("modbus_group_update", {{"name", "hung"}, {"interval_ms", 200}}); });
  REQUIRE(eventually([&] { return kit.call("modbus_status", {{"name", "hung"}})["groups"][0]["state"] == "stopped"; }));
  CHECK(update.wait_for(std::chrono::seconds(0)) == std::future_status::timeout);  // still waiting for the poll
  CHECK(kit.call("modbus_status", json::object())["groups"].size() == 1);
  CHECK(update.get()["state"] == "running");
  kit.call("modbus_group_delete", {{"name", "hung"}});
  CHECK(kit.call("modbus_status", json::object())["groups"].empty());
}

TEST_CASE("a trigger waiting on a silent device ends when its call is cancelled") {
  FakeModbusDevice silent(Fault::silent);
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite", {{"response_timeout_ms", 60000}});
  kit.call("modbus_group_create", fixed_group("hs", silent.port(), {{"mode", "HANDSHAKE"}}));
  kit.call("modbus_group_start", {{"name", "hs"}});
  ToolContext context;
  auto trigger = std::async(std::launch::async, [&] {
    try {
      kit.tools.at("modbus_group_trigger").handler({{"name", "hs"}}, context);
    } catch (const ToolCancelled&) {
      return std::string("cancelled");
    }
    return std::string("answered");
  });
  REQUIRE(eventually([&] { return silent.requests() == 1; }));
  context.cancel.cancel();
  CHECK(trigger.get() == "cancelled");
}

TEST_CASE("max_devices: unused devices are forgotten, and a new one is refused when all are in use") {
  TempDir dir;
  ModbusKit kit(dir.path / "m.sqlite", {{"max_devices", 2}});
  auto read = [](int port) { return json{{"host", "127.0.0.1"}, {"port", port}, {"table", "holding"}, {"address", 0}}; };
  // Reads of ever new devices: each one is known while its call runs, then may be forgotten.
  for (int i = 0; i < 5; ++i) CHECK(contains(kit.error("modbus_read", read(free_tcp_port())), "cannot connect"));
  CHECK(kit.call("modbus_status", json::object())["devices"].size() <= 2);
  // Two groups hold two devices: a third device is refused, naming the setting.
  kit.call("modbus_group_create", fixed_group("a", free_tcp_port()));
  kit.call("modbus_group_create", fixed_group("b", free_tcp_port()));
  CHECK(contains(kit.error("modbus_read", read(free_tcp_port())), "(modbus.max_devices)"));
  CHECK(contains(kit.error("modbus_group_create", fixed_group("c", free_tcp_port())), "(modbus.max_devices)"));
  kit.call("modbus_group_delete", {{"name", "b"}});
  CHECK(contains(kit.error("modbus_read", read(free_tcp_port())), "cannot connect"));
}

}  // namespace
