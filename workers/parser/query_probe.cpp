// probe_query_compile: a query is compiled first in a checker process, a fork of this one that does
// nothing but compile queries it is sent, so a query that crashes or hangs libtree-sitter's query
// compiler takes down the checker and not the process that asked.
//
// One checker serves many queries (one at a time): forking per query doubled the cost of a new
// query, because every page the compile writes is then copied in both processes. A checker that
// dies (a crash, or killed at the timeout) is replaced at the next query. It leaves by itself when
// its request pipe closes, which happens when the process that forked it is gone, and each compile
// runs under a CPU-time limit, so an orphan cannot spin.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_set>

#include "fd_io.h"
#include "query.h"
#include "tool.h"

namespace mcpd {

namespace {

/// Query texts (prefixed by their language) that compiled in the checker, oldest first out.
class CompiledQueries {
 public:
  bool contains(const std::string& key) {
    std::lock_guard lock(mutex_);
    return keys_.count(key) != 0;
  }
  void add(std::string key, std::size_t capacity) {
    std::lock_guard lock(mutex_);
    if (key.size() > capacity || keys_.count(key) != 0) return;
    while (!order_.empty() && bytes_ + key.size() > capacity) {
      bytes_ -= order_.front()->size();
      keys_.erase(*order_.front());
      order_.pop_front();
    }
    bytes_ += key.size();
    order_.push_back(&*keys_.insert(std::move(key)).first);  // elements of an unordered_set never move
  }

 private:
  std::mutex mutex_;
  std::unordered_set<std::string> keys_;
  std::deque<const std::string*> order_;
  std::size_t bytes_ = 0;
};

struct Request {
  std::uintptr_t language;  // the checker is a fork: the same address means the same grammar
  std::uint32_t length;
  std::uint32_t cpu_seconds;
};

/// The checker's loop: a request in, a verdict byte ('y' compiled, 'n' a query error) out. It uses
/// nothing the parent's other threads might have held locked at the fork but the allocator, which
/// the C library makes safe to use in a forked child.
[[noreturn]] void checker_main(int requests, int verdicts) {
  // Nothing of the parent's (its frame pipes, its sockets) stays open here, so the checker never
  // holds a channel the parent's peer waits to see closed. Standard error stays, for a sanitizer.
  for (int fd : {0, 1}) ::close(fd);
  int low = std::min(requests, verdicts), high = std::max(requests, verdicts);
  ::syscall(SYS_close_range, 3u, static_cast<unsigned>(low - 1), 0u);
  if (high > low + 1) ::syscall(SYS_close_range, static_cast<unsigned>(low + 1), static_cast<unsigned>(high - 1), 0u);
  ::syscall(SYS_close_range, static_cast<unsigned>(high + 1), ~0u, 0u);
  rlimit no_core{0, 0};
  ::setrlimit(RLIMIT_CORE, &no_core);
  // A crash here is the verdict, not a bug to report: the fault signals go back to their default
  // action. Through the raw system call, because a sanitizer runtime intercepts sigaction and
  // keeps its own handler (which would print a report for a crash the parent handles).
  struct {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)();
    unsigned long mask;
  } default_action{SIG_DFL, 0, nullptr, 0};
  for (int sig : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGXCPU})
    ::syscall(SYS_rt_sigaction, sig, &default_action, nullptr, sizeof default_action.mask);
  std::string source;
  for (;;) {
    Request request{};
    if (!read_all(requests, &request, sizeof request)) ::_exit(0);  // the parent is gone or done
    source.resize(request.length);
    if (!read_all(requests, source.data(), source.size())) ::_exit(0);
    // The parent kills a compile that overruns its timeout; this bounds one whose parent died.
    timespec used{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    // Only the soft limit moves: a hard limit once lowered could not be raised for the next query.
    rlimit cpu{};
    ::getrlimit(RLIMIT_CPU, &cpu);
    cpu.rlim_cur = std::min<rlim_t>(cpu.rlim_max, static_cast<rlim_t>(used.tv_sec) + request.cpu_seconds + 1);
    ::setrlimit(RLIMIT_CPU, &cpu);
    std::uint32_t offset = 0;
    TSQueryError error = TSQueryErrorNone;
    TSQuery* query = ts_query_new(reinterpret_cast<const TSLanguage*>(request.language), source.data(),
                                  request.length, &offset, &error);
    char verdict = query != nullptr ? 'y' : 'n';
    if (query != nullptr) ts_query_delete(query);
    if (!write_all(verdicts, std::string_view(&verdict, 1))) ::_exit(0);
  }
}

class Checker {
 public:
  enum class Outcome { compiled, query_error, crashed, timed_out };
  struct Result {
    Outcome outcome;
    int signal = 0;  // for crashed: the signal, or 0 for an exit
    int exit_status = 0;
  };

