#include "poller.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <regex>
#include <set>

#include "tool.h"

namespace mcpd::modbus {

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

/// One line on stderr in one write: the worker's stderr is relayed into mcpd's log.
void log_line(const std::string& message) {
  std::string line = "modbus: " + message + "\n";
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

[[noreturn]] void invalid(const std::string& field, const std::string& message) {
  throw std::invalid_argument(field + ": " + message);
}

std::int64_t int_field(const json& o, const std::string& key, const std::string& path, std::int64_t fallback,
                       std::int64_t lo, std::int64_t hi, bool required = false) {
  auto it = o.find(key);
  if (it == o.end()) {
    if (required) invalid(path + key, "is required");
    return fallback;
  }
  if (!it->is_number_integer() || it->get<std::int64_t>() < lo || it->get<std::int64_t>() > hi)
    invalid(path + key, "must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                            it->dump());
  return it->get<std::int64_t>();
}

std::string order_name(bool little) { return little ? "little" : "big"; }

bool parse_order(const json& o, const char* key, const std::string& path) {
  auto it = o.find(key);
  if (it == o.end()) return false;
  if (*it == "big") return false;
  if (*it == "little") return true;
  invalid(path + key, "must be \"big\" or \"little\", got " + it->dump());
}

}  // namespace

// ------------------------------------------------------------------------------------------------
// Definitions

GroupDefinition GroupDefinition::from_json(const json& o) {
  GroupDefinition d;
  auto name = o.find("name");
  static const std::regex name_pattern("[A-Za-z0-9_.-]{1,64}");
  if (name == o.end() || !name->is_string() || !std::regex_match(name->get<std::string>(), name_pattern))
    invalid("name", "must be 1 to 64 letters, digits, '_', '.' or '-'");
  d.name = name->get<std::string>();
  auto host = o.find("host");
  if (host == o.end() || !host->is_string() || host->get_ref<const std::string&>().empty())
    invalid("host", "is required (a host name or address)");
  d.host = host->get<std::string>();
  d.port = static_cast<int>(int_field(o, "port", "", 502, 1, 65535));
  d.unit = static_cast<int>(int_field(o, "unit", "", 1, 0, 255));
  std::string mode = o.value("mode", std::string("FIXED"));
  if (mode == "FIXED") {
    d.fixed = true;
    d.interval_ms = static_cast<int>(int_field(o, "interval_ms", "", 0, 10, 86400000, true));
  } else if (mode == "HANDSHAKE") {
    d.fixed = false;
    d.interval_ms = 0;
  } else {
    invalid("mode", "must be \"FIXED\" (with interval_ms) or \"HANDSHAKE\", got \"" + mode + "\"");
  }
  auto tags = o.find("tags");
  if (tags == o.end() || !tags->is_array() || tags->empty()) invalid("tags", "must be a non-empty array");
  if (tags->size() > 10000) invalid("tags", "at most 10000 tags per group");
  std::set<std::string> names;
  for (std::size_t i = 0; i < tags->size(); ++i) {
    const json& t = (*tags)[i];
    std::string path = "tags[" + std::to_string(i) + "].";
    if (!t.is_object()) invalid("tags[" + std::to_string(i) + "]", "must be an object");
    TagDefinition tag;
    auto tn = t.find("name");
    if (tn == t.end() || !tn->is_string() || tn->get_ref<const std::string&>().empty())
      invalid(path + "name", "is required");
    tag.name = tn->get<std::string>();
    if (!names.insert(tag.name).second) invalid(path + "name", "'" + tag.name + "' appears twice");
    std::string table = t.value("table", std::string("holding"));
    auto parsed_table = parse_table(table);
    if (!parsed_table) invalid(path + "table", "must be holding, input, coils or discrete, got \"" + table + "\"");
    tag.table = *parsed_table;
    tag.address = static_cast<int>(int_field(t, "address", path, 0, 0, 65535, true));
    if (!is_bit_table(tag.table)) {
      std::string type = t.value("type", std::string("uint16"));
      auto parsed_type = parse_type(type);
      if (!parsed_type) invalid(path + "type", "unknown type '" + type + "'; use int16, uint16, int32, uint32 or float32");
      tag.encoding.type = *parsed_type;
      if (tag.address + register_width(tag.encoding.type) > 65536)
        invalid(path + "address", "a " + type + " at " + std::to_string(tag.address) + " runs past register 65535");
    }
    tag.encoding.bytes_little = parse_order(t, "byte_order", path);
    tag.encoding.words_little = parse_order(t, "word_order", path);
    if (auto scale = t.find("scale"); scale != t.end()) {
      if (!scale->is_number() || scale->get<double>() == 0) invalid(path + "scale", "must be a non-zero number");
      tag.encoding.scale = scale->get<double>();
    }
    d.tags.push_back(std::move(tag));
  }
  return d;
}

json GroupDefinition::to_json() const {
  json tags_json = json::array();
  for (const auto& t : tags) {
    json tag = {{"name", t.name}, {"table", table_name(t.table)}, {"address", t.address}};
    if (!is_bit_table(t.table)) {
      tag["type"] = type_name(t.encoding.type);
      tag["byte_order"] = order_name(t.encoding.bytes_little);
      tag["word_order"] = order_name(t.encoding.words_little);
      tag["scale"] = t.encoding.scale;
    }
    tags_json.push_back(std::move(tag));
  }
  json out = {{"name", name}, {"host", host}, {"port", port}, {"unit", unit}, {"mode", fixed ? "FIXED" : "HANDSHAKE"},
              {"tags", std::move(tags_json)}};
  if (fixed) out["interval_ms"] = interval_ms;
  return out;
}

// ------------------------------------------------------------------------------------------------
// Jitter

void JitterWindow::add(std::int64_t us) {
  if (lateness_us.size() < kSize) {
    lateness_us.push_back(us);
  } else {
    lateness_us[next] = us;
    next = (next + 1) % kSize;
  }
  max_us = std::max(max_us, us);
}

json JitterWindow::summary() const {
  if (lateness_us.empty()) return {{"polls", 0}};
  std::vector<std::int64_t> sorted = lateness_us;
  std::sort(sorted.begin(), sorted.end());
  auto pct = [&](double p) {
    auto i = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size()))) ;
    return static_cast<double>(sorted[std::min(sorted.size() - 1, i == 0 ? 0 : i - 1)]) / 1000.0;
  };
  return {{"p50_ms", pct(0.50)}, {"p99_ms", pct(0.99)}, {"max_ms", static_cast<double>(max_us) / 1000.0},
          {"polls", sorted.size()}};
}

