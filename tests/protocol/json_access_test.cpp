// Specification of protocol/json_access.h: members of untrusted JSON read without throwing and
// without undefined behaviour, whatever is absent, null or of another type.
#include <doctest/doctest.h>

#include <limits>

#include "json_access.h"

using json = nlohmann::json;
using namespace mcpd;

namespace {

/// Every kind of value a peer may put where a member belongs.
const json& odd_values() {
  static const json values = json::array({nullptr, true, false, 0, -1, 1.5, "", "x", json::array(), json::array({1}),
                                          json::object(), {{"a", 1}}, std::numeric_limits<std::uint64_t>::max()});
  return values;
}

}  // namespace

TEST_CASE("member is null for a missing key or a non-object, never an insertion or a throw") {
  const json object = {{"a", 1}};
  CHECK(member(object, "a") != nullptr);
  CHECK(member(object, "b") == nullptr);
  CHECK(object.size() == 1);  // nothing was inserted
  for (const auto& v : odd_values())
    if (!v.is_object()) CHECK(member(v, "a") == nullptr);
}

TEST_CASE("each accessor accepts exactly its type and returns nothing for every other") {
  for (const auto& v : odd_values()) {
    CAPTURE(v.dump());
    const json object = {{"k", v}};
    CHECK(optional_string(object, "k").has_value() == v.is_string());
    CHECK(optional_bool(object, "k").has_value() == v.is_boolean());
    CHECK(optional_object(object, "k") == (v.is_object() ? &object["k"] : nullptr));
    CHECK(optional_array(object, "k") == (v.is_array() ? &object["k"] : nullptr));
    CHECK(optional_number(object, "k").has_value() == v.is_number());
    bool non_negative_integer = v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0);
    CHECK(optional_uint(object, "k").has_value() == non_negative_integer);
    bool fits_int64 = v.is_number_integer() && !(v.is_number_unsigned() && v.get<std::uint64_t>() > INT64_MAX);
    CHECK(optional_int(object, "k").has_value() == fits_int64);
    // Absent is nothing too.
    CHECK_FALSE(optional_string(object, "missing"));
    CHECK_FALSE(optional_uint(v, "k"));  // v is no object holding "k" (only {"a":1} is an object)
  }
}

TEST_CASE("values come back as given, and string_or falls back only when the member is not a string") {
  const json object = {{"s", "text"}, {"n", 42}, {"neg", -7}, {"f", 2.5}, {"b", true}};
  CHECK(*optional_string(object, "s") == "text");
  CHECK(*optional_uint(object, "n") == 42);
  CHECK(*optional_int(object, "neg") == -7);
  CHECK_FALSE(optional_uint(object, "neg"));
  CHECK(*optional_number(object, "f") == 2.5);
  CHECK(*optional_number(object, "n") == 42.0);
  CHECK(*optional_bool(object, "b") == true);
  CHECK(string_or(object, "s", "fallback") == "text");
  CHECK(string_or(object, "n", "fallback") == "fallback");
  CHECK(string_or(object, "missing", "fallback") == "fallback");
  CHECK(string_or(json("not an object"), "s", "fallback") == "fallback");
}
