#include "mcp_load_driver.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <deque>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "jsonrpc.h"
#include "line_reader.h"
#include "mcp_client.h"
#include "mcp_load_proc.h"

namespace mcpd::load {

// ---------------------------------------------------------------------------------------------
// Command line

std::string usage() {
  return R"(usage: mcp-load [options] -- SERVER_CMD [ARGS...]
       mcp-load --compare [options] -- CMD_A [ARGS...] --vs CMD_B [ARGS...]
       mcp-load --compare [options] 'CMD A' 'CMD B'

Starts the MCP server (stdio), performs the handshake, drives tools/call load, reports.

workload
  --tool NAME            tool to call
  --args JSON            its arguments; every {k} becomes the call's sequence number
                         (in strings: "x{k}"; as a number: {"n": {k}})
  --mix FILE             weighted tools instead: [{"tool": ..., "args": {...}, "weight": 3}, ...]
  --seed N               seed of the mix draws and of the chaos victims (default 1)
load
  --concurrency N        closed loop: N calls outstanding (default 1)
  --rate R               open loop: R calls/s on a fixed schedule; latency counts from each
                         call's intended send time, so a slow server cannot hide queueing
  --calls N | --duration S   measured calls, or seconds of measured load (default 1000 calls)
  --warmup N             calls before the measured phase, not measured (default 0)
  --timeout-ms N         a call answered later than this is a timeout (default 30000); the run
                         waits this long (plus 1 s) after the last send for answers, then counts
                         the rest lost
  --protocol-version V   MCP version to ask for (default 2025-06-18)
faults
  --chaos-ms N           during the measured phase, SIGKILL a random child of the server every N ms
comparison
  --compare              run the workload against both servers, alternating A, B for --rounds
  --rounds R             rounds per side (default 3); medians per side and ratios B/A
output
  --json                 JSON report on stdout (the table always goes to stderr)
  --plot FILE            SVG: latency histogram and throughput over time
  --server-stderr FILE   where the server's stderr goes (default /dev/null; - for ours)
  --no-progress          no progress line (shown only when stderr is a terminal)

Percentiles are exact, nearest-rank over every measured call: pX is the smallest latency with at
least X% of the calls at or below it. Errors: jsonrpc (by code), tool (isError), timeout (answered
after --timeout-ms), lost (never answered). Exit status: 0; 1 when calls were lost, the server
died, or the run could not start (handshake, unknown tool); 2 for a bad command line.
)";
}

namespace {

std::uint64_t parse_count(const std::string& flag, const std::string& value, std::uint64_t min) {
  std::uint64_t n = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
  if (ec != std::errc() || ptr != value.data() + value.size() || n < min)
    throw UsageError(flag + ": expected an integer >= " + std::to_string(min) + ", got '" + value + "'");
  return n;
}

double parse_positive(const std::string& flag, const std::string& value) {
  try {
    std::size_t used = 0;
    double v = std::stod(value, &used);
    if (used == value.size() && v > 0 && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  throw UsageError(flag + ": expected a number > 0, got '" + value + "'");
}

}  // namespace

std::vector<std::string> split_command(const std::string& command) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  char quote = 0;
  for (std::size_t i = 0; i < command.size(); ++i) {
    char c = command[i];
    if (quote) {
      if (c == quote) quote = 0;
      else if (c == '\\' && quote == '"' && i + 1 < command.size()) word += command[++i];
      else word += c;
    } else if (c == '\'' || c == '"') {
      quote = c;
      in_word = true;
    } else if (c == '\\' && i + 1 < command.size()) {
      word += command[++i];
      in_word = true;
    } else if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
    } else {
      word += c;
      in_word = true;
    }
  }
  if (quote) throw UsageError("unbalanced quote in server command: " + command);
  if (in_word) words.push_back(std::move(word));
  return words;
}

