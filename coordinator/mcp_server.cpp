#include "mcp_server.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstring>

#include <boost/asio/post.hpp>

#include "json_access.h"
#include "json_text.h"
#include "jsonrpc.h"
#include "line_reader.h"
#include "log.h"
#include "roots.h"
#include "schema.h"

namespace mcpd {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------------------------
// ReplyOnce

ReplyOnce::ReplyOnce(json id, std::string method, Sink sink, TextSink text)
    : id_(std::move(id)), method_(std::move(method)), sink_(std::move(sink)), text_(std::move(text)) {}

ReplyOnce::~ReplyOnce() {
  if (settled_) return;
  log_error("request dropped without a reply; answering with an internal error",
            {{"id", id_}, {"method", method_}});
  sink_(make_error(id_, error_code::internal_error, "internal error: the server dropped this request"));
}

bool ReplyOnce::claim() {
  if (settled_) {
    log_error("bug: second reply to a request ignored", {{"id", id_}, {"method", method_}});
    return false;
  }
  settled_ = true;
  return true;
}

void ReplyOnce::result(json result) {
  if (claim()) sink_(make_result(id_, std::move(result)));
}

void ReplyOnce::result_text(std::string result) {
  if (!claim()) return;
  if (!text_) {
    sink_(make_result(id_, json::parse(result)));
    return;
  }
  std::string id = id_.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string message;
  message.reserve(result.size() + id.size() + 32);
  message.append(R"({"jsonrpc":"2.0","id":)").append(id).append(R"(,"result":)").append(result).append(1, '}');
  text_(std::move(message));
}

void ReplyOnce::error(int code, std::string message, json data) {
  if (claim()) sink_(make_error(id_, code, std::move(message), std::move(data)));
}

void ReplyOnce::abandon() {
  // No response goes out, but a batch collecting its replies must stop waiting for this one: the
  // sink is told with a discarded value, which no sink ever writes.
  if (claim()) sink_(json(json::value_t::discarded));
}

// ---------------------------------------------------------------------------------------------

const std::vector<std::string>& supported_protocol_versions() {
  static const std::vector<std::string> versions = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                    "2024-11-05"};
  return versions;
}

namespace {

/// Batches were allowed by 2025-03-26 and removed by 2025-06-18. Before initialize we do not know
/// the client's version, so we hold it to the newest rules.
bool batches_allowed(const std::string& version) {
  return version == "2025-03-26" || version == "2024-11-05";
}

json tool_error_result(const std::string& message) {
  return {{"content", json::array({{{"type", "text"}, {"text", message}}})}, {"isError", true}};
}

const char* const kStatusTool = "mcpd_status";

/// A key no digest will meet in practice: the serial in the first 8 bytes, all ones after.
CacheKey uncached_key(std::uint64_t serial) {
  CacheKey key;
  key.bytes.fill(0xFF);
  std::memcpy(key.bytes.data(), &serial, sizeof serial);
  return key;
}

}  // namespace

/// One client request in flight: its reply handle and what progress and logs need to know.
struct McpServer::Pending {
  std::unique_ptr<ReplyOnce> reply;
  std::string tool;
  std::string call_id;
  json progress_token;  // null when the client asked for no progress
  double last_progress = -1;
  std::optional<CacheKey> flight;
  Clock::time_point started = Clock::now();
};

/// One execution of a tool, shared by the identical requests that joined it.
struct McpServer::Flight {
  CancelToken cancel;
  std::string call_id;  // the leader's call id, as the executor knows the execution
  std::string timeout_message;
  std::string tool;
  bool cacheable = false;
  bool vouched = false;        // CachePolicy::custom: stored only with the owner's voucher
  Clock::time_point started = Clock::now();
  std::size_t interested = 0;  // requests still waiting; at 0 the execution is cancelled
  std::string leader;          // the request that receives progress
  std::unique_ptr<asio::steady_timer> deadline;
};

