#include "spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <map>

#include "worker_protocol.h"

namespace mcpd::pool {

namespace {

// Boost.Process v2 (1.81) cannot give the child an environment of its own header-only, and its
// exec-setup hook has no way to report a failure back; so workers are forked and exec'd here, with
// every setup step checked and a failure sent to the parent through a close-on-exec pipe: EOF on
// that pipe means the exec happened, a ChildFailure record means it did not.
struct ChildFailure {
  char call[56];
  int error;
};

/// Writes the failing call and errno to the error pipe and ends the child. Async-signal-safe, as
/// everything between fork and exec must be in a multithreaded parent.
[[noreturn]] void child_fail(int fd, const char* call, int error) {
  ChildFailure failure{};
  for (std::size_t i = 0; call[i] != '\0' && i + 1 < sizeof failure.call; ++i) failure.call[i] = call[i];
  failure.error = error;
  ssize_t ignored = ::write(fd, &failure, sizeof failure);
  (void)ignored;
  ::_exit(127);
}

/// Closes every descriptor in [low, high]; close_range where the kernel has it (5.9+), else one by
/// one up to the descriptor limit.
void close_from(unsigned low, unsigned high) {
  if (low > high) return;
  if (::close_range(low, high, 0) == 0) return;
  rlimit limit{};
  rlim_t end = ::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY ? limit.rlim_cur : 65536;
  for (rlim_t fd = low; fd <= high && fd < end; ++fd) ::close(static_cast<int>(fd));
}

struct Pipe {
  int read = -1, write = -1;
};

void close_pipe(Pipe& p) {
  if (p.read >= 0) ::close(p.read);
  if (p.write >= 0) ::close(p.write);
  p = {};
}

Pipe make_pipe(const char* what) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw SpawnError(std::string("pipe2 for the worker's ") + what + ": " + std::strerror(errno));
  return {fds[0], fds[1]};
}

/// The limit to set: `wanted`, but never above the current hard limit, which only a privileged
/// process could raise (the stricter of the two stands).
rlimit capped(int resource, std::uint64_t wanted) {
  rlimit current{};
  rlim_t value = static_cast<rlim_t>(wanted);
  if (::getrlimit(resource, &current) == 0 && current.rlim_max != RLIM_INFINITY) value = std::min(value, current.rlim_max);
  return {value, value};
}

// Variables a worker may see from mcpd's environment: what the C library and the tool libraries
// read (locale, time zone, temporary directory, HOME and the XDG directories for the global git
// config and gitignore and the Modbus database), and the sanitizers' options so a sanitizer build's
// workers run as configured. Everything else, such as a client's tokens, stays in mcpd.
constexpr std::array<const char*, 14> kAllowed = {
    "PATH",           "HOME",         "USER",          "LOGNAME",      "LANG",         "LANGUAGE",    "TZ",
    "TMPDIR",         "XDG_CONFIG_HOME", "XDG_STATE_HOME", "ASAN_OPTIONS", "UBSAN_OPTIONS", "TSAN_OPTIONS",
    "LSAN_OPTIONS"};
// Read by the worker runtime only when the configuration turns test hooks on.
constexpr std::array<const char*, 2> kTestHookVariables = {"MCPD_TEST_WORKER_FAULT", "MCPD_TEST_WORKER_DIVERGE"};

bool allowed(const std::string& name, bool test_hooks) {
  if (name.rfind("LC_", 0) == 0) return true;  // LC_ALL, LC_CTYPE...
  for (const char* a : kAllowed)
    if (name == a) return true;
  if (test_hooks)
    for (const char* a : kTestHookVariables)
      if (name == a) return true;
  return false;
}

bool valid_name(const std::string& name) {
  if (name.empty() || (name[0] >= '0' && name[0] <= '9')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return c == '_' || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
  });
}

}  // namespace

