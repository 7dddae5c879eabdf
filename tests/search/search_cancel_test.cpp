// Cancellation and progress on trees large enough for a search to take a while: a cancelled search
// ends with ToolCancelled long before an uncancelled one would, leaves the engine (and its
// background indexer) fit for the next queries, and a running search reports rising progress.
#include <fcntl.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>

#include "roots.h"
#include "search_fixture.h"
#include "walker.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

/// `files` files of about `bytes` bytes of short words each, in 10 directories. Searching them
/// for \w with output count costs one match per word character: slow on purpose.
void build_word_tree(const TempDir& t, int files, std::size_t bytes) {
  std::mt19937 rng(11);
  const char* words[] = {"alpha", "beta", "gamma", "delta", "needle", "haystack", "x", "lorem", "ipsum"};
  for (int i = 0; i < files; ++i) {
    std::string body;
    body.reserve(bytes + 64);
    while (body.size() < bytes) {
      for (int w = 0; w < 8; ++w) body += std::string(words[rng() % 9]) + " ";
      body += std::to_string(rng() % 100000) + "\n";
    }
    t.write("d" + std::to_string(i % 10) + "/f" + std::to_string(i) + ".txt", body);
  }
}

/// Runs `args` on another thread, cancels after `delay`; returns the seconds the call took and
/// whether it ended with ToolCancelled.
std::pair<double, bool> cancelled_after(SearchTools& tools, const std::string& tool, const json& args,
                                        std::chrono::milliseconds delay) {
  std::atomic<bool> cancelled{false};
  std::atomic<double> took{0};
  auto start = Clock::now();
  std::thread call([&] {
    try {
      tools.call(tool, args);
    } catch (const ToolCancelled&) {
      cancelled = true;
    }
    took = seconds_since(start);
  });
  std::this_thread::sleep_for(delay);
  tools.context.cancel.cancel();
  call.join();
  tools.context.cancel = CancelToken();  // a fresh token for the next call
  return {took.load(), cancelled.load()};
}

TEST_CASE("a search cancelled mid-way ends with ToolCancelled long before a full one") {
  TempDir t;
  build_word_tree(t, 100, 160 << 10);  // ~16 MB, ~13 M one-character matches
  const json args = {{"pattern", "\\w"}, {"output", "count"}, {"max_results", 100000}};
  double full_seconds = 0;
  {
    SearchTools tools(t.path, {{"threads", 2}, {"index", false}});
    auto start = Clock::now();
    json full = tools.text(args);
    full_seconds = seconds_since(start);
    CHECK(full["counts"].size() == 100);
    CHECK(full["stats"]["files_searched"] == 100);
    MESSAGE("uncancelled search: " << full_seconds << " s");
    REQUIRE(full_seconds > 0.5);  // else the tree is too small to tell anything
  }
  // Listed (the usual path) and streamed (a tree over max_listed_files) searches alike.
  for (json settings : {json{{"threads", 2}, {"index", false}},
                        json{{"threads", 2}, {"index", false}, {"max_listed_files", 10}}}) {
    CAPTURE(settings.dump());
    SearchTools tools(t.path, settings);
    auto [took, cancelled] = cancelled_after(tools, "search_text", args, std::chrono::milliseconds(50));
    CHECK(cancelled);
    MESSAGE("cancelled after 50 ms, ended after " << took << " s");
    CHECK(took < full_seconds / 3);
    // The engine answers the next call in full; the count is rg's.
    json some = tools.text({{"pattern", "needle \\d+"}, {"output", "count"}});
    CHECK(some["stats"]["streamed"] == settings.contains("max_listed_files"));
    std::vector<std::string> lines;
    for (const auto& c : some["counts"])
      lines.push_back(c["path"].get<std::string>() + ":" + std::to_string(c["lines"].get<int>()));
    CHECK(lines == rg_lines(t.path, {"-c", "needle \\d+"}));
  }
}

