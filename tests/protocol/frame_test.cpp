#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "frame.h"
#include "json_oracle.h"

using mcpd::encode_frame;
using mcpd::encode_frame_text;
using mcpd::encode_frame_with_raw;
using mcpd::check_json_text;
using mcpd::parse_json_text;
using mcpd::plain_json_prefix;
using mcpd::dump_json;
using mcpd::FrameReader;
using mcpd::json;
using EventKind = FrameReader::Event::Kind;
using ErrorKind = FrameReader::Error::Kind;

namespace {

using mcpd::oracle::same_value;

bool nlohmann_takes(const std::string& text) {
  return mcpd::oracle::nlohmann_takes(text, mcpd::default_max_json_depth);
}

std::string header(std::uint32_t n) {
  return {static_cast<char>(n >> 24), static_cast<char>((n >> 16) & 0xFF),
          static_cast<char>((n >> 8) & 0xFF), static_cast<char>(n & 0xFF)};
}

// Each event until need_more: frames as their JSON, errors as "!<kind>".
std::vector<std::string> drain(FrameReader& reader) {
  std::vector<std::string> out;
  for (;;) {
    auto event = reader.next();
    if (event.kind == EventKind::need_more) return out;
    if (event.kind == EventKind::frame) {
      out.push_back(event.frame.dump());
      continue;
    }
    switch (event.error.kind) {
      case ErrorKind::oversize:
        out.push_back("!oversize");
        return out;  // sticky: next() would repeat it forever
      case ErrorKind::empty:
        out.push_back("!empty");
        break;
      case ErrorKind::not_json:
        out.push_back("!not_json");
        break;
      case ErrorKind::too_deep:
        out.push_back("!too_deep");
        break;
      case ErrorKind::not_object:
        out.push_back("!not_object");
        break;
      case ErrorKind::truncated:
        out.push_back("!truncated");
        break;
    }
  }
}

using Events = std::vector<std::string>;

}  // namespace

TEST_CASE("a frame is a 4-byte big-endian length followed by the compact JSON") {
  std::string frame = encode_frame(json{{"a", 1}});
  CHECK(frame == header(7) + R"({"a":1})");
  CHECK(encode_frame_text("{}") == std::string("\0\0\0\x02{}", 6));
  CHECK(encode_frame_text(std::string(300, ' ')).substr(0, 4) == std::string("\0\0\x01\x2c", 4));
}

TEST_CASE("frames round-trip through the reader") {
  json message{{"id", "7"}, {"result", {{"text", "h\xC3\xA9llo"}, {"n", 1.5}}}};
  FrameReader reader;
  reader.feed(encode_frame(message));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::frame);
  CHECK(event.frame == message);
  CHECK(event.frame["id"].is_string());
  CHECK(reader.next().kind == EventKind::need_more);
  CHECK_FALSE(reader.finish().has_value());
}

TEST_CASE("encode_frame replaces invalid UTF-8 in strings instead of throwing") {
  FrameReader reader;
  reader.feed(encode_frame(json{{"bytes", std::string("a\xFF")}}));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::frame);
  CHECK(event.frame["bytes"] == "a\xEF\xBF\xBD");
}

TEST_CASE("frames fed one byte at a time come out whole") {
  std::string stream = encode_frame(json{{"n", 1}}) + encode_frame(json{{"n", 2}});
  FrameReader reader;
  Events events;
  for (char c : stream) {
    reader.feed(&c, 1);
    for (auto& e : drain(reader)) events.push_back(e);
  }
  CHECK(events == Events{R"({"n":1})", R"({"n":2})"});
  CHECK_FALSE(reader.finish().has_value());
}

TEST_CASE("many frames in one read all come out, in order") {
  std::string stream;
  Events expected;
  for (int i = 0; i < 5000; ++i) {
    json message{{"i", i}};
    stream += encode_frame(message);
    expected.push_back(message.dump());
  }
  FrameReader reader;
  reader.feed(stream);
  CHECK(drain(reader) == expected);
  CHECK_FALSE(reader.finish().has_value());
}

TEST_CASE("a zero-length frame is reported as empty and the stream continues") {
  FrameReader reader;
  reader.feed(header(0) + encode_frame(json{{"ok", true}}));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.kind == ErrorKind::empty);
  CHECK_FALSE(event.error.message.empty());
  CHECK(drain(reader) == Events{R"({"ok":true})"});
}

