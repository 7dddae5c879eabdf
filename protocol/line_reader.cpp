#include "line_reader.h"

#include "jsonrpc.h"

namespace mcpd {

namespace {

bool is_blank(std::string_view line) {
  return line.find_first_not_of(" \t\r") == std::string_view::npos;
}

// After a long line the buffer's capacity stays at its high-water mark; give it back once empty.
constexpr std::size_t release_capacity_above = std::size_t{1} << 20;

}  // namespace

LineReader::LineReader(std::size_t max_line_bytes) : max_line_bytes_(max_line_bytes) {}

void LineReader::feed(std::string_view bytes) {
  if (discarding_) {
    auto newline = bytes.find('\n');
    if (newline == std::string_view::npos) return;
    discarding_ = false;
    bytes.remove_prefix(newline + 1);
  }
  if (start_ > 0) {
    buffer_.erase(0, start_);
    scanned_ -= start_;
    start_ = 0;
  }
  if (buffer_.empty() && buffer_.capacity() > release_capacity_above) std::string().swap(buffer_);
  buffer_.append(bytes);
}

LineReader::Event LineReader::next() {
  for (;;) {
    auto newline = buffer_.find('\n', scanned_);
    if (newline == std::string::npos) {
      scanned_ = buffer_.size();
      const std::size_t seen = buffer_.size() - start_;
      // A final "\r" may be the first half of "\r\n": it does not count against the limit.
      const bool maybe_crlf = seen > 0 && buffer_.back() == '\r';
      if (seen - (maybe_crlf ? 1 : 0) > max_line_bytes_) {
        buffer_.clear();
        start_ = scanned_ = 0;
        discarding_ = true;
        return too_long(seen, false);
      }
      return Event{};
    }
    std::string_view line(buffer_.data() + start_, newline - start_);
    start_ = scanned_ = newline + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line_bytes_) return too_long(line.size(), true);
    if (is_blank(line)) continue;
    Event event;
    event.kind = Event::Kind::line;
    event.line.assign(line);
    return event;
  }
}

std::optional<std::string> LineReader::flush_at_eof() {
  std::optional<std::string> last;
  if (!discarding_) {
    std::string_view rest(buffer_.data() + start_, buffer_.size() - start_);
    if (!rest.empty() && rest.back() == '\r') rest.remove_suffix(1);
    if (!is_blank(rest) && rest.size() <= max_line_bytes_) last.emplace(rest);
  }
  std::string().swap(buffer_);
  start_ = scanned_ = 0;
  discarding_ = false;
  return last;
}

LineReader::Event LineReader::too_long(std::size_t bytes, bool complete) const {
  Event event;
  event.kind = Event::Kind::line_too_long;
  event.bytes = bytes;
  event.message = std::string("line of ") + (complete ? "" : "at least ") + std::to_string(bytes) +
                  " bytes exceeds the limit of " + std::to_string(max_line_bytes_) + " bytes";
  return event;
}

ParsedLine decode_line(std::string_view line, std::size_t max_depth) {
  ParsedLine parsed;
  JsonText text = parse_json_text(line, max_depth);
  if (text.ok) {
    parsed.ok = true;
    parsed.value = std::move(text.value);
  } else {
    parsed.error_response = make_error(nullptr, error_code::parse_error, "Parse error: " + text.error);
  }
  return parsed;
}

std::string encode_line(const json& message) {
  std::string line = dump_json(message);
  line.push_back('\n');
  return line;
}

}  // namespace mcpd
