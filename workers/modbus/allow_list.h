// Which Modbus devices the tools may reach: modbus.allowed_hosts, parsed once. Nothing is allowed
// unless listed, because an agent must not make mcpd connect wherever it likes. Pure: no I/O; the
// caller resolves names and asks about each address it would connect to.
#pragma once

#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace mcpd::modbus {

/// An IPv4 or IPv6 address as 16 bytes (IPv4 as an IPv4-mapped IPv6 address, so that a v4 entry
/// also covers the same address reached over a dual-stack socket).
struct IpAddress {
  std::array<std::uint8_t, 16> bytes{};
  bool v4 = false;
  /// "10.1.2.3" or "fd00::1".
  std::string text() const;
};

/// Parses a numeric IPv4 or IPv6 address ("10.1.2.3", "::1"); nullopt for anything else.
std::optional<IpAddress> parse_ip(const std::string& text);
/// The address of an AF_INET or AF_INET6 socket address; nullopt for other families.
std::optional<IpAddress> ip_of(const sockaddr* address);

/// The parsed modbus.allowed_hosts. Entries: "*" (any host), a host name ("plc1.plant"), an
/// address ("10.1.2.3", "::1"), a CIDR range ("10.1.0.0/16", "fd00::/8"), each optionally with a
/// port ("plc1:502", "10.1.0.0/16:502", "[::1]:502", "[fd00::/8]:502").
class AllowList {
 public:
  AllowList() = default;
  /// Throws std::invalid_argument naming the entry and what is wrong with it.
  explicit AllowList(const std::vector<std::string>& entries);

  /// What may be decided before any name lookup: true when `host` (a name or an address) is
  /// listed for `port` by name, by "*", or as an address inside a listed range.
  bool allows_host(const std::string& host, int port) const;
  /// Whether a name that allows_host() does not list may still be allowed by the address it
  /// resolves to: true when there is an address or range entry for `port`.
  bool may_allow_by_address(int port) const;
  /// Whether a connection to `address`, `port` is allowed by an address or range entry.
  bool allows_address(const IpAddress& address, int port) const;

  bool empty() const { return rules_.empty(); }
  /// Whether some entry names a port (then refusals name the port too).
  bool has_ports() const;
  /// The entries as given, comma-separated, for error messages ("" when empty).
  std::string describe() const;

 private:
  struct Rule {
    enum class Kind { any, name, range } kind = Kind::any;
    std::string name;  // Kind::name, lowercase, without a trailing dot
    IpAddress network;  // Kind::range (a single address is a /32 or /128)
    int prefix_bits = 0;  // of the 128-bit form
    int port = 0;         // 0: any port
    std::string text;     // as configured
  };
  std::vector<Rule> rules_;
};

/// The error a refused host gets: names the host (and the address it resolved to), the port when a
/// listed entry would allow another port, and the setting to change.
std::string not_allowed_message(const std::string& host, int port, const std::string& resolved_address,
                                const AllowList& list);

}  // namespace mcpd::modbus