Options parse_command_line(const std::vector<std::string>& args, bool* help) {
  Options o;
  if (help) *help = false;
  std::vector<std::string> positional;
  bool calls_given = false, duration_given = false, args_given = false;
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    std::string flag = args[i], value;
    if (flag == "--") {
      ++i;
      break;
    }
    if (flag.rfind("--", 0) != 0) {
      positional.push_back(flag);
      continue;
    }
    bool inline_value = false;
    if (auto eq = flag.find('='); eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
      inline_value = true;
    }
    auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= args.size()) throw UsageError(flag + ": needs a value");
      return args[++i];
    };
    auto no_value = [&] {
      if (inline_value) throw UsageError(flag + ": takes no value");
    };
    if (flag == "--help") {
      if (help) *help = true;
      return o;
    } else if (flag == "--tool") {
      o.tool = take();
    } else if (flag == "--args") {
      o.args = take();
      args_given = true;
    } else if (flag == "--mix") {
      o.mix_path = take();
    } else if (flag == "--concurrency") {
      o.concurrency = static_cast<unsigned>(std::min<std::uint64_t>(parse_count(flag, take(), 1), 1u << 20));
    } else if (flag == "--calls") {
      o.calls = parse_count(flag, take(), 1);
      calls_given = true;
    } else if (flag == "--duration") {
      o.duration_s = parse_positive(flag, take());
      duration_given = true;
    } else if (flag == "--rate") {
      o.rate = parse_positive(flag, take());
    } else if (flag == "--warmup") {
      o.warmup = parse_count(flag, take(), 0);
    } else if (flag == "--json") {
      no_value();
      o.json = true;
    } else if (flag == "--compare") {
      no_value();
      o.compare = true;
    } else if (flag == "--rounds") {
      o.rounds = static_cast<unsigned>(std::min<std::uint64_t>(parse_count(flag, take(), 1), 1000));
    } else if (flag == "--chaos-ms") {
      o.chaos_ms = parse_count(flag, take(), 1);
    } else if (flag == "--plot") {
      o.plot_path = take();
    } else if (flag == "--timeout-ms") {
      o.timeout_ms = parse_count(flag, take(), 1);
    } else if (flag == "--protocol-version") {
      o.protocol_version = take();
    } else if (flag == "--seed") {
      o.seed = parse_count(flag, take(), 0);
    } else if (flag == "--server-stderr") {
      o.server_stderr = take();
    } else if (flag == "--no-progress") {
      no_value();
      o.progress = false;
    } else {
      throw UsageError("unknown option " + flag + " (see --help)");
    }
  }
  std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(std::min(i, args.size())), args.end());

  if (calls_given && duration_given) throw UsageError("--calls and --duration: give one, not both");
  if (!calls_given && !duration_given) o.calls = 1000;
  if (o.tool.empty() == o.mix_path.empty()) throw UsageError("give either --tool NAME (with --args) or --mix FILE");
  if (args_given && !o.mix_path.empty()) throw UsageError("--args goes with --tool; a --mix entry has its own \"args\"");

  if (o.compare) {
    if (!rest.empty()) {
      if (!positional.empty()) throw UsageError("unexpected argument '" + positional[0] + "' before --");
      auto vs = std::find(rest.begin(), rest.end(), "--vs");
      if (vs == rest.end()) throw UsageError("--compare: separate the two server commands with --vs");
      o.server.assign(rest.begin(), vs);
      o.server_b.assign(vs + 1, rest.end());
    } else if (positional.size() == 2) {
      o.server = split_command(positional[0]);
      o.server_b = split_command(positional[1]);
    } else {
      throw UsageError("--compare: give two server commands: -- CMD A ARGS --vs CMD B ARGS");
    }
    if (o.server.empty() || o.server_b.empty()) throw UsageError("--compare: a server command is empty");
  } else {
    if (!positional.empty()) throw UsageError("unexpected argument '" + positional[0] + "': put the server command after --");
    if (rest.empty()) throw UsageError("no server command: mcp-load [options] -- SERVER_CMD [ARGS...]");
    o.server = rest;
  }
  return o;
}

Workload make_workload(const Options& options) {
  try {
    if (!options.mix_path.empty()) {
      std::ifstream in(options.mix_path);
      if (!in) throw UsageError("--mix: cannot read " + options.mix_path);
      json mix;
      try {
        mix = json::parse(in);
      } catch (const json::exception& e) {
        throw UsageError("--mix " + options.mix_path + ": not JSON: " + e.what());
      }
      return Workload::from_mix(mix, options.seed);
    }
    return Workload::single(options.tool, ArgsTemplate::parse(options.args));
  } catch (const std::invalid_argument& e) {
    throw UsageError((options.mix_path.empty() ? "--args: " : "--mix " + options.mix_path + ": ") + e.what());
  }
}

