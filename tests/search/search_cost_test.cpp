// Costs that could explode with the input's size, each bounded or made linear: long patterns
// (RE2's prefilter analysis is quadratic in a literal's length), thousands of include globs (one
// RE2::Set instead of a regex run per glob per file), brace nesting and long globs from arguments
// and from a hostile tree's ignore files, ignore files with too many rules or bytes; and an
// exception on a search thread, which must end the call, not the process. Results equal rg's
// where rg answers the same question.
#include <fcntl.h>

#include <stdexcept>

#include "glob.h"
#include "matcher.h"
#include "roots.h"
#include "search_engine.h"
#include "search_fixture.h"
#include "walker.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

std::string nested_braces(int depth) { return std::string(depth, '{') + "a" + std::string(depth, '}'); }

TEST_CASE("a long pattern is compiled without the prefilter and still finds what it should") {
  TempDir t;
  std::string literal;
  for (int i = 0; literal.size() < (200 << 10); ++i) literal += "w" + std::to_string(i) + " ";
  t.write("hit.txt", "before\n" + literal + "\nafter\n");
  t.write("miss.txt", literal.substr(0, literal.size() / 2) + "\n");
  SearchTools tools(t.path);
  for (bool fixed : {false, true}) {
    CAPTURE(fixed);
    json out = tools.text({{"pattern", literal}, {"fixed_strings", fixed}, {"output", "files"}});
    CHECK(strings_of(out["files"]) == std::vector<std::string>{"hit.txt"});
  }
  // Thousands of atoms every match needs: only a few are tried as the prefilter's literal.
  std::string many;
  for (int i = 0; i < 2000; ++i) many += "q" + std::to_string(i) + ".*";
  std::string line;
  for (int i = 0; i < 2000; ++i) line += "q" + std::to_string(i) + " ";
  t.write("many.txt", line + "\n");
  mcpd::search::Matcher matcher({.pattern = many.substr(0, 4000)});
  CHECK(matcher.prefilter().size() == 1);
  json out = tools.text({{"pattern", many}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"many.txt"});
}

TEST_CASE("a pattern over max_pattern_bytes is refused naming the setting") {
  TempDir t;
  t.write("a.txt", "foo\n");
  SearchTools tools(t.path, {{"max_pattern_bytes", 1000}});
  CHECK(tools.error("search_text", {{"pattern", std::string(1001, 'a')}})
            .find("pattern: 1001 bytes, over search.max_pattern_bytes (1000)") == 0);
  CHECK(tools.text({{"pattern", std::string(1000, 'a')}})["matches"].empty());
  CHECK(SearchTools(t.path).error("search_text", {{"pattern", std::string((256 << 10) + 1, 'a')}})
            .find("search.max_pattern_bytes (262144)") != std::string::npos);
  // An error that quotes the rest of a long pattern is cut; its position says where.
  std::string escaped;
  while (escaped.size() < (100 << 10)) escaped += "\\[a";
  std::string error = SearchTools(t.path).error("search_text", {{"pattern", escaped + "[" + escaped}});
  CHECK(error.find("invalid regex at position " + std::to_string(escaped.size() + 1) + ": missing ]: [\\[a") == 0);
  CHECK(error.size() < 300);
  CHECK_THROWS_WITH_AS(search_tools({{"max_pattern_bytes", 0}}), doctest::Contains("search.max_pattern_bytes"),
                       std::invalid_argument);
}

