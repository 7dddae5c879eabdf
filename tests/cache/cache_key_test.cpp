// Specification of cache/cache_key.h: one TEST_CASE per sentence of its contract.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <unordered_set>

#include <doctest/doctest.h>

#include "cache_key.h"

using mcpd::blake2b_hex;
using mcpd::CacheKey;
using mcpd::canonical_json;
using mcpd::json;
using mcpd::make_cache_key;

namespace {

std::string le64(std::uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out;
}

std::string prefixed(const std::string& s) { return le64(s.size()) + s; }

// Runs `b2sum -l <bits>` on data; empty when b2sum fails or is not installed.
std::string b2sum_hex(const std::string& data, int bits) {
  char path[] = "/tmp/mcpd_cache_key_testXXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return {};
  FILE* f = fdopen(fd, "wb");
  std::fwrite(data.data(), 1, data.size(), f);
  std::fclose(f);
  const std::string cmd = "b2sum -l " + std::to_string(bits) + " " + path + " 2>/dev/null";
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (std::fgets(buf, sizeof buf, p)) out += buf;
    if (pclose(p) != 0) out.clear();
  }
  std::remove(path);
  const auto space = out.find(' ');
  return space == std::string::npos ? std::string{} : out.substr(0, space);
}

}  // namespace

TEST_CASE("blake2b matches the RFC 7693 test vector for \"abc\"") {
  CHECK(blake2b_hex("abc", 64) ==
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518"
        "d38aa8dbf1925ab92386edd4009923");
  CHECK(blake2b_hex("", 64) ==
        "786a02f742015903c6c6fd852552d272912f4740e15847618a86e217f71f5419d25e1031afee585313896444934eb04b"
        "903a685b1448b755d56f701afe9be2ce");
  // BLAKE2b-256 is its own parameterization, not a truncated BLAKE2b-512.
  CHECK(blake2b_hex("abc", 32) == "bddd813c634239723171ef3fee98579b94964e3bb1cb3e427262c8c068d52319");
}

// b2sum is part of coreutils, which setup.sh installs: a missing one is a broken machine, not a
// reason to pass.
TEST_CASE("blake2b agrees with coreutils b2sum") {
  const std::string data = std::string("mcpd\0cache\xff", 11) + std::string(1000, 'x');
  for (int bits : {256, 512}) {
    const std::string expected = b2sum_hex(data, bits);
    REQUIRE_MESSAGE(!expected.empty(), "b2sum -l " << bits << " gave no digest (is coreutils' b2sum installed?)");
    CHECK(expected.size() == static_cast<std::size_t>(bits / 4));
    CHECK(blake2b_hex(data, static_cast<std::size_t>(bits / 8)) == expected);
  }
}

TEST_CASE("blake2b_hex rejects digest sizes outside 1..64") {
  CHECK_THROWS_AS(blake2b_hex("abc", 0), std::invalid_argument);
  CHECK_THROWS_AS(blake2b_hex("abc", 65), std::invalid_argument);
  CHECK(blake2b_hex("abc", 1).size() == 2);
}

TEST_CASE("the key is BLAKE2b-256 over length-prefixed tool, canonical arguments and extra") {
  const json args = {{"path", "src/main.cpp"}, {"depth", 2}};
  const std::string encoding =
      prefixed("parse_file") + prefixed(R"({"depth":2,"path":"src/main.cpp"})") + prefixed("id:42");
  CHECK(make_cache_key("parse_file", args, "id:42").hex() == blake2b_hex(encoding, 32));
  CHECK(make_cache_key("t", json::object()).hex() ==
        blake2b_hex(prefixed("t") + prefixed("{}") + prefixed(""), 32));
}

TEST_CASE("the same call gives the same key") {
  const json args = {{"q", "foo"}, {"limit", 10}};
  CHECK(make_cache_key("search", args, "x") == make_cache_key("search", json(args), "x"));
}

TEST_CASE("object member order does not change the key") {
  const json ba = json::parse(R"({"b":1,"a":2})");
  const json ab = json::parse(R"({"a":2,"b":1})");
  CHECK(canonical_json(ba) == canonical_json(ab));
  CHECK(make_cache_key("t", ba) == make_cache_key("t", ab));
}

TEST_CASE("canonical_json is compact and sorts nested objects at every depth") {
  const json v = json::parse(R"({ "b" : { "d" : 1, "c" : [3, {"z": 0, "y": 1}] }, "a" : null })");
  CHECK(canonical_json(v) == R"({"a":null,"b":{"c":[3,{"y":1,"z":0}],"d":1}})");
  CHECK(make_cache_key("t", v) ==
        make_cache_key("t", json::parse(R"({"a":null,"b":{"d":1,"c":[3,{"y":1,"z":0}]}})")));
}

