// Hostile sources for the parser tools, through the real mcpd in pool mode (the tools run in parser
// workers) and in legacy mode (they run inside mcpd itself): sources that crashed libtree-sitter
// 0.20.7 (a node with 65,536 children or more), and results that nested deeper than the coordinator
// reads a frame. Each one gets a result or a clear error, no worker dies for it, and the next
// normal call succeeds at once.
#include <doctest/doctest.h>

#include <signal.h>
#include <sys/types.h>

#include <string>
#include <vector>

#include "eventually.h"
#include "hostile_support.h"
#include "processes.h"

namespace {

using namespace std::chrono_literals;
using mcpd::json;
using mcpd::test::check_still_serves;
using mcpd::test::start_mcpd;
using mcpd::test::text_of;
using mcpd::test::trivial_parse;

std::string repeat(const std::string& unit, std::size_t times) {
  std::string out;
  out.reserve(unit.size() * times);
  for (std::size_t i = 0; i < times; ++i) out += unit;
  return out;
}

json parser_pool(mcpd::McpClient& client) {
  return client.call_tool("mcpd_status", json::object())["structuredContent"]["executor"]["pools"]["parser"];
}

struct Hostile {
  std::string what, tool, language, code, expect;  // expect: a fragment of the error, or "" for a result
  json extra = json::object();
};

std::vector<Hostile> hostile_sources() {
  const std::string depth = "parser.max_nesting_depth", run = "parser.max_run_tokens";
  std::vector<Hostile> cases;
  for (const char* language : {"json", "javascript", "typescript", "c", "cpp", "python", "go", "rust", "bash", "tsx"}) {
    cases.push_back({"65,535 unclosed [", "code_parse", language, repeat("[", 65535), depth});
    cases.push_back({"1,000,000 unclosed [", "code_parse", language, repeat("[", 1000000), depth});
  }
  for (const char* language : {"c", "cpp", "javascript", "rust", "go", "python"}) {
    cases.push_back({"70,000 unclosed (", "code_parse", language, repeat("(", 70000), depth});
    cases.push_back({"70,000 unclosed {", "code_outline", language, repeat("{", 70000), depth});
  }
  cases.push_back({"65,535 [ closed at once", "code_parse", "json", repeat("[", 65535) + repeat("]", 65535), depth});
  cases.push_back({"( closed by ]", "code_query", "c", repeat("(]", 70000), depth, {{"query", "(ERROR) @e"}}});
  cases.push_back({"comment lines", "code_parse", "c", repeat("// c\n", 70000), run});
  cases.push_back({"comments inside an array", "code_parse", "json", "[1," + repeat("//c\n", 70000) + "2]", run});
  cases.push_back({"prefix operators", "code_parse", "javascript", repeat("!", 70000), run});
  cases.push_back({"an else-if chain", "code_parse", "c", repeat("if (a) {} else ", 70000), depth});
  cases.push_back({"unclosed if blocks", "code_parse", "bash", repeat("if true; then ", 70000), depth});
  cases.push_back({"an unterminated docstring", "code_parse", "python", "\"\"\"" + repeat("(", 70000), depth});
  // Deep but within the bounds: parsed, and as JSON clamped to what a result may nest.
  cases.push_back({"1,000 nested [ as JSON with a huge max_depth", "code_parse", "json",
                   repeat("[", 1000) + repeat("]", 1000), "",
                   {{"format", "json"}, {"max_depth", 1000000}, {"named_only", false}}});
  cases.push_back({"1,000 unclosed ( as JSON with a huge max_depth", "code_parse", "c", repeat("(", 1000), "",
                   {{"format", "json"}, {"max_depth", 1000000}}});
  return cases;
}

void run_hostile_sources(const std::string& mode) {
  auto client = start_mcpd({"--mode", mode, "--cache_enabled", "false"});
  client->initialize();
  for (const auto& c : hostile_sources()) {
    CAPTURE(c.what);
    CAPTURE(c.language);
    json arguments = c.extra;
    arguments["language"] = c.language;
    arguments["code"] = c.code;
    json result = client->call_tool(c.tool, arguments, 60s);
    if (c.expect.empty()) {
      CHECK_MESSAGE(result["isError"] == false, text_of(result).substr(0, 300));
      if (arguments.value("format", "") == "json") CHECK(result["structuredContent"]["max_depth_used"] == 249);
      if (c.what.find("nested") != std::string::npos) CHECK(result["structuredContent"]["truncated"] == true);
    } else {
      CHECK(result["isError"] == true);
      CHECK_MESSAGE(text_of(result).find(c.expect) != std::string::npos, text_of(result).substr(0, 300));
    }
    check_still_serves(*client, "code_parse", trivial_parse());
  }
  if (mode == "pool") {
    // Not one worker died or was killed as a protocol violator on the way.
    json pool = parser_pool(*client);
    CHECK(pool["restarts"] == 0);
    CHECK(pool["poison_pills"] == 0);
    CHECK(pool["protocol_errors"] == 0);
    CHECK(pool["breaker"]["state"] == "closed");
  }
}

const json kNewQuery = {{"language", "c"}, {"code", "int x;"}, {"query", "(identifier) @checked_apart"}};

}  // namespace