// ---------------------------------------------------------------------------------------------
// The driver

namespace {

using Clock = std::chrono::steady_clock;
constexpr std::int64_t kSecond = 1'000'000'000;

/// One call of the run. Times in ns from the driver's epoch; done_ns < 0 while unanswered.
struct CallRecord {
  enum class Outcome : std::uint8_t { pending, ok, tool_error, rpc_error, timeout };
  std::int64_t intended_ns = 0;
  std::int64_t sent_ns = 0;
  std::int64_t done_ns = -1;
  Outcome outcome = Outcome::pending;
  bool released = false;  // its timeout passed: it no longer holds a closed-loop slot
};

double harness_cpu_now() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  auto s = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return s(usage.ru_utime) + s(usage.ru_stime);
}

void set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

class Driver {
 public:
  Driver(const Options& options, const Workload& workload, ServerLink link, std::string label)
      : o_(options), w_(workload), link_(link), label_(label.empty() ? "mcp-load" : "mcp-load " + label), t0_(Clock::now()),
        timeout_ns_(static_cast<std::int64_t>(options.timeout_ms) * 1'000'000),
        show_progress_(options.progress && ::isatty(2)) {
    set_nonblocking(link_.to_server);
    set_nonblocking(link_.from_server);
  }

  RunReport run();

 private:
  std::int64_t now() const { return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - t0_).count(); }

  // I/O: everything goes through pump(), which writes what is pending, waits at most `wait_ns` for
  // the server, and handles every complete line that arrived.
  void pump(std::int64_t wait_ns);
  void flush();
  void read_available();
  void on_line(std::string_view line);
  void on_answer(std::uint64_t k, const ScannedMessage& m, std::string_view line);
  void keep_sample(const std::string& kind, std::string_view line, const std::string& prefix = "");
  void reply_to_server_request(const ScannedMessage& m, std::string_view line);

  json control(const std::string& method, const json& params);
  void handshake();
  json status_call();

  /// Sends calls [first, first + count) (count 0: until duration_ns has passed) and waits for their
  /// answers up to timeout after the last send.
  void run_phase(std::uint64_t count, std::int64_t duration_ns);
  void send_call(std::int64_t intended_ns);
  void expire(std::int64_t now_ns);
  void progress(std::int64_t now_ns, bool final_line = false);

  const Options& o_;
  const Workload& w_;
  ServerLink link_;
  std::string label_;
  Clock::time_point t0_;
  std::int64_t timeout_ns_;
  bool show_progress_;

  LineReader reader_{std::size_t{1} << 30};
  std::string out_;
  std::size_t out_sent_ = 0;
  std::string read_buffer_ = std::string(256 * 1024, '\0');

  std::vector<CallRecord> calls_;  // by sequence number k (also the request id)
  std::deque<std::uint64_t> order_;  // unreleased calls in send order (send times never decrease)
  std::uint64_t busy_ = 0;           // calls holding a closed-loop slot
  std::uint64_t unanswered_ = 0;     // sent calls without an answer
  std::uint64_t phase_first_ = 0;    // first k of the current phase
  std::uint64_t phase_unanswered_ = 0;  // sent calls of the current phase without an answer
  std::uint64_t measured_from_ = std::numeric_limits<std::uint64_t>::max();  // first measured k
  bool measuring_ = false;
  bool finalized_ = false;           // the measured phase's tally is closed
  bool write_closed_ = false;        // the server's stdin is gone: no more sends, answers may still come
  bool read_closed_ = false;         // the server's stdout is at EOF: nothing more will come

  std::uint64_t control_seq_ = 0;
  std::string control_id_;
  std::optional<std::string> control_reply_;

  RunReport report_;
  std::int64_t last_progress_ns_ = 0;
  std::uint64_t answered_ = 0, answered_at_last_progress_ = 0;
  std::uint64_t answered_after_end_ = 0;
};

void Driver::flush() {
  if (write_closed_) {
    out_.clear();
    out_sent_ = 0;
  }
  while (out_sent_ < out_.size()) {
    ssize_t n = ::write(link_.to_server, out_.data() + out_sent_, out_.size() - out_sent_);
    if (n > 0) {
      out_sent_ += static_cast<std::size_t>(n);
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      break;
    } else {
      write_closed_ = true;  // EPIPE: the server closed its stdin
      out_.clear();
      out_sent_ = 0;
    }
  }
  if (out_sent_ == out_.size()) {
    out_.clear();
    out_sent_ = 0;
  } else if (out_sent_ > (1u << 20)) {
    out_.erase(0, out_sent_);
    out_sent_ = 0;
  }
}

