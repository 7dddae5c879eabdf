// Waiting for something a real process does in its own time (a worker restarted, a sample
// written), without a fixed sleep that is either too short on a loaded machine or wastes time.
#pragma once

#include <chrono>
#include <thread>

namespace mcpd::test {

/// Polls `predicate` every 20 ms until it holds or `timeout` passes; returns its last answer.
template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  auto until = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < until) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

}  // namespace mcpd::test
