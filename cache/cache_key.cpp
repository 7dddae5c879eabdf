#include "cache_key.h"

#include <cstring>
#include <map>
#include <stdexcept>
#include <type_traits>

#include <blake2.h>

namespace mcpd {
namespace {

// canonical_json relies on dump() writing members in sorted order, which holds because nlohmann::json
// stores objects in a std::map ordered by std::less (byte order of the UTF-8 key). If the json alias
// ever became ordered_json (insertion order), this stops the build instead of silently changing keys.
template <class T>
struct is_std_map : std::false_type {};
template <class K, class V, class C, class A>
struct is_std_map<std::map<K, V, C, A>> : std::true_type {};
static_assert(is_std_map<json::object_t>::value, "canonical_json needs json objects kept sorted");
static_assert(std::is_same_v<json::object_comparator_t, std::less<>> ||
                  std::is_same_v<json::object_comparator_t, std::less<std::string>>,
              "canonical_json needs json object keys ordered by std::less");

void update_u64(blake2b_state& state, std::uint64_t n) {
  std::uint8_t le[8];
  for (int i = 0; i < 8; ++i) le[i] = static_cast<std::uint8_t>(n >> (8 * i));
  blake2b_update(&state, le, sizeof le);
}

void update_prefixed(blake2b_state& state, std::string_view part) {
  update_u64(state, part.size());
  blake2b_update(&state, reinterpret_cast<const std::uint8_t*>(part.data()), part.size());
}

std::string to_hex(const std::uint8_t* data, std::size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(2 * size);
  for (std::size_t i = 0; i < size; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xf]);
  }
  return out;
}

}  // namespace

std::string CacheKey::hex() const { return to_hex(bytes.data(), bytes.size()); }

std::string canonical_json(const json& value) {
  // indent -1 = compact; ensure_ascii false = UTF-8 as-is; strict = throw on invalid UTF-8.
  return value.dump(-1, ' ', false, json::error_handler_t::strict);
}

CacheKey make_cache_key(std::string_view tool, const json& arguments, std::string_view extra) {
  const std::string args = canonical_json(arguments);
  blake2b_state state;
  CacheKey key;
  if (blake2b_init(&state, key.bytes.size()) != 0) throw std::runtime_error("blake2b_init failed");
  update_prefixed(state, tool);
  update_prefixed(state, args);
  update_prefixed(state, extra);
  if (blake2b_final(&state, key.bytes.data(), key.bytes.size()) != 0)
    throw std::runtime_error("blake2b_final failed");
  return key;
}

std::string blake2b_hex(std::string_view data, std::size_t out_bytes) {
  if (out_bytes < 1 || out_bytes > BLAKE2B_OUTBYTES)
    throw std::invalid_argument("blake2b digest size must be 1..64 bytes, got " +
                                std::to_string(out_bytes));
  std::uint8_t out[BLAKE2B_OUTBYTES];
  // libb2's argument order is (out, in, key, outlen, inlen, keylen).
  if (blake2b(out, data.data(), nullptr, out_bytes, data.size(), 0) != 0)
    throw std::runtime_error("blake2b failed");
  return to_hex(out, out_bytes);
}

}  // namespace mcpd

std::size_t std::hash<mcpd::CacheKey>::operator()(const mcpd::CacheKey& key) const noexcept {
  std::uint64_t h;
  std::memcpy(&h, key.bytes.data(), sizeof h);
  return static_cast<std::size_t>(h);
}
