#include "modbus_tools.h"

#include <chrono>
#include <stdexcept>

#include "codec.h"
#include "device.h"
#include "poller.h"

namespace mcpd {

namespace {

using namespace modbus;

json object_schema(json properties, json required) {
  return {{"type", "object"}, {"properties", std::move(properties)}, {"required", std::move(required)},
          {"additionalProperties", false}};
}

json device_properties() {
  return {{"host", {{"type", "string"}, {"minLength", 1}, {"description", "Device host name or IP address."}}},
          {"port", {{"type", "integer"}, {"minimum", 1}, {"maximum", 65535}, {"default", 502},
                    {"description", "Modbus TCP port (default 502)."}}},
          {"unit", {{"type", "integer"}, {"minimum", 0}, {"maximum", 255}, {"default", 1},
                    {"description", "Unit (slave) id (default 1)."}}}};
}

json order_schema(const char* what) {
  return {{"type", "string"}, {"enum", {"big", "little"}}, {"default", "big"}, {"description", what}};
}

json encoding_properties() {
  return {{"type", {{"type", "string"}, {"enum", {"int16", "uint16", "int32", "uint32", "float32"}},
                    {"description", "How registers decode (default uint16); 32-bit types take 2 registers."}}},
          {"byte_order", order_schema("Byte order inside each register: big (AB, the Modbus standard) or little (BA).")},
          {"word_order", order_schema("Word order of 32-bit values: big (high word first, ABCD) or little (CDAB).")},
          {"scale", {{"type", "number"},
                     {"description", "Multiplier applied after decoding (value = raw * scale); writes divide by it."}}}};
}

json name_schema(const char* what) {
  return {{"type", "string"}, {"minLength", 1}, {"maxLength", 64}, {"description", what}};
}

Encoding encoding_of(const json& a) {
  Encoding e;
  if (a.contains("type")) e.type = *parse_type(a["type"].get<std::string>());
  e.bytes_little = a.value("byte_order", std::string("big")) == "little";
  e.words_little = a.value("word_order", std::string("big")) == "little";
  if (a.contains("scale")) e.scale = a["scale"].get<double>();
  return e;
}

int port_of(const json& a) { return a.value("port", 502); }
int unit_of(const json& a) { return a.value("unit", 1); }

/// Runs `body`, turning the poller's and devices' failures into tool errors.
template <class Body>
ToolResult guarded(Body body) {
  try {
    return body();
  } catch (const DeviceError& e) {
    throw ToolError(e.what());
  } catch (const std::invalid_argument& e) {
    throw ToolError(e.what());
  } catch (const StoreError& e) {
    // The database failed (disk full, file removed, locked too long): the caller's to know, not a bug.
    throw ToolError(std::string("the Modbus database failed: ") + e.what());
  }
}

Tool base(const char* name, const char* title, std::string description) {
  Tool tool;
  tool.name = name;
  tool.title = title;
  tool.description = std::move(description);
  tool.cache = CachePolicy::never;
  tool.shadowable = false;  // groups and connections live in one process; readings are live
  return tool;
}

/// Changes the poller's state (groups), not a device's: not read-only, never retried, and
/// allowed without allow_writes.
Tool group_tool(const char* name, const char* title, std::string description) {
  Tool tool = base(name, title, std::move(description));
  tool.annotations = {false, false, false, false};
  tool.output_schema = {{"type", "object"}};
  return tool;
}

Tool read_tool(std::shared_ptr<Poller> poller) {
  Tool tool = base("modbus_read", "Read Modbus values",
                   "Reads a Modbus TCP device now: `count` registers of the holding or input table, or `count` bits "
                   "of coils or discrete inputs, from 0-based `address`. With `type`, `count` counts values of that "
                   "type (32-bit types take 2 registers each) and `values` holds them decoded with the byte and word "
                   "order and scale. Returns the raw registers or bits too. Never cached: every call asks the device.");
  json props = device_properties();
  props["table"] = {{"type", "string"}, {"enum", {"holding", "input", "coils", "discrete"}},
                    {"description", "Which Modbus table."}};
  props["address"] = {{"type", "integer"}, {"minimum", 0}, {"maximum", 65535}, {"description", "0-based start address."}};
  props["count"] = {{"type", "integer"}, {"minimum", 1}, {"maximum", 2000}, {"default", 1},
                    {"description", "Registers, bits, or values of `type` to read (at most 125 registers or 2000 bits)."}};
  for (const json encoding = encoding_properties(); auto& [k, v] : encoding.items()) props[k] = v;
  tool.input_schema = object_schema(props, {"host", "table", "address"});
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"device", {{"type", "string"}}},
        {"unit", {{"type", "integer"}}},
        {"table", {{"type", "string"}}},
        {"address", {{"type", "integer"}}},
        {"count", {{"type", "integer"}}},
        {"type", {{"type", "string"}}},
        {"registers", {{"type", "array"}, {"items", {{"type", "integer"}}}, {"description", "Raw 16-bit registers."}}},
        {"bits", {{"type", "array"}, {"items", {{"type", "boolean"}}}}},
        {"values", {{"type", "array"}, {"description", "Decoded numbers (registers) or booleans (bits)."}}},
        {"duration_ms", {{"type", "number"}}}}},
      {"required", {"device", "unit", "table", "address", "count", "values"}}};
  tool.annotations = {true, false, true, true};
  tool.default_timeout = std::chrono::seconds(30);
  tool.handler = [poller](const json& a, ToolContext& context) {
    return guarded([&] {
      std::string host = a["host"];
      poller->check_host(host, port_of(a));
      Table table = *parse_table(a["table"].get<std::string>());
      int address = a["address"];
      if (a.contains("scale") && a["scale"].get<double>() == 0) throw ToolError("scale: must not be 0");
      int count = a.value("count", 1);
      auto device = poller->devices().get(host, port_of(a));
      json out = {{"device", device->name()}, {"unit", unit_of(a)}, {"table", table_name(table)}, {"address", address},
                  {"count", count}};
      auto began = std::chrono::steady_clock::now();
      if (is_bit_table(table)) {
        if (address + count > 65536) throw ToolError("address + count runs past address 65535");
        auto bits = device->read_bits(unit_of(a), table, address, count, false, &context.cancel);
        json values = json::array();
        for (auto b : bits) values.push_back(b != 0);
        out["bits"] = values;
        out["values"] = values;
      } else {
        Encoding e = encoding_of(a);
        int width = register_width(e.type);
        if (count * width > kMaxReadRegisters)
          throw ToolError("count: at most " + std::to_string(kMaxReadRegisters) + " registers per read (" +
                          std::to_string(kMaxReadRegisters / width) + " values of " + type_name(e.type) + ")");
        if (address + count * width > 65536) throw ToolError("address + count runs past register 65535");
        auto regs = device->read_registers(unit_of(a), table, address, count * width, false, &context.cancel);
        json values = json::array();
        for (int i = 0; i < count; ++i) values.push_back(decode(regs.data() + i * width, e));
        out["registers"] = regs;
        out["values"] = values;
        out["type"] = type_name(e.type);
      }
      out["duration_ms"] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count();
      return ToolResult{out, {}};
    });
  };
  return tool;
}

