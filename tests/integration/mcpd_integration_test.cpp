// mcpd as a client sees it: the real binary, spawned, spoken to over its stdin and stdout.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <set>
#include <thread>

#include "eventually.h"
#include "mcpd_fixture.h"

using namespace mcpd;
using namespace mcpd::test;
using namespace std::chrono_literals;

namespace {

/// After any fault, the server must still answer.
void check_still_answers(McpClient& client) {
  json pong = client.request("ping", json::object(), 5s);
  REQUIRE(pong.contains("result"));
  CHECK(pong["result"] == json::object());
}

}  // namespace

TEST_CASE("initialize answers with the client's version when supported, else the latest") {
  for (std::string version : {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}) {
    auto client = start_mcpd();
    json result = client->initialize(version);
    CHECK(result["protocolVersion"] == version);
    CHECK(result["capabilities"].contains("tools"));
    CHECK(result["capabilities"].contains("logging"));
    CHECK(result["serverInfo"]["name"] == "mcpd");
  }
  auto client = start_mcpd();
  json result = client->initialize("1999-01-01");
  CHECK(result["protocolVersion"] == "2025-11-25");
}

TEST_CASE("tools/list describes every tool with schemas, title and annotations") {
  auto client = start_mcpd();
  client->initialize();
  json tools = client->request("tools/list")["result"]["tools"];
  std::set<std::string> names;
  for (const auto& t : tools) {
    names.insert(t["name"].get<std::string>());
    CHECK_FALSE(t["description"].get<std::string>().empty());
    CHECK_FALSE(t["title"].get<std::string>().empty());
    CHECK(t["inputSchema"]["type"] == "object");
    for (const char* hint : {"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"})
      CHECK(t["annotations"][hint].is_boolean());
    CHECK(t.contains("outputSchema"));
  }
  for (const char* expected : {"code_parse", "code_outline", "code_query", "mcpd_status"})
    CHECK(names.count(expected) == 1);
}

TEST_CASE("each parser tool answers with structuredContent and the same JSON as text") {
  auto client = start_mcpd();
  client->initialize();
  json parse = client->call_tool("code_parse", {{"language", "c"}, {"code", "int main(void) { return 0; }"}});
  CHECK(parse["isError"] == false);
  CHECK(json::parse(text_of(parse)) == parse["structuredContent"]);
  CHECK(parse["structuredContent"]["tree"].get<std::string>().find("function_definition") != std::string::npos);

  json outline = client->call_tool("code_outline", {{"path", "workers/runtime/roots.cpp"}});
  CHECK(outline["isError"] == false);
  std::set<std::string> functions;
  for (const auto& s : outline["structuredContent"]["symbols"]) functions.insert(s["name"].get<std::string>());
  CHECK(functions.count("resolve_in_roots") == 1);
  CHECK(functions.count("read_text_file") == 1);

  json query = client->call_tool("code_query", {{"language", "python"},
                                                {"code", "def alpha(): pass\ndef beta(): pass\n"},
                                                {"query", "(function_definition name: (identifier) @fn)"}});
  REQUIRE(query["structuredContent"]["captures"].size() == 2);
  CHECK(query["structuredContent"]["captures"][1]["text"] == "beta");

  json status = client->call_tool("mcpd_status", json::object());
  CHECK(status["structuredContent"]["server"]["completed"].get<int>() >= 3);
  CHECK(status["structuredContent"]["cache"].contains("hit_ratio"));
}

TEST_CASE("100 concurrent calls are all answered, each with its own id and type") {
  auto client = start_mcpd();
  client->initialize();
  std::vector<json> ids;
  for (int i = 0; i < 100; ++i) {
    json id = (i % 2 == 0) ? json(std::to_string(1000 + i)) : json(1000 + i);
    ids.push_back(id);
    json args = {{"language", "javascript"}, {"code", "function f" + std::to_string(i) + "() {}"},
                 {"query", "(function_declaration name: (identifier) @name)"}};
    client->send_request("tools/call", {{"name", "code_query"}, {"arguments", args}}, id);
  }
  for (int i = 0; i < 100; ++i) {
    auto response = client->wait_response(ids[i], 30s);
    REQUIRE(response);
    CHECK((*response)["id"] == ids[i]);
    CHECK((*response)["id"].is_string() == ids[i].is_string());
    CHECK((*response)["result"]["structuredContent"]["captures"][0]["text"] == "f" + std::to_string(i));
  }
  check_still_answers(*client);
}