TEST_CASE("10,000 include globs give what rg gives, and more than max_globs is an error") {
  TempDir t;
  for (int i = 0; i < 300; ++i) t.write("d" + std::to_string(i % 7) + "/f" + std::to_string(i) + ".txt", "foo\n");
  std::vector<std::string> globs;
  for (int i = 0; i < 10000; ++i)  // every 37th names a real file; the rest nothing, as a hostile list would
    globs.push_back(i % 37 == 0 ? "f" + std::to_string(i / 37) + ".txt" : "nothing" + std::to_string(i) + "*.c");
  SearchTools tools(t.path, {{"max_globs", 20000}, {"threads", 2}});
  // rg's command line cannot hold 10,000 globs: it checks the first 1,000, the rest are known.
  std::vector<std::string> first(globs.begin(), globs.begin() + 1000), flags = {"-l"};
  for (const auto& g : first) flags.insert(flags.end(), {"-g", g});
  flags.push_back("foo");
  json some = tools.text({{"pattern", "foo"}, {"include", first}, {"output", "files"}, {"max_results", 100000}});
  CHECK(strings_of(some["files"]) == rg_lines(t.path, flags));
  CHECK(some["files"].size() == 28);
  json out = tools.text({{"pattern", "foo"}, {"include", globs}, {"output", "files"}, {"max_results", 100000}});
  std::vector<std::string> expected;
  for (int i = 0; i <= 270; ++i) expected.push_back("d" + std::to_string(i % 7) + "/f" + std::to_string(i) + ".txt");
  std::sort(expected.begin(), expected.end());
  CHECK(strings_of(out["files"]) == expected);
  // Excludes go through the same set.
  json excluded = tools.text({{"pattern", "foo"}, {"exclude", globs}, {"output", "files"}, {"max_results", 100000}});
  CHECK(excluded["files"].size() == 300 - 271);

  SearchTools bounded(t.path);
  CHECK(bounded.error("search_text", {{"pattern", "foo"}, {"include", globs}})
            .find("include/exclude: 10000 globs, over search.max_globs (1024)") == 0);
}

TEST_CASE("a user glob with deep braces or too many bytes is a clear error") {
  TempDir t;
  t.write("a.txt", "foo\n");
  SearchTools tools(t.path);
  CHECK(tools.error("search_text", {{"pattern", "foo"}, {"include", {nested_braces(1000)}}})
            .find("nests braces deeper than 8 (search.max_glob_nesting)") != std::string::npos);
  CHECK(tools.error("search_files", {{"pattern", nested_braces(9)}}).find("search.max_glob_nesting") !=
        std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", "foo"}, {"exclude", {std::string(5000, 'x')}}})
            .find("is 5000 bytes, over search.max_glob_bytes (4096)") != std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", "foo"}, {"include", {"{a,b"}}}).find("unclosed '{'") !=
        std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", "foo"}, {"include", {"[z-a]"}}}).find("bad glob '[z-a]'") !=
        std::string::npos);
  // Within the bounds braces nest and alternate as before.
  json out = tools.text({{"pattern", "foo"}, {"include", {"{{{{{{{{a}}}}}}}}.txt"}}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"a.txt"});
  out = tools.text({{"pattern", "foo"}, {"include", {"{x,{y,a}}.{c,txt}"}}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"a.txt"});
}

TEST_CASE("hostile lines of an ignore file are skipped, counted and logged; the good ones apply as in rg") {
  TempDir t;
  std::string bomb;
  for (int i = 0; i < 2000; ++i) bomb += "{a,b}";
  t.write(".ignore", "skip1.txt\n" + nested_braces(100000) + "\n{unclosed\n" + std::string(100000, '[') + "\n" +
                         bomb + "\n[z-a]\nskip2.txt\n");
  t.write("skip1.txt", "foo\n");
  t.write("skip2.txt", "foo\n");
  t.write("kept.txt", "foo\n");
  t.write("[[[.txt", "foo\n");
  SearchTools tools(t.path);
  std::vector<std::string> logged;
  tools.context.log = [&](const std::string& level, const std::string& message) {
    if (level == "warning") logged.push_back(message);
  };
  json out = tools.text({{"pattern", "foo"}, {"output", "files"}});
  // rg refuses the nested, unclosed and reversed-range lines too; the long lines it would take
  // (we skip them as over max_glob_bytes) match none of these names.
  CHECK(strings_of(out["files"]) == rg_lines(t.path, {"-l", "foo"}, /*warnings=*/true));
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"[[[.txt", "kept.txt"});
  REQUIRE(logged.size() == 1);
  CHECK(logged[0].find("skipped 5 ignore-file line(s)") == 0);
  CHECK(strings_of(tools.files({{"pattern", "*.txt"}})["files"]) == std::vector<std::string>{"[[[.txt", "kept.txt"});
}

