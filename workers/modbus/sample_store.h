// The Modbus poller's SQLite database: group definitions with their running state, and samples.
// Samples arrive through a bounded in-memory queue and are written by one writer thread in batched
// transactions (WAL mode); an exclusive lock file keeps two processes from polling into one file.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

struct sqlite3;

namespace mcpd::modbus {

/// A failure of the database itself (SQLite's message), as opposed to bad input.
class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// Values of one poll of one group, all stamped with the poll's start time.
struct SampleBatch {
  std::string group;
  std::int64_t ts_ms = 0;  // Unix epoch milliseconds
  std::vector<std::pair<std::string, double>> values;  // tag, value
  std::shared_ptr<std::atomic<std::int64_t>> pending;  // the group's count of queued samples
};

/// A stored group definition and whether it was running.
struct StoredGroup {
  std::string name;
  nlohmann::json definition;
  bool running = false;
};

/// One stored sample.
struct SampleRow {
  std::string tag;
  std::int64_t ts_ms = 0;
  double value = 0;
};

/// A query over stored samples: one group, optionally one tag, a closed time range.
struct SampleQuery {
  std::string group;
  std::optional<std::string> tag;
  std::int64_t from_ms = 0;
  std::int64_t to_ms = INT64_MAX;
  std::int64_t limit = 1000;
  bool newest_first = false;
};

/// The database file, its lock and its writer thread. Opening takes the lock or throws StoreBusy;
/// destroying flushes what is queued, stops the writer and releases the lock.
class SampleStore {
 public:
  /// Another process holds the database's lock.
  class Busy : public StoreError {
   public:
    using StoreError::StoreError;
  };

  /// Opens (creating the file and its directory) and starts the writer, which prunes samples
  /// older than `retention_hours` (0: never) every `prune_interval_ms`. Throws Busy, or StoreError
  /// with SQLite's message.
  SampleStore(std::string path, std::int64_t queue_capacity, double retention_hours, int prune_interval_ms = 60000);
  ~SampleStore();
  SampleStore(const SampleStore&) = delete;
  SampleStore& operator=(const SampleStore&) = delete;

  /// Queues a batch for the writer; false (and counted as dropped) when the queue is full.
  bool push(SampleBatch batch);
  /// Waits until everything queued so far is written, at most `timeout_ms`.
  void flush(int timeout_ms);

  void save_group(const std::string& name, const nlohmann::json& definition);
  void set_running(const std::string& name, bool running);
  /// Deletes the group and its samples.
  void delete_group(const std::string& name);
  std::vector<StoredGroup> load_groups();

  /// Samples in time order (oldest first unless newest_first), at most query.limit + 1 rows so the
  /// caller can tell that more exist.
  std::vector<SampleRow> query(const SampleQuery& query);
  /// Every sample in the range, by tag then time, for downsampling (bounded by `max_rows`).
  std::vector<SampleRow> scan(const SampleQuery& query, std::int64_t max_rows);

  /// Writer statistics: queued, written, dropped, capacity, pruned, and when something went wrong
  /// last_error and last_error_time (epoch ms); file_missing when the database file was deleted
  /// or replaced under the running writer.
  nlohmann::json stats() const;
  const std::string& path() const { return path_; }

 private:
  void writer_loop();
  void write(std::deque<SampleBatch>& batches);
  void prune();
  void check_file();
  void set_error(const std::string& message);
  static int on_busy(void* self, int count);

  const std::string path_;
  const std::int64_t capacity_;
  const double retention_hours_;
  const std::chrono::milliseconds prune_interval_;
  int lock_fd_ = -1;
  unsigned long long file_dev_ = 0, file_ino_ = 0;  // the database file as opened
  sqlite3* db_ = nullptr;         // group definitions and queries, under db_mutex_
  sqlite3* writer_db_ = nullptr;  // the writer thread's own connection
  std::mutex db_mutex_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable drained_;
  std::deque<SampleBatch> queue_;
  std::int64_t queued_ = 0;   // samples in queue_ and in the batch being written
  std::int64_t written_ = 0;
  std::int64_t dropped_ = 0;
  std::int64_t pruned_ = 0;
  std::string last_error_;
  std::int64_t last_error_ms_ = 0;
  bool file_missing_ = false;
  bool stopping_ = false;
  // Set once stopping: the writer's lock waits end by then, so a database another process keeps
  // locked cannot hold up the shutdown (the samples still queued are dropped and counted).
  std::atomic<std::int64_t> stop_deadline_ns_{0};
  std::chrono::steady_clock::time_point busy_since_{};  // the writer thread's current lock wait
  std::thread writer_;
};

}  // namespace mcpd::modbus
