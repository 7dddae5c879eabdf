// mcpd-worker-testkit: a worker process serving the test tools (test_sleep, test_echo, test_fault);
// see worker_runtime.h for the faults it can inject when its configuration turns test hooks on.
#include "testkit_tools.h"
#include "worker_runtime.h"

int main() { return mcpd::run_worker("testkit", mcpd::testkit_tools()); }
