// Every knob of the coordinator, with its default and unit, in one struct. Values come from, in
// increasing precedence: these defaults, a JSON config file, MCPD_* environment variables, and
// command-line flags. load_config validates everything and names the key that is wrong.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcpd {

using json = nlohmann::json;

struct Config {
  // File access: tools read only below these (canonical, absolute). Default: the working directory.
  std::vector<std::filesystem::path> roots;

  // Client transport.
  std::uint64_t max_line_bytes = 4u << 20;  // one JSON-RPC message per line
  std::uint64_t max_in_flight = 1024;       // requests running at once; more get "server busy"
  // Output waiting for a client that does not read: above it input pauses and optional
  // notifications are dropped, so a stalled client cannot make mcpd grow.
  std::uint64_t max_output_queue_bytes = 4u << 20;

  // Tool limits.
  std::uint64_t max_file_bytes = 8u << 20;
  std::uint64_t max_result_bytes = 4u << 20;
  /// Deadline of every call whose tool has no tool_timeouts_ms entry; 0: each tool's own default
  /// (Tool::default_timeout: 30 s for parsing, 60 s for git, 120 s for search).
  std::uint64_t tool_timeout_ms = 0;
  std::map<std::string, std::uint64_t> tool_timeouts_ms;  // per-tool override

  // L1 cache.
  bool cache_enabled = true;
  std::uint64_t cache_max_bytes = 64u << 20;
  std::uint64_t cache_max_entries = 10000;
  std::uint64_t cache_ttl_ms = 300000;

  // The legacy in-process path: tool handlers on a small thread pool inside the coordinator.
  std::uint64_t legacy_threads = 2;

  // The feature flag between the paths: pool (worker processes, the default), legacy (in-process)
  // or shadow (both; the pool answers, results are compared). Per-tool overrides in tool_modes;
  // pool_percent routes that share of pool-mode calls to the pool (by a stable request hash).
  std::string mode = "pool";
  std::map<std::string, std::string> tool_modes;
  std::uint64_t pool_percent = 100;

  // Worker processes: where the mcpd-worker-<kind> executables are (default: beside mcpd), and
  // per-kind pool settings: {"default": {...}, "parser": {"max_workers": 8}, ...}. Keys and
  // defaults: see worker_setting_keys() and pool::PoolSettings.
  std::string worker_dir;
  json workers = json::object();

  // What workers may see and do. Their environment is an allow-list (pool/spawn.h) plus
  // worker_env: an array of names passed through from ours, or an object of name to a value (or to
  // true: passed through). worker_seccomp installs each kind's system call filter; off only to debug.
  json worker_env = json::object();
  bool worker_seccomp = true;

  // Settings of the tool families that have their own, as the family's library defines and checks
  // them: {"parser": {...}, "search": {...}, "modbus": {...}}. Passed to the in-process library and to
  // its workers.
  std::map<std::string, json> family_settings;

  // Tools that change state (git commit, a Modbus write...) refuse unless this is true.
  bool allow_writes = false;

  // Registers the test-only tools (test_sleep, test_echo). Never on in a real deployment.
  bool test_tools = false;

  // Lifecycle and logs.
  std::uint64_t shutdown_grace_ms = 5000;
  std::string log_level = "info";         // stderr JSON logs at or above this level
  std::string notify_log_level = "warning";  // notifications/message until the client sets a level
  std::uint64_t max_log_queue_bytes = 1u << 20;  // log lines waiting for stderr; more are dropped, counted
};

/// Thrown by load_config with a message naming the source and the key ("MCPD_CACHE_MAX_BYTES: ...").
struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// What the command line asked for besides settings.
struct Invocation {
  Config config;
  bool print_config = false;
  bool show_help = false;
  bool show_version = false;
};

/// Builds the effective configuration from defaults, the config file (--config FILE or
/// MCPD_CONFIG), the environment and the flags, in that order. `env` is a list of "KEY=VALUE".
Invocation load_config(const std::vector<std::string>& args, const std::vector<std::string>& env);

/// The effective values as JSON (what --print-config shows).
json config_to_json(const Config& config);

/// One line of help per key, for --help.
std::string config_help();

/// The keys allowed inside each entry of `workers`, for validation and --help.
const std::vector<std::string>& worker_setting_keys();

/// The MCP/syslog log levels in increasing severity; returns -1 for an unknown name.
int log_level_rank(const std::string& level);

}  // namespace mcpd