McpServer::McpServer(asio::io_context& loop, const Config& config, Sink out, Executor& executor)
    : loop_(loop),
      config_(config),
      out_(std::move(out)),
      notify_(out_),
      reply_sink_([this](json reply) {
        if (!reply.is_discarded()) out_(std::move(reply));
      }),
      executor_(executor),
      notify_level_(log_level_rank(config.notify_log_level)),
      cache_(LruCache::Limits{static_cast<std::size_t>(config.cache_max_bytes),
                              static_cast<std::size_t>(config.cache_max_entries),
                              std::chrono::milliseconds(config.cache_ttl_ms)}),
      root_dirs_(std::make_shared<const RootDirs>(config.roots)) {
  std::weak_ptr<bool> still = alive_;
  executor_.on_invalidated([this, still](const std::string& owner, const std::vector<std::string>& tags) {
    if (still.lock()) drop_vouched(owner, tags);
  });
  // Log records become notifications/message for the client. Records can come from any thread;
  // hop to the loop, and never log from inside the forwarder (that would recurse).
  std::weak_ptr<bool> alive = alive_;
  Log::instance().set_forwarder([this, alive](const std::string& level, const json& record) {
    if (!notifying_.load(std::memory_order_relaxed) || log_level_rank(level) < notify_level_.load()) return;
    asio::post(loop_, [this, alive, level, record] {
      if (alive.lock()) forward_log(level, record);
    });
  });

  Tool status;
  status.name = kStatusTool;
  status.title = "Server status";
  status.description =
      "Reports mcpd's own state: uptime, requests in flight, completed and failed calls, L1 cache "
      "statistics (hits, misses, evictions, bytes, hit ratio) and per-tool latency percentiles per "
      "execution path. Cheap: answered by the coordinator itself, never queued behind tools.";
  status.input_schema = {{"type", "object"}, {"properties", json::object()},
                         {"additionalProperties", false}};
  status.output_schema = {{"type", "object"},
                          {"properties",
                           {{"server", {{"type", "object"}}},
                            {"cache", {{"type", "object"}}},
                            {"tools", {{"type", "object"}}}}}};
  status.annotations = {true, false, true, false};
  status.cache = CachePolicy::never;
  add_tools({status});
}

McpServer::~McpServer() {
  *alive_ = false;
  Log::instance().set_forwarder(nullptr);
  Log::instance().set_forward_rank(1 << 30);
  // Settle anything still pending so no ReplyOnce complains from its destructor.
  for (auto& [key, pending] : in_flight_)
    if (pending->reply && !pending->reply->settled())
      pending->reply->error(error_code::internal_error, "server stopped before the call finished");
}

void McpServer::add_tools(const std::vector<Tool>& tools) {
  for (const auto& tool : tools) {
    if (auto problem = check_schema(tool.input_schema))
      throw std::logic_error("tool '" + tool.name + "' has an unsupported inputSchema: " + *problem);
    if (tool.description.empty()) throw std::logic_error("tool '" + tool.name + "' has no description");
    tools_[tool.name] = tool;
  }
  json list = json::array();
  for (const auto& [name, tool] : tools_) {
    json entry = {{"name", tool.name},
                  {"title", tool.title},
                  {"description", tool.description},
                  {"inputSchema", tool.input_schema},
                  {"annotations",
                   {{"title", tool.title},
                    {"readOnlyHint", tool.annotations.read_only},
                    {"destructiveHint", tool.annotations.destructive},
                    {"idempotentHint", tool.annotations.idempotent},
                    {"openWorldHint", tool.annotations.open_world}}}};
    if (!tool.output_schema.is_null()) entry["outputSchema"] = tool.output_schema;
    list.push_back(std::move(entry));
  }
  tools_list_ = {{"tools", std::move(list)}};
}

// ---------------------------------------------------------------------------------------------
// Messages in

void McpServer::on_line(std::string_view line) {
  ParsedLine parsed = decode_line(line);
  if (!parsed.ok) {
    out_(parsed.error_response);
    return;
  }
  if (is_batch(parsed.value)) {
    on_batch(parsed.value);
    return;
  }
  on_message(std::move(parsed.value), reply_sink_, text_out_);
}

void McpServer::on_oversize_line(std::size_t bytes) {
  // The line was dropped unread, so its id is unknown: JSON-RPC says answer with id null.
  out_(make_error(nullptr, error_code::invalid_request,
                  "message of " + std::to_string(bytes) + " bytes exceeds max_line_bytes (" +
                      std::to_string(config_.max_line_bytes) + ")"));
}

void McpServer::on_batch(const json& batch) {
  std::string version = protocol_version_.empty() ? supported_protocol_versions().front() : protocol_version_;
  if (!batches_allowed(version)) {
    out_(make_error(nullptr, error_code::invalid_request,
                    "JSON-RPC batches are not supported in MCP protocol version " + version));
    return;
  }
  if (batch.empty()) {
    out_(make_error(nullptr, error_code::invalid_request, "empty batch"));
    return;
  }
  // Collect the replies of the batch's requests and send them as one array when the last arrives.
  struct Collector {
    json replies = json::array();
    std::size_t expected = 0, abandoned = 0;
    bool armed = false;
    Sink out;
    // Every request settled: send the replies, or nothing if every one was cancelled.
    void maybe_send() {
      if (!armed || replies.size() + abandoned != expected) return;
      if (!replies.empty()) out(std::move(replies));
      armed = false;
    }
  };
  auto collector = std::make_shared<Collector>();
  collector->out = out_;
  Sink sink = [collector](json reply) {
    if (reply.is_discarded()) ++collector->abandoned;  // cancelled: MCP says no response
    else collector->replies.push_back(std::move(reply));
    collector->maybe_send();
  };
  for (const auto& message : batch) {
    auto parsed = parse_message(message);
    if (!parsed.ok() || parsed.message->is_request()) ++collector->expected;
  }
  for (const auto& message : batch) on_message(message, sink, nullptr);
  collector->armed = collector->expected > 0;
  collector->maybe_send();
}