void Driver::pump(std::int64_t wait_ns) {
  flush();
  if (read_closed_) return;
  pollfd fds[2] = {{link_.from_server, POLLIN, 0}, {link_.to_server, POLLOUT, 0}};
  nfds_t n = out_.empty() ? 1 : 2;
  // ppoll: an open loop at thousands of calls per second needs sub-millisecond wake-ups.
  wait_ns = std::clamp<std::int64_t>(wait_ns, 0, kSecond);
  timespec timeout{static_cast<time_t>(wait_ns / kSecond), static_cast<long>(wait_ns % kSecond)};
  int r = ::ppoll(fds, n, &timeout, nullptr);
  if (r < 0) return;  // EINTR
  if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) read_available();
  if (n == 2 && fds[1].revents) flush();
}

void Driver::read_available() {
  for (int rounds = 0; rounds < 64; ++rounds) {
    ssize_t n = ::read(link_.from_server, read_buffer_.data(), read_buffer_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      read_closed_ = true;
      if (measuring_ && !finalized_) report_.server_exited = true;
      return;
    }
    reader_.feed(std::string_view(read_buffer_.data(), static_cast<std::size_t>(n)));
    for (;;) {
      auto event = reader_.next();
      if (event.kind == LineReader::Event::Kind::need_more) break;
      if (event.kind == LineReader::Event::Kind::line) on_line(event.line);
    }
    if (static_cast<std::size_t>(n) < read_buffer_.size()) return;
  }
}

void Driver::on_line(std::string_view line) {
  ScannedMessage m = scan_message(line);
  if (!m.valid) {
    ++report_.unmatched_responses;
    return;
  }
  if (m.has_method) {
    if (m.has_id) {
      ++report_.server_requests;
      reply_to_server_request(m, line);
    } else {
      ++report_.notifications;
    }
    return;
  }
  if (m.has_id && !m.id_is_integer && !m.id_string.empty()) {
    if (m.id_string == control_id_ && !control_reply_) control_reply_ = std::string(line);
    else ++report_.unmatched_responses;
    return;
  }
  if (!m.id_is_integer || m.id < 0 || static_cast<std::uint64_t>(m.id) >= calls_.size()) {
    ++report_.unmatched_responses;
    return;
  }
  on_answer(static_cast<std::uint64_t>(m.id), m, line);
}

void Driver::reply_to_server_request(const ScannedMessage& m, std::string_view line) {
  std::string id = m.id_is_integer ? std::to_string(m.id) : "\"" + std::string(m.id_string) + "\"";
  // ping must be answered; we declared no capabilities, so anything else is a method we lack.
  bool ping = false;
  try {
    ping = json::parse(line).value("method", "") == "ping";
  } catch (const json::exception&) {
  }
  if (ping) out_ += R"({"jsonrpc":"2.0","id":)" + id + R"(,"result":{}})" + "\n";
  else out_ += R"({"jsonrpc":"2.0","id":)" + id + R"(,"error":{"code":-32601,"message":"mcp-load offers no methods"}})" + "\n";
}

void Driver::keep_sample(const std::string& kind, std::string_view line, const std::string& prefix) {
  if (report_.errors.samples.count(kind)) return;
  // Only the first of each kind is parsed whole: errors are rare, or all alike.
  std::string message;
  try {
    json v = json::parse(line);
    if (v.contains("error")) {
      message = v["error"].value("message", v["error"].dump());
    } else if (v.contains("result")) {
      const json& content = v["result"].value("content", json::array());
      message = !content.empty() && content[0].contains("text") ? content[0]["text"].get<std::string>() : v["result"].dump();
      if (!v["result"].value("isError", false)) message = "(a result) " + message;
    }
  } catch (const json::exception&) {
    message = std::string(line);
  }
  message = prefix + message;
  if (message.size() > 300) message = message.substr(0, 297) + "...";
  report_.errors.samples[kind] = message;
}