TEST_CASE("string id \"1\" and number id 1 are distinct and come back with their type") {
  auto client = start_mcpd();
  client->initialize();
  client->send_request("ping", json::object(), json("1"));
  client->send_request("ping", json::object(), json(1));
  auto s = client->wait_response(json("1"), 5s);
  auto n = client->wait_response(json(1), 5s);
  REQUIRE(s);
  REQUIRE(n);
  CHECK((*s)["id"].is_string());
  CHECK((*n)["id"].is_number_integer());
}

TEST_CASE("a malformed line gets -32700 with id null and the stream goes on") {
  auto client = start_mcpd();
  client->initialize();
  client->send_raw("{\"jsonrpc\": \"2.0\", \"id\": 5, \"method\": \n");
  auto error = client->wait_unmatched(5s);
  REQUIRE(error);
  CHECK((*error)["error"]["code"] == -32700);
  CHECK((*error)["id"].is_null());
  client->send_raw("\xff\xfe not utf-8\n");
  error = client->wait_unmatched(5s);
  REQUIRE(error);
  CHECK((*error)["error"]["code"] == -32700);
  check_still_answers(*client);
}

TEST_CASE("a request with a null id is an invalid request") {
  auto client = start_mcpd();
  client->initialize();
  client->send_raw(R"({"jsonrpc":"2.0","id":null,"method":"ping"})" "\n");
  auto error = client->wait_unmatched(5s);
  REQUIRE(error);
  CHECK((*error)["error"]["code"] == -32600);
  check_still_answers(*client);
}

TEST_CASE("an unknown method gets -32601 and an unknown tool -32602") {
  auto client = start_mcpd();
  client->initialize();
  json r = client->request("resources/teleport");
  CHECK(r["error"]["code"] == -32601);
  r = client->request("tools/call", {{"name", "no_such_tool"}, {"arguments", json::object()}});
  CHECK(r["error"]["code"] == -32602);
  CHECK(r["error"]["message"].get<std::string>().find("no_such_tool") != std::string::npos);
  r = client->request("tools/call", {{"arguments", json::object()}});
  CHECK(r["error"]["code"] == -32602);
  check_still_answers(*client);
}

