// Hostile configuration, as the config loader's fuzzer (tests/fuzz/fuzz_config.cpp) found it: JSON
// nested deep enough to overflow the stack when printed, and bytes that are not UTF-8 where JSON
// must carry them. mcpd must refuse each with exit status 2 and a message naming the key, never
// die of a signal or an uncaught exception.
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "hostile_support.h"

using namespace std::chrono_literals;
using namespace mcpd;
using namespace mcpd::test;

namespace {

struct Run {
  int status = -1;  // the wait status
  std::string output;  // stdout, then stderr
};

Run run_mcpd(std::vector<std::string> args, std::vector<std::string> env) {
  TempDir out;
  std::vector<std::string> argv = {mcpd_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess::Options options;
  options.env_extra = std::move(env);
  options.stderr_path = (out.path / "err").string();
  ChildProcess child(argv, options);
  child.close_stdin();
  Run run;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(child.stdout_fd(), buf, sizeof buf)) > 0) run.output.append(buf, static_cast<std::size_t>(n));
  auto status = child.wait(20s);
  REQUIRE_MESSAGE(status, "mcpd did not exit");
  run.status = *status;
  std::ifstream err(out.path / "err");
  run.output.append(std::istreambuf_iterator<char>(err), std::istreambuf_iterator<char>());
  return run;
}

std::string nested(std::size_t depth) { return std::string(depth, '[') + std::string(depth, ']'); }

}  // namespace

TEST_CASE("hostile configuration: deep nesting and invalid UTF-8 are refused naming the key") {
  TempDir dir;
  auto file = [&dir](const std::string& name, const std::string& text) {
    std::ofstream(dir.path / name) << text;
    return (dir.path / name).string();
  };
  struct Case {
    const char* what;
    std::vector<std::string> args;
    std::vector<std::string> env;
    const char* named;  // the message must contain this
  };
  // 60,000 levels stay under the kernel's 128 KiB bound on one argument or environment string.
  const std::vector<Case> cases = {
      {"deep flag value", {"--print-config", "--workers", nested(60000)}, {}, "workers"},
      {"deep environment value", {"--print-config"}, {"MCPD_TOOL_MODES=" + nested(60000)}, "MCPD_TOOL_MODES"},
      {"deep config file", {"--print-config", "--config", file("deep.json", "{\"search\": " + nested(1000000) + "}")}, {},
       "deep.json"},
      {"deep family setting", {"--print-config", "--search", "{\"threads\": " + nested(600) + "}"}, {}, "search"},
      {"flag not UTF-8", {"--print-config", "--worker_dir", "\xff"}, {}, "worker_dir"},
      {"environment not UTF-8", {"--print-config"}, {"MCPD_ROOTS=/tmp/\xc3"}, "MCPD_ROOTS"},
      {"config file not UTF-8", {"--print-config", "--config", file("latin1.json", "{\"log_level\": \"d\xe9""bug\"}")}, {},
       "latin1.json"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Run run = run_mcpd(c.args, c.env);
    CHECK_MESSAGE(WIFEXITED(run.status), "mcpd died: wait status " << run.status << ", output: " << run.output.substr(0, 500));
    CHECK(WEXITSTATUS(run.status) == 2);
    CHECK_MESSAGE(run.output.find(c.named) != std::string::npos, run.output.substr(0, 500));
  }

  // A bad value is quoted in the message, but not a megabyte of it.
  Run run = run_mcpd({"--print-config", "--tool_timeouts_ms", "{\"code_parse\": \"" + std::string(100000, 'x') + "\"}"}, {});
  CHECK(WEXITSTATUS(run.status) == 2);
  CHECK(run.output.find("tool_timeouts_ms") != std::string::npos);
  CHECK(run.output.size() < 2000);

  auto client = start_mcpd();
  client->initialize();
  check_still_serves(*client, "code_parse", trivial_parse());
}
