// The search tools as a client sees them: the real mcpd, its singleton search worker, and the L1
// cache keyed by the tree watcher.
#include <chrono>
#include <thread>

#include "mcpd_fixture.h"
#include "search_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

std::unique_ptr<McpClient> start(const std::filesystem::path& root) {
  std::vector<std::string> argv = {mcpd_binary(), "--root", root.string()};
  ChildProcess::Options options;
  options.stderr_path = std::string(MCPD_BINARY_DIR) + "/tests/search/mcpd-stderr.log";
  auto client = std::make_unique<McpClient>(argv, options);
  client->initialize();
  return client;
}

TEST_CASE("mcpd lists both search tools and answers through the worker") {
  TempDir t;
  t.write("a.txt", "hello world\n");
  auto client = start(t.path);
  json tools = client->request("tools/list")["result"]["tools"];
  std::set<std::string> names;
  for (const auto& tool : tools) names.insert(tool["name"]);
  CHECK(names.count("search_text"));
  CHECK(names.count("search_files"));
  json out = client->call_tool("search_text", {{"pattern", "wor.d"}});
  REQUIRE(out["isError"] == false);
  CHECK(out["structuredContent"]["matches"][0]["path"] == "a.txt");
  CHECK(out["_meta"]["mcpd/path"] == "pool");
  json error = client->call_tool("search_text", {{"pattern", "("}});
  CHECK(error["isError"] == true);
  CHECK(text_of(error).find("invalid regex") != std::string::npos);
}

TEST_CASE("a repeated search is a cache hit until a file changes") {
  TempDir t;
  t.write("src/a.txt", "needle one\n");
  auto client = start(t.path);
  json first = client->call_tool("search_text", {{"pattern", "needle"}});
  // The first call of a tree is not cached (its watcher is created in the background); once the
  // watcher is complete, a result is cached and then a hit.
  json second;
  for (int i = 0; i < 200; ++i) {
    second = client->call_tool("search_text", {{"pattern", "needle"}});
    if (second["_meta"]["mcpd/cache"] == "hit") break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  CHECK(second["_meta"]["mcpd/cache"] == "hit");
  CHECK(second["structuredContent"]["matches"] == first["structuredContent"]["matches"]);
  t.write("src/a.txt", "needle one\nneedle two\n");
  json third = client->call_tool("search_text", {{"pattern", "needle"}});
  CHECK(third["_meta"]["mcpd/cache"] != "hit");
  CHECK(third["structuredContent"]["matches"].size() == 2);
  json files1 = client->call_tool("search_files", {{"pattern", "*.txt"}});
  t.write("src/deep/new.txt", "x\n");
  json files2 = client->call_tool("search_files", {{"pattern", "*.txt"}});
  CHECK(files2["_meta"]["mcpd/cache"] != "hit");
  CHECK(files2["structuredContent"]["files"].size() == 2);
}

}  // namespace
