// The worker's own confinement, installed by run_worker once the worker's libraries are loaded and
// its startup is done (the coordinator has already set no_new_privs, the rlimits and the process
// group before exec; see coordinator/pool/spawn.h).
//
// A seccomp filter per kind, default allow with a deny-list: no kind may trace or read other
// processes, load kernel modules, mount, change namespaces (unshare, setns, clone with a namespace
// flag; clone3 gets ENOSYS so the C library uses clone), use io_uring (whose operations bypass the
// filter), bpf, perf events, keyrings or userfaultfd. On top of that:
//   parser, search, testkit, git   no sockets (socket, socketpair, connect, bind, listen, accept)
//                                  and no exec (execve, execveat)
//   modbus                         sockets and connect (its code restricts the hosts), but no
//                                  bind, listen or accept, and no exec
// A kind not in the table gets the strictest profile. A denied call kills the worker: a SIGSYS
// handler writes "seccomp: ... system call NAME (NR) ..." to stderr (the coordinator logs it) and
// the process then dies of SIGSYS. One exception: socket(AF_UNIX) fails with EACCES instead of
// killing, because the C library probes the nscd socket on its own for user and host lookups.
#pragma once

#include <string>

namespace mcpd {

/// Installs the filter of `kind` on every thread of the process. `prefix` starts the line the
/// SIGSYS handler writes ("mcpd-worker-parser[123]"). Throws std::runtime_error naming the step
/// that failed.
void install_seccomp_filter(const std::string& kind, const std::string& prefix);

/// The names of the system calls `kind`'s filter denies (for tests and diagnostics).
std::string seccomp_denied_calls(const std::string& kind);

}  // namespace mcpd
