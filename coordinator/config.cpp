#include "config.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <fstream>
#include <functional>
#include <iterator>
#include <sstream>
#include <system_error>

#include "json_text.h"
#include "spawn.h"

namespace mcpd {

namespace fs = std::filesystem;

namespace {

constexpr std::array<const char*, 8> kLogLevels = {"debug",    "info",  "notice", "warning",
                                                   "error",    "critical", "alert", "emergency"};

enum class Kind { integer, boolean, string, paths, int_map, string_map, object, family, environment };

/// One configuration key: its name (as in the config file; MCPD_<NAME> in the environment and
/// --name=value on the command line), what it holds, and how to read and write it.
struct Option {
  const char* name;
  Kind kind;
  const char* help;
  std::function<void(Config&, const json&)> set;  // value already type-checked
  std::function<json(const Config&)> get;
  std::uint64_t min = 0;
  std::uint64_t max = UINT64_MAX;
};

// The largest MiB setting: 2^44 MiB is 2^64 bytes, so anything at or above it overflows in bytes.
constexpr std::uint64_t kMaxMebibytes = (std::uint64_t{1} << 44) - 1;

#define MCPD_INT_OPTION(field, lo, hi, help)                                        \
  Option {                                                                          \
    #field, Kind::integer, help,                                                    \
        [](Config& c, const json& v) { c.field = v.get<std::uint64_t>(); },         \
        [](const Config& c) { return json(c.field); }, lo, hi                       \
  }

const std::vector<Option>& options() {
  static const std::vector<Option> all = {
      Option{"roots", Kind::paths,
             "directories tools may read (default: the working directory); env and flags take a "
             "':'-separated list",
             [](Config& c, const json& v) {
               c.roots.clear();
               for (const auto& p : v) c.roots.emplace_back(p.get<std::string>());
             },
             [](const Config& c) {
               json out = json::array();
               for (const auto& r : c.roots) out.push_back(r.string());
               return out;
             }},
      MCPD_INT_OPTION(max_line_bytes, 1024, 1ull << 30, "largest JSON-RPC line accepted, bytes"),
      MCPD_INT_OPTION(max_in_flight, 1, 1u << 20, "requests running at once before 'server busy'"),
      MCPD_INT_OPTION(max_output_queue_bytes, 64u << 10, 1ull << 32,
                      "output waiting for the client before input pauses and notifications are dropped, bytes"),
      MCPD_INT_OPTION(max_file_bytes, 1, 1ull << 32, "largest file a tool reads, bytes"),
      MCPD_INT_OPTION(max_result_bytes, 1024, 1ull << 31, "largest tool result returned, bytes"),
      MCPD_INT_OPTION(tool_timeout_ms, 0, 24ull * 3600 * 1000,
                      "deadline of every tool call without a tool_timeouts_ms entry; 0: each tool's own"),
      Option{"tool_timeouts_ms", Kind::int_map, "per-tool deadlines, e.g. {\"code_parse\": 5000}",
             [](Config& c, const json& v) {
               c.tool_timeouts_ms.clear();
               for (auto it = v.begin(); it != v.end(); ++it)
                 c.tool_timeouts_ms[it.key()] = it.value().get<std::uint64_t>();
             },
             [](const Config& c) { return json(c.tool_timeouts_ms); }},
      Option{"cache_enabled", Kind::boolean, "use the L1 result cache",
             [](Config& c, const json& v) { c.cache_enabled = v.get<bool>(); },
             [](const Config& c) { return json(c.cache_enabled); }},
      MCPD_INT_OPTION(cache_max_bytes, 0, 1ull << 40, "L1 cache bound, bytes"),
      MCPD_INT_OPTION(cache_max_entries, 0, 1ull << 32, "L1 cache bound, entries"),
      MCPD_INT_OPTION(cache_ttl_ms, 1, 365ull * 24 * 3600 * 1000, "L1 cache entry lifetime"),
      Option{"mode", Kind::string, "where tools run: pool (worker processes), legacy (in-process) or shadow (both, compared)",
             [](Config& c, const json& v) { c.mode = v.get<std::string>(); },
             [](const Config& c) { return json(c.mode); }},
      Option{"tool_modes", Kind::string_map, "per-tool mode, e.g. {\"code_parse\": \"legacy\"}",
             [](Config& c, const json& v) {
               c.tool_modes.clear();
               for (auto it = v.begin(); it != v.end(); ++it) c.tool_modes[it.key()] = it.value().get<std::string>();
             },
             [](const Config& c) { return json(c.tool_modes); }},
      MCPD_INT_OPTION(pool_percent, 0, 100, "share (0..100) of pool-mode calls sent to the pool; the rest go legacy"),
      Option{"worker_dir", Kind::string, "directory of the mcpd-worker-<kind> executables (default: beside mcpd)",
             [](Config& c, const json& v) { c.worker_dir = v.get<std::string>(); },
             [](const Config& c) { return json(c.worker_dir); }},
      Option{"workers", Kind::object,
             "per-kind pool settings, e.g. {\"default\": {\"max_workers\": 4}, \"parser\": {\"min_workers\": 2}}",
             [](Config& c, const json& v) { c.workers = v; },
             [](const Config& c) { return c.workers; }},
      Option{"worker_env", Kind::environment,
             "variables workers get besides the allow-listed ones: [\"NAME\", ...] passed through, or "
             "{\"NAME\": \"value\" or true (passed through)}",
             [](Config& c, const json& v) { c.worker_env = v; },
             [](const Config& c) { return c.worker_env; }},
      Option{"worker_seccomp", Kind::boolean, "confine each worker kind with its seccomp system call filter",
             [](Config& c, const json& v) { c.worker_seccomp = v.get<bool>(); },
             [](const Config& c) { return json(c.worker_seccomp); }},
      Option{"search", Kind::family, "search worker settings (see README, 'Search settings')",
             [](Config& c, const json& v) { c.family_settings["search"] = v; },
             [](const Config& c) { return c.family_settings.count("search") ? c.family_settings.at("search") : json::object(); }},
      Option{"modbus", Kind::family, "Modbus poller settings (see README, 'Modbus settings')",
             [](Config& c, const json& v) { c.family_settings["modbus"] = v; },
             [](const Config& c) { return c.family_settings.count("modbus") ? c.family_settings.at("modbus") : json::object(); }},
      Option{"parser", Kind::family, "parser tool settings (see README, 'Parser settings')",
             [](Config& c, const json& v) { c.family_settings["parser"] = v; },
             [](const Config& c) { return c.family_settings.count("parser") ? c.family_settings.at("parser") : json::object(); }},
      Option{"allow_writes", Kind::boolean, "let tools that change state (destructiveHint) run; off by default",
             [](Config& c, const json& v) { c.allow_writes = v.get<bool>(); },
             [](const Config& c) { return json(c.allow_writes); }},
      Option{"test_tools", Kind::boolean, "register the test-only tools (tests only)",
             [](Config& c, const json& v) { c.test_tools = v.get<bool>(); },
             [](const Config& c) { return json(c.test_tools); }},
      MCPD_INT_OPTION(legacy_threads, 1, 256, "threads of the legacy in-process path"),
      MCPD_INT_OPTION(shutdown_grace_ms, 0, 600000,
                      "time in-flight calls get to finish at shutdown"),
      Option{"log_level", Kind::string, "stderr log level (debug, info, notice, warning, error)",
             [](Config& c, const json& v) { c.log_level = v.get<std::string>(); },
             [](const Config& c) { return json(c.log_level); }},
      MCPD_INT_OPTION(max_log_queue_bytes, 4096, 1ull << 32,
                      "log lines waiting for stderr before new ones are dropped (and counted), bytes"),
      Option{"notify_log_level", Kind::string,
             "level of MCP log notifications until the client calls logging/setLevel",
             [](Config& c, const json& v) { c.notify_log_level = v.get<std::string>(); },
             [](const Config& c) { return json(c.notify_log_level); }},
  };
  return all;
}

#undef MCPD_INT_OPTION

const Option* find_option(const std::string& name) {
  for (const auto& o : options())
    if (name == o.name) return &o;
  return nullptr;
}

std::string known_keys() {
  std::string out;
  for (const auto& o : options()) out += (out.empty() ? "" : ", ") + std::string(o.name);
  return out;
}

/// A value as an error message quotes it: its JSON, cut short, so a megabyte of bad value does not
/// become a megabyte of message.
std::string shown(const json& value) {
  constexpr std::size_t kMaxShown = 200;
  std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > kMaxShown) text = text.substr(0, kMaxShown) + "... (" + std::to_string(text.size()) + " bytes)";
  return text;
}

/// JSON text of a config file or of an environment or flag value, parsed as the protocol's own
/// messages are: valid UTF-8 and at most default_max_json_depth deep, because printing or copying
/// a deeper value recurses once per level and would overflow the stack.
json parse_config_json(const std::string& text, const std::string& what) {
  JsonText parsed = parse_json_text(text);
  if (!parsed.ok) throw ConfigError(what + ": " + parsed.error);
  return std::move(parsed.value);
}

/// Checks a JSON value against an option's kind and range, then stores it.
void apply(Config& config, const std::string& source, const std::string& key, const json& value) {
  const Option* opt = find_option(key);
  if (!opt) throw ConfigError(source + ": unknown key '" + key + "'; known keys: " + known_keys());
  auto fail = [&](const std::string& what) {
    throw ConfigError(source + ": key '" + key + "' " + what + ", got " + shown(value));
  };
  switch (opt->kind) {
    case Kind::integer:
      if (!value.is_number_unsigned()) fail("must be a non-negative integer");
      if (value.get<std::uint64_t>() < opt->min || value.get<std::uint64_t>() > opt->max)
        fail("must be between " + std::to_string(opt->min) + " and " + std::to_string(opt->max));
      break;
    case Kind::boolean:
      if (!value.is_boolean()) fail("must be true or false");
      break;
    case Kind::string:
      if (!value.is_string()) fail("must be a string");
      break;
    case Kind::paths:
      if (!value.is_array() || value.empty()) fail("must be a non-empty list of directories");
      for (const auto& p : value)
        if (!p.is_string() || p.get<std::string>().empty()) fail("must list directories as strings");
      break;
    case Kind::int_map:
      if (!value.is_object()) fail("must be an object of tool name to milliseconds");
      for (const auto& v : value)
        if (!v.is_number_unsigned() || v.get<std::uint64_t>() == 0)
          fail("must map tool names to positive integers");
      break;
    case Kind::string_map:
      if (!value.is_object()) fail("must be an object of tool name to string");
      for (const auto& v : value)
        if (!v.is_string()) fail("must map tool names to strings");
      break;
    case Kind::environment:
      if (auto why = pool::check_worker_env(value); !why.empty()) fail(why);
      break;
    case Kind::family:  // the family's library checks the contents (main.cpp)
      if (!value.is_object()) fail("must be a JSON object");
      break;
    case Kind::object:
      if (!value.is_object()) fail("must be a JSON object");
      for (auto kind = value.begin(); kind != value.end(); ++kind) {
        if (!kind.value().is_object())
          throw ConfigError(source + ": '" + key + "." + kind.key() + "' must be an object of settings");
        for (auto it = kind.value().begin(); it != kind.value().end(); ++it) {
          const auto& keys = worker_setting_keys();
          std::string where = source + ": '" + key + "." + kind.key() + "." + it.key() + "'";
          if (std::find(keys.begin(), keys.end(), it.key()) == keys.end()) {
            std::string known;
            for (const auto& k : keys) known += (known.empty() ? "" : ", ") + k;
            throw ConfigError(where + " is not a worker setting; known: " + known);
          }
          if (it.key() == "singleton") {
            if (!it.value().is_boolean()) throw ConfigError(where + " must be true or false");
          } else if (!it.value().is_number_unsigned()) {
            throw ConfigError(where + " must be a non-negative integer, got " + shown(it.value()));
          } else if (it.key() == "max_open_files" && it.value().get<std::uint64_t>() > 0 &&
                     it.value().get<std::uint64_t>() < 32) {
            throw ConfigError(where + " must be 0 (as inherited) or at least 32, got " + shown(it.value()));
          } else if (it.key().size() > 3 && it.key().compare(it.key().size() - 3, 3, "_mb") == 0 &&
                     it.value().get<std::uint64_t>() > kMaxMebibytes) {
            // Shifted into bytes, a larger value would wrap, and a wrapped limit can read as 0: none.
            throw ConfigError(where + " must be at most " + std::to_string(kMaxMebibytes) + " (MiB), got " +
                              shown(it.value()));
          }
        }
      }
      break;
  }
  opt->set(config, value);
}

/// Turns a string from the environment or a flag into the JSON the option expects.
json parse_text_value(const Option& opt, const std::string& source, const std::string& text) {
  // Every value ends up in JSON (--print-config, the workers' configuration), which holds UTF-8 only.
  if (auto bad = find_invalid_utf8(text))
    throw ConfigError(source + ": key '" + opt.name + "' is not valid UTF-8 (byte " + std::to_string(*bad) + ")");
  switch (opt.kind) {
    case Kind::integer: {
      std::uint64_t v = 0;
      std::size_t used = 0;
      try {
        if (text.empty() || text[0] == '-') throw std::invalid_argument("negative");
        v = std::stoull(text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used == 0 || used != text.size())
        throw ConfigError(source + ": key '" + opt.name + "' must be a non-negative integer, got '" +
                          text + "'");
      return v;
    }
    case Kind::boolean: {
      std::string t = text;
      std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
      if (t == "1" || t == "true" || t == "yes" || t == "on") return true;
      if (t == "0" || t == "false" || t == "no" || t == "off") return false;
      throw ConfigError(source + ": key '" + opt.name + "' must be true or false, got '" + text + "'");
    }
    case Kind::string:
      return text;
    case Kind::paths: {
      json list = json::array();
      std::stringstream ss(text);
      std::string part;
      while (std::getline(ss, part, ':'))
        if (!part.empty()) list.push_back(part);
      return list;
    }
    case Kind::int_map:
    case Kind::string_map:
    case Kind::family:
    case Kind::environment:
    case Kind::object:
      return parse_config_json(text, source + ": key '" + opt.name + "' must be a JSON object");
  }
  return nullptr;
}

void load_file(Config& config, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("config file '" + path + "': cannot be opened");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  json doc = parse_config_json(text, "config file '" + path + "': not valid JSON");
  if (!doc.is_object()) throw ConfigError("config file '" + path + "': must hold a JSON object");
  for (auto it = doc.begin(); it != doc.end(); ++it)
    apply(config, "config file '" + path + "'", it.key(), it.value());
}

void finish(Config& config) {
  if (log_level_rank(config.log_level) < 0)
    throw ConfigError("log_level: unknown level '" + config.log_level +
                      "'; use debug, info, notice, warning, error, critical, alert or emergency");
  if (log_level_rank(config.notify_log_level) < 0)
    throw ConfigError("notify_log_level: unknown level '" + config.notify_log_level + "'");
  if (config.mode != "pool" && config.mode != "legacy" && config.mode != "shadow")
    throw ConfigError("mode: unknown mode '" + config.mode + "'; use pool, legacy or shadow");
  for (const auto& [tool, mode] : config.tool_modes)
    if (mode != "pool" && mode != "legacy" && mode != "shadow")
      throw ConfigError("tool_modes." + tool + ": unknown mode '" + mode + "'; use pool, legacy or shadow");
  if (config.roots.empty()) config.roots.push_back(fs::current_path());
  std::vector<fs::path> canonical;
  for (const auto& root : config.roots) {
    std::error_code ec;
    fs::path abs = fs::canonical(root, ec);
    if (ec) throw ConfigError("roots: '" + root.string() + "' does not exist");
    if (!fs::is_directory(abs)) throw ConfigError("roots: '" + root.string() + "' is not a directory");
    // Tools exchange paths as JSON strings, which hold UTF-8 only.
    if (!is_valid_utf8(abs.string()))
      throw ConfigError("roots: '" + root.string() + "' resolves to a path that is not valid UTF-8");
    canonical.push_back(abs);
  }
  config.roots = canonical;
}

}  // namespace

const std::vector<std::string>& worker_setting_keys() {
  static const std::vector<std::string> keys = {
      "min_workers",       "max_workers",         "max_queue",          "singleton",
      "idle_timeout_ms",   "scale_down_interval_ms", "scale_up_cooldown_ms", "max_calls_per_worker", "memory_soft_limit_mb",
      "memory_hard_limit_mb", "max_open_files", "max_retries", "pipeline_depth",      "cancel_grace_ms",    "ping_interval_ms",
      "ping_timeout_ms",   "stop_grace_ms",       "backoff_initial_ms", "backoff_max_ms",
      "stable_after_ms",   "breaker_threshold",   "breaker_cooldown_ms"};
  return keys;
}

int log_level_rank(const std::string& level) {
  for (std::size_t i = 0; i < kLogLevels.size(); ++i)
    if (level == kLogLevels[i]) return static_cast<int>(i);
  return -1;
}

Invocation load_config(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  Invocation inv;
  std::map<std::string, std::string> environment;
  for (const auto& kv : env) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) environment[kv.substr(0, eq)] = kv.substr(eq + 1);
  }

  // Split flags first so --config is known before anything is applied.
  std::optional<std::string> config_file;
  if (auto it = environment.find("MCPD_CONFIG"); it != environment.end() && !it->second.empty())
    config_file = it->second;
  std::vector<std::pair<std::string, std::string>> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (a == "--print-config") { inv.print_config = true; continue; }
    if (a == "--help" || a == "-h") { inv.show_help = true; continue; }
    if (a == "--version") { inv.show_version = true; continue; }
    if (a.rfind("--", 0) != 0) throw ConfigError("command line: unexpected argument '" + a + "'");
    std::string name = a.substr(2), value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    } else if (i + 1 < args.size()) {
      value = args[++i];
    } else {
      throw ConfigError("command line: flag '" + a + "' needs a value");
    }
    std::replace(name.begin(), name.end(), '-', '_');
    if (name == "config") config_file = value;
    else if (name == "root") flags.emplace_back("roots", value);  // --root may repeat: joined below
    else flags.emplace_back(name, value);
  }

  Config& config = inv.config;
  if (config_file) load_file(config, *config_file);

  for (const auto& opt : options()) {
    std::string var = "MCPD_" + std::string(opt.name);
    std::transform(var.begin(), var.end(), var.begin(), [](unsigned char c) { return std::toupper(c); });
    if (auto it = environment.find(var); it != environment.end())
      apply(config, var, opt.name, parse_text_value(opt, var, it->second));
  }

  // Repeated --root flags add up; any other repeated flag: the last wins.
  json roots_from_flags = json::array();
  for (const auto& [name, value] : flags) {
    const Option* opt = find_option(name);
    if (!opt)
      throw ConfigError("command line: unknown flag '--" + name + "'; known keys: " + known_keys());
    json parsed = parse_text_value(*opt, "--" + name, value);
    if (opt->kind == Kind::paths) {
      for (const auto& p : parsed) roots_from_flags.push_back(p);
      continue;
    }
    apply(config, "--" + name, name, parsed);
  }
  if (!roots_from_flags.empty()) apply(config, "--roots", "roots", roots_from_flags);

  finish(config);
  return inv;
}

json config_to_json(const Config& config) {
  json out = json::object();
  for (const auto& o : options()) out[o.name] = o.get(config);
  return out;
}

std::string config_help() {
  std::string out;
  for (const auto& o : options()) {
    std::string env = "MCPD_" + std::string(o.name);
    std::transform(env.begin(), env.end(), env.begin(), [](unsigned char c) { return std::toupper(c); });
    out += "  --" + std::string(o.name) + " (" + env + "): " + o.help + "\n";
  }
  return out;
}

}  // namespace mcpd
