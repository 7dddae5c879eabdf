#include "arguments.h"

#include <cmath>
#include <cstdio>
#include <ctime>

#include "frame.h"

namespace mcpd::git {

namespace {

constexpr std::uint64_t kDefaultMaxBytes = 1u << 20;
constexpr std::uint64_t kEnvelopeBytes = 4096;  // the result's wrapping, ids and counters

const json* argument(const json& arguments, const char* name) {
  if (!arguments.is_object()) throw ToolError("arguments must be a JSON object");
  auto it = arguments.find(name);
  if (it == arguments.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string quoted(const char* name) { return std::string("`") + name + "`"; }

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

bool digits(const std::string& text, std::size_t at, std::size_t count, int* out) {
  if (at + count > text.size()) return false;
  int value = 0;
  for (std::size_t i = at; i < at + count; ++i) {
    if (text[i] < '0' || text[i] > '9') return false;
    value = value * 10 + (text[i] - '0');
  }
  *out = value;
  return true;
}

}  // namespace

std::optional<std::string> optional_string(const json& arguments, const char* name) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return std::nullopt;
  if (!value->is_string()) throw ToolError(quoted(name) + " must be a string");
  return value->get<std::string>();
}

std::string required_string(const json& arguments, const char* name) {
  auto value = optional_string(arguments, name);
  if (!value) throw ToolError("missing required argument " + quoted(name));
  if (value->empty()) throw ToolError(quoted(name) + " must not be empty");
  return *value;
}

std::optional<std::int64_t> optional_integer(const json& arguments, const char* name, std::int64_t minimum,
                                             std::int64_t maximum) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return std::nullopt;
  std::int64_t result = 0;
  if (value->is_number_integer()) {
    result = value->get<std::int64_t>();
  } else if (value->is_number_float() && std::floor(value->get<double>()) == value->get<double>() &&
             std::fabs(value->get<double>()) < 9e15) {
    result = static_cast<std::int64_t>(value->get<double>());
  } else {
    throw ToolError(quoted(name) + " must be an integer");
  }
  if (result < minimum) throw ToolError(quoted(name) + " must be at least " + std::to_string(minimum));
  if (result > maximum) throw ToolError(quoted(name) + " must be at most " + std::to_string(maximum));
  return result;
}

std::int64_t integer_argument(const json& arguments, const char* name, std::int64_t fallback, std::int64_t minimum,
                              std::int64_t maximum) {
  return optional_integer(arguments, name, minimum, maximum).value_or(fallback);
}

bool boolean_argument(const json& arguments, const char* name, bool fallback) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return fallback;
  if (!value->is_boolean()) throw ToolError(quoted(name) + " must be a boolean");
  return value->get<bool>();
}

std::vector<std::string> strings_argument(const json& arguments, const char* name) {
  const json* value = argument(arguments, name);
  if (value == nullptr) return {};
  if (!value->is_array()) throw ToolError(quoted(name) + " must be an array of strings");
  std::vector<std::string> out;
  for (const auto& item : *value) {
    if (!item.is_string()) throw ToolError(quoted(name) + " must be an array of strings");
    out.push_back(item.get<std::string>());
  }
  return out;
}

std::int64_t parse_iso_date(const std::string& text, const char* name, bool end_of_day) {
  auto bad = [&] {
    return ToolError(quoted(name) + " must be an ISO 8601 date such as 2024-05-01 or 2024-05-01T12:30:00Z, got '" +
                     text + "'");
  };
  int year = 0, month = 0, day = 0;
  if (!digits(text, 0, 4, &year) || text.size() < 10 || text[4] != '-' || !digits(text, 5, 2, &month) ||
      text[7] != '-' || !digits(text, 8, 2, &day))
    throw bad();
  if (month < 1 || month > 12 || day < 1 || day > 31) throw bad();
  std::int64_t seconds = days_from_civil(year, static_cast<unsigned>(month), static_cast<unsigned>(day)) * 86400;
  std::size_t at = 10;
  if (at == text.size()) return end_of_day ? seconds + 86399 : seconds;

  if (text[at] != 'T' && text[at] != 't' && text[at] != ' ') throw bad();
  ++at;
  int hour = 0, minute = 0, second = 0;
  if (!digits(text, at, 2, &hour) || at + 2 >= text.size() || text[at + 2] != ':' ||
      !digits(text, at + 3, 2, &minute))
    throw bad();
  at += 5;
  if (at < text.size() && text[at] == ':') {
    if (!digits(text, at + 1, 2, &second)) throw bad();
    at += 3;
    if (at < text.size() && (text[at] == '.' || text[at] == ',')) {  // fractions of a second: ignored
      ++at;
      while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    }
  }
  if (hour > 23 || minute > 59 || second > 60) throw bad();
  seconds += hour * 3600 + minute * 60 + second;
  if (at == text.size()) return seconds;
  if ((text[at] == 'Z' || text[at] == 'z') && at + 1 == text.size()) return seconds;
  if (text[at] != '+' && text[at] != '-') throw bad();
  int sign = text[at] == '-' ? -1 : 1;
  int offset_hours = 0, offset_minutes = 0;
  if (!digits(text, at + 1, 2, &offset_hours)) throw bad();
  at += 3;
  if (at < text.size() && text[at] == ':') ++at;
  if (at < text.size()) {
    if (!digits(text, at, 2, &offset_minutes)) throw bad();
    at += 2;
  }
  if (at != text.size() || offset_hours > 23 || offset_minutes > 59) throw bad();
  return seconds - sign * (offset_hours * 3600 + offset_minutes * 60);
}

OutputBudget output_budget(const json& arguments, const ToolContext& context) {
  auto requested = static_cast<std::uint64_t>(integer_argument(arguments, "max_bytes",
                                                               static_cast<std::int64_t>(kDefaultMaxBytes), 1024,
                                                               std::int64_t{1} << 40));
  // The worker sends the structured JSON in one frame, and the server refuses a result over
  // max_result_bytes: a larger max_bytes is clamped to both, so the answer is cut, not refused.
  auto room = [](std::uint64_t bound) { return bound > kEnvelopeBytes ? bound - kEnvelopeBytes : 0; };
  return OutputBudget({std::min(requested, room(FrameReader::default_max_frame_bytes)), room(context.max_result_bytes)});
}

json input_schema(json properties, std::vector<std::string> required) {
  return {{"type", "object"},
          {"properties", std::move(properties)},
          {"required", std::move(required)},
          {"additionalProperties", false}};
}

json repo_path_schema() {
  return {{"type", "string"},
          {"minLength", 1},
          {"description",
           "A directory inside the allowed roots (absolute, or relative to the first root) that is a git "
           "repository or lies inside one's work tree. Relative `paths` are taken relative to it, as git takes "
           "them relative to the current directory."}};
}

json revision_schema(const std::string& description) {
  return {{"type", "string"}, {"minLength", 1}, {"description", description}};
}

json paths_schema(const std::string& description) {
  return {{"type", "array"}, {"items", {{"type", "string"}, {"minLength", 1}}}, {"description", description}};
}

json max_bytes_schema() {
  return {{"type", "integer"},
          {"minimum", 1024},
          {"default", kDefaultMaxBytes},
          {"description",
           "Cap on the size of the answer in bytes (the server's max_result_bytes applies as well); `truncated` "
           "says when something was left out."}};
}

json context_lines_schema() {
  return {{"type", "integer"},
          {"minimum", 0},
          {"maximum", 100000},
          {"default", 3},
          {"description", "Lines of context around each change in the unified diff, as git diff -U."}};
}

}  // namespace mcpd::git
