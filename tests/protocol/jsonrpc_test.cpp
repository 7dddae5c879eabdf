#include <doctest/doctest.h>

#include <set>

#include "jsonrpc.h"

using mcpd::json;
using mcpd::Message;
using mcpd::parse_message;
namespace error_code = mcpd::error_code;

namespace {

json request_with_id(json id) {
  return json{{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", "tools/list"}};
}

}  // namespace

TEST_CASE("error codes are the JSON-RPC ones plus our server-defined codes") {
  CHECK(error_code::parse_error == -32700);
  CHECK(error_code::invalid_request == -32600);
  CHECK(error_code::method_not_found == -32601);
  CHECK(error_code::invalid_params == -32602);
  CHECK(error_code::internal_error == -32603);
  CHECK(error_code::request_cancelled == -32800);
  CHECK(error_code::server_busy == -32001);
  CHECK(error_code::request_timeout == -32002);
}

TEST_CASE("a request with a string id is accepted and keeps the id a string") {
  auto outcome = parse_message(json::parse(
      R"({"jsonrpc":"2.0","id":"1","method":"tools/call","params":{"name":"x"}})"));
  REQUIRE(outcome.ok());
  const Message& m = *outcome.message;
  CHECK(m.is_request());
  CHECK(m.id == json("1"));
  CHECK(m.id.is_string());
  CHECK(m.method == "tools/call");
  CHECK(m.params == json{{"name", "x"}});
}

TEST_CASE("a request with an integer id is accepted, negative and unsigned alike") {
  for (json id : {json(0), json(-5), json(42u), json(9007199254740993ull)}) {
    auto outcome = parse_message(request_with_id(id));
    REQUIRE(outcome.ok());
    CHECK(outcome.message->is_request());
    CHECK(outcome.message->id == id);
    CHECK(outcome.message->id.is_number_integer());
  }
}

TEST_CASE("a request id of null, float, boolean, object or array is an invalid request") {
  struct Case {
    json id;
    const char* got;
  };
  for (const Case& c : {Case{nullptr, "null"}, Case{1.5, "number"}, Case{1.0, "number"},
                        Case{true, "boolean"}, Case{json::object(), "object"},
                        Case{json::array({1}), "array"}}) {
    CAPTURE(c.id.dump());
    auto outcome = parse_message(request_with_id(c.id));
    REQUIRE_FALSE(outcome.ok());
    CHECK(outcome.error.code == error_code::invalid_request);
    CHECK(outcome.error.message == std::string("id must be a string or an integer, got ") + c.got);
    CHECK(outcome.error.id.is_null());
  }
}

TEST_CASE("a request without params has null params; params present must be an object or array") {
  auto bare = parse_message(request_with_id(7));
  REQUIRE(bare.ok());
  CHECK(bare.message->params.is_null());

  auto positional = parse_message(
      json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", "m"}, {"params", json::array({1, 2})}});
  REQUIRE(positional.ok());
  CHECK(positional.message->params == json::array({1, 2}));

  for (json params : {json(nullptr), json(3), json("x"), json(false)}) {
    auto outcome =
        parse_message(json{{"jsonrpc", "2.0"}, {"id", 7}, {"method", "m"}, {"params", params}});
    REQUIRE_FALSE(outcome.ok());
    CHECK(outcome.error.message.find("params must be an object or an array") == 0);
    CHECK(outcome.error.id == json(7));
  }
}

TEST_CASE("a message with a method and no id is a notification") {
  auto outcome = parse_message(
      json::parse(R"({"jsonrpc":"2.0","method":"notifications/initialized"})"));
  REQUIRE(outcome.ok());
  CHECK(outcome.message->is_notification());
  CHECK(outcome.message->id.is_null());
  CHECK(outcome.message->method == "notifications/initialized");
}

TEST_CASE("a missing or wrong jsonrpc member is an invalid request that still echoes a valid id") {
  auto missing = parse_message(json::parse(R"({"id":3,"method":"ping"})"));
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error.code == error_code::invalid_request);
  CHECK(missing.error.message.find("jsonrpc") != std::string::npos);
  CHECK(missing.error.id == json(3));

  for (json version : {json("1.0"), json(2.0), json(nullptr), json("2.0 ")}) {
    auto wrong =
        parse_message(json{{"jsonrpc", version}, {"id", "abc"}, {"method", "ping"}});
    REQUIRE_FALSE(wrong.ok());
    CHECK(wrong.error.message.find("jsonrpc must be \"2.0\", got ") == 0);
    CHECK(wrong.error.id == json("abc"));
  }
}

TEST_CASE("a message that is not an object is an invalid request with a null id") {
  for (json value : {json(1), json("x"), json(nullptr)}) {
    auto outcome = parse_message(value);
    REQUIRE_FALSE(outcome.ok());
    CHECK(outcome.error.code == error_code::invalid_request);
    CHECK(outcome.error.message.find("message must be a JSON object") == 0);
    CHECK(outcome.error.id.is_null());
  }
}

TEST_CASE("a non-string method is an invalid request") {
  auto outcome = parse_message(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", 5}});
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error.message == "method must be a string, got integer");
  CHECK(outcome.error.id == json(1));
}

TEST_CASE("a message with neither method nor result nor error is an invalid request") {
  auto outcome = parse_message(json{{"jsonrpc", "2.0"}, {"id", 1}});
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error.message == "message has no method, result or error");
  CHECK(outcome.error.id == json(1));
}

TEST_CASE("a message with both a method and a result is rejected as ambiguous") {
  auto outcome = parse_message(json{{"jsonrpc", "2.0"}, {"id", 1}, {"method", "m"}, {"result", 1}});
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error.message.find("must not have result or error") != std::string::npos);
}

