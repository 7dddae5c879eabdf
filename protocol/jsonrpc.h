// The JSON-RPC 2.0 message model MCP is built on: error codes, one validated Message type, and the
// builders every reply goes through. Pure functions of json values; readers and writers live elsewhere.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// JSON-RPC error codes. The first five are the specification's; the rest are ours, taken from the
/// range JSON-RPC reserves for implementation-defined server errors (-32000..-32099) or, for
/// request_cancelled, from outside every range a client might see.
namespace error_code {
inline constexpr int parse_error = -32700;       // the bytes are not JSON (or not UTF-8)
inline constexpr int invalid_request = -32600;   // JSON, but not a valid JSON-RPC message
inline constexpr int method_not_found = -32601;  // no such method
inline constexpr int invalid_params = -32602;    // params fail the method's (or tool's) schema
inline constexpr int internal_error = -32603;    // our bug or an unexpected failure
/// A call the client cancelled. Internal only: MCP says a cancelled request gets no response, so this
/// code marks the in-flight entry and is never written to the client.
inline constexpr int request_cancelled = -32800;
/// The server is at its queue limit and refuses new work; the client may retry later.
inline constexpr int server_busy = -32001;
/// The call ran past its deadline and was abandoned.
inline constexpr int request_timeout = -32002;
}  // namespace error_code

/// One valid JSON-RPC 2.0 message, as produced by parse_message.
struct Message {
  enum class Kind { request, notification, response };

  Kind kind = Kind::notification;
  json id;             // request, response: a string or an integer, kept with its type (a response
                       // with an error may carry null); notification: null
  std::string method;  // request, notification
  json params;         // request, notification: an object or array; null when absent
  json result;         // response: the result, when it is not an error (may itself be null)
  json error;          // response: the error object {code, message, data?}; null on success

  bool is_request() const { return kind == Kind::request; }
  bool is_notification() const { return kind == Kind::notification; }
  bool is_response() const { return kind == Kind::response; }
  bool is_error_response() const { return kind == Kind::response && !error.is_null(); }
};

/// Why a value is not a valid message, and how to answer it.
struct ParseError {
  int code = error_code::invalid_request;
  std::string message;  // names what is wrong: "id must be a string or an integer, got null"
  /// The id to reply with: the message's id if it had "method" (or neither "result" nor "error") and
  /// its id was a string or integer; otherwise null. A malformed response never lends its id, so an
  /// error we send cannot be mistaken for the answer to one of the client's own requests.
  json id;
};

/// Either a Message or the ParseError saying why not.
struct ParseOutcome {
  std::optional<Message> message;
  ParseError error;  // meaningful only when !ok()

  bool ok() const { return message.has_value(); }
};

/// Validates one JSON-RPC 2.0 message (not a batch: see is_batch) and classifies it, moving its
/// params, result or error into the Message (pass an rvalue to spare a copy).
ParseOutcome parse_message(json value);

/// True if the value is a JSON-RPC batch (an array). Whether batches are allowed depends on the
/// negotiated MCP version (2025-03-26 only), so the server decides; parse_message rejects them.
bool is_batch(const json& value);

/// True if `id` is a legal request id: a string or an integer (MCP forbids null).
bool is_valid_id(const json& id);

/// {"jsonrpc":"2.0","id":id,"result":result}. The id is echoed as given: "1" stays a string.
json make_result(const json& id, json result);

/// {"jsonrpc":"2.0","id":id,"error":{"code","message","data"}}, with "data" omitted when null.
json make_error(const json& id, int code, std::string message, json data = nullptr);

/// The error response answering a ParseError.
json make_error(const ParseError& error);

/// {"jsonrpc":"2.0","method":method,"params":params}, with "params" omitted when null.
json make_notification(std::string method, json params = nullptr);

/// {"jsonrpc":"2.0","id":id,"method":method,"params":params}, with "params" omitted when null.
json make_request(json id, std::string method, json params = nullptr);

/// A map key for an id that keeps types apart: "s:1" for "1", "n:1" for 1, "null" for null.
std::string id_key(const json& id);

/// "string", "integer", "number" (non-integral), "boolean", "null", "object" or "array".
std::string json_type_name(const json& value);

}  // namespace mcpd
