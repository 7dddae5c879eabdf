// search_text against ripgrep on the same trees: the same matches for a table of patterns and flags,
// the ignore rules, binary, unicode, CRLF and long-line files, and the errors a user can make.
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <optional>
#include <thread>

#include "search_fixture.h"
#include "unprivileged.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

struct Case {
  json args;
  std::vector<std::string> rg_flags;
};

TEST_CASE("search_text finds what rg finds for a table of patterns and flags") {
  TempDir t;
  build_sample_tree(t);
  SearchTools tools(t.path);
  const std::vector<Case> cases = {
      {{{"pattern", "foo"}}, {"foo"}},
      {{{"pattern", "fo+\\w*"}}, {"fo+\\w*"}},
      {{{"pattern", "^bar$"}}, {"^bar$"}},
      {{{"pattern", "bar$"}}, {"bar$"}},
      {{{"pattern", "^foo"}}, {"^foo"}},
      {{{"pattern", "o\\s+b"}}, {"o\\s+b"}},
      {{{"pattern", "foo\\sbar"}}, {"foo\\sbar"}},
      {{{"pattern", "FOO"}, {"case", "insensitive"}}, {"-i", "FOO"}},
      {{{"pattern", "Foo"}, {"case", "smart"}}, {"-S", "Foo"}},
      {{{"pattern", "foo"}, {"case", "smart"}}, {"-S", "foo"}},
      {{{"pattern", "foo"}, {"word", true}}, {"-w", "foo"}},
      {{{"pattern", "fo\\w"}, {"word", true}}, {"-w", "fo\\w"}},
      {{{"pattern", "a.c"}, {"fixed_strings", true}}, {"-F", "a.c"}},
      {{{"pattern", "a.c"}}, {"a.c"}},
      {{{"pattern", "(foo"}, {"fixed_strings", true}}, {"-F", "(foo"}},
      {{{"pattern", "grüsse"}, {"case", "insensitive"}}, {"-i", "grüsse"}},
      {{{"pattern", "σίσυφος"}, {"case", "insensitive"}}, {"-i", "σίσυφος"}},
      {{{"pattern", "köln"}, {"case", "insensitive"}}, {"-i", "köln"}},
      {{{"pattern", "caf."}}, {"caf."}},
      {{{"pattern", "\\w+\\("}, {"include", {"*.cpp"}}}, {"-g", "*.cpp", "\\w+\\("}},
      {{{"pattern", "foo"}, {"include", {"*.txt", "*.h"}}}, {"-g", "*.txt", "-g", "*.h", "foo"}},
      {{{"pattern", "foo"}, {"include", {"*.log"}}}, {"-g", "*.log", "foo"}},
      {{{"pattern", "foo"}, {"exclude", {"src", "*.md"}}}, {"-g", "!src", "-g", "!*.md", "foo"}},
      {{{"pattern", "foo"}, {"include", {"sub/**"}}}, {"-g", "sub/**", "foo"}},
      {{{"pattern", "foo"}, {"type", {"py"}}}, {"-t", "py", "foo"}},
      {{{"pattern", "foo"}, {"type", {"cpp", "c"}}}, {"-t", "cpp", "-t", "c", "foo"}},
      {{{"pattern", "foo"}, {"hidden", true}}, {"--hidden", "-g", "!.git", "foo"}},
      {{{"pattern", "foo"}, {"no_ignore", true}}, {"--no-ignore", "foo"}},
      {{{"pattern", "foo"}, {"no_ignore", true}, {"hidden", true}}, {"--no-ignore", "--hidden", "-g", "!.git", "foo"}},
      {{{"pattern", "needle"}, {"max_line_bytes", 4 << 20}}, {"needle"}},
      {{{"pattern", "without newline$"}}, {"without newline$"}},
      {{{"pattern", "x{3}y"}, {"max_line_bytes", 4 << 20}}, {"x{3}y"}},
      {{{"pattern", "foo|bar"}, {"max_per_file", 1}}, {"-m", "1", "foo|bar"}},
      {{{"pattern", "[[:upper:]]{3}"}}, {"[[:upper:]]{3}"}},
      {{{"pattern", "nul"}}, {"nul"}},
  };
  for (const auto& c : cases) {
    CAPTURE(c.args.dump());
    json ours = tools.text(c.args);
    CHECK(ours["truncated"] == false);
    CHECK(our_matches(ours) == rg_matches(t.path, c.rg_flags));
  }
}