std::string check_worker_env(const nlohmann::json& worker_env) {
  auto check_name = [](const std::string& name) -> std::string {
    if (!valid_name(name)) return "'" + name + "' is not a variable name (letters, digits and '_', not starting with a digit)";
    if (name == worker_protocol::config_env) return "'" + name + "' is set by mcpd itself";
    return "";
  };
  if (worker_env.is_array()) {
    for (const auto& name : worker_env) {
      if (!name.is_string()) return "must list variable names as strings, got " + name.dump();
      if (auto e = check_name(name.get<std::string>()); !e.empty()) return e;
    }
    return "";
  }
  if (!worker_env.is_object())
    return "must be an array of variable names to pass through or an object of name to value (a string, or "
           "true to pass mcpd's own value through)";
  for (auto it = worker_env.begin(); it != worker_env.end(); ++it) {
    if (auto e = check_name(it.key()); !e.empty()) return e;
    if (it.value().is_string()) {
      if (it.value().get_ref<const std::string&>().find('\0') != std::string::npos)
        return "value of '" + it.key() + "' holds a NUL byte";
    } else if (!(it.value().is_boolean() && it.value().get<bool>())) {
      return "value of '" + it.key() + "' must be a string, or true to pass mcpd's own value through, got " +
             it.value().dump();
    }
  }
  return "";
}

std::vector<std::string> worker_environment(const std::vector<std::string>& parent, const nlohmann::json& worker_env,
                                            bool test_hooks, const std::string& worker_config) {
  std::map<std::string, std::string> from_parent, out;
  for (const auto& kv : parent) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) continue;
    from_parent.emplace(kv.substr(0, eq), kv.substr(eq + 1));
  }
  for (const auto& [name, value] : from_parent)
    if (allowed(name, test_hooks)) out[name] = value;
  auto pass = [&](const std::string& name) {
    if (auto it = from_parent.find(name); it != from_parent.end()) out[name] = it->second;
  };
  if (worker_env.is_array()) {
    for (const auto& name : worker_env)
      if (name.is_string()) pass(name.get<std::string>());
  } else if (worker_env.is_object()) {
    for (auto it = worker_env.begin(); it != worker_env.end(); ++it) {
      if (it.value().is_string()) out[it.key()] = it.value().get<std::string>();
      else pass(it.key());
    }
  }
  out[worker_protocol::config_env] = worker_config;
  std::vector<std::string> env;
  env.reserve(out.size());
  for (const auto& [name, value] : out) env.push_back(name + "=" + value);
  return env;
}

