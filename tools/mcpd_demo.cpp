// mcpd-demo: launches mcpd the way an MCP client does (a child process over stdio), lists its
// tools, calls each on the project's own source tree, and prints what came back.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include "mcp_client.h"

using namespace mcpd;
using Clock = std::chrono::steady_clock;

namespace {

void heading(const std::string& text) { std::cout << "\n== " << text << "\n"; }

json call(McpClient& client, const std::string& tool, const json& args, double* ms = nullptr) {
  auto start = Clock::now();
  json result = client.call_tool(tool, args);
  if (ms) *ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (result.value("isError", false))
    std::cout << "  tool error: " << result["content"][0]["text"].get<std::string>() << "\n";
  return result;
}

/// A TCP port on 127.0.0.1 that was free a moment ago, for the demo's Modbus device.
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  if (fd >= 0) ::close(fd);
  return port;
}

void search_demo(McpClient& client) {
  heading("search_text: who calls run_worker( (the search worker, rg's ignore rules)");
  double first_ms = 0, second_ms = 0;
  json found = call(client, "search_text", {{"pattern", "run_worker("}, {"fixed_strings", true}, {"type", {"cpp"}}},
                    &first_ms);
  for (const auto& m : found["structuredContent"]["matches"])
    std::printf("  %s:%d: %s\n", m["path"].get<std::string>().c_str(), m["line"].get<int>(),
                m["text"].get<std::string>().c_str());
  heading("search_text with a regex, case-insensitive, counts per file");
  json counts = call(client, "search_text", {{"pattern", R"(\bcache_key\b)"}, {"case", "insensitive"}, {"output", "count"}},
                     &second_ms);
  std::size_t shown = 0;
  for (const auto& f : counts["structuredContent"]["counts"])
    if (shown++ < 6) std::printf("  %4d  %s\n", f["matches"].get<int>(), f["path"].get<std::string>().c_str());
  std::printf("  first search %.1f ms, second %.1f ms\n", first_ms, second_ms);
  heading("search_files: headers under protocol/");
  json files = call(client, "search_files", {{"pattern", "*.h"}, {"path", "protocol"}});
  for (const auto& f : files["structuredContent"]["files"]) std::cout << "  " << f.get<std::string>() << "\n";
}

