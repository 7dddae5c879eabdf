#include "sample_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <sqlite3.h>

namespace mcpd::modbus {

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// How long the writer lets samples gather before a transaction.
constexpr auto kWriteLinger = 50ms;
/// How long the writer waits for another connection's lock, and at most how long it goes on
/// waiting once the store is being destroyed (the poller's whole stop must stay under 5 s).
constexpr auto kBusyWait = 5s;
constexpr auto kStopWriteGrace = 2s;

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void exec(sqlite3* db, const char* sql) {
  char* error = nullptr;
  if (sqlite3_exec(db, sql, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error ? error : "unknown error";
    sqlite3_free(error);
    throw StoreError(std::string("SQLite: ") + message + " (in: " + sql + ")");
  }
}

/// A prepared statement that finalizes itself.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr) != SQLITE_OK)
      throw StoreError(std::string("SQLite: ") + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, const std::string& s) {
    sqlite3_bind_text(stmt_, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    return *this;
  }
  Statement& bind(int i, std::int64_t v) {
    sqlite3_bind_int64(stmt_, i, v);
    return *this;
  }
  Statement& bind(int i, double v) {
    sqlite3_bind_double(stmt_, i, v);
    return *this;
  }
  /// true while rows come; throws on an error.
  bool step() {
    int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    throw StoreError(std::string("SQLite: ") + sqlite3_errmsg(db_));
  }
  void run() {
    step();
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  std::string text(int i) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, i));
    return p ? p : "";
  }
  std::int64_t int64(int i) { return sqlite3_column_int64(stmt_, i); }
  double real(int i) { return sqlite3_column_double(stmt_, i); }

 private:
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

sqlite3* open_db(const std::string& path) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, nullptr) !=
      SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw StoreError("cannot open the Modbus database " + path + ": " + message);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

}  // namespace

SampleStore::SampleStore(std::string path, std::int64_t queue_capacity, double retention_hours, int prune_interval_ms)
    : path_(std::move(path)),
      capacity_(queue_capacity),
      retention_hours_(retention_hours),
      prune_interval_(std::chrono::milliseconds(prune_interval_ms)) {
  std::error_code ec;
  auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) throw StoreError("cannot create the directory of the Modbus database " + path_ + ": " + ec.message());

  // One poller per file: a second one would poll the same groups twice into it.
  std::string lock_path = path_ + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) throw StoreError("cannot open " + lock_path + ": " + std::strerror(errno));
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    std::ifstream in(lock_path);
    std::string holder;
    std::getline(in, holder);
    ::close(lock_fd_);
    lock_fd_ = -1;
    throw Busy("the Modbus database " + path_ + " is in use by another poller (pid " +
               (holder.empty() ? std::string("unknown") : holder) + ", holding " + lock_path +
               "); stop it or set modbus.db_path to another file");
  }
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(lock_fd_, 0) == 0 && ::pwrite(lock_fd_, pid.data(), pid.size(), 0) < 0) {
    // The pid is only a hint for the message above.
  }

  try {
    db_ = open_db(path_);
    exec(db_, "PRAGMA journal_mode=WAL");
    exec(db_, "PRAGMA synchronous=NORMAL");
    exec(db_,
         "CREATE TABLE IF NOT EXISTS groups(name TEXT PRIMARY KEY, definition TEXT NOT NULL, "
         "running INTEGER NOT NULL DEFAULT 0);"
         "CREATE TABLE IF NOT EXISTS samples(group_name TEXT NOT NULL, tag TEXT NOT NULL, ts_ms INTEGER NOT NULL, "
         "value REAL);"
         "CREATE INDEX IF NOT EXISTS samples_by_tag ON samples(group_name, tag, ts_ms);"
         "CREATE INDEX IF NOT EXISTS samples_by_time ON samples(group_name, ts_ms);");
    writer_db_ = open_db(path_);
    exec(writer_db_, "PRAGMA synchronous=NORMAL");
    sqlite3_busy_handler(writer_db_, &SampleStore::on_busy, this);
    struct stat st {};
    if (::stat(path_.c_str(), &st) == 0) {
      file_dev_ = st.st_dev;
      file_ino_ = st.st_ino;
    }
  } catch (...) {
    sqlite3_close(db_);
    sqlite3_close(writer_db_);
    ::close(lock_fd_);
    throw;
  }
  writer_ = std::thread([this] { writer_loop(); });
}

SampleStore::~SampleStore() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    stop_deadline_ns_ = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            (Clock::now() + kStopWriteGrace).time_since_epoch())
                            .count();
  }
  wake_.notify_all();
  if (writer_.joinable()) writer_.join();
  sqlite3_close(writer_db_);
  sqlite3_close(db_);
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

