#include "modbus_tools.h"

namespace mcpd {

std::vector<Tool> modbus_tools(const json& /*settings*/) { return {}; }

}  // namespace mcpd
