// The search tools' cache key, as their worker computes it: watchers are created in the background (the
// first call for a tree gives no key, so its result is not cached), bounded in number (least
// recently used evicted, a directory below a watched one reuses its watcher), and every change in
// the tree still changes the key.
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <thread>

#include "eventually.h"
#include "search_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

/// inotify instances this process holds.
int inotify_instances() {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string() == "anon_inode:inotify") ++n;
  }
  return n;
}

std::optional<std::string> key_of(const SearchTools& tools, const json& args) {
  return tools.tool("search_text").cache_key(args, tools.context.roots);
}

/// Calls the key until it is given (the watcher is complete), at most 10 s.
std::optional<std::string> settled_key(const SearchTools& tools, const json& args) {
  for (int i = 0; i < 1000; ++i) {
    if (auto k = key_of(tools, args)) return k;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return std::nullopt;
}

TEST_CASE("the first key of a tree is none while its watcher is created; later keys follow every change") {
  TempDir t;
  for (int i = 0; i < 50; ++i) t.write("d" + std::to_string(i) + "/sub/f.txt", "needle\n");
  SearchTools tools(t.path);
  json args = {{"pattern", "needle"}};
  CHECK_FALSE(key_of(tools, args).has_value());  // not cacheable: watches are being added
  auto k1 = settled_key(tools, args);
  REQUIRE(k1.has_value());
  CHECK(key_of(tools, args) == k1);
  CHECK(tools.tool("search_files").cache_key({{"pattern", "*.txt"}}, tools.context.roots) == k1);
  t.write("d49/sub/f.txt", "needle\nneedle\n");
  auto k2 = key_of(tools, args);
  REQUIRE(k2.has_value());
  CHECK(k2 != k1);
  t.write("d3/new/deeper/g.txt", "x\n");  // a new directory is watched from then on
  auto k3 = key_of(tools, args);
  CHECK(k3 != k2);
  t.write("d3/new/deeper/g.txt", "y\n");
  auto k4 = key_of(tools, args);
  CHECK(k4 != k3);
  CHECK(key_of(tools, args) == k4);
  // A directory below the watched one reuses its watcher: a key at once, moved by its changes.
  int before = inotify_instances();
  json sub = {{"pattern", "needle"}, {"path", "d7"}};
  auto s1 = key_of(tools, sub);
  REQUIRE(s1.has_value());
  CHECK(s1 != k4);
  CHECK(inotify_instances() == before);
  t.write("d7/sub/f.txt", "changed\n");
  CHECK(key_of(tools, sub) != s1);
}

TEST_CASE("searching many different directories keeps a bounded number of watchers") {
  std::vector<std::unique_ptr<TempDir>> dirs;
  for (int i = 0; i < 12; ++i) {
    dirs.push_back(std::make_unique<TempDir>());
    dirs.back()->write("a/b.txt", "needle\n");
  }
  int before = inotify_instances();
  {
    SearchTools tools(dirs[0]->path, {{"threads", 2}, {"max_trees", 3}});
    for (int round = 0; round < 2; ++round)
      for (const auto& d : dirs) {
        json args = {{"pattern", "needle"}, {"path", d->path.string()}};
        tools.context.roots = {d->path};
        REQUIRE(settled_key(tools, args).has_value());
        // Creations under way when evicted still finish and close their instance.
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        CHECK(inotify_instances() - before <= 3 + 2);
      }
    // Evicted watchers close their instances on the engine's own time: wait for it, do not guess.
    CHECK(eventually([&] { return inotify_instances() - before <= 3; }, std::chrono::seconds(10)));
  }
}

}  // namespace