TEST_CASE("a frame of exactly the maximum length is accepted") {
  const std::size_t max = 1000;
  std::string payload = R"({"s":")" + std::string(max - 8, 'x') + R"("})";
  REQUIRE(payload.size() == max);
  FrameReader reader(max);
  reader.feed(encode_frame_text(payload));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::frame);
  CHECK(event.frame["s"].get<std::string>().size() == max - 8);
}

TEST_CASE("a header over the maximum fails the reader for good") {
  const std::size_t max = 1000;
  FrameReader reader(max);
  reader.feed(header(max + 1) + std::string(max + 1, ' ') + encode_frame(json{{"late", 1}}));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.kind == ErrorKind::oversize);
  CHECK(event.error.message == "frame declares 1001 bytes, over the limit of 1000");
  CHECK(reader.failed());
  CHECK(reader.buffered() == 0);

  reader.feed(encode_frame(json{{"later", 2}}));
  CHECK(reader.buffered() == 0);
  for (int i = 0; i < 3; ++i) {
    auto again = reader.next();
    REQUIRE(again.kind == EventKind::error);
    CHECK(again.error.kind == ErrorKind::oversize);
    CHECK(again.error.message == event.error.message);
  }
  auto at_eof = reader.finish();
  REQUIRE(at_eof.has_value());
  CHECK(at_eof->kind == ErrorKind::oversize);
}

TEST_CASE("the oversize message names the declared size and the default limit") {
  FrameReader reader;
  reader.feed(header(70000000));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.message == "frame declares 70000000 bytes, over the limit of 67108864");
}

TEST_CASE("an oversize header is caught before its payload arrives") {
  FrameReader reader(100);
  reader.feed(header(0xFFFFFFFFu));
  CHECK(reader.next().error.kind == ErrorKind::oversize);
}

TEST_CASE("EOF inside a header is truncated, saying how many bytes were present") {
  FrameReader reader;
  reader.feed(std::string("\0\0", 2));
  CHECK(reader.next().kind == EventKind::need_more);
  auto error = reader.finish();
  REQUIRE(error.has_value());
  CHECK(error->kind == ErrorKind::truncated);
  CHECK(error->message == "input ended inside a frame header: expected 4 bytes, got 2");
}

TEST_CASE("EOF inside a payload is truncated, saying expected versus present bytes") {
  FrameReader reader;
  std::string frame = encode_frame(json{{"key", "value"}});  // 15-byte payload
  reader.feed(std::string_view(frame).substr(0, frame.size() - 5));
  CHECK(reader.next().kind == EventKind::need_more);
  auto error = reader.finish();
  REQUIRE(error.has_value());
  CHECK(error->kind == ErrorKind::truncated);
  CHECK(error->message == "input ended inside a frame: expected 15 payload bytes, got 10");
}

TEST_CASE("a payload that is not JSON is reported and the next frame still decodes") {
  FrameReader reader;
  reader.feed(encode_frame_text("{not json") + encode_frame(json{{"next", 1}}));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.kind == ErrorKind::not_json);
  CHECK(event.error.message.rfind("frame is not JSON: ", 0) == 0);
  CHECK(event.error.message.find("parse error") != std::string::npos);
  CHECK(drain(reader) == Events{R"({"next":1})"});
}

TEST_CASE("a payload nested deeper than the limit is reported as too deep, apart from not JSON, and skipped") {
  // The coordinator tells the two apart: a too-deep answer fails its call, garbage kills the worker.
  FrameReader reader(FrameReader::default_max_frame_bytes, 8);
  reader.feed(encode_frame_text(R"({"a":[[[[[[[[1]]]]]]]]})") + encode_frame_text(R"({"a":[[[[[[1]]]]]]})") +
              encode_frame_text("[[[[[[[[[[not json"));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.kind == ErrorKind::too_deep);
  CHECK(event.error.message == "frame nesting deeper than 8 levels");
  CHECK(drain(reader) == Events{R"({"a":[[[[[[1]]]]]]})", "!too_deep"});
}

TEST_CASE("a payload that is not UTF-8 is reported as not JSON and skipped") {
  FrameReader reader;
  reader.feed(encode_frame_text("{\"a\":\"\xC0\xAF\"}") + encode_frame(json{{"next", 1}}));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.kind == ErrorKind::not_json);
  CHECK(event.error.message == "frame is not JSON: invalid UTF-8 at byte 6");
  CHECK(drain(reader) == Events{R"({"next":1})"});
}

