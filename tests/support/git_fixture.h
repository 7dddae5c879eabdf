// Real git repositories for the git tool tests, built with the git CLI (which is also the oracle the
// tools are compared with), and the helpers that call a tool the way the runtime does.
//
// Every git command runs with a fixed identity, fixed dates (one hour apart, from 2024-01-01) and a
// private HOME, so repositories and answers are the same on every run.
#pragma once

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "git_tools.h"
#include "schema.h"
#include "temp_dir.h"

namespace mcpd::test {

namespace fs = std::filesystem;

/// The environment every git command and the tools see: no user or system config, one identity.
inline const TempDir& git_home() {
  static TempDir home;
  [[maybe_unused]] static bool set = [] {
    ::setenv("HOME", home.path.c_str(), 1);
    ::setenv("XDG_CONFIG_HOME", (home.path / "xdg").c_str(), 1);
    ::setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
    ::setenv("GIT_AUTHOR_NAME", "Ada Lovelace", 1);
    ::setenv("GIT_AUTHOR_EMAIL", "ada@example.com", 1);
    ::setenv("GIT_COMMITTER_NAME", "Ada Lovelace", 1);
    ::setenv("GIT_COMMITTER_EMAIL", "ada@example.com", 1);
    ::setenv("TZ", "UTC", 1);
    return true;
  }();
  return home;
}

/// Single-quotes `text` for sh.
inline std::string shell_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

/// Runs `command` with sh in `dir`; returns its stdout and sets *status to its exit status.
inline std::string run_shell(const fs::path& dir, const std::string& command, int* status) {
  git_home();
  std::string full = "cd " + shell_quote(dir.string()) + " && " + command;
  FILE* pipe = ::popen(full.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string out;
  char buffer[65536];
  std::size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) out.append(buffer, n);
  int rc = ::pclose(pipe);
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
  return out;
}

/// A git repository in a fresh temp directory (or a subdirectory of one), initialized on branch
/// main with user.name and user.email set.
class GitRepo {
 public:
  explicit GitRepo(bool init = true, const std::string& init_options = "") {
    path_ = dir_.path / "repo";
    fs::create_directories(path_);
    if (init) {
      git("-c init.defaultBranch=main init -q " + init_options);
      git("config user.name 'Ada Lovelace'");
      git("config user.email ada@example.com");
    }
  }

  const fs::path& path() const { return path_; }

  /// Makes this repository (constructed with init false) a clone of `upstream`, with the same
  /// committer identity as a fresh one.
  void clone_from(const GitRepo& upstream) {
    int status = 0;
    run_shell(dir_.path, "rmdir repo && git clone -q " + shell_quote(upstream.path().string()) + " repo", &status);
    REQUIRE_MESSAGE(status == 0, "git clone failed with " << status);
    git("config user.name 'Ada Lovelace'");
    git("config user.email ada@example.com");
  }

  /// The temp directory holding the repository: the root the tools are given.
  const fs::path& root() const { return dir_.path; }

  /// Runs `git <args>` (args already quoted for sh) in the repository; fails the test on a non-zero
  /// exit unless `allow_failure`.
  std::string git(const std::string& args, bool allow_failure = false) const {
    int status = 0;
    std::string out = run_shell(path_, dated() + " git " + args + " 2>/dev/null", &status);
    if (!allow_failure) REQUIRE_MESSAGE(status == 0, "git " << args << " failed with " << status);
    return out;
  }

  /// The exit status of `git <args>`.
  int git_status(const std::string& args) const {
    int status = 0;
    run_shell(path_, dated() + " git " + args + " >/dev/null 2>&1", &status);
    return status;
  }

  /// Writes a file (parents created) relative to the work tree.
  void write(const std::string& name, const std::string& content) const {
    fs::path p = path_ / name;
    fs::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
  }

  /// Stages everything and commits with the next fixed date; returns the new commit id.
  std::string commit(const std::string& message) {
    tick();
    git("add -A");
    git("commit -q -m " + shell_quote(message));
    return head();
  }

  /// Advances the fixed clock by an hour (every commit-making command should be preceded by this).
  void tick() { ++clock_; }

  std::string head() const { return trim(git("rev-parse HEAD")); }

  static std::string trim(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
  }

 private:
  std::string dated() const {
    std::string date = "'@" + std::to_string(1704067200 + clock_ * 3600) + " +0000'";
    return "GIT_AUTHOR_DATE=" + date + " GIT_COMMITTER_DATE=" + date;
  }

