// What mcp-load reads from /proc about the server under test: CPU time and resident memory of the
// server and every process below it, and the chaos monkey that SIGKILLs the server's children.
// Linux only; a process that vanishes between listing and reading is skipped, never an error.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>
#include <string_view>
#include <thread>
#include <vector>

namespace mcpd::load {

/// The fields of /proc/<pid>/stat we use; times in clock ticks, rss in pages.
struct ProcStat {
  pid_t pid = 0;
  pid_t ppid = 0;
  char state = '?';
  std::uint64_t utime = 0, stime = 0, cutime = 0, cstime = 0;
  std::uint64_t rss_pages = 0;
};

/// Parses the text of /proc/<pid>/stat (the command name may hold spaces and parentheses: fields
/// are counted after the last ')'). nullopt when the text is not a stat line.
std::optional<ProcStat> parse_proc_stat(std::string_view text);
std::optional<ProcStat> read_proc_stat(pid_t pid);

/// Direct children of `pid`: from /proc/<pid>/task/*/children when the kernel has it, otherwise by
/// scanning every /proc/<n>/stat for ppid == pid.
std::vector<pid_t> children_of(pid_t pid);
/// Every process below `pid` (children, their children, ...).
std::vector<pid_t> descendants_of(pid_t pid);

/// VmHWM of /proc/<pid>/status (the process's peak resident set) in bytes; 0 when unreadable.
std::uint64_t vm_hwm_bytes(pid_t pid);

/// CPU and memory of a process tree at one instant.
struct TreeUsage {
  /// utime + stime + cutime + cstime of the root and of every live (or zombie) descendant. A child
  /// that died and was reaped has its whole lifetime in its parent's cutime/cstime, so a tree whose
  /// workers are killed and replaced is still counted in full; differences of two readings give the
  /// CPU the tree spent between them.
  double cpu_s = 0;
  std::uint64_t rss_bytes = 0;  // sum of the resident sets of the root and its descendants
  std::size_t processes = 0;
};
TreeUsage tree_usage(pid_t root);

/// A thread that samples a server's tree every `sample_every` (peak RSS, peak process count) and,
/// while chaos is on, SIGKILLs a random direct child of the server every `chaos_every`. Started by
/// the constructor, stopped and joined by stop() or the destructor.
class Monitor {
 public:
  using Clock = std::chrono::steady_clock;

  struct Kill {
    Clock::time_point at;
    std::chrono::system_clock::time_point wall;  // to line up with the server's log timestamps
    pid_t pid;
  };

  Monitor(pid_t server, std::chrono::milliseconds sample_every, std::chrono::milliseconds chaos_every,
          std::uint64_t seed);
  ~Monitor();
  Monitor(const Monitor&) = delete;
  Monitor& operator=(const Monitor&) = delete;

  /// Turns the chaos monkey on or off (no effect when chaos_every is 0).
  void set_chaos(bool on);
  /// Resets the peaks (at the start of the measured phase).
  void reset_peaks();
  void stop();

  std::uint64_t peak_rss_bytes() const { return peak_rss_.load(); }
  std::size_t peak_processes() const { return peak_processes_.load(); }
  /// The kills so far (copy; safe while running).
  std::vector<Kill> kills() const;

 private:
  void run();
  void sample();
  void kill_one();

  pid_t server_;
  std::chrono::milliseconds sample_every_, chaos_every_;
  std::mt19937_64 random_;  // used by the monitor thread only
  std::atomic<std::uint64_t> peak_rss_{0};
  std::atomic<std::size_t> peak_processes_{0};
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  bool chaos_ = false;
  Clock::time_point next_kill_{};
  std::vector<Kill> kills_;
  std::thread thread_;
};

}  // namespace mcpd::load