bool SampleStore::push(SampleBatch batch) {
  auto n = static_cast<std::int64_t>(batch.values.size());
  std::lock_guard lock(mutex_);
  if (queued_ + n > capacity_) {
    dropped_ += n;
    return false;
  }
  queued_ += n;
  if (batch.pending) *batch.pending += n;
  queue_.push_back(std::move(batch));
  if (queue_.size() == 1) wake_.notify_one();
  return true;
}

void SampleStore::flush(int timeout_ms) {
  std::unique_lock lock(mutex_);
  wake_.notify_one();
  drained_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [this] { return queued_ == 0; });
}

int SampleStore::on_busy(void* p, int count) {
  // Runs on the writer thread only (the writer's connection): another connection holds the lock.
  auto* self = static_cast<SampleStore*>(p);
  auto now = Clock::now();
  if (count == 0) self->busy_since_ = now;
  auto deadline = self->busy_since_ + kBusyWait;
  if (std::int64_t stop = self->stop_deadline_ns_.load(); stop != 0)
    deadline = std::min(deadline, Clock::time_point(std::chrono::nanoseconds(stop)));
  if (now >= deadline) return 0;  // SQLITE_BUSY: the batch is dropped and counted
  std::this_thread::sleep_for(std::min<Clock::duration>(5ms, deadline - now));
  return 1;
}

void SampleStore::set_error(const std::string& message) {
  std::lock_guard lock(mutex_);
  last_error_ = message;
  last_error_ms_ = now_ms();
}

void SampleStore::check_file() {
  // SQLite goes on writing into a file that was deleted (or renamed away) under it, and those
  // samples vanish when the process ends: say so in the status rather than keep quiet.
  struct stat st {};
  bool same = ::stat(path_.c_str(), &st) == 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_;
  bool report = false;
  {
    std::lock_guard lock(mutex_);
    report = !same && !file_missing_;
    file_missing_ = !same;
  }
  if (report)
    set_error("the database file " + path_ +
              " was deleted or replaced while in use; samples written since are lost when the poller stops; "
              "restart the worker to create it again");
}

void SampleStore::writer_loop() {
  auto next_prune = Clock::now() + std::min<Clock::duration>(1s, prune_interval_);
  auto next_file_check = Clock::now() + 1s;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait_until(lock, next_prune, [this] { return stopping_ || !queue_.empty(); });
    if (!queue_.empty() && !stopping_) {
      // Let a few polls gather so one transaction carries them all.
      wake_.wait_for(lock, kWriteLinger, [this] { return stopping_ || queued_ >= capacity_ / 2; });
    }
    std::deque<SampleBatch> batches;
    batches.swap(queue_);
    lock.unlock();
    if (!batches.empty()) write(batches);
    if (Clock::now() >= next_prune) {
      prune();
      next_prune = Clock::now() + prune_interval_;
    }
    if (Clock::now() >= next_file_check) {
      check_file();
      next_file_check = Clock::now() + 1s;
    }
    lock.lock();
    if (queue_.empty() && queued_ == 0) drained_.notify_all();
    if (stopping_ && queue_.empty()) break;
  }
}

