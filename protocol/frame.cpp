#include "frame.h"

#include <cstring>
#include <limits>
#include <stdexcept>

namespace mcpd {

namespace {

void put_header(std::string& out, std::size_t length) {
  if (length > std::numeric_limits<std::uint32_t>::max()) {
    throw std::length_error("frame payload of " + std::to_string(length) +
                            " bytes does not fit a 4-byte length");
  }
  const auto n = static_cast<std::uint32_t>(length);
  out.push_back(static_cast<char>((n >> 24) & 0xFF));
  out.push_back(static_cast<char>((n >> 16) & 0xFF));
  out.push_back(static_cast<char>((n >> 8) & 0xFF));
  out.push_back(static_cast<char>(n & 0xFF));
}

std::uint32_t read_header(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) | (std::uint32_t{b[2]} << 8) |
         std::uint32_t{b[3]};
}

FrameReader::Event error_event(FrameReader::Error::Kind kind, std::string message) {
  FrameReader::Event event;
  event.kind = FrameReader::Event::Kind::error;
  event.error.kind = kind;
  event.error.message = std::move(message);
  return event;
}

// Dropping the consumed prefix on every frame would copy the tail again and again (quadratic when
// many small frames arrive in one read); dropping it once it is half the buffer keeps copying linear.
constexpr std::size_t compact_above = 64 * 1024;

// After a large frame the buffer's capacity stays at its high-water mark; give it back once empty.
constexpr std::size_t release_capacity_above = std::size_t{1} << 20;

}  // namespace

std::string encode_frame(const json& message) {
  return encode_frame_text(dump_json(message));
}

std::string encode_frame_text(std::string_view json_text) {
  std::string frame;
  frame.reserve(frame_header_bytes + json_text.size());
  put_header(frame, json_text.size());
  frame.append(json_text);
  return frame;
}

std::string encode_frame_with_raw(const json& header, std::string_view raw) {
  return encode_frame_with_raw_text(dump_json(header), raw);
}

std::string encode_frame_with_raw_text(std::string_view head, std::string_view raw) {
  std::string frame;
  frame.reserve(frame_header_bytes + head.size() + 1 + raw.size());
  put_header(frame, head.size() + 1 + raw.size());
  frame.append(head).append(1, '\n').append(raw);
  return frame;
}

FrameReader::FrameReader(std::size_t max_frame_bytes, std::size_t max_depth)
    : max_frame_bytes_(max_frame_bytes), max_depth_(max_depth) {}

void FrameReader::feed(const char* data, std::size_t size) {
  if (failed_) return;  // nothing after a bad header can be framed: hold no memory for it
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
    if (buffer_.capacity() > release_capacity_above) std::string().swap(buffer_);
  } else if (start_ > compact_above && start_ > buffer_.size() / 2) {
    buffer_.erase(0, start_);
    start_ = 0;
  }
  buffer_.append(data, size);
}

FrameReader::Event FrameReader::next() {
  if (failed_) return error_event(failed_->kind, failed_->message);
  const std::size_t available = buffer_.size() - start_;
  if (available < frame_header_bytes) return Event{};
  const std::size_t length = read_header(buffer_.data() + start_);
  if (length > max_frame_bytes_) {
    failed_ = Error{Error::Kind::oversize, "frame declares " + std::to_string(length) +
                                               " bytes, over the limit of " +
                                               std::to_string(max_frame_bytes_)};
    std::string().swap(buffer_);
    start_ = 0;
    return error_event(failed_->kind, failed_->message);
  }
  if (available - frame_header_bytes < length) return Event{};

  std::string_view payload(buffer_.data() + start_ + frame_header_bytes, length);
  start_ += frame_header_bytes + length;
  if (length == 0) return error_event(Error::Kind::empty, "empty frame (zero-length payload)");

  // A compact JSON object holds no raw newline: the first one ends it and starts the raw part.
  std::string_view raw;
  if (const void* newline = std::memchr(payload.data(), '\n', payload.size())) {
    std::size_t at = static_cast<std::size_t>(static_cast<const char*>(newline) - payload.data());
    raw = payload.substr(at + 1);
    payload = payload.substr(0, at);
    bool too_deep = false;
    if (auto problem = check_json_text(raw, max_depth_, &too_deep))
      return error_event(too_deep ? Error::Kind::too_deep : Error::Kind::not_json,
                         "frame's raw part " + std::string(too_deep ? "" : "is not JSON: ") + *problem);
  }
  JsonText text = parse_json_text(payload, max_depth_);
  if (!text.ok && text.too_deep) return error_event(Error::Kind::too_deep, "frame " + text.error);
  if (!text.ok) return error_event(Error::Kind::not_json, "frame is not JSON: " + text.error);
  if (!text.value.is_object()) {
    return error_event(Error::Kind::not_object,
                       std::string("frame holds a JSON ") + text.value.type_name() +
                           ", not an object");
  }
  Event event;
  event.kind = Event::Kind::frame;
  event.frame = std::move(text.value);
  event.raw = std::string(raw);
  return event;
}

std::optional<FrameReader::Error> FrameReader::finish() const {
  if (failed_) return failed_;
  const std::size_t available = buffer_.size() - start_;
  if (available == 0) return std::nullopt;
  if (available < frame_header_bytes) {
    return Error{Error::Kind::truncated,
                 "input ended inside a frame header: expected 4 bytes, got " +
                     std::to_string(available)};
  }
  const std::size_t length = read_header(buffer_.data() + start_);
  const std::size_t present = available - frame_header_bytes;
  if (present >= length) return std::nullopt;  // a whole frame next() has not taken yet
  return Error{Error::Kind::truncated, "input ended inside a frame: expected " +
                                           std::to_string(length) + " payload bytes, got " +
                                           std::to_string(present)};
}

}  // namespace mcpd