void McpServer::on_message(json message, const Sink& sink, const TextSink& text) {
  ParseOutcome parsed = parse_message(std::move(message));
  if (!parsed.ok()) {
    sink(make_error(parsed.error));
    return;
  }
  Message& m = *parsed.message;
  if (m.is_response()) return;  // we send no requests, so no response is expected
  if (m.is_notification()) {
    on_notification(m.method, m.params);
    return;
  }
  on_request(m.id, m.method, m.params, sink, text);
}

void McpServer::on_request(const json& id, const std::string& method, json& params,
                           const Sink& sink, const TextSink& text) {
  auto reply = std::make_unique<ReplyOnce>(id, method, sink, text);
  if (!params.is_null() && !params.is_object()) {
    reply->error(error_code::invalid_params, "params of '" + method + "' must be an object");
    return;
  }
  if (params.is_null()) params = json::object();
  json& p = params;
  try {
    // Before initialize only ping may come (MCP's lifecycle): anything else would run under a
    // protocol version nobody negotiated. Requests after the initialize response but before
    // notifications/initialized are served, since clients commonly pipeline them.
    const bool lifecycle = method == "initialize" || method == "ping";
    const bool known = lifecycle || method == "tools/list" || method == "tools/call" || method == "logging/setLevel";
    if (known && !lifecycle && protocol_version_.empty()) {
      reply->error(error_code::invalid_request,
                   "server not initialized: send initialize first (only ping is allowed before it), got '" +
                       method + "'");
      return;
    }
    if (method == "initialize") {
      if (!protocol_version_.empty()) {
        reply->error(error_code::invalid_request,
                     "already initialized (protocol version " + protocol_version_ +
                         "); initialize may be sent once per session");
        return;
      }
      reply->result(handle_initialize(p));
    } else if (method == "ping") {
      reply->result(json::object());
    } else if (method == "tools/list") {
      reply->result(tools_list_result());
    } else if (method == "tools/call") {
      handle_tools_call(std::move(reply), p);
    } else if (method == "logging/setLevel") {
      auto level = optional_string(p, "level");
      if (!level || log_level_rank(*level) < 0) {
        const json* given = member(p, "level");
        reply->error(error_code::invalid_params,
                     "level must be one of debug, info, notice, warning, error, critical, alert, "
                     "emergency; got " + (given ? json_type_name(*given) : std::string("no level")));
        return;
      }
      notify_level_ = log_level_rank(*level);
      Log::instance().set_forward_rank(notify_level_);
      reply->result(json::object());
    } else {
      reply->error(error_code::method_not_found, "Method not found: " + method);
    }
  } catch (const std::exception& e) {
    // Nothing a client sends may take the server down: a bug in a handler becomes an error reply.
    log_error("request handler failed", {{"method", method}, {"error", e.what()}});
    if (reply && !reply->settled()) reply->error(error_code::internal_error, std::string("internal error: ") + e.what());
  }
}

void McpServer::on_notification(const std::string& method, const json& params) {
  if (method == "notifications/initialized") {
    initialized_ = true;
  } else if (method == "notifications/cancelled") {
    handle_cancelled(params);
  }
  // Other notifications (roots/list_changed, progress from the client...) need nothing from us.
}

json McpServer::handle_initialize(const json& params) {
  std::string requested = string_or(params, "protocolVersion", "");
  const auto& supported = supported_protocol_versions();
  bool known = std::find(supported.begin(), supported.end(), requested) != supported.end();
  protocol_version_ = known ? requested : supported.front();
  notifying_ = true;
  Log::instance().set_forward_rank(notify_level_);
  const json* info = optional_object(params, "clientInfo");
  json client = info ? *info : json::object();
  log_info("client initialized",
           {{"client", client}, {"requested_version", requested}, {"version", protocol_version_}});
  return {{"protocolVersion", protocol_version_},
          {"capabilities", {{"tools", {{"listChanged", false}}}, {"logging", json::object()}}},
          {"serverInfo", {{"name", "mcpd"}, {"title", "mcpd tool server"}, {"version", "0.1.0"}}},
          {"instructions", instructions_}};
}

