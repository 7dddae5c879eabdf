#include "schema.h"

#include <array>
#include <cmath>
#include <string_view>
#include <vector>

#include "jsonrpc.h"

namespace mcpd {

namespace {

using Failure = std::optional<std::string>;

constexpr std::array<std::string_view, 7> type_names = {"string", "integer", "number", "boolean",
                                                        "null",   "object",  "array"};

constexpr std::array<std::string_view, 17> supported_keywords = {
    "type",      "properties", "required", "additionalProperties", "enum",     "const",
    "minimum",   "maximum",    "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength",
    "items",     "minItems",   "maxItems", "anyOf",                "oneOf"};

constexpr std::array<std::string_view, 10> annotation_keywords = {
    "title",   "description", "default",  "examples",  "$schema",
    "$comment", "deprecated", "readOnly", "writeOnly", "format"};

template <std::size_t N>
bool contains(const std::array<std::string_view, N>& names, std::string_view name) {
  for (auto candidate : names) {
    if (candidate == name) return true;
  }
  return false;
}

std::string dump(const json& value) { return value.dump(-1, ' ', false, json::error_handler_t::replace); }

// ---- validation --------------------------------------------------------------------------------

std::string where(const std::string& path) {
  return path.empty() ? std::string("arguments") : "argument '" + path + "'";
}

Failure fail(const std::string& path, const std::string& problem) { return where(path) + ": " + problem; }

std::string member_path(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

bool is_integral(const json& value) {
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && std::trunc(d) == d;
}

bool has_type(const json& value, std::string_view type) {
  if (type == "string") return value.is_string();
  if (type == "integer") return is_integral(value);
  if (type == "number") return value.is_number();
  if (type == "boolean") return value.is_boolean();
  if (type == "null") return value.is_null();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  return false;
}

std::string with_article(const std::string& type) {
  if (type == "null") return type;
  if (type == "integer" || type == "object" || type == "array") return "an " + type;
  return "a " + type;
}

// "a string", "a string or null", "a string, an integer or null"
std::string type_list(const std::vector<std::string>& types) {
  std::string out;
  for (std::size_t i = 0; i < types.size(); ++i) {
    if (i > 0) out += (i + 1 == types.size()) ? " or " : ", ";
    out += with_article(types[i]);
  }
  return out;
}

std::vector<std::string> declared_types(const json& schema) {
  std::vector<std::string> types;
  auto type = schema.find("type");
  if (type == schema.end()) return types;
  if (type->is_string()) types.push_back(type->get<std::string>());
  if (type->is_array()) {
    for (const auto& t : *type) {
      if (t.is_string()) types.push_back(t.get<std::string>());
    }
  }
  return types;
}

std::size_t code_points(const std::string& text) {
  std::size_t count = 0;
  for (unsigned char c : text) {
    if ((c & 0xC0) != 0x80) ++count;
  }
  return count;
}

std::string plural(std::size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

bool is_count(const json& value) {
  return value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0);
}

Failure validate(const json& schema, const json& instance, const std::string& path);

// For anyOf/oneOf with no matching branch: if exactly one branch is of the instance's type, its
// complaint is the useful one ("must be >= 1"); otherwise say only that no form matched.
Failure no_branch_matched(const json& branches, const json& instance, const std::string& path,
                          const std::vector<std::string>& errors) {
  std::optional<std::size_t> only;
  std::size_t plausible = 0;
  for (std::size_t i = 0; i < branches.size(); ++i) {
    auto types = declared_types(branches[i]);
    bool fits = types.empty();
    for (const auto& t : types) fits = fits || has_type(instance, t);
    if (fits) {
      ++plausible;
      only = i;
    }
  }
  if (plausible == 1 && errors[*only].size() > 0) return errors[*only];
  return fail(path, "does not match any allowed form");
}

Failure validate_object(const json& schema, const json& instance, const std::string& path) {
  if (auto required = schema.find("required"); required != schema.end() && required->is_array()) {
    for (const auto& name : *required) {
      if (name.is_string() && !instance.contains(name.get<std::string>())) {
        return "missing required argument '" + member_path(path, name.get<std::string>()) + "'";
      }
    }
  }
  const auto properties = schema.find("properties");
  const bool has_properties = properties != schema.end() && properties->is_object();
  if (auto extra = schema.find("additionalProperties");
      extra != schema.end() && extra->is_boolean() && !extra->get<bool>()) {
    for (const auto& [name, value] : instance.items()) {
      if (!has_properties || !properties->contains(name)) {
        std::string allowed;
        if (has_properties) {
          for (const auto& [known, subschema] : properties->items()) {
            allowed += (allowed.empty() ? "" : ", ") + known;
          }
        }
        return "unknown argument '" + member_path(path, name) + "'" +
               (allowed.empty() ? std::string(" (no arguments are accepted)")
                                : " (allowed: " + allowed + ")");
      }
    }
  }
  if (has_properties) {
    // Walks the instance's members, usually fewer than the schema's properties. Both are sorted
    // by name, so the first failure found is the same either way.
    const auto& known = properties->get_ref<const json::object_t&>();
    for (const auto& [name, value] : instance.get_ref<const json::object_t&>()) {
      auto subschema = known.find(name);
      if (subschema == known.end()) continue;
      if (auto failure = validate(subschema->second, value, member_path(path, name))) return failure;
    }
  }
  return std::nullopt;
}

Failure validate_array(const json& schema, const json& instance, const std::string& path) {
  if (auto min = schema.find("minItems"); min != schema.end() && is_count(*min)) {
    const auto n = min->get<std::size_t>();
    if (instance.size() < n) return fail(path, "must have at least " + plural(n, "item", "items"));
  }
  if (auto max = schema.find("maxItems"); max != schema.end() && is_count(*max)) {
    const auto n = max->get<std::size_t>();
    if (instance.size() > n) return fail(path, "must have at most " + plural(n, "item", "items"));
  }
  if (auto items = schema.find("items"); items != schema.end()) {
    for (std::size_t i = 0; i < instance.size(); ++i) {
      if (auto failure = validate(*items, instance[i], path + "[" + std::to_string(i) + "]")) {
        return failure;
      }
    }
  }
  return std::nullopt;
}

Failure validate_number(const json& schema, const json& instance, const std::string& path) {
  const double value = instance.get<double>();
  auto limit = [&](const char* keyword) -> const json* {
    auto it = schema.find(keyword);
    return it != schema.end() && it->is_number() ? &*it : nullptr;
  };
  if (const json* min = limit("minimum"); min && value < min->get<double>()) {
    return fail(path, "must be >= " + dump(*min));
  }
  if (const json* max = limit("maximum"); max && value > max->get<double>()) {
    return fail(path, "must be <= " + dump(*max));
  }
  if (const json* min = limit("exclusiveMinimum"); min && value <= min->get<double>()) {
    return fail(path, "must be > " + dump(*min));
  }
  if (const json* max = limit("exclusiveMaximum"); max && value >= max->get<double>()) {
    return fail(path, "must be < " + dump(*max));
  }
  return std::nullopt;
}

Failure validate_string(const json& schema, const json& instance, const std::string& path) {
  const std::size_t length = code_points(instance.get_ref<const std::string&>());
  if (auto min = schema.find("minLength"); min != schema.end() && is_count(*min)) {
    const auto n = min->get<std::size_t>();
    if (length < n) {
      return fail(path, "must be at least " + plural(n, "character", "characters") + " long");
    }
  }
  if (auto max = schema.find("maxLength"); max != schema.end() && is_count(*max)) {
    const auto n = max->get<std::size_t>();
    if (length > n) {
      return fail(path, "must be at most " + plural(n, "character", "characters") + " long");
    }
  }
  return std::nullopt;
}

// The walk follows the schema: it descends into the instance only where the schema has
// properties or items, so recursion is bounded by the schema's depth (ours, fixed at startup)
// however deeply a hostile instance nests. enum and const compare with ==, which recurses only as
// deep as the shallower of the two values, again the schema's.
Failure validate(const json& schema, const json& instance, const std::string& path) {
  if (schema.is_boolean()) {
    return schema.get<bool>() ? std::nullopt : fail(path, "is not allowed");
  }
  if (!schema.is_object()) return std::nullopt;

  if (auto type = schema.find("type"); type != schema.end()) {
    // Matched in place; the list of names is made only for the message.
    bool matched = false, any = false;
    auto consider = [&](const json& name) {
      if (!name.is_string()) return;
      any = true;
      matched = matched || has_type(instance, name.get_ref<const std::string&>());
    };
    if (type->is_array()) {
      for (const auto& name : *type) consider(name);
    } else {
      consider(*type);
    }
    if (!matched && any) {
      return fail(path, "must be " + type_list(declared_types(schema)) + ", got " + json_type_name(instance));
    }
  }
  if (auto allowed = schema.find("enum"); allowed != schema.end() && allowed->is_array()) {
    bool found = false;
    for (const auto& candidate : *allowed) found = found || candidate == instance;
    if (!found) {
      std::string list;
      for (const auto& candidate : *allowed) list += (list.empty() ? "" : ", ") + dump(candidate);
      return fail(path, "must be one of " + list);
    }
  }
  if (auto constant = schema.find("const"); constant != schema.end() && *constant != instance) {
    return fail(path, "must be " + dump(*constant));
  }

  Failure failure;
  if (instance.is_number()) failure = validate_number(schema, instance, path);
  if (instance.is_string()) failure = validate_string(schema, instance, path);
  if (instance.is_array()) failure = validate_array(schema, instance, path);
  if (instance.is_object()) failure = validate_object(schema, instance, path);
  if (failure) return failure;

  if (auto branches = schema.find("anyOf"); branches != schema.end() && branches->is_array()) {
    std::vector<std::string> errors;
    for (const auto& branch : *branches) {
      auto error = validate(branch, instance, path);
      if (!error) break;
      errors.push_back(*error);
    }
    if (errors.size() == branches->size() && !errors.empty()) {
      return no_branch_matched(*branches, instance, path, errors);
    }
  }
  if (auto branches = schema.find("oneOf"); branches != schema.end() && branches->is_array()) {
    std::vector<std::string> errors;
    std::size_t matches = 0;
    for (const auto& branch : *branches) {
      auto error = validate(branch, instance, path);
      errors.push_back(error.value_or(""));
      if (!error) ++matches;
    }
    if (matches > 1) return fail(path, "matches more than one allowed form");
    if (matches == 0 && !errors.empty()) return no_branch_matched(*branches, instance, path, errors);
  }
  return std::nullopt;
}

// ---- schema checking ---------------------------------------------------------------------------

std::string schema_where(const std::string& path) {
  return path.empty() ? std::string("schema") : "schema at '" + path + "'";
}

Failure schema_fail(const std::string& path, const std::string& problem) {
  return schema_where(path) + ": " + problem;
}

std::string sub_path(const std::string& path, const std::string& step) {
  return path.empty() ? step : path + "." + step;
}

Failure check(const json& schema, const std::string& path);

Failure check_type(const json& type, const std::string& path) {
  auto known = [](const json& name) {
    return name.is_string() && contains(type_names, name.get_ref<const std::string&>());
  };
  const std::string expected =
      "type must be one of string, integer, number, boolean, null, object, array, or a list of them";
  if (type.is_string()) {
    if (!known(type)) return schema_fail(path, expected + "; got " + dump(type));
    return std::nullopt;
  }
  if (!type.is_array() || type.empty()) return schema_fail(path, expected);
  for (const auto& name : type) {
    if (!known(name)) return schema_fail(path, expected + "; got " + dump(name));
  }
  return std::nullopt;
}

Failure check_schema_list(const json& list, const std::string& keyword, const std::string& path) {
  if (!list.is_array() || list.empty()) {
    return schema_fail(path, keyword + " must be a non-empty array of schemas");
  }
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (auto failure = check(list[i], sub_path(path, keyword + "[" + std::to_string(i) + "]"))) {
      return failure;
    }
  }
  return std::nullopt;
}

Failure check_keyword(const std::string& keyword, const json& value, const std::string& path) {
  if (keyword == "type") return check_type(value, path);
  if (keyword == "properties") {
    if (!value.is_object()) return schema_fail(path, "properties must be an object");
    for (const auto& [name, subschema] : value.items()) {
      if (auto failure = check(subschema, sub_path(path, "properties." + name))) return failure;
    }
    return std::nullopt;
  }
  if (keyword == "required") {
    bool ok = value.is_array();
    if (ok) {
      for (const auto& name : value) ok = ok && name.is_string();
    }
    return ok ? std::nullopt : schema_fail(path, "required must be an array of strings");
  }
  if (keyword == "additionalProperties") {
    if (value.is_boolean()) return std::nullopt;
    return schema_fail(path,
                       "additionalProperties must be true or false (a schema there is not supported)");
  }
  if (keyword == "enum") {
    if (value.is_array() && !value.empty()) return std::nullopt;
    return schema_fail(path, "enum must be a non-empty array");
  }
  if (keyword == "const") return std::nullopt;
  if (keyword == "minimum" || keyword == "maximum" || keyword == "exclusiveMinimum" ||
      keyword == "exclusiveMaximum") {
    if (value.is_number()) return std::nullopt;
    if (value.is_boolean()) {
      return schema_fail(path, keyword + " must be a number (the draft-04 boolean form is not supported)");
    }
    return schema_fail(path, keyword + " must be a number");
  }
  if (keyword == "minLength" || keyword == "maxLength" || keyword == "minItems" ||
      keyword == "maxItems") {
    if (is_count(value)) return std::nullopt;
    return schema_fail(path, keyword + " must be a non-negative integer");
  }
  if (keyword == "items") {
    if (value.is_array()) {
      return schema_fail(path, "items must be a single schema (the tuple form is not supported)");
    }
    return check(value, sub_path(path, "items"));
  }
  if (keyword == "anyOf" || keyword == "oneOf") return check_schema_list(value, keyword, path);
  return schema_fail(path, "unsupported keyword '" + keyword + "'");
}

Failure check(const json& schema, const std::string& path) {
  if (schema.is_boolean()) return std::nullopt;
  if (!schema.is_object()) {
    return schema_fail(path, "must be an object or a boolean, got " + json_type_name(schema));
  }
  for (const auto& [keyword, value] : schema.items()) {
    if (contains(annotation_keywords, keyword)) continue;
    if (!contains(supported_keywords, keyword)) {
      return schema_fail(path, "unsupported keyword '" + keyword + "'");
    }
    if (auto failure = check_keyword(keyword, value, path)) return failure;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string> validate_schema(const json& schema, const json& instance) {
  return validate(schema, instance, "");
}

std::optional<std::string> check_schema(const json& schema) { return check(schema, ""); }

}  // namespace mcpd
