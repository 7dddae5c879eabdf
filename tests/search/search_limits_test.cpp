// Bounded memory and the engine's housekeeping: an index capped below the tree's size, a listing
// bound that makes the search stream, binary files with a late NUL, inotify watches released with
// their directories, an index compacted under edits, and an indexer that progresses while
// something keeps writing in the tree. Results always equal rg's.
#include <fcntl.h>
#include <stdio.h>

#include <atomic>
#include <random>
#include <thread>

#include "eventually.h"
#include "search_fixture.h"
#include "tree_watcher.h"
#include "trigram_index.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

const std::vector<std::pair<json, std::vector<std::string>>> kQueries = {
    {{{"pattern", "needle_\\d+"}}, {"needle_\\d+"}},
    {{{"pattern", "HAY"}, {"case", "insensitive"}}, {"-i", "HAY"}},
    {{{"pattern", "alpha|omega"}}, {"alpha|omega"}},
    {{{"pattern", "token_7"}, {"fixed_strings", true}, {"include", {"d1*/**"}}}, {"-F", "-g", "d1*/**", "token_7"}},
};

void check_all(SearchTools& tools, const TempDir& t) {
  for (const auto& [args, flags] : kQueries) {
    std::string query = args.dump();  // clang 14 cannot capture a structured binding in CAPTURE's lambda
    CAPTURE(query);
    json a = args;
    a["max_results"] = 100000;
    json out = tools.text(a);
    CHECK(out["truncated"] == false);
    CHECK(our_matches(out) == rg_matches(t.path, flags));
  }
}

void build_tree(const TempDir& t, int files) {
  std::mt19937 rng(3);
  for (int i = 0; i < files; ++i) {
    std::string body;
    for (int l = 0; l < 5; ++l) body += "hay " + std::to_string(rng() % 1000) + "\n";
    if (i % 23 == 0) body += "needle_" + std::to_string(i) + " alpha\n";
    if (i % 31 == 0) body += "omega token_" + std::to_string(i % 10) + "\n";
    t.write("d" + std::to_string(i % 20) + "/f" + std::to_string(i) + ".txt", body);
  }
}

TEST_CASE("an index capped below the tree covers part of it and results still equal rg") {
  TempDir t;
  build_tree(t, 1000);
  for (json settings : {json{{"max_indexed_files", 100}}, json{{"max_index_bytes", 15000}}}) {
    CAPTURE(settings.dump());
    SearchTools tools(t.path, settings);
    check_all(tools, t);
    json warm = tools.until_indexed({{"pattern", "needle_\\d+"}});
    const json& index = warm["stats"]["index"];
    CHECK(index["full"] == true);
    CHECK(index["pending_files"] == 0);
    CHECK(index["indexed_files"].get<int>() > 0);
    CHECK(index["indexed_files"].get<int>() < 1000);
    if (settings.contains("max_indexed_files")) CHECK(index["indexed_files"] == 100);
    CHECK(warm["stats"]["files_listed"] == 1000);
    CHECK(index["pruned"].get<int>() > 0);
    check_all(tools, t);
    t.write("d1/f1.txt", "needle_5555 alpha token_7\n");
    std::filesystem::remove(t.path / "d2/f2.txt");
    check_all(tools, t);
    build_tree(t, 1000);  // back as it was, for the next settings
  }
}

TEST_CASE("a tree over max_listed_files is searched streaming, with the same answers") {
  TempDir t;
  build_tree(t, 1000);
  t.write(".ignore", "d19/\n");
  SearchTools streamed(t.path, {{"max_listed_files", 100}});
  SearchTools listed(t.path);
  check_all(streamed, t);
  const std::vector<json> cases = {
      {{"pattern", "hay \\d+"}, {"max_results", 7}},
      {{"pattern", "hay"}, {"max_results", 0}},
      {{"pattern", "needle_\\d+"}, {"max_results", 5}},
      {{"pattern", "needle_\\d+"}},
      {{"pattern", "hay"}, {"output", "files"}, {"max_results", 13}},
      {{"pattern", "omega"}, {"output", "count"}, {"max_results", 4}},
      {{"pattern", "hay"}, {"max_per_file", 2}, {"max_results", 9}},
  };
  for (const auto& args : cases) {
    CAPTURE(args.dump());
    json a = streamed.text(args), b = listed.text(args);
    CHECK(a["stats"]["streamed"] == true);
    CHECK(b["stats"]["streamed"] == false);
    CHECK(a["stats"]["files_listed"] == b["stats"]["files_listed"]);
    a.erase("stats");
    b.erase("stats");
    CHECK(a == b);
  }
  json files = streamed.text({{"pattern", "omega"}, {"output", "files"}});
  CHECK(strings_of(files["files"]) == rg_lines(t.path, {"-l", "omega"}));
  for (const json& args : {json{{"pattern", "*.txt"}, {"max_results", 100000}}, json{{"pattern", "f1"}},
                           json{{"pattern", "d3/*"}, {"max_results", 10}}, json{{"pattern", "F19"}, {"max_results", 3}}}) {
    CAPTURE(args.dump());
    json a = streamed.files(args), b = listed.files(args);
    CHECK(a["stats"]["streamed"] == true);
    CHECK(b["stats"]["streamed"] == false);
    CHECK(a["stats"]["files_matched"] == b["stats"]["files_matched"]);
    a.erase("stats");
    b.erase("stats");
    CHECK(a == b);
  }
  CHECK(strings_of(streamed.files({{"pattern", "*"}, {"max_results", 100000}})["files"]) == rg_lines(t.path, {"--files"}));
}

