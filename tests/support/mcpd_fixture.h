// Starts the built mcpd binary as a child, the way an MCP client does, for integration tests.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mcp_client.h"
#include "temp_dir.h"

namespace mcpd::test {

inline std::string mcpd_binary() { return std::string(MCPD_BINARY_DIR) + "/bin/mcpd"; }
inline std::string source_dir() { return MCPD_SOURCE_DIR; }


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

/// The text of a tool result's first content block.
inline std::string text_of(const json& result) { return result["content"][0]["text"].get<std::string>(); }

}  // namespace mcpd::test
