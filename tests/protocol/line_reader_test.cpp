#include <doctest/doctest.h>

#include <random>
#include <string>
#include <vector>

#include "jsonrpc.h"
#include "line_reader.h"

using mcpd::json;
using mcpd::LineReader;
using Kind = LineReader::Event::Kind;

namespace {

// Everything next() yields until need_more: lines as-is, overlong reports as "!too_long:<bytes>".
std::vector<std::string> drain(LineReader& reader) {
  std::vector<std::string> out;
  for (;;) {
    auto event = reader.next();
    if (event.kind == Kind::need_more) return out;
    if (event.kind == Kind::line) out.push_back(event.line);
    if (event.kind == Kind::line_too_long) out.push_back("!too_long:" + std::to_string(event.bytes));
  }
}

std::vector<std::string> read_all(std::string_view stream, std::size_t chunk,
                                  std::size_t max = LineReader::default_max_line_bytes) {
  LineReader reader(max);
  std::vector<std::string> out;
  for (std::size_t i = 0; i < stream.size(); i += chunk) {
    reader.feed(stream.substr(i, chunk));
    for (auto& line : drain(reader)) out.push_back(line);
  }
  if (auto last = reader.flush_at_eof()) out.push_back(*last);
  return out;
}

using Lines = std::vector<std::string>;

}  // namespace

TEST_CASE("line reader answers need_more until a newline arrives") {
  LineReader reader;
  CHECK(reader.next().kind == Kind::need_more);
  reader.feed(R"({"a":1})");
  CHECK(reader.next().kind == Kind::need_more);
  reader.feed("\n");
  auto event = reader.next();
  REQUIRE(event.kind == Kind::line);
  CHECK(event.line == R"({"a":1})");
  CHECK(reader.next().kind == Kind::need_more);
}

TEST_CASE("line reader reassembles lines fed one byte at a time") {
  const std::string stream = "{\"id\":1}\n{\"id\":2}\n{\"id\":3}\n";
  CHECK(read_all(stream, 1) == Lines{R"({"id":1})", R"({"id":2})", R"({"id":3})"});
}

TEST_CASE("line reader yields many lines from one read") {
  std::string stream;
  Lines expected;
  for (int i = 0; i < 1000; ++i) {
    expected.push_back("{\"n\":" + std::to_string(i) + "}");
    stream += expected.back() + "\n";
  }
  CHECK(read_all(stream, stream.size()) == expected);
  CHECK(read_all(stream, 7) == expected);
}

TEST_CASE("line reader strips a trailing carriage return (CRLF), even split across reads") {
  CHECK(read_all("{}\r\n[1]\r\n", 100) == Lines{"{}", "[1]"});
  CHECK(read_all("{}\r\n[1]\r\n", 1) == Lines{"{}", "[1]"});
  // Only the one "\r" before "\n" is framing; others belong to the line.
  CHECK(read_all("a\r\r\n", 100) == Lines{"a\r"});
}

TEST_CASE("line reader skips empty and whitespace-only lines") {
  CHECK(read_all("\n\n  \n\t\r\n{}\n \r\n\n[]\n", 3) == Lines{"{}", "[]"});
  CHECK(read_all("   ", 1).empty());
}

TEST_CASE("line reader returns an unterminated last line at EOF") {
  CHECK(read_all("{}\n{\"last\":true}", 4) == Lines{"{}", R"({"last":true})"});
  CHECK(read_all("{\"last\":true}\r", 4) == Lines{R"({"last":true})"});

  LineReader reader;
  reader.feed("{}\n");
  drain(reader);
  CHECK_FALSE(reader.flush_at_eof().has_value());
}

TEST_CASE("an overlong line is reported once and the next line is still read") {
  const std::size_t max = 100;
  const std::string big(1000, 'x');
  const std::string stream = "{}\n" + big + "\n{\"after\":1}\n";
  SUBCASE("arriving whole") {
    CHECK(read_all(stream, stream.size(), max) ==
          Lines{"{}", "!too_long:1000", R"({"after":1})"});
  }
  SUBCASE("arriving in pieces: reported as soon as it passes the limit") {
    auto lines = read_all(stream, 10, max);
    REQUIRE(lines.size() == 3);
    CHECK(lines[0] == "{}");
    CHECK(lines[1].rfind("!too_long:", 0) == 0);
    CHECK(std::stoul(lines[1].substr(10)) > max);
    CHECK(lines[2] == R"({"after":1})");
  }
  SUBCASE("arriving byte by byte") {
    CHECK(read_all(stream, 1, max) == Lines{"{}", "!too_long:101", R"({"after":1})"});
  }
}

TEST_CASE("the overlong-line report says how long it was and what the limit is") {
  LineReader reader(10);
  reader.feed(std::string(20, 'y') + "\n");
  auto event = reader.next();
  REQUIRE(event.kind == Kind::line_too_long);
  CHECK(event.bytes == 20);
  CHECK(event.message == "line of 20 bytes exceeds the limit of 10 bytes");

  LineReader partial(10);
  partial.feed(std::string(15, 'y'));
  event = partial.next();
  REQUIRE(event.kind == Kind::line_too_long);
  CHECK(event.message == "line of at least 15 bytes exceeds the limit of 10 bytes");
}

