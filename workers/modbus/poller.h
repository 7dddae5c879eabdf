// The Modbus poller: the polling groups of one process, their schedules and statistics, the
// devices they share and the sample store behind them. The worker creates one at start and opens
// it at once (groups that were running resume); the coordinator's in-process path opens it on
// first use. Tools call it from their call thread; each running FIXED group polls on its own thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "codec.h"
#include "device.h"
#include "sample_store.h"
#include "settings.h"

namespace mcpd::modbus {

using nlohmann::json;

/// One named value of a group: where it lives and how it decodes.
struct TagDefinition {
  std::string name;
  Table table = Table::holding;
  int address = 0;
  Encoding encoding;
};

/// What a group polls and when: a device, its tags, and FIXED (every interval_ms) or HANDSHAKE
/// (only when triggered).
struct GroupDefinition {
  std::string name;
  std::string host;
  int port = 502;
  int unit = 1;
  std::vector<TagDefinition> tags;
  bool fixed = true;
  int interval_ms = 1000;

  /// Parses the tools' JSON shape (also how it is stored). Throws std::invalid_argument naming
  /// the field ("tags[2].type: unknown type 'float64'; use int16, uint16, int32, uint32 or float32").
  static GroupDefinition from_json(const json& object);
  json to_json() const;
};

/// Start-lateness statistics of a group's polls against their scheduled times.
struct JitterWindow {
  static constexpr std::size_t kSize = 4096;  // the most recent polls the percentiles cover
  std::vector<std::int64_t> lateness_us;      // a ring
  std::size_t next = 0;
  std::int64_t max_us = 0;
  void add(std::int64_t us);
  json summary() const;  // p50_ms, p99_ms, max_ms, polls
};

/// One polling group: its definition, its batched read plan, its thread while a FIXED group runs,
/// and its counters. Polls never overlap: one cycle at a time.
class PollingGroup {
 public:
  struct PollResult {
    bool success = false;
    std::int64_t ts_ms = 0;
    json values = json::object();  // tag -> value (only tags that were read)
    std::vector<std::string> errors;
    bool device_exception = true;  // every error was a Modbus exception (the connection is fine)
    double duration_ms = 0;
  };

  PollingGroup(GroupDefinition definition, std::shared_ptr<Device> device, SampleStore* store);
  ~PollingGroup();

  const GroupDefinition& definition() const { return definition_; }
  bool running() const { return running_; }
  /// FIXED: starts the scheduling thread. HANDSHAKE: accepts triggers from now on.
  void start();
  /// Lets the current cycle finish, then stops; returns when the thread has ended.
  void stop();
  /// The first half of stop(): no new cycle starts; returns at once.
  void request_stop();
  /// HANDSHAKE: one poll now, or the result of one that started less than kCoalesceWindow ago.
  /// A poll for a call ends (ToolCancelled) soon after `cancel` is cancelled, so that a trigger
  /// waiting on a hung device never outlives its call's deadline.
  PollResult trigger(bool& coalesced, const CancelToken* cancel = nullptr);
  json status() const;

  static constexpr std::chrono::milliseconds kCoalesceWindow{1000};

 private:
  PollResult poll(const CancelToken* cancel = nullptr);
  void run_fixed();
  void log_outcome(const PollResult& result);

  const GroupDefinition definition_;
  const std::vector<ReadRequest> plan_;
  const std::shared_ptr<Device> device_;
  SampleStore* const store_;
  const std::shared_ptr<std::atomic<std::int64_t>> pending_ = std::make_shared<std::atomic<std::int64_t>>(0);

  std::atomic<bool> running_{false};
  std::mutex poll_mutex_;     // one cycle at a time
  std::mutex trigger_mutex_;  // one trigger decision at a time
  std::mutex thread_mutex_;
  std::condition_variable wake_;
  bool stop_requested_ = false;
  std::thread thread_;

  mutable std::mutex stats_mutex_;
  std::int64_t polls_ = 0, successes_ = 0, errors_ = 0, overruns_ = 0, triggers_ = 0, coalesced_ = 0;
  bool polling_ = false;            // a poll has begun and not yet ended
  std::int64_t poll_started_ms_ = 0;
  std::int64_t dropped_ = 0;  // samples the full queue refused
  std::int64_t errors_in_a_row_ = 0;
  std::string last_error_;
  std::int64_t last_poll_ms_ = 0, last_error_ms_ = 0;
  double last_duration_ms_ = 0;
  JitterWindow jitter_;
  std::optional<std::chrono::steady_clock::time_point> last_trigger_;
  PollResult last_trigger_result_;
};

/// The groups of one process and the store they write to.
class Poller {
 public:
  explicit Poller(Settings settings);
  ~Poller();  // shutdown()

  const Settings& settings() const { return settings_; }
  DeviceSet& devices() { return devices_; }

  /// Opens the database (taking its lock) and resumes the groups that were running. Does nothing
  /// once open; throws ToolError when the database is busy or broken (and tries again next time).
  void open();
  bool is_open() const;
  /// Stops every group gracefully (their running state stays stored, so they resume at the next
  /// open) and flushes the writer. Bounded: well under 5 s; cycles still running after
  /// kStopGrace have their device requests interrupted.
  void shutdown();
  static constexpr std::chrono::milliseconds kStopGrace{1500};

  json create_group(const json& arguments);
  json update_group(const json& arguments);
  json delete_group(const std::string& name);
  json start_group(const std::string& name);
  json stop_group(const std::string& name);
  json trigger_group(const std::string& name, const CancelToken* cancel = nullptr);
  json status(const std::optional<std::string>& name);
  json samples(const json& arguments);

  /// Refuses a host outside modbus.allowed_hosts (ToolError) before any connection: a host listed
  /// by name or address passes, and so does a name that a listed address or range may turn out
  /// to cover (the device checks what it resolves to before connecting).
  void check_host(const std::string& host, int port) const;

 private:
  std::shared_ptr<PollingGroup> find(const std::string& name);  // under groups_mutex_; throws ToolError
  void start_locked(const std::shared_ptr<PollingGroup>& group);
  int running_count_locked() const;

  const Settings settings_;
  DeviceSet devices_;
  mutable std::mutex groups_mutex_;  // guards store_ and groups_
  std::unique_ptr<SampleStore> store_;
  std::map<std::string, std::shared_ptr<PollingGroup>> groups_;
  // Groups replaced or deleted whose last cycle may still run: shutdown() waits for them too,
  // since they write to store_.
  std::vector<std::shared_ptr<PollingGroup>> retiring_;
};

/// "2026-01-02T03:04:05.678Z" for Unix epoch milliseconds.
std::string iso_time(std::int64_t ms);
/// Epoch milliseconds from an integer or an ISO 8601 UTC string; throws std::invalid_argument.
std::int64_t parse_time(const json& value);

}  // namespace mcpd::modbus