TEST_CASE("invalid tool arguments are a tool error naming the field") {
  auto client = start_mcpd();
  client->initialize();
  json r = client->call_tool("code_parse", {{"language", "c"}, {"code", "x"}, {"max_depth", "deep"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("max_depth") != std::string::npos);
  r = client->call_tool("code_parse", {{"language", "c"}, {"code", "x"}, {"colour", "red"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("colour") != std::string::npos);
  r = client->call_tool("code_parse", {{"language", "cobol"}, {"code", "x"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("python") != std::string::npos);  // lists the supported languages
  r = client->call_tool("code_outline", {{"path", "/etc/passwd"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("outside") != std::string::npos);
  check_still_answers(*client);
}

TEST_CASE("a line over max_line_bytes is refused and the next one is served") {
  auto client = start_mcpd({"--max_line_bytes", "100000"});
  client->initialize();
  std::string huge = R"({"jsonrpc":"2.0","id":77,"method":"ping","params":{"pad":")" +
                     std::string(300000, 'x') + "\"}}\n";
  client->send_raw(huge);
  auto error = client->wait_unmatched(10s);
  REQUIRE(error);
  CHECK((*error)["error"]["code"] == -32600);
  CHECK((*error)["error"]["message"].get<std::string>().find("max_line_bytes") != std::string::npos);
  check_still_answers(*client);
}

TEST_CASE("batches are refused on 2025-06-18 and served on 2025-03-26") {
  {
    auto client = start_mcpd();
    client->initialize("2025-06-18");
    client->send_raw(R"([{"jsonrpc":"2.0","id":1,"method":"ping"}])" "\n");
    auto error = client->wait_unmatched(5s);
    REQUIRE(error);
    CHECK((*error)["error"]["code"] == -32600);
    check_still_answers(*client);
  }
  {
    auto client = start_mcpd();
    client->initialize("2025-03-26");
    client->send_raw(R"([{"jsonrpc":"2.0","id":"a","method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":"b","method":"tools/list"}])" "\n");
    auto batch = client->wait_unmatched(5s);
    REQUIRE(batch);
    REQUIRE(batch->is_array());
    CHECK(batch->size() == 2);
  }
}

TEST_CASE("a cancelled call gets no response and the server goes on") {
  auto client = start_mcpd();
  client->initialize();
  json id = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 3000}, {"tag", "cancel"}}}});
  // Cancel once the call is known to be running, not after a guess at how long that takes.
  REQUIRE(eventually([&] {
    return client->call_tool("mcpd_status", json::object())["structuredContent"]["server"]["executions_running"] == 1;
  }));
  client->notify("notifications/cancelled", {{"requestId", id}, {"reason", "user pressed stop"}});
  CHECK_FALSE(client->wait_response(id, 4s));
  check_still_answers(*client);
  json status = client->call_tool("mcpd_status", json::object())["structuredContent"]["server"];
  CHECK(status["cancelled"] == 1);
  CHECK(status["in_flight"] == 0);
}

TEST_CASE("a slow call does not delay a fast one") {
  auto client = start_mcpd();
  client->initialize();
  json slow = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 1500}, {"tag", "slow"}}}});
  auto start = std::chrono::steady_clock::now();
  json fast = client->call_tool("code_parse", {{"language", "json"}, {"code", "[1,2,3]"}});
  CHECK(fast["isError"] == false);
  CHECK(std::chrono::steady_clock::now() - start < 1000ms);  // ordering, not speed: the slow one is 1.5 s
  CHECK_FALSE(client->wait_response(slow, 0ms));  // the slow one is indeed still running
  CHECK(client->wait_response(slow, 5s));
}

TEST_CASE("progress notifications carry the token and only grow") {
  auto client = start_mcpd();
  client->initialize();
  json id = client->send_request(
      "tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 600}, {"steps", 5}, {"tag", "progress"}}},
                     {"_meta", {{"progressToken", "tok-1"}}}});
  REQUIRE(client->wait_response(id, 5s));
  double last = -1;
  int seen = 0;
  for (const auto& n : client->take_notifications()) {
    if (n["method"] != "notifications/progress") continue;
    CHECK(n["params"]["progressToken"] == "tok-1");
    CHECK(n["params"]["progress"].get<double>() > last);
    last = n["params"]["progress"].get<double>();
    ++seen;
  }
  CHECK(seen == 5);
}

TEST_CASE("logging/setLevel turns on log notifications at that level") {
  auto client = start_mcpd();
  client->initialize();
  json r = client->request("logging/setLevel", {{"level", "nonsense"}});
  CHECK(r["error"]["code"] == -32602);
  r = client->request("logging/setLevel", {{"level", "debug"}});
  CHECK(r["result"] == json::object());
  client->call_tool("code_parse", {{"language", "json"}, {"code", "{}"}});
  auto message = client->wait_notification("notifications/message", 5s);
  REQUIRE(message);
  CHECK(message->at("params").contains("level"));
  CHECK(message->at("params").contains("data"));
}

