// mcpd: the coordinator an MCP client launches over stdio.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "config.h"
#include "git_tools.h"
#include "legacy_executor.h"
#include "log.h"
#include "modbus_tools.h"
#include "poller.h"
#include "mcp_server.h"
#include "parser_tools.h"
#include "pool_executor.h"
#include "router.h"
#include "spawn.h"
#include "search_tools.h"
#include "stdio_transport.h"
#include "testkit_tools.h"
#include "worker_protocol.h"

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
  Log::instance().set_max_queue_bytes(config.max_log_queue_bytes);

  // Workers read their configuration from MCPD_WORKER_CONFIG in an environment of their own: the
  // allow-listed part of ours and worker_env, never the rest (a client's secrets stay here).
  json worker_config = {{"roots", config_to_json(config)["roots"]},
                        {"max_file_bytes", config.max_file_bytes},
                        {"max_result_bytes", config.max_result_bytes},
                        {"max_result_depth", worker_protocol::max_result_depth},
                        {"log_level", config.log_level},
                        {"allow_writes", config.allow_writes},
                        {"test_hooks", config.test_tools},
                        {"seccomp", config.worker_seccomp},
                        {"settings", config.family_settings}};
  std::vector<std::string> worker_environment =
      pool::worker_environment(env, config.worker_env, config.test_tools, worker_config.dump());
  // Test hook: MCPD_TEST_SPAWN_FAULT=setrlimit|prctl makes that call fail in every worker's setup.
  std::string spawn_fault;
  if (config.test_tools)
    for (const auto& kv : env)
      if (kv.rfind("MCPD_TEST_SPAWN_FAULT=", 0) == 0) spawn_fault = kv.substr(kv.find('=') + 1);

  boost::asio::io_context loop;
  StdioTransport transport(loop, config.max_line_bytes, config.max_output_queue_bytes);
  LegacyExecutor legacy(loop, config);

  // Each tool family runs in its own kind of worker process; the same libraries serve the legacy
  // path in-process.
  // The families' own settings are checked here, once, so a bad one stops mcpd at start with a
  // message naming it instead of failing in every worker.
  auto settings_of = [&config](const char* kind) {
    auto it = config.family_settings.find(kind);
    return it == config.family_settings.end() ? json::object() : it->second;
  };
  std::vector<std::pair<std::string, std::vector<Tool>>> families;
  std::shared_ptr<modbus::Poller> modbus_poller;
  try {
    modbus_poller = make_modbus_poller(settings_of("modbus"));
    families = {{"parser", parser_tools(settings_of("parser"))},
                {"git", git_tools()},
                {"search", search_tools(settings_of("search"))},
                {"modbus", modbus_tools(modbus_poller)}};
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mcpd: configuration error: %s\n", e.what());
    return 2;
  }
  if (config.test_tools) families.emplace_back("testkit", testkit_tools());
  std::string worker_dir = config.worker_dir;
  if (worker_dir.empty()) worker_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  pool::PoolExecutor workers(loop);
  // Stateful kinds run one worker unless configured otherwise: the search index and the Modbus
  // connections and polling groups live in it.
  json worker_settings = config.workers;
  for (const char* kind : {"search", "modbus"})
    if (!worker_settings.contains(kind)) worker_settings[kind] = {{"singleton", true}};
  for (const auto& [kind, tools] : families) {
    if (tools.empty()) continue;
    pool::PoolSettings settings = pool::pool_settings(worker_settings, kind);
    pool::LaunchSpec launch{kind, worker_dir + "/mcpd-worker-" + kind, settings.memory_hard_limit_bytes};
    launch.environment = worker_environment;
    launch.max_open_files = settings.max_open_files;
    launch.spawn_fault = spawn_fault;
    // Test hook, honoured only with test_tools: supervise without pidfds, as on a kernel or under
    // a seccomp policy that refuses pidfd_open, so the fallback reaper is tested for real.
    const char* no_pidfd = std::getenv("MCPD_TEST_NO_PIDFD");
    launch.use_pidfd = !(config.test_tools && no_pidfd && std::string_view(no_pidfd) == "1");
#ifdef MCPD_SANITIZER_BUILD
    // ASan and TSan reserve terabytes of address space for their shadow memory, so a sanitized
    // worker under any RLIMIT_AS dies at start. Sanitizer builds (MCPD_SANITIZE) run workers
    // without memory_hard_limit_mb; memory_soft_limit_mb still recycles them.
    launch.address_space_limit = 0;
#endif
    workers.add_kind(tools, launch, settings);
  }
  Router router(config, legacy, &workers, [&workers](const std::string& tool) { return workers.serves(tool); });

  McpServer server(loop, config, [&transport](json message) { transport.send(message); }, router);
  server.set_notification_sink([&transport](json message) { transport.send_droppable(message); });
  server.set_text_sink([&transport](std::string text) { transport.send_text(std::move(text)); });
  server.set_transport_status([&transport, &config] {
    return json{{"output_queued_bytes", transport.queued_bytes()},
                {"max_output_queue_bytes", config.max_output_queue_bytes},
                {"input_paused", transport.input_paused()},
                {"input_pauses", transport.input_pauses()},
                {"notifications_dropped", transport.dropped_notifications()}};
  });
  for (const auto& [kind, tools] : families) server.add_tools(tools);
  bool pool_used = config.mode != "legacy";
  for (const auto& [tool, mode] : config.tool_modes) pool_used = pool_used || mode != "legacy";
  if (pool_used) workers.start();  // prewarm: the first call never waits for a spawn
  // The in-process Modbus poller opens its database (and resumes running groups) only where the
  // Modbus tools run in-process; in pool mode the worker owns the database and its lock.
  bool modbus_in_process = false;
  for (const auto& [kind, tools] : families)
    for (const auto& tool : tools)
      if (kind == "modbus") modbus_in_process = modbus_in_process || router.route(tool, json::object()) == "legacy";
  if (modbus_in_process) {
    try {
      modbus_poller->open();
    } catch (const std::exception& e) {
      log_warning("Modbus polling groups unavailable", {{"error", e.what()}});
    }
  }

  bool stopping = false;
  auto stop = [&](bool output_lost) {
    if (stopping) return;
    stopping = true;
    server.shutdown([&] { router.shutdown([&] { loop.stop(); }); }, output_lost);
  };
  boost::asio::signal_set signals(loop, SIGTERM, SIGINT);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (!ec) {
      log_info("signal received", {{"signal", signo}});
      stop(false);
    }
  });
  transport.start({[&](std::string line) { server.on_line(line); },
                   [&](std::size_t bytes) { server.on_oversize_line(bytes); },
                   [&] {
                     log_info("stdin closed");
                     stop(false);
                   },
                   // The transport has logged why; calls in flight could not be answered anyway.
                   [&](const std::string&) { stop(true); }});
  log_info("mcpd started", {{"roots", config_to_json(config)["roots"]}, {"pid", ::getpid()}});
  loop.run();
  transport.flush_and_stop();
  modbus_poller->shutdown();  // groups finish their cycle, queued samples are written
  log_info("mcpd stopped");
  // Bounded: a stderr nobody reads must not hold up the exit.
  Log::instance().flush(std::chrono::seconds(1));
  // Leave without running destructors: a tool stuck on the legacy thread pool (one that ignores
  // cancellation) would otherwise block the pool's join forever, and everything owed to the client
  // has been flushed above.
  std::fflush(nullptr);
  std::_Exit(0);
}
