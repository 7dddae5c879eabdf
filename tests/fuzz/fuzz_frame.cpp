// The worker -> coordinator frame stream: bytes cut into reads and split into frames by
// FrameReader. Besides crashes, it checks FrameReader against a plain model of the format (header,
// limit, sticky oversize, per-frame errors, the raw part after a newline) and that every frame
// survives encoding again. The JSON fast paths are held to nlohmann's parser: the raw part's checker
// takes what it takes, and parse_json_text builds the value it builds.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "frame.h"
#include "json_oracle.h"

using namespace mcpd;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

std::size_t header(std::string_view at) {
  std::size_t n = 0;
  for (int i = 0; i < 4; ++i) n = n << 8 | static_cast<unsigned char>(at[i]);
  return n;
}

// The events a reader must produce for the whole input: 'F' frame, 'O' oversize (sticky, last),
// 'E' empty, 'J' not JSON, 'D' nested too deep, 'N' not an object; and whether finish() must report an error.
std::string model(std::string_view input, std::size_t max_frame, std::size_t max_depth, bool& finish_error) {
  std::string events;
  finish_error = false;
  while (input.size() >= 4) {
    std::size_t length = header(input);
    if (length > max_frame) {
      events += 'O';
      finish_error = true;
      return events;
    }
    if (input.size() - 4 < length) break;
    std::string_view payload = input.substr(4, length);
    input.remove_prefix(4 + length);
    if (length == 0) {
      events += 'E';
      continue;
    }
    if (auto newline = payload.find('\n'); newline != std::string_view::npos) {
      std::string_view raw = payload.substr(newline + 1);
      payload = payload.substr(0, newline);
      bool too_deep = false;
      auto problem = check_json_text(raw, max_depth, &too_deep);
      require(problem.has_value() == !oracle::nlohmann_takes(raw, max_depth));
      JsonText built = parse_json_text(raw, max_depth);
      require(built.ok == !problem);
      if (built.ok) require(oracle::same_value(built.value, json::parse(raw)));
      if (problem) {
        events += too_deep ? 'D' : 'J';
        continue;
      }
    }
    JsonText text = parse_json_text(payload, max_depth);
    require(text.ok == oracle::nlohmann_takes(payload, max_depth));
    if (text.ok) require(oracle::same_value(text.value, json::parse(payload)));
    events += !text.ok ? (text.too_deep ? 'D' : 'J') : text.value.is_object() ? 'F' : 'N';
  }
  finish_error = !input.empty();
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first two bytes choose the frame limit and the read size.
  if (size < 2) return 0;
  const std::size_t max_frame = std::size_t{data[0]} * 16;
  const std::size_t read_size = 1 + data[1];
  const std::size_t max_depth = 8 + data[1] % 32;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  FrameReader reader(max_frame, max_depth);
  std::string events;
  for (std::size_t at = 0; at < input.size(); at += read_size) {
    reader.feed(input.substr(at, read_size));
    for (bool more = true; more;) {
      FrameReader::Event event = reader.next();
      switch (event.kind) {
        case FrameReader::Event::Kind::need_more:
          more = false;
          break;
        case FrameReader::Event::Kind::frame: {
          require(event.frame.is_object());
          std::string again = event.raw.empty() ? encode_frame(event.frame) : encode_frame_with_raw(event.frame, event.raw);
          FrameReader round_trip;
          round_trip.feed(again);
          FrameReader::Event back = round_trip.next();
          require(back.kind == FrameReader::Event::Kind::frame && back.raw == event.raw);
          events += 'F';
          break;
        }
        case FrameReader::Event::Kind::error:
          require(!event.error.message.empty());
          switch (event.error.kind) {
            case FrameReader::Error::Kind::oversize:
              events += 'O';
              more = false;  // sticky: it would repeat forever
              break;
            case FrameReader::Error::Kind::empty: events += 'E'; break;
            case FrameReader::Error::Kind::not_json: events += 'J'; break;
            case FrameReader::Error::Kind::too_deep: events += 'D'; break;
            case FrameReader::Error::Kind::not_object: events += 'N'; break;
            case FrameReader::Error::Kind::truncated: require(false); break;
          }
          break;
      }
    }
    if (reader.failed()) break;
  }
  bool finish_error = false;
  require(events == model(input, max_frame, max_depth, finish_error));
  require(reader.finish().has_value() == finish_error);
  return 0;
}
