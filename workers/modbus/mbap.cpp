#include "mbap.h"

#include <cstdio>

namespace mcpd::modbus {

namespace {

void put16(Bytes& out, int value) {
  out.push_back(static_cast<std::uint8_t>((value >> 8) & 0xff));
  out.push_back(static_cast<std::uint8_t>(value & 0xff));
}

int get16(const std::uint8_t* p) { return (p[0] << 8) | p[1]; }

std::string hex(int code) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "0x%02x", code & 0xff);
  return buf;
}

/// The length of the normal response PDU to `request` (function code included).
std::size_t expected_pdu_bytes(const Bytes& request) {
  int quantity = request.size() >= 5 ? get16(request.data() + 3) : 0;
  switch (request.empty() ? 0 : request[0]) {
    case 1:
    case 2: return 2 + static_cast<std::size_t>((quantity + 7) / 8);
    case 3:
    case 4: return 2 + 2 * static_cast<std::size_t>(quantity);
    default: return 5;  // 5, 6, 15, 16: function, address, value or quantity
  }
}

std::string function_text(const Bytes& request) {
  int quantity = request.size() >= 5 ? get16(request.data() + 3) : 0;
  auto of = [&](const char* one, const char* many) {
    return std::to_string(quantity) + " " + (quantity == 1 ? one : many);
  };
  switch (request.empty() ? 0 : request[0]) {
    case 1: return "a read of " + of("coil", "coils");
    case 2: return "a read of " + of("discrete input", "discrete inputs");
    case 3: return "a read of " + of("holding register", "holding registers");
    case 4: return "a read of " + of("input register", "input registers");
    case 5: return "a write of one coil";
    case 6: return "a write of one register";
    case 15: return "a write of " + of("coil", "coils");
    default: return "a write of " + of("register", "registers");
  }
}

}  // namespace

Bytes read_request(Table table, int address, int count) {
  int function = table == Table::coils ? 1 : table == Table::discrete ? 2 : table == Table::holding ? 3 : 4;
  Bytes pdu{static_cast<std::uint8_t>(function)};
  put16(pdu, address);
  put16(pdu, count);
  return pdu;
}

Bytes write_registers_request(int address, const std::vector<std::uint16_t>& values) {
  if (values.size() == 1) {
    Bytes pdu{6};
    put16(pdu, address);
    put16(pdu, values[0]);
    return pdu;
  }
  Bytes pdu{16};
  put16(pdu, address);
  put16(pdu, static_cast<int>(values.size()));
  pdu.push_back(static_cast<std::uint8_t>(values.size() * 2));
  for (auto v : values) put16(pdu, v);
  return pdu;
}

Bytes write_bits_request(int address, const std::vector<std::uint8_t>& bits) {
  if (bits.size() == 1) {
    Bytes pdu{5};
    put16(pdu, address);
    put16(pdu, bits[0] ? 0xff00 : 0x0000);
    return pdu;
  }
  Bytes pdu{15};
  put16(pdu, address);
  put16(pdu, static_cast<int>(bits.size()));
  std::size_t bytes = (bits.size() + 7) / 8;
  pdu.push_back(static_cast<std::uint8_t>(bytes));
  Bytes packed(bytes, 0);
  for (std::size_t i = 0; i < bits.size(); ++i)
    if (bits[i]) packed[i / 8] = static_cast<std::uint8_t>(packed[i / 8] | (1u << (i % 8)));
  pdu.insert(pdu.end(), packed.begin(), packed.end());
  return pdu;
}

Bytes frame_request(std::uint16_t transaction, std::uint8_t unit, const Bytes& pdu) {
  Bytes adu;
  adu.reserve(kMbapHeaderBytes + pdu.size());
  put16(adu, transaction);
  put16(adu, 0);
  put16(adu, static_cast<int>(pdu.size() + 1));
  adu.push_back(unit);
  adu.insert(adu.end(), pdu.begin(), pdu.end());
  return adu;
}

