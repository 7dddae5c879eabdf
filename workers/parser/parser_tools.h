// The parser tool family: code_parse, code_outline and code_query over tree-sitter grammars built
// into this library. The coordinator runs these handlers in-process; a parser worker runs the same.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "family.h"
#include "tool.h"

namespace mcpd {

/// The parser tools, ready to register: code_parse, code_outline, code_query, with the family's
/// settings (config key "parser"; see parser_settings.h). Throws std::invalid_argument naming a bad
/// key ("parser.max_query_depth: ...").
std::vector<Tool> parser_tools(const json& settings = json::object());

/// The parser family as the coordinator lists it (family.h).
Family parser_family();

/// Canonical names of the languages the tools parse, sorted: bash, c, cpp, go, javascript, ...
std::vector<std::string> supported_languages();

/// The canonical language for a name or alias ("py", "c++", "golang", ...), case-insensitive.
std::optional<std::string> canonical_language(std::string_view name);

/// The language a file's extension implies (".tsx" -> "tsx", ".h" -> "c"), if any.
std::optional<std::string> language_for_path(std::string_view path);

}  // namespace mcpd
