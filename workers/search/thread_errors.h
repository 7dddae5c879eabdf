// The first exception of a group of threads, kept for the thread that joins them: an exception
// that escapes a std::thread's body ends the whole process in std::terminate, so every body the
// search runs on a thread of its own goes through run(), and the caller rethrows after the join.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace mcpd::search {

class FirstError {
 public:
  /// Runs `body`, keeping what it throws (the first of all threads wins).
  template <typename Body>
  void run(Body&& body) noexcept {
    try {
      body();
    } catch (...) {
      record(std::current_exception());
    }
  }
  void record(std::exception_ptr error) noexcept {
    std::lock_guard lock(mutex_);
    if (!error_) error_ = std::move(error);
    failed_.store(true, std::memory_order_relaxed);
  }
  /// Whether a body threw: the other threads stop early.
  bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }
  /// Rethrows the first exception kept, on the joining thread.
  void rethrow() const {
    std::lock_guard lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }

 private:
  mutable std::mutex mutex_;
  std::exception_ptr error_;
  std::atomic<bool> failed_{false};
};

}  // namespace mcpd::search
