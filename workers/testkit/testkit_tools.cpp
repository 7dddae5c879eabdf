#include "testkit_tools.h"

#include <chrono>
#include <thread>

#include "worker_runtime.h"

namespace mcpd {

namespace {

Tool sleep_tool() {
  Tool t;
  t.name = "test_sleep";
  t.title = "Sleep (test only)";
  t.description =
      "Test tool: sleeps `ms` milliseconds in `steps` steps, reporting progress after each and "
      "stopping when cancelled. `tag` only makes otherwise identical calls distinct.";
  t.input_schema = {
      {"type", "object"},
      {"properties",
       {{"ms", {{"type", "integer"}, {"minimum", 0}, {"maximum", 600000}, {"description", "how long"}}},
        {"steps", {{"type", "integer"}, {"minimum", 1}, {"maximum", 10000}, {"description", "progress steps"}}},
        {"ignore_cancel", {{"type", "boolean"}, {"description", "keep sleeping when cancelled (a hung tool)"}}},
        {"tag", {{"type", "string"}, {"description", "free text, part of the cache key"}}}}},
      {"required", {"ms"}},
      {"additionalProperties", false}};
  t.output_schema = {{"type", "object"},
                     {"properties", {{"slept_ms", {{"type", "integer"}}}, {"tag", {{"type", "string"}}}}}};
  t.annotations = {true, false, true, false};
  t.cache = CachePolicy::pure;
  t.handler = [](const json& args, ToolContext& ctx) {
    auto ms = args["ms"].get<std::int64_t>();
    auto steps = args.value("steps", 1);
    bool ignore_cancel = args.value("ignore_cancel", false);
    auto start = std::chrono::steady_clock::now();
    for (int i = 1; i <= steps; ++i) {
      auto until = start + std::chrono::milliseconds(ms * i / steps);
      while (std::chrono::steady_clock::now() < until) {
        if (!ignore_cancel) ctx.check_cancelled();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
      ctx.report(i, steps, "step " + std::to_string(i) + " of " + std::to_string(steps));
    }
    ToolResult r;
    r.structured = {{"slept_ms", ms}, {"tag", args.value("tag", "")}};
    return r;
  };
  return t;
}

Tool echo_tool() {
  Tool t;
  t.name = "test_echo";
  t.title = "Echo (test only)";
  t.description =
      "Test tool: returns its `value` argument unchanged. With `log`, also logs that text at info level "
      "`log_repeat` times (for log forwarding tests). Not cached.";
  t.input_schema = {
      {"type", "object"},
      {"properties",
       {{"value", {{"description", "any JSON value"}}},
        {"log", {{"type", "string"}, {"description", "text to log at info level"}}},
        {"log_repeat", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100000}, {"description", "times to log it"}}}}},
      {"additionalProperties", false}};
  t.output_schema = {{"type", "object"}, {"properties", {{"value", json::object()}}}};
  t.annotations = {true, false, true, false};
  t.cache = CachePolicy::never;
  t.handler = [](const json& args, ToolContext& ctx) {
    if (args.contains("log") && ctx.log) {
      auto text = args["log"].get<std::string>();
      auto times = args.value("log_repeat", 1);
      for (int i = 0; i < times; ++i) ctx.log("info", text);
    }
    ToolResult r;
    r.structured = {{"value", args.value("value", json())}};
    return r;
  };
  return t;
}

}  // namespace

std::vector<Tool> testkit_tools() { return {sleep_tool(), echo_tool(), test_fault_tool(false), test_fault_tool(true)}; }

Family testkit_family() {
  Family family;
  family.kind = "testkit";
  family.instructions = "test tools (test_sleep, test_echo, test_fault) for mcpd's own tests";
  family.test_only = true;
  family.make = [](const json&) { return FamilyInstance{testkit_tools(), nullptr, nullptr}; };
  return family;
}

}  // namespace mcpd
