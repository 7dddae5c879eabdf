// A small JSON Schema validator for tool arguments (MCP's Tool.inputSchema). Debian packages no C++
// validator, and tools need only a subset, so this supports exactly that subset and check_schema
// refuses the rest at startup, rather than letting an unsupported keyword pass everything silently.
#pragma once

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

/// Checks `instance` against `schema`. Returns nullopt if it conforms, else one message naming the
/// argument path, meant for the caller of the tool:
///   "argument 'max_depth': must be an integer, got string"
///   "missing required argument 'code'"
///   "argument 'format': must be one of \"sexp\", \"json\""
///   "argument 'options.limit': must be >= 1"
///   "unknown argument 'foo' (allowed: code, format)"
///   "argument 'paths[2]': must be a string"
/// The instance itself (the path "") is called "arguments". Supported keywords: type (a name or a
/// list; "integer" accepts any number with no fractional part, 3.0 included), properties, required,
/// additionalProperties (boolean), enum, const, minimum, maximum, exclusiveMinimum,
/// exclusiveMaximum, minLength and maxLength (in code points), items (one schema), minItems,
/// maxItems, anyOf, oneOf; plus the boolean schemas true and false. Annotations are ignored. A schema
/// should have passed check_schema: malformed keyword values are skipped, never thrown on.
std::optional<std::string> validate_schema(const json& schema, const json& instance);

/// Checks that `schema` uses only the keywords validate_schema supports, with well-formed values.
/// Returns nullopt if so, else a message naming the place and the problem:
///   "schema at 'properties.name': unsupported keyword 'pattern'"
/// Ignored annotations: title, description, default, examples, $schema, $comment, deprecated,
/// readOnly, writeOnly and format (an annotation by default since draft 2019-09).
std::optional<std::string> check_schema(const json& schema);

}  // namespace mcpd
