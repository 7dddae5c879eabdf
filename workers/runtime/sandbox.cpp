#include "sandbox.h"

#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <stdexcept>
#include <vector>

namespace mcpd {

namespace {

// Every kind: calls no tool needs, and that would let a compromised worker reach beyond itself.
constexpr const char* kDeniedEverywhere[] = {
    "ptrace",        "process_vm_readv", "process_vm_writev", "pidfd_getfd",   "kcmp",
    "kexec_load",    "kexec_file_load",  "init_module",       "finit_module",  "delete_module",
    "mount",         "umount2",          "pivot_root",        "chroot",        "fsopen",
    "fsmount",       "fsconfig",         "move_mount",        "open_tree",     "mount_setattr",
    "swapon",        "swapoff",          "reboot",            "setns",         "unshare",
    "bpf",           "perf_event_open",  "userfaultfd",       "keyctl",        "add_key",
    "request_key",   "open_by_handle_at", "name_to_handle_at", "acct",         "settimeofday",
    "clock_settime", "clock_adjtime",    "adjtimex",          "sethostname",   "setdomainname",
    "iopl",          "ioperm",           "quotactl",          "io_uring_setup", "io_uring_enter",
    "io_uring_register"};
constexpr const char* kExec[] = {"execve", "execveat"};
// socket itself is handled apart (see the header): AF_UNIX gets EACCES, everything else kills.
constexpr const char* kSockets[] = {"socketpair", "connect", "bind", "listen", "accept", "accept4"};
constexpr const char* kServing[] = {"bind", "listen", "accept", "accept4"};

struct Profile {
  bool sockets = false;  // socket and connect allowed (bind, listen, accept never)
  bool exec = false;
};

Profile profile_of(const std::string& kind) {
  if (kind == "modbus") return {true, false};
  return {};  // parser, search, git, testkit, and any kind not known here
}

// What the SIGSYS handler needs, prepared before the filter is loaded: it may only make
// async-signal-safe calls, so no allocation and no libseccomp lookups there.
struct DeniedCall {
  int nr;
  char name[32];
};
DeniedCall g_denied[96];
int g_denied_count = 0;
char g_prefix[128];

void append(char*& out, const char* end, const char* text) {
  while (*text != '\0' && out < end) *out++ = *text++;
}

void append_number(char*& out, const char* end, long value) {
  char digits[24];
  int n = 0;
  bool negative = value < 0;
  unsigned long v = negative ? 0UL - static_cast<unsigned long>(value) : static_cast<unsigned long>(value);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 23);
  if (negative && out < end) *out++ = '-';
  while (n > 0 && out < end) *out++ = digits[--n];
}

void on_sigsys(int, siginfo_t* info, void*) {
  int nr = info->si_syscall;
  const char* name = "unknown";
  for (int i = 0; i < g_denied_count; ++i)
    if (g_denied[i].nr == nr) name = g_denied[i].name;
  char line[256];
  char* out = line;
  const char* end = line + sizeof line - 1;
  append(out, end, g_prefix);
  append(out, end, ": seccomp: system call ");
  append(out, end, name);
  append(out, end, " (");
  append_number(out, end, nr);
  append(out, end, ") is not allowed in this worker; killed by SIGSYS\n");
  ssize_t ignored = ::write(STDERR_FILENO, line, static_cast<std::size_t>(out - line));
  (void)ignored;
  // Die of SIGSYS itself, so the coordinator sees which signal ended the worker. Sent to this
  // thread: a signal sent to the process may be taken by another thread, and _exit below would
  // win the race.
  struct sigaction default_action {};
  default_action.sa_handler = SIG_DFL;
  ::sigaction(SIGSYS, &default_action, nullptr);
  sigset_t sys;
  ::sigemptyset(&sys);
  ::sigaddset(&sys, SIGSYS);
  ::sigprocmask(SIG_UNBLOCK, &sys, nullptr);
  ::syscall(SYS_tgkill, ::getpid(), ::syscall(SYS_gettid), SIGSYS);
  ::_exit(128 + SIGSYS);
}

std::vector<const char*> denied_names(const Profile& profile) {
  std::vector<const char*> names(std::begin(kDeniedEverywhere), std::end(kDeniedEverywhere));
  if (!profile.exec) names.insert(names.end(), std::begin(kExec), std::end(kExec));
  if (profile.sockets) {
    names.insert(names.end(), std::begin(kServing), std::end(kServing));
  } else {
    names.push_back("socket");
    names.insert(names.end(), std::begin(kSockets), std::end(kSockets));
  }
  return names;
}

class Filter {
 public:
  Filter() : ctx_(seccomp_init(SCMP_ACT_ALLOW)) {
    if (ctx_ == nullptr) throw std::runtime_error("seccomp_init failed");
  }
  ~Filter() { seccomp_release(ctx_); }
  Filter(const Filter&) = delete;
  Filter& operator=(const Filter&) = delete;
  scmp_filter_ctx get() const { return ctx_; }

