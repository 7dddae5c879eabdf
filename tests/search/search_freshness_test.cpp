// Cache validity from the owner, as a client sees it: the search worker vouches for the answers it
// computed, the coordinator asks it before serving one again, the worker pushes what changed, and
// a worker that dies takes its answers with it. Each case is an edit that must never be served
// stale, through the real mcpd and its real search worker.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "eventually.h"
#include "mcpd_fixture.h"
#include "search_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

std::unique_ptr<McpClient> start(const std::filesystem::path& root, std::vector<std::string> env = {},
                                 std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {mcpd_binary(), "--root", root.string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess::Options options;
  options.env_extra = std::move(env);
  options.stderr_path = std::string(MCPD_BINARY_DIR) + "/tests/search/mcpd-freshness-stderr.log";
  auto client = std::make_unique<McpClient>(argv, options);
  client->initialize();
  return client;
}

/// Calls until the answer comes from the cache (the first calls of a tree run while its watcher
/// is set up, and are not cached); returns that hit.
json until_hit(McpClient& client, const std::string& tool, const json& args) {
  json out;
  for (int i = 0; i < 500; ++i) {
    out = client.call_tool(tool, args);
    if (out["_meta"]["mcpd/cache"] == "hit") return out;
    std::this_thread::sleep_for(10ms);
  }
  FAIL("never a cache hit: " << out.dump());
  return out;
}

std::set<std::string> paths(const json& result) {
  std::set<std::string> out;
  for (const auto& m : result["structuredContent"]["matches"]) out.insert(m["path"].get<std::string>());
  return out;
}

json status(McpClient& client) { return client.call_tool("mcpd_status", json::object())["structuredContent"]; }

int inotify_instances(pid_t pid) {
  int n = 0;
  for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(e.path(), ec);
    if (!ec && target.string() == "anon_inode:inotify") ++n;
  }
  return n;
}

TEST_CASE("an edit of .git/info/exclude is never served stale") {
  TempDir t;
  t.write(".git/info/exclude", "# nothing yet\n");
  t.write("a.txt", "needle\n");
  t.write("b.log", "needle\n");
  auto client = start(t.path);
  const json args = {{"pattern", "needle"}};
  CHECK(paths(until_hit(*client, "search_text", args)) == std::set<std::string>{"a.txt", "b.log"});
  t.write(".git/info/exclude", "*.log\n");
  json after = client->call_tool("search_text", args);
  CHECK(after["_meta"]["mcpd/cache"] != "hit");
  CHECK(paths(after) == std::set<std::string>{"a.txt"});
  CHECK(paths(until_hit(*client, "search_text", args)) == std::set<std::string>{"a.txt"});
  t.write(".git/info/exclude", "*.txt\n");
  CHECK(paths(client->call_tool("search_text", args)) == std::set<std::string>{"b.log"});
  // Searching below the repository's top: its exclude file lies above the searched tree.
  t.write("sub/c.txt", "needle\n");
  t.write("sub/d.log", "needle\n");
  const json sub = {{"pattern", "needle"}, {"path", "sub"}};
  CHECK(paths(until_hit(*client, "search_text", sub)) == std::set<std::string>{"d.log"});
  t.write(".git/info/exclude", "*.log\n");
  CHECK(paths(client->call_tool("search_text", sub)) == std::set<std::string>{"c.txt"});
}

TEST_CASE("an edit of the global gitignore, or of the git config naming it, is never served stale") {
  TempDir home, repo;
  std::filesystem::create_directories(repo.path / ".git");
  repo.write("a.txt", "needle\n");
  repo.write("b.log", "needle\n");
  repo.write("c.md", "needle\n");
  auto client = start(repo.path, {"HOME=" + home.path.string(), "XDG_CONFIG_HOME=" + (home.path / "xdg").string()});
  const json args = {{"pattern", "needle"}};
  CHECK(paths(until_hit(*client, "search_text", args)).size() == 3);
  home.write("xdg/git/ignore", "*.log\n");
  CHECK(paths(client->call_tool("search_text", args)) == std::set<std::string>{"a.txt", "c.md"});
  CHECK(paths(until_hit(*client, "search_text", args)).size() == 2);
  // The same size, at once: only the content differs.
  home.write("xdg/git/ignore", "*.txt\n");
  CHECK(paths(client->call_tool("search_text", args)) == std::set<std::string>{"b.log", "c.md"});
  until_hit(*client, "search_text", args);
  // core.excludesFile in ~/.gitconfig moves the global file elsewhere.
  home.write("other-ignore", "*.md\n");
  home.write(".gitconfig", "[core]\n\texcludesFile = ~/other-ignore\n");
  json moved = client->call_tool("search_text", args);
  INFO(moved.dump());
  CHECK(paths(moved) == std::set<std::string>{"a.txt", "b.log"});
}