// ------------------------------------------------------------------------------------------------
// PollingGroup

namespace {

std::vector<ReadRequest> plan_for(const GroupDefinition& d) {
  std::vector<TagSpan> spans;
  for (const auto& t : d.tags)
    spans.push_back({t.table, t.address, is_bit_table(t.table) ? 1 : register_width(t.encoding.type)});
  return plan_reads(spans);
}

}  // namespace

PollingGroup::PollingGroup(GroupDefinition definition, std::shared_ptr<Device> device, SampleStore* store)
    : definition_(std::move(definition)), plan_(plan_for(definition_)), device_(std::move(device)), store_(store) {}

PollingGroup::~PollingGroup() { stop(); }

void PollingGroup::start() {
  std::lock_guard lock(thread_mutex_);
  if (running_) return;
  stop_requested_ = false;
  running_ = true;
  if (definition_.fixed) thread_ = std::thread([this] { run_fixed(); });
}

void PollingGroup::request_stop() {
  {
    std::lock_guard lock(thread_mutex_);
    stop_requested_ = true;
    running_ = false;
  }
  wake_.notify_all();
}

void PollingGroup::stop() {
  std::thread thread;
  {
    std::lock_guard lock(thread_mutex_);
    stop_requested_ = true;
    running_ = false;
    thread = std::move(thread_);
  }
  wake_.notify_all();
  if (thread.joinable()) thread.join();
  // A trigger's poll runs on a call thread: wait for it too, so nothing of this group touches the
  // store once stop() returns (the poller may destroy the store next).
  std::lock_guard cycle(poll_mutex_);
}

