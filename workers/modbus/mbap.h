// Modbus TCP on the wire: request PDUs for the functions the tools use, the MBAP header that frames
// them, and the checks a response must pass before anything in it is believed. Pure functions, no
// I/O (device.cpp does the socket work), so every malformed response can be tested and fuzzed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "codec.h"

namespace mcpd::modbus {

using Bytes = std::vector<std::uint8_t>;

/// Transaction id (2), protocol id (2), length (2), unit id (1).
constexpr std::size_t kMbapHeaderBytes = 7;
/// The largest ADU is 260 bytes, so the header's length (unit id + PDU) is at most 254.
constexpr std::size_t kMaxMbapLength = 254;

/// Request PDUs (function code first). Reads: functions 1 (coils), 2 (discrete), 3 (holding),
/// 4 (input); writes: 5 or 15 (coils), 6 or 16 (holding registers), the single form for one value.
Bytes read_request(Table table, int address, int count);
Bytes write_registers_request(int address, const std::vector<std::uint16_t>& values);
Bytes write_bits_request(int address, const std::vector<std::uint8_t>& bits);

/// The request ADU: an MBAP header (protocol id 0) and `pdu`.
Bytes frame_request(std::uint16_t transaction, std::uint8_t unit, const Bytes& pdu);

/// Checks a response's MBAP header against the request it answers: the transaction id, protocol id
/// 0, the unit id, and a length that fits either the normal response to `request_pdu` or an
/// exception. Returns "" and sets `body_bytes` (the PDU bytes that follow the header), or what is
/// wrong ("transaction id 7, but the request was 6"). Checked before the body is read, so a header
/// that announces the wrong length fails at once instead of waiting for bytes that never come.
std::string check_response_header(const std::uint8_t* header, std::uint16_t transaction, std::uint8_t unit,
                                  const Bytes& request_pdu, std::size_t& body_bytes);

/// A response PDU decoded against its request.
struct Response {
  std::string error;       // non-empty: the response is invalid (what is wrong)
  int exception_code = 0;  // non-zero: the device answered with this Modbus exception
  std::vector<std::uint16_t> registers;  // functions 3 and 4
  std::vector<std::uint8_t> bits;        // functions 1 and 2, one byte (0 or 1) per bit
};

/// Decodes `size` bytes of a response PDU to `request_pdu`: the function code must be the
/// request's or its exception form, byte counts must match the quantity asked for, and a write's
/// echo must repeat the request's address and value or quantity.
Response decode_response(const Bytes& request_pdu, const std::uint8_t* pdu, std::size_t size);

}  // namespace mcpd::modbus
