// Processes as /proc shows them, for tests that check what mcpd and its workers leave running:
// a process's state, and the children of a process.
#pragma once

#include <dirent.h>
#include <sys/types.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace mcpd::test {

/// The state letter of /proc/<pid>/stat ('Z' for a zombie), or 0 when the process is gone.
inline char process_state(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return 0;
  auto close = line.rfind(')');
  return close == std::string::npos || close + 2 >= line.size() ? 0 : line[close + 2];
}

/// A process that exists and is not a zombie.
inline bool process_alive(pid_t pid) {
  char state = process_state(pid);
  return state != 0 && state != 'Z';
}

struct ChildProcessEntry {
  pid_t pid;
  char state;        // as process_state
  std::string name;  // comm: the executable's name, at most 15 bytes
};

/// The children of `parent`, zombies included, from /proc.
inline std::vector<ChildProcessEntry> children_of(pid_t parent) {
  std::vector<ChildProcessEntry> out;
  DIR* dir = ::opendir("/proc");
  if (!dir) return out;
  while (dirent* entry = ::readdir(dir)) {
    pid_t pid = std::atoi(entry->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) continue;
    auto open = line.find('('), close = line.rfind(')');
    if (open == std::string::npos || close == std::string::npos || close + 2 >= line.size()) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent) out.push_back({pid, state, line.substr(open + 1, close - open - 1)});
  }
  ::closedir(dir);
  return out;
}

}  // namespace mcpd::test
