// mcp-load's command line and the load driver. The driver speaks MCP to one server over a pair of
// pipes from a single thread: it performs the handshake, then keeps the pipe full (closed loop: N
// calls outstanding; open loop: calls leave on a fixed schedule whatever the server does), matches
// answers to calls by id, and finally asks the server for its own status when it offers mcpd_status.
// A second thread (Monitor) samples /proc and, with --chaos-ms, kills the server's children.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "mcp_load_report.h"
#include "mcp_load_workload.h"

namespace mcpd::load {

/// Every option of the command line, with its default. Units are in the names.
struct Options {
  std::string tool;                 // --tool
  std::string args = "{}";          // --args: template text
  std::string mix_path;             // --mix FILE
  unsigned concurrency = 1;         // --concurrency: calls outstanding in the closed loop
  std::uint64_t calls = 0;          // --calls; with neither --calls nor --duration: 1000 calls
  double duration_s = 0;            // --duration
  double rate = 0;                  // --rate: open loop, calls per second (0: closed loop)
  std::uint64_t warmup = 0;         // --warmup: calls before the measured phase
  bool json = false;                // --json: the report on stdout
  bool compare = false;             // --compare: two servers, separated by --vs
  unsigned rounds = 3;              // --rounds: per side, with --compare
  std::uint64_t chaos_ms = 0;       // --chaos-ms: SIGKILL a random child of the server this often
  std::string plot_path;            // --plot FILE: SVG
  std::uint64_t timeout_ms = 30000;  // --timeout-ms: per call, from the moment it was written
  std::string protocol_version = "2025-06-18";  // --protocol-version
  std::uint64_t seed = 1;           // --seed: mix draws and chaos victims
  std::string server_stderr = "/dev/null";  // --server-stderr FILE ("-": inherit ours)
  bool progress = true;             // --no-progress turns the terminal progress line off
  std::vector<std::string> server;  // after --
  std::vector<std::string> server_b;  // after --vs, with --compare
};

/// A command line that cannot run; the message names the option.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Parses argv (without the program name). Throws UsageError. `--help` gives an Options with
/// `server` empty and is reported through `help`.
Options parse_command_line(const std::vector<std::string>& args, bool* help = nullptr);
std::string usage();

/// The workload an Options describes (--tool/--args or --mix). Throws UsageError.
Workload make_workload(const Options& options);

/// Splits a command given as one string into words: whitespace separates, '...' and "..." group,
/// backslash escapes. For `--compare 'CMD A' 'CMD B'`.
std::vector<std::string> split_command(const std::string& command);

/// The pipes and pid of a running server. The driver reads and writes them; it does not own them.
struct ServerLink {
  int to_server = -1;
  int from_server = -1;
  pid_t pid = -1;
};

/// Drives one run against a server that is already running (fresh: the driver does the handshake).
/// `label` prefixes the progress line. Throws std::runtime_error when the handshake fails or the
/// server does not offer a tool of the workload.
RunReport drive(const Options& options, const Workload& workload, ServerLink link, const std::string& label = "");

/// Starts `server` (stdin/stdout piped, stderr to options.server_stderr), drives one run, closes the
/// server's stdin and waits for it to exit (SIGKILL after 10 s).
RunReport run_load(const Options& options, const Workload& workload, const std::vector<std::string>& server,
                   const std::string& label = "");

/// --compare: rounds of A then B, each on a freshly started server.
Comparison run_compare(const Options& options, const Workload& workload);

}  // namespace mcpd::load