Tool write_tool(std::shared_ptr<Poller> poller) {
  Tool tool = base("modbus_write", "Write Modbus registers or coils",
                   "Writes to a Modbus TCP device: holding registers (`values` are integers, raw 16-bit registers "
                   "from -32768 to 65535, or numbers encoded with `type`, byte and word order and scale) or coils "
                   "(`values` are booleans) from 0-based `address`. Changes the device: destructive, never retried, "
                   "and refused unless writes are enabled (--allow_writes true).");
  json props = device_properties();
  props["table"] = {{"type", "string"}, {"enum", {"holding", "coils"}}, {"description", "holding or coils."}};
  props["address"] = {{"type", "integer"}, {"minimum", 0}, {"maximum", 65535}, {"description", "0-based start address."}};
  props["values"] = {{"type", "array"}, {"minItems", 1}, {"maxItems", 1968},
                     {"items", {{"type", {"number", "boolean"}}}},
                     {"description", "Values to write from `address` on."}};
  for (const json encoding = encoding_properties(); auto& [k, v] : encoding.items()) props[k] = v;
  tool.input_schema = object_schema(props, {"host", "table", "address", "values"});
  tool.output_schema = {{"type", "object"},
                        {"properties",
                         {{"device", {{"type", "string"}}},
                          {"table", {{"type", "string"}}},
                          {"address", {{"type", "integer"}}},
                          {"written", {{"type", "integer"}, {"description", "Registers or coils written."}}},
                          {"registers", {{"type", "array"}, {"items", {{"type", "integer"}}}}}}},
                        {"required", {"device", "table", "address", "written"}}};
  tool.annotations = {false, true, false, true};
  tool.handler = [poller](const json& a, ToolContext& context) {
    if (!context.allow_writes) throw ToolError("writes are disabled; start mcpd with --allow_writes true");
    return guarded([&] {
      std::string host = a["host"];
      poller->check_host(host, port_of(a));
      Table table = *parse_table(a["table"].get<std::string>());
      int address = a["address"];
      const json& values = a["values"];
      auto device = poller->devices().get(host, port_of(a));
      json out = {{"device", device->name()}, {"table", table_name(table)}, {"address", address}};
      if (table == Table::coils) {
        std::vector<std::uint8_t> bits;
        for (std::size_t i = 0; i < values.size(); ++i) {
          const json& v = values[i];
          if (v.is_boolean()) bits.push_back(v.get<bool>() ? 1 : 0);
          else if (v.is_number_integer() && (v == 0 || v == 1)) bits.push_back(v.get<int>() != 0);
          else throw ToolError("values[" + std::to_string(i) + "]: a coil is true or false, got " + v.dump());
        }
        if (address + static_cast<int>(bits.size()) > 65536) throw ToolError("address + values run past address 65535");
        device->write_bits(unit_of(a), address, bits, &context.cancel);
        out["written"] = bits.size();
        return ToolResult{out, {}};
      }
      std::vector<std::uint16_t> regs;
      bool typed = a.contains("type") || a.contains("scale");
      Encoding e = encoding_of(a);
      for (std::size_t i = 0; i < values.size(); ++i) {
        const json& v = values[i];
        std::string where = "values[" + std::to_string(i) + "]: ";
        if (!v.is_number()) throw ToolError(where + "a register value is a number, got " + v.dump());
        if (!typed) {
          if (!v.is_number_integer() || v.get<std::int64_t>() < -32768 || v.get<std::int64_t>() > 65535)
            throw ToolError(where + "a raw register is an integer from -32768 to 65535, got " + v.dump() +
                            "; give `type` to encode other numbers");
          std::uint16_t r = static_cast<std::uint16_t>(v.get<std::int64_t>() & 0xffff);
          if (e.bytes_little) r = static_cast<std::uint16_t>((r << 8) | (r >> 8));
          regs.push_back(r);
          continue;
        }
        try {
          for (auto r : encode(v.get<double>(), e)) regs.push_back(r);
        } catch (const std::invalid_argument& err) {
          throw ToolError(where + err.what());
        }
      }
      if (regs.size() > 123) throw ToolError("values: at most 123 registers per write, got " + std::to_string(regs.size()));
      if (address + static_cast<int>(regs.size()) > 65536) throw ToolError("address + values run past register 65535");
      device->write_registers(unit_of(a), address, regs, &context.cancel);
      out["written"] = regs.size();
      out["registers"] = regs;
      return ToolResult{out, {}};
    });
  };
  return tool;
}

