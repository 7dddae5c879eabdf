// Cache keys: a BLAKE2b-256 digest of (tool name, canonical arguments, extra). Keys are values built by
// whoever looks up the cache (the coordinator's router); nothing here owns state.
//
// Contract:
// - Two calls get the same key exactly when the tool name, the canonical JSON of the arguments and the
//   extra bytes are all equal (up to BLAKE2b-256 collisions).
// - canonical_json is compact (no whitespace) with object keys sorted by byte order at every depth, so
//   member order never matters; array order does. Strings are written as UTF-8 as-is (no \u escapes
//   beyond those JSON requires). JSON types are kept: "1" and 1 differ, and so do 1 and 1.0; signed
//   and unsigned integers of the same value are equal.
// - The three parts are length-prefixed before hashing, so no choice of tool / arguments / extra can
//   spill into another part ("ab"+"c" never equals "a"+"bc").
// - extra is opaque to the cache: the caller puts there whatever else the result depends on (for a
//   file-reading tool: each file's path, size and mtime).
// - canonical_json and make_cache_key throw nlohmann::json::type_error on a string that is not valid
//   UTF-8 rather than replace bytes, since replacing would map different arguments to one key.
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// A 32-byte BLAKE2b-256 digest naming one cacheable call.
struct CacheKey {
  std::array<std::uint8_t, 32> bytes{};

  friend auto operator<=>(const CacheKey&, const CacheKey&) = default;

  /// 64 lowercase hex digits.
  std::string hex() const;
};

/// Compact JSON with object keys sorted at every depth; see the contract above.
std::string canonical_json(const json& value);

/// BLAKE2b-256 over len(tool) tool len(args) canonical_json(args) len(extra) extra, each length a
/// little-endian uint64.
CacheKey make_cache_key(std::string_view tool, const json& arguments, std::string_view extra = {});

/// Unkeyed BLAKE2b of data with an out_bytes digest (1..64), as lowercase hex. For tests and tools;
/// throws std::invalid_argument on an out-of-range size.
std::string blake2b_hex(std::string_view data, std::size_t out_bytes);

}  // namespace mcpd

/// Keys are already uniformly distributed digests, so their first 8 bytes are a good hash.
template <>
struct std::hash<mcpd::CacheKey> {
  std::size_t operator()(const mcpd::CacheKey& key) const noexcept;
};