TEST_CASE("the cache serves a repeated call and never serves an edited file stale") {
  TempDir dir;
  dir.write("a.py", "def first(): pass\n");
  auto client = start_mcpd({"--root", dir.path.string()});
  client->initialize();
  json args = {{"path", (dir.path / "a.py").string()}};
  json one = client->call_tool("code_outline", args);
  json two = client->call_tool("code_outline", args);
  CHECK(one["_meta"]["mcpd/cache"] == "miss");
  CHECK(two["_meta"]["mcpd/cache"] == "hit");
  CHECK(one["structuredContent"] == two["structuredContent"]);
  dir.write("a.py", "def second(): pass\n");
  json three = client->call_tool("code_outline", args);
  CHECK(three["_meta"]["mcpd/cache"] == "miss");
  CHECK(three["structuredContent"]["symbols"][0]["name"] == "second");
}

TEST_CASE("identical calls in flight at once run once") {
  auto client = start_mcpd();
  client->initialize();
  json args = {{"ms", 400}, {"tag", "single-flight"}};
  std::vector<json> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", args}}));
  int joined = 0;
  for (const auto& id : ids) {
    auto r = client->wait_response(id, 5s);
    REQUIRE(r);
    CHECK((*r)["result"]["structuredContent"]["slept_ms"] == 400);
    joined += (*r)["result"]["_meta"]["mcpd/cache"] == "joined";
  }
  CHECK(joined == 4);  // the first ran; the others shared its answer
  json status = client->call_tool("mcpd_status", json::object())["structuredContent"]["server"];
  CHECK(status["executions_started"] == 1);
}