TEST_CASE("a directory created while the tree's watcher is set up is watched like the rest") {
  TempDir t;
  for (int i = 0; i < 3000; ++i) std::filesystem::create_directories(t.path / ("d" + std::to_string(i % 60)) / std::to_string(i));
  t.write("d0/seed.txt", "needle\n");
  auto client = start(t.path);
  const json args = {{"pattern", "needle"}};
  // The first call starts the watcher in the background; the tree changes while it is set up.
  client->call_tool("search_text", args);
  for (int i = 0; i < 20; ++i) t.write("new" + std::to_string(i) + "/deep/f.txt", "needle\n");
  json hit = until_hit(*client, "search_text", args);
  CHECK(paths(hit).size() == 21);
  // Files in every one of them are seen from then on.
  for (int i = 0; i < 20; i += 3) {
    t.write("new" + std::to_string(i) + "/deep/g.txt", "needle\n");
    json after = client->call_tool("search_text", args);
    CHECK(after["_meta"]["mcpd/cache"] != "hit");
    CHECK(paths(after).count("new" + std::to_string(i) + "/deep/g.txt") == 1);
    until_hit(*client, "search_text", args);
  }
}

TEST_CASE("the coordinator holds no watcher; the worker pushes changes and each hit is vouched for") {
  TempDir t;
  t.write("src/a.txt", "needle\n");
  auto client = start(t.path);
  const json args = {{"pattern", "needle"}};
  until_hit(*client, "search_text", args);
  until_hit(*client, "search_files", {{"pattern", "*.txt"}});
  CHECK(inotify_instances(client->process().pid()) == 0);
  json before = status(*client);
  std::uint64_t checked = before["cache"]["vouchers_checked"].get<std::uint64_t>();
  until_hit(*client, "search_text", args);
  CHECK(status(*client)["cache"]["vouchers_checked"].get<std::uint64_t>() > checked);
  // A change drops both answers without any call of the tools: the worker said so.
  std::uint64_t invalidations = status(*client)["cache"]["invalidations"].get<std::uint64_t>();
  t.write("src/b.txt", "needle\n");
  CHECK(eventually([&] { return status(*client)["cache"]["invalidations"].get<std::uint64_t>() >= invalidations + 2; }));
  CHECK(status(*client)["executor"]["pools"]["search"]["cache_validations"]["invalidations_pushed"].get<std::uint64_t>() > 0);
  CHECK(paths(client->call_tool("search_text", args)).size() == 2);
}

TEST_CASE("a search worker that dies takes its cached answers with it") {
  TempDir t;
  t.write("a.txt", "needle\n");
  auto client = start(t.path);
  const json args = {{"pattern", "needle"}};
  until_hit(*client, "search_text", args);
  json workers = status(*client)["executor"]["pools"]["search"]["workers"];
  REQUIRE(workers.size() == 1);
  pid_t pid = workers[0]["pid"].get<pid_t>();
  std::uint64_t invalidations = status(*client)["cache"]["invalidations"].get<std::uint64_t>();
  REQUIRE(::kill(pid, SIGKILL) == 0);
  CHECK(eventually([&] { return status(*client)["cache"]["invalidations"].get<std::uint64_t>() > invalidations; }));
  json after = client->call_tool("search_text", args);
  CHECK(after["_meta"]["mcpd/cache"] != "hit");
  CHECK(paths(after) == std::set<std::string>{"a.txt"});
}

TEST_CASE("on the legacy path the owner is the coordinator's own threads, and edits are never stale") {
  TempDir t;
  t.write(".git/info/exclude", "\n");
  t.write("a.txt", "needle\n");
  t.write("b.log", "needle\n");
  auto client = start(t.path, {}, {"--mode", "legacy"});
  const json args = {{"pattern", "needle"}};
  json hit = until_hit(*client, "search_text", args);
  CHECK(paths(hit).size() == 2);
  t.write(".git/info/exclude", "*.log\n");
  CHECK(paths(client->call_tool("search_text", args)) == std::set<std::string>{"a.txt"});
  t.write("c.txt", "needle\n");
  CHECK(paths(client->call_tool("search_text", args)) == std::set<std::string>{"a.txt", "c.txt"});
}

}  // namespace
