// mcpd-worker-parser: a worker process serving the parser tools; see worker_runtime.h.
#include "parser_tools.h"
#include "worker_runtime.h"

int main() { return mcpd::run_worker("parser", mcpd::parser_tools(mcpd::worker_family_settings("parser"))); }
