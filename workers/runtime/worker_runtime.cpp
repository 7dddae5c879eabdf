#include "worker_runtime.h"

#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <ctime>
#include <deque>
#include <fstream>
#include <iostream>
#include <iterator>
#include <limits>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <utility>

#include "fd_io.h"
#include "frame.h"
#include "json_text.h"
#include "roots.h"
#include "sandbox.h"
#include "schema.h"
#include "tool_runner.h"
#include "worker_protocol.h"

#ifndef MCPD_VERSION
#define MCPD_VERSION "0.1.0"
#endif

namespace mcpd {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr const char* kFaultEnv = "MCPD_TEST_WORKER_FAULT";
constexpr const char* kDivergeEnv = "MCPD_TEST_WORKER_DIVERGE";
constexpr milliseconds kTelemetryInterval{100};
constexpr milliseconds kProgressInterval{50};
constexpr std::size_t kMaxQueuedLogs = 1000;
constexpr int kDebugRank = 0;  // log_level_rank("debug"), the lowest: asked per call, so not looked up
/// Calls a worker holds waiting beyond those running (announced in hello as max_waiting): the
/// coordinator pipelines at most this many, so a worker goes from call to call without a round trip.
constexpr std::size_t kMaxWaiting = 8;
// After a shutdown frame, how long past its deadline a running call may take before we exit anyway
// (the deadline itself has cancelled it by then).
constexpr milliseconds kShutdownGrace{500};
// After stdin closes, how long a cancelled call gets to wind down before we exit without it.
constexpr milliseconds kEofGrace{50};
// Bytes that are no frame: read as a header, "garb" declares ~1.7 GB, so every FrameReader fails.
constexpr std::string_view kGarbage = "garbage: this is not a frame\n";

constexpr const char* kLogLevels[] = {"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

int log_level_rank(std::string_view level) {
  for (int i = 0; i < static_cast<int>(std::size(kLogLevels)); ++i)
    if (level == kLogLevels[i]) return i;
  return -1;
}

std::string& stderr_prefix() {
  static std::string prefix = "mcpd-worker";
  return prefix;
}

/// One line on stderr in a single write, so lines from different threads never interleave. The
/// coordinator relays our stderr into its log, tagged with kind and pid.
void say(const std::string& message) {
  std::string line = stderr_prefix() + ": " + message + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

/// Every exit after startup goes through here: _exit, because a call thread may be stuck inside a
/// tool, and running static destructors under it would be worse than not running them. Stray stdio
/// output is line-buffered (see run_worker), so nothing useful is left in a buffer.
[[noreturn]] void quit(int status) { ::_exit(status); }

std::uint64_t rss_bytes() {
  std::ifstream statm("/proc/self/statm");
  std::uint64_t size = 0, resident = 0;
  if (!(statm >> size >> resident)) return 0;
  return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
}

/// The most memory the process has held (getrusage: one system call, no file to read), reported
/// with every outcome so the coordinator can recycle a worker that grew without reading /proc.
/// RUSAGE_THREAD: Linux reports the process's high-water mark for it as for RUSAGE_SELF, without
/// summing the times of every thread.
std::uint64_t peak_rss_bytes() {
  rusage usage{};
  if (::getrusage(RUSAGE_THREAD, &usage) != 0) return 0;
  return static_cast<std::uint64_t>(usage.ru_maxrss) * 1024;
}

std::uint64_t cpu_ms() {
  rusage usage{};
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return 0;
  auto ms = [](const timeval& t) {
    return static_cast<std::uint64_t>(t.tv_sec) * 1000 + static_cast<std::uint64_t>(t.tv_usec) / 1000;
  };
  return ms(usage.ru_utime) + ms(usage.ru_stime);
}

std::string utc_timestamp() {
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

/// A progress value as JSON: whole numbers as integers, so 3 is sent as 3 rather than 3.0.
json number(double value) {
  if (std::trunc(value) == value && std::fabs(value) < 9007199254740992.0) return static_cast<std::int64_t>(value);
  return value;
}

/// What the worker has done so far, shared by the call thread (which counts) and whoever reports.
struct Counters {
  std::atomic<std::uint64_t> calls_served{0};  // calls that ran to an outcome; busy/unknown_tool excluded
};

json metrics(const Counters& counters) {
  return {{"rss_bytes", rss_bytes()}, {"calls", counters.calls_served.load()}, {"cpu_ms", cpu_ms()}};
}

/// The worker's end of the frame channel: whole frames, written under one lock to a private copy
/// of the original stdout. A failed write means the coordinator is gone, so the worker goes too.
class FrameChannel {
 public:
  explicit FrameChannel(int fd) : fd_(fd) {}

  void send(const json& frame) { send_raw(encode_frame(frame)); }

  void send_raw(std::string_view bytes) {
    std::lock_guard lock(mutex_);
    if (!write_all(fd_, bytes)) quit(0);
  }

 private:
  int fd_;
  std::mutex mutex_;
};

/// Log records from tools and from the runtime, queued (at most kMaxQueuedLogs; more are counted as
/// dropped) and sent by its own thread as one telemetry frame at most every 100 ms, only when there
/// is something to say. Any thread may log.
class Telemetry {
 public:
  Telemetry(FrameChannel& channel, int min_rank, const Counters& counters)
      : channel_(channel), min_rank_(min_rank), counters_(counters) {}

  /// Queues {"ts","level","msg",<fields>} if `level` is at or above the configured one. A level
  /// that is no syslog name is logged as info rather than lost.
  void log(std::string level, const std::string& message, const json& fields = json::object()) {
    int rank = log_level_rank(level);
    if (rank < 0) {
      level = "info";
      rank = log_level_rank(level);
    }
    if (rank < min_rank_) return;
    json record = {{"ts", utc_timestamp()}, {"level", std::move(level)}, {"msg", message}};
    for (auto it = fields.begin(); it != fields.end(); ++it) record[it.key()] = it.value();
    std::lock_guard lock(mutex_);
    if (queue_.size() >= kMaxQueuedLogs) {
      ++dropped_;
      return;
    }
    queue_.push_back(std::move(record));
    if (queue_.size() == 1) news_.notify_one();
  }

  /// Whether a record at `rank` would be kept: callers on hot paths ask before building fields.
  bool wants(int rank) const { return rank >= min_rank_; }

  /// Starts the thread that sends batches; it runs until the process exits.
  void start() { std::thread([this] { run(); }).detach(); }

  /// Sends whatever is queued now (before the process exits).
  void flush() {
    std::unique_lock lock(mutex_);
    send(lock);
  }

 private:
  void run() {
    std::unique_lock lock(mutex_);
    for (;;) {
      news_.wait(lock, [this] { return !queue_.empty(); });
      // Batch: at most one frame per interval, however fast records come.
      auto due = last_sent_ + kTelemetryInterval;
      while (Clock::now() < due) news_.wait_until(lock, due);
      send(lock);
    }
  }

  /// Takes the queue and sends it, with the lock released while writing.
  void send(std::unique_lock<std::mutex>& lock) {
    if (queue_.empty()) return;
    json logs = json::array();
    for (auto& record : queue_) logs.push_back(std::move(record));
    queue_.clear();
    std::uint64_t dropped = std::exchange(dropped_, 0);
    last_sent_ = Clock::now();
    lock.unlock();
    json frame = {{"type", "telemetry"}, {"logs", std::move(logs)}, {"metrics", metrics(counters_)}};
    if (dropped > 0) frame["dropped"] = dropped;
    channel_.send(frame);
    lock.lock();
  }

  FrameChannel& channel_;
  const int min_rank_;
  const Counters& counters_;
  std::mutex mutex_;
  std::condition_variable news_;
  std::deque<json> queue_;
  std::uint64_t dropped_ = 0;
  Clock::time_point last_sent_{};
};

/// A call as the coordinator sent it.
struct CallRequest {
  std::string id;
  std::string tool;
  json arguments = json::object();
  std::optional<milliseconds> deadline;  // from the frame; else the tool's default_timeout
  bool validated = false;                // the coordinator checked arguments against the schema
};

/// Runs calls on call threads of its own (one, unless the kind runs several calls at once), so the
/// main thread stays free to answer pings and pass on cancels, and watches the running calls'
/// deadlines from another thread, cancelling a call's token when its deadline passes (softly: the
/// coordinator enforces deadlines for real). A call thread sends each call's progress and its one
/// outcome frame.
class CallRunner {
 public:
  CallRunner(const WorkerConfig& config, std::vector<Tool> tools, FrameChannel& channel, Telemetry& telemetry,
             Counters& counters, bool diverge, std::size_t concurrency)
      : config_(config),
        root_dirs_(std::make_shared<const RootDirs>(config.roots)),
        tools_(std::move(tools)),
        channel_(channel),
        telemetry_(telemetry),
        counters_(counters),
        diverge_(diverge),
        concurrency_(std::max<std::size_t>(concurrency, 1)) {}

  /// The tools it serves; never changed after construction, so other threads may read them.
  const std::vector<Tool>& tools() const { return tools_; }

  /// Starts the call and watchdog threads; they run until the process exits.
  void start() {
    for (std::size_t i = 0; i < concurrency_; ++i) std::thread([this] { call_loop(); }).detach();
    std::thread([this] { watch_loop(); }).detach();
  }

  /// Starts `call`, or answers it at once with an unknown_tool or busy error.
  void submit(CallRequest call) {
    const Tool* tool = find(call.tool);
    if (tool == nullptr) {
      std::string served;
      for (const auto& t : tools_) served += (served.empty() ? "" : ", ") + t.name;
      send_error(call.id, "unknown_tool", "unknown tool '" + call.tool + "'; this worker serves: " + served);
      return;
    }
    std::unique_lock lock(mutex_);
    if (jobs_.size() + actives_.size() >= concurrency_ + kMaxWaiting) {
      std::string running = !actives_.empty() ? actives_.front().id : jobs_.front().request.id;
      lock.unlock();
      send_error(call.id, "busy", "worker is busy with call '" + running + "' and holds at most " +
                                      std::to_string(concurrency_ + kMaxWaiting) + " calls (" +
                                      std::to_string(concurrency_) + " running, " + std::to_string(kMaxWaiting) +
                                      " waiting)");
      return;
    }
    Job job{std::move(call), tool, CancelToken{}, std::nullopt};
    // The deadline runs from arrival: a call waiting behind another spends its budget waiting.
    milliseconds budget = job.request.deadline.value_or(tool->default_timeout);
    if (budget.count() > 0) job.deadline = Clock::now() + budget;
    jobs_.push_back(std::move(job));
    in_flight_ = true;
    // Notified after unlocking, so the call thread does not wake only to wait for this lock.
    lock.unlock();
    job_ready_.notify_one();
  }

  /// Cancels call `id` if it is running; otherwise its outcome has already won the race.
  void cancel(const std::string& id) {
    std::unique_lock lock(mutex_);
    for (auto& active : actives_)
      if (active.id == id) {
        active.cancel.cancel();
        return;
      }
    // A call still waiting never starts: it is answered as cancelled at once.
    for (auto it = jobs_.begin(); it != jobs_.end(); ++it) {
      if (it->request.id != id) continue;
      jobs_.erase(it);
      in_flight_ = !actives_.empty() || !jobs_.empty();
      lock.unlock();
      send_error(id, "cancelled", "cancelled before it started");
      idle_.notify_all();
      return;
    }
  }

  void cancel_running() {
    std::unique_lock lock(mutex_);
    for (auto& active : actives_) active.cancel.cancel();
    std::deque<Job> waiting = std::move(jobs_);
    jobs_.clear();
    lock.unlock();
    for (auto& job : waiting) send_error(job.request.id, "cancelled", "cancelled before it started");
  }

  bool busy() const {
    std::lock_guard lock(mutex_);
    return !actives_.empty() || !jobs_.empty();
  }

  /// Calls a call thread has taken (started, or about to), as against those still waiting.
  std::size_t running() const {
    std::lock_guard lock(mutex_);
    return actives_.size();
  }

  /// Waits until no call is in flight (its outcome sent) or `until` passes; true if idle.
  bool wait_idle(Clock::time_point until) {
    std::unique_lock lock(mutex_);
    return idle_.wait_until(lock, until, [this] { return !in_flight_; });
  }

  /// Waits for the running call to end, up to its deadline plus `grace`; true if it ended.
  bool drain(milliseconds grace) {
    std::unique_lock lock(mutex_);
    if (!in_flight_) return true;
    // Every call held (running or waiting) gets until its deadline; the latest one bounds the wait.
    std::optional<Clock::time_point> latest;
    bool unbounded = false;
    auto consider = [&](const std::optional<Clock::time_point>& deadline) {
      if (!deadline) unbounded = true;
      else if (!latest || *deadline > *latest) latest = deadline;
    };
    for (const auto& active : actives_) consider(active.deadline);
    for (const auto& job : jobs_) consider(job.deadline);
    if (unbounded || !latest) {
      // No deadline: wait as long as it takes; the coordinator's own stop timer bounds this.
      idle_.wait(lock, [this] { return !in_flight_; });
      return true;
    }
    return idle_.wait_until(lock, *latest + grace, [this] { return !in_flight_; });
  }

 private:
  struct Job {
    CallRequest request;
    const Tool* tool = nullptr;
    CancelToken cancel;
    std::optional<Clock::time_point> deadline;
  };
  // At most concurrency_ calls running and one waiting: the coordinator pipelines the next call so
  // the worker does not sit idle for a round trip between calls.
  struct Active {
    std::string id;
    CancelToken cancel;
    std::optional<Clock::time_point> deadline;
    bool deadline_passed = false;
  };

  const Tool* find(const std::string& name) const {
    for (const auto& t : tools_)
      if (t.name == name) return &t;
    return nullptr;
  }

  void send_error(const std::string& id, const char* kind, const std::string& message) {
    channel_.send({{"type", "error"}, {"id", id}, {"kind", kind}, {"message", message}});
  }

  void call_loop() {
    for (;;) {
      std::unique_lock lock(mutex_);
      job_ready_.wait(lock, [this] { return !jobs_.empty(); });
      Job job = std::move(jobs_.front());
      jobs_.pop_front();
      Active active;
      active.id = job.request.id;
      active.cancel = job.cancel;
      active.deadline = job.deadline;
      // Wake the watchdog only when this deadline comes before the one it sleeps towards: calls
      // finish long before their deadlines, so a wake-up per call would be a wasted switch.
      if (active.deadline && (!watch_wake_ || *active.deadline < *watch_wake_)) watch_.notify_one();
      auto slot = actives_.insert(actives_.end(), std::move(active));
      lock.unlock();
      run(job, slot);
    }
  }

  void watch_loop() {
    std::unique_lock lock(mutex_);
    for (;;) {
      std::optional<Clock::time_point> next;
      auto now = Clock::now();
      for (auto& active : actives_) {
        if (!active.deadline || active.deadline_passed) continue;
        if (now < *active.deadline) {
          if (!next || *active.deadline < *next) next = active.deadline;
          continue;
        }
        active.deadline_passed = true;
        active.cancel.cancel();
        telemetry_.log("warning", "call passed its deadline; cancelled", {{"call", active.id}});
      }
      // Woken early, by a new call, or at the deadline: look again.
      watch_wake_ = next;
      if (next) watch_.wait_until(lock, *next);
      else watch_.wait(lock);
    }
  }

  /// What a running call reports as progress: values only ever grow, and at most one frame per
  /// kProgressInterval goes out, except the final value (progress == total), which always does. A
  /// value held back by the rate limit is sent before the call's outcome.
  struct Progress {
    double last = -std::numeric_limits<double>::infinity();
    Clock::time_point last_sent{};
    std::optional<json> held;
  };

  void run(Job& job, std::list<Active>::iterator slot) {
    const CallRequest& call = job.request;
    const Tool& tool = *job.tool;
    Progress progress;
    ToolContext context;
    context.roots = config_.roots;
    context.root_dirs = root_dirs_;
    context.cancel = job.cancel;
    context.max_file_bytes = config_.max_file_bytes;
    context.max_result_bytes = config_.max_result_bytes;
    context.max_result_depth = config_.max_result_depth;
    context.allow_writes = config_.allow_writes;
    context.progress = [&](double done, double total, const std::string& message) {
      if (!std::isfinite(done) || done <= progress.last) return;
      if (!std::isfinite(total) || total < 0) total = 0;
      progress.last = done;
      json frame = {{"type", "progress"}, {"id", call.id}, {"progress", number(done)}, {"total", number(total)},
                    {"message", message}};
      auto now = Clock::now();
      if ((total > 0 && done >= total) || now - progress.last_sent >= kProgressInterval) {
        channel_.send(frame);
        progress.last_sent = now;
        progress.held.reset();
      } else {
        progress.held = std::move(frame);
      }
    };
    context.log = [&](const std::string& level, const std::string& message) {
      telemetry_.log(level, message, {{"call", call.id}});
    };

    const bool debug = telemetry_.wants(kDebugRank);
    if (debug) telemetry_.log("debug", "call started", {{"call", call.id}, {"tool", tool.name}});
    auto started = Clock::now();
    ToolRun outcome;
    // A handler never sees arguments its schema excludes (some index into them without looking).
    // A call the coordinator marks validated was checked against the same schema (both take it
    // from the family's library), so it is not checked twice.
    std::optional<std::string> invalid;
    if (!call.validated && (tool.input_schema.is_object() || tool.input_schema.is_boolean()))
      invalid = validate_schema(tool.input_schema, call.arguments);
    if (invalid) {
      outcome.status = ToolRun::Status::tool_error;
      outcome.error = *invalid;
    }
    std::optional<CacheVoucher> voucher;
    if (!invalid) {
      // The state before the handler reads anything: a change while it runs moves the state, so
      // the answer is never served for a state it may not reflect.
      voucher = cache_voucher(tool, call.arguments, config_.roots);
      outcome = run_tool(tool, call.arguments, context);
    }
    if (progress.held) channel_.send(*progress.held);

    std::string frame = outcome_frame(call.id, tool, std::move(outcome), voucher);
    if (debug) {
      auto ms = std::chrono::duration_cast<milliseconds>(Clock::now() - started).count();
      telemetry_.log("debug", "call finished", {{"call", call.id}, {"tool", tool.name}, {"ms", ms}});
    }
    {
      // Idle before the outcome goes out: the coordinator may send the next call the moment it
      // reads this one's result, and that call must not be refused as busy.
      std::lock_guard lock(mutex_);
      actives_.erase(slot);
      ++counters_.calls_served;
    }
    channel_.send_raw(frame);
    std::lock_guard lock(mutex_);
    in_flight_ = !actives_.empty() || !jobs_.empty();
    idle_.notify_all();
  }

  /// The encoded result or error frame for a finished call.
  std::string outcome_frame(const std::string& id, const Tool& tool, ToolRun outcome,
                            const std::optional<CacheVoucher>& voucher) {
    auto error = [&](const char* kind, const std::string& message) {
      return encode_frame(
          {{"type", "error"}, {"id", id}, {"kind", kind}, {"message", message}, {"peak_rss_bytes", peak_rss_bytes()}});
    };
    switch (outcome.status) {
      case ToolRun::Status::ok: break;
      case ToolRun::Status::tool_error: return error("tool_error", outcome.error);
      case ToolRun::Status::cancelled: return error("cancelled", outcome.error);
      case ToolRun::Status::failed: return error("failed", outcome.error);
    }
    if (diverge_ && outcome.result.structured.is_object()) outcome.result.structured["diverged"] = true;
    std::string frame;
    try {
      // The result goes as the frame's raw part, already in the form the client gets: the
      // coordinator checks it and passes it on without parsing it again.
      // The header is written by hand, sparing a json value and its dump on every call. The id
      // came in a frame, so it is UTF-8; a tag is a path, which may not be.
      std::string header = R"({"type":"result","id":)";
      append_json_string(header, id);
      header += R"(,"peak_rss_bytes":)";
      header += std::to_string(peak_rss_bytes());
      if (voucher) {
        header += R"(,"cache":{"state":)";
        append_json_string(header, voucher->state);
        header += R"(,"tag":)";
        append_json_text(header, voucher->tag);
        header += '}';
      }
      header += '}';
      frame = encode_frame_with_raw_text(header, result_body(tool, outcome.result));
    } catch (const std::exception& e) {
      return error("failed", "tool '" + tool.name + "' returned a result that cannot be sent: " + e.what());
    }
    // A frame over the coordinator's limit would make it kill us as a protocol breaker.
    if (frame.size() - frame_header_bytes > FrameReader::default_max_frame_bytes)
      return error("failed", "tool '" + tool.name + "' returned " + std::to_string(frame.size()) +
                                 " bytes, over the frame limit of " +
                                 std::to_string(FrameReader::default_max_frame_bytes));
    return frame;
  }

  const WorkerConfig& config_;
  const std::shared_ptr<const RootDirs> root_dirs_;  // opened once, before any call
  const std::vector<Tool> tools_;
  FrameChannel& channel_;
  Telemetry& telemetry_;
  Counters& counters_;
  const bool diverge_;
  const std::size_t concurrency_;  // calls running at once
  mutable std::mutex mutex_;
  std::condition_variable job_ready_, watch_, idle_;
  std::deque<Job> jobs_;          // submitted, not yet taken by a call thread
  std::list<Active> actives_;     // from a call thread taking it until just before its outcome is sent
  bool in_flight_ = false;        // from submit until its outcome has been sent
  std::optional<Clock::time_point> watch_wake_;  // when the watchdog wakes next; nullopt: when told
};

/// test_fault as the runtime serves it when test hooks are on (see the header).
Tool runtime_fault_tool(FrameChannel& channel, bool idempotent) {
  Tool tool = test_fault_tool(idempotent);
  tool.handler = [&channel](const json& arguments, ToolContext&) -> ToolResult {
    std::string fault = arguments.value("fault", "");
    ToolResult result;
    if (fault == "ok") {
      result.structured = {{"fault", "none"}};
    } else if (fault == "crash") {
      rlimit no_core{0, 0};
      ::setrlimit(RLIMIT_CORE, &no_core);
      std::abort();
    } else if (fault == "hang") {
      for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
    } else if (fault == "garbage") {
      channel.send_raw(kGarbage);
      result.structured = {{"fault", "garbage"}};
    } else if (fault == "exit") {
      quit(7);
    } else if (fault == "leak") {
      static std::mutex leaked_mutex;
      static std::vector<std::unique_ptr<char[]>> leaked;
      auto mb = arguments.value("mb", std::int64_t{64});
      std::lock_guard lock(leaked_mutex);
      for (std::int64_t i = 0; i < mb; ++i) {
        leaked.emplace_back(new char[1u << 20]);
        std::memset(leaked.back().get(), 0x5a, 1u << 20);  // touched, so resident
      }
      result.structured = {{"fault", "leak"}, {"mb", mb}, {"rss_bytes", rss_bytes()}};
    } else if (fault == "socket") {
      int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      if (fd >= 0) ::close(fd);
      result.structured = {{"fault", "socket"}, {"allowed", true}};
    } else if (fault == "exec") {
      char path[] = "/nonexistent/mcpd-test-exec";
      char* argv[] = {path, nullptr};
      char* envp[] = {nullptr};
      ::execve(path, argv, envp);
      result.structured = {{"fault", "exec"}, {"allowed", true}};
    } else if (fault == "namespace") {
      // clone into a new user namespace, the way around a denied unshare; the child, if any, leaves.
      long child = ::syscall(SYS_clone, CLONE_NEWUSER | SIGCHLD, 0, 0, 0, 0);
      if (child == 0) ::_exit(0);
      if (child > 0) ::waitpid(static_cast<pid_t>(child), nullptr, 0);
      result.structured = {{"fault", "namespace"}, {"allowed", true}};
    } else if (fault == "confinement") {
      result.structured = {{"fault", "confinement"},
                           {"dumpable", ::prctl(PR_GET_DUMPABLE, 0, 0, 0, 0)},
                           {"no_new_privs", ::prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)}};
    } else if (fault == "deep") {
      json value = json::array();
      for (int level = 0; level < 600; ++level) value = json::array({std::move(value)});
      result.structured = {{"fault", "deep"}, {"value", std::move(value)}};
    } else if (fault == "stdout") {
      std::printf("stray printf from a tool\n");
      std::cout << "stray std::cout from a tool" << std::endl;
      constexpr std::string_view raw = "stray write(1) from a tool\n";
      ssize_t ignored = ::write(STDOUT_FILENO, raw.data(), raw.size());
      (void)ignored;
      std::fflush(stdout);
      result.structured = {{"fault", "stdout"}};
    } else {
      throw ToolError("unknown fault '" + fault + "'");
    }
    return result;
  };
  return tool;
}

/// Moves the frame channel off fds 0 and 1: frames go to private close-on-exec copies, stdout
/// becomes stderr (a library's stray printf must not corrupt a frame) and stdin becomes /dev/null
/// (a child a tool starts must not eat our frames). Returns {in, out} or nullopt.
std::optional<std::pair<int, int>> claim_channel() {
  int in = ::fcntl(STDIN_FILENO, F_DUPFD_CLOEXEC, 3);
  int out = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
  if (in < 0 || out < 0) return std::nullopt;
  if (::dup2(STDERR_FILENO, STDOUT_FILENO) < 0) return std::nullopt;
  int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (null < 0 || ::dup2(null, STDIN_FILENO) < 0) return std::nullopt;
  ::close(null);
  // Stray output now reaches stderr a line at a time instead of sitting in a buffer until exit.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return std::make_pair(in, out);
}

/// The owner's side of cached answers (CachePolicy::custom), on a thread of its own so that a slow
/// check never holds up pings and cancels: answers the coordinator's validate frames (is this state
/// still current?) and, every kFreshnessInterval, asks each distinct CacheWatch of the tools what
/// changed and pushes that as one invalidate frame.
class Freshness {
 public:
  Freshness(const WorkerConfig& config, const std::vector<Tool>& tools, FrameChannel& channel)
      : config_(config), tools_(tools), channel_(channel) {
    for (const auto& tool : tools_)
      if (tool.cache_watch && std::find(watches_.begin(), watches_.end(), tool.cache_watch) == watches_.end())
        watches_.push_back(tool.cache_watch);
  }

  void start() { std::thread([this] { run(); }).detach(); }

  struct Check {
    std::string id, tool, state;
    json arguments;
  };

  void validate(Check check) {
    std::lock_guard lock(mutex_);
    checks_.push_back(std::move(check));
    wake_.notify_one();
  }

 private:
  static constexpr milliseconds kFreshnessInterval{100};

  void run() {
    auto next_poll = Clock::now() + kFreshnessInterval;
    for (;;) {
      std::optional<Check> check;
      {
        std::unique_lock lock(mutex_);
        // A kind with nothing watched has nothing to poll: it wakes only for checks.
        if (watches_.empty()) wake_.wait(lock, [this] { return !checks_.empty(); });
        else wake_.wait_until(lock, next_poll, [this] { return !checks_.empty(); });
        if (!checks_.empty()) {
          check = std::move(checks_.front());
          checks_.pop_front();
        }
      }
      if (check) answer(*check);
      if (!watches_.empty() && Clock::now() >= next_poll) {
        push_changes();
        next_poll = Clock::now() + kFreshnessInterval;
      }
    }
  }

  void answer(const Check& check) {
    bool current = false;
    for (const auto& tool : tools_)
      if (tool.name == check.tool) current = cache_state_current(tool, check.arguments, config_.roots, check.state);
    channel_.send({{"type", "validated"}, {"id", check.id}, {"current", current}});
  }

  void push_changes() {
    json tags = json::array();
    for (const auto& watch : watches_) {
      try {
        for (auto& tag : watch->changed()) tags.push_back(std::move(tag));
      } catch (const std::exception&) {
        // A watch that cannot tell leaves its entries to the validation before each hit.
      }
    }
    if (!tags.empty()) channel_.send({{"type", "invalidate"}, {"tags", std::move(tags)}});
  }

  const WorkerConfig& config_;
  const std::vector<Tool>& tools_;
  FrameChannel& channel_;
  std::vector<std::shared_ptr<CacheWatch>> watches_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Check> checks_;
};

/// The main thread: reads frames from the coordinator and acts on each.
class FrameLoop {
 public:
  FrameLoop(int in_fd, FrameChannel& channel, Telemetry& telemetry, CallRunner& runner, Freshness& freshness,
            const Counters& counters, std::function<void()> before_exit)
      : in_fd_(in_fd),
        channel_(channel),
        telemetry_(telemetry),
        runner_(runner),
        freshness_(freshness),
        counters_(counters),
        before_exit_(std::move(before_exit)) {}

  [[noreturn]] void run() {
    FrameReader reader;
    std::string buffer(64 * 1024, '\0');
    for (;;) {
      ssize_t n = ::read(in_fd_, buffer.data(), buffer.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wait_ready(in_fd_, POLLIN);
        continue;
      }
      if (n < 0) {
        say(std::string("reading stdin failed: ") + std::strerror(errno) + "; exiting");
        break;
      }
      if (n == 0) break;
      reader.feed(buffer.data(), static_cast<std::size_t>(n));
      for (;;) {
        auto event = reader.next();
        if (event.kind == FrameReader::Event::Kind::need_more) break;
        if (event.kind == FrameReader::Event::Kind::error) broken("a bad frame: " + event.error.message);
        dispatch(event.frame);
      }
    }
    if (auto error = reader.finish()) say("stdin closed mid-frame (" + error->message + "); exiting");
    // The coordinator is gone: nobody wants the running call's outcome, and a tool that ignores
    // its token must not keep us alive.
    runner_.cancel_running();
    runner_.wait_idle(Clock::now() + kEofGrace);
    if (before_exit_) before_exit_();
    telemetry_.flush();
    quit(0);
  }

 private:
  void dispatch(json& frame) {
    auto type = frame.find("type");
    if (type == frame.end() || !type->is_string()) broken("a frame without a string \"type\"");
    const std::string& name = type->get_ref<const std::string&>();
    if (name == "call") {
      runner_.submit(parse_call(frame));
    } else if (name == "cancel") {
      runner_.cancel(string_member(frame, "id"));
    } else if (name == "validate") {
      Freshness::Check check{string_member(frame, "id"), string_member(frame, "tool"), string_member(frame, "state"),
                             json::object()};
      if (auto arguments = frame.find("arguments"); arguments != frame.end()) {
        if (!arguments->is_object()) broken("validate '" + check.id + "' with \"arguments\" that are not an object");
        check.arguments = std::move(*arguments);
      }
      freshness_.validate(std::move(check));
    } else if (name == "ping") {
      auto seq = frame.find("seq");
      if (seq == frame.end() || !seq->is_number_integer()) broken("a ping without an integer \"seq\"");
      channel_.send({{"type", "pong"},
                     {"seq", *seq},
                     {"busy", runner_.busy()},
                     {"running", runner_.running()},
                     {"calls", counters_.calls_served.load()},
                     {"rss_bytes", rss_bytes()}});
    } else if (name == "shutdown") {
      telemetry_.log("debug", "shutdown requested");
      if (!runner_.drain(kShutdownGrace)) say("shutdown: the running call did not end in time; exiting without it");
      if (before_exit_) before_exit_();
      telemetry_.flush();
      quit(0);
    } else {
      broken("a frame of unknown type '" + name + "'");
    }
  }

  /// The call in `frame`, whose arguments it takes.
  CallRequest parse_call(json& frame) {
    CallRequest call;
    call.id = string_member(frame, "id");
    call.tool = string_member(frame, "tool");
    if (auto arguments = frame.find("arguments"); arguments != frame.end()) {
      if (!arguments->is_object()) broken("call '" + call.id + "' with \"arguments\" that are not an object");
      call.arguments = std::move(*arguments);
    }
    if (auto validated = frame.find("validated"); validated != frame.end()) {
      if (!validated->is_boolean()) broken("call '" + call.id + "' with a \"validated\" that is not a boolean");
      call.validated = validated->get<bool>();
    }
    if (auto deadline = frame.find("deadline_ms"); deadline != frame.end()) {
      if (!deadline->is_number() || deadline->get<double>() <= 0)
        broken("call '" + call.id + "' with a \"deadline_ms\" that is not a positive number");
      // Capped at about 30 years, so that now + deadline cannot overflow the clock.
      double ms = std::min(std::ceil(deadline->get<double>()), 1e12);
      call.deadline = milliseconds(static_cast<std::int64_t>(ms));
    }
    return call;
  }

  std::string string_member(const json& frame, const char* key) {
    auto it = frame.find(key);
    if (it == frame.end() || !it->is_string() || it->get_ref<const std::string&>().empty())
      broken(frame.value("type", "") + " frame without a string \"" + key + "\"");
    return it->get<std::string>();
  }

  /// The coordinator broke the protocol: it is broken, and guessing what it meant would only hide
  /// that. Say what arrived and exit 3.
  [[noreturn]] void broken(const std::string& what) {
    say("protocol error: the coordinator sent " + what + "; exiting");
    runner_.cancel_running();
    quit(3);
  }

  int in_fd_;
  FrameChannel& channel_;
  Telemetry& telemetry_;
  CallRunner& runner_;
  Freshness& freshness_;
  const Counters& counters_;
  std::function<void()> before_exit_;
};

std::uint64_t positive_integer(const json& config, const char* key, std::uint64_t fallback) {
  auto it = config.find(key);
  if (it == config.end()) return fallback;
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > 0) return it->get<std::uint64_t>();
  throw std::invalid_argument(std::string(key) + ": must be a positive integer, got " + it->dump());
}

}  // namespace

json worker_family_settings(const std::string& kind) {
  const char* text = std::getenv(worker_protocol::config_env);
  if (!text) return json::object();
  json config = json::parse(text, nullptr, false);
  if (!config.is_object() || !config.contains("settings") || !config["settings"].is_object()) return json::object();
  const json& settings = config["settings"];
  auto it = settings.find(kind);
  return it != settings.end() && it->is_object() ? *it : json::object();
}

WorkerConfig parse_worker_config(std::string_view text) {
  JsonText parsed = parse_json_text(text);
  if (!parsed.ok) throw std::invalid_argument("not JSON: " + parsed.error);
  const json& object = parsed.value;
  if (!object.is_object()) throw std::invalid_argument("must be a JSON object, got " + object.dump());
  WorkerConfig config;
  if (auto roots = object.find("roots"); roots != object.end()) {
    if (!roots->is_array()) throw std::invalid_argument("roots: must be an array of directories");
    for (const auto& root : *roots) {
      if (!root.is_string() || root.get_ref<const std::string&>().empty())
        throw std::invalid_argument("roots: every entry must be a non-empty string, got " + root.dump());
      std::error_code ec;
      fs::path path = fs::canonical(root.get<std::string>(), ec);
      if (ec) throw std::invalid_argument("roots: '" + root.get<std::string>() + "' does not exist");
      if (!fs::is_directory(path))
        throw std::invalid_argument("roots: '" + root.get<std::string>() + "' is not a directory");
      config.roots.push_back(path);
    }
  }
  if (config.roots.empty()) config.roots.push_back(fs::canonical(fs::current_path()));
  config.max_file_bytes = positive_integer(object, "max_file_bytes", config.max_file_bytes);
  config.max_result_bytes = positive_integer(object, "max_result_bytes", config.max_result_bytes);
  config.max_result_depth = positive_integer(object, "max_result_depth", config.max_result_depth);
  if (auto level = object.find("log_level"); level != object.end()) {
    if (!level->is_string() || log_level_rank(level->get_ref<const std::string&>()) < 0)
      throw std::invalid_argument("log_level: must be one of debug, info, notice, warning, error, critical, "
                                  "alert, emergency; got " + level->dump());
    config.log_level = level->get<std::string>();
  }
  if (auto hooks = object.find("test_hooks"); hooks != object.end()) {
    if (!hooks->is_boolean()) throw std::invalid_argument("test_hooks: must be true or false, got " + hooks->dump());
    config.test_hooks = hooks->get<bool>();
  }
  if (auto writes = object.find("allow_writes"); writes != object.end()) {
    if (!writes->is_boolean()) throw std::invalid_argument("allow_writes: must be true or false, got " + writes->dump());
    config.allow_writes = writes->get<bool>();
  }
  if (auto seccomp = object.find("seccomp"); seccomp != object.end()) {
    if (!seccomp->is_boolean()) throw std::invalid_argument("seccomp: must be true or false, got " + seccomp->dump());
    config.seccomp = seccomp->get<bool>();
  }
  return config;
}

Tool test_fault_tool(bool idempotent) {
  Tool tool;
  tool.name = idempotent ? "test_fault_idempotent" : "test_fault";
  tool.title = "Fault injection (test only)";
  tool.description =
      "Test tool: makes the worker process running it fail on purpose (crash, hang, garbage on the frame "
      "channel, exit, leak memory, write to stdout) so the coordinator's recovery can be tested. Works only "
      "inside a worker started with test hooks on; anywhere else it refuses.";
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"fault",
         {{"type", "string"},
          {"enum", {"ok", "crash", "hang", "garbage", "exit", "leak", "stdout", "socket", "exec", "namespace",
                    "confinement", "deep"}},
          {"description", "which fault to inject"}}},
        {"mb",
         {{"type", "integer"},
          {"minimum", 1},
          {"maximum", 65536},
          {"description", "MiB to allocate and keep for fault \"leak\" (default 64)"}}}}},
      {"required", {"fault"}},
      {"additionalProperties", false}};
  tool.output_schema = {{"type", "object"},
                        {"properties",
                         {{"fault", {{"type", "string"}}},
                          {"allowed", {{"type", "boolean"}}},
                          {"dumpable", {{"type", "integer"}}},
                          {"no_new_privs", {{"type", "integer"}}},
                          {"mb", {{"type", "integer"}}},
                          {"rss_bytes", {{"type", "integer"}}}}}};
  // test_fault is not idempotent (a retry after "crash" would only crash another worker);
  // test_fault_idempotent claims it is, so the pool retries it and meets a poison pill.
  tool.annotations = {false, !idempotent, idempotent, false};
  tool.cache = CachePolicy::never;
  tool.handler = [](const json&, ToolContext&) -> ToolResult {
    throw ToolError("test_fault tools only work inside a worker process with test hooks enabled");
  };
  return tool;
}

