// The coordinator <-> worker wire format: a 4-byte big-endian unsigned length, then that many bytes
// of UTF-8 JSON holding one JSON object, written compactly (no raw newline in it). The object may be
// followed by a newline and a second JSON text, the frame's raw part: bytes the reader checks (JSON,
// depth) but does not parse into a value, so a result can be passed on as it came. FrameReader is a pure state machine: the connection feeds it
// bytes and calls next() until it answers need_more.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "json_text.h"

namespace mcpd {

using json = nlohmann::json;

inline constexpr std::size_t frame_header_bytes = 4;

/// A frame holding `message` serialized compactly. Invalid UTF-8 inside strings becomes U+FFFD
/// rather than throwing (tool output may quote binary files).
std::string encode_frame(const json& message);

/// A frame around text that is already serialized JSON. (Not an overload of encode_frame: a string
/// literal converts to both json and string_view.) Throws std::length_error past 4 GiB - 1.
std::string encode_frame_text(std::string_view json_text);

/// A frame of `header` (an object) followed by the raw part `raw`, serialized JSON passed on as is.
std::string encode_frame_with_raw(const json& header, std::string_view raw);
/// The same, with the header already serialized (compact JSON, no newline): for a hot path that
/// writes its few members by hand.
std::string encode_frame_with_raw_text(std::string_view header, std::string_view raw);

/// Splits a byte stream into frames and parses each one. Errors inside one frame (empty, not JSON,
/// not an object) consume that frame and reading goes on; a header over the limit leaves no way to
/// find the next frame, so the reader fails for good and repeats that error.
class FrameReader {
 public:
  static constexpr std::size_t default_max_frame_bytes = std::size_t{64} << 20;

  /// A named failure with a message a person can act on.
  struct Error {
    enum class Kind {
      oversize,    // header declares more than the limit; sticky
      empty,       // zero-length payload; skipped
      not_json,    // payload is not UTF-8 JSON; skipped
      too_deep,    // payload nests deeper than the depth limit; skipped
      not_object,  // payload is JSON but not an object; skipped
      truncated,   // from finish(): input ended inside a header or payload
    };
    Kind kind = Kind::not_json;
    std::string message;  // "frame declares 70000000 bytes, over the limit of 67108864"
  };

  /// What next() found.
  struct Event {
    enum class Kind { frame, need_more, error };
    Kind kind = Kind::need_more;
    json frame;   // frame: the payload, always an object
    std::string raw;  // frame: the raw part (checked JSON text), empty when the frame has none
    Error error;  // error
  };

  explicit FrameReader(std::size_t max_frame_bytes = default_max_frame_bytes,
                       std::size_t max_depth = default_max_json_depth);

  void feed(const char* data, std::size_t size);
  void feed(std::string_view bytes) { feed(bytes.data(), bytes.size()); }

  /// The next frame, an error, or need_more.
  Event next();

  /// At end of input: nullopt if the stream ended cleanly between frames, the sticky error if the
  /// reader had failed, else a truncated error saying how many bytes were expected and present.
  /// Call after next() has answered need_more.
  std::optional<Error> finish() const;

  /// True once an oversize header has been seen.
  bool failed() const { return failed_.has_value(); }

  /// Bytes held in the internal buffer, consumed or not (for checking the memory bound).
  std::size_t buffered() const { return buffer_.size(); }

 private:
  std::size_t max_frame_bytes_;
  std::size_t max_depth_;
  std::string buffer_;
  std::size_t start_ = 0;  // first unconsumed byte; the consumed prefix is dropped now and then
  std::optional<Error> failed_;
};

}  // namespace mcpd