void Driver::on_answer(std::uint64_t k, const ScannedMessage& m, std::string_view line) {
  CallRecord& c = calls_[k];
  if (c.done_ns >= 0) {
    ++report_.duplicate_responses;
    return;
  }
  c.done_ns = now();
  --unanswered_;
  ++answered_;
  if (!c.released) --busy_;
  if (k >= phase_first_) --phase_unanswered_;
  using O = CallRecord::Outcome;
  if (c.released || c.done_ns - c.sent_ns > timeout_ns_) c.outcome = O::timeout;
  else if (m.has_error) c.outcome = O::rpc_error;
  else if (m.tool_error) c.outcome = O::tool_error;
  else c.outcome = O::ok;

  if (k < measured_from_) {
    // A warm-up call still unanswered when the warm-up ended was counted as a failure then.
    if (!measuring_ && c.outcome != O::ok) ++report_.warmup_failures;
    return;
  }
  if (finalized_) {
    ++answered_after_end_;
    return;
  }
  switch (c.outcome) {
    case O::ok:
      ++report_.ok;
      break;
    case O::rpc_error:
      ++report_.errors.jsonrpc[m.error_code];
      keep_sample("jsonrpc " + std::to_string(m.error_code), line);
      break;
    case O::tool_error:
      ++report_.errors.tool;
      keep_sample("tool_error", line);
      break;
    case O::timeout:
      ++report_.errors.timeout;
      keep_sample("timeout", line, "answered after " + std::to_string((c.done_ns - c.sent_ns) / 1'000'000) + " ms: ");
      break;
    case O::pending:
      break;
  }
  // mcpd says hit (L1 cache), joined (shared an identical call in flight: served without running),
  // miss (ran) or bypass (ran, not cacheable).
  if (m.cache == "hit" || m.cache == "joined") ++report_.cache_hits;
  else if (m.cache == "miss" || m.cache == "bypass") ++report_.cache_misses;
  if (!m.cache.empty()) report_.cache_reported = true;
  if (!m.path.empty()) ++report_.paths[std::string(m.path)];
}

