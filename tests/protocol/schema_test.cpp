#include <doctest/doctest.h>

#include <string>

#include "schema.h"

using mcpd::check_schema;
using mcpd::json;
using mcpd::validate_schema;

namespace {

// The validation message, or "ok".
std::string verdict(const json& schema, const json& instance) {
  return validate_schema(schema, instance).value_or("ok");
}

std::string verdict(const char* schema, const char* instance) {
  return verdict(json::parse(schema), json::parse(instance));
}

json object_with(const char* name, json property) {
  return json{{"type", "object"}, {"properties", {{name, std::move(property)}}}};
}

}  // namespace

TEST_CASE("schema: an empty schema or true accepts anything; false accepts nothing") {
  CHECK(verdict(json::object(), json{{"x", 1}}) == "ok");
  CHECK(verdict(json(true), json::array()) == "ok");
  CHECK(verdict(object_with("x", false), json{{"x", 1}}) == "argument 'x': is not allowed");
  CHECK(verdict(object_with("x", false), json::object()) == "ok");
}

TEST_CASE("schema: type names the argument, the expected type and what was given") {
  json schema = object_with("max_depth", {{"type", "integer"}});
  CHECK(verdict(schema, json{{"max_depth", 3}}) == "ok");
  CHECK(verdict(schema, json{{"max_depth", "3"}}) ==
        "argument 'max_depth': must be an integer, got string");
  CHECK(verdict(json{{"type", "object"}}, json::array()) == "arguments: must be an object, got array");
  CHECK(verdict(object_with("s", {{"type", "string"}}), json{{"s", nullptr}}) ==
        "argument 's': must be a string, got null");
  CHECK(verdict(object_with("b", {{"type", "boolean"}}), json{{"b", 0}}) ==
        "argument 'b': must be a boolean, got integer");
  CHECK(verdict(object_with("a", {{"type", "array"}}), json{{"a", json::object()}}) ==
        "argument 'a': must be an array, got object");
  CHECK(verdict(object_with("n", {{"type", "null"}}), json{{"n", nullptr}}) == "ok");
}

TEST_CASE("schema: integer accepts whole numbers written as floats but not fractions") {
  json schema = object_with("n", {{"type", "integer"}});
  CHECK(verdict(schema, json::parse(R"({"n":3})")) == "ok");
  CHECK(verdict(schema, json::parse(R"({"n":3.0})")) == "ok");
  CHECK(verdict(schema, json::parse(R"({"n":-0.0})")) == "ok");
  CHECK(verdict(schema, json::parse(R"({"n":18446744073709551615})")) == "ok");
  CHECK(verdict(schema, json::parse(R"({"n":3.5})")) == "argument 'n': must be an integer, got number");
}

TEST_CASE("schema: number accepts integers and fractions alike") {
  json schema = object_with("x", {{"type", "number"}});
  CHECK(verdict(schema, json{{"x", 3}}) == "ok");
  CHECK(verdict(schema, json{{"x", 3.25}}) == "ok");
  CHECK(verdict(schema, json{{"x", "3"}}) == "argument 'x': must be a number, got string");
}

TEST_CASE("schema: a list of types accepts any of them and names them all") {
  json schema = object_with("v", {{"type", {"string", "null"}}});
  CHECK(verdict(schema, json{{"v", "a"}}) == "ok");
  CHECK(verdict(schema, json{{"v", nullptr}}) == "ok");
  CHECK(verdict(schema, json{{"v", 1}}) == "argument 'v': must be a string or null, got integer");
  CHECK(verdict(object_with("v", {{"type", {"string", "integer", "array"}}}), json{{"v", true}}) ==
        "argument 'v': must be a string, an integer or an array, got boolean");
}

TEST_CASE("schema: required names the missing argument, with its path when nested") {
  const char* schema = R"({"type":"object","required":["code"],"properties":{"code":{"type":"string"},
    "options":{"type":"object","required":["limit"],"properties":{"limit":{"type":"integer"}}}}})";
  CHECK(verdict(schema, R"({"code":"x"})") == "ok");
  CHECK(verdict(schema, R"({})") == "missing required argument 'code'");
  CHECK(verdict(schema, R"({"code":"x","options":{}})") == "missing required argument 'options.limit'");
}

