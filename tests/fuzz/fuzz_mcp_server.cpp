// The coordinator's dispatcher: McpServer::on_line with everything a client may send (lifecycle,
// batches, tools/call with any arguments, cancellation, logging/setLevel), over the parser tools.
// The executor runs each call at once and posts its outcome to the loop, as the legacy path does
// from its threads, so a run is deterministic; the L1 cache and single flight are in front of it as in mcpd. Every message
// the server sends is serialized as the transport would. A message that is not a JSON object or
// array is a crash, like any exception escaping on_line.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

#include "config.h"
#include "executor.h"
#include "line_reader.h"
#include "log.h"
#include "mcp_server.h"
#include "parser_tools.h"
#include "tool_runner.h"

using namespace mcpd;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

class InlineExecutor : public Executor {
 public:
  explicit InlineExecutor(boost::asio::io_context& loop, const Config& config) : loop_(loop), config_(config) {}
  void execute(CallRequest request, Done done) override {
    ToolContext context;
    context.roots = config_.roots;
    context.cancel = request.cancel;
    context.max_file_bytes = config_.max_file_bytes;
    context.max_result_bytes = config_.max_result_bytes;
    context.progress = request.progress;
    CallOutcome outcome;
    ToolRun run = run_tool(*request.tool, request.arguments, context);
    if (run.status == ToolRun::Status::ok) outcome.body = result_body(*request.tool, run.result);
    outcome.error = std::move(run.error);
    switch (run.status) {
      case ToolRun::Status::ok: outcome.status = CallOutcome::Status::ok; break;
      case ToolRun::Status::tool_error: outcome.status = CallOutcome::Status::tool_error; break;
      case ToolRun::Status::cancelled: outcome.status = CallOutcome::Status::cancelled; break;
      case ToolRun::Status::failed: outcome.status = CallOutcome::Status::failed; break;
    }
    outcome.path = "legacy";
    boost::asio::post(loop_, [done = std::move(done), outcome = std::move(outcome)]() mutable {
      done(std::move(outcome));
    });
  }

 private:
  boost::asio::io_context& loop_;
  const Config& config_;
};

const Config& fuzz_config() {
  static const Config config = [] {
    Config c;
    // An empty directory: file paths resolve and are refused or missing, never read elsewhere.
    auto root = std::filesystem::temp_directory_path() / "mcpd-fuzz-root";
    std::filesystem::create_directories(root);
    c.roots = {std::filesystem::canonical(root)};
    c.max_line_bytes = 64 * 1024;
    c.max_in_flight = 16;
    c.max_result_bytes = 256 * 1024;
    c.cache_max_entries = 8;
    c.shutdown_grace_ms = 0;
    Log::instance().set_level("emergency");  // logs would only slow the fuzzer down
    return c;
  }();
  return config;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::vector<Tool> tools = parser_tools();
  const Config& config = fuzz_config();
  boost::asio::io_context loop;
  InlineExecutor executor(loop, config);
  std::size_t sent = 0;
  {
    McpServer server(loop, config, [&sent](json message) {
      require(message.is_object() || message.is_array());
      encode_line(message);
      ++sent;
    }, executor);
    server.add_tools(tools);

    LineReader reader(config.max_line_bytes);
    reader.feed(std::string_view(reinterpret_cast<const char*>(data), size));
    for (;;) {
      LineReader::Event event = reader.next();
      if (event.kind == LineReader::Event::Kind::need_more) break;
      if (event.kind == LineReader::Event::Kind::line_too_long) server.on_oversize_line(event.bytes);
      else server.on_line(event.line);
      // Calls finish only when the loop runs. Running it after lines of even length only lets the
      // fuzzer choose which calls are still in flight when the next message (a cancel, a
      // duplicate id, a shutdown) arrives.
      if (event.line.size() % 2 == 0) {
        loop.poll();
        loop.restart();
      }
    }
    if (auto last = reader.flush_at_eof()) server.on_line(*last);
    loop.poll();
    loop.restart();
    bool closed = false;
    server.shutdown([&closed] { closed = true; });
    loop.poll();
    // Every call ran at once and the grace period is 0: nothing may keep the server open.
    require(closed);
  }
  return 0;
}