json McpServer::tools_list_result() const { return tools_list_; }

std::chrono::milliseconds McpServer::timeout_for(const Tool& tool) const {
  if (auto it = config_.tool_timeouts_ms.find(tool.name); it != config_.tool_timeouts_ms.end())
    return std::chrono::milliseconds(it->second);
  // A deadline set for every tool is the operator's word; unset (0), each tool keeps its own, since
  // a git log may need longer than a parse.
  if (config_.tool_timeout_ms > 0) return std::chrono::milliseconds(config_.tool_timeout_ms);
  if (tool.default_timeout.count() > 0) return tool.default_timeout;
  return std::chrono::milliseconds(30000);
}

// ---------------------------------------------------------------------------------------------
// tools/call

void McpServer::handle_tools_call(std::unique_ptr<ReplyOnce> reply, json& params) {
  auto given_name = optional_string(params, "name");
  if (!given_name) {
    const json* raw = member(params, "name");
    reply->error(error_code::invalid_params, "tools/call needs 'name', the tool's name as a string; got " +
                                                 (raw ? json_type_name(*raw) : std::string("none")));
    return;
  }
  std::string name = std::move(*given_name);
  auto found = tools_.find(name);
  if (found == tools_.end()) {
    reply->error(error_code::invalid_params, "Unknown tool: " + name);
    return;
  }
  const Tool& tool = found->second;
  const json* given_arguments = member(params, "arguments");
  if (given_arguments && !given_arguments->is_null() && !given_arguments->is_object()) {
    reply->error(error_code::invalid_params,
                 "tools/call 'arguments' must be an object, got " + json_type_name(*given_arguments));
    return;
  }
  json arguments = json::object();
  if (given_arguments && given_arguments->is_object()) arguments = std::move(params["arguments"]);
  if (closing_) {
    reply->error(error_code::internal_error, "server is shutting down and takes no new calls");
    return;
  }
  // Invalid arguments are the model's to fix, so they are a tool result it can read (2025-11-25).
  if (auto problem = validate_schema(tool.input_schema, arguments)) {
    reply->result(tool_error_result("invalid arguments for tool '" + name + "': " + *problem));
    return;
  }
  if (name == kStatusTool) {
    json status = status_result();
    reply->result({{"content", json::array({{{"type", "text"}, {"text", status.dump()}}})},
                   {"structuredContent", status},
                   {"isError", false}});
    return;
  }
  std::string request_key = id_key(reply->id());
  if (in_flight_.contains(request_key)) {
    reply->error(error_code::invalid_request,
                 "a request with id " + reply->id().dump() + " is already in flight; ids must be unique");
    return;
  }
  if (in_flight_.size() >= config_.max_in_flight) {
    ++busy_rejections_;
    reply->error(error_code::server_busy, "server busy: " + std::to_string(in_flight_.size()) +
                                       " calls in flight (max_in_flight)");
    return;
  }

  auto pending = std::make_unique<Pending>();
  pending->tool = name;
  pending->call_id = "c" + std::to_string(++next_call_);
  // MCP's progress token is a string or a number; anything else means no progress, not an error.
  if (const json* meta = optional_object(params, "_meta")) {
    const json* token = member(*meta, "progressToken");
    if (token && (token->is_string() || token->is_number())) pending->progress_token = *token;
  }
  pending->reply = std::move(reply);
  if (debug_logging())
    log_debug("call received", {{"call", pending->call_id}, {"id", pending->reply->id()}, {"tool", name}});

  // The cache key covers what the coordinator can see the answer depends on: the tool, its
  // canonical arguments and, for file tools, each file's identity (a stat), so an edited file is
  // never served stale. What only the tool's own process can judge (CachePolicy::custom: a watched
  // tree, a repository's refs) is vouched for by that process, and asked before a hit is served.
  bool cacheable = config_.cache_enabled && tool.cache != CachePolicy::never;
  std::string extra;
  if (cacheable && tool.cache == CachePolicy::files) {
    auto identity = file_identity(tool, arguments);
    if (identity) extra = *identity;
    else cacheable = false;  // the tool will report the bad path itself
  }
  // A call that is not cached joins no other, so its key only has to be unique: the call's serial
  // number, with no hash of its arguments.
  CacheKey key = cacheable ? make_cache_key(name, arguments, extra) : uncached_key(next_call_);
  if (cacheable) {
    if (auto hit = cache_.find(key)) {
      CallOutcome outcome;
      outcome.status = CallOutcome::Status::ok;
      outcome.path = "cache";
      outcome.body = std::move(*hit->value);  // stored serialized: a hit is sent without a parse
      in_flight_[request_key] = std::move(pending);
      if (!hit->voucher) {
        deliver(request_key, outcome, "hit");
        return;
      }
      check_voucher(request_key, tool, std::move(arguments), key, std::move(hit->voucher),
                    [this, key, request_key, outcome = std::move(outcome)](bool current, const Tool& t, json args) {
                      if (current) return deliver(request_key, outcome, "hit");
                      cache_.hit_was_stale();
                      run_or_join(request_key, t, key, true, std::move(args));
                    });
      return;
    }
  }
  in_flight_[request_key] = std::move(pending);
  run_or_join(request_key, tool, key, cacheable, std::move(arguments));
}