TEST_CASE("the query checker is one process beside the one it serves, and ends with it") {
  SUBCASE("legacy mode: a child of mcpd, gone when mcpd ends") {
    auto client = start_mcpd({"--mode", "legacy", "--cache_enabled", "false"});
    client->initialize();
    pid_t server = client->process().pid();
    auto checkers = [&] {
      std::vector<pid_t> out;
      for (const auto& p : mcpd::test::children_of(server))
        if (p.name == "mcpd" && p.state != 'Z') out.push_back(p.pid);
      return out;
    };
    CHECK(checkers().empty());
    CHECK(client->call_tool("code_query", kNewQuery)["isError"] == false);
    json again = kNewQuery;
    for (int i = 0; i < 5; ++i) {
      again["query"] = "(identifier) @q" + std::to_string(i);
      CHECK(client->call_tool("code_query", again)["isError"] == false);
    }
    std::vector<pid_t> checker = checkers();
    REQUIRE(checker.size() == 1);
    client->process().close_stdin();
    CHECK(client->process().wait(std::chrono::seconds(20)).has_value());
    CHECK(mcpd::test::eventually([&] { return !mcpd::test::process_alive(checker[0]); }));
  }
  SUBCASE("pool mode: a child of the parser worker, gone when the worker is killed") {
    auto client = start_mcpd({"--cache_enabled", "false", "--workers", R"({"parser": {"min_workers": 1, "max_workers": 1}})"});
    client->initialize();
    CHECK(client->call_tool("code_query", kNewQuery)["isError"] == false);
    std::vector<mcpd::test::ChildProcessEntry> workers;
    for (const auto& p : mcpd::test::children_of(client->process().pid()))
      if (p.name == "mcpd-worker-par" && p.state != 'Z') workers.push_back(p);
    REQUIRE(workers.size() == 1);
    std::vector<mcpd::test::ChildProcessEntry> checker;
    for (const auto& p : mcpd::test::children_of(workers[0].pid))
      if (p.state != 'Z') checker.push_back(p);
    REQUIRE(checker.size() == 1);
    CHECK(checker[0].name == "mcpd-worker-par");
    REQUIRE(::kill(workers[0].pid, SIGKILL) == 0);
    CHECK(mcpd::test::eventually([&] { return !mcpd::test::process_alive(checker[0].pid); }));
    // The replacement worker checks the next new query with a checker of its own.
    json next = kNewQuery;
    next["query"] = "(identifier) @after_restart";
    CHECK(client->call_tool("code_query", next, 30s)["isError"] == false);
  }
}

TEST_CASE("parser, pool mode: sources that crashed tree-sitter get a clear error and kill no worker") {
  run_hostile_sources("pool");
}

TEST_CASE("parser, legacy mode: sources that crashed tree-sitter get a clear error and mcpd lives") {
  run_hostile_sources("legacy");
}

TEST_CASE("parser, shadow mode: the same sources run on both paths and mcpd lives") {
  auto client = start_mcpd({"--mode", "shadow", "--cache_enabled", "false"});
  client->initialize();
  for (const char* language : {"json", "c", "python"}) {
    CAPTURE(language);
    json result = client->call_tool("code_parse", {{"language", language}, {"code", repeat("[", 65535)}}, 60s);
    CHECK(result["isError"] == true);
    CHECK(text_of(result).find("parser.max_nesting_depth") != std::string::npos);
    check_still_serves(*client, "code_parse", trivial_parse());
  }
}

TEST_CASE("a result nested deeper than the coordinator reads fails its call, not the healthy worker") {
  auto client = start_mcpd({"--workers", R"({"testkit": {"min_workers": 1, "max_workers": 1}})"});
  client->initialize();
  json result = client->call_tool("test_fault_idempotent", {{"fault", "deep"}}, 20s);
  CHECK(result["isError"] == true);
  CHECK_MESSAGE(text_of(result).find("nesting deeper than 512 levels") != std::string::npos, text_of(result));
  CHECK(text_of(result).find("poison pill") == std::string::npos);
  json pool = client->call_tool("mcpd_status", json::object())["structuredContent"]["executor"]["pools"]["testkit"];
  CHECK(pool["restarts"] == 0);
  CHECK(pool["protocol_errors"] == 0);
  CHECK(pool["retried"] == 0);
  check_still_serves(*client, "test_echo", {{"value", 1}});
}

TEST_CASE("a few poison pills in a row leave the breaker closed for the next call") {
  // Each kills two fresh workers; once counted as two breaker failures, three opened the breaker.
  auto client = start_mcpd({"--workers", R"({"testkit": {"min_workers": 1, "max_workers": 2}})"});
  client->initialize();
  for (int i = 0; i < 4; ++i) {
    json result = client->call_tool("test_fault_idempotent", {{"fault", "crash"}}, 20s);
    CHECK(result["isError"] == true);
    CHECK(text_of(result).find("poison pill") != std::string::npos);
  }
  json pool = client->call_tool("mcpd_status", json::object())["structuredContent"]["executor"]["pools"]["testkit"];
  CHECK(pool["poison_pills"] == 4);
  CHECK(pool["breaker"]["state"] == "closed");
  check_still_serves(*client, "test_echo", {{"value", 2}});
}