TEST_CASE("a line of exactly the limit is accepted, CRLF or not; one byte more is not") {
  const std::size_t max = 64;
  const std::string exact(max, 'a');
  CHECK(read_all(exact + "\n", 1, max) == Lines{exact});
  CHECK(read_all(exact + "\r\n", 1, max) == Lines{exact});
  CHECK(read_all(exact, 1, max) == Lines{exact});
  CHECK(read_all(exact + "a\n" + "{}\n", 1, max) == Lines{"!too_long:65", "{}"});
}

TEST_CASE("an overlong unterminated line at EOF yields nothing more") {
  CHECK(read_all(std::string(500, 'z'), 50, 100) == Lines{"!too_long:150"});
}

TEST_CASE("line reader memory stays within the limit plus one read while discarding") {
  const std::size_t max = 1000;
  const std::size_t chunk = 4096;
  LineReader reader(max);
  std::string junk(chunk, 'q');
  std::size_t reports = 0;
  for (int i = 0; i < 1000; ++i) {  // 4 MB of one endless line
    reader.feed(junk);
    CHECK(reader.buffered() <= max + 1 + chunk);
    for (auto& line : drain(reader)) {
      CHECK(line.rfind("!too_long:", 0) == 0);
      ++reports;
    }
    CHECK(reader.buffered() <= max + 1 + chunk);
  }
  CHECK(reports == 1);
  reader.feed("\n{\"ok\":true}\n");
  CHECK(drain(reader) == Lines{R"({"ok":true})"});
  CHECK(reader.buffered() <= max + 1 + chunk);
}

TEST_CASE("line reader memory stays bounded across many lines fed in small pieces") {
  const std::size_t max = 256;
  LineReader reader(max);
  std::string line = "{\"payload\":\"" + std::string(200, 'p') + "\"}\n";
  std::size_t count = 0;
  for (int i = 0; i < 500; ++i) {
    for (std::size_t at = 0; at < line.size(); at += 37) {
      reader.feed(std::string_view(line).substr(at, 37));
      CHECK(reader.buffered() <= max + 1 + 37);
      count += drain(reader).size();
    }
  }
  CHECK(count == 500);
}

TEST_CASE("is_valid_utf8 accepts well-formed text of every length") {
  CHECK(mcpd::is_valid_utf8(""));
  CHECK(mcpd::is_valid_utf8("plain ascii"));
  CHECK(mcpd::is_valid_utf8("\xC3\xA9"));          // é
  CHECK(mcpd::is_valid_utf8("\xE2\x82\xAC"));      // €
  CHECK(mcpd::is_valid_utf8("\xED\x9F\xBF"));      // U+D7FF, just below the surrogates
  CHECK(mcpd::is_valid_utf8("\xEE\x80\x80"));      // U+E000, just above them
  CHECK(mcpd::is_valid_utf8("\xF0\x9F\x98\x80"));  // 😀
  CHECK(mcpd::is_valid_utf8("\xF4\x8F\xBF\xBF"));  // U+10FFFF
}

