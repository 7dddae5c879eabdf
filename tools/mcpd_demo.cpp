// mcpd-demo: launches mcpd the way an MCP client does (a child process over stdio), lists its
// tools, calls each on the project's own source tree, and prints what came back.
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>

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

}  // namespace

int main(int argc, char** argv) {
  std::string server = "mcpd", root = ".";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--server") server = argv[i + 1];
    else if (flag == "--root") root = argv[i + 1];
  }
  try {
    McpClient client({server, "--root", root, "--log_level", "warning"});
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

    heading("bad input gets a clear error");
    call(client, "code_parse", {{"language", "cobol"}, {"code", "x"}});
    call(client, "code_outline", {{"path", "/etc/passwd"}});

    heading("mcpd_status");
    json status = call(client, "mcpd_status", json::object())["structuredContent"];
    std::cout << "  cache: " << status["cache"].dump() << "\n";
    std::cout << "  server: " << status["server"].dump() << "\n";
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "mcpd-demo: " << e.what() << "\n";
    return 1;
  }
}
