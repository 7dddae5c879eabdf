// Specifies that every git tool stays within the server's max_result_bytes, whatever max_bytes asks
// for: the answer is cut and says `truncated`, never refused by the server as too large. The result
// is measured the way the server builds it: the structured JSON, plus the same JSON serialized
// into the text content (where every quote and backslash is escaped once more).
#include "git_fixture.h"

namespace {

using namespace mcpd;
using namespace mcpd::test;

constexpr std::uint64_t kMaxResult = 64 * 1024;

/// The size of the MCP result the server would send for `structured`.
std::size_t result_size(const json& structured) {
  std::string text = structured.dump(-1, ' ', false, json::error_handler_t::replace);
  json result = {{"content", json::array({{{"type", "text"}, {"text", text}}})},
                 {"isError", false},
                 {"structuredContent", structured},
                 {"_meta", {{"mcpd/cache", "bypass"}, {"mcpd/path", "pool"}}}};
  return result.dump(-1, ' ', false, json::error_handler_t::replace).size();
}

ToolContext small_results(const GitRepo& repo, bool writes = false) {
  ToolContext context = context_for(repo.root(), writes);
  context.max_result_bytes = kMaxResult;
  return context;
}

/// Lines that cost the most in a result: short, full of quotes and backslashes.
std::string costly_lines(std::size_t count, const std::string& tag) {
  std::string out;
  for (std::size_t i = 0; i < count; ++i) out += "\"\\" + tag + std::to_string(i) + "\\\"\n";
  return out;
}

void check_bounded(const std::string& tool, const json& arguments, const ToolContext& context) {
  CAPTURE(tool);
  CAPTURE(arguments.dump());
  json out = call(tool, arguments, context);
  std::size_t size = result_size(out);
  CHECK_MESSAGE(size <= kMaxResult, tool << " result is " << size << " bytes");
  CHECK(out["truncated"] == true);
  // Not cut to nothing: most of the room is used.
  CHECK_MESSAGE(size > kMaxResult / 3, tool << " result is only " << size << " bytes");
}

TEST_CASE("diffs and shows are cut to fit max_result_bytes, whatever max_bytes asks for") {
  GitRepo repo;
  repo.write("quotes.txt", costly_lines(20000, "a"));
  std::string first = repo.commit("many quoted lines");
  repo.write("quotes.txt", costly_lines(20000, "b"));
  std::string second = repo.commit("all of them changed");
  repo.write("quotes.txt", costly_lines(20000, "c"));  // unstaged
  ToolContext context = small_results(repo);
  std::int64_t huge = std::int64_t{1} << 40;

  check_bounded("git_diff", repo_args(repo, {{"max_bytes", huge}}), context);
  check_bounded("git_diff", repo_args(repo, {{"from", first}, {"to", second}, {"max_bytes", huge}}), context);
  check_bounded("git_show", repo_args(repo, {{"revision", second}, {"max_bytes", huge}}), context);
  check_bounded("git_show", repo_args(repo, {{"revision", second}, {"path", "quotes.txt"}, {"max_bytes", huge}}),
                context);
  check_bounded("git_blame", repo_args(repo, {{"path", "quotes.txt"}, {"max_bytes", huge}}), context);

  // The caller's smaller max_bytes still applies to the structured JSON.
  json small = call("git_diff", repo_args(repo, {{"max_bytes", 4096}}), context);
  CHECK(small.dump().size() <= 4096 + 1024);
  CHECK(small["truncated"] == true);
}

TEST_CASE("huge commit messages, many files and many branches are cut to fit max_result_bytes") {
  GitRepo repo;
  std::string message = "summary\n\n" + costly_lines(20000, "m");
  repo.write("a.txt", "a\n");
  repo.tick();
  repo.git("add a.txt");
  repo.write("message.txt", message);
  repo.git("commit -q -F message.txt");
  std::remove((repo.path() / "message.txt").c_str());
  for (int i = 0; i < 3000; ++i) repo.write("dir/\"quoted\\" + std::to_string(i) + ".txt", "x\n");
  std::string many = repo.commit("many files");
  for (int i = 0; i < 3000; ++i) repo.write("untracked \"u\\" + std::to_string(i), "u\n");
  int status = 0;
  run_shell(repo.path(),
            "head=$(git rev-parse HEAD) && for i in $(seq 1 1500); do echo \"$head refs/heads/branch-$i\"; done "
            ">> .git/packed-refs",
            &status);
  REQUIRE(status == 0);
  ToolContext context = small_results(repo);
  std::int64_t huge = std::int64_t{1} << 40;

  check_bounded("git_show", repo_args(repo, {{"revision", "HEAD~1"}, {"max_bytes", huge}}), context);
  check_bounded("git_show", repo_args(repo, {{"revision", many}, {"max_bytes", huge}}), context);
  check_bounded("git_log", repo_args(repo, {{"include_files", true}, {"max_bytes", huge}}), context);
  check_bounded("git_status", repo_args(repo, {{"max_bytes", huge}}), context);
  check_bounded("git_branches", repo_args(repo, {{"max_bytes", huge}}), context);

  // A write tool lists what it staged within the bound too, and says how many there were.
  json added = call("git_add", repo_args(repo, {{"paths", {"."}}}), small_results(repo, true));
  CHECK(result_size(added) <= kMaxResult);
  CHECK(added["truncated"] == true);
  CHECK(added["count"] == 3000);
}

}  // namespace
