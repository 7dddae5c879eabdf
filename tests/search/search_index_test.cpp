// The trigram index only prunes: once it is built, results still equal rg's after files are
// edited, added, deleted and renamed between queries.
#include <random>

#include "search_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

struct Query {
  json args;
  std::vector<std::string> rg_flags;
};

const std::vector<Query> kQueries = {
    {{{"pattern", "needle_\\d+"}}, {"needle_\\d+"}},
    {{{"pattern", "HAYSTACK"}, {"case", "insensitive"}}, {"-i", "HAYSTACK"}},
    {{{"pattern", "unique_token_7"}, {"fixed_strings", true}}, {"-F", "unique_token_7"}},
    {{{"pattern", "alpha|omega"}}, {"alpha|omega"}},
    {{{"pattern", "kelvin"}, {"case", "insensitive"}}, {"-i", "kelvin"}},
    {{{"pattern", "ends_here$"}}, {"ends_here$"}},
    {{{"pattern", "zeta\\w*"}, {"word", true}}, {"-w", "zeta\\w*"}},
};

void check_all(SearchTools& tools, const TempDir& t) {
  for (const auto& q : kQueries) {
    CAPTURE(q.args.dump());
    json args = q.args;
    args["max_results"] = 100000;
    json out = tools.text(args);
    CHECK(out["truncated"] == false);
    CHECK(our_matches(out) == rg_matches(t.path, q.rg_flags));
  }
}

TEST_CASE("after the index is built, queries prune files and still equal rg") {
  TempDir t;
  std::mt19937 rng(7);
  for (int i = 0; i < 300; ++i) {
    std::string body;
    for (int l = 0; l < 20; ++l) body += "haystack line " + std::to_string(rng() % 1000) + "\n";
    if (i % 37 == 0) body += "needle_" + std::to_string(i) + " alpha\n";
    if (i % 50 == 0) body += "omega zeta_" + std::to_string(i) + " ends_here\n";
    t.write("dir" + std::to_string(i % 10) + "/file" + std::to_string(i) + ".txt", body);
  }
  t.write("kelvin.txt", "\xE2\x84\xAA" "elvin sign\n");  // KELVIN SIGN folds to k
  SearchTools tools(t.path);
  check_all(tools, t);
  json warm = tools.until_indexed({{"pattern", "needle_\\d+"}});
  CHECK(warm["stats"]["index"]["used"] == true);
  CHECK(warm["stats"]["index"]["pruned"].get<int>() > 250);
  CHECK(warm["stats"]["index"]["listing_reused"] == true);
  check_all(tools, t);

  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  // Edit, add, delete, rename: the next queries, with no pause, must see every change.
  t.write("dir1/file1.txt", "now a needle_1001 is here\n");
  t.write("dir2/new.txt", "needle_2002 alpha ends_here\n");
  t.write("newdir/deeper/new.txt", "needle_3003 unique_token_7\n");
  std::filesystem::remove(t.path / "dir0/file0.txt");
  std::filesystem::rename(t.path / "dir4/file74.txt", t.path / "dir5/renamed.txt");
  std::filesystem::rename(t.path / "dir3", t.path / "dir3_moved");
  t.write("dir6/file6.txt", "");
  check_all(tools, t);
  // Again once the changes are indexed too.
  tools.until_indexed({{"pattern", "needle_\\d+"}});
  check_all(tools, t);
  t.write(".gitignore", "dir7/\n");
  std::filesystem::create_directory(t.path / ".git");
  check_all(tools, t);
  t.write("dir8/file8.txt", "needle_4004\n");
  std::filesystem::remove_all(t.path / "dir9");
  check_all(tools, t);
}

TEST_CASE("with the index disabled or too small, results are the same") {
  TempDir t;
  for (int i = 0; i < 50; ++i) t.write("f" + std::to_string(i) + ".txt", "haystack needle_" + std::to_string(i) + "\n");
  for (json settings : {json{{"index", false}}, json{{"max_indexed_files", 10}}, json{{"max_index_bytes", 0}}}) {
    CAPTURE(settings.dump());
    SearchTools tools(t.path, settings);
    check_all(tools, t);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    check_all(tools, t);
    t.write("f1.txt", "needle_999\n");
    check_all(tools, t);
  }
}

TEST_CASE("without inotify watches the index is checked by stat and still equals rg") {
  TempDir t;
  for (int i = 0; i < 40; ++i) t.write("d" + std::to_string(i) + "/f.txt", "haystack needle_" + std::to_string(i) + "\n");
  SearchTools tools(t.path, {{"max_watched_dirs", 3}});
  check_all(tools, t);
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));  // past the racy window
  json warm = tools.until_indexed({{"pattern", "needle_\\d+"}});
  CHECK(warm["stats"]["index"]["used"] == true);
  t.write("d3/f.txt", "unique_token_7 needle_77\n");
  t.write("d4/f.txt", "");
  check_all(tools, t);
}

}  // namespace