SpawnedProcess spawn_process(const SpawnRequest& request) {
  // Everything the child needs is built before fork: after it, only async-signal-safe calls.
  std::vector<char*> envp;
  for (const auto& kv : request.environment) envp.push_back(const_cast<char*>(kv.c_str()));
  envp.push_back(nullptr);
  char* argv[] = {const_cast<char*>(request.executable.c_str()), nullptr};
  bool limit_as = request.address_space_limit > 0;
  rlimit as_limit = capped(RLIMIT_AS, request.address_space_limit);
  bool limit_files = request.max_open_files > 0;
  rlimit files_limit = capped(RLIMIT_NOFILE, request.max_open_files);
  if (request.fault == "setrlimit") files_limit = {2, 1};  // soft above hard: EINVAL, even for root
  const rlimit no_core{0, 0};
  const unsigned long no_new_privs = request.fault == "prctl" ? 2 : 1;  // 2 is no valid value: EINVAL

  Pipe in, out, err, report;
  try {
    in = make_pipe("stdin");
    out = make_pipe("stdout");
    err = make_pipe("stderr");
    report = make_pipe("setup report");
  } catch (...) {
    close_pipe(in);
    close_pipe(out);
    close_pipe(err);
    close_pipe(report);
    throw;
  }

  pid_t pid = ::fork();
  if (pid < 0) {
    int error = errno;
    close_pipe(in);
    close_pipe(out);
    close_pipe(err);
    close_pipe(report);
    throw SpawnError(std::string("fork: ") + std::strerror(error));
  }
  if (pid == 0) {
    // The child. Move the report pipe and the three ends above 2 first, so that no dup2 below
    // overwrites one we still need (mcpd itself may have been started with 0, 1 or 2 closed).
    int fail_fd = ::fcntl(report.write, F_DUPFD_CLOEXEC, 10);
    if (fail_fd < 0) child_fail(report.write, "fcntl(F_DUPFD_CLOEXEC)", errno);
    int ends[3] = {in.read, out.write, err.write};
    for (int& fd : ends)
      if ((fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 10)) < 0) child_fail(fail_fd, "fcntl(F_DUPFD_CLOEXEC)", errno);
    for (int i = 0; i < 3; ++i)
      if (::dup2(ends[i], i) < 0) child_fail(fail_fd, "dup2", errno);
    // Nothing else of mcpd's crosses into the worker: not the client's stdio, not another worker's
    // pipes, not a cache or database file. The report pipe closes itself at exec.
    close_from(3, static_cast<unsigned>(fail_fd) - 1);
    close_from(static_cast<unsigned>(fail_fd) + 1, ~0U);

    // A clean signal state: mcpd ignores SIGPIPE, and an ignored signal stays ignored across exec.
    struct sigaction default_action {};
    default_action.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &default_action, nullptr);  // EINVAL for KILL, STOP
    sigset_t none;
    ::sigemptyset(&none);
    if (::sigprocmask(SIG_SETMASK, &none, nullptr) != 0) child_fail(fail_fd, "sigprocmask", errno);

    // Its own process group, so a kill reaches the worker's children too; death with mcpd.
    if (::setpgid(0, 0) != 0) child_fail(fail_fd, "setpgid", errno);
    if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) child_fail(fail_fd, "prctl(PR_SET_PDEATHSIG)", errno);
    if (::setrlimit(RLIMIT_CORE, &no_core) != 0) child_fail(fail_fd, "setrlimit(RLIMIT_CORE)", errno);
    if (limit_files && ::setrlimit(RLIMIT_NOFILE, &files_limit) != 0)
      child_fail(fail_fd, "setrlimit(RLIMIT_NOFILE)", errno);
    if (limit_as && ::setrlimit(RLIMIT_AS, &as_limit) != 0) child_fail(fail_fd, "setrlimit(RLIMIT_AS)", errno);
    // No exec from the worker on may gain privileges (setuid binaries, file capabilities); it is
    // also what lets the worker install its seccomp filter without privileges.
    if (::prctl(PR_SET_NO_NEW_PRIVS, no_new_privs, 0, 0, 0) != 0) child_fail(fail_fd, "prctl(PR_SET_NO_NEW_PRIVS)", errno);
    ::execve(argv[0], argv, envp.data());
    child_fail(fail_fd, "execve", errno);
  }

  // The parent: the child's ends are its own now.
  ::close(in.read);
  ::close(out.write);
  ::close(err.write);
  ::close(report.write);
  ChildFailure failure{};
  std::size_t got = 0;
  while (got < sizeof failure) {
    ssize_t n = ::read(report.read, reinterpret_cast<char*>(&failure) + got, sizeof failure - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  ::close(report.read);
  if (got == 0) return {pid, in.write, out.read, err.read};

  // The child stopped before exec: it has exited or is about to, so this wait is short.
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  ::close(in.write);
  ::close(out.read);
  ::close(err.read);
  if (got < sizeof failure) throw SpawnError("the child died during its setup, before exec");
  failure.call[sizeof failure.call - 1] = '\0';
  throw SpawnError(std::string(failure.call) + " failed in the child before exec: " + std::strerror(failure.error) +
                   " (errno " + std::to_string(failure.error) + ")");
}

}  // namespace mcpd::pool
