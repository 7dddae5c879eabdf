#include "syntax.h"

#include <cstdint>
#include <limits>

namespace mcpd {

namespace {

// Long enough that a typical file parses in one slice, short enough that a cancel lands quickly.
constexpr std::uint64_t kParseSliceMicros = 20'000;

// Length of the valid UTF-8 sequence starting at text[i], or 0 if it is invalid there.
std::size_t utf8_sequence_length(std::string_view text, std::size_t i) {
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(text[k]); };
  unsigned char lead = byte(i);
  if (lead < 0x80) return 1;
  std::size_t length = 0;
  std::uint32_t min = 0;
  std::uint32_t code = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2, min = 0x80, code = lead & 0x1F;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3, min = 0x800, code = lead & 0x0F;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4, min = 0x10000, code = lead & 0x07;
  } else {
    return 0;
  }
  if (i + length > text.size()) return 0;
  for (std::size_t k = 1; k < length; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    code = (code << 6) | (byte(i + k) & 0x3F);
  }
  if (code < min || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
  return length;
}

}  // namespace

Tree parse(const Language& language, std::string_view text, const ToolContext& context,
           const ParserSettings& settings) {
  context.check_cancelled();
  if (text.size() > std::numeric_limits<std::uint32_t>::max())
    throw ToolError("the source is " + std::to_string(text.size()) + " bytes, more than tree-sitter can parse");
  check_parse_bounds(language, text, settings);
  TSParser* parser = thread_parser(language);
  // A parse abandoned by an earlier cancel would otherwise resume here.
  ts_parser_reset(parser);
  ts_parser_set_timeout_micros(parser, kParseSliceMicros);
  const char* data = text.empty() ? "" : text.data();
  for (;;) {
    TSTree* tree = ts_parser_parse_string(parser, nullptr, data, static_cast<std::uint32_t>(text.size()));
    if (tree != nullptr) return Tree(tree);
    // The slice ran out; the next call resumes where this one stopped.
    if (context.cancel.cancelled()) {
      ts_parser_reset(parser);
      throw ToolCancelled();
    }
  }
}

std::string_view node_text(TSNode node, std::string_view source) {
  std::size_t start = std::min<std::size_t>(ts_node_start_byte(node), source.size());
  std::size_t end = std::min<std::size_t>(ts_node_end_byte(node), source.size());
  return source.substr(start, end > start ? end - start : 0);
}

json position(TSPoint point, std::uint32_t byte) {
  return {{"row", point.row}, {"column", point.column}, {"byte", byte}};
}

json position_schema(const char* description) {
  return {{"type", "object"},
          {"description", description},
          {"properties",
           {{"row", {{"type", "integer"}, {"description", "0-based line"}}},
            {"column", {{"type", "integer"}, {"description", "0-based column, in bytes"}}},
            {"byte", {{"type", "integer"}, {"description", "0-based byte offset"}}}}}};
}

std::size_t result_cost(const json& value) {
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  std::size_t escaped = 0;
  for (char c : text)
    if (c == '"' || c == '\\') ++escaped;
  return 2 * (text.size() + 1) + escaped;
}

std::string json_safe_prefix(std::string_view text, std::size_t max_bytes, bool* cut) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  std::size_t i = 0;
  while (i < text.size()) {
    std::size_t length = utf8_sequence_length(text, i);
    std::size_t emitted = length == 0 ? 3 : length;  // U+FFFD is 3 bytes
    if (out.size() + emitted > max_bytes) break;
    if (length == 0) {
      out += "\xEF\xBF\xBD";
      i += 1;
    } else {
      out.append(text.substr(i, length));
      i += length;
    }
  }
  if (cut != nullptr) *cut = i < text.size();
  return out;
}

}  // namespace mcpd
