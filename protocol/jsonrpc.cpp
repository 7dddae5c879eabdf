#include "jsonrpc.h"

#include <utility>

namespace mcpd {

namespace {

// A value for an error message: whole if short, cut otherwise (a client's 1 MiB "jsonrpc" member
// should not come back in full).
std::string short_dump(const json& value) {
  constexpr std::size_t limit = 40;
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > limit) text = text.substr(0, limit) + "...";
  return text;
}

ParseOutcome fail(std::string message, json reply_id) {
  ParseOutcome outcome;
  outcome.error.code = error_code::invalid_request;
  outcome.error.message = std::move(message);
  outcome.error.id = std::move(reply_id);
  return outcome;
}

bool is_error_object(const json& error) {
  if (!error.is_object()) return false;
  auto code = error.find("code");
  auto message = error.find("message");
  return code != error.end() && code->is_number_integer() && message != error.end() &&
         message->is_string();
}

}  // namespace

std::string json_type_name(const json& value) {
  switch (value.type()) {
    case json::value_t::null:
      return "null";
    case json::value_t::boolean:
      return "boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
      return "integer";
    case json::value_t::number_float:
      return "number";
    case json::value_t::string:
      return "string";
    case json::value_t::array:
      return "array";
    case json::value_t::object:
      return "object";
    default:
      return "binary";
  }
}

bool is_valid_id(const json& id) { return id.is_string() || id.is_number_integer(); }

bool is_batch(const json& value) { return value.is_array(); }

ParseOutcome parse_message(json value) {
  if (!value.is_object()) {
    return fail("message must be a JSON object, got " + json_type_name(value), nullptr);
  }
  const bool has_method = value.contains("method");
  const bool has_id = value.contains("id");
  const bool has_result = value.contains("result");
  const bool has_error = value.contains("error");

  json reply_id = nullptr;
  const bool looks_like_response = !has_method && (has_result || has_error);
  if (!looks_like_response && has_id && is_valid_id(value["id"])) reply_id = value["id"];

  auto version = value.find("jsonrpc");
  if (version == value.end()) return fail("missing jsonrpc member (must be \"2.0\")", reply_id);
  if (*version != "2.0") {
    return fail("jsonrpc must be \"2.0\", got " + short_dump(*version), reply_id);
  }

  Message message;
  if (has_method) {
    if (has_result || has_error) {
      return fail("a message with a method must not have result or error", reply_id);
    }
    const json& method = value["method"];
    if (!method.is_string()) {
      return fail("method must be a string, got " + json_type_name(method), reply_id);
    }
    if (has_id && !is_valid_id(value["id"])) {
      return fail("id must be a string or an integer, got " + json_type_name(value["id"]), reply_id);
    }
    auto params = value.find("params");
    if (params != value.end()) {
      if (!params->is_object() && !params->is_array()) {
        return fail("params must be an object or an array, got " + json_type_name(*params),
                    reply_id);
      }
      message.params = std::move(*params);
    }
    message.kind = has_id ? Message::Kind::request : Message::Kind::notification;
    if (has_id) message.id = value["id"];
    message.method = method.get<std::string>();
  } else if (has_result || has_error) {
    if (has_result && has_error) {
      return fail("a response must have exactly one of result and error, not both", reply_id);
    }
    if (!has_id) return fail("a response must have an id", reply_id);
    const json& id = value["id"];
    // JSON-RPC lets an error response carry a null id when the request's id could not be read.
    if (!is_valid_id(id) && !(id.is_null() && has_error)) {
      return fail("id must be a string or an integer, got " + json_type_name(id), reply_id);
    }
    if (has_error && !is_error_object(value["error"])) {
      return fail("error must be an object with an integer code and a string message", reply_id);
    }
    message.kind = Message::Kind::response;
    message.id = id;
    if (has_result) message.result = std::move(value["result"]);
    if (has_error) message.error = std::move(value["error"]);
  } else {
    return fail("message has no method, result or error", reply_id);
  }

  ParseOutcome outcome;
  outcome.message = std::move(message);
  return outcome;
}

json make_result(const json& id, json result) {
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json make_error(const json& id, int code, std::string message, json data) {
  json error{{"code", code}, {"message", std::move(message)}};
  if (!data.is_null()) error["data"] = std::move(data);
  return json{{"jsonrpc", "2.0"}, {"id", id}, {"error", std::move(error)}};
}

json make_error(const ParseError& error) { return make_error(error.id, error.code, error.message); }

json make_notification(std::string method, json params) {
  json message{{"jsonrpc", "2.0"}, {"method", std::move(method)}};
  if (!params.is_null()) message["params"] = std::move(params);
  return message;
}

json make_request(json id, std::string method, json params) {
  json message{{"jsonrpc", "2.0"}, {"id", std::move(id)}, {"method", std::move(method)}};
  if (!params.is_null()) message["params"] = std::move(params);
  return message;
}

std::string id_key(const json& id) {
  if (id.is_string()) return "s:" + id.get_ref<const std::string&>();
  if (id.is_number_integer()) return "n:" + id.dump();
  if (id.is_null()) return "null";
  // Not a legal id, but still a distinct key rather than a throw.
  return "x:" + id.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace mcpd