void McpServer::check_voucher(const std::string& request_key, const Tool& tool, json arguments, const CacheKey& key,
                              std::shared_ptr<const Voucher> voucher,
                              std::function<void(bool, const Tool&, json)> then) {
  std::weak_ptr<bool> alive = alive_;
  std::string call_id = in_flight_.at(request_key)->call_id;
  const Tool* t = &tool;  // tools_ never changes while the server runs
  ++vouchers_checked_;
  // Settled once: by the owner's answer, or as stale when the owner takes longer than the tool's
  // own deadline allows (a legacy thread pool full of stuck handlers, say); the request then runs
  // under its deadline like any miss, and never waits on an answer that may not come.
  struct Check {
    bool settled = false;
    asio::steady_timer timer;
    json arguments;
    std::function<void(bool, const Tool&, json)> then;
    explicit Check(asio::io_context& loop) : timer(loop) {}
  };
  auto check = std::make_shared<Check>(loop_);
  check->arguments = std::move(arguments);
  check->then = std::move(then);
  auto settle = [this, alive, request_key, call_id, t, key, voucher, check](bool current) {
    if (check->settled || !alive.lock()) return;
    check->settled = true;
    check->timer.cancel();
    auto it = in_flight_.find(request_key);
    // Cancelled meanwhile (and its id perhaps reused): nobody waits for this.
    if (it == in_flight_.end() || it->second->call_id != call_id) return;
    if (!current) {
      ++vouchers_stale_;
      cache_.erase_vouched(key, voucher.get());
    }
    auto then = std::move(check->then);
    then(current, *t, std::move(check->arguments));
  };
  check->timer.expires_after(timeout_for(tool));
  check->timer.async_wait([settle](const boost::system::error_code& ec) {
    if (!ec) settle(false);
  });
  // The arguments go to the owner and come back: the answer to a stale check runs the call.
  executor_.revalidate(tool, check->arguments, *voucher, settle);
}

void McpServer::drop_vouched(const std::string& owner, const std::vector<std::string>& tags) {
  auto under = [&tags](const std::string& tag) {
    for (const auto& t : tags) {
      if (tag == t || t == "/") return true;
      if (tag.size() > t.size() && tag.compare(0, t.size(), t) == 0 && tag[t.size()] == '/') return true;
    }
    return false;
  };
  std::size_t dropped = cache_.erase_vouched([&](const Voucher& v) {
    // No tags: the owner is gone, and every answer it vouched for with it.
    return v.owner == owner && (tags.empty() || (!v.tag.empty() && under(v.tag)));
  });
  if (dropped && debug_logging())
    log_debug("cache entries invalidated by their owner",
              {{"owner", owner}, {"entries", dropped}, {"owner_gone", tags.empty()}});
}

void McpServer::run_or_join(const std::string& request_key, const Tool& tool, const CacheKey& key, bool cacheable,
                            json arguments) {
  Pending& pending = *in_flight_.at(request_key);
  pending.flight = key;
  std::string call_id = pending.call_id;

  SingleFlight<CallOutcome>::Waiter waiter;
  // A flight started after this request came (it re-runs after a stale check) took its state
  // later still: its answer is this request's as it is.
  auto running = flights_.find(key);
  bool later = running != flights_.end() && running->second->started >= pending.started;
  if (tool.cache == CachePolicy::custom && cacheable && !later) {
    // The flight's state was taken when it started, perhaps before this request came: its answer
    // is this request's only if its owner still vouches for that state now; else it runs anew.
    waiter = [this, request_key, key, t = &tool, args = arguments](const CallOutcome& outcome) {
      auto waiting = in_flight_.find(request_key);
      if (outcome.status != CallOutcome::Status::ok || waiting == in_flight_.end())
        return deliver(request_key, outcome, "joined");
      // Out of the finished flight: a cancel meanwhile must not count against a new one.
      waiting->second->flight.reset();
      // No voucher: the owner could not tell what the answer depended on, so nothing says it is
      // still this request's answer; it runs on its own.
      if (!outcome.voucher) return run_or_join(request_key, *t, key, true, args);
      check_voucher(request_key, *t, args, key, outcome.voucher,
                    [this, request_key, key, outcome](bool current, const Tool& tool, json args) {
                      if (current) return deliver(request_key, outcome, "joined");
                      run_or_join(request_key, tool, key, true, std::move(args));
                    });
    };
  } else {
    waiter = [this, request_key](const CallOutcome& outcome) { deliver(request_key, outcome, "joined"); };
  }
  bool leader = single_flight_.join(key, std::move(waiter));
  if (!leader) {
    ++flights_.at(key)->interested;
    if (debug_logging()) log_debug("joined an identical call in flight", {{"call", call_id}, {"tool", tool.name}});
    return;
  }
  start_flight(key, tool, std::move(arguments), cacheable, request_key);
}