TEST_CASE("schema: additionalProperties false rejects unknown arguments and lists the allowed ones") {
  const char* schema =
      R"({"type":"object","properties":{"code":{},"format":{}},"additionalProperties":false})";
  CHECK(verdict(schema, R"({"code":"x"})") == "ok");
  CHECK(verdict(schema, R"({"code":"x","foo":1})") == "unknown argument 'foo' (allowed: code, format)");
  CHECK(verdict(R"({"type":"object","additionalProperties":false})", R"({"foo":1})") ==
        "unknown argument 'foo' (no arguments are accepted)");
  CHECK(verdict(R"({"type":"object","properties":{"a":{}},"additionalProperties":true})",
                R"({"foo":1})") == "ok");
  CHECK(verdict(R"({"type":"object","properties":{"a":{}}})", R"({"foo":1})") == "ok");
}

TEST_CASE("schema: unknown arguments are named with their path when nested") {
  const char* schema = R"({"type":"object","properties":{"options":{"type":"object",
    "properties":{"limit":{}},"additionalProperties":false}}})";
  CHECK(verdict(schema, R"({"options":{"limti":1}})") ==
        "unknown argument 'options.limti' (allowed: limit)");
}

TEST_CASE("schema: enum lists the allowed values") {
  json schema = object_with("format", {{"enum", {"sexp", "json"}}});
  CHECK(verdict(schema, json{{"format", "json"}}) == "ok");
  CHECK(verdict(schema, json{{"format", "xml"}}) ==
        R"(argument 'format': must be one of "sexp", "json")");
  CHECK(verdict(object_with("n", {{"enum", {1, 2, nullptr}}}), json{{"n", "1"}}) ==
        "argument 'n': must be one of 1, 2, null");
}

TEST_CASE("schema: const requires exactly that value") {
  json schema = object_with("v", {{"const", "fixed"}});
  CHECK(verdict(schema, json{{"v", "fixed"}}) == "ok");
  CHECK(verdict(schema, json{{"v", "other"}}) == R"(argument 'v': must be "fixed")");
}

TEST_CASE("schema: minimum, maximum and their exclusive forms bound numbers") {
  json schema = object_with("limit", {{"minimum", 1}, {"maximum", 10}});
  CHECK(verdict(schema, json{{"limit", 1}}) == "ok");
  CHECK(verdict(schema, json{{"limit", 10}}) == "ok");
  CHECK(verdict(schema, json{{"limit", 0}}) == "argument 'limit': must be >= 1");
  CHECK(verdict(schema, json{{"limit", 10.5}}) == "argument 'limit': must be <= 10");

  json exclusive = object_with("x", {{"exclusiveMinimum", 0}, {"exclusiveMaximum", 1.5}});
  CHECK(verdict(exclusive, json{{"x", 0.5}}) == "ok");
  CHECK(verdict(exclusive, json{{"x", 0}}) == "argument 'x': must be > 0");
  CHECK(verdict(exclusive, json{{"x", 1.5}}) == "argument 'x': must be < 1.5");

  // Bounds apply to numbers only; other types pass (type says what is allowed).
  CHECK(verdict(schema, json{{"limit", "zero"}}) == "ok");
}

TEST_CASE("schema: nested numeric bounds name the dotted path") {
  const char* schema = R"({"type":"object","properties":{"options":{"type":"object",
    "properties":{"limit":{"type":"integer","minimum":1}}}}})";
  CHECK(verdict(schema, R"({"options":{"limit":0}})") == "argument 'options.limit': must be >= 1");
}

