// search_files against `rg --files`: the same ignore rules, globs, name fragments.
#include "search_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

// rg -g also lifts ignore rules (a whitelist glob wins over .gitignore); search_files only filters
// what rg --files lists, so the oracle is the intersection.
std::vector<std::string> rg_glob(const std::filesystem::path& dir, const std::string& glob) {
  auto all = rg_lines(dir, {"--files"});
  auto globbed = rg_lines(dir, {"--files", "-g", glob});
  std::vector<std::string> out;
  std::set_intersection(all.begin(), all.end(), globbed.begin(), globbed.end(), std::back_inserter(out));
  return out;
}

TEST_CASE("search_files lists what rg --files lists, filtered by glob") {
  TempDir t;
  build_sample_tree(t);
  SearchTools tools(t.path);
  CHECK(strings_of(tools.files({{"pattern", "*"}})["files"]) == rg_lines(t.path, {"--files"}));
  CHECK(strings_of(tools.files({{"pattern", "*.txt"}})["files"]) == rg_glob(t.path, "*.txt"));
  CHECK(strings_of(tools.files({{"pattern", "sub/**/*.py"}})["files"]) ==
        rg_glob(t.path, "sub/**/*.py"));
  CHECK(strings_of(tools.files({{"pattern", "*.{cpp,h}"}})["files"]) ==
        rg_glob(t.path, "*.{cpp,h}"));
  CHECK(strings_of(tools.files({{"pattern", "[a-c]*"}})["files"]) == rg_glob(t.path, "[a-c]*"));
  CHECK(strings_of(tools.files({{"pattern", "*"}, {"hidden", true}})["files"]) ==
        rg_lines(t.path, {"--files", "--hidden", "-g", "!.git"}));
  CHECK(strings_of(tools.files({{"pattern", "*"}, {"no_ignore", true}})["files"]) ==
        rg_lines(t.path, {"--files", "--no-ignore"}));
  CHECK(strings_of(tools.files({{"pattern", "*"}, {"type", {"cpp"}}})["files"]) ==
        rg_lines(t.path, {"--files", "-t", "cpp"}));
}

TEST_CASE("a pattern without glob characters is a case-insensitive name fragment") {
  TempDir t;
  t.write("src/MainWindow.cpp", "");
  t.write("src/mainwindow_test.cpp", "");
  t.write("main/other.cpp", "");
  SearchTools tools(t.path);
  json out = tools.files({{"pattern", "MAINwin"}});
  CHECK(strings_of(out["files"]) == std::vector<std::string>{"src/MainWindow.cpp", "src/mainwindow_test.cpp"});
  out = tools.files({{"pattern", "win"}, {"max_results", 1}});
  CHECK(out["files"].size() == 1);
  CHECK(out["truncated"] == true);
  CHECK(out["message"].get<std::string>().find("1 of 2 files") != std::string::npos);
}

}  // namespace
