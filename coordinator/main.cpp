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

  // The tool families: each runs in its own kind of worker process, and the same library serves the
  // legacy path in-process. This list is all the coordinator knows of them (family.h).
  const std::vector<Family> registry = {parser_family(), git_family(), search_family(), modbus_family(),
                                        testkit_family()};
  // The families' own settings are checked here, once, so a bad one stops mcpd at start with a
  // message naming it instead of failing in every worker.
  struct Built {
    const Family* family;
    FamilyInstance instance;
  };
  std::vector<Built> families;
  json worker_settings = config.workers;
  try {
    for (const Family& family : registry) {
      if (family.test_only && !config.test_tools) continue;
      auto it = config.family_settings.find(family.kind);
      families.push_back({&family, family.make(it == config.family_settings.end() ? json::object() : it->second)});
      if (family.singleton) {
        // One process holds the family's state: settings asking for more are a mistake to name,
        // never a silent pool of processes that each hold part of it.
        json& entry = worker_settings[family.kind];
        for (const char* key : {"min_workers", "max_workers"})
          if (entry.contains(key) && entry[key].is_number_unsigned() && entry[key].get<std::uint64_t>() > 1)
            throw std::invalid_argument("workers." + family.kind + "." + key + " is " + entry[key].dump() +
                                        ", but " + family.kind +
                                        " is a singleton kind (its state lives in one worker process); leave it "
                                        "out or set 1");
        if (entry.contains("singleton") && entry["singleton"] == false)
          throw std::invalid_argument("workers." + family.kind + ".singleton cannot be false: " + family.kind +
                                      " is a singleton kind (its state lives in one worker process)");
        entry["singleton"] = true;
      }
    }
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mcpd: configuration error: %s\n", e.what());
    return 2;
  }
  std::string worker_dir = config.worker_dir;
  if (worker_dir.empty()) worker_dir = std::filesystem::read_symlink("/proc/self/exe").parent_path().string();
  pool::PoolExecutor workers(loop);
  for (const auto& built : families) {
    const std::string& kind = built.family->kind;
    const std::vector<Tool>& tools = built.instance.tools;
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
  std::string instructions = "mcpd serves, on files, repositories and devices under its configuration: ";
  for (std::size_t i = 0; i < families.size(); ++i)
    instructions += (i == 0 ? "" : i + 1 == families.size() ? "; and " : "; ") + families[i].family->instructions;
  instructions += ". Paths are absolute or relative to the first root. mcpd_status reports the server's state.";
  server.set_instructions(std::move(instructions));
  for (const auto& built : families) server.add_tools(built.instance.tools);
  bool pool_used = config.mode != "legacy";
  for (const auto& [tool, mode] : config.tool_modes) pool_used = pool_used || mode != "legacy";
  if (pool_used) workers.start();  // prewarm: the first call never waits for a spawn
  // A family's in-process state (the Modbus polling database) opens only where its tools run
  // in-process; in pool mode its worker owns it.
  for (const auto& built : families) {
    if (!built.instance.open_in_process) continue;
    bool in_process = false;
    for (const auto& tool : built.instance.tools)
      in_process = in_process || router.route(tool, json::object()) == "legacy";
    if (!in_process) continue;
    try {
      built.instance.open_in_process();
    } catch (const std::exception& e) {
      log_warning("a tool family's in-process state is unavailable",
                  {{"family", built.family->kind}, {"error", e.what()}});
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
  // Families finish and flush (Modbus groups finish their cycle, queued samples are written).
  for (const auto& built : families)
    if (built.instance.shutdown) built.instance.shutdown();
  log_info("mcpd stopped");
  // Bounded: a stderr nobody reads must not hold up the exit.
  Log::instance().flush(std::chrono::seconds(1));
  // Leave without running destructors: a tool stuck on the legacy thread pool (one that ignores
  // cancellation) would otherwise block the pool's join forever, and everything owed to the client
  // has been flushed above.
  std::fflush(nullptr);
  std::_Exit(0);
}
