// The git tools as a client sees them: the real mcpd spawned over pipes, its git worker serving the
// calls, and the L1 cache in front of the history tools.
#include <chrono>
#include <thread>

#include "git_fixture.h"
#include "git_mcpd_fixture.h"
#include "history_state.h"
#include "mcp_client.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

std::unique_ptr<McpClient> start(const GitRepo& repo, std::vector<std::string> extra = {}) {
  return start_mcpd(repo, "mcpd-stderr.log", std::move(extra));
}

TEST_CASE("mcpd lists the git tools with their annotations") {
  GitRepo repo;
  auto client = start(repo);
  json tools = client->request("tools/list")["result"]["tools"];
  std::map<std::string, json> by_name;
  for (const auto& tool : tools) by_name[tool["name"]] = tool;
  for (const char* name : {"git_status", "git_log", "git_diff", "git_show", "git_blame", "git_branches"}) {
    CAPTURE(name);
    REQUIRE(by_name.count(name));
    CHECK(by_name[name]["annotations"]["readOnlyHint"] == true);
    CHECK(by_name[name]["annotations"]["idempotentHint"] == true);
    CHECK(by_name[name].contains("outputSchema"));
  }
  for (const char* name : {"git_add", "git_reset", "git_commit", "git_create_branch", "git_checkout"}) {
    CAPTURE(name);
    REQUIRE(by_name.count(name));
    CHECK(by_name[name]["annotations"]["destructiveHint"] == true);
    CHECK(by_name[name]["annotations"]["idempotentHint"] == false);
  }
}

TEST_CASE("the git worker answers through mcpd, and the cache never serves a new commit stale") {
  GitRepo repo;
  build_rich_history(repo);
  std::this_thread::sleep_for(git::kRacyWindow + 200ms);  // let the history settle, so it can be cached
  auto client = start(repo);

  json status = client->call_tool("git_status", with_repo(repo));
  CHECK(status["isError"] == false);
  CHECK(status["structuredContent"]["branch"] == "main");
  CHECK(status["_meta"]["mcpd/path"] == "pool");
  CHECK(json::parse(status["content"][0]["text"].get<std::string>()) == status["structuredContent"]);

  json first = client->call_tool("git_log", with_repo(repo, {{"max_count", 3}}));
  json second = client->call_tool("git_log", with_repo(repo, {{"max_count", 3}}));
  CHECK(first["_meta"]["mcpd/cache"] == "miss");
  CHECK(second["_meta"]["mcpd/cache"] == "hit");
  CHECK(first["structuredContent"] == second["structuredContent"]);

  repo.write("README.md", "a new commit\n");
  std::string id = repo.commit("a new commit");
  json third = client->call_tool("git_log", with_repo(repo, {{"max_count", 3}}));
  CHECK(third["_meta"]["mcpd/cache"] != "hit");
  CHECK(third["structuredContent"]["commits"][0]["id"] == id);

  // git_status is never cached: a staged file shows at once.
  repo.git("rm -q --cached notes.txt");
  json after = client->call_tool("git_status", with_repo(repo));
  CHECK(after["_meta"]["mcpd/cache"] != "hit");
  CHECK(after["structuredContent"]["staged"].size() == 1);

  json error = client->call_tool("git_show", with_repo(repo, {{"revision", "no-such"}}));
  CHECK(error["isError"] == true);
  CHECK(error["content"][0]["text"].get<std::string>().find("unknown revision 'no-such'") != std::string::npos);
}

TEST_CASE("writes through mcpd are refused by default and work with --allow_writes true") {
  GitRepo repo;
  build_rich_history(repo);
  repo.write("README.md", "to commit\n");
  {
    auto client = start(repo);
    json refused = client->call_tool("git_add", with_repo(repo, {{"paths", {"README.md"}}}));
    CHECK(refused["isError"] == true);
    CHECK(refused["content"][0]["text"] == "writes are disabled; start mcpd with --allow_writes true");
  }
  auto client = start(repo, {"--allow_writes", "true"});
  CHECK(client->call_tool("git_add", with_repo(repo, {{"paths", {"README.md"}}}))["isError"] == false);
  json commit = client->call_tool("git_commit", with_repo(repo, {{"message", "Committed through mcpd"}}));
  REQUIRE(commit["isError"] == false);
  CHECK(commit["structuredContent"]["id"] == repo.head());
  CHECK(GitRepo::trim(repo.git("log -1 --format=%s")) == "Committed through mcpd");
}

}  // namespace
