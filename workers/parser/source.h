// The input every parser tool shares: source text given inline (`code`) or as a file inside the
// roots (`path`), and its `language`, explicit or implied by the file's extension. Also the readers
// for the tools' other arguments, which turn a wrong type into a ToolError naming the argument.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "languages.h"
#include "tool.h"

namespace mcpd {

/// The text a tool works on and the language to parse it with.
struct Source {
  const Language* language = nullptr;
  std::string text;
};

/// Reads the `code` / `path` / `language` arguments. Throws ToolError when both or neither of code
/// and path are given, the language is unknown or cannot be told, or the file cannot be read
/// (outside the roots, missing, binary, over context.max_file_bytes).
Source load_source(const json& arguments, const ToolContext& context);

/// The JSON Schema properties for code, path and language, shared by every parser tool's input.
json source_properties();

/// An integer argument, `fallback` when absent; ToolError when not an integer or below `minimum`.
std::int64_t integer_argument(const json& arguments, const char* name, std::int64_t fallback, std::int64_t minimum);

/// A boolean argument, `fallback` when absent.
bool boolean_argument(const json& arguments, const char* name, bool fallback);

/// A string argument, `fallback` when absent.
std::string string_argument(const json& arguments, const char* name, const std::string& fallback);

/// An array-of-strings argument, empty when absent.
std::vector<std::string> strings_argument(const json& arguments, const char* name);

}  // namespace mcpd