void SampleStore::write(std::deque<SampleBatch>& batches) {
  std::int64_t n = 0;
  for (const auto& b : batches) n += static_cast<std::int64_t>(b.values.size());
  std::string error;
  try {
    exec(writer_db_, "BEGIN");
    {
      Statement insert(writer_db_, "INSERT INTO samples(group_name, tag, ts_ms, value) VALUES (?, ?, ?, ?)");
      for (const auto& b : batches)
        for (const auto& [tag, value] : b.values) insert.bind(1, b.group).bind(2, tag).bind(3, b.ts_ms).bind(4, value).run();
    }
    exec(writer_db_, "COMMIT");
  } catch (const std::exception& e) {
    error = e.what();
    sqlite3_exec(writer_db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  for (const auto& b : batches)
    if (b.pending) *b.pending -= static_cast<std::int64_t>(b.values.size());
  std::lock_guard lock(mutex_);
  queued_ -= n;
  if (error.empty()) {
    written_ += n;
  } else {
    dropped_ += n;
    last_error_ = "writing " + std::to_string(n) + " samples failed, dropped: " + error;
    last_error_ms_ = now_ms();
  }
}

void SampleStore::prune() {
  if (retention_hours_ <= 0) return;
  auto cutoff = now_ms() - static_cast<std::int64_t>(retention_hours_ * 3600000.0);
  try {
    // Per group, so the (group_name, ts_ms) index serves the delete.
    std::vector<std::string> names;
    {
      Statement groups(writer_db_, "SELECT DISTINCT name FROM groups");
      while (groups.step()) names.push_back(groups.text(0));
    }
    std::int64_t deleted = 0;
    Statement del(writer_db_, "DELETE FROM samples WHERE group_name = ? AND ts_ms < ?");
    for (const auto& name : names) {
      del.bind(1, name).bind(2, cutoff).run();
      deleted += sqlite3_changes(writer_db_);
    }
    std::lock_guard lock(mutex_);
    pruned_ += deleted;
  } catch (const std::exception& e) {
    set_error(std::string("pruning: ") + e.what());
  }
}

void SampleStore::save_group(const std::string& name, const nlohmann::json& definition) {
  std::lock_guard lock(db_mutex_);
  Statement s(db_,
              "INSERT INTO groups(name, definition, running) VALUES (?, ?, 0) "
              "ON CONFLICT(name) DO UPDATE SET definition = excluded.definition");
  s.bind(1, name).bind(2, definition.dump()).run();
}

void SampleStore::set_running(const std::string& name, bool running) {
  std::lock_guard lock(db_mutex_);
  Statement s(db_, "UPDATE groups SET running = ? WHERE name = ?");
  s.bind(1, static_cast<std::int64_t>(running)).bind(2, name).run();
}

void SampleStore::delete_group(const std::string& name) {
  // The group has stopped; its samples still queued must land before the delete, or they would
  // outlive it (and no prune would find them).
  flush(2000);
  std::lock_guard lock(db_mutex_);
  Statement g(db_, "DELETE FROM groups WHERE name = ?");
  g.bind(1, name).run();
  Statement s(db_, "DELETE FROM samples WHERE group_name = ?");
  s.bind(1, name).run();
}

std::vector<StoredGroup> SampleStore::load_groups() {
  std::lock_guard lock(db_mutex_);
  Statement s(db_, "SELECT name, definition, running FROM groups ORDER BY name");
  std::vector<StoredGroup> out;
  while (s.step()) {
    auto definition = nlohmann::json::parse(s.text(1), nullptr, false);
    out.push_back({s.text(0), definition, s.int64(2) != 0});
  }
  return out;
}

std::vector<SampleRow> SampleStore::query(const SampleQuery& q) {
  std::string sql = "SELECT tag, ts_ms, value FROM samples WHERE group_name = ?1 AND ts_ms >= ?2 AND ts_ms <= ?3";
  if (q.tag) sql += " AND tag = ?4";
  sql += q.newest_first ? " ORDER BY ts_ms DESC, tag" : " ORDER BY ts_ms, tag";
  sql += " LIMIT ?5";
  std::lock_guard lock(db_mutex_);
  Statement s(db_, sql.c_str());
  s.bind(1, q.group).bind(2, q.from_ms).bind(3, q.to_ms).bind(5, q.limit + 1);
  if (q.tag) s.bind(4, *q.tag);
  std::vector<SampleRow> rows;
  while (s.step()) rows.push_back({s.text(0), s.int64(1), s.real(2)});
  return rows;
}

std::vector<SampleRow> SampleStore::scan(const SampleQuery& q, std::int64_t max_rows) {
  std::string sql = "SELECT tag, ts_ms, value FROM samples WHERE group_name = ?1 AND ts_ms >= ?2 AND ts_ms <= ?3";
  if (q.tag) sql += " AND tag = ?4";
  sql += " ORDER BY tag, ts_ms LIMIT ?5";
  std::lock_guard lock(db_mutex_);
  Statement s(db_, sql.c_str());
  s.bind(1, q.group).bind(2, q.from_ms).bind(3, q.to_ms).bind(5, max_rows);
  if (q.tag) s.bind(4, *q.tag);
  std::vector<SampleRow> rows;
  while (s.step()) rows.push_back({s.text(0), s.int64(1), s.real(2)});
  return rows;
}

nlohmann::json SampleStore::stats() const {
  std::lock_guard lock(mutex_);
  nlohmann::json out = {{"queued", queued_},   {"written", written_}, {"dropped", dropped_},
                        {"capacity", capacity_}, {"pruned", pruned_}};
  if (!last_error_.empty()) {
    out["last_error"] = last_error_;
    out["last_error_time_ms"] = last_error_ms_;
  }
  if (file_missing_) out["file_missing"] = true;
  return out;
}

}  // namespace mcpd::modbus