TEST_CASE("the listings of all filters together stay within max_listed_files") {
  TempDir t;
  build_tree(t, 600);
  SearchTools tools(t.path, {{"max_listed_files", 1000}});
  const json a = {{"pattern", "needle_\\d+"}}, b = {{"pattern", "needle_\\d+"}, {"exclude", {"d0"}}};
  tools.until_indexed(a);  // the watcher is up: listings are cached from now on
  CHECK(tools.text(a)["stats"]["index"]["listing_reused"] == true);
  CHECK(tools.text(b)["stats"]["index"]["listing_reused"] == false);
  CHECK(tools.text(b)["stats"]["index"]["listing_reused"] == true);
  // 600 + 570 paths do not fit in 1000: b's listing evicted a's.
  CHECK(tools.text(a)["stats"]["index"]["listing_reused"] == false);
  CHECK(tools.text(a)["stats"]["index"]["listing_reused"] == true);
  check_all(tools, t);
}

TEST_CASE("a file with a NUL after the first 64 KiB is skipped whole, where rg reports its early matches") {
  TempDir t;
  std::string filler;
  for (int i = 0; i < 1000; ++i) filler += std::string(99, 'x') + "\n";  // ~100 KB
  t.write("late_nul.txt", "needle first\n" + filler + "needle before nul\n" + std::string("\0", 1) + "needle after\n");
  t.write("early_nul.txt", "needle first\n" + std::string("\0", 1) + filler + "needle later\n");
  t.write("text.txt", "needle in text\n");
  SearchTools tools(t.path);
  json out = tools.text({{"pattern", "needle"}});
  CHECK(out["stats"]["binary_skipped"] == 2);
  std::set<MatchKey> ours = our_matches(out);
  REQUIRE(ours.size() == 1);
  CHECK(std::get<0>(*ours.begin()) == "text.txt");
  // rg: nothing from the file with an early NUL; from the other one the matches of the buffers
  // before the NUL's, and never anything after it. Without the binary files, rg equals us.
  auto rg = rg_matches(t.path, {"needle"});
  std::set<MatchKey> rg_text, rg_late;
  for (const auto& m : rg) (std::get<0>(m) == "late_nul.txt" ? rg_late : rg_text).insert(m);
  CHECK(rg_text == ours);
  CHECK(rg_late.size() >= 1);  // the deviation stated in search_engine.h; if rg changes, revisit it
  for (const auto& m : rg_late) CHECK(std::get<5>(m) != "needle after");
  CHECK(strings_of(tools.text({{"pattern", "needle"}, {"output", "files"}})["files"]) ==
        std::vector<std::string>{"text.txt"});
}

TEST_CASE("a large file with a NUL in its first block is skipped after that block, not read whole") {
  TempDir t;
  std::string big(32 << 20, 'x');
  big[10] = '\0';
  t.write("big.bin", big);
  big[10] = 'x';
  big[20 << 20] = '\0';
  t.write("late.bin", big);
  t.write("text.txt", "xx\n");
  SearchTools tools(t.path);
  for (const std::string path : {"big.bin", "late.bin", ""}) {
    CAPTURE(path);
    json args = {{"pattern", "xx"}};
    if (!path.empty()) args["path"] = path;
    json out = tools.text(args);
    const json& stats = out["stats"];
    CHECK(stats["binary_skipped"] == (path.empty() ? 2 : 1));
    std::uint64_t read = stats["bytes_read"].get<std::uint64_t>();
    // The early NUL: one 64 KiB block. The late one: up to the chunk that holds it, not the 32 MiB.
    std::uint64_t most = path == "big.bin" ? 64u << 10 : path == "late.bin" ? 22u << 20 : (64u << 10) + (22u << 20) + 3;
    CHECK(read <= most);
    CHECK(read > 0);
  }
}

