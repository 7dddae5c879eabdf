// Starting a worker process with least privilege: a minimal environment, no descriptors but its
// three pipes, its own process group, death with the coordinator, no new privileges, no core dumps
// and bounded descriptors and address space. Every step of the child's setup that fails is reported
// to the parent (the call and its errno), so a worker is never run half confined.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mcpd::pool {

struct SpawnRequest {
  std::string executable;
  std::vector<std::string> environment;  // "KEY=VALUE", the child's whole environment
  std::uint64_t address_space_limit = 0;  // RLIMIT_AS in bytes, 0 = none
  std::uint64_t max_open_files = 0;       // RLIMIT_NOFILE, 0 = leave as inherited
  /// Test hook: makes the named setup call fail in the child ("setrlimit" or "prctl"), so the
  /// report of a failed child setup can be tested. Empty outside tests.
  std::string fault;
};

struct SpawnedProcess {
  pid_t pid = -1;
  int stdin_fd = -1;   // write end of the child's stdin
  int stdout_fd = -1;  // read end of its stdout
  int stderr_fd = -1;  // read end of its stderr
};

/// The spawn failed: in the parent (pipe, fork) or in the child's setup before exec, in which case
/// the message names the child's failing call and its errno ("setrlimit(RLIMIT_AS): ...").
struct SpawnError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Forks and execs `request.executable` with no arguments. The returned descriptors are
/// close-on-exec and owned by the caller.
SpawnedProcess spawn_process(const SpawnRequest& request);

/// The environment a worker starts with: from `parent` ("KEY=VALUE", mcpd's own) only the
/// variables on the allow-list (locale, time zone, PATH, HOME, TMPDIR, the XDG base directories,
/// the sanitizers' options, and the test hooks' variables when `test_hooks`), then `worker_env`
/// (the setting: an array of names passed through, or an object of name to a string value or to
/// true, meaning passed through), then MCPD_WORKER_CONFIG=`worker_config`.
std::vector<std::string> worker_environment(const std::vector<std::string>& parent, const nlohmann::json& worker_env,
                                            bool test_hooks, const std::string& worker_config);

/// Why `worker_env` is not a valid setting, or empty when it is.
std::string check_worker_env(const nlohmann::json& worker_env);

}  // namespace mcpd::pool
