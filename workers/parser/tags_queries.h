// The tags queries (tags.scm) of each language, embedded as string constants at build time by
// CMakeLists.txt into the generated tags_queries.cpp.
#pragma once

#include <string_view>

namespace mcpd {

/// The tags query source of `language` (a canonical name such as "python"); empty if it has none.
std::string_view tags_query_source(std::string_view language);

}  // namespace mcpd