TEST_CASE("a drain takes what was queued when it began, so a tree that never stops changing cannot hold it") {
  TempDir t;
  for (const char* d : {"a/x", "b/y"}) std::filesystem::create_directories(t.path / d);
  auto watcher = search::TreeWatcher::create(t.path.string(), 1000);
  REQUIRE(watcher);
  // Two directories exchanged without pause: every exchange queues events, and a drain that read
  // until the queue was empty re-watched the moved directories for as long as this thread ran.
  std::atomic<bool> stop{false};
  std::atomic<long> swaps{0};
  std::thread swapper([&] {
    while (!stop)
      if (::renameat2(AT_FDCWD, (t.path / "a").c_str(), AT_FDCWD, (t.path / "b").c_str(), RENAME_EXCHANGE) == 0) ++swaps;
  });
  REQUIRE(eventually([&] { return swaps.load() >= 100; }));
  std::size_t events = 0;
  long before = swaps.load();
  for (int i = 0; i < 10; ++i) events += watcher->drain(nullptr);
  long during = swaps.load() - before;
  stop = true;
  swapper.join();
  CHECK(during > 0);
  CHECK(events > 0);
  // Once the changes stop, the drains catch up (the watches they replace leave an IN_IGNORED each,
  // so it takes a few). So many changes overflow the kernel's queue: the watcher then says it is
  // not healthy, and the index behind it rescans, as it must.
  int rounds = 0;
  while (watcher->drain(nullptr) != 0 && ++rounds < 10) {
  }
  CHECK(rounds < 10);
}

TEST_CASE("watches end with their directories, deleted or moved out of the tree") {
  TempDir t, outside;
  for (const char* d : {"a/b/c", "x/y", "keep"}) std::filesystem::create_directories(t.path / d);
  auto watcher = search::TreeWatcher::create(t.path.string(), 100);
  REQUIRE(watcher);
  CHECK(watcher->watched_directories() == 7);
  std::filesystem::remove_all(t.path / "a");
  watcher->drain(nullptr);
  CHECK(watcher->watched_directories() == 4);
  std::filesystem::rename(t.path / "x", outside.path / "x");
  std::vector<search::TreeWatcher::Change> changes;
  watcher->drain(&changes);
  CHECK(watcher->watched_directories() == 2);
  CHECK(watcher->healthy());
  // What happens out there is no longer news.
  changes.clear();
  outside.write("x/y/new.txt", "x\n");
  watcher->drain(&changes);
  CHECK(changes.empty());
  // Moved back in, and moved within the tree, it is watched under its new path.
  std::filesystem::rename(outside.path / "x", t.path / "x2");
  watcher->drain(nullptr);
  CHECK(watcher->watched_directories() == 4);
  std::filesystem::rename(t.path / "x2", t.path / "keep/x3");
  watcher->drain(nullptr);
  CHECK(watcher->watched_directories() == 4);
  changes.clear();
  t.write("keep/x3/y/z.txt", "z\n");
  watcher->drain(&changes);
  bool seen = false;
  for (const auto& c : changes) seen = seen || c.path == (t.path / "keep/x3/y/z.txt").string();
  CHECK(seen);
  // Many directories made and removed: the count comes back down.
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 50; ++i) std::filesystem::create_directories(t.path / ("tmp/d" + std::to_string(i)));
    watcher->drain(nullptr);
    std::filesystem::remove_all(t.path / "tmp");
    watcher->drain(nullptr);
    CHECK(watcher->watched_directories() == 4);
  }
  CHECK(watcher->healthy());
}

TEST_CASE("the trigram index drops what was removed: bounded ids and bytes under edits") {
  search::TrigramIndex index;
  bool ok = false;
  for (int i = 0; i < 100; ++i)
    index.add("f" + std::to_string(i), search::TrigramIndex::trigrams_of("common text " + std::to_string(i), ok), 10, 1, i);
  const auto bytes = index.bytes();
  for (int round = 0; round < 20000; ++round) {
    std::string content = "edited round_" + std::to_string(round);
    index.add("f7", search::TrigramIndex::trigrams_of(content, ok), 10, round, 7);
  }
  CHECK(index.files() == 100);
  CHECK(index.ids() < 3000);
  CHECK(index.bytes() < bytes + 200);
  CHECK(index.bytes() > bytes - 200);
  auto may_match = [&](const std::string& regex, const std::string& path) {
    search::IndexQuery query(regex, false, 8 << 20);
    REQUIRE(query.useful());
    return index.candidates(query).may_match(index.find(path)->id);
  };
  CHECK(may_match("round_19999", "f7"));
  CHECK(!may_match("round_19998", "f7"));
  CHECK(!may_match("round_19999", "f8"));
  CHECK(may_match("common text 8", "f8"));
  CHECK(!may_match("common text 7", "f7"));
  index.remove("", true);
  CHECK(index.files() == 0);
  CHECK(index.bytes() == 0);
}

TEST_CASE("the indexer finishes while something keeps writing elsewhere in the tree") {
  TempDir t;
  build_tree(t, 500);
  t.write(".ignore", "build/\n");
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop; ++i) {
      t.write("build/out" + std::to_string(i % 10) + ".o", std::to_string(i));
      std::this_thread::sleep_for(std::chrono::microseconds(300));
    }
  });
  SearchTools tools(t.path);
  json out;
  auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < std::chrono::seconds(8)) {
    out = tools.text({{"pattern", "needle_\\d+"}});
    if (out["stats"]["index"]["indexed_files"] == 500 && out["stats"]["index"]["pending_files"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  CHECK(out["stats"]["index"]["indexed_files"] == 500);
  CHECK(out["stats"]["index"]["used"] == true);
  t.write("d5/f5.txt", "needle_12345 now\n");
  check_all(tools, t);
  stop = true;
  writer.join();
}

}  // namespace
