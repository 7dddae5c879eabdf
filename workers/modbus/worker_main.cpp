// mcpd-worker-modbus: a worker process serving the modbus tools; see worker_runtime.h.
#include "modbus_tools.h"
#include "worker_runtime.h"

int main() { return mcpd::run_worker("modbus", mcpd::modbus_tools(mcpd::worker_family_settings("modbus"))); }
