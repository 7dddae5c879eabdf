// Class 7, cost that explodes with input size, through the real mcpd and its real workers: a
// pattern of megabytes, 10,000 include globs, a brace bomb in an ignore file of the searched tree
// and as a user glob, a query nested a million levels deep. Each call answers (a result or a
// clear error naming the bound) before its call timeout, then the server still serves.
#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <vector>

#include "hostile_support.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

struct Case {
  std::string name;
  std::vector<std::string> args;  // mcpd's, beyond --root
  std::string tool;
  json arguments;
  std::string error;  // "": a result is expected; else a substring of the error
};

/// A literal of `bytes` bytes: words, so that a file can hold it.
std::string words(std::size_t bytes) {
  std::string s;
  for (int i = 0; s.size() < bytes; ++i) s += "w" + std::to_string(i) + " ";
  s.resize(bytes);
  return s;
}

std::string nested_braces(int depth) { return std::string(depth, '{') + "a" + std::string(depth, '}'); }

std::vector<std::string> many_globs() {
  std::vector<std::string> globs;
  for (int i = 0; i < 10000; ++i)
    globs.push_back(i % 37 == 0 ? "f" + std::to_string(i / 37) + ".txt" : "nothing" + std::to_string(i) + "*.c");
  return globs;
}

TEST_CASE("hostile cost: huge patterns, glob lists, brace bombs and deep queries answer in time") {
  TempDir t;
  for (int i = 0; i < 300; ++i) t.write("d" + std::to_string(i % 7) + "/f" + std::to_string(i) + ".txt", "foo\n");
  std::string bomb;
  for (int i = 0; i < 2000; ++i) bomb += "{a,b}";
  t.write("bombed/.ignore",
          nested_braces(100000) + "\n" + bomb + "\n{" + bomb + "\n" + nested_braces(9) + "\nhidden.txt\n");
  t.write("bombed/hidden.txt", "foo\n");
  t.write("bombed/shown.txt", "foo\n");
  const std::string big = words((4 << 20) - 4096);  // under max_line_bytes once raised to 16 MiB
  t.write("big/hit.txt", words(1 << 20) + "\n");
  const std::vector<std::string> wide = {"--max_line_bytes", std::to_string(16 << 20)};
  auto with = [&](std::vector<std::string> extra) {
    extra.insert(extra.begin(), wide.begin(), wide.end());
    return extra;
  };
  const std::string deep_query = std::string(1000000, '(') + std::string(1000000, ')');
  const json trivial_search = {{"pattern", "foo"}, {"path", (t.path / "bombed").string()}};

  const std::vector<Case> cases = {
      {"4 MiB pattern, default bound", wide, "search_text", {{"pattern", big}}, "over search.max_pattern_bytes"},
      {"4 MiB pattern, bound raised", with({"--search", R"({"max_pattern_bytes": 8388608})"}), "search_text",
       {{"pattern", big}, {"output", "files"}}, ""},
      {"1 MiB pattern that matches, bound raised", with({"--search", R"({"max_pattern_bytes": 8388608})"}),
       "search_text", {{"pattern", words(1 << 20)}, {"output", "files"}, {"path", (t.path / "big").string()}}, ""},
      {"10,000 include globs, default bound", {}, "search_text", {{"pattern", "foo"}, {"include", many_globs()}},
       "over search.max_globs (1024)"},
      {"10,000 include globs, bound raised", {"--search", R"({"max_globs": 10000})"}, "search_text",
       {{"pattern", "foo"}, {"include", many_globs()}, {"output", "files"}, {"max_results", 100000}}, ""},
      {"10,000 exclude globs, bound raised", {"--search", R"({"max_globs": 10000})"}, "search_text",
       {{"pattern", "foo"}, {"exclude", many_globs()}, {"output", "files"}, {"max_results", 100000}}, ""},
      {"brace bomb in the tree's .ignore", {}, "search_text",
       {{"pattern", "foo"}, {"path", (t.path / "bombed").string()}, {"output", "files"}}, ""},
      {"brace bomb as a user glob", {}, "search_text", {{"pattern", "foo"}, {"include", {nested_braces(1000)}}},
       "(search.max_glob_nesting)"},
      {"huge user glob", {}, "search_files", {{"pattern", nested_braces(100000)}}, "over search.max_glob_bytes"},
      {"alternation bomb as a user glob", {}, "search_text", {{"pattern", "foo"}, {"exclude", {bomb}}},
       "over search.max_glob_bytes"},
      {"query nested a million deep", with({"--parser", R"({"max_query_bytes": 8388608})"}), "code_query",
       {{"language", "json"}, {"code", "[1]"}, {"query", deep_query}}, "(parser.max_query_depth)"},
      {"query nested a million deep, legacy mode",
       with({"--mode", "legacy", "--parser", R"({"max_query_bytes": 8388608})"}), "code_query",
       {{"language", "json"}, {"code", "[1]"}, {"query", deep_query}}, "(parser.max_query_depth)"},
      {"query of 4 MiB", with({}), "code_query",
       {{"language", "json"}, {"code", "[1]"}, {"query", "(number) @n ;" + std::string(4 << 20, 'x')}},
       "over parser.max_query_bytes"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.name);
    std::vector<std::string> argv = {mcpd_binary(), "--root", t.path.string()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    ChildProcess::Options options;
    options.stderr_path = std::string(MCPD_BINARY_DIR) + "/tests/hostile/mcpd-stderr-cost.log";
    McpClient client(argv, options);
    client.initialize();
    // The call's own deadline (the search tools' is 120 s, the parser's 30 s) is never reached.
    json result = client.call_tool(c.tool, c.arguments, 150s);
    std::string text = text_of(result);
    if (c.error.empty()) {
      CHECK_MESSAGE(result["isError"] == false, text.substr(0, 300));
    } else {
      CHECK(result["isError"] == true);
      CHECK_MESSAGE(text.find(c.error) != std::string::npos, text.substr(0, 300));
    }
    if (c.name == "10,000 include globs, bound raised") CHECK(result["structuredContent"]["files"].size() == 271);
    if (c.name == "10,000 exclude globs, bound raised")  // and bombed/shown.txt
      CHECK(result["structuredContent"]["files"].size() == 29 + 1);
    if (c.name == "brace bomb in the tree's .ignore")
      CHECK(result["structuredContent"]["files"] == json::array({"shown.txt"}));
    if (c.name == "1 MiB pattern that matches, bound raised")
      CHECK(result["structuredContent"]["files"] == json::array({"hit.txt"}));
    if (c.tool == "code_query")
      check_still_serves(client, "code_query", {{"language", "json"}, {"code", "[1]"}, {"query", "(number) @n"}});
    else
      check_still_serves(client, c.tool == "search_files" ? "search_files" : "search_text",
                         c.tool == "search_files" ? json{{"pattern", "*.txt"}} : trivial_search);
  }
}

}  // namespace
