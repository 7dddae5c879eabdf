// MCP's stdio framing: one JSON-RPC message per line, lines ending in "\n" (a "\r" before it is
// dropped). LineReader is a pure state machine in the manner of Asio's HTTP request_parser: the
// connection feeds it whatever bytes arrived and calls next() until it answers need_more.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json_text.h"

namespace mcpd {

using json = nlohmann::json;

/// Splits a byte stream into lines with bounded memory. A line longer than the limit is dropped as
/// it arrives (never buffered whole), reported once, and reading resumes after its newline. Empty
/// and whitespace-only lines are skipped. Call next() until need_more after every feed(): then the
/// buffer holds at most max_line_bytes + 1 pending bytes plus what the next feed() adds.
class LineReader {
 public:
  static constexpr std::size_t default_max_line_bytes = std::size_t{4} << 20;

  /// What next() found.
  struct Event {
    enum class Kind { line, need_more, line_too_long };
    Kind kind = Kind::need_more;
    std::string line;       // line: the line without its "\n" or "\r\n"
    std::size_t bytes = 0;  // line_too_long: the line's length, or the bytes seen so far if its end
                            // has not arrived yet (the rest is discarded silently)
    std::string message;    // line_too_long: "line of at least 5000000 bytes exceeds the limit of
                            // 4194304 bytes"
  };

  explicit LineReader(std::size_t max_line_bytes = default_max_line_bytes);

  /// Appends bytes; while an overlong line is being discarded, drops them up to its newline.
  void feed(std::string_view bytes);

  /// The next complete line, an overlong-line report, or need_more.
  Event next();

  /// At end of input: the final line if it had no newline, is not blank, and is within the limit.
  /// Call after next() has answered need_more. Leaves the reader empty.
  std::optional<std::string> flush_at_eof();

  /// Bytes held in the internal buffer, consumed or not (for checking the memory bound).
  std::size_t buffered() const { return buffer_.size(); }

  std::size_t max_line_bytes() const { return max_line_bytes_; }

 private:
  Event too_long(std::size_t bytes, bool complete) const;

  std::size_t max_line_bytes_;
  std::string buffer_;
  std::size_t start_ = 0;     // first byte of the pending line
  std::size_t scanned_ = 0;   // no "\n" in [start_, scanned_): feeding byte by byte stays linear
  bool discarding_ = false;   // inside an overlong line already reported
};

/// Either the JSON value of a line, or the error response to send for it.
struct ParsedLine {
  bool ok = false;
  json value;           // when ok
  json error_response;  // when !ok: a -32700 JSON-RPC error response with id null
};

/// Parses one line as JSON. Invalid UTF-8 gives "Parse error: invalid UTF-8 at byte N" (N counted
/// from 0); invalid JSON gives "Parse error: " and nlohmann's description; nesting deeper than
/// max_depth is refused the same way (see json_text.h for why).
ParsedLine decode_line(std::string_view line, std::size_t max_depth = default_max_json_depth);

/// Serializes a message as one line, "\n" included. Invalid UTF-8 inside strings (a tool echoing
/// a binary file) becomes U+FFFD instead of throwing, and the output never contains a raw newline.
std::string encode_line(const json& message);

}  // namespace mcpd