TEST_CASE("a success response is accepted, including a null result") {
  auto outcome = parse_message(json::parse(R"({"jsonrpc":"2.0","id":"r1","result":{"roots":[]}})"));
  REQUIRE(outcome.ok());
  CHECK(outcome.message->is_response());
  CHECK_FALSE(outcome.message->is_error_response());
  CHECK(outcome.message->id == json("r1"));
  CHECK(outcome.message->result == json{{"roots", json::array()}});

  auto null_result = parse_message(json::parse(R"({"jsonrpc":"2.0","id":2,"result":null})"));
  REQUIRE(null_result.ok());
  CHECK(null_result.message->result.is_null());
}

TEST_CASE("an error response is accepted, with a null id allowed only for errors") {
  auto outcome = parse_message(json::parse(
      R"({"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"bad","data":[1]}})"));
  REQUIRE(outcome.ok());
  CHECK(outcome.message->is_error_response());
  CHECK(outcome.message->error["code"] == -32600);

  auto null_success = parse_message(json::parse(R"({"jsonrpc":"2.0","id":null,"result":1})"));
  REQUIRE_FALSE(null_success.ok());
  CHECK(null_success.error.message == "id must be a string or an integer, got null");
}

TEST_CASE("a response must have an id and exactly one of result and error") {
  auto both = parse_message(json::parse(
      R"({"jsonrpc":"2.0","id":4,"result":1,"error":{"code":1,"message":"x"}})"));
  REQUIRE_FALSE(both.ok());
  CHECK(both.error.message == "a response must have exactly one of result and error, not both");

  auto no_id = parse_message(json::parse(R"({"jsonrpc":"2.0","result":1})"));
  REQUIRE_FALSE(no_id.ok());
  CHECK(no_id.error.message == "a response must have an id");
}

TEST_CASE("a response's error must be an object with an integer code and a string message") {
  for (const char* error : {R"("boom")", R"({"message":"x"})", R"({"code":"1","message":"x"})",
                            R"({"code":1.5,"message":"x"})", R"({"code":1})"}) {
    CAPTURE(error);
    auto outcome =
        parse_message(json::parse(std::string(R"({"jsonrpc":"2.0","id":1,"error":)") + error + "}"));
    REQUIRE_FALSE(outcome.ok());
    CHECK(outcome.error.message ==
          "error must be an object with an integer code and a string message");
  }
}

