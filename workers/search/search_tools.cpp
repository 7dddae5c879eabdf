#include "search_tools.h"

namespace mcpd {

std::vector<Tool> search_tools(const json& /*settings*/) { return {}; }

}  // namespace mcpd