TEST_CASE("an ignore file's rules and bytes are bounded by settings") {
  TempDir t;
  std::string rules;
  for (int i = 0; i < 5; ++i) rules += "r" + std::to_string(i) + ".txt\n";
  t.write(".ignore", rules);
  for (int i = 0; i < 5; ++i) t.write("r" + std::to_string(i) + ".txt", "foo\n");
  auto files_with = [&](const json& settings) {
    SearchTools tools(t.path, settings);
    std::vector<std::string> logged;
    tools.context.log = [&](const std::string&, const std::string& message) { logged.push_back(message); };
    json out = tools.text({{"pattern", "foo"}, {"output", "files"}});
    return std::make_pair(strings_of(out["files"]), logged);
  };
  auto [all, none_logged] = files_with({});
  CHECK(all.empty());
  CHECK(none_logged.empty());
  auto [by_rules, rules_logged] = files_with({{"max_ignore_rules", 3}});
  CHECK(by_rules == std::vector<std::string>{"r3.txt", "r4.txt"});
  REQUIRE(rules_logged.size() == 1);
  CHECK(rules_logged[0].find("skipped 2 ignore-file line(s)") == 0);
  // 17 bytes: "r0.txt\nr1.txt\nr2." is read, the cut line goes with the rest.
  auto [by_bytes, bytes_logged] = files_with({{"max_ignore_file_bytes", 17}});
  CHECK(by_bytes == std::vector<std::string>{"r2.txt", "r3.txt", "r4.txt"});
  REQUIRE(bytes_logged.size() == 1);
  CHECK(bytes_logged[0].find("skipped 1 ignore-file line(s)") == 0);
  // search.max_file_bytes bounds what is read of an ignore file too (read through the directory's
  // fd), the same way: the smaller of the two bounds applies.
  auto [by_file_bytes, file_bytes_logged] = files_with({{"max_file_bytes", 17}});
  CHECK(by_file_bytes == std::vector<std::string>{"r2.txt", "r3.txt", "r4.txt"});
  REQUIRE(file_bytes_logged.size() == 1);
  CHECK(file_bytes_logged[0].find("skipped 1 ignore-file line(s)") == 0);
  CHECK_THROWS_WITH_AS(search_tools({{"max_glob_nesting", 65}}), doctest::Contains("search.max_glob_nesting"),
                       std::invalid_argument);
}

TEST_CASE("glob translation stays linear on a line of unclosed brackets") {
  search::GlobLimits limits;
  limits.max_bytes = 1 << 20;
  std::string regex = search::glob_to_regex(std::string(1 << 20, '['), limits);
  CHECK(regex.size() == 2 * (1u << 20) + 8);  // "(?:.*/)?" then "\[" for each
  CHECK(search::glob_to_regex("[a][[b]", limits) == "(?:.*/)?[a][\\[b]");
  CHECK(search::glob_to_regex("[[a", limits) == "(?:.*/)?\\[\\[a");
}

TEST_CASE("a type named many times is kept once") {
  TempDir t;
  t.write("a.py", "foo\n");
  t.write("b.c", "foo\n");
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}, {"type", std::vector<std::string>(100000, "py")}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"a.py"});
}

/// A search engine whose threads throw on file f1 while `armed` (as an allocation failure would):
/// the searching threads, or with `indexer` the background indexer.
struct ThrowingEngine {
  std::atomic<bool> armed{true};
  std::atomic<int> thrown{0};
  search::SearchEngine engine;
  ThrowingEngine(search::SearchSettings settings, bool indexer) : engine(with_hook(settings, indexer)) {}
  search::SearchSettings with_hook(search::SearchSettings settings, bool indexer) {
    settings.threads = 4;
    (indexer ? settings.before_index_file : settings.before_search_file) = [this](const std::string& path) {
      if (armed && path.size() >= 6 && path.compare(path.size() - 6, 6, "f1.txt") == 0) {
        ++thrown;
        throw std::runtime_error("injected failure reading " + path);
      }
    };
    return settings;
  }
};

search::TextQuery files_query(const std::string& pattern) {
  search::TextQuery query;
  query.pattern.pattern = pattern;
  query.output = search::OutputMode::files;
  return query;
}

TEST_CASE("an exception on a search thread fails the call with its message, and the engine serves on") {
  TempDir t;
  for (int i = 0; i < 40; ++i) t.write("f" + std::to_string(i) + ".txt", "foo " + std::to_string(i) + "\n");
  search::SearchSettings streamed;
  streamed.max_listed_files = 5;  // always searched by the walker's threads
  for (auto settings : {search::SearchSettings{}, streamed}) {
    CAPTURE(settings.max_listed_files);
    ThrowingEngine e(settings, false);
    ToolContext context;
    context.roots = {t.path};
    OpenedPath dir = open_in_roots(t.path.string(), context, PathKind::directory);
    auto query = files_query("foo");
    // The first search of a tree streams (walker threads); once indexed, searches run on the
    // engine's own pool of threads.
    for (int round = 0; round < 2; ++round) {
      CAPTURE(round);
      e.armed = true;
      int before = e.thrown;
      CHECK_THROWS_WITH_AS(e.engine.search_text(dir, query, context),
                           doctest::Contains(("injected failure reading " + (t.path / "f1.txt").string()).c_str()),
                           std::runtime_error);
      CHECK(e.thrown > before);
      e.armed = false;
      json out = e.engine.search_text(dir, query, context);
      CHECK(out["files"].size() == 40);
      e.engine.wait_for_index(t.path.string());
      if (round == 1 && settings.max_listed_files > 5) CHECK(out["stats"]["streamed"] == false);
    }
  }
}