TEST_CASE("is_valid_utf8 rejects overlongs, surrogates, values past U+10FFFF and cut sequences") {
  CHECK_FALSE(mcpd::is_valid_utf8("\xC0\xAF"));          // overlong '/'
  CHECK_FALSE(mcpd::is_valid_utf8("\xC1\xBF"));          // overlong
  CHECK_FALSE(mcpd::is_valid_utf8("\xE0\x80\xAF"));      // overlong 3-byte
  CHECK_FALSE(mcpd::is_valid_utf8("\xF0\x80\x80\xAF"));  // overlong 4-byte
  CHECK_FALSE(mcpd::is_valid_utf8("\xED\xA0\x80"));      // U+D800
  CHECK_FALSE(mcpd::is_valid_utf8("\xED\xBF\xBF"));      // U+DFFF
  CHECK_FALSE(mcpd::is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
  CHECK_FALSE(mcpd::is_valid_utf8("\xF5\x80\x80\x80"));
  CHECK_FALSE(mcpd::is_valid_utf8("\xFF"));
  CHECK_FALSE(mcpd::is_valid_utf8("\x80"));              // lone continuation
  CHECK_FALSE(mcpd::is_valid_utf8("\xC3"));              // cut at end
  CHECK_FALSE(mcpd::is_valid_utf8("\xE2\x82"));          // cut at end
  CHECK_FALSE(mcpd::is_valid_utf8("\xF0\x9F\x98"));      // cut at end
  CHECK_FALSE(mcpd::is_valid_utf8("\xE2\x82x"));         // cut by an ASCII byte
}

TEST_CASE("find_invalid_utf8 reports the offset of the first bad sequence") {
  CHECK(mcpd::find_invalid_utf8("ok\xC3\xA9 then \xFF") == std::optional<std::size_t>(10));
  CHECK_FALSE(mcpd::find_invalid_utf8("fine").has_value());
}

TEST_CASE("decode_line parses a valid line") {
  auto parsed = mcpd::decode_line(R"({"jsonrpc":"2.0","method":"ping","id":1})");
  REQUIRE(parsed.ok);
  CHECK(parsed.value["method"] == "ping");
}

TEST_CASE("replace_invalid_utf8 replaces each bad byte with U+FFFD and keeps valid text") {
  const std::string r = "\xEF\xBF\xBD";
  CHECK(mcpd::replace_invalid_utf8("plain") == "plain");
  CHECK(mcpd::replace_invalid_utf8("caf\xC3\xA9") == "caf\xC3\xA9");
  CHECK(mcpd::replace_invalid_utf8("a\xFF" "b") == "a" + r + "b");
  CHECK(mcpd::replace_invalid_utf8("\xC0\xAF") == r + r);        // an overlong '/' is two bad bytes
  CHECK(mcpd::replace_invalid_utf8("x\xE2\x82") == "x" + r + r);  // a sequence cut at the end
  CHECK(mcpd::replace_invalid_utf8("\xED\xA0\x80ok") == r + r + r + "ok");  // a surrogate
  CHECK(mcpd::replace_invalid_utf8("") == "");
}

TEST_CASE("decode_line answers invalid UTF-8 with a parse error naming the byte") {
  auto parsed = mcpd::decode_line("{\"a\":\"\xC3\x28\"}");
  REQUIRE_FALSE(parsed.ok);
  CHECK(parsed.error_response["id"].is_null());
  CHECK(parsed.error_response["error"]["code"] == mcpd::error_code::parse_error);
  CHECK(parsed.error_response["error"]["message"] == "Parse error: invalid UTF-8 at byte 6");
}

TEST_CASE("decode_line answers invalid JSON with a parse error carrying nlohmann's description") {
  auto parsed = mcpd::decode_line(R"({"jsonrpc":"2.0",)");
  REQUIRE_FALSE(parsed.ok);
  CHECK(parsed.error_response["jsonrpc"] == "2.0");
  CHECK(parsed.error_response["id"].is_null());
  CHECK(parsed.error_response["error"]["code"] == -32700);
  std::string message = parsed.error_response["error"]["message"];
  CHECK(message.rfind("Parse error: ", 0) == 0);
  CHECK(message.find("parse error at line 1") != std::string::npos);
  CHECK(message.find("[json.exception") == std::string::npos);
}

TEST_CASE("decode_line refuses absurd nesting instead of building a value that overflows the stack") {
  std::string deep(100000, '[');
  deep += std::string(100000, ']');
  auto parsed = mcpd::decode_line(deep);
  REQUIRE_FALSE(parsed.ok);
  CHECK(parsed.error_response["error"]["message"] == "Parse error: nesting deeper than 512 levels");

  // Brackets inside strings do not count.
  auto quoted = mcpd::decode_line("{\"s\":\"" + std::string(1000, '[') + "\"}");
  CHECK(quoted.ok);
  std::string nested_ok = std::string(512, '[') + std::string(512, ']');
  CHECK(mcpd::decode_line(nested_ok).ok);
}

TEST_CASE("encode_line writes one compact line and replaces invalid UTF-8") {
  std::string line = mcpd::encode_line(json{{"text", "a\nb"}, {"bin", std::string("\xFF")}});
  CHECK(line.back() == '\n');
  CHECK(line.find('\n') == line.size() - 1);
  auto parsed = mcpd::decode_line(std::string_view(line).substr(0, line.size() - 1));
  REQUIRE(parsed.ok);
  CHECK(parsed.value["text"] == "a\nb");
  CHECK(parsed.value["bin"] == "\xEF\xBF\xBD");
}

TEST_CASE("random lines split at random points all come back, overlong ones reported once each") {
  std::mt19937 rng(7);
  auto uniform = [&](std::size_t lo, std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
  };
  const std::size_t max = 200;
  std::string stream;
  Lines expected;
  for (int i = 0; i < 3000; ++i) {
    std::string line(uniform(1, 260), ' ');
    for (char& c : line) c = static_cast<char>(uniform(0x21, 0x7E));
    stream += line + (uniform(0, 1) ? "\r\n" : "\n");
    if (uniform(0, 4) == 0) stream += " \n";  // blank lines are skipped
    expected.push_back(line.size() > max ? "!too_long" : line);
  }

  LineReader reader(max);
  Lines received;
  for (std::size_t at = 0; at < stream.size();) {
    std::size_t size = std::min(uniform(1, 500), stream.size() - at);
    reader.feed(std::string_view(stream).substr(at, size));
    at += size;
    CHECK(reader.buffered() <= max + 1 + size);
    for (auto& line : drain(reader)) {
      received.push_back(line.rfind("!too_long:", 0) == 0 ? "!too_long" : line);
    }
  }
  CHECK_FALSE(reader.flush_at_eof().has_value());
  CHECK(received == expected);
}
