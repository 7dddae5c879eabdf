// The matcher's inner-literal prefilter (only lines holding a literal every match needs are run
// through RE2): the same answers as rg where it applies (inner literal, alternation of literals,
// case-insensitive, word mode, non-ASCII characters that fold to ASCII letters) and where it does
// not (no usable literal), in all three output modes, and many matches on one long line.
#include <chrono>

#include "search_fixture.h"
#include "matcher.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

void build_prefilter_tree(const TempDir& t) {
  t.write("a.h",
          "typedef unsigned long size_t;\ntypedef int ssize_t; typedef long ptrdiff_t;\n"
          "#ifndef FOO_H\n#  define FOO_H 1\nstd::vector<int> v; std::map<Key_T, Value_t> m;\n"
          "SIZE_T upper; Size_T mixed; x_t\n_t at start\nend with _t");
  t.write("b.txt",
          "foo bar baz1 qux\nbazz baz9\nnothing here\nFOO Bar BAZ2\n"
          "\xE2\x84\xAA" "elvin and kelvin and KELVIN\ncla\xC5\xBF" "s and CLASS and class\n");
  t.write("crlf.txt", "size_t a;\r\nint b_t;\r\nfoo\r\n");
  std::string many;
  for (int i = 0; i < 200; ++i) many += "u" + std::to_string(i) + "_t ";
  many += "\n";
  for (int i = 0; i < 300; ++i) many += "line " + std::to_string(i) + " int_t x; y_t z_t\n";
  t.write("many.c", many);
  t.write("uni.txt", "caf\xC3\xA9 x_t and CAF\xC3\x89 Y_T\nna\xC3\xAFve t_t\n");
}

