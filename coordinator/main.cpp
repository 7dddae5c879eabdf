// mcpd: the coordinator an MCP client launches over stdio.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "config.h"
#include "legacy_executor.h"
#include "log.h"
#include "mcp_server.h"
#include "parser_tools.h"
#include "stdio_transport.h"
#include "testkit_tools.h"

extern char** environ;

int main(int argc, char** argv) {
  using namespace mcpd;
  std::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is seen as a write error, not a signal

  std::vector<std::string> args(argv + 1, argv + argc), env;
  for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
  Invocation inv;
  try {
    inv = load_config(args, env);
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "mcpd: configuration error: %s\n", e.what());
    return 2;
  }
  if (inv.show_help) {
    std::cout << "usage: mcpd [--config FILE] [--KEY VALUE ...] [--print-config]\n"
                 "An MCP server over stdio. Settings (file key, flag, environment variable):\n"
              << config_help();
    return 0;
  }
  if (inv.show_version) {
    std::cout << "mcpd 0.1.0\n";
    return 0;
  }
  if (inv.print_config) {
    std::cout << config_to_json(inv.config).dump(2) << "\n";
    return 0;
  }
  const Config& config = inv.config;
  Log::instance().set_level(config.log_level);

  boost::asio::io_context loop;
  StdioTransport transport(loop, config.max_line_bytes);
  LegacyExecutor legacy(loop, config);
  McpServer server(loop, config, [&transport](json message) { transport.send(message); }, legacy);
  server.add_tools(parser_tools());
  if (config.test_tools) server.add_tools(testkit_tools());

  bool stopping = false;
  auto stop = [&] {
    if (stopping) return;
    stopping = true;
    server.shutdown([&] { loop.stop(); });
  };
  boost::asio::signal_set signals(loop, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (!ec) {
      log_info("signal received", {{"signal", signo}});
      stop();
    }
  });
  transport.start({[&](std::string line) { server.on_line(line); },
                   [&](std::size_t bytes) { server.on_oversize_line(bytes); },
                   [&] {
                     log_info("stdin closed");
                     stop();
                   }});
  log_info("mcpd started", {{"roots", config_to_json(config)["roots"]}, {"pid", ::getpid()}});
  loop.run();
  transport.flush_and_stop();
  log_info("mcpd stopped");
  // Leave without running destructors: a tool stuck on the legacy thread pool (one that ignores
  // cancellation) would otherwise block the pool's join forever, and everything owed to the client
  // has been flushed above.
  std::fflush(nullptr);
  std::_Exit(0);
}