TEST_CASE("patterns that can match empty text count as rg counts them") {
  // rg (Rust's regex iterator) drops an empty match right where the previous match ended: "xx"
  // holds one match of x*, and "xax" two.
  TempDir t;
  t.write("a.txt", "abc\nxx\n\nxax\n");
  t.write("b.txt", "x\r\nyy\r\n");
  SearchTools tools(t.path);
  for (const char* pattern : {"x*", "a?", "(?:x|)", "\\b", "y*$"}) {
    CAPTURE(pattern);
    CHECK(our_matches(tools.text({{"pattern", pattern}})) == rg_matches(t.path, {pattern}));
    json counts = tools.text({{"pattern", pattern}, {"output", "count"}});
    std::vector<std::string> matches;
    for (const auto& c : counts["counts"])
      matches.push_back(c["path"].get<std::string>() + ":" + std::to_string(c["matches"].get<int>()));
    CHECK(matches == rg_lines(t.path, {"--count-matches", pattern}));
  }
}

TEST_CASE("results are sorted by path then offset, and the stats count what was skipped") {
  TempDir t;
  build_sample_tree(t);
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}});
  std::vector<std::pair<std::string, std::uint64_t>> order;
  for (const auto& m : out["matches"]) order.emplace_back(m["path"], m["byte_offset"]);
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(out["stats"]["binary_skipped"] == 1);
  CHECK(out["stats"]["files_matched"] == rg_lines(t.path, {"-l", "foo"}).size());
  CHECK(out["root"] == t.path.string());
}

TEST_CASE("output files and count agree with rg -l and rg -c / --count-matches") {
  TempDir t;
  build_sample_tree(t);
  SearchTools tools(t.path);
  for (const char* pattern : {"foo", "o", "bar|Foo"}) {
    CAPTURE(pattern);
    json files = tools.text({{"pattern", pattern}, {"output", "files"}});
    CHECK(strings_of(files["files"]) == rg_lines(t.path, {"-l", pattern}));
    json counts = tools.text({{"pattern", pattern}, {"output", "count"}});
    std::vector<std::string> lines, matches;
    for (const auto& c : counts["counts"]) {
      lines.push_back(c["path"].get<std::string>() + ":" + std::to_string(c["lines"].get<int>()));
      matches.push_back(c["path"].get<std::string>() + ":" + std::to_string(c["matches"].get<int>()));
    }
    CHECK(lines == rg_lines(t.path, {"-c", pattern}));
    CHECK(matches == rg_lines(t.path, {"--count-matches", pattern}));
  }
}

TEST_CASE("context lines are the lines around each match, as rg -B/-A prints them") {
  TempDir t;
  t.write("a.txt", "one\ntwo\nthree foo\nfour\nfive\nsix foo\nseven\n");
  t.write("b.txt", "foo first\nsecond\r\n");
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}, {"context_before", 2}, {"context_after", 1}});
  REQUIRE(out["matches"].size() == 3);
  CHECK(out["matches"][0]["before"] == json::array({"one", "two"}));
  CHECK(out["matches"][0]["after"] == json::array({"four"}));
  CHECK(out["matches"][1]["before"] == json::array({"four", "five"}));
  CHECK(out["matches"][1]["after"] == json::array({"seven"}));
  CHECK(out["matches"][2]["before"] == json::array());
  CHECK(out["matches"][2]["after"] == json::array({"second"}));
  // Every context line rg prints is one we return.
  std::set<std::string> ours;
  for (const auto& m : out["matches"]) {
    for (const auto& l : m["before"]) ours.insert(m["path"].get<std::string>() + ":" + l.get<std::string>());
    for (const auto& l : m["after"]) ours.insert(m["path"].get<std::string>() + ":" + l.get<std::string>());
  }
  std::set<std::string> rg;
  for (const auto& line : rg_lines(t.path, {"--no-heading", "--with-filename", "-B", "2", "-A", "1", "foo"})) {
    if (line == "--") continue;
    auto dash = line.find('-');
    auto colon = line.find(':');
    if (dash != std::string::npos && (colon == std::string::npos || dash < colon))
      rg.insert(line.substr(0, dash) + ":" + strip_eol(line.substr(dash + 1)));
  }
  CHECK(ours == rg);
}

