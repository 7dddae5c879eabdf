// Starts the built mcpd binary as a child, the way an MCP client does, for integration tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "mcp_client.h"

namespace mcpd::test {

inline std::string mcpd_binary() { return std::string(MCPD_BINARY_DIR) + "/coordinator/mcpd"; }
inline std::string source_dir() { return MCPD_SOURCE_DIR; }

/// A fresh directory under the system temp dir, removed with the object.
struct TempDir {
  std::filesystem::path path;
  TempDir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() / ("mcpd-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
    path = std::filesystem::canonical(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  std::filesystem::path write(const std::string& name, const std::string& content) const {
    auto p = path / name;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

/// mcpd with the project's source tree as its root and the test tools on; stderr goes to a log
/// file kept next to the binary so a failing test can be read afterwards.
inline std::unique_ptr<McpClient> start_mcpd(std::vector<std::string> extra_args = {},
                                             std::vector<std::string> env = {}) {
  std::vector<std::string> argv = {mcpd_binary(), "--root", source_dir(), "--test_tools", "true"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  ChildProcess::Options options;
  options.env_extra = std::move(env);
  options.stderr_path = std::string(MCPD_BINARY_DIR) + "/tests/integration/mcpd-stderr.log";
  return std::make_unique<McpClient>(argv, options);
}

}  // namespace mcpd::test