std::optional<std::string> McpServer::file_identity(const Tool& tool, const json& arguments) const {
  std::string identity, where;
  for (const auto& arg : tool.path_arguments) {
    auto given = optional_string(arguments, arg);
    if (!given) continue;
    // Resolved beneath its root as the tool will open it: no canonical path, which costs a
    // readlink per component of every path of every call.
    auto st = stat_in_roots(*given, *root_dirs_, &where);
    if (!st) return std::nullopt;  // the tool will report the bad path itself
    // ctime moves on every content or metadata change, even one that restores the old mtime.
    identity += where + '\0' + std::to_string(st->st_dev) + ':' + std::to_string(st->st_ino) + ':' +
                std::to_string(st->st_size) + ':' + std::to_string(st->st_mtim.tv_sec) + '.' +
                std::to_string(st->st_mtim.tv_nsec) + ':' + std::to_string(st->st_ctim.tv_sec) + '.' +
                std::to_string(st->st_ctim.tv_nsec) + '\n';
  }
  return identity;
}

void McpServer::start_flight(const CacheKey& key, const Tool& tool, json arguments, bool cacheable,
                             const std::string& leader) {
  auto flight = std::make_unique<Flight>();
  flight->tool = tool.name;
  flight->cacheable = cacheable;
  flight->vouched = tool.cache == CachePolicy::custom;
  flight->interested = 1;
  flight->leader = leader;
  flight->call_id = in_flight_.at(leader)->call_id;
  auto timeout = timeout_for(tool);
  std::string source = config_.tool_timeouts_ms.contains(tool.name) ? "its tool_timeouts_ms entry"
                       : config_.tool_timeout_ms > 0                ? "tool_timeout_ms"
                                                                    : "the tool's own default deadline";
  // One wording for every timeout of this call, whether our timer or the worker noticed first.
  flight->timeout_message = "tool '" + tool.name + "' timed out after " + std::to_string(timeout.count()) + " ms (" +
                            source + "; raise it with tool_timeouts_ms, e.g. {\"" + tool.name + "\": 60000})";
  flight->deadline = std::make_unique<asio::steady_timer>(loop_, timeout);
  flight->deadline->async_wait([this, key](const boost::system::error_code& ec) {
    if (ec) return;
    auto it = flights_.find(key);
    if (it == flights_.end()) return;
    it->second->cancel.cancel();
    std::string call_id = it->second->call_id;
    CallOutcome outcome;
    outcome.status = CallOutcome::Status::timeout;
    // Settle first, then stop the work: an executor may report a queued call's cancellation at
    // once, and that must not overtake the timeout the client is owed.
    finish_flight(key, std::move(outcome));
    executor_.cancel(call_id);
  });

  CallRequest request;
  request.tool = &tool;
  request.arguments = std::move(arguments);
  request.call_id = in_flight_.at(leader)->call_id;
  request.cancel = flight->cancel;
  request.deadline = Clock::now() + timeout;
  std::weak_ptr<bool> alive = alive_;
  request.progress = [this, alive, leader](double progress, double total, const std::string& message) {
    // The pool reports progress on the loop thread, in order with the result: send it now, or it
    // would go out after the response. Other threads (the legacy pool) hop to the loop.
    if (loop_.get_executor().running_in_this_thread()) {
      send_progress(leader, progress, total, message);
      return;
    }
    asio::post(loop_, [this, alive, leader, progress, total, message] {
      if (alive.lock()) send_progress(leader, progress, total, message);
    });
  };
  flights_[key] = std::move(flight);
  ++executions_;
  executor_.execute(std::move(request), [this, key, alive](CallOutcome outcome) {
    if (!alive.lock()) return;
    finish_flight(key, std::move(outcome));
  });
}