TEST_CASE("the inner-literal prefilter gives what rg gives, in every output mode") {
  TempDir t;
  build_prefilter_tree(t);
  SearchTools tools(t.path);
  struct Case {
    json args;
    std::vector<std::string> rg_flags;
  };
  const std::vector<Case> cases = {
      {{{"pattern", "\\w+_t\\b"}}, {"\\w+_t\\b"}},
      {{{"pattern", "\\w+_T\\b"}}, {"\\w+_T\\b"}},
      {{{"pattern", "_t"}}, {"_t"}},
      {{{"pattern", "_t$"}}, {"_t$"}},
      {{{"pattern", "^_t"}}, {"^_t"}},
      {{{"pattern", "(?i)size_t"}}, {"(?i)size_t"}},
      {{{"pattern", "size_t"}, {"case", "insensitive"}}, {"-i", "size_t"}},
      {{{"pattern", "kelvin"}, {"case", "insensitive"}}, {"-i", "kelvin"}},
      {{{"pattern", "class"}, {"case", "insensitive"}}, {"-i", "class"}},
      {{{"pattern", "\\x{212A}elvin"}}, {"\\x{212A}elvin"}},
      {{{"pattern", "cla\\x{17F}s"}}, {"cla\\x{17F}s"}},
      {{{"pattern", "foo|bar|baz\\d"}}, {"foo|bar|baz\\d"}},
      {{{"pattern", "foo|bar|baz\\d"}, {"case", "insensitive"}}, {"-i", "foo|bar|baz\\d"}},
      {{{"pattern", "std::\\w+<\\w+(, \\w+)?>"}}, {"std::\\w+<\\w+(, \\w+)?>"}},
      {{{"pattern", "size_t"}, {"word", true}}, {"-w", "size_t"}},
      {{{"pattern", "[a-z]+_t"}, {"word", true}}, {"-w", "[a-z]+_t"}},
      {{{"pattern", "\\w_t"}, {"word", true}, {"case", "insensitive"}}, {"-w", "-i", "\\w_t"}},
      {{{"pattern", "^#\\s*define\\s+\\w+_H\\b"}}, {"^#\\s*define\\s+\\w+_H\\b"}},
      {{{"pattern", "ba[rz]\\d?"}}, {"ba[rz]\\d?"}},
      {{{"pattern", "caf\xC3\xA9 x_t"}, {"case", "insensitive"}}, {"-i", "caf\xC3\xA9 x_t"}},
      {{{"pattern", "\\w+\xC3\xAFve"}}, {"\\w+\xC3\xAFve"}},
      {{{"pattern", "\\d+"}}, {"\\d+"}},          // no literal
      {{{"pattern", "[[:upper:]]+"}}, {"[[:upper:]]+"}},
      {{{"pattern", "x_t|\\d+"}}, {"x_t|\\d+"}},  // one branch without a literal
      {{{"pattern", "\\bz_t|y_t"}}, {"\\bz_t|y_t"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args.dump());
    json args = c.args;
    args["max_results"] = 100000;
    json ours = tools.text(args);
    CHECK(ours["truncated"] == false);
    CHECK(our_matches(ours) == rg_matches(t.path, c.rg_flags));
    args["output"] = "files";
    std::vector<std::string> flags = c.rg_flags;
    flags.insert(flags.begin(), "-l");
    CHECK(strings_of(tools.text(args)["files"]) == rg_lines(t.path, flags));
    args["output"] = "count";
    json counts = tools.text(args);
    std::vector<std::string> lines, matches;
    for (const auto& k : counts["counts"]) {
      lines.push_back(k["path"].get<std::string>() + ":" + std::to_string(k["lines"].get<int>()));
      matches.push_back(k["path"].get<std::string>() + ":" + std::to_string(k["matches"].get<int>()));
    }
    flags[0] = "-c";
    CHECK(lines == rg_lines(t.path, flags));
    flags[0] = "--count-matches";
    CHECK(matches == rg_lines(t.path, flags));
  }
}

TEST_CASE("the prefilter takes a literal every match needs, or none") {
  using search::Matcher;
  using search::PatternSpec;
  auto literals = [](PatternSpec spec) {
    std::vector<std::string> out;
    Matcher matcher(spec);
    for (const auto& l : matcher.prefilter()) out.push_back(l.text);
    std::sort(out.begin(), out.end());
    return out;
  };
  CHECK(literals({.pattern = "\\w+_t\\b"}) == std::vector<std::string>{"_t"});
  CHECK(literals({.pattern = "EPOLLEXCLUSIVE|IN_Q_OVERFLOW"}) == std::vector<std::string>{"epollexclusive", "in_q_overflow"});
  CHECK(literals({.pattern = "\\bstd::make_shared<\\w+>"}) == std::vector<std::string>{"std::make_shared<"});
  CHECK(literals({.pattern = "\\d+"}).empty());
  CHECK(literals({.pattern = "a|\\w+"}).empty());
  // Case-insensitive 'k' and 's' may be U+212A and U+017F in the text: their lines are candidates.
  CHECK(literals({.pattern = "kelvins", .case_mode = search::CaseMode::insensitive}) ==
        std::vector<std::string>{"kelvins", "\xC5\xBF", "\xE2\x84\xAA"});
  CHECK(literals({.pattern = "return"}) == std::vector<std::string>{"return"});
}

TEST_CASE("a long line with very many matches is counted in linear time") {
  TempDir t;
  std::string line;
  for (int i = 0; i < 200000; ++i) line += "ab_t ";
  t.write("one.txt", line + "\n" + line);
  SearchTools tools(t.path);
  auto started = std::chrono::steady_clock::now();
  json counts = tools.text({{"pattern", "\\w+_t\\b"}, {"output", "count"}});
  json first = tools.text({{"pattern", "\\w+_t\\b"}, {"max_results", 3}});
  CHECK(std::chrono::steady_clock::now() - started < std::chrono::seconds(5));
  REQUIRE(counts["counts"].size() == 1);
  CHECK(counts["counts"][0]["lines"] == 2);
  CHECK(counts["counts"][0]["matches"] == 400000);
  CHECK(first["matches"].size() == 3);
  CHECK(first["matches"][2]["column"] == 11);
}

}  // namespace
