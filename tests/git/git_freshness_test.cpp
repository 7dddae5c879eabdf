// Cache validity from the owner for the history tools: the git worker vouches for the answers it
// computed (the refs walk runs there, never in the coordinator), pushes what its watch of the
// repository saw change, and takes its answers with it when it dies.
#include <signal.h>

#include <chrono>
#include <thread>

#include "eventually.h"
#include "git_fixture.h"
#include "git_mcpd_fixture.h"
#include "history_state.h"
#include "mcp_client.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

std::unique_ptr<McpClient> start(const GitRepo& repo) { return start_mcpd(repo, "mcpd-freshness-stderr.log"); }

json status(McpClient& client) { return client.call_tool("mcpd_status", json::object())["structuredContent"]; }

std::uint64_t invalidations(McpClient& client) { return status(client)["cache"]["invalidations"].get<std::uint64_t>(); }

TEST_CASE("a new branch drops the cached history answers of its repository without a call") {
  GitRepo repo;
  build_rich_history(repo);
  std::this_thread::sleep_for(git::kRacyWindow + 200ms);  // let the history settle, so it can be cached
  auto client = start(repo);
  const json args = with_repo(repo, {{"max_count", 2}});
  client->call_tool("git_log", args);
  client->call_tool("git_branches", with_repo(repo));
  REQUIRE(client->call_tool("git_log", args)["_meta"]["mcpd/cache"] == "hit");
  REQUIRE(client->call_tool("git_branches", with_repo(repo))["_meta"]["mcpd/cache"] == "hit");
  std::uint64_t before = invalidations(*client);
  repo.git("branch pushed-branch");
  CHECK(eventually([&] { return invalidations(*client) >= before + 2; }));
  json branches = client->call_tool("git_branches", with_repo(repo));
  CHECK(branches["_meta"]["mcpd/cache"] != "hit");
  CHECK(branches["structuredContent"].dump().find("pushed-branch") != std::string::npos);
  CHECK(status(*client)["executor"]["pools"]["git"]["cache_validations"]["invalidations_pushed"].get<std::uint64_t>() > 0);
}

TEST_CASE("every history hit is vouched for by its worker, and a dead worker's answers go with it") {
  GitRepo repo;
  build_rich_history(repo);
  std::this_thread::sleep_for(git::kRacyWindow + 200ms);
  auto client = start(repo);
  const json args = with_repo(repo, {{"max_count", 1}});
  json first = client->call_tool("git_log", args);
  std::uint64_t checked = status(*client)["cache"]["vouchers_checked"].get<std::uint64_t>();
  REQUIRE(client->call_tool("git_log", args)["_meta"]["mcpd/cache"] == "hit");
  CHECK(status(*client)["cache"]["vouchers_checked"].get<std::uint64_t>() == checked + 1);
  std::uint64_t before = invalidations(*client);
  json workers = status(*client)["executor"]["pools"]["git"]["workers"];
  INFO(workers.dump());
  REQUIRE(!workers.empty());
  for (const auto& worker : workers)
    ::kill(worker["pid"].get<pid_t>(), SIGKILL);
  CHECK(eventually([&] { return invalidations(*client) > before; }));
  json after = client->call_tool("git_log", args);
  CHECK(after["_meta"]["mcpd/cache"] != "hit");
  CHECK(after["structuredContent"] == first["structuredContent"]);
}

}  // namespace