json tags_schema() {
  json tag_props = {{"name", {{"type", "string"}, {"minLength", 1}, {"description", "Tag name, unique in the group."}}},
                    {"address", {{"type", "integer"}, {"minimum", 0}, {"maximum", 65535}}},
                    {"table", {{"type", "string"}, {"enum", {"holding", "input", "coils", "discrete"}},
                               {"default", "holding"}}}};
  for (const json encoding = encoding_properties(); auto& [k, v] : encoding.items()) tag_props[k] = v;
  return {{"type", "array"}, {"minItems", 1}, {"maxItems", 10000},
          {"items", object_schema(tag_props, {"name", "address"})},
          {"description", "The values the group polls. Tags are batched into as few requests as possible."}};
}

json group_properties() {
  json props = device_properties();
  props["name"] = name_schema("Group name.");
  props["tags"] = tags_schema();
  props["mode"] = {{"type", "string"}, {"enum", {"FIXED", "HANDSHAKE"}}, {"default", "FIXED"},
                   {"description", "FIXED: polled every interval_ms. HANDSHAKE: polled only by modbus_group_trigger."}};
  props["interval_ms"] = {{"type", "integer"}, {"minimum", 10}, {"maximum", 86400000},
                          {"description", "FIXED groups: poll period in milliseconds."}};
  return props;
}