TEST_CASE("an exception on the indexer's thread stops the index, not the process") {
  TempDir t;
  for (int i = 0; i < 40; ++i) t.write("f" + std::to_string(i) + ".txt", "foo " + std::to_string(i) + "\n");
  ThrowingEngine e({}, true);
  ToolContext context;
  context.roots = {t.path};
  OpenedPath dir = open_in_roots(t.path.string(), context, PathKind::directory);
  auto query = files_query("foo \\d+");
  json first = e.engine.search_text(dir, query, context);
  CHECK(first["files"].size() == 40);
  REQUIRE(e.engine.wait_for_index(t.path.string()));  // returns: the failed indexer left nothing pending
  CHECK(e.thrown == 1);
  for (int round = 0; round < 2; ++round) {
    json later = e.engine.search_text(dir, query, context);
    CHECK(later["files"].size() == 40);
    CHECK(later["stats"]["index"]["error"].get<std::string>().find("the indexer stopped: injected failure") == 0);
    CHECK(later["stats"]["index"]["pending_files"] == 0);
    CHECK(e.engine.wait_for_index(t.path.string()));
  }
  CHECK(e.thrown == 1);
}

TEST_CASE("an exception in a walker thread's callback ends the walk with it") {
  TempDir t;
  for (int i = 0; i < 50; ++i) t.write("d" + std::to_string(i) + "/f.txt", "x\n");
  Fd dir(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir);
  search::WalkCounters counters;
  std::atomic<int> polls{0};
  std::function<bool()> cancelled = [&] {
    if (++polls == 20) throw std::runtime_error("injected failure in a walk");
    return false;
  };
  CHECK_THROWS_WITH_AS(search::walk_files(dir.get(), t.path.string(), {}, 4, counters, cancelled),
                       doctest::Contains("injected failure in a walk"), std::runtime_error);
  std::function<bool()> never = [] { return false; };
  std::atomic<int> seen{0};
  CHECK_THROWS_WITH_AS(search::walk_each(dir.get(), t.path.string(), {}, 4, counters, never,
                                         [&](unsigned, std::string&&) {
                                           if (++seen == 10) throw std::runtime_error("injected failure per file");
                                         }),
                       doctest::Contains("injected failure per file"), std::runtime_error);
  CHECK(search::walk_files(dir.get(), t.path.string(), {}, 4, counters, never).size() == 50);
}

}  // namespace

namespace {

using namespace mcpd;
using namespace mcpd::test;

TEST_CASE("context lines times matches are kept only up to the answer's size, with the same answer") {
  TempDir t;
  std::string body;
  for (int i = 0; i < 20000; ++i) body += "match " + std::to_string(i) + " " + std::string(100, 'x') + "\n";
  for (int f = 0; f < 3; ++f) t.write("f" + std::to_string(f) + ".txt", body);
  json args = {{"pattern", "match \\d+"}, {"context_before", 100}, {"context_after", 100}, {"max_results", 1000000}};
  for (json settings : {json{{"threads", 2}}, json{{"threads", 2}, {"max_listed_files", 1}}}) {
    CAPTURE(settings.dump());
    SearchTools small(t.path, settings);
    small.context.max_result_bytes = 1 << 20;
    SearchTools large(t.path, settings);
    large.context.max_result_bytes = 1ull << 40;  // nothing cut before the collector: the reference
    json cut = small.text(args);
    CHECK(cut["truncated"] == true);
    CHECK(cut["message"].get<std::string>().find("result size limit") != std::string::npos);
    CHECK(cut.dump().size() < (1u << 20));
    REQUIRE(cut["matches"].size() > 10);
    json whole = large.text({{"pattern", "match \\d+"}, {"context_before", 100}, {"context_after", 100},
                             {"max_results", cut["matches"].size()}});
    CHECK(whole["matches"] == cut["matches"]);
  }
}

}  // namespace