TEST_CASE("the gitignore rules apply only inside a git repository; .ignore applies everywhere") {
  TempDir t;
  t.write(".gitignore", "*.txt\n");
  t.write(".ignore", "*.md\n");
  t.write("a.txt", "foo\n");
  t.write("b.md", "foo\n");
  t.write("c.cpp", "foo\n");
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"a.txt", "c.cpp"});
  CHECK(strings_of(out["files"]) == rg_lines(t.path, {"-l", "foo"}));
  std::filesystem::create_directory(t.path / ".git");
  SearchTools fresh(t.path);
  out = fresh.text({{"pattern", "foo"}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"c.cpp"});
  CHECK(strings_of(out["files"]) == rg_lines(t.path, {"-l", "foo"}));
}

TEST_CASE("searching a subdirectory applies the ignore files above it, up to the repository") {
  TempDir t;
  build_sample_tree(t);
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}, {"path", "sub"}});
  CHECK(our_matches(out) == rg_matches(t.path / "sub", {"foo"}));
  out = tools.text({{"pattern", "foo"}, {"path", (t.path / "docs").string()}, {"output", "files"}});
  CHECK(strings_of(out["files"]) == rg_lines(t.path / "docs", {"-l", "foo"}));
}

TEST_CASE("a file path searches that file; symlinks are never followed") {
  TempDir t;
  build_sample_tree(t);
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}, {"path", "src/main.cpp"}});
  CHECK(out["matches"].size() == 5);
  CHECK(out["matches"][0]["path"] == "main.cpp");
  json all = tools.text({{"pattern", "foo"}, {"output", "files"}});
  for (const auto& f : all["files"]) {
    CHECK(f != "link.cpp");
    CHECK(f.get<std::string>().rfind("linkdir/", 0) != 0);
  }
}

TEST_CASE("bad input gives errors a user can act on") {
  TempDir t;
  t.write("a.txt", "foo\n");
  SearchTools tools(t.path);
  CHECK(tools.error("search_text", {{"pattern", "ab(c"}}).find("invalid regex at position 3") != std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", "a[b"}}).find("missing ]") != std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", ""}}).find("pattern is empty") != std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", "x"}, {"path", "nope"}}).find("nope") != std::string::npos);
  CHECK(!tools.error("search_text", {{"pattern", "x"}, {"path", "/etc"}}).empty());
  CHECK(tools.error("search_text", {{"pattern", "x"}, {"type", {"cobol"}}}) .find("unknown language 'cobol'; supported: c, cmake, cpp") != std::string::npos);
  CHECK(tools.error("search_text", {{"pattern", "x"}, {"case", "upper"}}).find("case:") == 0);
  CHECK(tools.error("search_text", {{"pattern", "x"}, {"max_results", -1}}).find("max_results") == 0);
  CHECK(tools.error("search_text", {{"pattern", "a{2000}"}}).find("invalid regex at position 2: invalid repetition size") == 0);
  SearchTools small(t.path, {{"max_regex_memory_bytes", 1 << 20}});
  CHECK(small.error("search_text", {{"pattern", "[\\pL\\pN]{1000}"}}).find("pattern too large") == 0);
  CHECK(tools.error("search_files", {{"pattern", "{a,b"}}).find("unclosed '{'") != std::string::npos);
}

