// Reading members of JSON a peer sent, where every member may be absent, null or of the wrong type.
// nlohmann's `operator[]` on a const object with a missing key is undefined behaviour, `get<T>()`
// and `value(key, default)` throw type_error when the member has another type, and `front()` of an
// empty value is undefined: none of them is safe on input. These accessors never throw and never
// reach undefined behaviour; each returns nothing (or the fallback) for absent, null or mistyped.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcpd {

/// The member `key` of `object`, or null when `object` is not an object or has no such member.
inline const nlohmann::json* member(const nlohmann::json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  auto it = object.find(key);
  return it == object.end() ? nullptr : &*it;
}

/// The member `key` when it is an object.
inline const nlohmann::json* optional_object(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  return value && value->is_object() ? value : nullptr;
}

/// The member `key` when it is an array.
inline const nlohmann::json* optional_array(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  return value && value->is_array() ? value : nullptr;
}

/// The member `key` when it is a string.
inline std::optional<std::string> optional_string(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  if (!value || !value->is_string()) return std::nullopt;
  return value->get_ref<const std::string&>();
}

/// The member `key` when it is a string, else `fallback`.
inline std::string string_or(const nlohmann::json& object, std::string_view key, std::string fallback) {
  auto value = optional_string(object, key);
  return value ? std::move(*value) : std::move(fallback);
}

/// The member `key` when it is a boolean.
inline std::optional<bool> optional_bool(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  if (!value || !value->is_boolean()) return std::nullopt;
  return value->get<bool>();
}

/// The member `key` when it is a non-negative integer (floats, negatives and booleans are refused).
inline std::optional<std::uint64_t> optional_uint(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  if (!value) return std::nullopt;
  if (value->is_number_unsigned()) return value->get<std::uint64_t>();
  if (value->is_number_integer() && value->get<std::int64_t>() >= 0)
    return static_cast<std::uint64_t>(value->get<std::int64_t>());
  return std::nullopt;
}

/// The member `key` when it is an integer (signed or not) that fits an int64.
inline std::optional<std::int64_t> optional_int(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  if (!value) return std::nullopt;
  if (value->is_number_unsigned()) {
    auto u = value->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(u);
  }
  if (value->is_number_integer()) return value->get<std::int64_t>();
  return std::nullopt;
}

/// The member `key` when it is a number of any kind, as a double.
inline std::optional<double> optional_number(const nlohmann::json& object, std::string_view key) {
  const nlohmann::json* value = member(object, key);
  if (!value || !value->is_number()) return std::nullopt;
  return value->get<double>();
}

}  // namespace mcpd