TEST_CASE("a payload that is JSON but not an object is reported and skipped") {
  FrameReader reader;
  reader.feed(encode_frame_text("[1,2]") + encode_frame_text("42") + encode_frame(json::object()));
  auto event = reader.next();
  REQUIRE(event.kind == EventKind::error);
  CHECK(event.error.kind == ErrorKind::not_object);
  CHECK(event.error.message == "frame holds a JSON array, not an object");
  CHECK(drain(reader) == Events{"!not_object", "{}"});
}

TEST_CASE("frame reader memory stays near one frame plus one read") {
  FrameReader reader(4096);
  std::string frame = encode_frame(json{{"p", std::string(1000, 'p')}});
  std::string stream;
  for (int i = 0; i < 2000; ++i) stream += frame;
  std::size_t frames = 0;
  for (std::size_t at = 0; at < stream.size(); at += 333) {
    reader.feed(std::string_view(stream).substr(at, 333));
    frames += drain(reader).size();
    // Consumed bytes are dropped in bulk (up to 64 KiB or half the buffer), never all kept.
    CHECK(reader.buffered() <= 2 * 64 * 1024 + frame.size() + 333);
  }
  CHECK(frames == 2000);
}

TEST_CASE("random frames split at random points all come back in order") {
  std::mt19937 rng(20240611);
  auto uniform = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  std::vector<json> sent;
  std::string stream;
  for (int i = 0; i < 3000; ++i) {
    json message{{"id", i}};
    std::string text(uniform(0, 300), ' ');
    for (char& c : text) c = static_cast<char>(uniform(0x20, 0x7E));
    message["text"] = text;
    if (uniform(0, 3) == 0) message["nested"] = {{"list", {1, 2.5, "x", nullptr, true}}};
    sent.push_back(message);
    stream += encode_frame(message);
  }

  FrameReader reader(1024);
  std::vector<json> received;
  std::size_t at = 0;
  while (at < stream.size()) {
    // Mostly small reads, sometimes a large one spanning many frames.
    std::size_t size = uniform(0, 9) == 0 ? uniform(1, 20000) : uniform(1, 40);
    size = std::min(size, stream.size() - at);
    reader.feed(stream.data() + at, size);
    at += size;
    for (;;) {
      auto event = reader.next();
      if (event.kind == EventKind::need_more) break;
      REQUIRE(event.kind == EventKind::frame);
      received.push_back(std::move(event.frame));
    }
  }
  CHECK_FALSE(reader.finish().has_value());
  REQUIRE(received.size() == sent.size());
  for (std::size_t i = 0; i < sent.size(); ++i) {
    CAPTURE(i);
    CHECK(received[i] == sent[i]);
  }
}

TEST_CASE("a frame's raw part is checked and handed over as it came") {
  FrameReader reader;
  std::string raw = R"({"content":[{"type":"text","text":"caf\u00e9 \"q\""}],"structuredContent":{"n":[1,2.5e-3,-0]},"isError":false})";
  reader.feed(encode_frame_with_raw({{"type", "result"}, {"id", "c1"}}, raw));
  auto event = reader.next();
  REQUIRE(event.kind == FrameReader::Event::Kind::frame);
  CHECK(event.frame["id"] == "c1");
  CHECK(event.raw == raw);
}

TEST_CASE("a raw part that is not JSON, or too deep, is refused and the next frame still decodes") {
  FrameReader reader(FrameReader::default_max_frame_bytes, 4);
  reader.feed(encode_frame_with_raw({{"type", "result"}}, R"({"a":1)"));
  reader.feed(encode_frame_with_raw({{"type", "result"}}, "[[[[[1]]]]]"));
  reader.feed(encode_frame_with_raw({{"type", "result"}}, "{\"a\":\"\xC3\x28\"}"));
  reader.feed(encode_frame({{"type", "pong"}}));
  auto a = reader.next();
  REQUIRE(a.kind == FrameReader::Event::Kind::error);
  CHECK(a.error.kind == ErrorKind::not_json);
  CHECK(a.error.message.find("raw part") != std::string::npos);
  auto b = reader.next();
  REQUIRE(b.kind == FrameReader::Event::Kind::error);
  CHECK(b.error.kind == ErrorKind::too_deep);
  auto c = reader.next();
  REQUIRE(c.kind == FrameReader::Event::Kind::error);
  CHECK(c.error.message == "frame's raw part is not JSON: invalid UTF-8 at byte 6");
  auto d = reader.next();
  REQUIRE(d.kind == FrameReader::Event::Kind::frame);
  CHECK(d.frame["type"] == "pong");
}

