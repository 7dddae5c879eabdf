// What the tests of the git tools through the real mcpd share: an mcpd over a repository's root,
// and arguments naming the repository.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "git_fixture.h"
#include "mcp_client.h"

namespace mcpd::test {

/// The real mcpd with `repo`'s root as its root, initialized; its stderr goes to
/// tests/git/<stderr_name> in the build tree.
inline std::unique_ptr<McpClient> start_mcpd(const GitRepo& repo, const std::string& stderr_name,
                                             std::vector<std::string> extra = {}) {
  std::vector<std::string> argv = {std::string(MCPD_BINARY_DIR) + "/bin/mcpd", "--root", repo.root().string()};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess::Options options;
  options.stderr_path = std::string(MCPD_BINARY_DIR) + "/tests/git/" + stderr_name;
  auto client = std::make_unique<McpClient>(argv, options);
  client->initialize();
  return client;
}

inline json with_repo(const GitRepo& repo, json arguments = json::object()) {
  arguments["repo_path"] = repo.path().string();
  return arguments;
}

}  // namespace mcpd::test
