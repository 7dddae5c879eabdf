#include "mcp_load_proc.h"

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <fstream>
#include <random>
#include <sstream>
#include <string>

namespace mcpd::load {

namespace {

std::string read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

template <class T>
bool to_number(std::string_view s, T& value) {
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  return ec == std::errc() && ptr == s.data() + s.size();
}

std::vector<pid_t> numeric_entries(const std::string& dir) {
  std::vector<pid_t> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    pid_t n = 0;
    if (to_number(std::string_view(e->d_name), n)) out.push_back(n);
  }
  ::closedir(d);
  return out;
}

bool kernel_lists_children() {
  // CONFIG_PROC_CHILDREN; without it, scan the whole process table.
  static const bool has = ::access(("/proc/self/task/" + std::to_string(::getpid()) + "/children").c_str(), R_OK) == 0;
  return has;
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) {
  ProcStat s;
  auto open = text.find(" (");
  auto close = text.rfind(')');
  if (open == std::string_view::npos || close == std::string_view::npos || close < open) return std::nullopt;
  if (!to_number(text.substr(0, open), s.pid)) return std::nullopt;
  // Fields after the command, numbered as in proc(5): 3 state, 4 ppid, 14 utime, 15 stime,
  // 16 cutime, 17 cstime, 24 rss.
  std::vector<std::string_view> fields;
  std::size_t i = close + 1;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == '\n')) ++i;
    std::size_t start = i;
    while (i < text.size() && text[i] != ' ' && text[i] != '\n') ++i;
    if (i > start) fields.push_back(text.substr(start, i - start));
  }
  auto field = [&](int number) { return fields[static_cast<std::size_t>(number - 3)]; };
  if (fields.size() < 22 || field(3).size() != 1) return std::nullopt;
  s.state = field(3)[0];
  long long cutime = 0, cstime = 0;  // signed in proc(5)
  if (!to_number(field(4), s.ppid) || !to_number(field(14), s.utime) || !to_number(field(15), s.stime) ||
      !to_number(field(16), cutime) || !to_number(field(17), cstime))
    return std::nullopt;
  long long rss = 0;
  if (!to_number(field(24), rss)) return std::nullopt;
  s.cutime = static_cast<std::uint64_t>(std::max(0LL, cutime));
  s.cstime = static_cast<std::uint64_t>(std::max(0LL, cstime));
  s.rss_pages = static_cast<std::uint64_t>(std::max(0LL, rss));
  return s;
}

std::optional<ProcStat> read_proc_stat(pid_t pid) {
  std::string text = read_small_file("/proc/" + std::to_string(pid) + "/stat");
  if (text.empty()) return std::nullopt;
  return parse_proc_stat(text);
}

std::vector<pid_t> children_of(pid_t pid) {
  std::vector<pid_t> out;
  if (kernel_lists_children()) {
    std::string task_dir = "/proc/" + std::to_string(pid) + "/task";
    for (pid_t tid : numeric_entries(task_dir)) {
      std::istringstream in(read_small_file(task_dir + "/" + std::to_string(tid) + "/children"));
      pid_t child = 0;
      while (in >> child) out.push_back(child);
    }
  } else {
    for (pid_t candidate : numeric_entries("/proc")) {
      auto stat = read_proc_stat(candidate);
      if (stat && stat->ppid == pid) out.push_back(candidate);
    }
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<pid_t> descendants_of(pid_t pid) {
  std::vector<pid_t> out;
  std::vector<pid_t> frontier{pid};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    for (pid_t c : children_of(p)) {
      out.push_back(c);
      frontier.push_back(c);
    }
  }
  return out;
}

std::uint64_t vm_hwm_bytes(pid_t pid) {
  std::istringstream in(read_small_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) != 0) continue;
    std::istringstream fields(line.substr(6));
    std::uint64_t kib = 0;
    fields >> kib;
    return kib * 1024;
  }
  return 0;
}

TreeUsage tree_usage(pid_t root) {
  static const double ticks_per_s = static_cast<double>(::sysconf(_SC_CLK_TCK));
  static const std::uint64_t page_bytes = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  TreeUsage usage;
  std::vector<pid_t> pids = descendants_of(root);
  pids.insert(pids.begin(), root);
  std::uint64_t ticks = 0;
  for (pid_t pid : pids) {
    auto s = read_proc_stat(pid);
    if (!s) continue;
    ticks += s->utime + s->stime + s->cutime + s->cstime;
    usage.rss_bytes += s->rss_pages * page_bytes;
    ++usage.processes;
  }
  usage.cpu_s = static_cast<double>(ticks) / ticks_per_s;
  return usage;
}

// ---------------------------------------------------------------------------------------------
// Monitor

Monitor::Monitor(pid_t server, std::chrono::milliseconds sample_every, std::chrono::milliseconds chaos_every,
                 std::uint64_t seed)
    : server_(server), sample_every_(sample_every), chaos_every_(chaos_every), random_(seed) {
  thread_ = std::thread([this] { run(); });
}

Monitor::~Monitor() { stop(); }

void Monitor::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Monitor::set_chaos(bool on) {
  {
    std::lock_guard lock(mutex_);
    chaos_ = on && chaos_every_.count() > 0;
    if (chaos_) next_kill_ = Clock::now() + chaos_every_;
  }
  wake_.notify_all();
}

void Monitor::reset_peaks() {
  peak_rss_ = 0;
  peak_processes_ = 0;
}

std::vector<Monitor::Kill> Monitor::kills() const {
  std::lock_guard lock(mutex_);
  return kills_;
}

void Monitor::sample() {
  TreeUsage usage = tree_usage(server_);
  std::uint64_t rss = peak_rss_.load();
  while (usage.rss_bytes > rss && !peak_rss_.compare_exchange_weak(rss, usage.rss_bytes)) {
  }
  std::size_t processes = peak_processes_.load();
  while (usage.processes > processes && !peak_processes_.compare_exchange_weak(processes, usage.processes)) {
  }
}

void Monitor::kill_one() {
  std::vector<pid_t> candidates;
  for (pid_t child : children_of(server_)) {
    auto s = read_proc_stat(child);
    if (s && s->state != 'Z' && s->ppid == server_) candidates.push_back(child);
  }
  if (candidates.empty()) return;
  pid_t victim = candidates[std::uniform_int_distribution<std::size_t>(0, candidates.size() - 1)(random_)];
  if (::kill(victim, SIGKILL) == 0) {
    std::lock_guard lock(mutex_);
    kills_.push_back({Clock::now(), std::chrono::system_clock::now(), victim});
  }
}

void Monitor::run() {
  auto next_sample = Clock::now();
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = Clock::now();
    if (now >= next_sample) {
      lock.unlock();
      sample();
      lock.lock();
      next_sample = now + sample_every_;
      continue;
    }
    if (chaos_ && now >= next_kill_) {
      next_kill_ = now + chaos_every_;
      lock.unlock();
      kill_one();
      lock.lock();
      continue;
    }
    auto until = next_sample;
    if (chaos_) until = std::min(until, next_kill_);
    wake_.wait_until(lock, until);
  }
}

}  // namespace mcpd::load