TEST_CASE("check_json_text takes exactly what nlohmann's parser takes") {
  // Valid texts, then every one-byte mutation of them (replace with each interesting byte, delete,
  // duplicate) and every prefix: thousands of near-misses, each judged by both.
  const std::vector<std::string> seeds = {
      R"({"a":[1,-2,3.5,4e10,-0.5E-3,true,false,null],"b":{"c":"x\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00"},"d":[]})",
      "[\"caf\xC3\xA9\",\"\xE2\x82\xAC\",\"\xF0\x9F\x98\x80\",{},[[]],0]",
      R"(  {"k" : [ 1 , { "n" : null } ] }  )",
      "\"plain\"", "12", "-0", "true",
      // Strings longer than the checker's eight-byte step, so a mutation lands in every lane of it.
      R"({"a member name of 24 b":"a string of some length, then \"quoted\" words and a tail"})"};
  const std::string bytes = std::string(1, '\0') + "{}[]\":,.-+eE0123456789tfnu\\ \t\n\x01\x7F\x80\xBF\xC0\xC2\xE0\xED\xF0\xF4\xF5\xFF";
  std::size_t judged = 0;
  auto judge = [&](const std::string& text) {
    bool ours = !check_json_text(text).has_value();
    CAPTURE(text);
    CHECK(ours == nlohmann_takes(text));
    auto parsed = parse_json_text(text);
    CHECK(parsed.ok == ours);
    if (parsed.ok && ours) CHECK(same_value(parsed.value, json::parse(text)));
    ++judged;
  };
  for (const auto& seed : seeds) {
    judge(seed);
    for (std::size_t i = 0; i <= seed.size(); ++i) {
      judge(seed.substr(0, i));
      if (i == seed.size()) break;
      for (char b : bytes) {
        std::string m = seed;
        m[i] = b;
        judge(m);
        judge(seed.substr(0, i) + b + seed.substr(i));
      }
      judge(seed.substr(0, i) + seed.substr(i + 1));
    }
  }
  CHECK(judged > 15000);
  CHECK(parse_json_text(std::string("{}\0garbage", 10)).error == "syntax error: NUL byte at byte 2");
  bool too_deep = false;
  CHECK(check_json_text(std::string(600, '[') + std::string(600, ']'), 512, &too_deep).has_value());
  CHECK(too_deep);
  CHECK_FALSE(check_json_text(std::string(512, '[') + std::string(512, ']'), 512).has_value());
}

TEST_CASE("plain_json_prefix stops at the first byte a JSON string cannot hold as it is") {
  auto naive = [](const std::string& text) {
    std::size_t i = 0;
    while (i < text.size()) {
      const auto c = static_cast<unsigned char>(text[i]);
      if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\') break;
      ++i;
    }
    return i;
  };
  std::mt19937 rng(7);
  const std::string specials = std::string(1, '\0') + "\x1F\"\\\x80\xFF\x7F\x20!#[]";
  for (int round = 0; round < 20000; ++round) {
    std::string text(rng() % 40, 'a');
    for (auto& c : text) c = static_cast<char>('a' + rng() % 26);
    // One or two bytes from the edges of the classes, anywhere in the text.
    for (int k = rng() % 3; k > 0 && !text.empty(); --k) text[rng() % text.size()] = specials[rng() % specials.size()];
    CAPTURE(text);
    REQUIRE(plain_json_prefix(text) == naive(text));
  }
  CHECK(plain_json_prefix("0123456789abcdef\"") == 16);
  CHECK(plain_json_prefix("") == 0);
}

