#include "codec.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <stdexcept>

namespace mcpd::modbus {

std::optional<Table> parse_table(const std::string& name) {
  if (name == "holding") return Table::holding;
  if (name == "input") return Table::input;
  if (name == "coils") return Table::coils;
  if (name == "discrete") return Table::discrete;
  return std::nullopt;
}

std::optional<DataType> parse_type(const std::string& name) {
  if (name == "int16") return DataType::int16;
  if (name == "uint16") return DataType::uint16;
  if (name == "int32") return DataType::int32;
  if (name == "uint32") return DataType::uint32;
  if (name == "float32") return DataType::float32;
  return std::nullopt;
}

std::string table_name(Table table) {
  switch (table) {
    case Table::holding: return "holding";
    case Table::input: return "input";
    case Table::coils: return "coils";
    case Table::discrete: return "discrete";
  }
  return "?";
}

std::string type_name(DataType type) {
  switch (type) {
    case DataType::int16: return "int16";
    case DataType::uint16: return "uint16";
    case DataType::int32: return "int32";
    case DataType::uint32: return "uint32";
    case DataType::float32: return "float32";
  }
  return "?";
}

bool is_bit_table(Table table) { return table == Table::coils || table == Table::discrete; }

int register_width(DataType type) {
  return type == DataType::int32 || type == DataType::uint32 || type == DataType::float32 ? 2 : 1;
}

namespace {

std::uint16_t swap_bytes(std::uint16_t r) { return static_cast<std::uint16_t>((r << 8) | (r >> 8)); }

}  // namespace

double decode(const std::uint16_t* registers, const Encoding& e) {
  auto reg = [&](int i) { return e.bytes_little ? swap_bytes(registers[i]) : registers[i]; };
  double raw = 0;
  if (register_width(e.type) == 1) {
    std::uint16_t r = reg(0);
    raw = e.type == DataType::int16 ? static_cast<double>(static_cast<std::int16_t>(r)) : static_cast<double>(r);
  } else {
    std::uint32_t high = e.words_little ? reg(1) : reg(0);
    std::uint32_t low = e.words_little ? reg(0) : reg(1);
    std::uint32_t bits = (high << 16) | low;
    switch (e.type) {
      case DataType::int32: raw = static_cast<double>(static_cast<std::int32_t>(bits)); break;
      case DataType::uint32: raw = static_cast<double>(bits); break;
      default: {
        float f;
        std::memcpy(&f, &bits, sizeof f);
        raw = static_cast<double>(f);
      }
    }
  }
  return raw * e.scale;
}

std::vector<std::uint16_t> encode(double value, const Encoding& e) {
  if (!std::isfinite(value)) throw std::invalid_argument("value is not a finite number");
  // 0 / 0 would be NaN, and converting NaN to an integer type is undefined behaviour.
  if (e.scale == 0 || !std::isfinite(e.scale)) throw std::invalid_argument("scale must be a finite, non-zero number");
  double raw = value / e.scale;
  std::uint32_t bits = 0;
  auto integer = [&](double lo, double hi) {
    double rounded = std::round(raw);
    if (std::fabs(rounded - raw) > 1e-9 * std::max(1.0, std::fabs(raw)))
      throw std::invalid_argument(std::to_string(value) + " / scale is not a whole number, which " + type_name(e.type) +
                                  " needs");
    if (rounded < lo || rounded > hi)
      throw std::invalid_argument(std::to_string(value) + " does not fit " + type_name(e.type) + " (after scale)");
    return rounded;
  };
  switch (e.type) {
    case DataType::int16: bits = static_cast<std::uint16_t>(static_cast<std::int16_t>(integer(-32768, 32767))); break;
    case DataType::uint16: bits = static_cast<std::uint16_t>(integer(0, 65535)); break;
    case DataType::int32:
      bits = static_cast<std::uint32_t>(static_cast<std::int32_t>(integer(-2147483648.0, 2147483647.0)));
      break;
    case DataType::uint32: bits = static_cast<std::uint32_t>(integer(0, 4294967295.0)); break;
    case DataType::float32: {
      if (std::fabs(raw) > std::numeric_limits<float>::max())
        throw std::invalid_argument(std::to_string(value) + " does not fit float32");
      float f = static_cast<float>(raw);
      std::memcpy(&bits, &f, sizeof bits);
    }
  }
  auto out = [&](std::uint16_t r) { return e.bytes_little ? swap_bytes(r) : r; };
  if (register_width(e.type) == 1) return {out(static_cast<std::uint16_t>(bits))};
  std::uint16_t high = static_cast<std::uint16_t>(bits >> 16), low = static_cast<std::uint16_t>(bits & 0xffff);
  if (e.words_little) return {out(low), out(high)};
  return {out(high), out(low)};
}

std::vector<ReadRequest> plan_reads(const std::vector<TagSpan>& spans) {
  std::map<Table, std::vector<std::size_t>> by_table;
  for (std::size_t i = 0; i < spans.size(); ++i) by_table[spans[i].table].push_back(i);
  std::vector<ReadRequest> requests;
  for (auto& [table, indices] : by_table) {
    std::stable_sort(indices.begin(), indices.end(),
                     [&](std::size_t a, std::size_t b) { return spans[a].address < spans[b].address; });
    const int limit = is_bit_table(table) ? kMaxReadBits : kMaxReadRegisters;
    const int max_gap = is_bit_table(table) ? kMaxGapBits : kMaxGapRegisters;
    ReadRequest current;
    int end = 0;  // one past the last address current covers
    for (std::size_t i : indices) {
      const TagSpan& s = spans[i];
      int s_end = s.address + s.width;
      bool joins = !current.tags.empty() && s.address - end <= max_gap &&
                   std::max(end, s_end) - current.address <= limit;
      if (!joins) {
        if (!current.tags.empty()) requests.push_back(std::move(current));
        current = ReadRequest{table, s.address, 0, {}};
        end = s.address;
      }
      current.tags.push_back(i);
      end = std::max(end, s_end);
      current.count = end - current.address;
    }
    if (!current.tags.empty()) requests.push_back(std::move(current));
  }
  return requests;
}

}  // namespace mcpd::modbus