void PollingGroup::run_fixed() {
  // Poll k is due at start + k * interval on the monotonic clock, whatever earlier polls took, so
  // the schedule never drifts. A poll that runs past the next slot skips the slots it missed
  // (counted as overruns) instead of stacking polls back to back.
  const auto interval = milliseconds(definition_.interval_ms);
  const auto start = Clock::now();
  std::int64_t k = 0;
  for (;;) {
    const auto due = start + k * interval;
    {
      std::unique_lock lock(thread_mutex_);
      wake_.wait_until(lock, due, [this] { return stop_requested_; });
      if (stop_requested_) return;
    }
    auto lateness = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - due).count();
    {
      std::lock_guard lock(stats_mutex_);
      jitter_.add(lateness);
    }
    poll();
    auto elapsed = Clock::now() - start;
    std::int64_t next = elapsed / interval + 1;  // the first slot still in the future
    if (next > k + 1) {
      std::lock_guard lock(stats_mutex_);
      overruns_ += next - (k + 1);
    }
    k = next;
  }
}

PollingGroup::PollResult PollingGroup::poll(const CancelToken* cancel) {
  std::lock_guard cycle(poll_mutex_);
  PollResult result;
  result.ts_ms = wall_ms();
  if (!running_) {  // stopped between the caller's check and here
    result.errors.push_back("group '" + definition_.name + "' was stopped before it polled");
    return result;
  }
  auto began = Clock::now();
  {
    std::lock_guard lock(stats_mutex_);
    polling_ = true;
    poll_started_ms_ = result.ts_ms;
  }
  SampleBatch batch{definition_.name, result.ts_ms, {}, pending_};
  for (const auto& request : plan_) {
    try {
      if (is_bit_table(request.table)) {
        auto bits = device_->read_bits(definition_.unit, request.table, request.address, request.count, true, cancel);
        for (std::size_t i : request.tags) {
          const auto& tag = definition_.tags[i];
          double v = bits[static_cast<std::size_t>(tag.address - request.address)] ? 1.0 : 0.0;
          result.values[tag.name] = v;
          batch.values.emplace_back(tag.name, v);
        }
      } else {
        auto regs =
            device_->read_registers(definition_.unit, request.table, request.address, request.count, true, cancel);
        for (std::size_t i : request.tags) {
          const auto& tag = definition_.tags[i];
          double v = decode(regs.data() + (tag.address - request.address), tag.encoding);
          result.values[tag.name] = v;
          batch.values.emplace_back(tag.name, v);
        }
      }
    } catch (const DeviceError& e) {
      result.errors.push_back(e.what());
      result.device_exception = result.device_exception && e.device_exception;
      // A broken connection fails every later request of this cycle the same way: stop here and
      // try again at the next interval (the device's backoff decides when to reconnect).
      if (!e.device_exception) break;
    }
  }
  result.success = result.errors.empty();
  result.duration_ms = std::chrono::duration<double, std::milli>(Clock::now() - began).count();
  if (!batch.values.empty() && store_) {
    auto n = static_cast<std::int64_t>(batch.values.size());
    if (!store_->push(std::move(batch))) {
      std::lock_guard lock(stats_mutex_);
      dropped_ += n;
    }
  }
  log_outcome(result);
  return result;
}

void PollingGroup::log_outcome(const PollResult& result) {
  std::string message;
  {
    std::lock_guard lock(stats_mutex_);
    polling_ = false;
    ++polls_;
    last_poll_ms_ = result.ts_ms;
    last_duration_ms_ = result.duration_ms;
    if (result.success) {
      ++successes_;
      if (errors_in_a_row_ > 0)
        message = "group '" + definition_.name + "' on " + device_->name() + " recovered after " +
                  std::to_string(errors_in_a_row_) + " failed polls";
      errors_in_a_row_ = 0;
    } else {
      ++errors_;
      ++errors_in_a_row_;
      last_error_ = result.errors.front();
      last_error_ms_ = result.ts_ms;
      // The first failure of a run and then every 100th: a dead device must not flood the log.
      if (errors_in_a_row_ == 1 || errors_in_a_row_ % 100 == 0) {
        std::string plan = definition_.fixed ? "polling goes on every " + std::to_string(definition_.interval_ms) + " ms"
                                             : "the next trigger retries";
        if (!result.device_exception) plan += "; the connection is retried with backoff";
        message = "group '" + definition_.name + "' on " + device_->name() + " unit " +
                  std::to_string(definition_.unit) + ": poll failed (" + std::to_string(errors_in_a_row_) +
                  " in a row): " + last_error_ + "; " + plan;
      }
    }
  }
  if (!message.empty()) log_line(message);
}

