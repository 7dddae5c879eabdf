#include "allow_list.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

namespace mcpd::modbus {

namespace {

std::string lower_name(std::string name) {
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
  if (!name.empty() && name.back() == '.') name.pop_back();
  return name;
}

bool valid_name(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '-' && c != '.' && c != '_') return false;
  return true;
}

int parse_port(const std::string& entry, const std::string& text) {
  if (text.empty() || text.size() > 5 || !std::all_of(text.begin(), text.end(), ::isdigit))
    throw std::invalid_argument("modbus.allowed_hosts: '" + entry + "': the port must be a number from 1 to 65535");
  int port = std::stoi(text);
  if (port < 1 || port > 65535)
    throw std::invalid_argument("modbus.allowed_hosts: '" + entry + "': the port must be a number from 1 to 65535");
  return port;
}

bool in_range(const IpAddress& address, const IpAddress& network, int prefix_bits) {
  int full = prefix_bits / 8, rest = prefix_bits % 8;
  if (std::memcmp(address.bytes.data(), network.bytes.data(), static_cast<std::size_t>(full)) != 0) return false;
  if (rest == 0) return true;
  auto mask = static_cast<std::uint8_t>(0xff << (8 - rest));
  return (address.bytes[static_cast<std::size_t>(full)] & mask) == (network.bytes[static_cast<std::size_t>(full)] & mask);
}

}  // namespace

std::string IpAddress::text() const {
  char buf[INET6_ADDRSTRLEN] = {};
  if (v4) ::inet_ntop(AF_INET, bytes.data() + 12, buf, sizeof buf);
  else ::inet_ntop(AF_INET6, bytes.data(), buf, sizeof buf);
  return buf;
}

std::optional<IpAddress> parse_ip(const std::string& text) {
  IpAddress a;
  in_addr v4{};
  if (::inet_pton(AF_INET, text.c_str(), &v4) == 1) {
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, &v4, 4);
    a.v4 = true;
    return a;
  }
  in6_addr v6{};
  if (::inet_pton(AF_INET6, text.c_str(), &v6) == 1) {
    std::memcpy(a.bytes.data(), &v6, 16);
    a.v4 = IN6_IS_ADDR_V4MAPPED(&v6);
    return a;
  }
  return std::nullopt;
}

std::optional<IpAddress> ip_of(const sockaddr* address) {
  IpAddress a;
  if (address->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(address);
    a.bytes[10] = a.bytes[11] = 0xff;
    std::memcpy(a.bytes.data() + 12, &in->sin_addr, 4);
    a.v4 = true;
    return a;
  }
  if (address->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(address);
    std::memcpy(a.bytes.data(), &in6->sin6_addr, 16);
    a.v4 = IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr);
    return a;
  }
  return std::nullopt;
}

AllowList::AllowList(const std::vector<std::string>& entries) {
  for (const auto& entry : entries) {
    auto bad = [&](const std::string& why) {
      throw std::invalid_argument("modbus.allowed_hosts: '" + entry + "': " + why +
                                  "; use a host name, an address or a CIDR range, optionally with :port");
    };
    Rule rule;
    rule.text = entry;
    std::string host = entry;
    if (!host.empty() && host.front() == '[') {
      auto close = host.find(']');
      if (close == std::string::npos) bad("'[' without ']'");
      std::string after = host.substr(close + 1);
      host = host.substr(1, close - 1);
      if (!after.empty()) {
        if (after.front() != ':') bad("only ':port' may follow ']'");
        rule.port = parse_port(entry, after.substr(1));
      }
    } else if (std::count(host.begin(), host.end(), ':') == 1) {
      // One colon: host:port. More: an IPv6 address, whose port needs brackets.
      auto colon = host.find(':');
      rule.port = parse_port(entry, host.substr(colon + 1));
      host = host.substr(0, colon);
    }
    if (host.empty()) bad("no host");
    if (host == "*") {
      rule.kind = Rule::Kind::any;
    } else if (auto slash = host.find('/'); slash != std::string::npos) {
      auto network = parse_ip(host.substr(0, slash));
      std::string bits = host.substr(slash + 1);
      if (!network) bad("a CIDR range needs a numeric address before '/'");
      int max_bits = network->v4 ? 32 : 128;
      if (bits.empty() || bits.size() > 3 || !std::all_of(bits.begin(), bits.end(), ::isdigit) ||
          std::stoi(bits) > max_bits)
        bad("the prefix length must be a number from 0 to " + std::to_string(max_bits));
      rule.kind = Rule::Kind::range;
      rule.network = *network;
      rule.prefix_bits = std::stoi(bits) + (network->v4 ? 96 : 0);
    } else if (auto address = parse_ip(host)) {
      rule.kind = Rule::Kind::range;
      rule.network = *address;
      rule.prefix_bits = 128;
    } else {
      if (!valid_name(host)) bad("not a valid host name");
      rule.kind = Rule::Kind::name;
      rule.name = lower_name(host);
    }
    rules_.push_back(std::move(rule));
  }
}

bool AllowList::allows_host(const std::string& host, int port) const {
  auto address = parse_ip(host);
  std::string name = lower_name(host);
  for (const auto& rule : rules_) {
    if (rule.port != 0 && rule.port != port) continue;
    switch (rule.kind) {
      case Rule::Kind::any: return true;
      case Rule::Kind::name:
        if (!address && rule.name == name) return true;
        break;
      case Rule::Kind::range:
        if (address && in_range(*address, rule.network, rule.prefix_bits)) return true;
        break;
    }
  }
  return false;
}

bool AllowList::may_allow_by_address(int port) const {
  for (const auto& rule : rules_)
    if (rule.kind == Rule::Kind::range && (rule.port == 0 || rule.port == port)) return true;
  return false;
}

bool AllowList::allows_address(const IpAddress& address, int port) const {
  for (const auto& rule : rules_) {
    if (rule.port != 0 && rule.port != port) continue;
    if (rule.kind == Rule::Kind::any) return true;
    if (rule.kind == Rule::Kind::range && in_range(address, rule.network, rule.prefix_bits)) return true;
  }
  return false;
}

bool AllowList::has_ports() const {
  for (const auto& rule : rules_)
    if (rule.port != 0) return true;
  return false;
}

std::string AllowList::describe() const {
  std::string out;
  for (const auto& rule : rules_) out += (out.empty() ? "" : ", ") + rule.text;
  return out;
}

std::string not_allowed_message(const std::string& host, int port, const std::string& resolved_address,
                                const AllowList& list) {
  std::string who = "host '" + host + "'";
  if (!resolved_address.empty()) who += " (which resolves to " + resolved_address + ")";
  if (list.has_ports()) who += " port " + std::to_string(port);
  if (list.empty())
    return who + " is not in modbus.allowed_hosts, which is empty, so no device may be reached; add the host to "
                 "allow connections (--modbus '{\"allowed_hosts\": [\"10.1.2.3\", \"plc1:502\", \"10.2.0.0/16\"]}')";
  return who + " is not in modbus.allowed_hosts (" + list.describe() + "); add it to allow connections";
}

}  // namespace mcpd::modbus