TEST_CASE("a call past its deadline gets a timeout error") {
  auto client = start_mcpd({"--tool_timeouts_ms", R"({"test_sleep": 200})"});
  client->initialize();
  json r = client->call_tool("test_sleep", {{"ms", 5000}, {"tag", "deadline"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("timed out after 200 ms") != std::string::npos);
  CHECK(text_of(r).find("tool_timeouts_ms entry") != std::string::npos);
  check_still_answers(*client);
}

TEST_CASE("tool_timeout_ms applies to every tool, over the tool's own default; a tool_timeouts_ms entry wins") {
  // test_sleep declares a 30 s default of its own (as every family's tools do): a global
  // tool_timeout_ms must still bound it, or the setting would read but do nothing.
  auto client = start_mcpd({"--tool_timeout_ms", "200", "--tool_timeouts_ms", R"({"test_echo": 100000})"});
  client->initialize();
  json r = client->call_tool("test_sleep", {{"ms", 5000}, {"tag", "global-deadline"}});
  CHECK(r["isError"] == true);
  CHECK(text_of(r).find("timed out after 200 ms (tool_timeout_ms;") != std::string::npos);
  json fine = client->call_tool("test_sleep", {{"ms", 20}, {"tag", "within"}});
  CHECK(fine["isError"] == false);
  check_still_answers(*client);
}

TEST_CASE("without tool_timeout_ms each tool keeps its own default deadline") {
  auto client = start_mcpd({"--tool_timeouts_ms", R"({"test_echo": 100})"});
  client->initialize();
  // test_sleep's own 30 s applies, not test_echo's entry nor a global default of old.
  json r = client->call_tool("test_sleep", {{"ms", 300}, {"tag", "own-default"}});
  CHECK(r["isError"] == false);
}

TEST_CASE("initialize's instructions name every tool family served, from the families' own lines") {
  auto client = start_mcpd();
  json init = client->initialize();
  std::string text = init["instructions"].get<std::string>();
  CAPTURE(text);
  for (const char* names : {"tree-sitter parsing", "git tools", "search tools", "Modbus TCP tools", "test tools",
                            "mcpd_status"})
    CHECK(text.find(names) != std::string::npos);
}

TEST_CASE("stdin EOF lets in-flight calls finish, then mcpd exits 0") {
  auto client = start_mcpd();
  client->initialize();
  json id = client->send_request("tools/call", {{"name", "test_sleep"}, {"arguments", {{"ms", 300}, {"tag", "eof"}}}});
  client->process().close_stdin();
  auto r = client->wait_response(id, 5s);
  REQUIRE(r);
  CHECK((*r)["result"]["isError"] == false);
  auto status = client->process().wait(5s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("SIGTERM stops mcpd with exit status 0") {
  auto client = start_mcpd();
  client->initialize();
  ::kill(client->process().pid(), SIGTERM);
  auto status = client->process().wait(5s);
  REQUIRE(status);
  CHECK(WIFEXITED(*status));
  CHECK(WEXITSTATUS(*status) == 0);
}

TEST_CASE("configuration: flags beat environment, bad keys are named, --print-config shows the result") {
  auto run = [](std::vector<std::string> argv, std::vector<std::string> env, int* exit_code) {
    TempDir out;
    ChildProcess::Options options;
    options.env_extra = std::move(env);
    options.stderr_path = (out.path / "err").string();
    ChildProcess child(argv, options);
    child.close_stdin();
    std::string text;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(child.stdout_fd(), buf, sizeof buf)) > 0) text.append(buf, static_cast<std::size_t>(n));
    auto status = child.wait(5s);
    *exit_code = status ? WEXITSTATUS(*status) : -1;
    std::ifstream err(out.path / "err");
    std::string err_text((std::istreambuf_iterator<char>(err)), std::istreambuf_iterator<char>());
    return text + err_text;
  };
  int code = 0;
  std::string out = run({mcpd_binary(), "--print-config", "--cache_max_entries", "7"},
                        {"MCPD_CACHE_MAX_ENTRIES=5", "MCPD_CACHE_TTL_MS=1234"}, &code);
  CHECK(code == 0);
  json config = json::parse(out);
  CHECK(config["cache_max_entries"] == 7);
  CHECK(config["cache_ttl_ms"] == 1234);
  CHECK(config["tool_timeout_ms"] == 0);  // unset: each tool keeps its own deadline

  out = run({mcpd_binary(), "--print-config"}, {"MCPD_CACHE_MAX_BYTES=lots"}, &code);
  CHECK(code == 2);
  CHECK(out.find("MCPD_CACHE_MAX_BYTES") != std::string::npos);

  // A singleton kind (its state lives in one process) is never turned into a pool by settings.
  out = run({mcpd_binary(), "--workers", R"({"search": {"max_workers": 3}})"}, {}, &code);
  CHECK(code == 2);
  CHECK(out.find("workers.search.max_workers is 3, but search is a singleton kind") != std::string::npos);
  out = run({mcpd_binary(), "--workers", R"({"modbus": {"singleton": false}})"}, {}, &code);
  CHECK(code == 2);
  CHECK(out.find("workers.modbus.singleton cannot be false") != std::string::npos);

  out = run({mcpd_binary(), "--print-config", "--no_such_key", "1"}, {}, &code);
  CHECK(code == 2);
  CHECK(out.find("no_such_key") != std::string::npos);

  // A family's settings must be an object; what is inside is checked by the family's library when
  // mcpd starts, before it serves anything.
  out = run({mcpd_binary(), "--print-config", "--search", "[1]"}, {}, &code);
  CHECK(code == 2);
  CHECK(out.find("'search' must be a JSON object") != std::string::npos);
  out = run({mcpd_binary(), "--search", R"({"no_such_setting": 1})"}, {}, &code);
  CHECK(code == 2);
  CHECK(out.find("search.no_such_setting") != std::string::npos);
  out = run({mcpd_binary(), "--modbus", R"({"max_running_groups": "ten"})"}, {}, &code);
  CHECK(code == 2);
  CHECK(out.find("modbus.max_running_groups") != std::string::npos);
  out = run({mcpd_binary(), "--print-config", "--modbus", R"({"max_running_groups": 3})"}, {}, &code);
  CHECK(code == 0);
  CHECK(json::parse(out)["modbus"]["max_running_groups"] == 3);
}

TEST_CASE("mcpd launched from another directory still finds files relative to its root") {
  ChildProcess::Options options;
  options.cwd = "/";
  options.stderr_path = "/dev/null";
  McpClient client({mcpd_binary(), "--root", source_dir()}, options);
  client.initialize();
  json r = client.call_tool("code_outline", {{"path", "coordinator/main.cpp"}});
  CHECK(r["isError"] == false);
}
