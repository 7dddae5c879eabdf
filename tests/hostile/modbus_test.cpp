// Class "one slow peer starves everyone", through the real mcpd and its Modbus worker: devices that
// dribble, stay silent, answer with malformed frames or drop idle connections
// (tests/support/fake_modbus_device.h), next to a healthy pymodbus device that must keep answering
// at once; and hosts outside modbus.allowed_hosts, which are refused before any connection.
#include <doctest/doctest.h>

#include "fake_modbus_device.h"
#include "hostile_support.h"
#include "modbus_server.h"
#include "eventually.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;
using Fault = FakeModbusDevice::Fault;

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

json read_of(int port, json more = json::object()) {
  json a = {{"host", "127.0.0.1"}, {"port", port}, {"table", "holding"}, {"address", 0}};
  for (auto it = more.begin(); it != more.end(); ++it) a[it.key()] = it.value();
  return a;
}

struct ModbusMcpd {
  TempDir dir;
  std::unique_ptr<McpClient> client;
  explicit ModbusMcpd(int response_timeout_ms) {
    json settings = {{"db_path", (dir.path / "modbus.sqlite").string()},
                     {"allowed_hosts", {"127.0.0.1"}},
                     {"response_timeout_ms", response_timeout_ms},
                     {"reconnect_backoff_initial_ms", 1},
                     {"reconnect_backoff_max_ms", 1}};
    client = start_mcpd({"--modbus", settings.dump()});
    client->initialize();
  }
};

json call_id(McpClient& client, const json& arguments) {
  return client.send_request("tools/call", {{"name", "modbus_read"}, {"arguments", arguments}});
}

std::string error_text(const json& result) {
  REQUIRE_MESSAGE(result["isError"] == true, result.dump());
  return text_of(result);
}

TEST_CASE("hostile modbus: a dribbling device ends at the response timeout while another device answers at once") {
  ModbusServer healthy;
  // 11 bytes 400 ms apart: each within any per-byte timeout, 4.4 s for the whole answer.
  FakeModbusDevice dribbler(Fault::dribble, 400ms);
  ModbusMcpd mcpd(3000);
  McpClient& client = *mcpd.client;

  json slow = call_id(client, read_of(dribbler.port()));
  REQUIRE(eventually([&] { return dribbler.requests() == 1; }));
  json fast = client.call_tool("modbus_read", read_of(healthy.port()), 10s);
  CHECK(fast["isError"] == false);
  CHECK(fast["structuredContent"]["registers"][0] == 1234);
  // The healthy device answered while the dribbling one was still sending.
  CHECK_FALSE(client.wait_response(slow, 0ms).has_value());
  // So does the poller's status.
  json status = client.call_tool("modbus_status", json::object(), 10s);
  CHECK(status["isError"] == false);
  CHECK_FALSE(client.wait_response(slow, 0ms).has_value());

  auto slow_response = client.wait_response(slow, 20s);
  REQUIRE(slow_response.has_value());
  std::string error = error_text((*slow_response)["result"]);
  CHECK(has(error, "no complete answer from 127.0.0.1:" + std::to_string(dribbler.port()) + " unit 1 within 3000 ms"));
  CHECK(has(error, "modbus.response_timeout_ms"));
  check_still_serves(client, "modbus_read", read_of(healthy.port()));
}

TEST_CASE("hostile modbus: malformed answers are refused as invalid, naming what is wrong") {
  ModbusServer healthy;
  ModbusMcpd mcpd(3000);
  McpClient& client = *mcpd.client;
  struct Case {
    Fault fault;
    const char* says;
  };
  const Case cases[] = {
      {Fault::wrong_length, "MBAP length 15, but the answer to a read of 1 holding register has length 5"},
      {Fault::wrong_unit, "unit id 8, but the request was for unit 7"},
      {Fault::wrong_transaction, "transaction id 1001, but the request was 1"},
      {Fault::wrong_protocol, "protocol id 1, where Modbus is 0"},
      {Fault::wrong_function, "function code 0x11 in the answer to function 0x03"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.says);
    FakeModbusDevice fake(c.fault);
    std::string error = error_text(client.call_tool("modbus_read", read_of(fake.port(), {{"unit", 7}}), 10s));
    CHECK(has(error, "invalid response from 127.0.0.1:" + std::to_string(fake.port()) + " unit 7: "));
    CHECK(has(error, c.says));
  }
  check_still_serves(client, "modbus_read", read_of(healthy.port()));
}

TEST_CASE("hostile modbus: a device that drops idle connections, one that never answers, hosts not allowed") {
  ModbusServer healthy;
  ModbusMcpd mcpd(3000);
  McpClient& client = *mcpd.client;

  // Every second request on a connection finds it closed: each read still succeeds, on a new one.
  FakeModbusDevice dropper(Fault::close_on_second);
  for (int i = 0; i < 3; ++i) {
    json r = client.call_tool("modbus_read", read_of(dropper.port(), {{"address", 10 + i}}), 10s);
    CHECK_MESSAGE(r["isError"] == false, r.dump());
    CHECK(r["structuredContent"]["registers"][0] == 110 + i);
  }
  CHECK(dropper.connections() == 3);  // the first, and one after each closed connection
  CHECK(dropper.requests() == 5);

  // A silent device holds only the calls to itself: a cancel ends the wait, the worker lives on.
  FakeModbusDevice silent(Fault::silent);
  json hung = call_id(client, read_of(silent.port()));
  REQUIRE(eventually([&] { return silent.requests() == 1; }));
  CHECK(client.call_tool("modbus_read", read_of(healthy.port()), 10s)["isError"] == false);
  client.notify("notifications/cancelled", {{"requestId", hung}});
  CHECK(client.call_tool("modbus_read", read_of(healthy.port()), 10s)["isError"] == false);

  // Hosts outside the list are refused before any connection, naming the setting.
  for (const char* host : {"10.1.2.3", "192.168.0.1", "::2"}) {
    CAPTURE(host);
    std::string error = error_text(client.call_tool("modbus_read", read_of(0, {{"host", host}, {"port", 502}}), 10s));
    CHECK(has(error, std::string("host '") + host + "'"));
    CHECK(has(error, "is not in modbus.allowed_hosts (127.0.0.1); add it to allow connections"));
  }
  json group = {{"name", "outside"}, {"host", "10.1.2.3"}, {"mode", "HANDSHAKE"},
                {"tags", {{{"name", "t"}, {"address", 0}}}}};
  CHECK(has(error_text(client.call_tool("modbus_group_create", group, 10s)), "modbus.allowed_hosts"));
  check_still_serves(client, "modbus_read", read_of(healthy.port()));
}

}  // namespace
