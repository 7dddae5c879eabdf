// Router is the feature flag between the two execution paths: `mode` = pool | legacy | shadow,
// globally and per tool, and `pool_percent` for a gradual rollout (a call's route is chosen by a
// stable hash of its canonical request, so the same request always takes the same path). In shadow
// mode a call runs on both paths; the pool's answer is returned, the two are compared as canonical
// JSON, and every mismatch is counted and logged with its difference.
#pragma once

#include <map>
#include <string>

#include "config.h"
#include "executor.h"
#include "metrics.h"

namespace mcpd {

class Router : public Executor {
 public:
  /// `pool` may be null when no tool runs out of process (then everything is legacy).
  Router(const Config& config, Executor& legacy, Executor* pool,
         std::function<bool(const std::string& tool)> pool_serves);

  void execute(CallRequest request, Done done) override;
  void cancel(const std::string& call_id) override;
  void revalidate(const Tool& tool, const json& arguments, const Voucher& voucher,
                  std::function<void(bool)> done) override;
  void on_invalidated(Invalidated listener) override;
  void shutdown(std::function<void()> done) override;
  json status() const override;

  /// The path a call to `tool` with `arguments` takes: "pool", "legacy" or "shadow". Tools that must
  /// run once (not read-only) are never shadowed, and tools whose state lives in one process (not
  /// shadowable) are neither shadowed nor split by pool_percent.
  std::string route(const Tool& tool, const json& arguments) const;

 private:
  void compare(const std::string& tool, const std::string& call_id, const CallOutcome& pool,
               const CallOutcome& legacy);

  const Config& config_;
  Executor& legacy_;
  Executor* pool_;
  std::function<bool(const std::string&)> pool_serves_;
  std::map<std::string, std::uint64_t> routed_;  // path -> calls
  std::uint64_t shadow_compared_ = 0, shadow_matches_ = 0, shadow_mismatches_ = 0;
  std::map<std::string, PathStats> shadow_legacy_;  // per tool: the legacy side of shadow calls
};

}  // namespace mcpd