PollingGroup::PollResult PollingGroup::trigger(bool& coalesced, const CancelToken* cancel) {
  {
    std::lock_guard lock(stats_mutex_);
    ++triggers_;
  }
  // Triggers queue here, so one that arrives while another polls gets that poll's result: it is
  // within the window by construction.
  std::lock_guard serial(trigger_mutex_);
  auto now = Clock::now();
  {
    std::lock_guard lock(stats_mutex_);
    if (last_trigger_ && now - *last_trigger_ < kCoalesceWindow) {
      ++coalesced_;
      coalesced = true;
      return last_trigger_result_;
    }
  }
  coalesced = false;
  PollResult result = poll(cancel);
  std::lock_guard lock(stats_mutex_);
  last_trigger_ = now;
  last_trigger_result_ = result;
  return result;
}

json PollingGroup::status() const {
  std::lock_guard lock(stats_mutex_);
  json s = {{"name", definition_.name},
            {"mode", definition_.fixed ? "FIXED" : "HANDSHAKE"},
            {"state", running_ ? "running" : "stopped"},
            {"device", device_->name()},
            {"unit", definition_.unit},
            {"tag_count", definition_.tags.size()},
            {"requests_per_poll", plan_.size()},
            {"polls", polls_},
            {"success_count", successes_},
            {"error_count", errors_},
            {"overruns", overruns_},
            {"queue_depth", pending_->load()},
            {"dropped_samples", dropped_},
            {"polling", polling_}};
  if (polling_) s["poll_started_time"] = iso_time(poll_started_ms_);  // a slow device shows here first
  if (definition_.fixed) {
    s["interval_ms"] = definition_.interval_ms;
    s["jitter"] = jitter_.summary();
  } else {
    s["triggers"] = triggers_;
    s["coalesced_triggers"] = coalesced_;
  }
  if (polls_ > 0) {
    s["last_poll_time"] = iso_time(last_poll_ms_);
    s["last_poll_duration_ms"] = last_duration_ms_;
  }
  if (!last_error_.empty()) {
    s["last_error"] = last_error_;
    s["last_error_time"] = iso_time(last_error_ms_);
  }
  return s;
}

// ------------------------------------------------------------------------------------------------
// Poller

Poller::Poller(Settings settings) : settings_(std::move(settings)), devices_(settings_) {}

Poller::~Poller() { shutdown(); }

bool Poller::is_open() const {
  std::lock_guard lock(groups_mutex_);
  return store_ != nullptr;
}

void Poller::open() {
  std::lock_guard lock(groups_mutex_);
  if (store_) return;
  std::string path = resolved_db_path(settings_);
  try {
    store_ = std::make_unique<SampleStore>(path, settings_.queue_capacity, settings_.retention_hours,
                                           settings_.prune_interval_ms);
  } catch (const std::exception& e) {
    throw ToolError(e.what());
  }
  std::vector<StoredGroup> stored_groups;
  try {
    stored_groups = store_->load_groups();
  } catch (const std::exception& e) {
    store_.reset();
    throw ToolError("cannot read the groups stored in " + path + ": " + e.what());
  }
  for (const auto& stored : stored_groups) {
    try {
      auto definition = GroupDefinition::from_json(stored.definition);
      auto group = std::make_shared<PollingGroup>(definition, devices_.get(definition.host, definition.port),
                                                  store_.get());
      groups_[stored.name] = group;
      if (stored.running) {
        if (running_count_locked() >= settings_.max_running_groups) {
          log_line("group '" + stored.name + "' was running but not resumed: max_running_groups (" +
                   std::to_string(settings_.max_running_groups) + ") groups already run");
          store_->set_running(stored.name, false);
          continue;
        }
        group->start();
        log_line("group '" + stored.name + "' resumed from " + path);
      }
    } catch (const std::exception& e) {
      log_line("group '" + stored.name + "' in " + path + " is unreadable and skipped: " + e.what());
    }
  }
}

