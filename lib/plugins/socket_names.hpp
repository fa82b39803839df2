// Names for a socket's numbers as sockstat shows them (family, type, protocol, state), shared by
// the plugins that describe sockets.
#pragma once

#include <cstdint>
#include <string>

#include "vmi/linux.hpp"

namespace vmi {

inline constexpr std::uint16_t kAfUnix = 1, kAfInet = 2, kAfInet6 = 10, kAfNetlink = 16, kAfPacket = 17;

// "AF_INET"; a family no table knows as "AF_<number>".
std::string family_name(std::uint16_t family);
// "STREAM", "DGRAM", ...; an unknown type as its number.
Maybe<std::string> socket_type_name(const Maybe<std::uint16_t>& type);
// Per family: "TCP", "NETLINK_ROUTE", an Ethernet protocol; not applicable for AF_UNIX.
Maybe<std::string> protocol_name(const linux_objects::Socket& socket);
// "LISTEN", "ESTABLISHED" (inet and unix), "UNCONNECTED" (netlink); not applicable otherwise.
Maybe<std::string> state_name(const linux_objects::Socket& socket);

// A number as text, or its absence.
template <class T>
Maybe<std::string> text_of(const Maybe<T>& value) {
  if (const auto* absence = std::get_if<Absence>(&value)) return *absence;
  return std::to_string(std::get<T>(value));
}

}  // namespace vmi