TEST_CASE("schema: minLength and maxLength count code points, not bytes") {
  json schema = object_with("name", {{"minLength", 2}, {"maxLength", 3}});
  CHECK(verdict(schema, json{{"name", "ab"}}) == "ok");
  CHECK(verdict(schema, json{{"name", "\xC3\xA9\xC3\xA9\xC3\xA9"}}) == "ok");  // 3 chars, 6 bytes
  CHECK(verdict(schema, json{{"name", "\xF0\x9F\x98\x80"}}) ==
        "argument 'name': must be at least 2 characters long");
  CHECK(verdict(schema, json{{"name", "abcd"}}) ==
        "argument 'name': must be at most 3 characters long");
  CHECK(verdict(object_with("c", {{"minLength", 1}}), json{{"c", ""}}) ==
        "argument 'c': must be at least 1 character long");
}

TEST_CASE("schema: items applies to every element and names the index") {
  json schema = object_with("paths", {{"type", "array"}, {"items", {{"type", "string"}}}});
  CHECK(verdict(schema, json{{"paths", {"a", "b"}}}) == "ok");
  CHECK(verdict(schema, json{{"paths", json::array()}}) == "ok");
  CHECK(verdict(schema, json{{"paths", {"a", "b", 3}}}) ==
        "argument 'paths[2]': must be a string, got integer");
}

TEST_CASE("schema: paths combine indexes and members at any depth") {
  const char* schema = R"({"type":"object","properties":{"edits":{"type":"array","items":{
    "type":"object","required":["line"],"properties":{"line":{"type":"integer","minimum":1},
    "tags":{"type":"array","items":{"enum":["a","b"]}}}}}}})";
  CHECK(verdict(schema, R"({"edits":[{"line":1},{"line":0}]})") ==
        "argument 'edits[1].line': must be >= 1");
  CHECK(verdict(schema, R"({"edits":[{"line":1},{}]})") == "missing required argument 'edits[1].line'");
  CHECK(verdict(schema, R"({"edits":[{"line":1,"tags":["a","c"]}]})") ==
        R"(argument 'edits[0].tags[1]': must be one of "a", "b")");
}

TEST_CASE("schema: minItems and maxItems bound array length") {
  json schema = object_with("paths", {{"minItems", 1}, {"maxItems", 2}});
  CHECK(verdict(schema, json{{"paths", {"a"}}}) == "ok");
  CHECK(verdict(schema, json{{"paths", json::array()}}) ==
        "argument 'paths': must have at least 1 item");
  CHECK(verdict(schema, json{{"paths", {1, 2, 3}}}) ==
        "argument 'paths': must have at most 2 items");
}

TEST_CASE("schema: anyOf accepts a value matching any branch") {
  json schema = object_with("v", {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}, {"minimum", 1}}}}});
  CHECK(verdict(schema, json{{"v", "s"}}) == "ok");
  CHECK(verdict(schema, json{{"v", 5}}) == "ok");
}

TEST_CASE("schema: anyOf with no match reports the one branch of the right type, else no form") {
  json schema = object_with("v", {{"anyOf", {{{"type", "string"}}, {{"type", "integer"}, {"minimum", 1}}}}});
  CHECK(verdict(schema, json{{"v", 0}}) == "argument 'v': must be >= 1");
  CHECK(verdict(schema, json{{"v", true}}) == "argument 'v': does not match any allowed form");
}

TEST_CASE("schema: oneOf needs exactly one matching branch") {
  json schema = object_with("v", {{"oneOf", {{{"type", "integer"}}, {{"type", "number"}, {"minimum", 10}}}}});
  CHECK(verdict(schema, json{{"v", 2}}) == "ok");
  CHECK(verdict(schema, json{{"v", 2.5}}) == "argument 'v': must be >= 10");
  CHECK(verdict(schema, json{{"v", 12}}) == "argument 'v': matches more than one allowed form");
  CHECK(verdict(schema, json{{"v", "x"}}) == "argument 'v': does not match any allowed form");
}

TEST_CASE("schema: annotations are ignored by validation") {
  const char* schema = R"({"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object",
    "title":"T","description":"D","properties":{"n":{"type":"integer","default":3,"examples":[1]}}})";
  CHECK(verdict(schema, R"({"n":1})") == "ok");
  CHECK(check_schema(json::parse(schema)) == std::nullopt);
}