void McpServer::finish_flight(const CacheKey& key, CallOutcome outcome) {
  auto it = flights_.find(key);
  if (it == flights_.end()) return;  // already settled (timeout, or every request cancelled)
  std::unique_ptr<Flight> flight = std::move(it->second);
  flights_.erase(it);
  flight->deadline->cancel();
  if (outcome.status == CallOutcome::Status::timeout) outcome.error = flight->timeout_message;
  // An answer only its owner can judge is kept only with the owner's voucher (none: the owner
  // could not tell, e.g. while it still sets up a tree's watcher).
  bool stored = false;
  if (outcome.status == CallOutcome::Status::ok && flight->cacheable && (!flight->vouched || outcome.voucher)) {
    cache_.put(key, outcome.body, {}, outcome.voucher);
    stored = true;
  }
  // The leader is not among the waiters: deliver to it first, then to the joiners.
  deliver(flight->leader, outcome, stored || (flight->cacheable && !flight->vouched) ? "miss" : "bypass");
  single_flight_.complete(key, outcome);
  maybe_finish_shutdown();
}

void McpServer::deliver(const std::string& request_key, const CallOutcome& outcome, const char* cache_state) {
  const bool from_cache = std::string_view(cache_state) == "hit";
  auto it = in_flight_.find(request_key);
  if (it == in_flight_.end()) return;  // cancelled meanwhile: it gets no response
  std::unique_ptr<Pending> pending = std::move(it->second);
  in_flight_.erase(it);
  double micros = std::chrono::duration<double, std::micro>(Clock::now() - pending->started).count();
  PathStats& stats = metrics_.of(pending->tool, from_cache ? "cache" : (outcome.path.empty() ? "none" : outcome.path));
  ++stats.calls;
  stats.latency_us.add(micros);
  // Building a record's fields costs more than the call's own bookkeeping: only when it is kept.
  auto fields = [&] {
    return json{{"call", pending->call_id}, {"tool", pending->tool}, {"path", outcome.path}, {"ms", micros / 1000.0}};
  };
  const bool debug = debug_logging();

  using S = CallOutcome::Status;
  switch (outcome.status) {
    case S::ok: {
      ++stats.ok;
      ++completed_;
      // The body is the CallToolResult object as the tool's side serialized it (result_body):
      // only _meta is spliced in before its closing brace. hit: from the L1 cache; joined: shared
      // an identical call in flight; miss: ran, and was stored; bypass: ran, and is not cacheable
      // (policy, cache off, or an unreadable path).
      const std::string& body = outcome.body;
      std::string meta = std::string(R"(,"_meta":{"mcpd/cache":")") + cache_state + R"(","mcpd/path":)";
      append_json_string(meta, outcome.path);
      meta += "}}";
      std::size_t size = body.size() + meta.size() - 1;
      if (body.size() < 2 || body.back() != '}') {
        ++stats.failed;
        ++failed_;
        pending->reply->result(tool_error_result("tool '" + pending->tool + "' returned no result object"));
        return;
      }
      if (size > config_.max_result_bytes) {
        ++stats.tool_errors;
        pending->reply->result(tool_error_result(
            "result of tool '" + pending->tool + "' is " + std::to_string(size) +
            " bytes, over max_result_bytes (" + std::to_string(config_.max_result_bytes) +
            "); narrow the request (limits such as max_nodes or a smaller range)"));
        return;
      }
      std::string result;
      result.reserve(size);
      result.append(body, 0, body.size() - 1).append(meta);
      pending->reply->result_text(std::move(result));
      if (debug) {
        json f = fields();
        if (outcome.retries > 0) f["retries"] = outcome.retries;
        log_debug("call done", std::move(f));
      }
      return;
    }
    case S::tool_error:
      ++stats.tool_errors;
      ++completed_;
      pending->reply->result(tool_error_result(outcome.error));
      if (debug) {
        json f = fields();
        f["error"] = outcome.error;
        log_debug("call failed", std::move(f));
      }
      return;
    case S::timeout:
      ++stats.timeouts;
      ++timeouts_;
      pending->reply->result(tool_error_result(outcome.error));
      log_warning("call timed out", fields());
      return;
    case S::cancelled:
      // Only reachable when the execution was cancelled for shutdown: the client did not cancel.
      ++stats.cancelled;
      pending->reply->error(error_code::internal_error, "call cancelled: the server is shutting down");
      return;
    case S::rejected:
      ++stats.failed;
      ++busy_rejections_;
      pending->reply->error(error_code::server_busy, outcome.error);
      return;
    case S::failed:
      ++stats.failed;
      ++failed_;
      pending->reply->result(tool_error_result(outcome.error));
      json f = fields();
      f["error"] = outcome.error;
      log_error("call failed", std::move(f));
      return;
  }
}

void McpServer::handle_cancelled(const json& params) {
  // requestId is required, reason optional: a malformed cancel is ignored (notifications get no
  // reply), and nothing here may read a member that is absent or of another type.
  const json* request_id = member(params, "requestId");
  if (!request_id || !is_valid_id(*request_id)) return;
  std::string key = id_key(*request_id);
  auto it = in_flight_.find(key);
  if (it == in_flight_.end()) return;  // finished already, or never seen: MCP says ignore
  std::unique_ptr<Pending> pending = std::move(it->second);
  in_flight_.erase(it);
  pending->reply->abandon();
  ++cancelled_;
  metrics_.of(pending->tool, "cancelled").cancelled++;
  log_info("call cancelled by the client",
           {{"call", pending->call_id}, {"tool", pending->tool},
            {"reason", string_or(params, "reason", "")}});
  if (!pending->flight) return;
  auto flight = flights_.find(*pending->flight);
  if (flight == flights_.end()) return;
  // Stop the execution only when no identical request still waits for it.
  if (--flight->second->interested == 0) {
    flight->second->cancel.cancel();
    std::string call_id = flight->second->call_id;
    CallOutcome outcome;
    outcome.status = CallOutcome::Status::cancelled;
    finish_flight(*pending->flight, outcome);
    executor_.cancel(call_id);
  } else if (flight->second->leader == key) {
    flight->second->leader.clear();  // progress had nowhere to go; the joiners still get the result
  }
}

void McpServer::send_progress(const std::string& request_key, double progress, double total,
                              const std::string& message) {
  auto it = in_flight_.find(request_key);
  if (it == in_flight_.end() || it->second->progress_token.is_null()) return;
  Pending& pending = *it->second;
  if (progress <= pending.last_progress) return;  // MCP: progress only grows
  pending.last_progress = progress;
  json params = {{"progressToken", pending.progress_token}, {"progress", progress}};
  if (total > 0) params["total"] = total;
  if (!message.empty()) params["message"] = message;
  notify_(make_notification("notifications/progress", std::move(params)));
}

void McpServer::forward_log(const std::string& level, const json& record) {
  if (log_level_rank(level) < notify_level_ || protocol_version_.empty()) return;
  notify_(make_notification("notifications/message",
                            {{"level", level}, {"logger", "mcpd"}, {"data", record}}));
}

json McpServer::status_result() {
  auto uptime = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - started_);
  return {{"server",
           {{"version", "0.1.0"},
            {"protocol_version", protocol_version_},
            {"uptime_ms", uptime.count()},
            {"in_flight", in_flight_.size()},
            {"executions_running", flights_.size()},
            {"executions_started", executions_},
            {"completed", completed_},
            {"failed", failed_},
            {"cancelled", cancelled_},
            {"timeouts", timeouts_},
            {"busy_rejections", busy_rejections_}}},
          {"cache", cache_status()},
          {"log", Log::instance().stats()},
          {"transport", transport_status_ ? transport_status_() : json::object()},
          {"executor", executor_.status()},
          {"tools", metrics_.to_json()}};
}

