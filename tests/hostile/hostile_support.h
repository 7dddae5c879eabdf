// What every hostile-input case ends with: the server still answers, and a normal call of the same
// family succeeds at once (no breaker left open, no worker left hung, no session left broken).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <string>

#include "mcpd_fixture.h"

namespace mcpd::test {

/// A ping answers within a second, and `tool` called with `arguments` succeeds within two.
inline void check_still_serves(McpClient& client, const std::string& tool, const json& arguments) {
  using namespace std::chrono_literals;
  json pong = client.request("ping", json::object(), 1s);
  REQUIRE_MESSAGE(pong.contains("result"), "ping after the hostile input: " << pong.dump());
  json result = client.call_tool(tool, arguments, 2s);
  CHECK_MESSAGE(result["isError"] == false, tool << " after the hostile input: " << result.dump());
}

/// The cheapest normal call: a parse of a one-line C program.
inline json trivial_parse() { return {{"language", "c"}, {"code", "int x;"}}; }

}  // namespace mcpd::test