/// Starts the project's pymodbus test device (tests/support/modbus_server.py) and shows a read, a
/// polling group and its samples. Skipped when python3-pymodbus is missing.
void modbus_demo(McpClient& client, const std::string& root) {
  heading("Modbus: a pymodbus device on 127.0.0.1 (started for this demo)");
  std::string script = root + "/tests/support/modbus_server.py";
  if (!std::filesystem::exists(script) || !std::filesystem::exists("/usr/bin/python3")) {
    std::cout << "  skipped: " << script << " or /usr/bin/python3 is missing\n";
    return;
  }
  int port = free_port();
  ChildProcess::Options quiet;
  quiet.stderr_path = "/dev/null";
  ChildProcess device({"/usr/bin/python3", script, std::to_string(port)}, quiet);
  json read = {{"host", "127.0.0.1"}, {"port", port}, {"table", "holding"}, {"address", 10}, {"type", "float32"}};
  json value;
  for (int attempt = 0; attempt < 50; ++attempt) {  // the Python server takes a moment to listen
    value = client.call_tool("modbus_read", read);
    if (!value.value("isError", false)) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (value.value("isError", false)) {
    std::cout << "  the device did not come up: " << value["content"][0]["text"].get<std::string>() << "\n";
    return;
  }
  std::cout << "  modbus_read holding 10 as float32: " << value["structuredContent"]["values"][0].dump() << "\n";
  json group = {{"name", "demo"}, {"host", "127.0.0.1"}, {"port", port}, {"mode", "FIXED"}, {"interval_ms", 100},
                {"tags", {{{"name", "counter"}, {"address", 0}}, {{"name", "temperature"}, {"address", 10}, {"type", "float32"}}}}};
  call(client, "modbus_group_create", group);
  call(client, "modbus_group_start", {{"name", "demo"}});
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  json status = call(client, "modbus_status", {{"name", "demo"}})["structuredContent"]["groups"][0];
  std::cout << "  group 'demo' every 100 ms for 1.5 s: " << status["success_count"] << " polls, "
            << status["error_count"] << " errors, start jitter " << status["jitter"].dump() << "\n";
  json samples = call(client, "modbus_samples", {{"group", "demo"}, {"tag", "temperature"}, {"limit", 3}});
  std::cout << "  stored samples of 'temperature' (first 3): " << samples["structuredContent"]["samples"].dump() << "\n";
  call(client, "modbus_group_delete", {{"name", "demo"}});
  heading("modbus_write is refused unless writes are enabled");
  call(client, "modbus_write", {{"host", "127.0.0.1"}, {"port", port}, {"table", "holding"}, {"address", 0}, {"values", {1}}});
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "mcpd", root = ".";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--server") server = argv[i + 1];
    else if (flag == "--root") root = argv[i + 1];
  }
  try {
    // The demo's Modbus groups and samples go to a database of its own, not the user's; its device
    // is on loopback, the one host the demo allows (no host is reachable unless listed).
    char state_dir[] = "/tmp/mcpd-demo-XXXXXX";
    if (!::mkdtemp(state_dir)) throw std::runtime_error("cannot create a temporary directory");
    json modbus_settings = {{"db_path", std::string(state_dir) + "/modbus.sqlite"}, {"allowed_hosts", {"127.0.0.1"}}};
    McpClient client({server, "--root", root, "--log_level", "warning", "--modbus", modbus_settings.dump()});
    json init = client.initialize("2025-06-18");
    heading("initialize");
    std::cout << "  server " << init["serverInfo"]["name"].get<std::string>() << " "
              << init["serverInfo"]["version"].get<std::string>() << ", protocol "
              << init["protocolVersion"].get<std::string>() << "\n";

    heading("tools/list");
    json tools = client.request("tools/list")["result"]["tools"];
    for (const auto& t : tools)
      std::cout << "  " << t["name"].get<std::string>() << ": " << t["title"].get<std::string>() << "\n";

    heading("code_outline coordinator/mcp_server.cpp (first 12 symbols)");
    double miss_ms = 0, hit_ms = 0;
    json outline = call(client, "code_outline", {{"path", "coordinator/mcp_server.cpp"}}, &miss_ms);
    const json& symbols = outline["structuredContent"]["symbols"];
    for (std::size_t i = 0; i < symbols.size() && i < 12; ++i)
      std::printf("  line %4d  %-9s %s\n", symbols[i]["line"].get<int>(),
                  symbols[i]["kind"].get<std::string>().c_str(), symbols[i]["name"].get<std::string>().c_str());
    std::cout << "  (" << symbols.size() << " symbols)\n";

    heading("code_outline again: served from the L1 cache");
    json again = call(client, "code_outline", {{"path", "coordinator/mcp_server.cpp"}}, &hit_ms);
    std::printf("  first call %.2f ms (%s), second %.2f ms (%s)\n", miss_ms,
                outline["_meta"]["mcpd/cache"].get<std::string>().c_str(), hit_ms,
                again["_meta"]["mcpd/cache"].get<std::string>().c_str());

    heading("code_query: function names in workers/runtime/roots.cpp");
    json query = call(client, "code_query",
                      {{"path", "workers/runtime/roots.cpp"},
                       {"query", "(function_definition declarator: (function_declarator declarator: (_) @name))"}});
    for (const auto& c : query["structuredContent"]["captures"])
      std::cout << "  line " << c["start"]["row"].get<int>() + 1 << ": " << c["text"].get<std::string>() << "\n";

    heading("code_parse: a Python snippet with a syntax error");
    json parse = call(client, "code_parse", {{"language", "python"}, {"code", "def f(x):\n    return x +\n"}});
    std::cout << "  tree: " << parse["structuredContent"]["tree"].get<std::string>() << "\n";
    for (const auto& e : parse["structuredContent"]["errors"])
      std::cout << "  " << e["type"].get<std::string>() << " at line " << e["start"]["row"].get<int>() + 1
                << ", column " << e["start"]["column"].get<int>() + 1 << "\n";

    heading("git_log: the project's last 3 commits (through the git worker)");
    json log = call(client, "git_log", {{"repo_path", "."}, {"max_count", 3}});
    if (!log.value("isError", false))
      for (const auto& c : log["structuredContent"]["commits"])
        std::cout << "  " << c["id"].get<std::string>().substr(0, 10) << "  " << c["summary"].get<std::string>() << "\n";

    search_demo(client);
    modbus_demo(client, root);

    heading("bad input gets a clear error");
    call(client, "code_parse", {{"language", "cobol"}, {"code", "x"}});
    call(client, "code_outline", {{"path", "/etc/passwd"}});

    heading("mcpd_status");
    json status = call(client, "mcpd_status", json::object())["structuredContent"];
    std::cout << "  cache: " << status["cache"].dump() << "\n";
    std::cout << "  server: " << status["server"].dump() << "\n";
    std::filesystem::remove_all(state_dir);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mcpd-demo: " << e.what() << "\n";
    return 1;
  }
}