std::string check_response_header(const std::uint8_t* header, std::uint16_t transaction, std::uint8_t unit,
                                  const Bytes& request_pdu, std::size_t& body_bytes) {
  int got_transaction = get16(header), protocol = get16(header + 2), length = get16(header + 4);
  if (got_transaction != transaction)
    return "transaction id " + std::to_string(got_transaction) + ", but the request was " + std::to_string(transaction);
  if (protocol != 0) return "protocol id " + std::to_string(protocol) + ", where Modbus is 0";
  if (header[6] != unit)
    return "unit id " + std::to_string(header[6]) + ", but the request was for unit " + std::to_string(unit);
  std::size_t expected = expected_pdu_bytes(request_pdu) + 1;
  constexpr std::size_t exception = 3;  // unit id, function | 0x80, exception code
  if (static_cast<std::size_t>(length) != expected && static_cast<std::size_t>(length) != exception)
    return "MBAP length " + std::to_string(length) + ", but the answer to " + function_text(request_pdu) +
           " has length " + std::to_string(expected) + " (or 3 for an exception)";
  body_bytes = static_cast<std::size_t>(length) - 1;
  return "";
}

Response decode_response(const Bytes& request_pdu, const std::uint8_t* pdu, std::size_t size) {
  Response r;
  if (request_pdu.empty()) {
    r.error = "no request";
    return r;
  }
  const int function = request_pdu[0];
  if (size < 2) {
    r.error = "a response of " + std::to_string(size) + " bytes";
    return r;
  }
  if (pdu[0] == (function | 0x80)) {
    if (size != 2) {
      r.error = "an exception response of " + std::to_string(size) + " bytes, where it has 2";
      return r;
    }
    if (pdu[1] == 0) r.error = "an exception response with exception code 0, which is none";
    else r.exception_code = pdu[1];
    return r;
  }
  if (pdu[0] != function) {
    r.error = "function code " + hex(pdu[0]) + " in the answer to function " + hex(function) + " (expected " +
              hex(function) + " or its exception " + hex(function | 0x80) + ")";
    return r;
  }
  const std::size_t expected = expected_pdu_bytes(request_pdu);
  if (size != expected) {
    r.error = "a response of " + std::to_string(size) + " bytes to " + function_text(request_pdu) + ", where it has " +
              std::to_string(expected);
    return r;
  }
  const int quantity = get16(request_pdu.data() + 3);
  switch (function) {
    case 1:
    case 2: {
      if (pdu[1] != expected - 2) {
        r.error = "byte count " + std::to_string(pdu[1]) + ", where " + function_text(request_pdu) + " has " +
                  std::to_string(expected - 2);
        return r;
      }
      for (int i = 0; i < quantity; ++i) r.bits.push_back((pdu[2 + i / 8] >> (i % 8)) & 1);
      return r;
    }
    case 3:
    case 4: {
      if (pdu[1] != expected - 2) {
        r.error = "byte count " + std::to_string(pdu[1]) + ", where " + function_text(request_pdu) + " has " +
                  std::to_string(expected - 2);
        return r;
      }
      for (int i = 0; i < quantity; ++i)
        r.registers.push_back(static_cast<std::uint16_t>(get16(pdu + 2 + 2 * i)));
      return r;
    }
    default: {
      // Writes echo the address and the value (5, 6) or the quantity (15, 16) they carried out.
      int address = get16(pdu + 1), value = get16(pdu + 3);
      int want_address = get16(request_pdu.data() + 1), want_value = get16(request_pdu.data() + 3);
      if (address != want_address || value != want_value)
        r.error = "the echo of " + function_text(request_pdu) + " says address " + std::to_string(address) + ", " +
                  (function == 5 || function == 6 ? "value " : "quantity ") + std::to_string(value) +
                  ", but the request was address " + std::to_string(want_address) + ", " +
                  std::to_string(want_value);
      return r;
    }
  }
}

}  // namespace mcpd::modbus