// ---------------------------------------------------------------------------------------------
// Shutdown

void McpServer::shutdown(std::function<void()> done, bool output_lost) {
  if (closing_) return;
  closing_ = true;
  on_closed_ = std::move(done);
  log_info("shutting down", {{"in_flight", in_flight_.size()}, {"output_lost", output_lost}});
  auto grace = output_lost ? std::chrono::milliseconds(0) : std::chrono::milliseconds(config_.shutdown_grace_ms);
  grace_timer_ = std::make_unique<asio::steady_timer>(loop_, grace);
  grace_timer_->async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    // Grace is over: cancel what still runs and answer its requests.
    std::vector<CacheKey> keys;
    for (const auto& [key, flight] : flights_) keys.push_back(key);
    for (const auto& key : keys) {
      auto it = flights_.find(key);
      if (it == flights_.end()) continue;
      it->second->cancel.cancel();
      std::string call_id = it->second->call_id;
      CallOutcome outcome;
      outcome.status = CallOutcome::Status::cancelled;
      finish_flight(key, outcome);
      executor_.cancel(call_id);
    }
    in_flight_.clear();  // any left settle through ReplyOnce's destructor
    maybe_finish_shutdown();
  });
  maybe_finish_shutdown();
}

void McpServer::maybe_finish_shutdown() {
  if (!closing_ || !in_flight_.empty() || !on_closed_) return;
  if (grace_timer_) grace_timer_->cancel();
  auto done = std::move(on_closed_);
  on_closed_ = nullptr;
  done();
}

}  // namespace mcpd
