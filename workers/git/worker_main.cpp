// mcpd-worker-git: a worker process serving the git tools; see worker_runtime.h.
#include "git_tools.h"
#include "worker_runtime.h"

int main() { return mcpd::run_worker("git", mcpd::git_tools()); }