void Poller::shutdown() {
  std::lock_guard lock(groups_mutex_);
  // Stop all at once: each group finishes its cycle in parallel with the others. A cycle stuck on
  // a device that does not answer (connect and response timeouts go up to a minute) is
  // interrupted after a grace, so the whole stop stays under 5 s with the writer's final flush.
  struct Countdown {
    std::mutex mutex;
    std::condition_variable done;
    std::size_t left = 0;
  };
  auto countdown = std::make_shared<Countdown>();
  std::vector<std::shared_ptr<PollingGroup>> all = retiring_;  // groups being replaced or deleted, too
  for (auto& [name, group] : groups_) all.push_back(group);
  countdown->left = all.size();
  std::vector<std::thread> stoppers;
  for (auto& group : all)
    stoppers.emplace_back([g = group, countdown] {
      g->stop();
      std::lock_guard l(countdown->mutex);
      if (--countdown->left == 0) countdown->done.notify_all();
    });
  bool interrupted = false;
  {
    std::unique_lock l(countdown->mutex);
    if (!countdown->done.wait_for(l, kStopGrace, [&] { return countdown->left == 0; })) {
      l.unlock();
      log_line("stopping: " + std::to_string(countdown->left) +
               " group(s) still in a poll after " + std::to_string(kStopGrace.count()) +
               " ms; interrupting their device requests");
      devices_.interrupt();
      interrupted = true;
    }
  }
  for (auto& t : stoppers) t.join();
  if (interrupted) devices_.resume();
  groups_.clear();
  store_.reset();  // flushes the writer (bounded), releases the lock
}

void Poller::check_host(const std::string& host, int port) const {
  if (settings_.allowed.allows_host(host, port)) return;
  // A name that is not listed may still resolve to a listed address: that is decided on the
  // addresses themselves, at every connect (Device::connect_locked), since names can change.
  if (!parse_ip(host) && settings_.allowed.may_allow_by_address(port)) return;
  throw ToolError(not_allowed_message(host, port, "", settings_.allowed));
}

std::shared_ptr<PollingGroup> Poller::find(const std::string& name) {
  auto it = groups_.find(name);
  if (it == groups_.end()) {
    std::string names;
    for (const auto& [n, g] : groups_) names += (names.empty() ? "" : ", ") + n;
    throw ToolError("no group named '" + name + "'" + (names.empty() ? "; there are no groups yet" : "; groups: " + names));
  }
  return it->second;
}

int Poller::running_count_locked() const {
  int n = 0;
  for (const auto& [name, group] : groups_) n += group->running() ? 1 : 0;
  return n;
}

void Poller::start_locked(const std::shared_ptr<PollingGroup>& group) {
  if (group->running()) return;
  if (running_count_locked() >= settings_.max_running_groups)
    throw ToolError("cannot start group '" + group->definition().name + "': " +
                    std::to_string(settings_.max_running_groups) +
                    " groups are running, the maximum (modbus.max_running_groups); stop one first or raise the "
                    "setting");
  store_->set_running(group->definition().name, true);  // first: a group runs only if it will resume
  group->start();
}

namespace {

GroupDefinition parse_definition(const json& arguments) {
  try {
    return GroupDefinition::from_json(arguments);
  } catch (const std::invalid_argument& e) {
    throw ToolError(e.what());
  }
}

}  // namespace

json Poller::create_group(const json& arguments) {
  auto definition = parse_definition(arguments);
  check_host(definition.host, definition.port);
  open();
  std::lock_guard lock(groups_mutex_);
  if (groups_.count(definition.name))
    throw ToolError("group '" + definition.name + "' exists; use modbus_group_update to change it");
  auto group = std::make_shared<PollingGroup>(definition, devices_.get(definition.host, definition.port), store_.get());
  store_->save_group(definition.name, definition.to_json());
  groups_[definition.name] = group;
  return {{"group", definition.to_json()}, {"state", "stopped"}, {"requests_per_poll", plan_for(definition).size()}};
}