 private:
  scmp_filter_ctx ctx_;
};

void check(int rc, const std::string& what) {
  if (rc < 0) throw std::runtime_error(what + ": " + std::strerror(-rc));
}

}  // namespace

std::string seccomp_denied_calls(const std::string& kind) {
  std::string out;
  for (const char* name : denied_names(profile_of(kind))) out += (out.empty() ? "" : " ") + std::string(name);
  return out;
}

void install_seccomp_filter(const std::string& kind, const std::string& prefix) {
  Profile profile = profile_of(kind);
  std::snprintf(g_prefix, sizeof g_prefix, "%s", prefix.c_str());

  Filter filter;
  // Every thread, including those a library started before us (the Modbus poller's).
  check(seccomp_attr_set(filter.get(), SCMP_FLTATR_CTL_TSYNC, 1), "seccomp_attr_set(TSYNC)");
  // A system call of another ABI (int 0x80 on x86-64) must not slip past the filter.
  check(seccomp_attr_set(filter.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "seccomp_attr_set(BADARCH)");

  g_denied_count = 0;
  for (const char* name : denied_names(profile)) {
    int nr = seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not a call of this architecture (or libseccomp is older)
    if (g_denied_count < static_cast<int>(std::size(g_denied))) {
      g_denied[g_denied_count].nr = nr;
      std::snprintf(g_denied[g_denied_count].name, sizeof g_denied[g_denied_count].name, "%s", name);
      ++g_denied_count;
    }
    if (std::strcmp(name, "socket") == 0) {
      check(seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(EACCES), nr, 1, SCMP_A0_32(SCMP_CMP_EQ, AF_UNIX)),
            "seccomp_rule_add(socket AF_UNIX)");
      check(seccomp_rule_add(filter.get(), SCMP_ACT_TRAP, nr, 1, SCMP_A0_32(SCMP_CMP_NE, AF_UNIX)),
            "seccomp_rule_add(socket)");
      continue;
    }
    check(seccomp_rule_add(filter.get(), SCMP_ACT_TRAP, nr, 0), std::string("seccomp_rule_add(") + name + ")");
  }

  // unshare and setns are denied above; clone can make namespaces too. Its flags are an argument
  // the filter can read, so a clone with any namespace flag is denied. clone3 passes its flags in
  // memory the filter cannot read: it fails with ENOSYS, and the C library then falls back to clone.
  int clone_nr = seccomp_syscall_resolve_name("clone");
  if (clone_nr != __NR_SCMP_ERROR) {
    if (g_denied_count < static_cast<int>(std::size(g_denied))) {
      g_denied[g_denied_count].nr = clone_nr;
      std::snprintf(g_denied[g_denied_count].name, sizeof g_denied[g_denied_count].name, "%s", "clone");
      ++g_denied_count;
    }
    for (unsigned long flag : {CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID,
                               CLONE_NEWNET})
      check(seccomp_rule_add(filter.get(), SCMP_ACT_TRAP, clone_nr, 1, SCMP_A0_64(SCMP_CMP_MASKED_EQ, flag, flag)),
            "seccomp_rule_add(clone)");
  }
  int clone3_nr = seccomp_syscall_resolve_name("clone3");
  if (clone3_nr != __NR_SCMP_ERROR)
    check(seccomp_rule_add(filter.get(), SCMP_ACT_ERRNO(ENOSYS), clone3_nr, 0), "seccomp_rule_add(clone3)");

  struct sigaction action {};
  action.sa_sigaction = on_sigsys;
  action.sa_flags = SA_SIGINFO;
  sigemptyset(&action.sa_mask);
  if (::sigaction(SIGSYS, &action, nullptr) != 0)
    throw std::runtime_error(std::string("sigaction(SIGSYS): ") + std::strerror(errno));
  check(seccomp_load(filter.get()), "seccomp_load");
}

}  // namespace mcpd
