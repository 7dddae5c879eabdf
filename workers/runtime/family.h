// A tool family as whoever runs it sees it: its worker kind, its tools, how its workers are pooled,
// its line of the server's instructions and its settings. Each family declares itself once, in its
// own library (parser_family() and so on); the coordinator keeps a list of them and knows nothing
// else about any family. Adding a kind is one library and one line in that list.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tool.h"

namespace mcpd {

/// One family built from its settings.
struct FamilyInstance {
  std::vector<Tool> tools;
  /// Opens what the family's tools need when they run in the coordinator's own process (the
  /// legacy path), e.g. the Modbus polling database; in pool mode its worker does this. Null: none.
  /// It may throw: the coordinator logs the failure as a warning naming the family and serves on
  /// (its tools then say why they cannot do what needs it).
  std::function<void()> open_in_process;
  /// Called once as the process exits, after the last call: finish and flush. Null: nothing.
  std::function<void()> shutdown;
};

struct Family {
  std::string kind;          // the worker kind: its executable is mcpd-worker-<kind>
  std::string instructions;  // its sentence in initialize's instructions, naming what it offers
  /// Its state lives in one process (an index, device connections, polling groups): one worker,
  /// whatever the pool settings say, and settings that ask for more are refused at start.
  bool singleton = false;
  bool test_only = false;  // served only with test_tools
  /// Builds the tools from the family's section of the settings (settings.<kind>). Throws
  /// std::invalid_argument naming a bad setting, so mcpd stops at start with that message.
  std::function<FamilyInstance(const json& settings)> make;
};

}  // namespace mcpd
