// Readers for the git tools' arguments, each turning a wrong value into a ToolError that names the
// argument, and the JSON Schema fragments for the arguments every git tool shares, so `repo_path`,
// `revision`, `paths`, `max_bytes` ... mean the same thing and are described the same way in every tool.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "output.h"
#include "tool.h"

namespace mcpd::git {

/// A string argument, nullopt when absent or null.
std::optional<std::string> optional_string(const json& arguments, const char* name);

/// A string argument that must be present and non-empty.
std::string required_string(const json& arguments, const char* name);

/// An integer argument in [minimum, maximum], `fallback` when absent.
std::int64_t integer_argument(const json& arguments, const char* name, std::int64_t fallback, std::int64_t minimum,
                              std::int64_t maximum);

/// An optional integer argument in [minimum, maximum].
std::optional<std::int64_t> optional_integer(const json& arguments, const char* name, std::int64_t minimum,
                                             std::int64_t maximum);

/// A boolean argument, `fallback` when absent.
bool boolean_argument(const json& arguments, const char* name, bool fallback);

/// An array-of-strings argument, empty when absent.
std::vector<std::string> strings_argument(const json& arguments, const char* name);

/// Parses an ISO 8601 date or date-time ("2024-05-01", "2024-05-01T12:30:00Z",
/// "2024-05-01 12:30:00+02:00") into seconds since the epoch; no zone means UTC. A date without a
/// time is the start of that day, or with `end_of_day` its last second (so `until: 2024-05-01`
/// includes that day). ToolError naming `name` otherwise.
std::int64_t parse_iso_date(const std::string& text, const char* name, bool end_of_day);

/// The output budget for this call: `max_bytes` (default 1 MiB) of structured JSON, never more than
/// a worker frame holds, and a whole result within the context's max_result_bytes (which carries the
/// JSON twice: structured and as text), each less room for the result's envelope.
OutputBudget output_budget(const json& arguments, const ToolContext& context);

// Schema fragments, identical in every tool that takes the argument.
/// A tool's inputSchema: an object with these properties, these required, and nothing else.
json input_schema(json properties, std::vector<std::string> required);
json repo_path_schema();
json revision_schema(const std::string& description);
json paths_schema(const std::string& description);
json max_bytes_schema();
json context_lines_schema();

}  // namespace mcpd::git