TEST_CASE("dump_json writes what nlohmann's dump with the replace handler writes") {
  std::mt19937_64 rng(11);
  const std::string bytes = std::string(1, '\0') + "aZ09 \"\\/\b\f\n\r\t\x01\x1F\x7F" +
                            "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\x80\xBF\xC0\xC3\xED\xA0\x80\xF4\x90\xFF";
  auto text = [&] {
    std::string t;
    // Mostly long plain runs, so the eight-byte scan is crossed at every offset.
    for (auto n = rng() % 24; n > 0; --n) t += rng() % 3 ? static_cast<char>('a' + rng() % 26) : bytes[rng() % bytes.size()];
    return t;
  };
  const std::vector<double> doubles = {0.0, -0.0, 1.0, -2.5, 1e10, 1e-7, 3.141592653589793, 1e300, 5e-324,
                                       123456789012345678.0, std::nan(""), INFINITY};
  std::function<json(int)> value = [&](int depth) -> json {
    switch (rng() % (depth > 3 ? 6 : 8)) {
      case 0: return nullptr;
      case 1: return rng() % 2 == 0;
      case 2: return static_cast<std::int64_t>(rng()) >> (rng() % 64);
      case 3: return rng();  // unsigned, past INT64_MAX half the time
      case 4: return doubles[rng() % doubles.size()];
      case 5: return text();
      case 6: {
        json a = json::array();
        for (auto n = rng() % 4; n > 0; --n) a.push_back(value(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (auto n = rng() % 4; n > 0; --n) o[text()] = value(depth + 1);
        return o;
      }
    }
  };
  for (int round = 0; round < 20000; ++round) {
    json v = value(0);
    const std::string theirs = v.dump(-1, ' ', false, json::error_handler_t::replace);
    CAPTURE(theirs);
    REQUIRE(dump_json(v) == theirs);
  }
  CHECK(dump_json(json::binary({1, 2})) == json(json::binary({1, 2})).dump());
  for (int round = 0; round < 2000; ++round) {
    const std::string t = text();
    std::string ours = "x";
    mcpd::append_json_text(ours, t);
    CAPTURE(t);
    REQUIRE(ours == "x" + json(t).dump(-1, ' ', false, json::error_handler_t::replace));
  }
}

TEST_CASE("parse_json_text builds the value nlohmann's parser builds") {
  // Texts written with escapes, blanks and number forms nlohmann's dump never writes.
  const std::vector<std::string> texts = {
      R"( { "a" : [ 1 , -1 , 0 , -0 , 18446744073709551615 , 18446744073709551616 , -9223372036854775808 ,
            -9223372036854775809 , 1.5 , -0.0 , 1e2 , 1E-2 , 2.5e+3 , 123456789012345678901234567890 ] } )",
      R"({"s":"\u0000\u001f\u00e9\u20ac\ud83d\ude00\"\\\/\b\f\n\r\t","k":"cafÃ© ð"})",
      R"({"dup":1,"dup":{"x":[]},"dup":"last","":null,"t":true,"f":false})",
      "[[[[[]]]],{},{\"\":{}},\"\"]", "\"lone\"", "-12", "3.0", " null "};
  for (const auto& text : texts) {
    CAPTURE(text);
    auto parsed = parse_json_text(text);
    REQUIRE(parsed.ok);
    CHECK(same_value(parsed.value, json::parse(text)));
  }
  // And what dump writes of random values, which is most of what crosses a pipe.
  std::mt19937_64 rng(5);
  std::function<json(int)> value = [&](int depth) -> json {
    switch (rng() % (depth > 3 ? 5 : 7)) {
      case 0: return nullptr;
      case 1: return static_cast<std::int64_t>(rng()) >> (rng() % 64);
      case 2: return rng();
      case 3: return static_cast<double>(static_cast<std::int64_t>(rng())) / static_cast<double>(1 + rng() % 1000);
      case 4: {
        std::string t;
        for (auto n = rng() % 30; n > 0; --n) t += static_cast<char>(rng() % 2 ? 'a' + rng() % 26 : rng() % 0x80);
        return t + (rng() % 4 ? "" : "\xC3\xA9\xE2\x82\xAC");
      }
      case 5: {
        json a = json::array();
        for (auto n = rng() % 4; n > 0; --n) a.push_back(value(depth + 1));
        return a;
      }
      default: {
        json o = json::object();
        for (auto n = rng() % 4; n > 0; --n) o[std::to_string(rng() % 10)] = value(depth + 1);
        return o;
      }
    }
  };
  for (int round = 0; round < 5000; ++round) {
    const std::string text = value(0).dump();
    CAPTURE(text);
    auto parsed = parse_json_text(text);
    REQUIRE(parsed.ok);
    REQUIRE(same_value(parsed.value, json::parse(text)));
  }
}