TEST_CASE("the walk stops between directories once cancelled") {
  TempDir t;
  for (int i = 0; i < 200; ++i) t.write("d" + std::to_string(i) + "/f.txt", "x\n");
  search::WalkFilter filter;
  mcpd::Fd dir(::open(t.path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir);
  for (unsigned threads : {1u, 2u}) {
    CAPTURE(threads);
    search::WalkCounters counters;
    std::atomic<int> polls{0};
    auto files = search::walk_files(dir.get(), t.path.string(), filter, threads, counters, [&] { return ++polls > 10; });
    CHECK(counters.directories.load() <= 10 + threads);
    CHECK(files.size() <= 10 + threads);
    search::WalkCounters all;
    CHECK(search::walk_files(dir.get(), t.path.string(), filter, threads, all, [] { return false; }).size() == 200);
    CHECK(all.directories.load() == 201);
  }
}

TEST_CASE("searches cancelled while the background indexer runs leave later queries right") {
  TempDir t;
  std::mt19937 rng(5);
  for (int i = 0; i < 1500; ++i) {
    std::string body;
    for (int l = 0; l < 30; ++l) body += "line " + std::to_string(rng() % 5000) + " of hay\n";
    if (i % 41 == 0) body += "needle_" + std::to_string(i) + "\n";
    t.write("d" + std::to_string(i % 30) + "/f" + std::to_string(i) + ".txt", body);
  }
  SearchTools tools(t.path);
  const json args = {{"pattern", "needle_\\d+"}, {"max_results", 100000}};
  const auto expected = rg_matches(t.path, {"needle_\\d+"});
  CHECK(our_matches(tools.text(args)) == expected);  // queues every file for the indexer
  int cancelled = 0;
  for (int delay : {0, 1, 3, 6, 10, 20, 40}) {
    CAPTURE(delay);
    for (const char* tool : {"search_text", "search_files"}) {
      auto [took, was_cancelled] = cancelled_after(tools, tool, tool == std::string("search_text") ? args : json{{"pattern", "*.txt"}},
                                                   std::chrono::milliseconds(delay));
      cancelled += was_cancelled;
    }
    // Between cancellations, an uncancelled query is complete.
    CHECK(our_matches(tools.text(args)) == expected);
  }
  MESSAGE(cancelled << " of 14 calls were cancelled before they finished");
  json warm = tools.until_indexed(args);
  CHECK(warm["stats"]["index"]["pending_files"] == 0);
  CHECK(warm["stats"]["index"]["indexed_files"] == 1500);
  CHECK(warm["stats"]["index"]["used"] == true);
  CHECK(our_matches(warm) == expected);
  t.write("d3/f3.txt", "needle_9999 new\n");
  std::filesystem::remove(t.path / "d0/f0.txt");
  CHECK(our_matches(tools.text(args)) == rg_matches(t.path, {"needle_\\d+"}));
  CHECK(strings_of(tools.files({{"pattern", "*.txt"}, {"max_results", 100000}})["files"]) ==
        rg_lines(t.path, {"--files"}));
}

TEST_CASE("a long search reports rising progress from the caller's thread") {
  TempDir t;
  build_word_tree(t, 30, 100 << 10);
  for (json settings : {json{{"threads", 2}, {"progress_interval_ms", 5}},
                        json{{"threads", 2}, {"progress_interval_ms", 5}, {"max_listed_files", 5}}}) {
    CAPTURE(settings.dump());
    SearchTools tools(t.path, settings);
    struct Report {
      double progress, total;
      std::string message;
      std::thread::id thread;
    };
    std::vector<Report> reports;
    tools.context.progress = [&](double progress, double total, const std::string& message) {
      reports.push_back({progress, total, message, std::this_thread::get_id()});
    };
    json out = tools.text({{"pattern", "\\w"}, {"output", "count"}});
    CHECK(out["counts"].size() == 30);
    MESSAGE(reports.size() << " progress reports in " << out["stats"]["elapsed_ms"].get<double>() << " ms");
    REQUIRE(reports.size() >= 3);
    std::vector<double> searching;
    for (const auto& r : reports) {
      CHECK(r.thread == std::this_thread::get_id());
      CHECK(!r.message.empty());
      if (r.message.rfind("searched", 0) != 0) continue;
      if (r.total > 0) CHECK(r.total == 30);
      CHECK(r.progress <= 30);
      searching.push_back(r.progress);
    }
    REQUIRE(searching.size() >= 2);
    CHECK(std::is_sorted(searching.begin(), searching.end()));
    CHECK(searching.back() > searching.front());
  }
}

TEST_CASE("the progress interval is a setting with bounds") {
  CHECK_THROWS_WITH_AS(search_tools({{"progress_interval_ms", 0}}), doctest::Contains("search.progress_interval_ms"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(search_tools({{"max_listed_files", 0}}), doctest::Contains("search.max_listed_files"),
                       std::invalid_argument);
  CHECK(search_tools({{"progress_interval_ms", 10}, {"max_listed_files", 100}}).size() == 2);
}

}  // namespace