TEST_CASE("a malformed response never lends its id to the error reply") {
  // Replying with id 4 could be taken by the client as the answer to its own request 4.
  auto outcome = parse_message(json::parse(
      R"({"jsonrpc":"2.0","id":4,"result":1,"error":{"code":1,"message":"x"}})"));
  REQUIRE_FALSE(outcome.ok());
  CHECK(outcome.error.id.is_null());
}

TEST_CASE("is_batch is true for arrays only, and parse_message rejects batches") {
  json batch = json::array({request_with_id(1)});
  CHECK(mcpd::is_batch(batch));
  CHECK(mcpd::is_batch(json::array()));
  CHECK_FALSE(mcpd::is_batch(request_with_id(1)));
  CHECK_FALSE(parse_message(batch).ok());
}

TEST_CASE("make_result echoes the id with its type") {
  CHECK(mcpd::make_result("1", json{{"ok", true}}).dump() ==
        R"({"id":"1","jsonrpc":"2.0","result":{"ok":true}})");
  CHECK(mcpd::make_result(1, json::object()).dump() == R"({"id":1,"jsonrpc":"2.0","result":{}})");
  CHECK(mcpd::make_result(-3, nullptr)["id"].is_number_integer());
}

TEST_CASE("make_error omits data when null and includes it otherwise") {
  json plain = mcpd::make_error("a", error_code::method_not_found, "Method not found: x");
  CHECK(plain == json::parse(
                     R"({"jsonrpc":"2.0","id":"a","error":{"code":-32601,"message":"Method not found: x"}})"));
  CHECK_FALSE(plain["error"].contains("data"));

  json with_data = mcpd::make_error(nullptr, error_code::parse_error, "Parse error", json{{"at", 3}});
  CHECK(with_data["id"].is_null());
  CHECK(with_data["error"]["data"] == json{{"at", 3}});
}

TEST_CASE("make_error from a ParseError replies with its code, message and id") {
  auto outcome = parse_message(request_with_id(nullptr));
  REQUIRE_FALSE(outcome.ok());
  json reply = mcpd::make_error(outcome.error);
  CHECK(reply["id"].is_null());
  CHECK(reply["error"]["code"] == error_code::invalid_request);
  CHECK(reply["error"]["message"] == outcome.error.message);
}

TEST_CASE("make_notification and make_request omit null params and parse back") {
  json note = mcpd::make_notification("notifications/progress", json{{"progress", 1}});
  auto parsed_note = parse_message(note);
  REQUIRE(parsed_note.ok());
  CHECK(parsed_note.message->is_notification());
  CHECK(parsed_note.message->params == json{{"progress", 1}});
  CHECK_FALSE(mcpd::make_notification("x").contains("params"));

  json request = mcpd::make_request("7", "roots/list");
  CHECK_FALSE(request.contains("params"));
  auto parsed_request = parse_message(request);
  REQUIRE(parsed_request.ok());
  CHECK(parsed_request.message->is_request());
  CHECK(parsed_request.message->id == json("7"));
}

TEST_CASE("id_key distinguishes the string \"1\" from the number 1") {
  CHECK(mcpd::id_key("1") == "s:1");
  CHECK(mcpd::id_key(1) == "n:1");
  CHECK(mcpd::id_key(json(1u)) == mcpd::id_key(json(1)));
  CHECK(mcpd::id_key(nullptr) == "null");
  CHECK(mcpd::id_key("n:1") != mcpd::id_key(1));
  std::set<std::string> keys{mcpd::id_key("1"), mcpd::id_key(1), mcpd::id_key("01"),
                             mcpd::id_key(-1), mcpd::id_key("-1")};
  CHECK(keys.size() == 5);
}
