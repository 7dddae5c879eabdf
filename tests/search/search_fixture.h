// Helpers for the search tests: the tools called in-process on a temp tree, and ripgrep run on the
// same tree as the oracle, both reduced to comparable sets.
#pragma once

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <doctest/doctest.h>

#include "search_tools.h"
#include "temp_dir.h"

namespace mcpd::test {

/// The search tools of one engine, rooted at `root`.
struct SearchTools {
  std::vector<Tool> tools;
  ToolContext context;
  explicit SearchTools(const std::filesystem::path& root, json settings = {{"threads", 2}})
      : tools(search_tools(settings)) {
    context.roots = {root};
  }
  const Tool& tool(const std::string& name) const {
    for (const auto& t : tools)
      if (t.name == name) return t;
    throw std::runtime_error("no tool " + name);
  }
  json call(const std::string& name, const json& args) { return tool(name).handler(args, context).structured; }
  json text(const json& args) { return call("search_text", args); }
  json files(const json& args) { return call("search_files", args); }
  /// The ToolError message of a call expected to fail ("" if it did not).
  std::string error(const std::string& name, const json& args) {
    try {
      call(name, args);
    } catch (const ToolError& e) {
      return e.what();
    }
    return "";
  }
  /// Repeats `args` until the background index has taken every listed file (or 20 s).
  json until_indexed(const json& args) {
    json out;
    for (int i = 0; i < 400; ++i) {
      out = text(args);
      if (out["stats"]["index"]["pending_files"] == 0 && out["stats"]["index"]["indexed_files"].get<int>() > 0) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return out;
  }
};

inline std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

/// Runs `rg` with `flags` in `dir`; returns stdout. rg is the oracle, so a broken or missing rg must
/// fail the test rather than "agree" with every empty answer: its exit status must be 0 (matches) or 1
/// (none), and it must print nothing on stderr unless the test expects warnings (`warnings`: bad
/// lines of an ignore file, which rg reports and skips).
inline std::string run_rg(const std::filesystem::path& dir, const std::vector<std::string>& flags,
                          bool warnings = false) {
  TempDir scratch;
  auto err_path = scratch.path / "rg.stderr";
  std::string cmd = "cd " + shell_quote(dir.string()) + " && rg --no-config";
  for (const auto& f : flags) cmd += " " + shell_quote(f);
  cmd += " 2>" + shell_quote(err_path.string());
  std::string out;
  FILE* p = ::popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[65536];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int status = ::pclose(p);
  std::ifstream err_in(err_path, std::ios::binary);
  std::string err((std::istreambuf_iterator<char>(err_in)), std::istreambuf_iterator<char>());
  REQUIRE_MESSAGE(WIFEXITED(status), "rg did not exit normally: " << cmd);
  int code = WEXITSTATUS(status);
  REQUIRE_MESSAGE((code == 0 || code == 1), "rg exited " << code << " (" << cmd << "): " << err);
  REQUIRE_MESSAGE((warnings || err.empty()), "rg wrote to stderr (" << cmd << "): " << err);
  return out;
}

using MatchKey = std::tuple<std::string, std::uint64_t, std::uint64_t, std::uint64_t, std::uint64_t, std::string>;

inline std::string strip_eol(std::string s) {
  if (!s.empty() && s.back() == '\n') s.pop_back();
  if (!s.empty() && s.back() == '\r') s.pop_back();
  return s;
}

/// rg --json's matches as (path, line, column, byte_offset, byte_end, text).
inline std::set<MatchKey> rg_matches(const std::filesystem::path& dir, std::vector<std::string> flags) {
  flags.insert(flags.begin(), "--json");
  std::set<MatchKey> out;
  std::string text = run_rg(dir, flags);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    json m = json::parse(text.substr(start, end - start));
    start = end + 1;
    if (m["type"] != "match") continue;
    const json& d = m["data"];
    std::string path = d["path"]["text"];
    if (path.rfind("./", 0) == 0) path = path.substr(2);
    std::uint64_t base = d["absolute_offset"];
    std::string line = d["lines"].contains("text") ? strip_eol(d["lines"]["text"]) : std::string("<bytes>");
    for (const auto& s : d["submatches"]) {
      std::uint64_t b = s["start"], e = s["end"];
      out.insert({path, d["line_number"].get<std::uint64_t>(), b + 1, base + b, base + e, line});
    }
  }
  return out;
}

inline std::set<MatchKey> our_matches(const json& result) {
  std::set<MatchKey> out;
  for (const auto& m : result["matches"])
    out.insert(MatchKey{m["path"].get<std::string>(), m["line"].get<std::uint64_t>(), m["column"].get<std::uint64_t>(),
                        m["byte_offset"].get<std::uint64_t>(), m["byte_end"].get<std::uint64_t>(),
                        m["text"].get<std::string>()});
  return out;
}

/// Lines of rg's plain output (rg -l, rg -c, rg --files), sorted, "./" stripped.
inline std::vector<std::string> rg_lines(const std::filesystem::path& dir, const std::vector<std::string>& flags,
                                         bool warnings = false) {
  std::vector<std::string> out;
  std::string text = run_rg(dir, flags, warnings);
  std::size_t start = 0;
  while (start < text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.rfind("./", 0) == 0) line = line.substr(2);
    if (!line.empty()) out.push_back(line);
    start = end + 1;
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline std::vector<std::string> strings_of(const json& array) {
  std::vector<std::string> out;
  for (const auto& s : array) out.push_back(s);
  return out;
}

/// A small repository-like tree with every case the ignore rules and the matcher must get right.
inline void build_sample_tree(const TempDir& t) {
  std::filesystem::create_directories(t.path / ".git/info");
  t.write(".git/info/exclude", "excluded_by_info.txt\n");
  t.write(".git/config", "foo in git config\n");
  t.write(".gitignore", "*.log\n!keep.log\nbuild/\n/anchored.txt\nsub/**/deep.txt\ndocs/*.tmp\n\\#hash.txt\n");
  t.write(".ignore", "ignored_by_dotignore.md\n");
  t.write("src/main.cpp", "#include \"util.h\"\nint main() { return foo(1); }\n// foo bar foofoo food\n");
  t.write("src/util.h", "int foo(int x);\nstatic int Foo = 2; // FOO\n");
  t.write("src/anchored.txt", "foo anchored but not at root\n");
  t.write("anchored.txt", "foo anchored at root\n");
  t.write("build/out.txt", "foo in build\n");
  t.write("sub/a/b/deep.txt", "foo deep\n");
  t.write("sub/a/shallow.txt", "foo shallow a.c abc\n");
  t.write("sub/.gitignore", "local.txt\n!important.log\n");
  t.write("sub/local.txt", "foo local\n");
  t.write("sub/important.log", "foo important\n");
  t.write("sub/x.py", "def foo():\n    return 'foo_bar'\n");
  t.write("docs/a.tmp", "foo tmp\n");
  t.write("docs/deeper/b.tmp", "foo deeper tmp\n");
  t.write("docs/readme.md", "# Foo\nfoo is a word; foobar is not.\n");
  t.write(".hidden/secret.txt", "foo secret\n");
  t.write(".env", "FOO=1\n");
  t.write("ignored_by_dotignore.md", "foo\n");
  t.write("excluded_by_info.txt", "foo\n");
  t.write("#hash.txt", "foo hash\n");
  t.write("keep.log", "foo keep\n");
  t.write("debug.log", "foo debug\n");
  t.write("unicode.txt", "Grüße aus KÖLN\nGRÜSSE\nΩmega ωmega ΣΊΣΥΦΟΣ σίσυφος\nnaïve café\n");
  t.write("crlf.txt", "foo\r\nbar\r\nfoo bar\r\n");
  t.write("bin.dat", std::string("foo before\0nul foo", 18));
  t.write("empty.txt", "");
  t.write("nonl.txt", "last line foo without newline");
  t.write("long.txt", std::string(1 << 20, 'x') + "needle" + std::string(100, 'y') + "\nfoo\n");
  t.write("space name.txt", "foo with space\n");
  std::filesystem::create_symlink("src/main.cpp", t.path / "link.cpp");
  std::filesystem::create_symlink("src", t.path / "linkdir");
}

}  // namespace mcpd::test
