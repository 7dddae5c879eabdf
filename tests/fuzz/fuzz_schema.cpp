// Validation of tool arguments (protocol/schema) against the input schemas the parser, search and
// Modbus tools really register, and of arbitrary schemas: the first byte picks a tool, the rest is the
// arguments as JSON text. With the last choice, the JSON is itself a schema: check_schema must
// refuse what validate_schema cannot handle, and an accepted schema is applied to itself and to a
// few plain values.
#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "json_text.h"
#include "modbus_tools.h"
#include "parser_tools.h"
#include "schema.h"
#include "search_tools.h"

using namespace mcpd;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

const std::vector<json>& schemas() {
  static const std::vector<json> all = [] {
    std::vector<json> out;
    for (const auto& family : {parser_tools(), search_tools(), modbus_tools()})
      for (const auto& tool : family) {
        require(!check_schema(tool.input_schema).has_value());
        out.push_back(tool.input_schema);
      }
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto& tools = schemas();
  std::string_view text(reinterpret_cast<const char*>(data) + 1, size - 1);
  JsonText parsed = parse_json_text(text);
  if (!parsed.ok) return 0;
  const std::size_t choice = data[0] % (tools.size() + 1);
  if (choice < tools.size()) {
    if (auto error = validate_schema(tools[choice], parsed.value)) require(!error->empty());
    return 0;
  }
  if (check_schema(parsed.value)) return 0;
  for (const json& instance : {parsed.value, json(nullptr), json(0), json(-1.5), json("x"),
                               json::array({1, "a"}), json::object({{"a", 1}})})
    if (auto error = validate_schema(parsed.value, instance)) require(!error->empty());
  return 0;
}
