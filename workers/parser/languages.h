// The grammars built into this library and what selects each one: a name, aliases and file
// extensions. Parsers are kept per thread and per language; each language's tags query is compiled
// once on first use and shared by all threads.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <tree_sitter/api.h>

namespace mcpd {

class Query;

/// One tree-sitter grammar we ship.
struct Language {
  std::string_view name;  // canonical, e.g. "cpp"
  const TSLanguage* (*grammar)();
  std::vector<std::string_view> aliases;
  std::vector<std::string_view> extensions;  // lowercase, with the dot
};

/// Every language, sorted by name.
const std::vector<Language>& languages();

/// The language with this name or alias (case-insensitive), or nullptr.
const Language* find_language(std::string_view name);

/// Like find_language, but throws ToolError "unknown language 'x'; supported: ..." when absent.
const Language& require_language(std::string_view name);

/// The language a path's extension implies, or nullptr.
const Language* language_for_extension(std::string_view path);

/// "bash, c, cpp, ..." for error messages.
std::string supported_language_list();

/// This thread's parser for `language`, created on first use and reused: a TSParser must not be
/// shared between threads, and creating one per call would waste its internal buffers.
TSParser* thread_parser(const Language& language);

/// The language's tags query, compiled once for all threads (a TSQuery is immutable once built).
/// Throws ToolError if the language has none or it does not compile against the grammar.
const Query& tags_query(const Language& language);

}  // namespace mcpd