json Driver::control(const std::string& method, const json& params) {
  control_id_ = "mcp-load-" + std::to_string(++control_seq_);
  control_reply_.reset();
  out_ += encode_line(make_request(control_id_, method, params));
  // Control requests are not measured, and a server that is still starting (spawning workers, on a
  // loaded machine) may take a while: they get at least 30 s, whatever --timeout-ms says of calls.
  const std::int64_t budget = std::max<std::int64_t>(timeout_ns_, std::int64_t{30'000'000'000});
  std::int64_t deadline = now() + budget;
  while (!control_reply_ && !read_closed_ && now() < deadline) pump(deadline - now());
  if (!control_reply_) {
    throw std::runtime_error(read_closed_ ? "the server closed its stdout before answering " + method
                                          : "no answer to " + method + " within " +
                                                std::to_string(budget / 1'000'000) + " ms");
  }
  json reply = json::parse(*control_reply_);
  control_reply_.reset();
  if (reply.contains("error")) throw std::runtime_error(method + " failed: " + reply["error"].dump());
  return reply.value("result", json::object());
}

void Driver::handshake() {
  control("initialize", {{"protocolVersion", o_.protocol_version},
                         {"capabilities", json::object()},
                         {"clientInfo", {{"name", "mcp-load"}, {"version", "0.1.0"}}}});
  out_ += encode_line(make_notification("notifications/initialized"));
}

void Driver::send_call(std::int64_t intended_ns) {
  std::uint64_t k = calls_.size();
  w_.append_request(k, out_);
  CallRecord c;
  c.sent_ns = now();
  c.intended_ns = intended_ns < 0 ? c.sent_ns : intended_ns;
  calls_.push_back(c);
  order_.push_back(k);
  ++busy_;
  ++unanswered_;
  ++phase_unanswered_;
  // Write now rather than after the whole batch: the server starts on the first call sooner.
  if (out_.size() - out_sent_ >= 16 * 1024) flush();
}

void Driver::expire(std::int64_t now_ns) {
  while (!order_.empty()) {
    CallRecord& c = calls_[order_.front()];
    if (c.done_ns >= 0) {
      order_.pop_front();
    } else if (c.sent_ns + timeout_ns_ <= now_ns) {
      c.released = true;
      --busy_;
      order_.pop_front();
    } else {
      break;
    }
  }
}

void Driver::progress(std::int64_t now_ns, bool final_line) {
  if (!show_progress_) return;
  if (final_line) {
    std::fputs("\r\033[K", stderr);
    return;
  }
  if (now_ns - last_progress_ns_ < kSecond) return;
  double since = static_cast<double>(now_ns - last_progress_ns_) / 1e9;
  double rate = static_cast<double>(answered_ - answered_at_last_progress_) / since;
  last_progress_ns_ = now_ns;
  answered_at_last_progress_ = answered_;
  std::uint64_t failed = report_.errors.total() - report_.errors.lost;
  std::fprintf(stderr, "\r\033[K%s%s %.0fs  sent %zu  answered %llu  failed %llu  in flight %llu  %.0f calls/s",
               label_.c_str(), measuring_ ? "" : " warm-up", static_cast<double>(now_ns) / 1e9, calls_.size(),
               static_cast<unsigned long long>(answered_), static_cast<unsigned long long>(failed),
               static_cast<unsigned long long>(unanswered_), rate);
  std::fflush(stderr);
}

void Driver::run_phase(std::uint64_t count, std::int64_t duration_ns) {
  const std::uint64_t first = calls_.size();
  phase_first_ = first;
  phase_unanswered_ = 0;
  const std::int64_t start = now();
  const bool open = o_.rate > 0;
  // After the last send, answers are awaited for the timeout plus a grace second: a server that
  // answers a call just as its own deadline (often the same 30 s) expires has it counted as a
  // timeout, not lost. Lost means never answered.
  const std::int64_t drain_ns = timeout_ns_ + kSecond;
  const double interval_ns = open ? 1e9 / o_.rate : 0;
  std::int64_t last_send = start;
  auto sent = [&] { return calls_.size() - first; };
  auto intended = [&](std::uint64_t i) { return start + static_cast<std::int64_t>(std::llround(interval_ns * static_cast<double>(i))); };
  auto more = [&](std::int64_t t) {
    if (write_closed_ || read_closed_) return false;
    if (count) return sent() < count;
    return (open ? intended(sent()) : t) < start + duration_ns;
  };
  for (;;) {
    std::int64_t t = now();
    expire(t);
    bool sending = more(t);
    if (sending) {
      if (open) {
        while (more(t) && intended(sent()) <= t) send_call(intended(sent()));
      } else {
        while (more(t) && busy_ < o_.concurrency) send_call(-1);
      }
      last_send = t;
      sending = more(t);
    }
    progress(t);
    if (read_closed_) break;
    if (!sending && (phase_unanswered_ == 0 || t >= last_send + drain_ns)) break;
    // Sleep until the next thing we must do: a scheduled send, a timeout, the progress line.
    std::int64_t wake = t + kSecond;
    if (sending && open) wake = std::min(wake, intended(sent()));
    if (sending && count == 0) wake = std::min(wake, start + duration_ns);
    if (!sending) wake = std::min(wake, last_send + drain_ns);
    if (!order_.empty()) wake = std::min(wake, calls_[order_.front()].sent_ns + timeout_ns_);
    pump(wake - t);
  }
}

json Driver::status_call() {
  json result = control("tools/call", {{"name", "mcpd_status"}, {"arguments", json::object()}});
  if (result.value("isError", false)) throw std::runtime_error("mcpd_status: " + result.dump());
  return result.value("structuredContent", json::object());
}

/// Counters of a worker pool's status that count events (differences over the run make sense).
const char* const kPoolCounters[] = {"submitted",    "completed",         "failed",        "retried",
                                     "timeouts",     "cancelled",         "rejected",      "poison_pills",
                                     "restarts",     "crash_loop_deaths", "protocol_errors", "missed_pongs",
                                     "recycled",     "scale_ups",         "scale_downs"};

json pool_deltas(const json& before, const json& after) {
  json out = json::object();
  const json& pools_after = after["executor"]["pools"];
  if (!pools_after.is_object()) return out;
  for (const auto& [kind, pool] : pools_after.items()) {
    json entry = json::object();
    const json* old = nullptr;
    if (before.contains("executor") && before["executor"].contains("pools") && before["executor"]["pools"].contains(kind))
      old = &before["executor"]["pools"][kind];
    for (const char* key : kPoolCounters) {
      if (!pool.contains(key) || !pool[key].is_number_integer()) continue;
      long long v = pool[key].get<long long>();
      if (old && old->contains(key) && (*old)[key].is_number_integer()) v -= (*old)[key].get<long long>();
      entry[key] = v;
    }
    // Timings the pool keeps itself (windows of recent events), as they are at the end.
    for (const char* key : {"spawn_to_ready_ms", "loss_to_ready_ms"})
      if (pool.contains(key)) entry[key] = pool[key];
    if (pool.contains("breaker")) entry["breaker"] = pool["breaker"].value("state", "");
    if (pool.contains("workers") && pool["workers"].is_array()) entry["workers_at_end"] = pool["workers"].size();
    out[kind] = entry;
  }
  return out;
}

RunReport Driver::run() {
  report_.server = o_.server;
  report_.workload = w_.describe();
  report_.open_loop = o_.rate > 0;
  report_.concurrency = o_.concurrency;
  report_.rate = o_.rate;
  report_.warmup = o_.warmup;
  report_.timeout_ms = o_.timeout_ms;
  report_.chaos_ms = o_.chaos_ms;

  handshake();
  // The tools the server offers: refuse a workload it cannot serve, and find mcpd_status.
  std::vector<std::string> offered;
  json cursor = nullptr;
  do {
    json params = cursor.is_null() ? json::object() : json{{"cursor", cursor}};
    json listed = control("tools/list", params);
    for (const auto& t : listed.value("tools", json::array())) offered.push_back(t.value("name", ""));
    cursor = listed.value("nextCursor", json(nullptr));
  } while (cursor.is_string());
  for (const auto& e : w_.entries()) {
    if (std::find(offered.begin(), offered.end(), e.tool) != offered.end()) continue;
    std::string names;
    for (const auto& n : offered) names += (names.empty() ? "" : ", ") + n;
    throw std::runtime_error("the server does not offer tool '" + e.tool + "'; it offers: " + names);
  }
  bool has_status = std::find(offered.begin(), offered.end(), "mcpd_status") != offered.end();

  Monitor monitor(link_.pid, std::chrono::milliseconds(100), std::chrono::milliseconds(o_.chaos_ms), o_.seed);

  if (o_.warmup) run_phase(o_.warmup, 0);
  report_.warmup_failures += unanswered_;  // warm-up calls never answered

  // The server's counters from here on cover the measured phase only.
  json status_before;
  if (has_status) {
    try {
      status_before = status_call();
    } catch (const std::exception&) {
      has_status = false;
    }
  }

  measured_from_ = calls_.size();
  measuring_ = true;
  monitor.reset_peaks();
  TreeUsage usage_start = tree_usage(link_.pid);
  double harness_start = harness_cpu_now();
  const std::int64_t measured_start = now();
  monitor.set_chaos(true);
  run_phase(o_.duration_s > 0 ? 0 : o_.calls, static_cast<std::int64_t>(o_.duration_s * 1e9));
  monitor.set_chaos(false);

  // Close the tally: whatever is unanswered now is lost.
  finalized_ = true;
  progress(now(), true);
  TreeUsage usage_end = tree_usage(link_.pid);
  report_.harness_cpu_s = harness_cpu_now() - harness_start;
  report_.server_cpu_s = std::max(0.0, usage_end.cpu_s - usage_start.cpu_s);
  report_.server_vm_hwm_bytes = vm_hwm_bytes(link_.pid);
  monitor.stop();
  report_.peak_rss_bytes = std::max(monitor.peak_rss_bytes(), usage_end.rss_bytes);
  report_.peak_processes = std::max(monitor.peak_processes(), usage_end.processes);
  for (const auto& kill : monitor.kills()) {
    report_.kill_times_s.push_back(
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(kill.at - t0_).count() - measured_start) / 1e9);
    report_.killed_pids.push_back(kill.pid);
    report_.kill_unix_ms.push_back(
        std::chrono::duration_cast<std::chrono::milliseconds>(kill.wall.time_since_epoch()).count());
  }

  report_.calls = calls_.size() - measured_from_;
  std::int64_t last_answer = measured_start;
  std::vector<std::int64_t> latencies;
  latencies.reserve(report_.calls);
  for (std::uint64_t k = measured_from_; k < calls_.size(); ++k) {
    const CallRecord& c = calls_[k];
    if (c.done_ns < 0) {
      ++report_.errors.lost;
      continue;
    }
    latencies.push_back(c.done_ns - c.intended_ns);
    last_answer = std::max(last_answer, c.done_ns);
  }
  std::int64_t first_intended = report_.calls ? calls_[measured_from_].intended_ns : measured_start;
  report_.duration_s = static_cast<double>(std::max<std::int64_t>(last_answer - first_intended, 1)) / 1e9;
  report_.throughput = static_cast<double>(latencies.size()) / report_.duration_s;

  // Time series: about 60 slices, none shorter than 100 ms; the last one takes the remainder (a
  // sliver of a slice would show a rate made of a handful of calls).
  double slice_s = std::max(0.1, report_.duration_s / 60);
  report_.series_slice_s = slice_s;
  std::size_t slices = std::max<std::size_t>(1, static_cast<std::size_t>(std::llround(report_.duration_s / slice_s)));
  std::vector<std::vector<std::int64_t>> slice_latencies(slices);
  report_.series.resize(slices);
  for (std::size_t s = 0; s < slices; ++s) {
    report_.series[s].t_s = static_cast<double>(s) * slice_s;
    report_.series[s].width_s = s + 1 < slices ? slice_s : std::max(1e-3, report_.duration_s - report_.series[s].t_s);
  }
  for (std::uint64_t k = measured_from_; k < calls_.size(); ++k) {
    const CallRecord& c = calls_[k];
    if (c.done_ns < 0 || slices == 0) continue;
    auto s = static_cast<std::size_t>(std::clamp(static_cast<double>(c.done_ns - first_intended) / 1e9 / slice_s, 0.0,
                                                 static_cast<double>(slices - 1)));
    if (c.outcome == CallRecord::Outcome::ok) ++report_.series[s].ok;
    else ++report_.series[s].errors;
    slice_latencies[s].push_back(c.done_ns - c.intended_ns);
  }
  for (std::size_t s = 0; s < slices; ++s) {
    LatencySummary l = summarize(slice_latencies[s]);
    report_.series[s].p50_us = static_cast<double>(l.p50_ns) / 1000;
    report_.series[s].p99_us = static_cast<double>(l.p99_ns) / 1000;
  }
  report_.latency = summarize(latencies);
  report_.latencies_ns = std::move(latencies);

  if (has_status && !read_closed_) {
    try {
      report_.server_pools = pool_deltas(status_before, status_call());
    } catch (const std::exception&) {
    }
  }
  // Answers that came after the tally closed (during the status call) stay lost: they missed the
  // run's deadline; the count tells a slow server from a server that dropped calls.
  report_.answered_after_end = answered_after_end_;
  return std::move(report_);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

RunReport drive(const Options& options, const Workload& workload, ServerLink link, const std::string& label) {
  return Driver(options, workload, link, label).run();
}

RunReport run_load(const Options& options, const Workload& workload, const std::vector<std::string>& server,
                   const std::string& label) {
  // A server that dies makes our writes fail with EPIPE; the signal would end the harness instead.
  std::signal(SIGPIPE, SIG_IGN);
  ChildProcess::Options child_options;
  if (options.server_stderr != "-") child_options.stderr_path = options.server_stderr;
  ChildProcess child(server, child_options);
  Options run_options = options;
  run_options.server = server;
  RunReport report;
  try {
    report = drive(run_options, workload, {child.stdin_fd(), child.stdout_fd(), child.pid()}, label);
  } catch (...) {
    child.close_stdin();
    if (!child.wait(std::chrono::seconds(2))) ::kill(child.pid(), SIGKILL);
    throw;
  }
  child.close_stdin();
  auto status = child.wait(std::chrono::seconds(10));
  if (!status) {
    ::kill(child.pid(), SIGKILL);
    status = child.wait(std::chrono::seconds(5));
    report.server_exit = "did not exit within 10 s of stdin EOF; killed";
  } else {
    report.server_exit = describe_status(*status);
  }
  return report;
}

Comparison run_compare(const Options& options, const Workload& workload) {
  Comparison c;
  for (unsigned round = 1; round <= options.rounds; ++round) {
    std::string of = std::to_string(round) + "/" + std::to_string(options.rounds);
    c.a.push_back(run_load(options, workload, options.server, "A " + of));
    c.b.push_back(run_load(options, workload, options.server_b, "B " + of));
  }
  return c;
}

}  // namespace mcpd::load
