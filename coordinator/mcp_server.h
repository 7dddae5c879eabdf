// The MCP server: takes decoded client messages on the event loop thread, runs the lifecycle
// (initialize, ping, tools/list, tools/call, logging, cancellation, progress), validates calls,
// routes them through the L1 cache to an executor, and sends every reply exactly once. All of its
// state belongs to the one io_context thread; executors post their outcomes back to it.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include "cache_key.h"
#include "roots.h"
#include "config.h"
#include "executor.h"
#include "lru_cache.h"
#include "metrics.h"
#include "single_flight.h"
#include "tool.h"

namespace mcpd {

/// Where outgoing messages go: the client transport, or a batch being collected.
using Sink = std::function<void(json)>;
/// Where messages already serialized go (one compact JSON text each): the client transport.
using TextSink = std::function<void(std::string)>;

/// Settles one request: a result, an error, or (after notifications/cancelled) deliberate silence.
/// A second reply is a bug that is logged and dropped; a handle destroyed without replying sends
/// an internal error, so the client is never left waiting (clangd's ReplyOnce).
class ReplyOnce {
 public:
  /// `text`, when set, takes replies that arrive serialized (result_text); without it they are
  /// parsed and go to `sink` (a batch collecting its replies).
  ReplyOnce(json id, std::string method, Sink sink, TextSink text = nullptr);
  ReplyOnce(const ReplyOnce&) = delete;
  ReplyOnce& operator=(const ReplyOnce&) = delete;
  ~ReplyOnce();

  void result(json result);
  /// A result that is already a serialized JSON object: sent as it is, never parsed.
  void result_text(std::string result);
  void error(int code, std::string message, json data = nullptr);
  /// The client cancelled: MCP says the request then gets no response at all.
  void abandon();
  bool settled() const { return settled_; }
  const json& id() const { return id_; }

 private:
  bool claim();
  json id_;
  std::string method_;
  Sink sink_;
  TextSink text_;
  bool settled_ = false;
};

/// The protocol versions we speak, newest first.
const std::vector<std::string>& supported_protocol_versions();

class McpServer {
 public:
  struct Options {
    std::string server_version = "0.1.0";
  };

  McpServer(boost::asio::io_context& loop, const Config& config, Sink out, Executor& executor);
  ~McpServer();

  /// Registers a tool family (before the first message).
  void add_tools(const std::vector<Tool>& tools);
  /// Where notifications the client can do without (progress, log messages) go: a sink that may
  /// drop them when the client is not reading. Default: the same sink as replies.
  void set_notification_sink(Sink notify) { notify_ = std::move(notify); }
  /// Where replies that are already serialized go (results passed on as their tool wrote them).
  /// Default: parsed and sent to the reply sink.
  void set_text_sink(TextSink text) { text_out_ = std::move(text); }
  /// The instructions initialize returns (the families' lines, put together by whoever lists them).
  void set_instructions(std::string text) { instructions_ = std::move(text); }
  /// Extra state for mcpd_status, under "transport" (the client connection's queue and drops).
  void set_transport_status(std::function<json()> status) { transport_status_ = std::move(status); }

  /// Handles one line from the client (already split by the transport).
  void on_line(std::string_view line);
  /// The transport dropped a line longer than max_line_bytes.
  void on_oversize_line(std::size_t bytes);
  /// The client closed stdin, or SIGTERM: stop taking calls; finish or cancel the rest within the
  /// grace period, then call `done`. With `output_lost` (stdout closed) nothing could be answered,
  /// so calls in flight are cancelled at once.
  void shutdown(std::function<void()> done, bool output_lost = false);

  /// Counts for tests and the status tool.
  std::size_t in_flight() const { return in_flight_.size(); }

 private:
  struct Pending;  // one client request in flight
  struct Flight;   // one execution, shared by identical calls (single flight)

  void on_message(json message, const Sink& sink, const TextSink& text);
  void on_request(const json& id, const std::string& method, json& params, const Sink& sink,
                  const TextSink& text);
  void on_notification(const std::string& method, const json& params);
  void on_batch(const json& batch);

  json handle_initialize(const json& params);
  json tools_list_result() const;
  /// Takes the arguments out of `params`.
  void handle_tools_call(std::unique_ptr<ReplyOnce> reply, json& params);
  void handle_cancelled(const json& params);
  json status_result();

  std::optional<std::string> file_identity(const Tool& tool, const json& arguments) const;
  void start_flight(const CacheKey& key, const Tool& tool, json arguments, bool cacheable,
                    const std::string& leader);
  /// Runs the request as a new flight, or joins an identical one in flight.
  void run_or_join(const std::string& request_key, const Tool& tool, const CacheKey& key, bool cacheable,
                   json arguments);
  /// Asks the owner of a vouched answer whether it still holds, then calls `then` on the loop, only
  /// if the request still waits; a stale entry is dropped first.
  void check_voucher(const std::string& request_key, const Tool& tool, json arguments, const CacheKey& key,
                     std::shared_ptr<const Voucher> voucher, std::function<void(bool, const Tool&, json)> then);
  /// An owner's news (Executor::on_invalidated): drops the entries it no longer vouches for.
  void drop_vouched(const std::string& owner, const std::vector<std::string>& tags);
  void finish_flight(const CacheKey& key, CallOutcome outcome);
  void deliver(const std::string& request_key, const CallOutcome& outcome, const char* cache_state);
  void send_progress(const std::string& request_key, double progress, double total,
                     const std::string& message);
  void forward_log(const std::string& level, const json& record);
  void maybe_finish_shutdown();
  std::chrono::milliseconds timeout_for(const Tool& tool) const;

  boost::asio::io_context& loop_;
  const Config& config_;
  Sink out_;
  Sink notify_;
  Sink reply_sink_;  // out_, minus the discarded marker of an abandoned reply
  TextSink text_out_;
  std::string instructions_ = "mcpd_status reports the server's state.";
  std::function<json()> transport_status_;
  Executor& executor_;
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();

  std::map<std::string, Tool> tools_;
  json tools_list_;  // built once, tools/list is hot for some clients

  bool initialized_ = false;
  std::string protocol_version_;  // empty until initialize
  // MCP log notifications at or above this rank; read by the log forwarder on any thread, so
  // records that would be dropped are never posted to the loop at all.
  std::atomic<int> notify_level_;
  std::atomic<bool> notifying_{false};  // true once initialize has negotiated a version
  bool closing_ = false;
  std::function<void()> on_closed_;
  std::unique_ptr<boost::asio::steady_timer> grace_timer_;

  std::unordered_map<std::string, std::unique_ptr<Pending>> in_flight_;  // by id_key
  std::unordered_map<CacheKey, std::unique_ptr<Flight>> flights_;
  SingleFlight<CallOutcome> single_flight_;
  LruCache cache_;
  Metrics metrics_;
  std::uint64_t next_call_ = 0, executions_ = 0;
  std::uint64_t completed_ = 0, failed_ = 0, cancelled_ = 0, timeouts_ = 0, busy_rejections_ = 0;
  /// The roots, opened once: file identities are taken beneath them.
  std::shared_ptr<const RootDirs> root_dirs_;
  std::uint64_t vouchers_checked_ = 0, vouchers_stale_ = 0;  // owners asked about an answer; said stale
  json cache_status() const {
    json out = cache_.stats_json();
    out["vouchers_checked"] = vouchers_checked_;
    out["vouchers_stale"] = vouchers_stale_;
    return out;
  }
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // guards posted log callbacks
};

}  // namespace mcpd