TEST_CASE("canonical_json orders keys by byte order") {
  const json v = json::parse(R"({"aa":1,"a":2,"B":3,"é":4,"_":5})");
  // 'B' 0x42 < '_' 0x5f < 'a' 0x61 < "aa" < "é" 0xc3 0xa9
  CHECK(canonical_json(v) == R"({"B":3,"_":5,"a":2,"aa":1,"é":4})");
}

TEST_CASE("canonical_json writes UTF-8 as-is and escapes only what JSON requires") {
  const json v = {{"s", "naïve ☃ \"q\"\n"}};
  CHECK(canonical_json(v) == "{\"s\":\"naïve ☃ \\\"q\\\"\\n\"}");
}

TEST_CASE("invalid UTF-8 throws instead of being replaced") {
  const json bad = {{"s", std::string("\xff\xfe")}};
  CHECK_THROWS_AS(canonical_json(bad), json::type_error);
  CHECK_THROWS_AS(make_cache_key("t", bad), json::type_error);
}

TEST_CASE("array order changes the key") {
  CHECK(make_cache_key("t", json::array({1, 2})) != make_cache_key("t", json::array({2, 1})));
}

TEST_CASE("JSON types are kept: \"1\" differs from 1, and 1 from 1.0") {
  CHECK(make_cache_key("t", {{"n", "1"}}) != make_cache_key("t", {{"n", 1}}));
  CHECK(make_cache_key("t", {{"n", 1}}) != make_cache_key("t", {{"n", 1.0}}));
  CHECK(make_cache_key("t", {{"n", true}}) != make_cache_key("t", {{"n", 1}}));
  CHECK(make_cache_key("t", json(nullptr)) != make_cache_key("t", json::object()));
}

TEST_CASE("signed and unsigned integers of the same value give the same key") {
  CHECK(make_cache_key("t", {{"n", 7u}}) == make_cache_key("t", {{"n", 7}}));
}

TEST_CASE("a different tool, arguments or extra gives a different key") {
  const json args = {{"path", "a.c"}};
  const CacheKey base = make_cache_key("parse", args, "a.c:120:1700000000");
  CHECK(make_cache_key("outline", args, "a.c:120:1700000000") != base);
  CHECK(make_cache_key("parse", {{"path", "b.c"}}, "a.c:120:1700000000") != base);
  CHECK(make_cache_key("parse", args, "a.c:121:1700000000") != base);
  CHECK(make_cache_key("parse", args) != base);
}

TEST_CASE("length prefixes keep bytes from moving between parts") {
  // Without prefixes these pairs would hash the same byte string.
  CHECK(make_cache_key("x", json::object(), "y") != make_cache_key("y", json::object(), "x"));
  CHECK(make_cache_key("ab", json::object(), "") != make_cache_key("a", json::object(), "b"));
  CHECK(make_cache_key("", json::object(), "") != make_cache_key("", json::object(), std::string(1, '\0')));
}

TEST_CASE("CacheKey hex is 64 lowercase hex digits of its bytes") {
  CacheKey key;
  for (std::size_t i = 0; i < key.bytes.size(); ++i) key.bytes[i] = static_cast<std::uint8_t>(i * 9);
  const std::string hex = key.hex();
  CHECK(hex.size() == 64);
  CHECK(hex.substr(0, 8) == "0009121b");
  CHECK(hex.find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("CacheKey compares by its bytes") {
  CacheKey a, b;
  b.bytes[31] = 1;
  CHECK(a == a);
  CHECK(a != b);
  CHECK(a < b);
  std::set<CacheKey> ordered{b, a};
  CHECK(*ordered.begin() == a);
}

TEST_CASE("std::hash of a CacheKey uses its first 8 bytes") {
  CacheKey a, b;
  a.bytes[0] = 0x11;
  b.bytes[0] = 0x11;
  b.bytes[20] = 0xff;  // beyond the hashed prefix
  std::hash<CacheKey> h;
  CHECK(h(a) == h(b));
  CHECK(a != b);
  CacheKey c = a;
  c.bytes[7] = 1;
  CHECK(h(c) != h(a));

  std::unordered_set<CacheKey> set{make_cache_key("t", 1), make_cache_key("t", 2), make_cache_key("t", 1)};
  CHECK(set.size() == 2);
}