TEST_CASE("bad settings name their key") {
  CHECK_THROWS_WITH_AS(search_tools({{"threads", "two"}}), doctest::Contains("search.threads: must be"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(search_tools({{"max_index_bytes", -1}}), doctest::Contains("search.max_index_bytes"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(search_tools({{"bogus", 1}}), doctest::Contains("search.bogus: unknown setting"),
                       std::invalid_argument);
  CHECK(search_tools({{"threads", 3}, {"index", false}}).size() == 2);
}

TEST_CASE("unreadable files are skipped and counted") {
  // Root reads any file whatever its mode, so as root the search runs in a child that has dropped to
  // an unprivileged user; otherwise it runs here. Either way the file really is unreadable to it.
  TempDir t;
  t.write("a.txt", "foo\n");
  auto locked = t.write("locked.txt", "foo\n");
  ::chmod(locked.c_str(), 0);
  json out = run_unprivileged([&] { return SearchTools(t.path).text({{"pattern", "foo"}}); });
  CHECK(out["matches"].size() == 1);
  CHECK(out["stats"]["unreadable_skipped"] == 1);
  ::chmod(locked.c_str(), 0644);
}

TEST_CASE("a pathological regex on a long line finishes (RE2 is linear)") {
  TempDir t;
  t.write("a.txt", std::string(200000, 'a') + "\n");
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "(a*)*b"}});
  CHECK(out["matches"].empty());
  out = tools.text({{"pattern", "(a|aa)*c"}});
  CHECK(out["matches"].empty());
}

TEST_CASE("a result cap cuts deterministically and says so") {
  TempDir t;
  for (int i = 0; i < 30; ++i) t.write("f" + std::to_string(100 + i) + ".txt", "foo\nfoo foo\n");
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "foo"}, {"max_results", 10}});
  CHECK(out["truncated"] == true);
  CHECK(out["message"].get<std::string>().find("max_results (10 matches)") != std::string::npos);
  REQUIRE(out["matches"].size() == 10);
  CHECK(out["matches"][9]["path"] == "f103.txt");
  json files = tools.text({{"pattern", "foo"}, {"max_results", 5}, {"output", "files"}});
  CHECK(strings_of(files["files"]) == std::vector<std::string>{"f100.txt", "f101.txt", "f102.txt", "f103.txt", "f104.txt"});
  CHECK(files["truncated"] == true);
  json exact = tools.text({{"pattern", "foo"}, {"max_results", 90}});
  CHECK(exact["truncated"] == false);
  CHECK(exact["matches"].size() == 90);
  ToolContext small = tools.context;
  small.max_result_bytes = 8192;
  json sized = tools.tool("search_text").handler({{"pattern", "foo"}}, small).structured;
  CHECK(sized["truncated"] == true);
  CHECK(sized["message"].get<std::string>().find("result size limit") != std::string::npos);
}

TEST_CASE("a cancelled search stops with ToolCancelled") {
  TempDir t;
  for (int i = 0; i < 200; ++i) t.write("d" + std::to_string(i % 20) + "/f" + std::to_string(i) + ".txt", "foo\n");
  SearchTools tools(t.path);
  tools.context.cancel.cancel();
  CHECK_THROWS_AS(tools.text({{"pattern", "foo"}}), ToolCancelled);
  CHECK_THROWS_AS(tools.files({{"pattern", "*.txt"}}), ToolCancelled);
}

TEST_CASE("the tools are read-only, idempotent, cached by a custom key, with output schemas") {
  auto tools = search_tools();
  REQUIRE(tools.size() == 2);
  for (const auto& tool : tools) {
    CAPTURE(tool.name);
    CHECK(tool.annotations.read_only);
    CHECK(tool.annotations.idempotent);
    CHECK(tool.cache == CachePolicy::custom);
    CHECK(static_cast<bool>(tool.cache_key));
    CHECK(tool.output_schema.is_object());
    CHECK(tool.input_schema["required"] == json::array({"pattern"}));
  }
}

}  // namespace

namespace {

/// Sets an environment variable for one scope, restoring the old value after.
struct ScopedEnv {
  std::string name;
  std::optional<std::string> old;
  ScopedEnv(std::string n, const std::string& value) : name(std::move(n)) {
    if (const char* v = std::getenv(name.c_str())) old = v;
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old) ::setenv(name.c_str(), old->c_str(), 1);
    else ::unsetenv(name.c_str());
  }
};

}  // namespace

