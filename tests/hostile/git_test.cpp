// Class 3, "git reaches outside the roots", and git's half of class 5, "two limits disagree".
// Through the real mcpd and its git worker: a repository inside the roots whose alternates, or whose
// .git file, lead to a repository outside them (whose commit carries a marker no request holds), and
// a diff far larger than max_result_bytes asked for with a huge max_bytes. Each is answered with a
// clear error or a truncated answer, never with outside content or a refused result.
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "hostile_support.h"

namespace {

namespace fs = std::filesystem;
using mcpd::json;
using mcpd::McpClient;
using mcpd::test::check_still_serves;
using mcpd::test::start_mcpd;
using mcpd::test::TempDir;
using mcpd::test::text_of;

// Only ever in the repository outside the roots; an answer holding it read there.
const std::string kMarker = "OUTSIDE_GIT_MARKER_51c9";

/// Runs git in `dir` with a fixed identity and no user or system config; returns its stdout.
std::string git(const fs::path& dir, const std::string& args) {
  static TempDir home;
  std::string command = "cd '" + dir.string() + "' && HOME='" + home.path.string() +
                        "' GIT_CONFIG_NOSYSTEM=1 git -c user.name=Test -c user.email=test@example.com "
                        "-c init.defaultBranch=main " + args;
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[4096];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int status = ::pclose(pipe);
  REQUIRE_MESSAGE(status == 0, "git " << args << " failed");
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

/// A repository at `dir` with one commit of `file` holding `content`; returns the commit id.
std::string make_repository(const fs::path& dir, const std::string& file, const std::string& content) {
  fs::create_directories(dir);
  git(dir, "init -q");
  std::ofstream(dir / file, std::ios::binary) << content;
  git(dir, "add -A");
  git(dir, "commit -q -m 'a commit'");
  return git(dir, "rev-parse HEAD");
}

struct Setup {
  TempDir outside_dir;
  TempDir root;
  fs::path outside = outside_dir.path / "outside";
  fs::path inside = root.path / "inside";
  std::string outside_commit = make_repository(outside, "secret.txt", kMarker + "\n");
  std::string inside_commit = make_repository(inside, "file.txt", "inside\n");
  json status_args() const { return {{"repo_path", inside.string()}}; }
};

std::unique_ptr<McpClient> start(const Setup& setup, std::vector<std::string> extra = {}) {
  std::vector<std::string> args = {"--root", setup.root.path.string(), "--cache_enabled", "false"};
  args.insert(args.end(), extra.begin(), extra.end());
  auto client = start_mcpd(args);
  client->initialize();
  return client;
}

TEST_CASE("git: alternates leading outside the roots are refused, naming the directory") {
  Setup setup;
  std::ofstream(setup.inside / ".git" / "objects" / "info" / "alternates")
      << (setup.outside / ".git" / "objects").string() << "\n";
  auto client = start(setup);
  // The outside commit's id, as a client that knows it (or guesses a public one) would ask.
  for (const char* tool : {"git_show", "git_log"}) {
    CAPTURE(tool);
    json args = {{"repo_path", setup.inside.string()}, {"revision", setup.outside_commit}};
    json result = client->call_tool(tool, args);
    CHECK(result["isError"] == true);
    std::string text = text_of(result);
    CHECK_MESSAGE(text.find("objects/info/alternates") != std::string::npos, text);
    CHECK_MESSAGE(text.find((setup.outside / ".git" / "objects").string()) != std::string::npos, text);
    CHECK(text.find(kMarker) == std::string::npos);
  }
  // The repository is usable again once the alternates are gone.
  fs::remove(setup.inside / ".git" / "objects" / "info" / "alternates");
  check_still_serves(*client, "git_status", setup.status_args());
}

TEST_CASE("git: a .git file whose gitdir is outside the roots is refused, with writes on too") {
  Setup setup;
  fs::path work = setup.root.path / "work";
  fs::create_directories(work);
  std::ofstream(work / ".git") << "gitdir: " << (setup.outside / ".git").string() << "\n";
  auto client = start(setup, {"--allow_writes", "true"});
  std::string head_before = git(setup.outside, "rev-parse HEAD");
  json show = client->call_tool("git_show", {{"repo_path", work.string()}, {"revision", "HEAD"}});
  CHECK(show["isError"] == true);
  CHECK(text_of(show).find(kMarker) == std::string::npos);
  CHECK_MESSAGE(text_of(show).find("via the .git file") != std::string::npos, text_of(show));
  json commit = client->call_tool("git_commit", {{"repo_path", work.string()}, {"message", "escaped"}});
  CHECK(commit["isError"] == true);
  CHECK_MESSAGE(text_of(commit).find("is outside the allowed roots") != std::string::npos, text_of(commit));
  CHECK(git(setup.outside, "rev-parse HEAD") == head_before);
  check_still_serves(*client, "git_status", setup.status_args());
}

TEST_CASE("git: a huge max_bytes is clamped to max_result_bytes, and the answer is cut, not refused") {
  Setup setup;
  // Short lines full of quotes and backslashes: the costliest text a result can carry.
  std::string lines;
  for (int i = 0; i < 40000; ++i) lines += "\"\\q" + std::to_string(i) + "\\\"\n";
  std::ofstream(setup.inside / "quotes.txt", std::ios::binary) << lines;
  git(setup.inside, "add -A");
  git(setup.inside, "commit -q -m 'many quoted lines'");
  std::string changed;  // every line changed, unstaged
  for (int i = 0; i < 40000; ++i) changed += "\"\\r" + std::to_string(i) + "\\\"\n";
  std::ofstream(setup.inside / "quotes.txt", std::ios::binary) << changed;
  constexpr std::uint64_t kMaxResult = 256 * 1024;
  auto client = start(setup, {"--max_result_bytes", std::to_string(kMaxResult)});
  std::int64_t huge = std::int64_t{1} << 40;
  json calls = json::array({{"git_diff", {{"repo_path", setup.inside.string()}, {"max_bytes", huge}}},
                            {"git_diff", {{"repo_path", setup.inside.string()}, {"from", "HEAD~1"}, {"to", "HEAD"},
                                          {"max_bytes", huge}}},
                            {"git_show", {{"repo_path", setup.inside.string()}, {"max_bytes", huge}}},
                            {"git_show", {{"repo_path", setup.inside.string()}, {"path", "quotes.txt"},
                                          {"max_bytes", huge}}},
                            {"git_blame", {{"repo_path", setup.inside.string()}, {"path", "quotes.txt"},
                                           {"max_bytes", huge}}}});
  for (const auto& entry : calls) {
    std::string tool = entry[0];
    CAPTURE(tool);
    CAPTURE(entry[1].dump());
    json result = client->call_tool(tool, entry[1]);
    REQUIRE_MESSAGE(result["isError"] == false, result.dump().substr(0, 500));
    CHECK(result["structuredContent"]["truncated"] == true);
    CHECK(result.dump().size() <= kMaxResult);
  }
  check_still_serves(*client, "git_status", setup.status_args());
}

}  // namespace
