// Checks shared by both stream readers before bytes become a json value: UTF-8 validity and a bound
// on nesting depth. nlohmann's parser is iterative, but copying, comparing and dumping a value recurse,
// so a 4 MiB line of '[' would parse fine and then overflow the stack in whoever touches it next.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// Offset of the first byte of the first ill-formed UTF-8 sequence, or nullopt if `text` is valid.
/// Ill-formed: stray continuation bytes, overlong forms, surrogates (U+D800..DFFF), code points above
/// U+10FFFF, and sequences cut short (including at the end of `text`).
std::optional<std::size_t> find_invalid_utf8(std::string_view text);

/// Length of the longest prefix of `text` that a JSON string holds as it is: no byte below 0x20,
/// no '"', no backslash, nothing above 0x7F. Scans eight bytes at a step.
std::size_t plain_json_prefix(std::string_view text);
/// True if `text` is well-formed UTF-8 (see find_invalid_utf8).
bool is_valid_utf8(std::string_view text);

/// `text` with each byte that starts an ill-formed sequence replaced by U+FFFD, so that any bytes
/// (a line of a binary or Latin-1 file) can become a JSON string.
std::string replace_invalid_utf8(std::string_view text);

/// Deeper than this is refused by parse_json_text unless the caller asks otherwise; real MCP
/// messages nest a few dozen levels at most.
inline constexpr std::size_t default_max_json_depth = 512;

/// The result of parse_json_text: a value, or a message saying why there is none.
struct JsonText {
  bool ok = false;
  bool too_deep = false;  // when !ok: refused for nesting alone (the text may be fine JSON)
  json value;         // when ok
  std::string error;  // when !ok: "invalid UTF-8 at byte 7", "nesting deeper than 512 levels", or
                      // nlohmann's description ("syntax error while parsing value - ...")
};

/// Parses one JSON text after checking UTF-8 and nesting depth. Never throws for bad input.
JsonText parse_json_text(std::string_view text, std::size_t max_depth = default_max_json_depth);

/// Appends `text` (well-formed UTF-8, as nlohmann's dump with the replace handler writes it) as a
/// JSON string, escaping what JSON requires and nothing else, as nlohmann does: runs of plain bytes
/// are copied whole instead of going through a json value and its serializer byte by byte.
void append_json_string(std::string& out, std::string_view text);

/// Appends `text` as a JSON string, as append_json writes a string value: any bytes, invalid
/// UTF-8 mended as nlohmann's replace handler mends it.
void append_json_text(std::string& out, std::string_view text);
/// Appends `value` serialized compactly, byte for byte as nlohmann's dump(-1, ' ', false,
/// error_handler_t::replace) writes it, at a fraction of the cost: runs of plain bytes in strings
/// are copied whole, integers written with to_chars.
void append_json(std::string& out, const json& value);
/// `value` serialized as append_json writes it.
std::string dump_json(const json& value);
/// Checks that `text` is exactly one JSON text (UTF-8, nesting within max_depth) without building
/// a value: for bytes that are passed on as they are. nullopt if it is; else why not, worded as
/// parse_json_text words it. `too_deep` (optional) is set when nesting alone was refused.
std::optional<std::string> check_json_text(std::string_view text, std::size_t max_depth = default_max_json_depth,
                                           bool* too_deep = nullptr);

}  // namespace mcpd
