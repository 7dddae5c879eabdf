#include "legacy_executor.h"

#include <boost/asio/post.hpp>

#include "log.h"
#include "tool_runner.h"
#include "worker_protocol.h"

namespace mcpd {

namespace asio = boost::asio;

namespace {

CallOutcome to_outcome(const Tool& tool, ToolRun run) {
  CallOutcome out;
  // Serialized here, on the tool's thread, not on the event loop.
  if (run.status == ToolRun::Status::ok) out.body = result_body(tool, run.result);
  out.error = std::move(run.error);
  switch (run.status) {
    case ToolRun::Status::ok: out.status = CallOutcome::Status::ok; break;
    case ToolRun::Status::tool_error: out.status = CallOutcome::Status::tool_error; break;
    case ToolRun::Status::cancelled: out.status = CallOutcome::Status::cancelled; break;
    case ToolRun::Status::failed: out.status = CallOutcome::Status::failed; break;
  }
  return out;
}

}  // namespace

LegacyExecutor::LegacyExecutor(asio::io_context& loop, const Config& config)
    : loop_(loop),
      config_(config),
      root_dirs_(std::make_shared<const RootDirs>(config.roots)),
      threads_(static_cast<std::size_t>(config.legacy_threads)) {}

LegacyExecutor::~LegacyExecutor() {
  threads_.stop();
  threads_.join();
}

void LegacyExecutor::execute(CallRequest request, Done done) {
  asio::post(threads_, [this, request = std::move(request), done = std::move(done)]() mutable {
    ToolContext context;
    context.roots = config_.roots;
    context.root_dirs = root_dirs_;
    context.cancel = request.cancel;
    context.max_file_bytes = config_.max_file_bytes;
    context.max_result_bytes = config_.max_result_bytes;
    context.max_result_depth = worker_protocol::max_result_depth;
    context.allow_writes = config_.allow_writes;
    context.progress = request.progress;
    std::string call_id = request.call_id, tool = request.tool->name;
    context.log = [call_id, tool](const std::string& level, const std::string& message) {
      Log::instance().write(level, message, {{"call", call_id}, {"tool", tool}, {"path", "legacy"}});
    };
    CallOutcome outcome;
    if (request.cancel.cancelled()) {
      outcome.status = CallOutcome::Status::cancelled;
    } else {
      // The state before the handler runs (tool.h, CachePolicy::custom), on this thread: the event
      // loop never runs a family's key.
      std::optional<CacheVoucher> voucher = cache_voucher(*request.tool, request.arguments, config_.roots);
      outcome = to_outcome(*request.tool, run_tool(*request.tool, request.arguments, context));
      if (voucher && outcome.status == CallOutcome::Status::ok)
        outcome.voucher = std::make_shared<const Voucher>(Voucher{"legacy", std::move(voucher->state), std::move(voucher->tag)});
    }
    outcome.path = "legacy";
    asio::post(loop_, [done = std::move(done), outcome = std::move(outcome)]() mutable {
      done(std::move(outcome));
    });
  });
}

void LegacyExecutor::revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                                std::function<void(bool)> done) {
  asio::post(threads_, [this, &tool, arguments, state = voucher.state, done = std::move(done)]() mutable {
    bool current = cache_state_current(tool, arguments, config_.roots, state);
    asio::post(loop_, [done = std::move(done), current] { done(current); });
  });
}

json LegacyExecutor::status() const { return {{"threads", config_.legacy_threads}}; }

}  // namespace mcpd
