// mcpd-worker-modbus: a worker process serving the modbus tools; see worker_runtime.h. The poller
// opens its database at once, so groups that were running before a restart (or a crash) resume
// without waiting for a call.
#include <cstdio>
#include <stdexcept>

#include "modbus_tools.h"
#include "poller.h"
#include "worker_runtime.h"

int main() {
  std::shared_ptr<mcpd::modbus::Poller> poller;
  try {
    poller = mcpd::make_modbus_poller(mcpd::worker_family_settings("modbus"));
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "mcpd-worker-modbus: invalid settings: %s\n", e.what());
    return 2;
  }
  try {
    poller->open();
  } catch (const std::exception& e) {
    // Reads and writes still work; group tools try to open again and report this to the caller.
    std::fprintf(stderr, "mcpd-worker-modbus: polling groups unavailable: %s\n", e.what());
  }
  // Groups finish their cycle and the writer flushes; their running state stays stored. Calls run
  // side by side (modbus.max_concurrent_calls), so a device that answers slowly holds up only the
  // calls to itself, and modbus_status answers while a read waits.
  auto concurrency = static_cast<std::size_t>(poller->settings().max_concurrent_calls);
  return mcpd::run_worker("modbus", mcpd::modbus_tools(poller), [poller] { poller->shutdown(); }, concurrency);
}
