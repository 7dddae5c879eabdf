// The legacy in-process path: tool handlers run on a small thread pool inside the coordinator and
// post their outcome back to the event loop. Kept behind the `mode` flag beside the worker pool so
// the two can be compared; a handler that hangs here occupies a thread until it notices its
// CancelToken, which is exactly what the worker pool exists to fix.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/thread_pool.hpp>

#include "config.h"
#include "executor.h"
#include "roots.h"

namespace mcpd {

class LegacyExecutor : public Executor {
 public:
  LegacyExecutor(boost::asio::io_context& loop, const Config& config);
  ~LegacyExecutor() override;
  void execute(CallRequest request, Done done) override;
  /// Checks the state on a legacy thread, as the call computed it there.
  void revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                  std::function<void(bool)> done) override;
  json status() const override;

 private:
  boost::asio::io_context& loop_;
  const Config& config_;
  std::shared_ptr<const RootDirs> root_dirs_;  // opened once, before any call
  boost::asio::thread_pool threads_;
};

}  // namespace mcpd
