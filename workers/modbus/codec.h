// How Modbus data maps to numbers: the four tables, the value types with their byte and word
// orders and scale, and the batching of a group's tags into as few read requests as the protocol
// allows. Pure functions, no I/O; the tools and the poller share them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mcpd::modbus {

/// The four Modbus data tables.
enum class Table { holding, input, coils, discrete };

/// How registers are read as numbers. Bits (coils, discrete inputs) are always 0 or 1.
enum class DataType { int16, uint16, int32, uint32, float32 };

/// A value's encoding in registers: type, byte order inside each register, word order of 32-bit
/// values, and a scale applied after decoding (value = raw * scale) and undone before encoding.
struct Encoding {
  DataType type = DataType::uint16;
  bool bytes_little = false;  // "little": the low byte comes first inside each register
  bool words_little = false;  // "little": the low 16-bit word comes first (CDAB)
  double scale = 1.0;
};

/// Parses names as the tools spell them; nullopt for an unknown name.
std::optional<Table> parse_table(const std::string& name);
std::optional<DataType> parse_type(const std::string& name);
std::string table_name(Table table);
std::string type_name(DataType type);

bool is_bit_table(Table table);
/// Registers one value of `type` takes (1 or 2).
int register_width(DataType type);

/// Decodes the value starting at `registers[0]` (register_width(type) registers are used).
double decode(const std::uint16_t* registers, const Encoding& encoding);

/// Encodes `value` into register_width registers. Throws std::invalid_argument when the value does
/// not fit the type after scaling ("70000 does not fit int16") or is not whole for an integer type.
std::vector<std::uint16_t> encode(double value, const Encoding& encoding);

/// A span of one table a tag occupies.
struct TagSpan {
  Table table = Table::holding;
  int address = 0;
  int width = 1;  // registers, or 1 bit
};

/// One read request of a batch: a table, a start address and a count, and the tags it covers (by
/// their index in the input).
struct ReadRequest {
  Table table = Table::holding;
  int address = 0;
  int count = 0;
  std::vector<std::size_t> tags;
};

/// Largest gap (unused registers or bits) a request may read over to join two tags: reading a few
/// unused registers costs less than a second round trip, but a device may refuse addresses it
/// does not have, so the gap stays small.
constexpr int kMaxGapRegisters = 8;
constexpr int kMaxGapBits = 64;
constexpr int kMaxReadRegisters = 125;  // Modbus limits per request (MODBUS_MAX_READ_REGISTERS)
constexpr int kMaxReadBits = 2000;

/// Groups spans into as few requests as possible: per table, sorted by address, merging spans
/// that overlap or are at most a small gap apart while the request stays within the protocol's
/// limit. Every span lands in exactly one request that covers it entirely.
std::vector<ReadRequest> plan_reads(const std::vector<TagSpan>& spans);

}  // namespace mcpd::modbus
