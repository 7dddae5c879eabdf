// ripgrep's file types (--type NAME) for the languages the search tools know: each a list of
// file-name globs, copied from `rg --type-list`.
#pragma once

#include <string>
#include <vector>

namespace mcpd::search {

/// The file-name globs of type `name`, or an empty list when it is unknown.
const std::vector<std::string>& type_globs(const std::string& name);

/// The known type names, sorted, comma-separated (for error messages).
std::string known_types();

}  // namespace mcpd::search
