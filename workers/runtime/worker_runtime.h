// The worker side of protocol/worker_protocol.h, shared by every worker kind: a kind's main() is one
// line, `return run_worker("parser", parser_tools());`. The runtime owns the process: it reads frames
// on its main thread, runs one call at a time on a call thread (so pings and cancels are answered
// mid-call), enforces each call's deadline softly by cancelling its token, and batches tool logs
// into telemetry frames from a background thread.
//
// Exit status: 0 when stdin closes, after a shutdown frame, when the coordinator stops reading our
// frames, or when the parent was already gone at start; 1 when the process could not set up its
// channel; 2 for a missing or invalid MCPD_WORKER_CONFIG; 3 when the coordinator sends a frame that
// breaks the protocol (garbage, an unknown type, a call without an id): the coordinator is broken
// and the worker does not guess; 4 when it cannot confine itself (non-dumpable, seccomp filter).
// A system call its filter denies kills it with SIGSYS (sandbox.h).
//
// ---------------------------------------------------------------------------------------------
// TEST HOOKS: only when the configuration says "test_hooks": true. With test_hooks false (the
// default) none of this exists: MCPD_TEST_WORKER_FAULT and MCPD_TEST_WORKER_DIVERGE are ignored,
// and a call to test_fault runs the tool library's ordinary handler (test_fault_tool() below,
// which refuses with a tool error) or, in a kind that does not list it, is an unknown tool.
//
//   MCPD_TEST_WORKER_FAULT=exit_before_hello  exit 1 before sending hello (a crash-looping kind)
//                         =bad_version        hello says protocol 99
//                         =garbage_hello      raw non-frame bytes instead of hello, then run on
//   MCPD_TEST_WORKER_DIVERGE=1                every result's structured object gets
//                                             "diverged": true (shadow-mode mismatch tests)
//   tool test_fault {"fault": ...}            served by the runtime itself, in every kind (listed in
//                                             hello only by kinds whose tool list has it):
//       "ok"      result {"fault":"none"}
//       "crash"   abort() without a core dump: the worker dies of SIGABRT mid-call
//       "hang"    the call never ends and ignores cancel; pings are still answered
//       "garbage" raw non-frame bytes on the frame channel, then a normal result
//       "exit"    _exit(7) mid-call
//       "leak"    allocates and touches `mb` MiB (default 64), keeps them, returns normally
//       "stdout"  printf, std::cout and write(1) from the tool; frames must stay intact
//       "socket"  socket(AF_INET, SOCK_STREAM): killed by the filter unless the kind may open
//                 sockets; then result {"fault":"socket","allowed":true}
//       "exec"    execve of a path that does not exist: killed by the filter unless the kind may
//                 exec; then result {"fault":"exec","allowed":true} (the exec itself fails)
//       "namespace" clone(CLONE_NEWUSER): killed by the filter (every kind); with the filter off
//                 result {"fault":"namespace","allowed":true}
//       "confinement" result {"fault":"confinement","dumpable":D,"no_new_privs":N} from prctl
// ---------------------------------------------------------------------------------------------
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "tool.h"

namespace mcpd {

/// A worker's configuration, parsed from the JSON in MCPD_WORKER_CONFIG. Keys it does not know are
/// ignored, so a newer coordinator can send more.
struct WorkerConfig {
  std::vector<std::filesystem::path> roots;  // canonical directories; default: the current directory
  std::uint64_t max_file_bytes = 8u << 20;   // the same defaults as ToolContext
  std::uint64_t max_result_bytes = 4u << 20;
  std::string log_level = "info";  // least severe level sent in telemetry (syslog names, debug..emergency)
  bool test_hooks = false;         // see TEST HOOKS above
  bool allow_writes = false;       // passed to tools as ToolContext::allow_writes
  bool seccomp = true;             // install the kind's system call filter (sandbox.h) at start
};

/// Parses and checks MCPD_WORKER_CONFIG's text. Throws std::invalid_argument with a message naming
/// the key that is wrong ("roots: '/nope' does not exist").
WorkerConfig parse_worker_config(std::string_view text);

/// The settings the coordinator passes to a tool family that has its own (its config key of the same
/// name, "search" or "modbus"): MCPD_WORKER_CONFIG's "settings"."<kind>" object, or {} when absent
/// or unreadable (run_worker reports a broken config itself).
json worker_family_settings(const std::string& kind);

/// Runs this process as a worker of `kind` serving `tools` until stdin closes or a shutdown frame
/// arrives. Returns only when startup fails (see the exit statuses above); every other ending calls
/// _exit, because a call thread stuck in a tool must not hold the process up. `before_exit`, when
/// set, runs on the orderly endings (stdin closed, shutdown frame) just before _exit, after the
/// running call has ended or been given up on: a stateful kind stops its own threads and flushes
/// there (the Modbus poller writes its queued samples). It must be quick; the coordinator's stop
/// timer still applies.
int run_worker(const std::string& kind, std::vector<Tool> tools, std::function<void()> before_exit = {});

/// The test_fault tool as the coordinator sees it: name, schema {fault, mb} and an in-process
/// handler that refuses with a ToolError, since faults exist only inside a worker with test hooks
/// on (where the runtime serves the tool itself). The testkit tool library lists it. With
/// `idempotent` it is test_fault_idempotent, annotated idempotent so the pool retries it (and finds
/// a poison pill).
Tool test_fault_tool(bool idempotent = false);

}  // namespace mcpd
