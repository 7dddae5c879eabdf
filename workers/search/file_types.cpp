#include "file_types.h"

#include <map>

namespace mcpd::search {

namespace {

const std::map<std::string, std::vector<std::string>>& table() {
  static const std::map<std::string, std::vector<std::string>> types = {
      {"c", {"*.[chH]", "*.[chH].in", "*.cats"}},
      {"cmake", {"*.cmake", "CMakeLists.txt"}},
      {"cpp",
       {"*.[ChH]", "*.[ChH].in", "*.[ch]pp", "*.[ch]pp.in", "*.[ch]xx", "*.[ch]xx.in", "*.cc", "*.cc.in", "*.hh",
        "*.hh.in", "*.inl"}},
      {"css", {"*.css", "*.scss"}},
      {"go", {"*.go"}},
      {"html", {"*.ejs", "*.htm", "*.html"}},
      {"java", {"*.java", "*.jsp", "*.jspx", "*.properties"}},
      {"js", {"*.js", "*.jsx", "*.vue"}},
      {"json", {"*.json", "composer.lock"}},
      {"make",
       {"*.mak", "*.mk", "[Gg][Nn][Uu]makefile", "[Gg][Nn][Uu]makefile.am", "[Gg][Nn][Uu]makefile.in", "[Mm]akefile",
        "[Mm]akefile.am", "[Mm]akefile.in"}},
      {"md", {"*.markdown", "*.md", "*.mdown", "*.mkdn"}},
      {"markdown", {"*.markdown", "*.md", "*.mdown", "*.mkdn"}},
      {"py", {"*.py"}},
      {"ruby", {"*.gemspec", "*.rb", "*.rbw", ".irbrc", "Gemfile", "Rakefile", "config.ru"}},
      {"rust", {"*.rs"}},
      {"sh",
       {"*.bash", "*.bashrc", "*.csh", "*.cshrc", "*.ksh", "*.kshrc", "*.sh", "*.tcsh", "*.zsh", ".bash_login",
        ".bash_logout", ".bash_profile", ".bashrc", ".cshrc", ".kshrc", ".login", ".logout", ".profile", ".tcshrc",
        ".zlogin", ".zlogout", ".zprofile", ".zshenv", ".zshrc", "bash_login", "bash_logout", "bash_profile",
        "bashrc", "profile", "zlogin", "zlogout", "zprofile", "zshenv", "zshrc"}},
      {"toml", {"*.toml", "Cargo.lock"}},
      {"ts", {"*.ts", "*.tsx"}},
      {"txt", {"*.txt"}},
      {"yaml", {"*.yaml", "*.yml"}},
  };
  return types;
}

}  // namespace

const std::vector<std::string>& type_globs(const std::string& name) {
  static const std::vector<std::string> none;
  auto it = table().find(name);
  return it == table().end() ? none : it->second;
}

std::string known_types() {
  std::string out;
  for (const auto& [name, globs] : table()) out += (out.empty() ? "" : ", ") + name;
  return out;
}

}  // namespace mcpd::search