json Poller::update_group(const json& arguments) {
  open();
  std::unique_lock lock(groups_mutex_);
  std::string name = arguments.value("name", "");
  auto old = find(name);
  // Fields not given keep their values.
  json merged = old->definition().to_json();
  for (auto it = arguments.begin(); it != arguments.end(); ++it) merged[it.key()] = it.value();
  if (merged.value("mode", "") == "HANDSHAKE") merged.erase("interval_ms");
  auto definition = parse_definition(merged);
  check_host(definition.host, definition.port);
  bool was_running = old->running();
  auto group = std::make_shared<PollingGroup>(definition, devices_.get(definition.host, definition.port), store_.get());
  store_->save_group(name, definition.to_json());
  old->request_stop();
  groups_[name] = group;
  retiring_.push_back(old);
  lock.unlock();
  // Outside the lock: the old definition's cycle may wait on a hung device for up to its timeouts,
  // and status and the other groups' tools must not wait with it.
  old->stop();
  lock.lock();
  std::erase(retiring_, old);
  if (was_running && store_ && groups_.count(name) && groups_[name] == group) group->start();
  return {{"group", definition.to_json()},
          {"state", was_running ? "running" : "stopped"},
          {"requests_per_poll", plan_for(definition).size()}};
}

json Poller::delete_group(const std::string& name) {
  open();
  std::unique_lock lock(groups_mutex_);
  auto group = find(name);
  bool was_running = group->running();
  group->request_stop();
  groups_.erase(name);
  retiring_.push_back(group);
  lock.unlock();
  group->stop();  // outside the lock, as in update_group
  lock.lock();
  std::erase(retiring_, group);
  // After the stop, so that the last cycle's samples do not outlive the group; unless a group of
  // the same name was created meanwhile, which owns the name now.
  if (store_ && !groups_.count(name)) store_->delete_group(name);
  return {{"deleted", name}, {"was_running", was_running}};
}

json Poller::start_group(const std::string& name) {
  open();
  std::lock_guard lock(groups_mutex_);
  auto group = find(name);
  bool already = group->running();
  start_locked(group);
  return {{"name", name}, {"state", "running"}, {"already_running", already}};
}

json Poller::stop_group(const std::string& name) {
  open();
  std::shared_ptr<PollingGroup> group;
  {
    std::lock_guard lock(groups_mutex_);
    group = find(name);
    store_->set_running(name, false);
  }
  bool was_running = group->running();
  group->stop();  // outside the lock: the current cycle may take up to a response timeout
  return {{"name", name}, {"state", "stopped"}, {"was_running", was_running}};
}

json Poller::trigger_group(const std::string& name, const CancelToken* cancel) {
  open();
  std::shared_ptr<PollingGroup> group;
  {
    std::lock_guard lock(groups_mutex_);
    group = find(name);
  }
  if (group->definition().fixed)
    throw ToolError("group '" + name + "' is FIXED (polled every " + std::to_string(group->definition().interval_ms) +
                    " ms); modbus_group_trigger is for HANDSHAKE groups");
  if (!group->running())
    throw ToolError("group '" + name + "' is stopped; start it with modbus_group_start before triggering it");
  bool coalesced = false;
  auto result = group->trigger(coalesced, cancel);
  json out = {{"name", name},
              {"success", result.success},
              {"tag_count", group->definition().tags.size()},
              {"values", result.values},
              {"polled_at", iso_time(result.ts_ms)},
              {"duration_ms", result.duration_ms},
              {"coalesced", coalesced}};
  if (coalesced)
    out["note"] = "a trigger less than " + std::to_string(PollingGroup::kCoalesceWindow.count()) +
                  " ms earlier already polled; this is its result";
  if (!result.errors.empty()) out["errors"] = result.errors;
  return out;
}

json Poller::status(const std::optional<std::string>& name) {
  open();
  std::lock_guard lock(groups_mutex_);
  json groups = json::array();
  if (name) {
    groups.push_back(find(*name)->status());
  } else {
    for (const auto& [n, g] : groups_) groups.push_back(g->status());
  }
  return {{"groups", groups},
          {"running_groups", running_count_locked()},
          {"max_running_groups", settings_.max_running_groups},
          {"writer", store_->stats()},
          {"devices", devices_.health()},
          {"db_path", store_->path()}};
}

