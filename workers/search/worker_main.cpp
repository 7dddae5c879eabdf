// mcpd-worker-search: a worker process serving the search tools; see worker_runtime.h.
#include "search_tools.h"
#include "worker_runtime.h"

int main() { return mcpd::run_worker("search", mcpd::search_tools(mcpd::worker_family_settings("search"))); }