  Result check(const TSLanguage* language, std::string_view source, std::uint64_t timeout_ms) {
    std::lock_guard lock(mutex_);
    // A checker that died since its last answer (killed from outside) is not this query's doing:
    // a request that cannot be delivered starts a fresh checker once.
    for (int attempt = 0;; ++attempt) {
      start();
      if (send(language, source, timeout_ms)) break;
      stop(SIGKILL);
      if (attempt == 1) throw ToolError("query: the process that compiles queries apart does not take requests");
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    char verdict = 0;
    bool timed_out = false;
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd fd{verdicts_, POLLIN, 0};
      int ready = ::poll(&fd, 1, static_cast<int>(std::max<std::int64_t>(0, left.count())));
      if (ready < 0 && errno == EINTR) continue;
      if (ready == 0) timed_out = true;
      if (ready > 0 && ::read(verdicts_, &verdict, 1) < 0 && errno == EINTR) continue;
      break;
    }
    if (verdict == 'y') return {Outcome::compiled};
    if (verdict == 'n') return {Outcome::query_error};
    int status = stop(timed_out ? SIGKILL : 0);
    if (timed_out) return {Outcome::timed_out};
    if (WIFSIGNALED(status)) return {Outcome::crashed, WTERMSIG(status)};
    return {Outcome::crashed, 0, WIFEXITED(status) ? WEXITSTATUS(status) : -1};
  }

 private:
  void start() {
    if (pid_ > 0) return;
    int requests[2], verdicts[2];
    if (::pipe2(requests, O_CLOEXEC) != 0)
      throw ToolError(std::string("query: cannot make a pipe to compile it apart: ") + std::strerror(errno));
    if (::pipe2(verdicts, O_CLOEXEC) != 0) {
      int err = errno;
      ::close(requests[0]);
      ::close(requests[1]);
      throw ToolError(std::string("query: cannot make a pipe to compile it apart: ") + std::strerror(err));
    }
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(requests[1]);
      ::close(verdicts[0]);
      checker_main(requests[0], verdicts[1]);
    }
    int err = errno;
    ::close(requests[0]);
    ::close(verdicts[1]);
    if (pid < 0) {
      ::close(requests[1]);
      ::close(verdicts[0]);
      throw ToolError(std::string("query: cannot fork a process to compile it apart: ") + std::strerror(err));
    }
    pid_ = pid;
    requests_ = requests[1];
    verdicts_ = verdicts[0];
  }

  /// Sends one request, with SIGPIPE held back: a checker that died makes the write fail with
  /// EPIPE, and the signal is taken back before it can reach a process that does not ignore it.
  bool send(const TSLanguage* language, std::string_view source, std::uint64_t timeout_ms) {
    Request request{reinterpret_cast<std::uintptr_t>(language), static_cast<std::uint32_t>(source.size()),
                    static_cast<std::uint32_t>((timeout_ms + 999) / 1000)};
    sigset_t pipe_only, previous;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &previous);
    bool sent = write_all(requests_, std::string_view(reinterpret_cast<const char*>(&request), sizeof request)) &&
                write_all(requests_, source);
    if (!sent && errno == EPIPE) {
      timespec none{0, 0};
      while (sigtimedwait(&pipe_only, nullptr, &none) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return sent;
  }

  /// Ends the checker (with `signal`, or by closing its requests) and reaps it; its wait status.
  int stop(int signal) {
    if (signal != 0) ::kill(pid_, signal);
    ::close(requests_);
    ::close(verdicts_);
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    pid_ = -1;
    requests_ = verdicts_ = -1;
    return status;
  }

  std::mutex mutex_;
  pid_t pid_ = -1;
  int requests_ = -1;
  int verdicts_ = -1;
};

// Never destroyed: threads of a worker may still check queries while static destructors run.
CompiledQueries& compiled_queries() {
  static auto* queries = new CompiledQueries;
  return *queries;
}

Checker& checker() {
  static auto* instance = new Checker;
  return *instance;
}

}  // namespace

void probe_query_compile(const TSLanguage* language, std::string_view source, const QueryLimits& limits) {
  if (!limits.isolate_compile) return;
  std::string key = std::to_string(reinterpret_cast<std::uintptr_t>(language));
  key += '\n';
  key += source;
  if (compiled_queries().contains(key)) return;
  Checker::Result result = checker().check(language, source, limits.compile_timeout_ms);
  // A checker killed from outside while it compiled would look the same as a crash: a crash counts
  // when a fresh checker crashes on the query again.
  if (result.outcome == Checker::Outcome::crashed) result = checker().check(language, source, limits.compile_timeout_ms);
  switch (result.outcome) {
    case Checker::Outcome::compiled:
      compiled_queries().add(std::move(key), limits.compile_cache_bytes);
      return;
    case Checker::Outcome::query_error:
      return;  // not remembered: the compile that follows reports it, with its position
    case Checker::Outcome::timed_out:
      throw ToolError("query: compiling it took longer than parser.query_compile_timeout_ms (" +
                      std::to_string(limits.compile_timeout_ms) + " ms); make it smaller or simpler");
    case Checker::Outcome::crashed: {
      const char* name = result.signal != 0 ? sigabbrev_np(result.signal) : nullptr;
      std::string how = name != nullptr ? "SIG" + std::string(name)
                                        : "exit status " + std::to_string(result.exit_status);
      throw ToolError("query: tree-sitter's query compiler crashed on it (" + how +
                      ", in a process apart, so nothing else was affected); this query cannot be used with this "
                      "library version: rewrite the pattern (a quantifier around a group is the usual trigger)");
    }
  }
}

}  // namespace mcpd
