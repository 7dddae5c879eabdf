#include "languages.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <mutex>

#include "parser_tools.h"
#include "query.h"
#include "tags_queries.h"
#include "tool.h"

extern "C" {
const TSLanguage* tree_sitter_bash();
const TSLanguage* tree_sitter_c();
const TSLanguage* tree_sitter_cpp();
const TSLanguage* tree_sitter_go();
const TSLanguage* tree_sitter_javascript();
const TSLanguage* tree_sitter_json();
const TSLanguage* tree_sitter_python();
const TSLanguage* tree_sitter_rust();
const TSLanguage* tree_sitter_tsx();
const TSLanguage* tree_sitter_typescript();
}

namespace mcpd {

namespace {

std::string lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::size_t index_of(const Language& language) {
  return static_cast<std::size_t>(&language - languages().data());
}

}  // namespace

const std::vector<Language>& languages() {
  static const std::vector<Language> all = {
      {"bash", tree_sitter_bash, {"sh", "shell"}, {".sh", ".bash"}},
      {"c", tree_sitter_c, {}, {".c", ".h"}},
      {"cpp", tree_sitter_cpp, {"c++", "cxx"}, {".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".ipp"}},
      {"go", tree_sitter_go, {"golang"}, {".go"}},
      {"javascript", tree_sitter_javascript, {"js", "jsx"}, {".js", ".mjs", ".cjs", ".jsx"}},
      {"json", tree_sitter_json, {}, {".json"}},
      {"python", tree_sitter_python, {"py"}, {".py", ".pyi"}},
      {"rust", tree_sitter_rust, {"rs"}, {".rs"}},
      {"tsx", tree_sitter_tsx, {}, {".tsx"}},
      {"typescript", tree_sitter_typescript, {"ts"}, {".ts", ".mts", ".cts"}},
  };
  return all;
}

const Language* find_language(std::string_view name) {
  std::string key = lowercase(name);
  for (const auto& language : languages()) {
    if (language.name == key) return &language;
    for (auto alias : language.aliases)
      if (alias == key) return &language;
  }
  return nullptr;
}

const Language& require_language(std::string_view name) {
  if (const Language* language = find_language(name)) return *language;
  throw ToolError("unknown language '" + std::string(name) + "'; supported: " + supported_language_list());
}

const Language* language_for_extension(std::string_view path) {
  auto slash = path.find_last_of('/');
  std::string_view file = slash == std::string_view::npos ? path : path.substr(slash + 1);
  auto dot = file.find_last_of('.');
  if (dot == std::string_view::npos || dot == 0) return nullptr;  // no extension, or a dotfile
  std::string extension = lowercase(file.substr(dot));
  for (const auto& language : languages())
    for (auto known : language.extensions)
      if (known == extension) return &language;
  return nullptr;
}

std::string supported_language_list() {
  std::string out;
  for (const auto& language : languages()) {
    if (!out.empty()) out += ", ";
    out += language.name;
  }
  return out;
}

TSParser* thread_parser(const Language& language) {
  struct ParserDeleter {
    void operator()(TSParser* parser) const { ts_parser_delete(parser); }
  };
  thread_local std::vector<std::unique_ptr<TSParser, ParserDeleter>> parsers(languages().size());
  auto& slot = parsers[index_of(language)];
  if (!slot) {
    std::unique_ptr<TSParser, ParserDeleter> parser(ts_parser_new());
    const TSLanguage* grammar = language.grammar();
    if (!ts_parser_set_language(parser.get(), grammar))
      throw ToolError("the " + std::string(language.name) + " grammar has ABI version " +
                      std::to_string(ts_language_version(grammar)) +
                      ", which this tree-sitter library cannot load");
    slot = std::move(parser);
  }
  return slot.get();
}

const Query& tags_query(const Language& language) {
  struct Slot {
    std::once_flag once;
    std::unique_ptr<Query> query;
    std::string error;
  };
  static std::unique_ptr<Slot[]> slots(new Slot[languages().size()]);
  Slot& slot = slots[index_of(language)];
  std::call_once(slot.once, [&] {
    std::string_view source = tags_query_source(language.name);
    if (source.empty()) {
      slot.error = "no tags query is built in for " + std::string(language.name);
      return;
    }
    try {
      slot.query = std::make_unique<Query>(language.grammar(), source);
    } catch (const ToolError& e) {
      slot.error = "the built-in tags query for " + std::string(language.name) + " does not compile: " + e.what();
    }
  });
  if (!slot.query) throw ToolError(slot.error);
  return *slot.query;
}

std::vector<std::string> supported_languages() {
  std::vector<std::string> out;
  for (const auto& language : languages()) out.emplace_back(language.name);
  return out;
}

std::optional<std::string> canonical_language(std::string_view name) {
  if (const Language* language = find_language(name)) return std::string(language->name);
  return std::nullopt;
}

std::optional<std::string> language_for_path(std::string_view path) {
  if (const Language* language = language_for_extension(path)) return std::string(language->name);
  return std::nullopt;
}

}  // namespace mcpd