json Poller::samples(const json& arguments) {
  open();
  SampleQuery q;
  q.group = arguments.value("group", "");
  {
    std::lock_guard lock(groups_mutex_);
    find(q.group);
  }
  try {
    if (arguments.contains("tag")) q.tag = arguments["tag"].get<std::string>();
    if (arguments.contains("from")) q.from_ms = parse_time(arguments["from"]);
    if (arguments.contains("to")) q.to_ms = parse_time(arguments["to"]);
  } catch (const std::exception& e) {
    throw ToolError(e.what());
  }
  q.limit = arguments.value("limit", static_cast<std::int64_t>(1000));
  q.newest_first = arguments.value("order", std::string("oldest_first")) == "newest_first";
  json out = {{"group", q.group}};
  SampleStore* store;
  {
    std::lock_guard lock(groups_mutex_);
    store = store_.get();
  }
  // What the writer holds now is part of the answer: a caller that just saw a poll succeed
  // expects its values.
  store->flush(1000);
  if (!arguments.contains("bucket_ms")) {
    auto rows = store->query(q);
    bool truncated = static_cast<std::int64_t>(rows.size()) > q.limit;
    if (truncated) rows.resize(static_cast<std::size_t>(q.limit));
    json samples = json::array();
    for (const auto& r : rows)
      samples.push_back({{"tag", r.tag}, {"ts", iso_time(r.ts_ms)}, {"ts_ms", r.ts_ms}, {"value", r.value}});
    out["samples"] = std::move(samples);
    out["count"] = rows.size();
    out["truncated"] = truncated;
    return out;
  }
  std::int64_t bucket = arguments["bucket_ms"].get<std::int64_t>();
  constexpr std::int64_t kMaxScan = 5'000'000;
  auto rows = store->scan(q, kMaxScan);
  json buckets = json::array();
  std::size_t i = 0;
  bool truncated = false;
  while (i < rows.size()) {
    const auto& first = rows[i];
    std::int64_t start = first.ts_ms - ((first.ts_ms % bucket) + bucket) % bucket;
    double mn = first.value, mx = first.value, sum = 0, last = first.value;
    std::int64_t n = 0;
    std::size_t j = i;
    for (; j < rows.size() && rows[j].tag == first.tag && rows[j].ts_ms < start + bucket; ++j) {
      mn = std::min(mn, rows[j].value);
      mx = std::max(mx, rows[j].value);
      sum += rows[j].value;
      last = rows[j].value;
      ++n;
    }
    if (static_cast<std::int64_t>(buckets.size()) >= q.limit) {
      truncated = true;
      break;
    }
    buckets.push_back({{"tag", first.tag}, {"start", iso_time(start)}, {"start_ms", start}, {"count", n},
                       {"min", mn}, {"max", mx}, {"avg", sum / static_cast<double>(n)}, {"last", last}});
    i = j;
  }
  out["bucket_ms"] = bucket;
  out["buckets"] = std::move(buckets);
  out["count"] = out["buckets"].size();
  out["truncated"] = truncated || static_cast<std::int64_t>(rows.size()) >= kMaxScan;
  return out;
}

// ------------------------------------------------------------------------------------------------
// Time

std::string iso_time(std::int64_t ms) {
  std::time_t secs = static_cast<std::time_t>(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
  int millis = static_cast<int>(((ms % 1000) + 1000) % 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
  return buf;
}

std::int64_t parse_time(const json& value) {
  if (value.is_number_integer()) return value.get<std::int64_t>();
  if (value.is_number()) return static_cast<std::int64_t>(value.get<double>());
  if (!value.is_string())
    throw std::invalid_argument("a time must be epoch milliseconds or an ISO 8601 UTC string, got " + value.dump());
  const std::string& s = value.get_ref<const std::string&>();
  static const std::regex pattern(
      R"((\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?(Z|[+-]00:?00)?)");
  std::smatch m;
  if (!std::regex_match(s, m, pattern))
    throw std::invalid_argument("cannot read time '" + s +
                                "'; use epoch milliseconds or ISO 8601 UTC like 2026-01-02T03:04:05.678Z");
  std::tm tm{};
  tm.tm_year = std::stoi(m[1]) - 1900;
  tm.tm_mon = std::stoi(m[2]) - 1;
  tm.tm_mday = std::stoi(m[3]);
  tm.tm_hour = m[4].matched ? std::stoi(m[4]) : 0;
  tm.tm_min = m[5].matched ? std::stoi(m[5]) : 0;
  tm.tm_sec = m[6].matched ? std::stoi(m[6]) : 0;
  std::int64_t ms = static_cast<std::int64_t>(::timegm(&tm)) * 1000;
  if (m[7].matched) {
    std::string frac = m[7].str();
    frac.resize(3, '0');
    ms += std::stoi(frac);
  }
  return ms;
}

}  // namespace mcpd::modbus
