// Decoding what a Modbus device answers (workers/modbus/codec): the registers of a response are
// device-controlled, and so are the types, orders and scales a group's tags ask for. The input
// is taken as a stream of tags (table, type, orders, address, width) and register words: each
// value is decoded and, when it is finite, encoded again; then the tags are planned into read
// requests, whose documented guarantees are checked.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "codec.h"

using namespace mcpd::modbus;

namespace {

void require(bool condition) {
  if (!condition) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const DataType types[] = {DataType::int16, DataType::uint16, DataType::int32, DataType::uint32,
                                   DataType::float32};
  static const Table tables[] = {Table::holding, Table::input, Table::coils, Table::discrete};
  std::vector<TagSpan> spans;
  std::size_t at = 0;
  while (at + 8 <= size && spans.size() < 256) {
    const std::uint8_t* p = data + at;
    at += 8;
    Encoding e;
    e.type = types[p[0] % 5];
    e.bytes_little = p[0] & 0x10;
    e.words_little = p[0] & 0x20;
    const double scales[] = {1.0, 0.1, 10.0, -1.0, 1e-300, 1e300, 0.0, 3.0};
    e.scale = scales[(p[0] >> 6) | ((p[1] & 1) << 2)];
    std::uint16_t registers[2] = {static_cast<std::uint16_t>(p[2] << 8 | p[3]),
                                  static_cast<std::uint16_t>(p[4] << 8 | p[5])};
    double value = decode(registers, e);
    if (std::isfinite(value)) {
      try {
        std::vector<std::uint16_t> again = encode(value, e);
        require(again.size() == static_cast<std::size_t>(register_width(e.type)));
      } catch (const std::invalid_argument&) {
        // Out of range after scaling, or not whole: refused with a message.
      }
    }
    TagSpan span;
    span.table = tables[p[1] >> 1 & 3];
    span.width = is_bit_table(span.table) ? 1 : register_width(e.type);
    span.address = std::min(p[6] << 8 | p[7], 65536 - span.width);  // tags are validated this far
    spans.push_back(span);
  }

  std::vector<ReadRequest> requests = plan_reads(spans);
  std::vector<int> covered(spans.size(), 0);
  for (const auto& request : requests) {
    const int limit = is_bit_table(request.table) ? kMaxReadBits : kMaxReadRegisters;
    require(request.count >= 1 && request.count <= limit);
    for (std::size_t tag : request.tags) {
      require(tag < spans.size());
      const TagSpan& span = spans[tag];
      require(span.table == request.table);
      require(span.address >= request.address && span.address + span.width <= request.address + request.count);
      ++covered[tag];
    }
  }
  for (int n : covered) require(n == 1);
  return 0;
}
