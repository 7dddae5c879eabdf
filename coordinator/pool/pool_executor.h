// The out-of-process path: routes each call to the WorkerPool of its tool's kind.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include <boost/asio/io_context.hpp>

#include "executor.h"
#include "worker_pool.h"

namespace mcpd::pool {

/// The settings of one kind from the configuration's `workers` object: PoolSettings' defaults,
/// then the "default" entry, then the kind's own entry. Keys are validated by load_config.
PoolSettings pool_settings(const json& workers, const std::string& kind);

class PoolExecutor : public Executor {
 public:
  explicit PoolExecutor(boost::asio::io_context& loop) : loop_(loop) {}

  /// Declares a worker kind serving `tools`.
  void add_kind(const std::vector<Tool>& tools, LaunchSpec launch, PoolSettings settings);
  /// Prewarms every kind's minimum.
  void start();
  bool serves(const std::string& tool) const { return kind_of_.contains(tool); }

  void execute(CallRequest request, Done done) override;
  void cancel(const std::string& call_id) override;
  void revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                  std::function<void(bool)> done) override;
  void on_invalidated(Invalidated listener) override;
  void shutdown(std::function<void()> done) override;
  json status() const override;

 private:
  boost::asio::io_context& loop_;
  std::map<std::string, std::unique_ptr<WorkerPool>> pools_;  // by kind
  std::unordered_map<std::string, WorkerPool*> kind_of_;      // tool -> its pool
  std::unordered_map<std::string, WorkerPool*> calls_;        // running call id -> its pool
};

}  // namespace mcpd::pool