TEST_CASE("the user's global gitignore applies inside a repository, last, as with rg") {
  // The engine reads HOME and XDG_CONFIG_HOME at each walk; rg, run from here, inherits them.
  TempDir home, repo, plain;
  ScopedEnv h("HOME", home.path.string());
  ScopedEnv x("XDG_CONFIG_HOME", (home.path / "xdg").string());
  std::filesystem::create_directories(repo.path / ".git");
  for (const TempDir* t : {&repo, &plain}) {
    t->write("a.txt", "needle a\n");
    t->write("b.secret", "needle b\n");
    t->write("keep.secret", "needle keep\n");
    t->write("sub/c.secret", "needle c\n");
    t->write("sub/gen/d.txt", "needle d\n");
  }
  repo.write(".gitignore", "!keep.secret\n");
  auto same = [&](const TempDir& t, const std::string& what) {
    CAPTURE(what);
    CAPTURE(t.path.string());
    SearchTools tools(t.path);  // a fresh engine: no listing cached from before the change
    CHECK(our_matches(tools.text({{"pattern", "needle"}})) == rg_matches(t.path, {"needle"}));
    CHECK(strings_of(tools.files({{"pattern", "*"}})["files"]) == rg_lines(t.path, {"--files"}));
  };
  // Default path: $XDG_CONFIG_HOME/git/ignore.
  home.write("xdg/git/ignore", "*.secret\ngen/\n");
  same(repo, "xdg default");
  same(plain, "outside a repository: not applied");
  {
    SearchTools tools(repo.path);
    auto files = strings_of(tools.files({{"pattern", "*"}})["files"]);
    CHECK(files == std::vector<std::string>{"a.txt", "keep.secret"});  // the global file did apply
  }
  // core.excludesFile in $XDG_CONFIG_HOME/git/config, then in ~/.gitconfig (which wins), "~/" expanded.
  home.write("xdg/git/config", "[user]\n  name = x\n[core]\n\texcludesFile = ~/from_xdg_config\n");
  home.write("from_xdg_config", "a.txt\n");
  same(repo, "xdg config");
  home.write(".gitconfig", "[Core]\n  excludesfile = \"~/from_gitconfig\" ; comment\n");
  home.write("from_gitconfig", "sub/\n");
  same(repo, "gitconfig");
  // Without XDG_CONFIG_HOME the default is ~/.config/git/ignore.
  std::filesystem::remove(home.path / ".gitconfig");
  std::filesystem::remove(home.path / "xdg/git/config");
  ::unsetenv("XDG_CONFIG_HOME");
  home.write(".config/git/ignore", "*.txt\n");
  same(repo, "home default");
}

TEST_CASE("the cache key changes when the global gitignore changes") {
  TempDir home, repo;
  ScopedEnv h("HOME", home.path.string());
  ScopedEnv x("XDG_CONFIG_HOME", (home.path / "xdg").string());
  std::filesystem::create_directories(repo.path / ".git");
  repo.write("a.txt", "needle\n");
  SearchTools tools(repo.path);
  const json args = {{"pattern", "needle"}};
  std::optional<std::string> k1;
  for (int i = 0; i < 1000 && !k1; ++i) {
    k1 = tools.tool("search_text").cache_key(args, tools.context.roots);
    if (!k1) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(k1.has_value());
  home.write("xdg/git/ignore", "*.txt\n");
  auto k2 = tools.tool("search_text").cache_key(args, tools.context.roots);
  CHECK(k2 != k1);
  home.write("xdg/git/ignore", "*.txt\n*.md\n");
  auto k3 = tools.tool("search_text").cache_key(args, tools.context.roots);
  CHECK(k3 != k2);
  CHECK(tools.text(args)["matches"].size() == 0);
}

namespace {

using namespace mcpd;
using namespace mcpd::test;

TEST_CASE("a tree's cached listing is not reused once an ignore rule from outside the tree changes") {
  TempDir home, repo;
  ScopedEnv h("HOME", home.path.string());
  ScopedEnv x("XDG_CONFIG_HOME", (home.path / "xdg").string());
  std::filesystem::create_directories(repo.path / ".git");
  repo.write("sub/a.txt", "needle\n");
  repo.write("sub/b.log", "needle\n");
  SearchTools tools(repo.path / "sub");
  const json args = {{"pattern", "needle"}, {"output", "files"}};
  // Until the tree's watcher is up, listings are not kept; then one is reused.
  bool reused = false;
  for (int i = 0; i < 1000 && !reused; ++i) {
    reused = tools.text(args)["stats"]["index"]["listing_reused"] == true;
    if (!reused) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  REQUIRE(reused);
  auto files = [&] { return tools.text(args)["files"]; };
  home.write("xdg/git/ignore", "*.log\n");  // the global gitignore
  CHECK(files() == json::array({"a.txt"}));
  home.write("other", "*.txt\n");
  home.write(".gitconfig", "[core]\n\texcludesFile = ~/other\n");  // the config naming it
  CHECK(files() == json::array({"b.log"}));
  repo.write(".gitignore", "*\n");  // an ignore file above the searched tree
  CHECK(files() == json::array());
  repo.write(".gitignore", "\n");
  repo.write(".git/info/exclude", "b.log\n");  // its repository's exclude file
  CHECK(files() == json::array());
}

}  // namespace