std::vector<Tool> tools_over(const std::shared_ptr<Poller>& poller) {
  std::vector<Tool> tools;
  tools.push_back(read_tool(poller));
  tools.push_back(write_tool(poller));

  Tool create = group_tool("modbus_group_create", "Create a Modbus polling group",
                           "Defines a polling group: a device (host, port, unit), its tags (name, address, table, "
                           "type, scale, byte and word order) and a mode, FIXED with interval_ms or HANDSHAKE (polled "
                           "only when triggered). The group is stored (it survives restarts) and starts stopped: use "
                           "modbus_group_start. Samples go to the poller's SQLite database.");
  create.input_schema = object_schema(group_properties(), {"name", "host", "tags"});
  create.handler = [poller](const json& a, ToolContext&) { return guarded([&] { return ToolResult{poller->create_group(a), {}}; }); };
  tools.push_back(create);

  Tool update = group_tool("modbus_group_update", "Change a Modbus polling group",
                           "Changes a group: the fields given replace the stored ones (tags as a whole list). A running "
                           "group finishes its cycle and goes on with the new definition.");
  update.input_schema = object_schema(group_properties(), {"name"});
  update.handler = [poller](const json& a, ToolContext&) { return guarded([&] { return ToolResult{poller->update_group(a), {}}; }); };
  tools.push_back(update);

  json name_only = object_schema({{"name", name_schema("Group name.")}}, {"name"});
  Tool remove = group_tool("modbus_group_delete", "Delete a Modbus polling group",
                           "Stops the group (after its current cycle) and deletes it with its stored samples.");
  remove.annotations.destructive = true;  // its samples go with it
  remove.input_schema = name_only;
  remove.handler = [poller](const json& a, ToolContext&) {
    return guarded([&] { return ToolResult{poller->delete_group(a["name"]), {}}; });
  };
  tools.push_back(remove);

  Tool start = group_tool("modbus_group_start", "Start a Modbus polling group",
                          "Starts a group: a FIXED group polls every interval_ms from now on (drift-free, on a "
                          "monotonic clock); a HANDSHAKE group accepts triggers. Running groups resume by themselves "
                          "after a restart. At most modbus.max_running_groups (default 10) run at once.");
  start.input_schema = name_only;
  start.handler = [poller](const json& a, ToolContext&) {
    return guarded([&] { return ToolResult{poller->start_group(a["name"]), {}}; });
  };
  tools.push_back(start);

  Tool stop = group_tool("modbus_group_stop", "Stop a Modbus polling group",
                         "Stops a group gracefully: a poll in progress finishes first.");
  stop.input_schema = name_only;
  stop.handler = [poller](const json& a, ToolContext&) {
    return guarded([&] { return ToolResult{poller->stop_group(a["name"]), {}}; });
  };
  tools.push_back(stop);

  Tool trigger = group_tool("modbus_group_trigger", "Poll a HANDSHAKE group now",
                            "Polls a running HANDSHAKE group once, now, and returns success, tag_count and the values "
                            "(also stored as samples). Triggers less than 1 s after the last poll are coalesced: they "
                            "return that poll's result with coalesced: true.");
  trigger.input_schema = name_only;
  trigger.handler = [poller](const json& a, ToolContext& context) {
    return guarded([&] { return ToolResult{poller->trigger_group(a["name"], &context.cancel), {}}; });
  };
  tools.push_back(trigger);

  Tool status = base("modbus_status", "Modbus poller status",
                     "Per group: mode, state, last poll time, success and error counts, last error, start-lateness "
                     "jitter (p50/p99/max against the scheduled times), overruns (skipped slots) and samples queued; "
                     "the SQLite writer's queued, written and dropped counts; device connection health.");
  status.annotations = {true, false, true, false};
  status.input_schema = object_schema({{"name", name_schema("Only this group.")}}, json::array());
  status.output_schema = {{"type", "object"},
                          {"properties",
                           {{"groups", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                            {"writer", {{"type", "object"}}},
                            {"devices", {{"type", "array"}}}}}};
  status.handler = [poller](const json& a, ToolContext&) {
    return guarded([&] {
      std::optional<std::string> name;
      if (a.contains("name")) name = a["name"].get<std::string>();
      return ToolResult{poller->status(name), {}};
    });
  };
  tools.push_back(status);

  Tool samples = base("modbus_samples", "Query stored Modbus samples",
                      "Samples a group stored, optionally of one tag, in a time range (`from`/`to`: epoch milliseconds "
                      "or ISO 8601 UTC, inclusive), oldest first unless order is newest_first, at most `limit`. With "
                      "`bucket_ms`, one row per tag and bucket instead: count, min, max, avg and last.");
  samples.annotations = {true, false, true, false};
  json time_schema = {{"type", {"integer", "string"}}, {"description", "Epoch ms or ISO 8601 UTC."}};
  samples.input_schema =
      object_schema({{"group", name_schema("Group name.")},
                     {"tag", {{"type", "string"}, {"minLength", 1}, {"description", "Only this tag's samples."}}},
                     {"from", time_schema},
                     {"to", time_schema},
                     {"limit",
                      {{"type", "integer"},
                       {"minimum", 1},
                       {"maximum", 100000},
                       {"default", 1000},
                       {"description", "At most this many rows (samples, or buckets with bucket_ms)."}}},
                     {"order",
                      {{"type", "string"},
                       {"enum", {"oldest_first", "newest_first"}},
                       {"default", "oldest_first"},
                       {"description", "newest_first with a limit gives the latest samples."}}},
                     {"bucket_ms", {{"type", "integer"}, {"minimum", 1}, {"description", "Downsample into buckets of this width."}}}},
                    {"group"});
  samples.output_schema = {{"type", "object"},
                           {"properties",
                            {{"group", {{"type", "string"}}},
                             {"samples", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                             {"buckets", {{"type", "array"}, {"items", {{"type", "object"}}}}},
                             {"count", {{"type", "integer"}}},
                             {"truncated", {{"type", "boolean"}}}}},
                           {"required", {"group", "count", "truncated"}}};
  samples.handler = [poller](const json& a, ToolContext&) { return guarded([&] { return ToolResult{poller->samples(a), {}}; }); };
  tools.push_back(samples);
  return tools;
}

}  // namespace

std::shared_ptr<modbus::Poller> make_modbus_poller(const json& settings) {
  return std::make_shared<modbus::Poller>(modbus::parse_settings(settings));
}

std::vector<Tool> modbus_tools(std::shared_ptr<modbus::Poller> poller) { return tools_over(poller); }

std::vector<Tool> modbus_tools(const json& settings) { return tools_over(make_modbus_poller(settings)); }

Family modbus_family() {
  Family family;
  family.kind = "modbus";
  family.instructions =
      "Modbus TCP tools (reads, writes when enabled, polling groups with stored samples) for allowed hosts";
  family.singleton = true;  // device connections, polling groups and the sample database's lock
  family.make = [](const json& settings) {
    std::shared_ptr<modbus::Poller> poller = make_modbus_poller(settings);
    // In-process, the poller opens its database (and resumes running groups) only when a Modbus
    // tool runs there; in pool mode the worker owns the database and its lock.
    return FamilyInstance{modbus_tools(poller), [poller] {
      try {
        poller->open();
      } catch (const std::exception& e) {
        throw std::runtime_error(std::string("Modbus polling groups unavailable: ") + e.what());
      }
    }, [poller] { poller->shutdown(); }};
  };
  return family;
}

}  // namespace mcpd