  TempDir dir_;
  fs::path path_;
  int clock_ = 0;
};

/// A path with non-ASCII characters: "docs/ünicöde файл.txt".
inline const std::string kUnicodePath = "docs/\xc3\xbc" "nic\xc3\xb6" "de \xd1\x84\xd0\xb0\xd0\xb9\xd0\xbb.txt";

/// A history with most of what git can record: commits on two branches and a merge, an annotated
/// tag, a rename with an edit, a binary file changed twice, unicode paths, a file without a final
/// newline. main ends at the commit that renames util.c; feature is merged into main.
inline void build_rich_history(GitRepo& repo) {
  repo.write("README.md", "# Demo\n\nA small project.\n");
  repo.write("src/main.c", "#include <stdio.h>\n\nint main(void) {\n  printf(\"hello\\n\");\n  return 0;\n}\n");
  repo.write("data.bin", std::string("\x00\x01\x02\x03" "binary\x00" "data", 15));
  repo.write(kUnicodePath, "unicode path\n");
  repo.write("notes.txt", "no final newline");
  repo.commit("Initial commit");
  repo.write("src/main.c",
             "#include <stdio.h>\n\nint main(void) {\n  printf(\"hello, world\\n\");\n  return 0;\n}\n");
  repo.commit("Greet the world");
  repo.tick();
  repo.git("tag -a v1.0 -m 'Version 1.0'");
  repo.git("checkout -q -b feature");
  repo.write("src/util.c", "int add(int a, int b) {\n  return a + b;\n}\n\nint sub(int a, int b) {\n  return a - b;\n}\n");
  repo.commit("Add util.c");
  repo.git("checkout -q main");
  repo.write("README.md", "# Demo\n\nA small project.\n\nBuild with make.\n");
  repo.commit("Document the build");
  repo.tick();
  repo.git("merge -q --no-ff feature -m 'Merge branch feature'");
  repo.write("data.bin", std::string("\x00\x01\x02\x04" "binary\x00" "data!", 16));
  repo.commit("Change the binary");
  repo.tick();
  repo.git("mv src/util.c src/helpers.c");
  repo.write("src/helpers.c",
             "int add(int a, int b) {\n  return a + b;\n}\n\nint sub(int a, int b) {\n  return a - b;\n}\n\nint neg(int a) { return -a; }\n");
  repo.commit("Rename util.c to helpers.c");
}

/// The tool called `name`.
inline const Tool& git_tool(const std::string& name) {
  static const std::vector<Tool> tools = git_tools();
  for (const auto& t : tools)
    if (t.name == name) return t;
  throw std::runtime_error("no tool " + name);
}

/// A context whose only root is `root`.
inline ToolContext context_for(const fs::path& root, bool allow_writes = false) {
  ToolContext context;
  context.roots = {fs::canonical(root)};
  context.allow_writes = allow_writes;
  return context;
}

/// Calls a tool as the runtime would after validating the arguments against its input schema, and
/// checks that the answer serializes and matches the output schema.
inline json call(const std::string& name, const json& arguments, ToolContext context) {
  const Tool& tool = git_tool(name);
  auto invalid = validate_schema(tool.input_schema, arguments);
  REQUIRE_MESSAGE(!invalid, name << ": " << invalid.value_or(""));
  ToolResult result = tool.handler(arguments, context);
  std::string dumped;
  REQUIRE_NOTHROW(dumped = result.structured.dump());
  auto mismatch = validate_schema(tool.output_schema, result.structured);
  CHECK_MESSAGE(!mismatch, name << " output: " << mismatch.value_or(""));
  return result.structured;
}

/// The ToolError message a call fails with ("" and a failed check if it does not fail).
inline std::string error_of(const std::string& name, const json& arguments, ToolContext context) {
  try {
    git_tool(name).handler(arguments, context);
  } catch (const ToolError& e) {
    return e.what();
  }
  FAIL_CHECK("expected a ToolError from " << name << " " << arguments.dump());
  return {};
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

/// Splits on a separator character (NUL for -z output), dropping a trailing empty field.
inline std::vector<std::string> split(const std::string& text, char separator) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(text);
  while (std::getline(in, field, separator)) out.push_back(field);
  return out;
}

/// A tool's arguments for `repo`: `extra` with repo_path set.
inline json repo_args(const GitRepo& repo, json extra = json::object()) {
  extra["repo_path"] = repo.path().string();
  return extra;
}

}  // namespace mcpd::test
