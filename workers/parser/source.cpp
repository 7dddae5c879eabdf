#include "source.h"

#include <cmath>

#include "roots.h"

namespace mcpd {

namespace {

const json* argument(const json& arguments, const char* name) {
  if (!arguments.is_object()) throw ToolError("arguments must be a JSON object");
  auto it = arguments.find(name);
  if (it == arguments.end() || it->is_null()) return nullptr;
  return &*it;
}

}  // namespace

Source load_source(const json& arguments, const ToolContext& context) {
  const json* code = argument(arguments, "code");
  const json* path = argument(arguments, "path");
  const json* language = argument(arguments, "language");
  if (code != nullptr && path != nullptr)
    throw ToolError("pass either `code` (inline source) or `path` (a file), not both");
  if (code == nullptr && path == nullptr)
    throw ToolError("pass `code` (inline source) or `path` (a file inside the roots)");
  if (code != nullptr && !code->is_string()) throw ToolError("`code` must be a string");
  if (path != nullptr && !path->is_string()) throw ToolError("`path` must be a string");
  if (language != nullptr && !language->is_string()) throw ToolError("`language` must be a string");

  // The roots come first: a path outside them is refused before anything else is said about it.
  // The file is opened here, once, and read through that descriptor.
  OpenedPath file;
  if (path != nullptr) file = open_in_roots(path->get<std::string>(), context, PathKind::file);

  Source source;
  if (language != nullptr) {
    source.language = &require_language(language->get<std::string>());
  } else if (path != nullptr) {
    source.language = language_for_extension(path->get<std::string>());
    if (source.language == nullptr)
      throw ToolError("cannot tell the language of '" + path->get<std::string>() +
                      "' from its extension; pass `language` (supported: " + supported_language_list() + ")");
  } else {
    throw ToolError("`language` is required with inline `code` (supported: " + supported_language_list() + ")");
  }

  source.text = code != nullptr ? code->get<std::string>() : read_text_file(file, context.max_file_bytes);
  return source;
}

json source_properties() {
  return {
      {"code",
       {{"type", "string"},
        {"description", "Source text to parse. Give either `code` (with `language`) or `path`, not both."}}},
      {"path",
       {{"type", "string"},
        {"minLength", 1},
        {"description",
         "File to parse, absolute or relative to the first root; it must lie inside the allowed roots. "
         "Give either `path` or `code`, not both."}}},
      {"language",
       {{"type", "string"},
        {"description",
         "Language of the source: " + supported_language_list() +
             " (aliases: js, ts, py, c++, sh, golang). Required with `code`; with `path` it defaults from "
             "the file extension."}}},
  };
}

std::int64_t integer_argument(const json& arguments, const char* name, std::int64_t fallback, std::int64_t minimum) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return fallback;
  std::int64_t result = 0;
  if (value->is_number_integer()) {
    result = value->get<std::int64_t>();
  } else if (value->is_number_float() && std::floor(value->get<double>()) == value->get<double>() &&
             std::fabs(value->get<double>()) < 9e15) {
    result = static_cast<std::int64_t>(value->get<double>());  // 5.0 is an integer in JSON Schema
  } else {
    throw ToolError(std::string("`") + name + "` must be an integer");
  }
  if (result < minimum) throw ToolError(std::string("`") + name + "` must be at least " + std::to_string(minimum));
  return result;
}

bool boolean_argument(const json& arguments, const char* name, bool fallback) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) throw ToolError(std::string("`") + name + "` must be a boolean");
  return value->get<bool>();
}

std::string string_argument(const json& arguments, const char* name, const std::string& fallback) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return fallback;
  if (!value->is_string()) throw ToolError(std::string("`") + name + "` must be a string");
  return value->get<std::string>();
}

std::vector<std::string> strings_argument(const json& arguments, const char* name) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return {};
  if (!value->is_array()) throw ToolError(std::string("`") + name + "` must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *value) {
    if (!item.is_string()) throw ToolError(std::string("`") + name + "` must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

}  // namespace mcpd
