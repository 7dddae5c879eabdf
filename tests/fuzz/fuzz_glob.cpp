// Glob and ignore-file parsing (workers/search): globs come from the client's include/exclude
// arguments and from .gitignore, .ignore and .rgignore files in the searched tree, so any text
// may reach them. The input is an ignore file; each of its lines is also compiled as a glob, both
// case-sensitive and not, and everything compiled is matched against paths made of the lines.
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "glob.h"
#include "ignore.h"

using namespace mcpd::search;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  std::vector<std::string_view> lines;
  for (std::size_t at = 0; at <= text.size();) {
    std::size_t newline = text.find('\n', at);
    if (newline == std::string_view::npos) newline = text.size();
    lines.push_back(text.substr(at, newline - at));
    at = newline + 1;
  }
  std::vector<std::string> paths = {"a", "a/b", "src/main.cpp", ".hidden/x.txt", "dir/"};
  for (std::size_t i = 0; i < lines.size() && i < 8; ++i) paths.emplace_back(lines[i]);

  IgnoreRules rules("base", text);
  for (const auto& path : paths) {
    rules.match(path, false);
    rules.match(path, true);
  }
  for (std::size_t i = 0; i < lines.size() && i < 16; ++i) {
    has_glob_meta(lines[i]);
    for (bool fold : {false, true}) {
      try {
        glob_to_regex(lines[i]);
        Glob glob(lines[i], fold);
        for (const auto& path : paths) glob.matches(path);
      } catch (const std::invalid_argument&) {
        // A glob that does not translate or compile is refused with a message: the contract.
      }
    }
  }
  return 0;
}
