// Socket numbers by name, from the kernel's own headers.
#include "plugins/socket_names.hpp"

#include <algorithm>

namespace vmi {

namespace {

struct Name {
  std::uint32_t value;
  std::string_view name;
};

// include/linux/socket.h
constexpr Name kFamilies[] = {{1, "AF_UNIX"},      {2, "AF_INET"}, {3, "AF_AX25"},       {4, "AF_IPX"},
                              {5, "AF_APPLETALK"}, {9, "AF_X25"},  {10, "AF_INET6"},     {16, "AF_NETLINK"},
                              {17, "AF_PACKET"},   {29, "AF_CAN"}, {31, "AF_BLUETOOTH"}, {38, "AF_ALG"},
                              {40, "AF_VSOCK"},    {44, "AF_XDP"}, {45, "AF_MCTP"}};
// include/linux/net.h enum sock_type
constexpr Name kTypes[] = {{1, "STREAM"},    {2, "DGRAM"}, {3, "RAW"},    {4, "RDM"},
                           {5, "SEQPACKET"}, {6, "DCCP"},  {10, "PACKET"}};
// include/uapi/linux/in.h, in6.h
constexpr Name kInetProtocols[] = {{0, "IP"},      {1, "ICMP"},   {6, "TCP"},       {17, "UDP"},  {41, "IPV6"},
                                   {58, "ICMPV6"}, {132, "SCTP"}, {136, "UDPLITE"}, {255, "RAW"}, {262, "MPTCP"}};
// include/uapi/linux/netlink.h
constexpr Name kNetlinkProtocols[] = {
    {0, "NETLINK_ROUTE"},       {2, "NETLINK_USERSOCK"},       {3, "NETLINK_FIREWALL"},
    {4, "NETLINK_SOCK_DIAG"},   {5, "NETLINK_NFLOG"},          {6, "NETLINK_XFRM"},
    {7, "NETLINK_SELINUX"},     {8, "NETLINK_ISCSI"},          {9, "NETLINK_AUDIT"},
    {10, "NETLINK_FIB_LOOKUP"}, {11, "NETLINK_CONNECTOR"},     {12, "NETLINK_NETFILTER"},
    {13, "NETLINK_IP6_FW"},     {14, "NETLINK_DNRTMSG"},       {15, "NETLINK_KOBJECT_UEVENT"},
    {16, "NETLINK_GENERIC"},    {18, "NETLINK_SCSITRANSPORT"}, {19, "NETLINK_ECRYPTFS"},
    {20, "NETLINK_RDMA"},       {21, "NETLINK_CRYPTO"},        {22, "NETLINK_SMC"}};
// include/uapi/linux/if_ether.h: the protocols a packet socket is commonly bound to
constexpr Name kEthernetProtocols[] = {{0x0003, "ALL"},  {0x0800, "IP"},   {0x0806, "ARP"}, {0x8100, "8021Q"},
                                       {0x86DD, "IPV6"}, {0x88CC, "LLDP"}, {0x888E, "PAE"}};
// include/net/tcp_states.h (unix sockets use these states too)
constexpr Name kTcpStates[] = {{1, "ESTABLISHED"}, {2, "SYN_SENT"},  {3, "SYN_RECV"}, {4, "FIN_WAIT1"},
                               {5, "FIN_WAIT2"},   {6, "TIME_WAIT"}, {7, "CLOSE"},    {8, "CLOSE_WAIT"},
                               {9, "LAST_ACK"},    {10, "LISTEN"},   {11, "CLOSING"}, {12, "NEW_SYN_RECV"}};
// net/netlink/af_netlink.h; sock_init_data() leaves TCP_CLOSE (7) until the first connect().
constexpr Name kNetlinkStates[] = {{0, "UNCONNECTED"}, {1, "CONNECTED"}, {7, "UNCONNECTED"}};

// The name for `value`, else the number itself (a value no table knows is still shown).
template <std::size_t N>
std::string name_of(const Name (&table)[N], std::uint32_t value) {
  const auto* found = std::ranges::find(table, value, &Name::value);
  if (found != std::end(table)) return std::string(found->name);
  return std::to_string(value);
}

template <std::size_t N, class T>
Maybe<std::string> name_of(const Name (&table)[N], const Maybe<T>& value) {
  if (const auto* absence = std::get_if<Absence>(&value)) return *absence;
  return name_of(table, static_cast<std::uint32_t>(std::get<T>(value)));
}

}  // namespace

std::string family_name(std::uint16_t family) {
  const auto* found = std::ranges::find(kFamilies, std::uint32_t{family}, &Name::value);
  if (found != std::end(kFamilies)) return std::string(found->name);
  return "AF_" + std::to_string(family);
}

Maybe<std::string> protocol_name(const linux_objects::Socket& s) {
  switch (s.family) {
    case kAfInet:
    case kAfInet6:
      return name_of(kInetProtocols, s.protocol);
    case kAfNetlink:
      return name_of(kNetlinkProtocols, s.protocol);
    case kAfPacket:
      return name_of(kEthernetProtocols, s.protocol);
    case kAfUnix:
      return Absence::not_applicable;  // unix sockets have no protocol (always 0)
    default:
      return text_of(s.protocol);
  }
}

Maybe<std::string> state_name(const linux_objects::Socket& s) {
  switch (s.family) {
    case kAfInet:
    case kAfInet6:
    case kAfUnix:
      return name_of(kTcpStates, s.state);
    case kAfNetlink:
      return name_of(kNetlinkStates, s.state);
    default:
      return Absence::not_applicable;
  }
}

Maybe<std::string> socket_type_name(const Maybe<std::uint16_t>& type) { return name_of(kTypes, type); }

}  // namespace vmi