TEST_CASE("schema: validation of a hostile deep instance stops at the schema's depth") {
  json deep = json::array();
  for (int i = 0; i < 100; ++i) deep = json::array({deep});
  json schema = object_with("x", {{"type", "array"}, {"items", {{"type", "array"}}}});
  CHECK(verdict(schema, json{{"x", deep}}) == "ok");
}

TEST_CASE("check_schema accepts the supported subset") {
  const char* schema = R"({"type":"object","required":["code"],"additionalProperties":false,
    "properties":{"code":{"type":"string","minLength":1,"maxLength":100000},
      "format":{"enum":["sexp","json"],"default":"sexp"},
      "max_depth":{"type":["integer","null"],"minimum":0,"maximum":1000},
      "ratio":{"type":"number","exclusiveMinimum":0,"exclusiveMaximum":1},
      "paths":{"type":"array","items":{"type":"string","format":"uri"},"minItems":1,"maxItems":10},
      "mode":{"const":"fast"},
      "either":{"anyOf":[{"type":"string"},{"type":"integer"}]},
      "one":{"oneOf":[{"type":"string"},true]}}})";
  CHECK(check_schema(json::parse(schema)) == std::nullopt);
  CHECK(check_schema(json(true)) == std::nullopt);
  CHECK(check_schema(json::object()) == std::nullopt);
}

TEST_CASE("check_schema rejects unsupported keywords, naming where they are") {
  CHECK(check_schema(json::parse(R"({"type":"string","pattern":"^a"})")) ==
        "schema: unsupported keyword 'pattern'");
  CHECK(check_schema(json::parse(R"({"properties":{"a":{"$ref":"#/$defs/x"}}})")) ==
        "schema at 'properties.a': unsupported keyword '$ref'");
  CHECK(check_schema(json::parse(R"({"patternProperties":{"^x":{}}})")) ==
        "schema: unsupported keyword 'patternProperties'");
  CHECK(check_schema(json::parse(R"({"properties":{"p":{"items":{"allOf":[]}}}})")) ==
        "schema at 'properties.p.items': unsupported keyword 'allOf'");
  CHECK(check_schema(json::parse(R"({"anyOf":[{},{"not":{}}]})")) ==
        "schema at 'anyOf[1]': unsupported keyword 'not'");
  CHECK(check_schema(json::parse(R"({"requried":["a"]})")) ==
        "schema: unsupported keyword 'requried'");
}

TEST_CASE("check_schema rejects malformed values of supported keywords") {
  auto problem = [](const char* schema) { return check_schema(json::parse(schema)).value_or("ok"); };
  CHECK(problem(R"({"type":"text"})").find("type must be one of") != std::string::npos);
  CHECK(problem(R"({"type":[]})").find("type must be one of") != std::string::npos);
  CHECK(problem(R"({"type":["string",1]})").find("type must be one of") != std::string::npos);
  CHECK(problem(R"({"additionalProperties":{"type":"string"}})") ==
        "schema: additionalProperties must be true or false (a schema there is not supported)");
  CHECK(problem(R"({"items":[{"type":"string"}]})") ==
        "schema: items must be a single schema (the tuple form is not supported)");
  CHECK(problem(R"({"required":"code"})") == "schema: required must be an array of strings");
  CHECK(problem(R"({"enum":[]})") == "schema: enum must be a non-empty array");
  CHECK(problem(R"({"minimum":"1"})") == "schema: minimum must be a number");
  CHECK(problem(R"({"exclusiveMinimum":true})").find("draft-04") != std::string::npos);
  CHECK(problem(R"({"minLength":-1})") == "schema: minLength must be a non-negative integer");
  CHECK(problem(R"({"maxItems":1.5})") == "schema: maxItems must be a non-negative integer");
  CHECK(problem(R"({"anyOf":[]})") == "schema: anyOf must be a non-empty array of schemas");
  CHECK(problem(R"({"properties":{"a":"string"}})") ==
        "schema at 'properties.a': must be an object or a boolean, got string");
  CHECK(problem(R"({"properties":[]})") == "schema: properties must be an object");
}
