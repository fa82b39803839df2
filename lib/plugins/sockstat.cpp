// sockstat: every socket reachable from a process's file descriptors, with its endpoints.
#include <algorithm>
#include <array>
#include <cstdio>

#include "plugins/plugins.hpp"
#include "vmi/linux.hpp"
#include "vmi/rows.hpp"

namespace vmi {

namespace {

using linux_objects::Socket;

struct SocketRow {
  Maybe<std::uint32_t> net_namespace;
  std::string process;
  std::int32_t pid = 0, tid = 0, fd = 0;
  Maybe<Addr> sock;
  Maybe<std::string> family;
  Maybe<std::string> type, protocol;
  Maybe<std::string> source_address, source_port, destination_address, destination_port;
  Maybe<std::string> state, filter;
  Maybe<std::uint64_t> inode;
};

// Volatility 3's sockstat columns (ports as text: a unix socket's "port" is its inode; Filter as
// k=v pairs), then the socket's inode, which lsof's "socket:[INO]" names.
constexpr auto kSocketRow =
    declare_row(column<&SocketRow::net_namespace>("NetNS"), column<&SocketRow::process>("Process Name"),
                column<&SocketRow::pid>("PID"), column<&SocketRow::tid>("TID"), column<&SocketRow::fd>("FD"),
                column<&SocketRow::sock, ColumnType::address>("Sock Offset"), column<&SocketRow::family>("Family"),
                column<&SocketRow::type>("Type"), column<&SocketRow::protocol>("Proto"),
                column<&SocketRow::source_address>("Source Addr"), column<&SocketRow::source_port>("Source Port"),
                column<&SocketRow::destination_address>("Destination Addr"),
                column<&SocketRow::destination_port>("Destination Port"), column<&SocketRow::state>("State"),
                column<&SocketRow::filter>("Filter"), column<&SocketRow::inode>("Inode"));

constexpr std::uint16_t kAfUnix = 1, kAfInet = 2, kAfInet6 = 10, kAfNetlink = 16, kAfPacket = 17;

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

template <class T>
Maybe<std::string> text_of(const Maybe<T>& value) {
  if (const auto* absence = std::get_if<Absence>(&value)) return *absence;
  return std::to_string(std::get<T>(value));
}

std::string family_name(std::uint16_t family) {
  const auto* found = std::ranges::find(kFamilies, std::uint32_t{family}, &Name::value);
  if (found != std::end(kFamilies)) return std::string(found->name);
  return "AF_" + std::to_string(family);
}

Maybe<std::string> protocol_name(const Socket& s) {
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

Maybe<std::string> state_name(const Socket& s) {
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

// An attached BPF program as "k=v,...": N/A for a socket without one.
Maybe<std::string> filter_text(const Maybe<linux_objects::SocketFilter>& filter) {
  const auto* attached = std::get_if<linux_objects::SocketFilter>(&filter);
  if (attached == nullptr) return std::get<Absence>(filter);
  return "bpf_filter_type=" + std::string(attached->classic ? "cBPF" : "eBPF") +
         ",bpf_instructions=" + std::to_string(attached->instructions) + ",bpf_prog=" + hex(attached->program);
}

SocketRow descriptor_row(const linux_objects::FileDescriptor& descriptor) {
  SocketRow row;
  row.process = descriptor.process;
  row.pid = descriptor.pid;
  row.tid = descriptor.tid;
  row.fd = descriptor.fd;
  row.inode = descriptor.inode;
  return row;
}

// A socket descriptor whose struct socket or sock could not be read (a warning says where).
SocketRow unreadable_row(const linux_objects::FileDescriptor& descriptor) {
  SocketRow row = descriptor_row(descriptor);
  row.net_namespace = Absence::unreadable;
  row.sock = Absence::unreadable;
  row.family = Absence::unreadable;
  row.type = row.protocol = row.state = row.filter = Absence::unreadable;
  row.source_address = row.source_port = row.destination_address = row.destination_port = Absence::unreadable;
  return row;
}

SocketRow row_of(const linux_objects::FileDescriptor& descriptor, const Socket& s) {
  SocketRow row = descriptor_row(descriptor);
  row.net_namespace = s.net_namespace;
  row.sock = s.sock;
  row.family = family_name(s.family);
  row.type = name_of(kTypes, s.type);
  row.protocol = protocol_name(s);
  row.source_address = s.local_address;
  row.destination_address = s.remote_address;
  if (s.family == kAfUnix) {  // Volatility 3's convention: a unix socket's ports are inodes
    row.source_port = text_of(descriptor.inode);
    row.destination_port = text_of(s.peer_inode);
  } else {
    row.source_port = text_of(s.local_port);
    row.destination_port = text_of(s.remote_port);
  }
  row.state = state_name(s);
  row.filter = filter_text(s.filter);
  return row;
}

constexpr PluginOption kOptions[] = {
    {"pid", OptionType::integers, "only these process IDs (comma-separated)"},
    {"netns", OptionType::integers, "only sockets of these network namespaces (inode numbers, comma-separated)"},
    {"threads", OptionType::flag, "repeat a process's sockets for each thread that shares its descriptor table"},
};

Expected<void> run_sockstat(PluginContext& context) {
  const auto pids = VMI_TRY(context.args.integers("pid"));
  const auto namespaces = VMI_TRY(context.args.integers("netns"));
  const bool every_thread = context.args.flag("threads");
  const Kernel& kernel = *context.kernel;
  RowWriter rows(context.out, kSocketRow);
  linux_objects::DescriptorBudget budget;
  bool wanted = true;
  std::optional<Addr> leader_table;
  std::optional<Error> failed;  // the kernel's file or socket structures could not be bound
  auto in_namespaces = [&](const Maybe<std::uint32_t>& ns) {
    if (namespaces.empty()) return true;
    const auto* inum = std::get_if<std::uint32_t>(&ns);
    return inum != nullptr && std::ranges::find(namespaces, std::int64_t{*inum}) != namespaces.end();
  };
  VMI_TRY_VOID(linux_objects::for_each_task(kernel, true, context.diagnostics, [&](auto&& task) {
    if (!pids.empty() && std::ranges::find(pids, task.tgid) == pids.end()) return true;
    const auto table = linux_objects::file_table_of(kernel, task, context.diagnostics);
    const bool leader = task.pid == task.tgid;
    if (leader) leader_table = table;
    if (!leader && !every_thread && table == leader_table) return true;
    if (!table) return true;
    auto walked = linux_objects::for_each_file_descriptor(
        kernel, task, *table, budget, context.diagnostics, [&](linux_objects::FileDescriptor&& descriptor) {
          auto socket = linux_objects::socket_of(kernel, task, descriptor, context.diagnostics);
          if (!socket) {
            failed = socket.error();
            return false;
          }
          if (const auto* s = std::get_if<Socket>(&*socket)) {
            if (in_namespaces(s->net_namespace)) wanted = rows.write(row_of(descriptor, *s));
          } else if (std::get<Absence>(*socket) == Absence::unreadable && namespaces.empty() &&
                     descriptor.type == Maybe<std::string>(std::string("SOCK"))) {
            wanted = rows.write(unreadable_row(descriptor));
          }
          return wanted;
        });
    if (!walked) failed = walked.error();
    return wanted && !failed;
  }));
  if (failed) return *failed;
  return {};
}

}  // namespace

constexpr std::string_view kSockstatAliases[] = {"linux.sockstat.Sockstat"};
const Plugin kSockstatPlugin{.name = "linux.sockstat",
                             .short_name = "netstat",
                             .os = "linux",
                             .aliases = kSockstatAliases,
                             .description = "List every socket open in a process, with its addresses and state",
                             .needs = Requirement::kernel,
                             .columns = kSocketRow.columns,
                             .tree = false,
                             .options = kOptions,
                             .run = run_sockstat};

}  // namespace vmi
