// The client's stdio stream up to the dispatcher: bytes cut into reads, split into lines by
// LineReader, each line parsed (decode_line) and validated as JSON-RPC (parse_message), and every
// answer the server would give serialized (encode_line). Besides crashes, it checks LineReader
// against a plain model of the framing rules, and its documented memory bound.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "jsonrpc.h"
#include "line_reader.h"

using namespace mcpd;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

void consider(const json& value) {
  ParseOutcome outcome = parse_message(value);
  if (!outcome.ok()) {
    require(outcome.error.id.is_null() || is_valid_id(outcome.error.id));
    encode_line(make_error(outcome.error));
    return;
  }
  const Message& m = *outcome.message;
  json_type_name(m.params);
  if (m.is_request()) {
    require(is_valid_id(m.id));
    id_key(m.id);
    encode_line(make_result(m.id, m.params));
    encode_line(make_error(m.id, error_code::method_not_found, "no method " + m.method, m.params));
  } else if (m.is_notification()) {
    encode_line(make_notification(m.method, m.params));
  } else {
    id_key(m.id);
    encode_line(m.is_error_response() ? m.error : m.result);
  }
}

void handle(const std::string& line, std::size_t max_depth) {
  ParsedLine parsed = decode_line(line, max_depth);
  if (!parsed.ok) {
    encode_line(parsed.error_response);
    return;
  }
  if (is_batch(parsed.value)) {
    for (const auto& item : parsed.value) consider(item);
    return;
  }
  consider(parsed.value);
}

bool is_blank(std::string_view line) { return line.find_first_not_of(" \t\r") == std::string_view::npos; }

// What a reader must report for the whole input: "L<line>" for a line, "T" for an overlong one.
std::vector<std::string> model(std::string_view input, std::size_t max_line) {
  std::vector<std::string> events;
  for (;;) {
    auto newline = input.find('\n');
    std::string_view line = input.substr(0, newline);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.size() > max_line) events.push_back("T");
    else if (!is_blank(line)) events.push_back("L" + std::string(line));
    if (newline == std::string_view::npos) break;
    input.remove_prefix(newline + 1);
  }
  return events;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The first two bytes choose the line limit and the size of each read, so that overlong lines
  // and lines cut across reads are explored along with the content.
  if (size < 2) return 0;
  const std::size_t max_line = 16 + std::size_t{data[0]} * 4;
  const std::size_t read_size = 1 + data[1];
  const std::size_t max_depth = 8 + data[0] % 64;
  std::string_view input(reinterpret_cast<const char*>(data) + 2, size - 2);

  LineReader reader(max_line);
  std::vector<std::string> events;
  for (std::size_t at = 0; at < input.size(); at += read_size) {
    std::string_view chunk = input.substr(at, read_size);
    reader.feed(chunk);
    require(reader.buffered() <= max_line + 1 + chunk.size());
    for (;;) {
      LineReader::Event event = reader.next();
      if (event.kind == LineReader::Event::Kind::need_more) break;
      if (event.kind == LineReader::Event::Kind::line_too_long) {
        require(!event.message.empty());
        events.push_back("T");
        continue;
      }
      require(event.line.size() <= max_line);
      handle(event.line, max_depth);
      events.push_back("L" + event.line);
    }
  }
  if (auto last = reader.flush_at_eof()) {
    handle(*last, max_depth);
    events.push_back("L" + *last);
  }
  require(reader.buffered() == 0);
  require(events == model(input, max_line));
  return 0;
}
