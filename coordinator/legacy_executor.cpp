#include "legacy_executor.h"

#include <boost/asio/post.hpp>

#include "log.h"

namespace mcpd {

namespace asio = boost::asio;

CallOutcome run_tool(const Tool& tool, const json& arguments, ToolContext& context) {
  CallOutcome out;
  try {
    out.result = tool.handler(arguments, context);
    out.status = CallOutcome::Status::ok;
  } catch (const ToolError& e) {
    out.status = CallOutcome::Status::tool_error;
    out.error = e.what();
  } catch (const ToolCancelled&) {
    out.status = CallOutcome::Status::cancelled;
    out.error = "cancelled";
  } catch (const std::bad_alloc&) {
    out.status = CallOutcome::Status::failed;
    out.error = "tool '" + tool.name + "' ran out of memory";
  } catch (const std::exception& e) {
    // A bug in a tool, not the user's fault: say so rather than pretend it was bad input.
    out.status = CallOutcome::Status::failed;
    out.error = "internal error in tool '" + tool.name + "': " + e.what();
  }
  return out;
}

LegacyExecutor::LegacyExecutor(asio::io_context& loop, const Config& config)
    : loop_(loop), config_(config), threads_(static_cast<std::size_t>(config.legacy_threads)) {}

LegacyExecutor::~LegacyExecutor() {
  threads_.stop();
  threads_.join();
}

void LegacyExecutor::execute(CallRequest request, Done done) {
  asio::post(threads_, [this, request = std::move(request), done = std::move(done)]() mutable {
    ToolContext context;
    context.roots = config_.roots;
    context.cancel = request.cancel;
    context.max_file_bytes = config_.max_file_bytes;
    context.max_result_bytes = config_.max_result_bytes;
    context.progress = request.progress;
    std::string call_id = request.call_id, tool = request.tool->name;
    context.log = [call_id, tool](const std::string& level, const std::string& message) {
      Log::instance().write(level, message, {{"call", call_id}, {"tool", tool}, {"path", "legacy"}});
    };
    CallOutcome outcome;
    if (request.cancel.cancelled()) {
      outcome.status = CallOutcome::Status::cancelled;
    } else {
      outcome = run_tool(*request.tool, request.arguments, context);
    }
    outcome.path = "legacy";
    asio::post(loop_, [done = std::move(done), outcome = std::move(outcome)]() mutable {
      done(std::move(outcome));
    });
  });
}

void LegacyExecutor::shutdown() {}

}  // namespace mcpd