int run_worker(const std::string& kind, std::vector<Tool> tools, std::function<void()> before_exit,
               std::size_t max_concurrent_calls) {
  // Die with the coordinator. The parent may have died before prctl took effect; then getppid()
  // has already changed and nobody will ever signal us.
  pid_t parent = ::getppid();
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) say(std::string("prctl(PR_SET_PDEATHSIG): ") + std::strerror(errno));
  if (::getppid() != parent) return 0;
  std::signal(SIGPIPE, SIG_IGN);  // a coordinator that hangs up is a failed write, not a signal
  stderr_prefix() = "mcpd-worker-" + kind + "[" + std::to_string(::getpid()) + "]";
  // The coordinator may cap our address space (RLIMIT_AS); every malloc arena reserves 64 MiB of
  // it, and a worker with one call at a time gains nothing from more than two.
  ::mallopt(M_ARENA_MAX, 2);

  auto fds = claim_channel();
  if (!fds) {
    say(std::string("cannot set up the frame channel on stdin/stdout: ") + std::strerror(errno));
    return 1;
  }

  const char* config_text = std::getenv(worker_protocol::config_env);
  if (config_text == nullptr) {
    say(std::string(worker_protocol::config_env) + " is not set; a worker is started by mcpd, which passes its "
        "configuration there");
    return 2;
  }
  WorkerConfig config;
  try {
    config = parse_worker_config(config_text);
  } catch (const std::exception& e) {
    say(std::string("invalid ") + worker_protocol::config_env + ": " + e.what());
    return 2;
  }

  std::string fault;
  bool diverge = false;
  if (config.test_hooks) {
    const char* value = std::getenv(kFaultEnv);
    fault = value ? value : "";
    // "exit_before_hello_while:PATH" crash-loops only while PATH exists: a broken kind that a test
    // can then repair, to watch the breaker close again.
    const std::string while_prefix = "exit_before_hello_while:";
    if (fault.rfind(while_prefix, 0) == 0) {
      std::error_code ec;
      fault = std::filesystem::exists(fault.substr(while_prefix.size()), ec) ? "exit_before_hello" : "";
    }
    if (!fault.empty() && fault != "exit_before_hello" && fault != "bad_version" && fault != "garbage_hello") {
      say(std::string("invalid ") + kFaultEnv + " '" + fault +
          "'; use exit_before_hello, exit_before_hello_while:PATH, bad_version or garbage_hello");
      return 2;
    }
    const char* d = std::getenv(kDivergeEnv);
    diverge = d != nullptr && std::string_view(d) == "1";
    say("test hooks are on" + (fault.empty() ? std::string() : ", fault " + fault) + (diverge ? ", diverging" : ""));
  }
  if (fault == "exit_before_hello") return 1;

  // Confinement, now that the libraries are loaded and the kind's own startup (the Modbus poller's
  // database, for one) is done. Non-dumpable: no core file, and other processes of our user cannot
  // attach to us or read our memory; it has to be set here because exec resets it.
  if (::prctl(PR_SET_DUMPABLE, 0) != 0) {
    say(std::string("prctl(PR_SET_DUMPABLE, 0): ") + std::strerror(errno));
    return 4;
  }
  if (config.seccomp) {
    try {
      install_seccomp_filter(kind, stderr_prefix());
    } catch (const std::exception& e) {
      say(std::string("cannot install the seccomp filter: ") + e.what());
      return 4;
    }
  } else {
    say("seccomp filter off (worker_seccomp is false)");
  }

  // Locals from here on live until quit(): every path below ends the process without returning,
  // so the detached threads may hold references to them.
  FrameChannel channel(fds->second);
  json names = json::array();
  for (const auto& tool : tools) names.push_back(tool.name);
  if (config.test_hooks) {
    for (bool idempotent : {false, true}) {
      Tool fault_tool = runtime_fault_tool(channel, idempotent);
      bool listed = false;
      for (auto& tool : tools)
        if (tool.name == fault_tool.name) {
          tool = fault_tool;
          listed = true;
        }
      if (!listed) tools.push_back(std::move(fault_tool));
    }
  }

  if (fault == "garbage_hello") {
    channel.send_raw(kGarbage);
  } else {
    channel.send({{"type", "hello"},
                  {"protocol", fault == "bad_version" ? 99 : worker_protocol::version},
                  {"kind", kind},
                  {"version", MCPD_VERSION},
                  {"pid", ::getpid()},
                  {"tools", names},
                  {"max_calls", std::max<std::size_t>(max_concurrent_calls, 1)},
                  {"max_waiting", kMaxWaiting}});
  }

  Counters counters;
  Telemetry telemetry(channel, log_level_rank(config.log_level), counters);
  CallRunner runner(config, std::move(tools), channel, telemetry, counters, diverge, max_concurrent_calls);
  Freshness freshness(config, runner.tools(), channel);
  telemetry.start();
  runner.start();
  freshness.start();
  FrameLoop(fds->first, channel, telemetry, runner, freshness, counters, std::move(before_exit)).run();
}

}  // namespace mcpd
